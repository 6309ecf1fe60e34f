"""The validation gate and SLA bond (verifiers/ValidationGate.sol) on a real anvil, with real proofs.

The digits MLP is version 1 of a gated, bonded model. Updates are the same MLP
(good) or the gate's deliberately broken copy (classes rotated). Every audit is
the real protocol: a VRF key registered in the registry, a nonce committed in
``openAudit`` before its target block, the challenge on that block's hash, the
owner's real proofs of the sampled rows, and ``submitAudit`` judging them on
chain. The accuracy the gate computes is compared with the off-chain check's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from support import TEST_SET
from test_compare import broken_circuit  # noqa: F401  (the session fixture: the gate's broken model)
from zkml import audit, vrf
from zkml.audit import gate as gate_audit
from zkml.circuit import Circuit
from zkml.commitments import CommittedDataset, build_commitment
from zkml.evm.chain import Chain
from zkml.evm.registry import InstanceLayout, ModelRecord, Registry, RegistryError
from zkml.evm.registry.gate import GateConfig, ValidationGate
from zkml.keys import VrfKey
from zkml.store import Store

AUDITOR_VRF = VrfKey(vrf.SECP256K1, bytes.fromhex("4a1c0a1e5b2d4c3a9e8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928"))
#: anvil's second well-known dev account: the auditor (the first is the model owner)
AUDITOR_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
K = 4
BOND = 10**18
WINDOW, TTL, NOTICE = 3600, 600, 1800
CONFIG = dict(require_bps=5000, sla_bps=5000, slash_bps=4000, k=K, audit_ttl=TTL, notice_period=NOTICE)


@dataclass
class World:
    owner: Chain
    auditor: Chain
    registry: Registry
    gate: ValidationGate
    audit_gate: ValidationGate
    oc: audit.OnChain
    model_id: bytes
    records: dict[str, ModelRecord]


@pytest.fixture(scope="module")
def committed() -> CommittedDataset:
    return build_commitment(TEST_SET)


def _record(chain: Chain, circuit: Circuit, root: bytes, tmp: Any, cache: Any) -> ModelRecord:
    from zkml.evm.verifier import compile_verifier, deploy_verifier, generate_verifier

    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, tmp)
    dep = deploy_verifier(chain, compile_verifier(art, cache_dir=cache))
    return ModelRecord.for_deployment(dep, onnx_sha256=circuit.model_sha256, vk_digest=circuit.files["vk.key"],
                                      layout=InstanceLayout.from_settings(circuit.settings_path), dataset_root=root,
                                      challenge_window=WINDOW)


@pytest.fixture(scope="module")
def world(store: Store, mlp_circuit: Circuit, broken_circuit: Circuit,  # noqa: F811
          committed: CommittedDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import json

    from zkml.evm.anvil import Anvil
    from zkml.evm.chain import connect

    cache = store.root / "solc-cache"
    root = committed.commitment.root
    scale = json.loads(mlp_circuit.settings_path.read_text())["run_args"]["input_scale"]
    with Anvil.start() as node:
        owner = connect(node.rpc_url, allow_dev_key=True)
        auditor = connect(node.rpc_url, AUDITOR_KEY, allow_dev_key=True)
        records = {"good": _record(owner, mlp_circuit, root, tmp_path_factory.mktemp("v-good"), cache),
                   "broken": _record(owner, broken_circuit, root, tmp_path_factory.mktemp("v-broken"), cache)}
        registry = Registry.deploy(owner, challenge_window=0, cache_dir=cache)
        registry.register("digits", records["good"])
        model_id = registry.model_id("digits")
        gate = ValidationGate.deploy(owner, registry.address, cache_dir=cache)
        gate.configure(model_id, GateConfig(n_rows=committed.commitment.n_rows, input_scale=scale, **CONFIG))
        registry.set_gate(model_id, gate.address)
        gate.deposit_bond(model_id, BOND)
        audit_registry = Registry.at(auditor, registry.address, registry.contract.abi)  # type: ignore[arg-type]
        audit_registry.register_auditor(AUDITOR_VRF.sk)
        oc = audit.OnChain(auditor, audit_registry, None, cache)
        yield World(owner, auditor, registry, gate, gate.with_chain(auditor), oc, model_id, records)


@pytest.fixture
def w(world: World) -> Iterator[World]:
    snap = world.owner.snapshot()
    try:
        yield world
    finally:
        world.owner.revert(snap)


def _warp(chain: Chain, seconds: int) -> None:
    chain.rpc("evm_increaseTime", [seconds])
    chain.rpc("evm_mine", [])


def _propose(w: World, which: str) -> int:
    version, _, _ = w.registry.propose_update(w.model_id, w.records[which], b"\x01" * 32, b"\x02" * 32)
    return version


def _challenge(w: World) -> audit.Challenge:
    c = gate_audit.open_gate_audit(w.oc, w.audit_gate, key=AUDITOR_VRF, model_id=w.model_id)
    while w.auditor.block_number() < c.commit.target_block:
        w.auditor.rpc("evm_mine", [])
    return gate_audit.reveal_gate_audit(w.oc, c, key=AUDITOR_VRF)


def _revert_reason(fn: Any, *args: Any) -> str | None:
    try:
        fn(*args)
    except RegistryError as e:
        return e.error_name
    return None


def test_registry_stays_under_eip170_with_the_hook(store: Store) -> None:
    from zkml.evm.registry import compile_registry
    from zkml.evm.registry.gate import compile_gate

    for evm in ("paris", "cancun"):
        size = compile_registry(evm_version=evm, cache_dir=store.solc_cache).deployed_size
        assert size <= 24_576, (evm, size)
        assert compile_gate(evm_version=evm, cache_dir=store.solc_cache).deployed_size <= 24_576


def test_good_update_finalizes_only_after_a_passing_audit(w: World, store: Store, mlp_circuit: Circuit) -> None:
    version = _propose(w, "good")
    assert w.registry.gate_of(w.model_id) == w.gate.address
    # Not before the window ends, and not after it without an audit
    snap = w.owner.snapshot()
    assert _revert_reason(w.registry.finalize, w.model_id) == "ChallengeWindowOpen"
    _warp(w.owner, WINDOW + 1)
    assert not w.gate.approves(w.model_id, version)
    assert _revert_reason(w.registry.finalize, w.model_id) == "GateRefused"
    w.owner.revert(snap)
    # A real audit of the pending version
    ch = _challenge(w)
    assert ch.fields.model_version == version == 2
    response = audit.respond(ch, TEST_SET, mlp_circuit)
    offchain = audit.check_response(response, ch, store=store, min_accuracy=0.5)
    assert offchain.passed, offchain.failures()
    # An open audit blocks finalization until it is submitted
    assert not w.gate.approves(w.model_id, version)
    balance = w.auditor.balance()
    result = gate_audit.submit_gate_audit(w.oc, w.audit_gate, ch, response)
    # The gate's on-chain accuracy (quantized inputs, argmax of proven outputs) is the off-chain check's
    assert (result.correct, result.sampled) == (offchain.accuracy["correct"], K)
    assert result.passed and not result.breach and result.payout == 0
    assert w.gate.bond(w.model_id)[0] == BOND, "a passing audit pays nothing"
    assert w.auditor.balance() < balance
    [recorded] = w.registry.audits(w.model_id)
    assert recorded.args["version"] == version and recorded.args["passed"] is True
    assert recorded.args["correct"] == result.correct
    assert w.gate.approves(w.model_id, version)
    assert 0 < result.gas_used < 5_000_000
    _warp(w.owner, WINDOW + 1)
    receipt = w.registry.finalize(w.model_id)
    assert [n for n, _ in w.registry.events(receipt)] == ["UpdateFinalized"]
    assert w.registry.model(w.model_id).current_version == version
    print(f"\nGATE submitAudit gas {result.gas_used} (k={K}), finalize gas {receipt.gas_used}")


def test_broken_update_is_refused_and_its_bond_slashed_even_after_cancel(
        w: World, store: Store, broken_circuit: Circuit) -> None:  # noqa: F811
    version = _propose(w, "broken")
    ch = _challenge(w)
    response = audit.respond(ch, TEST_SET, broken_circuit)
    offchain = audit.check_response(response, ch, store=store, min_accuracy=0.5)
    assert not offchain.passed and offchain.check("accuracy").ok is False
    # The owner front-runs the audit with a cancel: the audit still judges the version it opened on
    snap = w.owner.snapshot()
    w.registry.cancel_update(w.model_id)
    balance = w.auditor.balance()
    result = gate_audit.submit_gate_audit(w.oc, w.audit_gate, ch, response, record=False)
    assert (result.correct, result.passed, result.breach) == (offchain.accuracy["correct"], False, True)
    payout = BOND * CONFIG["slash_bps"] // 10_000
    assert result.payout == payout
    fee = result.gas_used * int(w.auditor.rpc("eth_getTransactionReceipt", [result.tx_hash])["effectiveGasPrice"], 16)
    assert w.auditor.balance() == balance + payout - fee
    assert w.gate.bond(w.model_id)[0] == BOND - payout
    w.owner.revert(snap)
    # Not cancelled: the failing audit blocks the version for good
    result = gate_audit.submit_gate_audit(w.oc, w.audit_gate, ch, response)
    assert result.breach and result.payout == payout
    [breach] = w.gate.contract.history("SlaBreached")
    assert breach.args["version"] == version and breach.args["payout"] == payout
    assert breach.args["auditor"] == w.auditor.sender
    tally = w.gate.tally(w.model_id, version)
    assert tally.failed and tally.slashed and tally.open == 0
    _warp(w.owner, WINDOW + 1)
    assert _revert_reason(w.registry.finalize, w.model_id) == "GateRefused"
    assert w.registry.model(w.model_id).current_version == 1


def _submit(w: World, ch: audit.Challenge, rows: list[Any], vrf_proof: Any = None, sender: ValidationGate | None = None,
            version: int | None = None) -> str | None:
    f = ch.fields
    proof, _ = gate_audit.submit_args(ch, _RESP[ch.digest])
    g = sender or w.audit_gate
    return _revert_reason(g.submit_audit, w.model_id, version or f.model_version, f.nonce, f.block_number,
                          vrf_proof or proof, rows)


_RESP: dict[str, audit.Response] = {}


def test_forged_audits_are_refused(w: World, mlp_circuit: Circuit, broken_circuit: Circuit,  # noqa: F811
                                   committed: CommittedDataset) -> None:
    assert _revert_reason(w.audit_gate.open_audit, w.model_id, b"\x05" * 32) == "NoPendingVersion"
    _propose(w, "good")
    ch = _challenge(w)
    response = audit.respond(ch, TEST_SET, mlp_circuit)
    _RESP[ch.digest] = response
    _, rows = gate_audit.submit_args(ch, response)
    # A row outside the committed dataset: another label for the sampled row
    outside = list(rows)
    other = (int(response.rows[0].label) + 1) % 10
    outside[0] = (rows[0][0], rows[0][1], np.asarray([float(other)], dtype=">f8").tobytes(), *rows[0][3:])
    table = [
        ("outside the dataset", outside, "RowNotCommitted"),
        ("rows not the sampled ones (order)", [rows[1], rows[0], *rows[2:]], "NotSampledRow"),
        ("a duplicate row", [rows[0], rows[0], *rows[2:]], "NotSampledRow"),
        ("too few rows", rows[:-1], "RowCountMismatch"),
    ]
    # Proofs of another verifier (the broken model's circuit) for the same rows
    as_broken = replace(ch, model=audit.ExpectedModel(broken_circuit.model_sha256, broken_circuit.files["vk.key"], None))
    _, broken_rows = gate_audit.submit_args(as_broken, audit.respond(as_broken, TEST_SET, broken_circuit))
    assert [r[0] for r in broken_rows] == [r[0] for r in rows]
    table.append(("proofs of another verifier", broken_rows, "RowProofInvalid"))
    # A proof of another row spliced in with the sampled row's evidence
    table.append(("another row's proof", [(*rows[0][:4], rows[1][4], rows[1][5]), *rows[1:]], "InputMismatch"))
    for what, forged, reason in table:
        assert _submit(w, ch, forged) == reason, what
    # Someone else cannot submit the auditor's audit; a wrong version names no opened audit
    assert _submit(w, ch, rows, sender=w.gate) == "NotAuditOpener"
    assert _submit(w, ch, rows, version=1) == "UnknownAudit"
    # A tampered VRF proof
    pk, pi, u, s_h, c_gamma = gate_audit.submit_args(ch, response)[0]
    assert _submit(w, ch, rows, vrf_proof=(pk, pi[:-1] + bytes([pi[-1] ^ 1]), u, s_h, c_gamma)) == "BadVrfProof"
    # The honest audit passes once; the same challenge again is refused, and so is a second audit by the key
    assert _submit(w, ch, rows) is None
    assert _submit(w, ch, rows) == "AuditClosed"
    assert _revert_reason(w.audit_gate.open_audit, w.model_id, b"\x05" * 32) == "AuditAlreadyOpened"
    # The old challenge against the next version: its commitment names version 2
    w.registry.cancel_update(w.model_id)
    _propose(w, "good")
    c3 = gate_audit.open_gate_audit(w.oc, w.audit_gate, key=AUDITOR_VRF, model_id=w.model_id)
    assert c3.model_version == 3
    assert _submit(w, ch, rows, version=3) == "CommitmentMismatch"
    # After the window no audit can be opened
    _warp(w.owner, WINDOW + 1)
    other_auditor = w.gate  # the owner's account has no auditor key
    assert _revert_reason(other_auditor.open_audit, w.model_id, b"\x05" * 32) == "NotAnAuditor"
    assert _revert_reason(w.audit_gate.open_audit, w.model_id, b"\x06" * 32) == "AuditWindowClosed"


def test_config_is_owner_only_and_never_lowered(w: World, committed: CommittedDataset) -> None:
    cfg = w.gate.config(w.model_id)
    assert cfg.require_bps == 5000 and cfg.k == K
    assert _revert_reason(w.gate.configure, w.model_id, replace(cfg, require_bps=4000)) == "ConfigLowered"
    assert _revert_reason(w.gate.configure, w.model_id, replace(cfg, notice_period=TTL - 1)) == "BadConfig"
    assert _revert_reason(w.audit_gate.configure, w.model_id, cfg) == "NotModelOwner"
    assert _revert_reason(w.registry.set_gate, w.model_id, w.auditor.sender) == "GateRefused"
    _propose(w, "good")
    assert _revert_reason(w.gate.configure, w.model_id, replace(cfg, require_bps=6000)) == "UpdatePending"


def test_bond_withdrawal_needs_notice_and_no_open_audit(w: World) -> None:
    assert _revert_reason(w.gate.withdraw_bond, w.model_id) == "NoticeNotOver"
    assert _revert_reason(w.audit_gate.request_withdrawal, w.model_id) == "NotModelOwner"
    w.gate.request_withdrawal(w.model_id)
    assert _revert_reason(w.gate.withdraw_bond, w.model_id) == "NoticeNotOver"
    _warp(w.owner, NOTICE - 300)
    # An update and an audit opened on it; the owner cancels, the audit stays open until it expires
    _propose(w, "good")
    gate_audit.open_gate_audit(w.oc, w.audit_gate, key=AUDITOR_VRF, model_id=w.model_id)
    assert _revert_reason(w.gate.withdraw_bond, w.model_id) == "NoticeNotOver"
    _warp(w.owner, 400)
    assert _revert_reason(w.gate.withdraw_bond, w.model_id) == "UpdatePending"
    w.registry.cancel_update(w.model_id)
    assert _revert_reason(w.gate.withdraw_bond, w.model_id) == "AuditOpen"
    _warp(w.owner, TTL)
    balance = w.owner.balance()
    receipt = w.gate.withdraw_bond(w.model_id)
    fee = receipt.gas_used * int(w.owner.rpc("eth_getTransactionReceipt", [receipt.tx_hash])["effectiveGasPrice"], 16)
    assert w.owner.balance() == balance + BOND - fee
    assert w.gate.bond(w.model_id) == (0, 0)
    assert [n for n, _ in w.gate.events(receipt)] == ["BondWithdrawn"]
    assert _revert_reason(w.gate.withdraw_bond, w.model_id) == "NoBond"


# CLI: registry gate / show / withdraw-bond, and `zkml audit … --onchain` on the pending version


def test_cli_gate_audit_of_the_pending_version(w: World, store: Store, mlp_circuit: Circuit,
                                               committed: CommittedDataset, tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from support import store_of_its_own
    from zkml.evm.deploy import save_records
    from zkml_cli.main import app

    own, circuit = store_of_its_own(store, mlp_circuit, tmp_path / "store")
    save_records(own, w.owner, {"chain_id": w.owner.chain_id, "registry": {"address": w.registry.address},
                                "verifiers": {}, "models": {}})
    runner = CliRunner()
    mid = "0x" + w.model_id.hex()
    chain = ["--rpc-url", w.owner.rpc_url, "--store", str(own.root)]
    auditor_key = tmp_path / "auditor.key"
    auditor_key.write_text(AUDITOR_KEY + "\n")
    auditor_key.chmod(0o600)
    env = {"ZKML_VRF_SK": AUDITOR_VRF.sk.hex(), "ZKML_PRIVATE_KEY": ""}

    def zkml(*args: str, key: bool = False) -> Any:
        return runner.invoke(app, [*args, *chain, *(["--key-file", str(auditor_key)] if key else [])], env=env)

    # The owner raises the SLA bond (the gate is already named: configure + deposit only)
    cfg = w.gate.config(w.model_id)
    r = zkml("registry", "gate", mid, "--require-audit", "0.5", "--sla", "0.5", "--slash", "0.4", "--k", str(K),
             "--rows", str(cfg.n_rows), "--input-scale", str(cfg.input_scale), "--audit-ttl", str(TTL),
             "--notice", str(NOTICE), "--bond", "0.5", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["bond_wei"] == BOND + 5 * 10**17 and set(out["txs"]) == {"configure", "deposit"}
    r = zkml("registry", "gate", mid, "--require-audit", "0.25", "--sla", "0.5", "--k", str(K), "--rows",
             str(cfg.n_rows), "--audit-ttl", str(TTL), "--notice", str(NOTICE))
    assert r.exit_code == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ") and "only be raised" in r.stderr
    version = _propose(w, "good")
    r = zkml("registry", "show", mid)
    assert r.exit_code == 0, r.stderr
    assert f"gate               {w.gate.address}: require 50.00% on {K} rows" in r.stdout
    assert "bond               1.5 ETH" in r.stdout and f"pending v{version} audits 0 passed" in r.stdout
    # The auditor: open (commit), reveal, the owner responds, the auditor checks on chain through the gate
    commit, challenge, response = (tmp_path / n for n in ("commit.json", "challenge.json", "response.json"))
    r = zkml("audit", "commit", "--pending", "--model", mid, "--k", str(K), "--rows", str(cfg.n_rows),
             "--registry", w.registry.address, "-o", str(commit), "--json", key=True)
    assert r.exit_code == 0, r.stderr
    opened = json.loads(r.stdout)
    assert opened["gate"] == w.gate.address and opened["model_version"] == version
    w.owner.rpc("evm_mine", [])
    w.owner.rpc("evm_mine", [])
    r = zkml("audit", "challenge", "--onchain", "--from-commit", str(commit), "--registry", w.registry.address,
             "-o", str(challenge), "--ledger", str(tmp_path / "ledger.json"), key=True)
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["audit", "respond", str(challenge), "--data", str(TEST_SET), "--circuit",
                            circuit.circuit_id, "-o", str(response), "--store", str(own.root)])
    assert r.exit_code == 0, r.stderr
    r = zkml("audit", "check", str(response), "--challenge", str(challenge), "--min-accuracy", "0.5", "--onchain",
             "--registry", w.registry.address, "--circuit", circuit.circuit_id, "--json", key=True)
    assert r.exit_code == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    gate = report["onchain"]["gate"]
    assert gate["passed"] and gate["correct"] == report["accuracy"]["correct"] and gate["payout"] == 0
    assert [c for c in report["checks"] if c["name"] == "gate_onchain"][0]["ok"] is True
    assert w.gate.approves(w.model_id, version)
    # The owner's bond: request, then refused until the notice period is over (one line)
    w.registry.cancel_update(w.model_id)
    r = zkml("registry", "withdraw-bond", mid, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["action"] == "requested"
    r = zkml("registry", "withdraw-bond", mid)
    assert r.exit_code == 2 and "can be withdrawn from" in r.stderr
    _warp(w.owner, NOTICE + 1)
    r = zkml("registry", "withdraw-bond", mid)
    assert r.exit_code == 0, r.stderr
    assert "withdrew 1.5 ETH" in r.stdout and w.gate.bond(w.model_id) == (0, 0)
