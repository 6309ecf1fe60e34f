"""ModelRegistry.sol through its Python client, against a real anvil with real proofs.

Models registered once per session (see tests/onchain/conftest.py): ``model-a`` and
``model-b`` are two different Linear(4,3)+ReLU circuits with fixed params and
the same instance layout; ``model-h`` hashes its params, so the proof carries
the weights commitment. Every test runs between evm_snapshot / evm_revert.
"""

from __future__ import annotations

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
from eth_utils import keccak

from zkml.errors import ConfigError
from zkml.evm.chain import Chain, keccak_words
from zkml.evm.registry import (
    InstanceLayout,
    ModelRecord,
    Registry,
    RegistryError,
    commit,
    proposal_commitments,
    to_model_id,
)
from zkml.evm.verifier import read_proof

AUDITOR_VRF_SK = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")


def stranger(registry: Registry) -> Registry:
    return as_key(registry, STRANGER_KEY)


def emergency(registry: Registry) -> Registry:
    return as_key(registry, EMERGENCY_KEY)


def mid(registry: Registry, name: str = "model-a") -> bytes:
    """The id of one of the session's models (registered by the first dev account)."""
    return registry.model_id(name)


def propose_b_as_a(world: World, *, honest: bool, prediction: bytes | None = None) -> tuple[int, int]:
    """Propose model-a -> circuit b, committing to TEST_INPUT and a predicted output.

    Honest: b's real output on it. Dishonest: a's output (claiming nothing changes), or ``prediction``.
    """
    a, b = world.circuits["a"], world.circuits["b"]
    layout = b.layout()
    test_in, b_out = proposal_commitments(layout, b.proof)
    _, a_out = proposal_commitments(a.layout(), a.proof)
    assert b_out != a_out, "the two circuits must disagree on the test input"
    predicted = b_out if honest else (prediction or a_out)
    version, deadline, _ = world.registry.propose_update(
        "model-a", record_for(b, world.deployments["b"]), test_in, predicted
    )
    return version, deadline


# Registration and verification


def test_registered_model_verifies_through_registry(registry: Registry, world: World) -> None:
    info = registry.model("model-a")
    assert info.current_version == 1 and info.latest_version == 1 and not info.paused and info.pending is None
    assert info.owner == registry.chain.sender
    assert info.record.verifier == world.deployments["a"].address
    assert info.record.metadata_uri == "ipfs://zkml-test/a"
    assert registry.verify("model-a", world.circuits["a"].proof) is True
    assert registry.verify("model-h", world.circuits["h"].proof) is True


def test_verify_and_record_emits_proof_verified(registry: Registry, world: World) -> None:
    proof = world.circuits["a"].proof
    receipt = registry.verify_and_record("model-a", proof)
    events = dict(registry.events(receipt))
    ev = events["ProofVerified"]
    assert ev["modelId"] == mid(registry)
    assert ev["version"] == 1
    assert ev["instancesHash"] == keccak_words(read_proof(proof)[1])
    assert ev["submitter"] == registry.chain.sender
    assert 200_000 < receipt.gas_used < 2_000_000
    assert registry.recorded_by("model-a", proof) == registry.chain.sender


def test_proof_of_model_a_is_refused_for_model_b(registry: Registry, world: World) -> None:
    a_proof = world.circuits["a"].proof
    assert registry.verify("model-b", a_proof) is False
    with pytest.raises(RegistryError, match="rejected the proof for model .* version 1"):
        registry.verify_and_record("model-b", a_proof)
    # A circuit with another instance layout is refused before the verifier runs.
    with pytest.raises(RegistryError, match="carries 7 public instances but the model expects 8"):
        registry.verify("model-h", a_proof)


