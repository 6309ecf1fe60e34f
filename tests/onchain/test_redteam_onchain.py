"""Red team, on chain (issue 9 items 6-8): every attack is a row, on a real anvil with real proofs.

Item 6: ``zkml verify --onchain --record`` of a real digits-MLP bundle with
one security-relevant field edited is refused before anything is sent, and
no receipt is written. The store's embedded chain holds the deployed MLP.

Items 7-8: the session world of tests/onchain (chainkit) (tiny Linear(4,3)+ReLU circuits
``a``, ``b``, ``h`` registered by anvil's first dev account; emergency role on
another account); every test between evm_snapshot / evm_revert.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chainkit import (
    CHALLENGE_WINDOW,
    EMERGENCY_KEY,
    STRANGER_KEY,
    World,
    as_key,
    record_for,
)
from typer.testing import CliRunner

from zkml.bundle import Bundle
from zkml.circuit import Circuit
from zkml.evm.chain import Chain
from zkml.evm.registry import Registry, RegistryError, code_hash, model_id_of, proposal_commitments
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()

#: Runtime code returning 32 bytes of 1: an "always true" verifier.
ALWAYS_TRUE = bytes.fromhex("600160005260206000f3")
#: The 6-byte contract of the issue: returns 384 zero bytes (a deferred verifier's result, all zeros).
ZEROS = bytes.fromhex("6101806000f3")


def _flip_hex(h: str, i: int = 10) -> str:
    return h[:i] + ("0" if h[i] != "0" else "1") + h[i + 1:]


def _flip_felt(felt: str) -> str:
    raw = bytearray(bytes.fromhex(felt))
    raw[0] ^= 1
    return raw.hex()


def _garbage(proof_json: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(bytes.fromhex(proof_json["hex_proof"][2:]))
    raw[len(raw) // 2] ^= 1
    return {**proof_json, "hex_proof": "0x" + raw.hex()}


# ---------------------------------------------------------------------------
# Item 6: verify --onchain runs every local claim check first
# ---------------------------------------------------------------------------


def _set(path: str, fn: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    """Edit one leaf of the bundle JSON: ``path`` is dotted, integers index lists."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]

    def edit(d: dict[str, Any]) -> None:
        node: Any = d
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = fn(node[keys[-1]])

    return edit


def _swap_outputs(d: dict[str, Any]) -> None:
    row = d["outputs"]["values"][0]
    i, j = max(range(len(row)), key=row.__getitem__), min(range(len(row)), key=row.__getitem__)
    row[i], row[j] = row[j], row[i]


def _forged_outputs_and_model(d: dict[str, Any]) -> None:
    """The issue's worst case: forged outputs and a fake model digest together."""
    d["outputs"]["values"][0] = [10.0 if k == 0 else 0.0 for k in range(len(d["outputs"]["values"][0]))]
    d["model"]["sha256"] = "ab" * 32


def _other_circuit_id(d: dict[str, Any]) -> None:
    cid = d["circuit"]["id"]
    d["circuit"]["id"] = cid[:-1] + ("0" if cid[-1] != "0" else "1")


# (case, edit) -- each edit is one security-relevant change of a genuine bundle
TAMPERS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("model digest", _set("model.sha256", _flip_hex)),
    ("vk digest", _set("circuit.vk_sha256", _flip_hex)),
    ("settings digest", _set("circuit.settings_sha256", _flip_hex)),
    ("compiled digest", _set("circuit.compiled_sha256", _flip_hex)),
    ("srs digest", _set("srs.sha256", _flip_hex)),
    ("srs logrows", _set("srs.logrows", lambda v: v + 1)),
    ("circuit logrows", _set("circuit.logrows", lambda v: v + 1)),
    ("batch size", _set("circuit.batch_size", lambda v: v + 1)),
    ("input scale", _set("circuit.input_scale", lambda v: v + 1)),
    ("output scale", _set("circuit.output_scales.0", lambda v: v + 1)),
    ("output size", _set("circuit.output_sizes.0", lambda v: v + 1)),
    ("input visibility", _set("circuit.visibility.input", lambda v: "hashed")),
    ("output visibility", _set("circuit.visibility.output", lambda v: "private")),
    ("sample shape", _set("model.sample_shape", lambda v: [8, 8])),
    ("circuit id (another circuit)", _other_circuit_id),
    ("input value", _set("input.values.0.0", lambda v: v + 0.5)),
    ("input digest", _set("input.sha256", _flip_hex)),
    ("output value", _set("outputs.values.0.0", lambda v: v + 1.0)),
    ("outputs swapped (another argmax)", _swap_outputs),
    ("forged outputs + fake model digest", _forged_outputs_and_model),
    ("proof bytes", _set("proofs.0.proof", lambda v: _flip_hex(v, 300))),
    ("input instance", _set("proofs.0.instances.0.0", _flip_felt)),
    ("output instance", _set("proofs.0.instances.0.70", _flip_felt)),
    ("instance dropped", _set("proofs.0.instances.0", lambda col: col[:-1])),
    ("sample count", _set("samples", lambda v: v + 1)),
]


