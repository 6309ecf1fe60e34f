"""Red team: an audit accepts only rows and outputs bound to the proofs, and a sample nobody could grind.

Real proofs through two session MLP circuits (public input/output, and hashed
input/output), real secp256k1 VRF, a real anvil with the registry for the
commit-reveal cases, and the gate's config loader. Each row of a table is one
attack, made the way the attacker would make it (editing the response file,
splicing in other real proofs, publishing a commitment of its own); the check
named in the row must catch it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_utils import keccak

from support import CALIBRATION, MLP, TEST_SET
from zkml import audit, vrf
from zkml.audit import AuditError, BlockRef, Challenge, ExpectedModel, Response
from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.commitments import CommittedDataset, build_commitment, hex32, row_leaf
from zkml.errors import ConfigError
from zkml.inputs import load_samples
from zkml.keys import VrfKey
from zkml.prove import prove
from zkml.store import Store
from zkml.util import sha256_json

AUDITOR = VrfKey(vrf.SECP256K1, bytes.fromhex("5b1c0a1e5b2d4c3a9e8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928"))
LOCAL_BLOCK = BlockRef(0, 0, keccak(text="red team block"), "auditor")
MODEL_NAME = "digits_mlp"
K = 2


# Fixtures: two circuits, an honest response for each, and other real proofs to splice in


@pytest.fixture(scope="module")
def committed() -> CommittedDataset:
    return build_commitment(TEST_SET)


@pytest.fixture(scope="module")
def hashed_circuit(store: Store) -> Circuit:
    """The digits MLP with its input and its output committed by Poseidon hashes (the instances hold only hashes)."""
    cal = load_samples(CALIBRATION, (64,))
    circuit, _ = compile_model(MLP, cal, CircuitOptions(input_visibility="hashed", output_visibility="hashed"),
                               store=store)
    return circuit


@pytest.fixture(scope="module")
def private_circuit(store: Store) -> Circuit:
    cal = load_samples(CALIBRATION, (64,))
    circuit, _ = compile_model(MLP, cal, CircuitOptions(input_visibility="private"), store=store)
    return circuit


def _circuit(request: pytest.FixtureRequest, kind: str) -> Circuit:
    return request.getfixturevalue("mlp_circuit" if kind == "public" else "hashed_circuit")


def local_challenge(circuit: Circuit, committed: CommittedDataset, nonce: bytes = bytes(32)) -> Challenge:
    c = committed.commitment
    return audit.issue_challenge(
        key=AUDITOR, model_id=audit.parse_model_id(MODEL_NAME), dataset_root=c.root, n_rows=c.n_rows, k=K,
        model=ExpectedModel(circuit.model_sha256, circuit.files["vk.key"], circuit.circuit_id), block=LOCAL_BLOCK,
        nonce=nonce,
    )


_HONEST: dict[str, tuple[Challenge, Response]] = {}


def honest_for(request: pytest.FixtureRequest, kind: str) -> tuple[Challenge, Response]:
    """The honest owner's response to a local challenge on ``kind``'s circuit (proven once per module)."""
    if kind not in _HONEST:
        circuit = _circuit(request, kind)
        ch = local_challenge(circuit, request.getfixturevalue("committed"))
        _HONEST[kind] = (ch, audit.respond(ch, TEST_SET, circuit))
    return _HONEST[kind]


@pytest.fixture(scope="module", autouse=True)
def _forget_honest() -> Iterator[None]:
    yield
    _HONEST.clear()


def check(response: Response, expected: Challenge, store: Store, **kw: Any) -> audit.AuditReport:
    kw.setdefault("min_accuracy", 0.0)
    return audit.check_response(response, expected, store=store, **kw)


def edited(response: Response, change: Callable[[dict[str, Any]], None]) -> Response:
    doc = copy.deepcopy(response.to_json())
    change(doc)
    return Response.from_json(json.loads(json.dumps(doc)))


def splice(doc: dict[str, Any], other: Bundle, p: int = 0) -> None:
    """Put ``other``'s single proof (and its own input and output values) in place of sample ``p``'s."""
    b, o = doc["bundle"], other.to_json()
    b["input"]["values"][p] = o["input"]["values"][0]
    b["input"]["sha256"] = sha256_json(b["input"]["values"]) if b["input"].get("sha256") else b["input"].get("sha256")
    b["outputs"]["values"][p] = o["outputs"]["values"][0]
    b["proofs"][p] = {**o["proofs"][0], "first_sample": b["proofs"][p]["first_sample"]}


def failed(report: audit.AuditReport) -> set[str]:
    return {c.name for c in report.checks if c.ok is False}


# The table: rows and outputs not bound to the proofs


def _row_differs(request: pytest.FixtureRequest, kind: str, ch: Challenge, resp: Response) -> Response:
    """The owner proves row j instead of sampled row i, and reveals row i's honest (committed) evidence."""
    x = np.load(TEST_SET)["x"]
    j = next(i for i in range(len(x)) if i not in ch.indices)
    other = prove(_circuit(request, kind), x[j : j + 1], reveal_input=True)
    return edited(resp, lambda d: splice(d, other))