def test_other_weights_commitment_is_refused(registry: Registry, world: World) -> None:
    h = world.circuits["h"]
    registry.register("model-h-other-weights",
                      record_for(h, world.deployments["h"], weights_commitment=b"\x01" * 32))
    with pytest.raises(RegistryError, match="weights commitment .* is not the registered 0x0101"):
        registry.verify("model-h-other-weights", h.proof)


TAMPERED = {
    "proof byte": lambda p: {**p, "hex_proof": p["hex_proof"][:200] + ("0" if p["hex_proof"][200] != "0" else "1")
                             + p["hex_proof"][201:]},
    "output": lambda p: {**p, "instances": [p["instances"][0][:-1] + ["01" + "00" * 31]]},
}


@pytest.mark.parametrize("what", list(TAMPERED))
def test_tampered_proof_through_registry(what: str, registry: Registry, world: World) -> None:
    bad = TAMPERED[what](world.circuits["a"].proof_json())
    assert registry.verify("model-a", bad) is False
    with pytest.raises(RegistryError, match="rejected the proof"):
        registry.verify_and_record("model-a", bad)


def test_reusable_verifier_through_registry(registry: Registry, world: World) -> None:
    a = world.circuits["a"]
    dep = world.deployments["a_reusable"]
    registry.register("model-a-reusable", record_for(a, dep))
    assert registry.record("model-a-reusable", 1).vka == dep.vka_address
    assert registry.verify("model-a-reusable", a.proof) is True
    assert registry.verify("model-a-reusable", world.circuits["b"].proof) is False


def test_register_checks(registry: Registry, world: World) -> None:
    a = world.circuits["a"]
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("model-a", record_for(a, world.deployments["a"]))
    eoa = ModelRecord(verifier=registry.chain.sender or "", onnx_sha256=b"\x00" * 32, vk_digest=b"\x00" * 32,
                      layout=a.layout())
    with pytest.raises(RegistryError, match="verifier not deployed"):
        registry.register("model-eoa", eoa)
    broken = InstanceLayout(7, 0, 4, 0, 0, 5, 3)
    with pytest.raises(RegistryError, match="layout is inconsistent"):
        registry.register("model-broken", record_for(a, world.deployments["a"], layout=broken))
    with pytest.raises(RegistryError, match="weights commitment is zero"):
        registry.register("model-h-zero", record_for(world.circuits["h"], world.deployments["h"],
                                                     weights_commitment=None))
    with pytest.raises(RegistryError, match="model 0x[0-9a-f]{64} is not registered"):
        registry.model("never-registered")
    with pytest.raises(RegistryError, match="code hash"):
        registry.register("model-wrong-hash", record_for(a, world.deployments["a"],
                                                         verifier_code_hash=b"\x01" * 32))


def test_non_owner_writes_revert(registry: Registry, world: World) -> None:
    other = stranger(registry)
    b = world.circuits["b"]
    test_in, out = proposal_commitments(b.layout(), b.proof)
    a_id = mid(registry)
    with pytest.raises(RegistryError, match="is not the owner of model"):
        other.propose_update(a_id, record_for(b, world.deployments["b"]), test_in, out)
    with pytest.raises(RegistryError, match="is not the owner of model"):
        other.transfer_ownership(a_id, other.chain.sender or "")
    for action in (other.pause, other.rollback, registry.pause):  # the admin holds no emergency role
        with pytest.raises(RegistryError, match="lacks the registry role"):
            action(a_id)
    # Anyone may read and verify.
    assert other.verify(a_id, world.circuits["a"].proof) is True


def test_ownership_transfer(registry: Registry, world: World) -> None:
    other = stranger(registry)
    registry.transfer_ownership("model-a", other.chain.sender or "")
    assert registry.model("model-a").owner == other.chain.sender
    with pytest.raises(RegistryError, match="is not the owner"):
        registry.transfer_ownership("model-a", registry.chain.sender or "")


# Updates and the challenge window