@dataclasses.dataclass(frozen=True)
class Deployed:
    store: Store
    chain: Chain
    registry: Registry
    model_hex: str


@pytest.fixture(scope="module")
def deployed(store: Store, mlp_circuit: Circuit) -> Iterator[Deployed]:
    """The digits MLP deployed and registered on the store's embedded chain."""
    from zkml.evm.deploy import ensure_existing_registry, open_chain

    r = runner.invoke(app, ["deploy", mlp_circuit.circuit_id, "--store", str(store.root), "--json"])
    assert r.exit_code == 0, r.stderr
    chain = open_chain(store)
    yield Deployed(store, chain, ensure_existing_registry(store, chain), json.loads(r.stdout)["model_id_hex"])
    runner.invoke(app, ["chain", "down", "--store", str(store.root)])


def _verify_record(d: Deployed, path: Path, *extra: str) -> Any:
    # --model-id: the session store may hold this circuit under several models (test_provenance_onchain's signed one)
    return runner.invoke(app, ["verify", str(path), "--onchain", "--record", "--store", str(d.store.root),
                               "--model-id", d.model_hex, *extra])


def _errors(r: Any) -> list[str]:
    """The error lines of a CLI run (progress lines start with '..')."""
    return [line for line in r.stderr.strip().splitlines() if not line.lstrip().startswith("..")]


def _recorded(d: Deployed) -> int:
    return sum(e.name == "ProofVerified" for e in d.registry.history(d.model_hex))


def test_tamper_table_is_large_enough() -> None:
    assert len(TAMPERS) >= 20 and len({name for name, _ in TAMPERS}) == len(TAMPERS)