def _outputs_edited(request: pytest.FixtureRequest, kind: str, ch: Challenge, resp: Response) -> Response:
    """The owner rewrites the first row's outputs so that the prediction is the committed label."""
    label = int(resp.rows[0].label)

    def change(d: dict[str, Any]) -> None:
        fake = [0.0] * len(d["bundle"]["outputs"]["values"][0])
        fake[label] = 100.0
        d["bundle"]["outputs"]["values"][0] = fake
        felts = d["bundle"]["proofs"][0].get("output_felts")
        if felts:  # hashed output: the claimed preimage too
            d["bundle"]["proofs"][0]["output_felts"] = [(int(label == i) * 6400).to_bytes(32, "little").hex()
                                                        for i in range(len(felts))]

    return edited(resp, change)


def _row_outside(request: pytest.FixtureRequest, kind: str, ch: Challenge, resp: Response) -> Response:
    """The owner proves a row that is not in the dataset (row i, one pixel changed), with a leaf of its own."""
    x = np.load(TEST_SET)["x"]
    i = ch.indices[0]
    row = x[i].copy()
    row[0] = 0.5 if row[0] != 0.5 else 0.25
    other = prove(_circuit(request, kind), row[None, :], reveal_input=True)

    def change(d: dict[str, Any]) -> None:
        splice(d, other)
        r = d["rows"][0]
        r["features"] = [float(v) for v in row]
        r["leaf"] = hex32(row_leaf(i, row.astype(np.float64), r["label"]))

    return edited(resp, change)


ATTACKS = [
    # (circuit, attack, the check that must fail, a check that must still pass: only the binding catches it)
    ("public", _row_differs, "inputs", "rows"),
    ("hashed", _row_differs, "inputs", "rows"),
    ("public", _outputs_edited, "snark", "outputs"),  # the predictions come from the instances: the edit is ignored
    ("hashed", _outputs_edited, "outputs", "rows"),    # a preimage that does not hash to the commitment
    ("public", _row_outside, "rows", "inputs"),
    ("hashed", _row_outside, "rows", "inputs"),
]


@pytest.mark.parametrize(("kind", "attack", "caught_by", "still_ok"), ATTACKS,
                         ids=[f"{a[0]}-{a[1].__name__.strip('_')}" for a in ATTACKS])
def test_unbound_rows_and_outputs_are_refused(request: pytest.FixtureRequest, store: Store, kind: str,
                                              attack: Callable[..., Response], caught_by: str, still_ok: str) -> None:
    ch, resp = honest_for(request, kind)
    honest_report = check(resp, ch, store)
    assert honest_report.passed, honest_report.failures()
    report = check(attack(request, kind, ch, resp), ch, store)
    assert not report.passed
    assert report.check(caught_by).ok is False, report.failures()
    assert report.check(still_ok).ok is True, report.failures()
    # The accuracy is never computed from values the proofs do not bind
    if report.check("outputs").ok:
        assert report.accuracy["rows"][1:] == honest_report.accuracy["rows"][1:]
        if attack is _outputs_edited:
            assert report.accuracy["rows"] == honest_report.accuracy["rows"]
    else:
        assert report.accuracy["total"] == K and "no proven outputs" in report.check("accuracy").detail


def test_honest_hashed_audit_reads_the_commitments(request: pytest.FixtureRequest, store: Store) -> None:
    ch, resp = honest_for(request, "hashed")
    assert all(len(e.instances[0]) == 2 for e in resp.bundle.proofs)  # only the two Poseidon hashes are public
    report = check(resp, ch, store)
    assert report.passed, report.failures()
    assert "open the proofs' Poseidon input commitments" in report.check("inputs").detail
    assert "Poseidon preimages" in report.check("outputs").detail


def test_private_input_cannot_be_audited(request: pytest.FixtureRequest, store: Store, private_circuit: Circuit,
                                         committed: CommittedDataset) -> None:
    """Nothing binds a revealed row to a proof of a private input: refused with one line, not judged."""
    ch, resp = honest_for(request, "public")
    with pytest.raises(AuditError, match="keeps its input private: nothing binds the revealed rows") as e:
        check(resp, ch, store, artifacts=private_circuit.artifacts())
    assert "\n" not in e.value.message
    with pytest.raises(AuditError, match="keeps its input private"):
        audit.respond(local_challenge(private_circuit, committed), TEST_SET, private_circuit)


# The table: a sample the auditor could have ground