def test_early_finalize_reverts_then_update_applies_after_window(registry: Registry, world: World,
                                                                 chain: Chain) -> None:
    version, deadline = propose_b_as_a(world, honest=True)
    assert version == 2 and deadline - chain.timestamp() <= CHALLENGE_WINDOW
    assert registry.version_status("model-a", 2) == "pending"
    # The pending version is not in force yet.
    assert registry.verify("model-a", world.circuits["a"].proof) is True
    with pytest.raises(RegistryError, match="challenge window of model .* is open until"):
        registry.finalize("model-a")
    with pytest.raises(RegistryError, match="already has update v2 pending"):
        propose_b_as_a(world, honest=True)
    chain.increase_time(CHALLENGE_WINDOW)
    registry.finalize("model-a")
    info = registry.model("model-a")
    assert info.current_version == 2 and info.pending is None
    assert info.record.verifier == world.deployments["b"].address
    assert registry.version_status("model-a", 2) == "accepted"
    assert registry.verify("model-a", world.circuits["b"].proof) is True
    assert registry.verify("model-a", world.circuits["a"].proof) is False
    with pytest.raises(RegistryError, match="no pending update"):
        registry.finalize("model-a")


def test_successful_challenge_rejects_update(registry: Registry, world: World, chain: Chain) -> None:
    version, _ = propose_b_as_a(world, honest=False)
    challenger = stranger(registry)
    receipt = challenger.challenge(mid(registry), world.circuits["b"].proof)
    (name, ev), = [e for e in registry.events(receipt) if e[0] == "UpdateChallenged"]
    assert ev["version"] == version and ev["challenger"] == challenger.chain.sender
    assert registry.version_status("model-a", version) == "rejected"
    info = registry.model("model-a")
    assert info.pending is None and info.current_version == 1
    chain.increase_time(CHALLENGE_WINDOW)
    with pytest.raises(RegistryError, match="no pending update"):
        registry.finalize("model-a")
    assert registry.verify("model-a", world.circuits["a"].proof) is True


def test_unsuccessful_challenge_reverts(registry: Registry, world: World) -> None:
    propose_b_as_a(world, honest=True)
    with pytest.raises(RegistryError, match="output matches the proposer's prediction"):
        stranger(registry).challenge(mid(registry), world.circuits["b"].proof)
    assert registry.model("model-a").pending is not None


CHALLENGE_FAILURES: dict[str, tuple[str, str]] = {
    # proof used -> expected reason
    "input is not the committed test input": ("b_other", "not the committed test input"),
    "proof of the current model, not the proposed one": ("a", "rejected the proof"),
    "tampered proof": ("b_tampered", "rejected the proof"),
}


@pytest.mark.parametrize("case", list(CHALLENGE_FAILURES))
def test_challenge_needs_a_valid_proof_on_the_test_input(case: str, registry: Registry, world: World) -> None:
    propose_b_as_a(world, honest=False, prediction=commit([1, 2, 3]))
    which, reason = CHALLENGE_FAILURES[case]
    proofs: dict[str, Any] = {
        "b_other": world.circuits["b"].other_proof,
        "a": world.circuits["a"].proof,
        "b_tampered": _tamper(world.circuits["b"].proof_json()),
    }
    with pytest.raises(RegistryError, match=reason):
        registry.challenge("model-a", proofs[which])


def _tamper(p: dict[str, Any]) -> dict[str, Any]:
    h = p["hex_proof"]
    return {**p, "hex_proof": h[:300] + ("0" if h[300] != "0" else "1") + h[301:]}


def test_challenge_after_window_reverts(registry: Registry, world: World, chain: Chain) -> None:
    propose_b_as_a(world, honest=False)
    chain.increase_time(CHALLENGE_WINDOW)
    with pytest.raises(RegistryError, match="challenge window of model .* closed at"):
        registry.challenge("model-a", world.circuits["b"].proof)