@pytest.mark.parametrize(("case", "edit"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_bundle_is_refused_before_the_chain_and_gets_no_receipt(
        case: str, edit: Callable[[dict[str, Any]], None], deployed: Deployed, mlp_bundle: Bundle,
        tmp_path: Path) -> None:
    doc = copy.deepcopy(mlp_bundle.to_json())
    edit(doc)
    assert doc != mlp_bundle.to_json()
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(doc))
    before_bytes, before_block, before_events = path.read_bytes(), deployed.chain.block_number(), _recorded(deployed)
    r = _verify_record(deployed, path, "--model-id", "digits_mlp")  # the attacker names the genuine model
    assert r.exit_code != 0, (case, r.stdout)
    assert "Traceback" not in r.stderr and len(_errors(r)) == 1, r.stderr
    # refused by the bundle reader or by the checks before the chain, never by the chain
    assert "refused before any on-chain call" in r.stderr or "bundle" in r.stderr, r.stderr
    # nothing sent, nothing recorded, no receipt
    assert deployed.chain.block_number() == before_block
    assert _recorded(deployed) == before_events
    assert path.read_bytes() == before_bytes


def test_genuine_bundle_gets_one_receipt_and_is_recorded_once(deployed: Deployed, mlp_circuit: Circuit,
                                                              test_set: Any, tmp_path: Path) -> None:
    """The control row: a fresh genuine bundle passes, on chain and locally, and is recorded once.

    Fresh: the session's mlp_bundle may already be recorded on the store's chain by another module."""
    from zkml.prove import prove

    path = tmp_path / "genuine.json"
    prove(mlp_circuit, test_set[0][137:138]).save(path)
    r = _verify_record(deployed, path, "--json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["valid"] and res["local_checks"] == "passed" and res["model_id_hex"] == deployed.model_hex
    receipts = Bundle.load(path).onchain
    assert len(receipts) == 1 and receipts[0]["proofs"][0]["tx"].startswith("0x")
    # a second --record of the same proof: the registry records a proof once (I8), no second receipt
    r = _verify_record(deployed, path)
    assert r.exit_code != 0 and "already recorded" in r.stderr, r.stderr
    assert len(Bundle.load(path).onchain) == 1


def test_circuit_missing_from_the_store_is_refused_with_what_is_missing(deployed: Deployed, mlp_bundle: Bundle,
                                                                        tmp_path: Path) -> None:
    """A verifier without the circuit has only the chain: the SNARK and digests could be checked there,
    but not the bundle's input/output claims, so it refuses and says what is missing."""
    empty = Store(tmp_path / "empty-store")
    (empty.root / "chains").mkdir(parents=True)
    src = deployed.store.root / "chains" / f"{deployed.chain.chain_id}.json"
    (empty.root / "chains" / src.name).write_bytes(src.read_bytes())
    path = tmp_path / "p.json"
    mlp_bundle.save(path)
    block = deployed.chain.block_number()
    r = runner.invoke(app, ["verify", str(path), "--onchain", "--record", "--store", str(empty.root),
                            "--rpc-url", deployed.chain.rpc_url, "--model-id", deployed.model_hex])
    assert r.exit_code != 0 and "is not in this store" in r.stderr and "claims cannot be checked" in r.stderr
    assert len(_errors(r)) == 1 and deployed.chain.block_number() == block
    assert Bundle.load(path).onchain == ()


def test_circuit_registered_as_two_models_asks_which(deployed: Deployed, mlp_bundle: Bundle, tmp_path: Path) -> None:
    """Two models of one circuit in the store's records: verify --onchain names both and asks, it never picks one."""
    st = Store(tmp_path / "two-models")
    (st.root / "chains").mkdir(parents=True)
    src = deployed.store.root / "chains" / f"{deployed.chain.chain_id}.json"
    rec = json.loads(src.read_text())
    mine = [m for m, r in rec["models"].items() if r.get("model_id_hex") == deployed.model_hex]
    assert mine, rec["models"].keys()
    rec["models"]["zz-other"] = {**rec["models"][mine[0]], "model_id_hex": "0x" + "ab" * 32}
    (st.root / "chains" / src.name).write_text(json.dumps(rec))
    path = tmp_path / "p.json"
    mlp_bundle.save(path)
    r = runner.invoke(app, ["verify", str(path), "--onchain", "--store", str(st.root), "--rpc-url", deployed.chain.rpc_url])
    assert r.exit_code == 2 and "is registered as" in r.stderr and "zz-other" in r.stderr and "pass --model-id" in r.stderr
    assert len(_errors(r)) == 1


# ---------------------------------------------------------------------------
# Item 7: the deferred (batch) verifier is part of the record
# ---------------------------------------------------------------------------


def _abi_functions(registry: Registry) -> set[str]:
    return {f["name"] for f in registry.contract.abi if f.get("type") == "function"}


def test_no_instant_swap_of_the_batch_verifier(registry: Registry) -> None:
    """No setter: the deferred verifier (and its code hash) change only through propose -> window -> finalize."""
    functions = _abi_functions(registry)
    assert "setDeferredVerifier" not in functions and "setChallengeWindow" not in functions
    setters = {f for f in functions if f.startswith("set")}
    # setDatasetRoot fills a zero root once and is never used to check proofs; setCommittee names the
    # committee (owner while none is set, then only the committee), which changes no record: a record
    # still takes effect only by propose -> (window | k-of-n hotfix over that exact record) -> finalize;
    # setGate names the validation gate once, which can only refuse a finalize (I10), never activate a record
    assert setters == {"setDatasetRoot", "setCommittee", "setGate"}


def test_zeros_deferred_in_a_registration_cannot_accept_garbage(registry: Registry, world: World,
                                                                chain: Chain) -> None:
    a = world.circuits["a"]
    zeros = chain.deploy_code(ZEROS).address
    registry.register("zeros-batch", record_for(a, world.deployments["a"], deferred_verifier=zeros))
    assert registry.verify_batch("zeros-batch", [_garbage(a.proof_json())]) == (False, None)
    assert registry.verify_batch("zeros-batch", [a.proof]) == (False, None)  # it proves nothing


def test_zeros_deferred_in_an_update_is_challenged_and_rejected(registry: Registry, world: World,
                                                                chain: Chain) -> None:
    """Proposing the 6-byte zeros contract as model-a's batch verifier: anyone refutes it in the window
    with any garbage proof (the verifier rejects, the deferred verifier's pairing accepts)."""
    a = world.circuits["a"]
    zeros = chain.deploy_code(ZEROS).address
    test_in, out = proposal_commitments(a.layout(), a.proof)
    version, _, _ = registry.propose_update("model-a", record_for(a, world.deployments["a"],
                                                                  deferred_verifier=zeros), test_in, out)
    challenger = as_key(registry, STRANGER_KEY)
    mid = registry.model_id("model-a")
    with pytest.raises(RegistryError, match="agree on this proof"):
        challenger.challenge_deferred(mid, a.proof)  # a genuine proof: nothing to refute there
    receipt = challenger.challenge_deferred(mid, _garbage(a.proof_json()))
    (_, ev), = [e for e in registry.events(receipt) if e[0] == "DeferredChallenged"]
    assert ev["verifierAccepts"] is False and ev["challenger"] == challenger.chain.sender
    assert registry.version_status("model-a", version) == "rejected"
    chain.increase_time(CHALLENGE_WINDOW)
    with pytest.raises(RegistryError, match="no pending update"):
        registry.finalize("model-a")
    with pytest.raises(RegistryError, match="no deferred verifier in its record"):
        registry.verify_batch("model-a", [_garbage(a.proof_json())])


def test_a_genuine_deferred_verifier_cannot_be_refuted(registry: Registry, world: World, chain: Chain,
                                                       tmp_path: Path) -> None:
    from zkml.evm.batch import compile_deferred, generate_deferred

    a = world.circuits["a"]
    deferred = chain.deploy(compile_deferred(generate_deferred(world.verifiers["a"].artifact, tmp_path))).address
    test_in, out = proposal_commitments(a.layout(), a.proof)
    registry.propose_update("model-a", record_for(a, world.deployments["a"], deferred_verifier=deferred),
                            test_in, out)
    for proof in (a.proof, _garbage(a.proof_json()), world.circuits["b"].proof):
        with pytest.raises(RegistryError, match="agree on this proof"):
            registry.challenge_deferred("model-a", proof)
    chain.increase_time(CHALLENGE_WINDOW)
    registry.finalize("model-a")
    assert registry.verify_batch("model-a", [a.proof, a.other_proof])[0]


def test_code_swapped_under_a_pinned_address_is_refused(registry: Registry, world: World, chain: Chain) -> None:
    """Code changed at the verifier's address (anvil_setCode stands in for a metamorphic contract)."""
    a = world.circuits["a"]
    verifier = world.deployments["a"].address
    assert registry.model("model-a").record.verifier_code_hash == code_hash(chain, verifier)
    chain.rpc("anvil_setCode", [verifier, "0x" + ALWAYS_TRUE.hex()])
    for check in (lambda: registry.verify("model-a", _garbage(a.proof_json())),
                  lambda: registry.verify_and_record("model-a", a.proof)):
        with pytest.raises(RegistryError, match="code hash .* not the .* the record pins"):
            check()


# ---------------------------------------------------------------------------
# Item 8: governance
# ---------------------------------------------------------------------------


def test_squatting_a_name_gives_the_squatter_its_own_id(registry: Registry, world: World, chain: Chain) -> None:
    """A stranger registers "model-a" with the genuine digests and an always-true verifier: that lands in
    the stranger's namespace; the owner's model-a is untouched, and the owner can still register names."""
    a = world.circuits["a"]
    squatter = as_key(registry, STRANGER_KEY)
    fake = chain.deploy_code(ALWAYS_TRUE).address
    squatter.register("model-a", dataclasses.replace(record_for(a, world.deployments["a"]), verifier=fake))
    owner = registry.chain.sender or ""
    genuine, squatted = model_id_of(owner, "model-a"), model_id_of(squatter.chain.sender or "", "model-a")
    assert genuine != squatted
    assert registry.model(genuine).record.verifier == world.deployments["a"].address
    assert registry.model(squatted).owner == squatter.chain.sender
    assert registry.verify(genuine, _garbage(a.proof_json())) is False
    registry.register("fresh-name", record_for(a, world.deployments["a"]))  # names are never taken from owners
    squatter.register("fresh-name", record_for(a, world.deployments["a"]))  # ... by anyone
    # ``registry show`` pins the owner and the verifier code hash
    record = registry.model(genuine).record
    assert record.verifier_code_hash == code_hash(chain, record.verifier)


def test_admin_cannot_shorten_a_models_window(registry: Registry, world: World, chain: Chain) -> None:
    """No window setter; a record below the registry's minimum is refused; propose + finalize in one
    block is impossible; a new window applies only after an update that waited out the old one."""
    a, b = world.circuits["a"], world.circuits["b"]
    assert registry.min_challenge_window() == CHALLENGE_WINDOW
    with pytest.raises(RegistryError, match="window of 0 s is outside"):
        registry.register("no-window", record_for(a, world.deployments["a"], challenge_window=0))
    assert registry.model("model-a").record.challenge_window == CHALLENGE_WINDOW
    test_in, b_out = proposal_commitments(b.layout(), b.proof)
    longer = 3 * CHALLENGE_WINDOW
    _, deadline, _ = registry.propose_update("model-a", record_for(b, world.deployments["b"],
                                                                   challenge_window=longer), test_in, b_out)
    with pytest.raises(RegistryError, match="is open until"):
        registry.finalize("model-a")
    assert deadline - chain.timestamp() <= CHALLENGE_WINDOW
    chain.increase_time(CHALLENGE_WINDOW)
    registry.finalize("model-a")
    # v2 fixed a longer window: the next update waits that long
    a_in, a_out = proposal_commitments(a.layout(), a.proof)
    _, deadline, _ = registry.propose_update("model-a", record_for(a, world.deployments["a"]), a_in, a_out)
    assert deadline - chain.timestamp() > 2 * CHALLENGE_WINDOW
    chain.increase_time(CHALLENGE_WINDOW + 1)
    with pytest.raises(RegistryError, match="is open until"):
        registry.finalize("model-a")


def test_roles_are_separate(registry: Registry, world: World, evm_root: Path) -> None:
    me = registry.chain.sender or ""
    with pytest.raises(RegistryError, match="admin and emergency must be separate keys"):
        Registry.deploy(registry.chain, admin=me, emergency=me, cache_dir=evm_root / "solc-cache")
    assert registry.has_role("admin", me) and not registry.has_role("emergency", me)
    em = as_key(registry, EMERGENCY_KEY)
    assert registry.has_role("emergency", em.chain.sender or "") and not registry.has_role("admin", em.chain.sender or "")
    with pytest.raises(RegistryError, match="lacks the registry role"):
        registry.pause("model-a")  # the admin (here also the model owner) cannot pause
    with pytest.raises(RegistryError, match="lacks the registry role"):
        em.grant_emergency_role(em.chain.sender or "")  # the emergency key cannot grant roles


def test_replayed_verify_and_record_is_refused(registry: Registry, world: World) -> None:
    a = world.circuits["a"]
    receipt = registry.verify_and_record("model-a", a.proof)
    ev = dict(registry.events(receipt))["ProofVerified"]
    assert ev["submitter"] == registry.chain.sender
    thief = as_key(registry, STRANGER_KEY)
    with pytest.raises(RegistryError, match=f"already recorded \\(by {registry.chain.sender}\\)"):
        thief.verify_and_record(registry.model_id("model-a"), a.proof)
    assert thief.recorded_by(registry.model_id("model-a"), a.proof) == registry.chain.sender
    # another proof (another input) is its own record
    thief.verify_and_record(registry.model_id("model-a"), a.other_proof)
    assert [e.args["submitter"] for e in registry.history("model-a") if e.name == "ProofVerified"] == [
        registry.chain.sender, thief.chain.sender]