@pytest.fixture(scope="module")
def chain_world(store: Store, mlp_circuit: Circuit, committed: CommittedDataset,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[audit.OnChain]:
    """A private anvil with a registry holding the MLP (``digits_mlp``, with the test set's root)."""
    from zkml.evm import vrf_onchain
    from zkml.evm.anvil import Anvil
    from zkml.evm.chain import connect
    from zkml.evm.registry import InstanceLayout, ModelRecord, Registry
    from zkml.evm.verifier import compile_verifier, deploy_verifier, generate_verifier

    cache = store.root / "solc-cache"
    art = generate_verifier(mlp_circuit.vk, mlp_circuit.settings_path, mlp_circuit.srs.path,
                            tmp_path_factory.mktemp("redteam-verifier"))
    compiled = compile_verifier(art, cache_dir=cache)
    with Anvil.start() as node:
        chain = connect(node.rpc_url, allow_dev_key=True)
        dep = deploy_verifier(chain, compiled)
        registry = Registry.deploy(chain, challenge_window=0, cache_dir=cache)
        registry.register(MODEL_NAME, ModelRecord.for_deployment(
            dep, onnx_sha256=mlp_circuit.model_sha256, vk_digest=mlp_circuit.files["vk.key"],
            layout=InstanceLayout.from_settings(mlp_circuit.settings_path), dataset_root=committed.commitment.root))
        yield audit.OnChain(chain, registry, vrf_onchain.deploy_verifier(chain, vrf_onchain.compile_verifier(cache_dir=cache)),
                            cache)


@pytest.fixture
def world(chain_world: audit.OnChain) -> Iterator[audit.OnChain]:
    snap = chain_world.chain.snapshot()
    try:
        yield chain_world
    finally:
        chain_world.chain.revert(snap)


def _mine_to(onchain: audit.OnChain, block: int) -> None:
    while onchain.chain.block_number() < block:
        onchain.chain.rpc("evm_mine", [])


def _honest_onchain(onchain: audit.OnChain, circuit: Circuit) -> tuple[audit.AuditCommit, Challenge]:
    c = audit.commit_onchain_challenge(onchain, key=AUDITOR, model_id=onchain.registry.model_id(MODEL_NAME), k=K,
                                       n_rows=360, circuit=circuit)
    _mine_to(onchain, c.commit.target_block)
    ch, _ = audit.issue_onchain_challenge(onchain, c, key=AUDITOR, post=False)
    return c, ch


def _reissue(onchain: audit.OnChain, c: audit.AuditCommit, nonce: bytes, number: int,
             commit: audit.NonceCommitment | None) -> Challenge:
    """A challenge the auditor makes by hand: its own nonce and block (hash read from the chain), a commit of its choice."""
    from zkml.audit.onchain import _block_hash

    block = BlockRef(onchain.chain.chain_id, number, _block_hash(onchain.chain, number), "chain")
    ch = audit.issue_challenge(key=AUDITOR, model_id=c.model_id, dataset_root=c.dataset_root, n_rows=c.n_rows, k=c.k,
                               model=c.model, block=block, model_version=c.model_version, nonce=nonce,
                               registry=onchain.registry.address, activation_block=c.activation_block)
    return replace(ch, commit=commit)


def _publish(onchain: audit.OnChain, fields: audit.AlphaFields, k: int) -> audit.NonceCommitment:
    """The auditor publishes a commitment of its own making (bypassing the library's checks)."""
    commitment = audit.commitment_of(fields, k, AUDITOR.pk)
    r = onchain.chain.send_raw(onchain.chain.sender, audit.COMMIT_DOMAIN + commitment)
    return audit.NonceCommitment(commitment, fields.block_number, r.tx_hash, r.block, onchain.chain.sender)


def _ground_nonce(world: audit.OnChain, c: audit.AuditCommit, ch: Challenge) -> Challenge:
    """After seeing the block hash, another nonce (one that draws other rows) with the honest commitment."""
    for i in range(1, 100):
        forged = _reissue(world, c, i.to_bytes(32, "big"), c.commit.target_block, c.commit)
        if forged.indices != ch.indices:
            return forged
    raise AssertionError("no other sample in 100 nonces")


def _past_block(world: audit.OnChain, c: audit.AuditCommit, ch: Challenge) -> Challenge:
    """A commitment naming a block that was already mined when the commitment was published."""
    target = world.chain.block_number()
    commit = _publish(world, replace(c.fields(bytes(32)), block_number=target), c.k)
    return _reissue(world, c, c.nonce, target, commit)


def _lied_commit_block(world: audit.OnChain, c: audit.AuditCommit, ch: Challenge) -> Challenge:
    """The past-block commitment again, with the challenge claiming it was published earlier than it was."""
    forged = _past_block(world, c, ch)
    assert forged.commit is not None
    return replace(forged, commit=replace(forged.commit, block=forged.commit.target_block - 1))


def _no_commit(world: audit.OnChain, c: audit.AuditCommit, ch: Challenge) -> Challenge:
    """An on-chain challenge with no commitment at all (nonce and block picked at will)."""
    return _reissue(world, c, keccak(text="whatever suits me"), world.chain.block_number(), None)


def _hash_given(world: audit.OnChain, c: audit.AuditCommit, ch: Challenge) -> Challenge:
    """The committed nonce, but a block hash the auditor chose instead of the chain's."""
    f = replace(ch.fields, block_hash=keccak(text="my own block hash"))
    forged = audit.issue_challenge(key=AUDITOR, model_id=f.model_id, dataset_root=f.dataset_root, n_rows=f.n_rows,
                                   k=ch.k, model=ch.model, block=BlockRef(f.chain_id, f.block_number, f.block_hash,
                                                                           "chain"),
                                   model_version=f.model_version, nonce=f.nonce, registry=ch.registry,
                                   activation_block=ch.activation_block, commit=ch.commit)
    return forged


GRINDS = [
    (_ground_nonce, "commit", "does not open the commitment", False),
    (_past_block, "commit", "not before block", False),
    (_lied_commit_block, "commit", "not the challenge's commitment in block", True),
    (_no_commit, "commit", "no nonce commitment", False),
    (_hash_given, "block", "the challenge says", True),
]


@pytest.mark.parametrize(("forge", "caught_by", "message", "needs_chain"), GRINDS,
                         ids=[g[0].__name__.strip("_") for g in GRINDS])
def test_ground_or_past_block_challenges_are_refused(request: pytest.FixtureRequest, world: audit.OnChain,
                                                     store: Store, mlp_circuit: Circuit,
                                                     forge: Callable[..., Challenge], caught_by: str, message: str,
                                                     needs_chain: bool) -> None:
    any_response = honest_for(request, "public")[1]  # only the challenge-side checks are read below
    c, ch = _honest_onchain(world, mlp_circuit)
    forged = forge(world, c, ch)
    assert forged.vrf_problem() is None  # every forgery is a valid VRF proof of its own alpha
    # Offline (no chain given): what the challenge alone shows
    offline = forged.commit_problem()
    if needs_chain:
        assert offline is None or message in offline
    else:
        assert offline is not None and message in offline
    # The owner's tooling refuses to answer it when the forgery shows offline
    if not needs_chain:
        with pytest.raises(AuditError, match="refusing to answer an invalid challenge"):
            audit.respond(forged, TEST_SET, mlp_circuit)
    # With the chain: the check re-reads the commitment transaction and the block hash
    report = _check_challenge_only(world, store, forged, any_response)
    assert report.check(caught_by).ok is False and message in report.check(caught_by).detail, report.failures()
    honest = _check_challenge_only(world, store, ch, any_response)
    assert honest.check("commit").ok is True and honest.check("block").ok is True, honest.failures()


def _check_challenge_only(world: audit.OnChain, store: Store, challenge: Challenge,
                          response: Response) -> audit.AuditReport:
    """Judge ``challenge`` through check_response with some response (only the challenge-side checks are read)."""
    resp = replace(response, challenge=challenge, challenge_digest=challenge.digest)
    return check(resp, challenge, store, onchain=world, record=False)


def test_honest_commit_reveal_passes_end_to_end(world: audit.OnChain, store: Store, mlp_circuit: Circuit) -> None:
    c, ch = _honest_onchain(world, mlp_circuit)
    assert ch.commit == c.commit and ch.commit.block < ch.fields.block_number
    report = check(audit.respond(ch, TEST_SET, mlp_circuit), ch, store, onchain=world, record=False)
    assert report.passed, report.failures()
    assert "whose hash alpha mixes in" in report.check("commit").detail


# The gate: a pinned alpha is a grind unless it is declared a replay


@pytest.mark.parametrize(("sample", "message"), [
    ('alpha = "00ff"', "sample.alpha pins the VRF input, so the sample can be ground"),
    ('alpha = "00ff"\nreplay = false', "sample.alpha pins the VRF input"),
    ("replay = true", "needs the recorded sample.alpha"),
    ('alpha = "00ff"\nreplay = true', None),
])
def test_gate_refuses_a_pinned_alpha_unless_replay(tmp_path: Path, sample: str, message: str | None) -> None:
    from zkml.gate import load_config

    cfg = tmp_path / "zkml.toml"
    cfg.write_text(f'[test_set]\npath = "{TEST_SET}"\n[sample]\nsize = 2\n{sample}\n[[models]]\npath = "{MLP}"\n'
                   f'calibration = "{CALIBRATION}"\n')
    if message is None:
        c = load_config(cfg)
        assert c.sample.replay is True and c.sample.alpha == b"\x00\xff"
    else:
        with pytest.raises(ConfigError, match=message):
            load_config(cfg)