def test_cancel_update(registry: Registry, world: World) -> None:
    version, _ = propose_b_as_a(world, honest=True)
    with pytest.raises(RegistryError, match="is not the owner"):
        stranger(registry).cancel_update(mid(registry))
    registry.cancel_update("model-a")
    assert registry.version_status("model-a", version) == "cancelled"
    assert registry.model("model-a").pending is None


def test_update_requires_test_commitments(registry: Registry, world: World) -> None:
    b = world.circuits["b"]
    with pytest.raises(RegistryError, match="test-input and predicted-output commitments"):
        registry.propose_update("model-a", record_for(b, world.deployments["b"]), b"\x00" * 32, b"\x00" * 32)


# Emergency controls


def test_pause_blocks_verification(registry: Registry, world: World) -> None:
    proof = world.circuits["a"].proof
    em = emergency(registry)
    em.pause(mid(registry))
    assert registry.model("model-a").paused
    with pytest.raises(RegistryError, match="model 0x[0-9a-f]+ is paused"):
        registry.verify("model-a", proof)
    with pytest.raises(RegistryError, match="is paused"):
        registry.verify_and_record("model-a", proof)
    with pytest.raises(RegistryError, match="is paused"):
        em.pause(mid(registry))
    assert registry.verify("model-b", world.circuits["b"].proof) is True  # other models unaffected
    em.unpause(mid(registry))
    assert registry.verify("model-a", proof) is True
    with pytest.raises(RegistryError, match="is not paused"):
        em.unpause(mid(registry))


def test_rollback_restores_previous_version(registry: Registry, world: World, chain: Chain) -> None:
    with pytest.raises(RegistryError, match="no earlier accepted version"):
        emergency(registry).rollback(mid(registry))
    propose_b_as_a(world, honest=True)
    chain.increase_time(CHALLENGE_WINDOW)
    registry.finalize("model-a")
    assert registry.verify("model-a", world.circuits["b"].proof) is True
    emergency(registry).rollback(mid(registry))
    info = registry.model("model-a")
    assert info.current_version == 1 and info.latest_version == 2
    assert info.record.verifier == world.deployments["a"].address
    assert registry.version_status("model-a", 2) == "revoked"
    assert registry.verify("model-a", world.circuits["a"].proof) is True
    assert registry.verify("model-a", world.circuits["b"].proof) is False


def test_emergency_role_can_be_granted(registry: Registry, world: World) -> None:
    other = stranger(registry)
    registry.grant_emergency_role(other.chain.sender or "")
    other.pause(mid(registry, "model-b"))
    assert registry.model("model-b").paused
    # never to an admin: admin and emergency stay separate keys
    with pytest.raises(RegistryError, match="holds another registry role|RolesNotSeparate"):
        registry.grant_emergency_role(registry.chain.sender or "")


# Audit trail


def test_history_is_read_from_events(registry: Registry, world: World, chain: Chain) -> None:
    propose_b_as_a(world, honest=True)
    chain.increase_time(CHALLENGE_WINDOW)
    registry.finalize("model-a")
    em = emergency(registry)
    em.pause(mid(registry))
    em.unpause(mid(registry))
    em.rollback(mid(registry))
    registry.verify_and_record("model-a", world.circuits["a"].proof)
    names = [e.name for e in registry.history("model-a")]
    assert names == ["ModelRegistered", "UpdateProposed", "UpdateFinalized", "ModelPaused", "ModelUnpaused",
                     "RolledBack", "ProofVerified"]
    first = registry.history("model-a")[0]
    assert first.args["record"]["verifier"] == world.deployments["a"].address
    assert first.args["record"]["layout"]["total"] == 7
    proposed = registry.history("model-a")[1].args
    assert proposed["record"]["verifier"] == world.deployments["b"].address
    # Another model's trail is separate.
    assert [e.name for e in registry.history("model-b")] == ["ModelRegistered"]


# Dataset root (OpenZeppelin MerkleProof: keccak256 leaves, sorted-pair hashing)


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


def test_dataset_membership(registry: Registry, world: World) -> None:
    leaves = [keccak(f"row-{i}".encode()) for i in range(4)]
    n01, n23 = _pair(leaves[0], leaves[1]), _pair(leaves[2], leaves[3])
    root = _pair(n01, n23)
    a = world.circuits["a"]
    registry.register("model-with-data", record_for(a, world.deployments["a"], dataset_root=root))
    assert registry.verify_dataset_member("model-with-data", [leaves[3], n01], leaves[2]) is True
    assert registry.verify_dataset_member("model-with-data", [leaves[3], n01], keccak(b"row-9")) is False
    with pytest.raises(RegistryError, match="has no dataset root"):
        registry.verify_dataset_member("model-a", [], leaves[0])


# Commitment encoding and layouts


def test_commit_encoding_matches_contract(registry: Registry) -> None:
    values = [0, 1, 2**255, 123456789]
    assert registry.contract.call("commit", values) == commit(values) == keccak(
        b"".join(v.to_bytes(32, "big") for v in values))


def _settings(inp: Any, par: Any, out: Any, hashed: int) -> dict[str, Any]:
    shapes = ([[1, 4]] if inp == "Public" else []) + ([[1, 3]] if out == "Public" else [])
    return {
        "run_args": {"input_visibility": inp, "param_visibility": par, "output_visibility": out},
        "model_instance_shapes": shapes,
        "model_input_scales": [7],
        "model_output_scales": [7],
        "module_sizes": {"poseidon": [0, [hashed]]},
    }


HASHED = {"Hashed": {"hash_is_public": True, "outlets": []}}
LAYOUTS = [
    # (input, params, output, hashes) -> (total, in_off, in_len, w_off, w_len, out_off, out_len)
    (("Public", "Fixed", "Public", 0), (7, 0, 4, 0, 0, 4, 3)),
    (("Public", HASHED, "Public", 1), (8, 1, 4, 0, 1, 5, 3)),
    (("Private", "Fixed", "Public", 0), (3, 0, 0, 0, 0, 0, 3)),
    ((HASHED, "Fixed", "Public", 1), (4, 0, 1, 0, 0, 1, 3)),
    ((HASHED, HASHED, HASHED, 3), (3, 0, 1, 1, 1, 2, 1)),
    # a hashed output follows the raw public input (measured on ezkl 23.0.5 proofs)
    (("Public", "Fixed", HASHED, 1), (5, 0, 4, 0, 0, 4, 1)),
    (("Public", HASHED, HASHED, 2), (6, 1, 4, 0, 1, 5, 1)),
]


@pytest.mark.parametrize(("spec", "expected"), LAYOUTS)
def test_layout_from_settings(spec: tuple[Any, ...], expected: tuple[int, ...]) -> None:
    assert InstanceLayout.from_settings(_settings(*spec)).as_tuple() == expected


@pytest.mark.parametrize(("spec", "reason"), [
    (("Public", "Private", "Public", 0), "does not bind the weights"),
    (("Public", "Polycommit", "Public", 0), "does not bind the weights"),
    (("Public", HASHED, "Public", 0), "public hashes expected"),
])
def test_layout_refuses_unbound_weights(spec: tuple[Any, ...], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        InstanceLayout.from_settings(_settings(*spec))


def test_real_layouts_match_real_proofs(world: World) -> None:
    for c in world.circuits.values():
        layout = c.layout()
        _, instances = read_proof(c.proof)
        assert layout.total == len(instances)
    h = world.circuits["h"]
    import json

    witness = json.loads((h.dir / "witness_test.json").read_text())
    poseidon = witness["processed_params"]["poseidon_hash"][0]
    assert h.layout().weights_commitment(read_proof(h.proof)[1]) == int.from_bytes(
        bytes.fromhex(poseidon), "little").to_bytes(32, "big")


@pytest.mark.parametrize(("value", "expected"), [
    ("0x" + "ab" * 32, bytes.fromhex("ab" * 32)),
    (b"\x07" * 32, b"\x07" * 32),
    ("model-a", keccak(b"model-a")),
])
def test_model_ids(value: Any, expected: bytes) -> None:
    assert to_model_id(value) == expected


# Audit outcomes


AUDIT = {"challenge_digest": bytes(range(32)), "beta": b"\xbe" * 32, "report_digest": b"\x7e" * 32}


def _auditor_key_hash() -> bytes:
    from zkml import vrf

    return keccak(vrf.public_key(vrf.SECP256K1, AUDITOR_VRF_SK))


def test_record_audit_emits_the_outcome(registry: Registry, world: World) -> None:
    with pytest.raises(RegistryError, match="has not proved a VRF auditor key"):
        registry.record_audit("model-a", 1, sampled=8, correct=7, passed=True, **AUDIT)
    registry.register_auditor(AUDITOR_VRF_SK)
    assert registry.auditor_key(registry.chain.sender or "") == _auditor_key_hash()
    receipt = registry.record_audit("model-a", 1, sampled=8, correct=7, passed=True, **AUDIT)
    assert 20_000 < receipt.gas_used < 80_000
    [(name, args)] = registry.events(receipt)
    assert name == "AuditRecorded"
    assert args == {"modelId": mid(registry), "version": 1, "auditor": registry.chain.sender,
                    "auditorKey": _auditor_key_hash(), "challengeDigest": AUDIT["challenge_digest"],
                    "beta": AUDIT["beta"], "sampled": 8, "correct": 7, "passed": True,
                    "reportDigest": AUDIT["report_digest"]}
    # One record per (key, challenge): the auditor cannot flip its verdict, nobody can add one in its name
    with pytest.raises(RegistryError, match="already recorded"):
        registry.record_audit("model-a", 1, sampled=8, correct=2, passed=False, **AUDIT)
    other = stranger(registry)
    with pytest.raises(RegistryError, match="has not proved a VRF auditor key"):
        other.record_audit(mid(registry), 1, sampled=8, correct=2, passed=False, **AUDIT)
    assert [e.args["passed"] for e in registry.audits("model-a")] == [True]
    assert registry.audits("model-b") == []


def test_auditor_key_cannot_be_claimed_by_another_account(registry: Registry, world: World) -> None:
    """The key proof names the sender: replaying the auditor's registerAuditor calldata from another
    account is refused, so nobody records audits under the auditor's VRF key."""
    from zkml import vrf
    from zkml.evm import vrf_onchain

    receipt = registry.register_auditor(AUDITOR_VRF_SK)
    [(_, ev)] = registry.events(receipt)
    assert ev["keyHash"] == _auditor_key_hash()
    other = stranger(registry)
    alpha = bytes(registry.contract.call("auditorKeyAlpha", registry.chain.sender))  # the auditor's alpha
    pk = vrf.public_key(vrf.SECP256K1, AUDITOR_VRF_SK)
    pi = vrf.prove(vrf.SECP256K1, AUDITOR_VRF_SK, alpha)
    _, _, _, u, s_h, c_gamma = vrf_onchain.verify_args(pk, alpha, pi)
    with pytest.raises(RegistryError, match="VRF key proof .* refused"):
        other._send("registerAuditor", pk, pi, u, s_h, c_gamma)
    assert other.auditor_key(other.chain.sender or "") == b"\x00" * 32


@pytest.mark.parametrize(("model", "version", "sampled", "correct", "message"), [
    ("no-such-model", 1, 8, 7, "model 0x[0-9a-f]{64} is not registered"),
    ("model-a", 0, 8, 7, "has no version 0"),
    ("model-a", 2, 8, 7, "has no version 2"),
    ("model-a", 1, 3, 4, "cannot have 4 correct rows out of 3 sampled"),
])
def test_record_audit_refuses_unknown_model_or_version(registry: Registry, model: str, version: int, sampled: int,
                                                       correct: int, message: str) -> None:
    registry.register_auditor(AUDITOR_VRF_SK)
    with pytest.raises(RegistryError, match=message):
        registry.record_audit(model, version, sampled=sampled, correct=correct, passed=True, **AUDIT)


def test_record_audit_of_a_pending_version(registry: Registry, world: World) -> None:
    registry.register_auditor(AUDITOR_VRF_SK)
    version, _ = propose_b_as_a(world, honest=True)
    receipt = registry.record_audit("model-a", version, sampled=1, correct=1, passed=True, **AUDIT)
    assert registry.events(receipt)[0][1]["version"] == version == 2


# Batch verification through the registry


def _deferred(world: World, chain: Chain, key: str, tmp: Any) -> str:
    from zkml.evm.batch import compile_deferred, generate_deferred

    return chain.deploy(compile_deferred(generate_deferred(world.verifiers[key].artifact, tmp))).address


def test_verify_batch_through_the_registry(registry: Registry, world: World, chain: Chain, tmp_path: Any) -> None:
    a = world.circuits["a"]
    with pytest.raises(RegistryError, match="no deferred verifier in its record"):
        registry.verify_batch("model-a", [a.proof])
    deferred = _deferred(world, chain, "a", tmp_path)
    registry.register("model-a-batch", record_for(a, world.deployments["a"], deferred_verifier=deferred))
    assert registry.model("model-a-batch").record.deferred_verifier == deferred
    ok, gas = registry.verify_batch("model-a-batch", [a.proof, a.other_proof, a.proof])
    assert ok and gas is not None
    single = registry.verify_gas("model-a-batch", a.proof)
    assert gas / 3 < single - 60_000  # the pairing and the intrinsic cost are shared
    # one bad proof fails the whole batch; another model's proof is refused
    flipped = a.proof_json()
    raw = bytearray(bytes.fromhex(flipped["hex_proof"][2:]))
    raw[len(raw) // 2] ^= 1
    assert registry.verify_batch("model-a-batch", [a.proof, {**flipped, "hex_proof": "0x" + raw.hex()}]) == (False, None)
    assert registry.verify_batch("model-a-batch", [a.proof, world.circuits["b"].proof]) == (False, None)
    # the registry's own checks still apply per proof: layout, pause
    short = a.proof_json()
    short["instances"] = [short["instances"][0][:-1]]
    with pytest.raises(RegistryError, match="instances"):
        registry.verify_batch("model-a-batch", [a.proof, short])
    emergency(registry).pause(mid(registry, "model-a-batch"))
    with pytest.raises(RegistryError, match="is paused"):
        registry.verify_batch("model-a-batch", [a.proof])


def test_batch_after_an_update_uses_the_new_records_deferred_verifier(registry: Registry, world: World,
                                                                      chain: Chain, tmp_path: Any) -> None:
    a, b = world.circuits["a"], world.circuits["b"]
    registry.register("model-ab", record_for(a, world.deployments["a"],
                                             deferred_verifier=_deferred(world, chain, "a", tmp_path / "a")))
    assert registry.verify_batch("model-ab", [a.proof])[0]
    test_in, b_out = proposal_commitments(b.layout(), b.proof)
    registry.propose_update("model-ab", record_for(b, world.deployments["b"],
                                                   deferred_verifier=_deferred(world, chain, "b", tmp_path / "b")),
                            test_in, b_out)
    assert registry.verify_batch("model-ab", [a.proof])[0]  # the pending record is not in force
    chain.increase_time(CHALLENGE_WINDOW)
    registry.finalize("model-ab")
    assert registry.verify_batch("model-ab", [b.proof, b.other_proof])[0]
    assert registry.verify_batch("model-ab", [a.proof]) == (False, None)
