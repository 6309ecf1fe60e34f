"""Signed model records and dataset commitments on chain: ModelRegistry.sol against a real anvil.

The session world (tests/onchain/conftest.py) has ``model-a``, ``model-b`` and ``model-h``
registered by anvil's first dev account (the *relayer* here: it submits
every signed record but owns none of them). ``OWNER`` and ``OTHER`` are
anvil's third and fourth dev accounts. Every test runs between evm_snapshot /
evm_revert.

Cross-checks: the contract's EIP-712 digests equal :mod:`zkml.evm.registry.signing`'s
(whose own tests recompute them by hand); the contract's dataset leaf equals
:mod:`zkml.commitments.dataset`'s; a one-bit change of a committed row or label is refused
by both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chainkit import World, record_for
from typer.testing import CliRunner

from zkml.commitments import dataset as zcommit
from zkml.evm.registry import signing as provenance
from zkml.circuit import Circuit
from zkml.evm.chain import Chain, connect
from zkml.evm.deploy import save_records
from zkml.evm.registry import (
    ModelRecord,
    Registry,
    RegistryError,
    proposal_commitments,
    model_id_of,
    row_calldata,
)
from zkml.evm.registry.signing import SECP256K1_N, SigningKey
from zkml.store import Store
from zkml_cli.main import app

OWNER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
OTHER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
OWNER = SigningKey.from_secret(OWNER_KEY)
OTHER = SigningKey.from_secret(OTHER_KEY)
TEST_SET = Path(__file__).resolve().parents[2] / "models" / "digits_test.npz"
#: ``signed-a`` in OWNER's namespace, as the relayer names it.
SA = f"{OWNER.address}/signed-a"


def owned(name: str) -> str:
    """``name`` in OWNER's namespace."""
    return f"{OWNER.address}/{name}"


def signable(registry: Registry, record: ModelRecord, name: str, version: int,
             owner: str = OWNER.address) -> provenance.ModelRecord:
    """What the owner signs for ``name``: the completed record under the namespaced id."""
    return registry.complete(record).signable(model_id_of(owner, name), version)


def as_account(registry: Registry, key: str) -> Registry:
    """The same registry, transacting from ``key``'s account."""
    return Registry(connect(registry.chain.rpc_url, key).at(registry.contract.abi, registry.address, "registry"))


def digest(registry: Registry, record: provenance.Signable) -> bytes:
    return provenance.record_digest(record, registry.chain.chain_id, registry.address)


@pytest.fixture(scope="module")
def digits() -> zcommit.CommittedDataset:
    return zcommit.build_commitment(TEST_SET)


@pytest.fixture(scope="module")
def dataset() -> zcommit.Dataset:
    return zcommit.load_dataset(TEST_SET)


# Signed registration


def test_signed_registration_makes_the_signer_owner(registry: Registry, world: World) -> None:
    record = record_for(world.circuits["a"], world.deployments["a"])
    receipt = registry.register_signed("signed-a", record, OWNER)
    info = registry.model(owned("signed-a"))
    assert info.owner == OWNER.address != registry.chain.sender
    assert info.current_version == 1 and info.record == registry.complete(record)
    events = dict(registry.events(receipt))
    assert events["ModelRegistered"]["owner"] == OWNER.address
    signed = events["RecordSigned"]
    assert signed["signer"] == OWNER.address and signed["version"] == 1
    assert signed["digest"] == digest(registry, signable(registry, record, "signed-a", 1))
    # The event carries the signature: anyone can re-check it off chain.
    assert provenance.verify_record(signable(registry, record, "signed-a", 1), signed["signature"], OWNER.address,
                                    registry.chain.chain_id, registry.address)
    assert registry.verify(SA, world.circuits["a"].proof) is True
    assert [e.name for e in registry.history(SA)] == ["ModelRegistered", "RecordSigned"]


def test_relayed_signature_registers_for_the_owner(registry: Registry, world: World) -> None:
    """A signature made elsewhere (no key at the submitter) is submitted with the owner's address."""
    record = record_for(world.circuits["b"], world.deployments["b"])
    signature = registry.sign_registration("relayed-b", record, OWNER)
    as_account(registry, OTHER_KEY).register_signed("relayed-b", record, signature=signature, owner=OWNER.address)
    assert registry.model(owned("relayed-b")).owner == OWNER.address


def test_record_signed_by_another_key_is_refused(registry: Registry, world: World) -> None:
    record = record_for(world.circuits["a"], world.deployments["a"])
    signature = registry.sign_registration("signed-a", record, OTHER)  # for OTHER's namespace
    with pytest.raises(RegistryError, match=f"recovers to 0x[0-9a-fA-F]{{40}}, not the owner {OWNER.address}"):
        registry.register_signed("signed-a", record, signature=signature, owner=OWNER.address)
    with pytest.raises(RegistryError, match="is not registered"):
        registry.model(owned("signed-a"))


def _reusable(world: World) -> ModelRecord:
    return record_for(world.circuits["a"], world.deployments["a_reusable"])


# (case, record to sign, how a front-runner changes the submission)
Submission = tuple[str, ModelRecord, str]
TAMPERS: list[tuple[str, Callable[[World], ModelRecord], Callable[[World, Submission], Submission]]] = [
    ("verifier", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], verifier=w.deployments["b"].address), s[2])),
    ("vka", _reusable, lambda w, s: (s[0], dataclasses.replace(s[1], vka=w.deployments["a"].address), s[2])),
    ("vka dropped", _reusable, lambda w, s: (s[0], dataclasses.replace(s[1], vka=None), s[2])),
    ("onnx sha256", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], onnx_sha256=bytes(31) + b"\x01"), s[2])),
    ("weights commitment", lambda w: record_for(w.circuits["h"], w.deployments["h"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], weights_commitment=b"\x01" * 32), s[2])),
    ("vk digest", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], vk_digest=bytes(a ^ (i == 31) for i, a in enumerate(s[1].vk_digest))), s[2])),
    ("dataset root", lambda w: record_for(w.circuits["a"], w.deployments["a"], dataset_root=b"\x05" * 32),
     lambda w, s: (s[0], dataclasses.replace(s[1], dataset_root=b"\x06" * 32), s[2])),
    ("dataset root dropped", lambda w: record_for(w.circuits["a"], w.deployments["a"], dataset_root=b"\x05" * 32),
     lambda w, s: (s[0], dataclasses.replace(s[1], dataset_root=bytes(32)), s[2])),
    ("layout: weights check skipped", lambda w: record_for(w.circuits["h"], w.deployments["h"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], layout=dataclasses.replace(s[1].layout, weights_len=0)), s[2])),
    ("metadata uri", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], metadata_uri=s[1].metadata_uri + "#evil"), s[2])),
    ("verifier code hash", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], verifier_code_hash=b"\x07" * 32), s[2])),
    ("challenge window", lambda w: record_for(w.circuits["a"], w.deployments["a"], challenge_window=7200),
     lambda w, s: (s[0], dataclasses.replace(s[1], challenge_window=3600), s[2])),
    ("deferred verifier added", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], dataclasses.replace(s[1], deferred_verifier=w.deployments["b"].address), s[2])),
    ("model id", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: ("front-runner-id", s[1], s[2])),
    ("claimed owner", lambda w: record_for(w.circuits["a"], w.deployments["a"]),
     lambda w, s: (s[0], s[1], OTHER.address)),
]


@pytest.mark.parametrize(("case", "make", "tamper"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_any_field_changed_after_signing_is_refused(case: str, make: Callable[[World], ModelRecord],
                                                     tamper: Callable[[World, Submission], Submission],
                                                     registry: Registry, world: World) -> None:
    record = make(world)
    signature = registry.sign_registration("signed-model", record, OWNER)
    model_id, changed, owner = tamper(world, ("signed-model", record, OWNER.address))
    assert (model_id, changed, owner) != ("signed-model", record, OWNER.address)
    with pytest.raises(RegistryError, match="signature refused .* not the owner"):
        registry.register_signed(model_id, changed, signature=signature, owner=owner)
    # Python agrees, and the untouched submission is accepted.
    assert not provenance.verify_record(signable(registry, changed, model_id, 1, owner), signature, owner,
                                        registry.chain.chain_id, registry.address)
    registry.register_signed("signed-model", record, signature=signature, owner=OWNER.address)
    assert registry.model(owned("signed-model")).owner == OWNER.address


def test_signature_for_another_registry_or_version_is_refused(registry: Registry, world: World,
                                                              evm_root: Path) -> None:
    record = record_for(world.circuits["a"], world.deployments["a"])
    record = registry.complete(record)  # one window for both registries (they have different minimums)
    signed = signable(registry, record, "signed-a", 1)
    second = Registry.deploy(registry.chain, challenge_window=0, cache_dir=evm_root / "solc-cache")
    for_second = provenance.sign_record(signed, OWNER, registry.chain.chain_id, second.address)
    for_chain_1 = provenance.sign_record(signed, OWNER, 1, registry.address)
    for_v2 = provenance.sign_record(dataclasses.replace(signed, version=2), OWNER, registry.chain.chain_id,
                                    registry.address)
    for sig in (for_second, for_chain_1, for_v2):
        with pytest.raises(RegistryError, match="not the owner"):
            registry.register_signed("signed-a", record, signature=sig, owner=OWNER.address)
    second.register_signed("signed-a", record, signature=for_second, owner=OWNER.address)
    assert second.model(SA).owner == OWNER.address


def _high_s(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


BAD_SIGNATURES: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("high s (malleable twin)", _high_s, "upper half of the curve order"),
    ("64 bytes", lambda sig: sig[:64], "must be 65 bytes, got 64"),
    ("v = 29", lambda sig: sig[:64] + b"\x1d", "recovers to no address"),
    ("r zero", lambda sig: bytes(32) + sig[32:], "recovers to no address"),
    ("v flipped", lambda sig: sig[:64] + bytes([55 - sig[64]]), "not the owner"),
]


@pytest.mark.parametrize(("case", "tweak", "reason"), BAD_SIGNATURES, ids=[b[0] for b in BAD_SIGNATURES])
def test_malformed_signature_is_refused(case: str, tweak: Callable[[bytes], bytes], reason: str,
                                        registry: Registry, world: World) -> None:
    record = record_for(world.circuits["a"], world.deployments["a"])
    good = bytes.fromhex(registry.sign_registration("signed-a", record, OWNER)[2:])
    bad = tweak(good)
    with pytest.raises(RegistryError, match=reason):
        registry.register_signed("signed-a", record, signature=bad, owner=OWNER.address)
    if len(bad) == 65:
        assert not provenance.verify_record(signable(registry, record, "signed-a", 1), bad, OWNER.address,
                                            registry.chain.chain_id, registry.address)


def test_registration_replay_is_refused(registry: Registry, world: World) -> None:
    record = record_for(world.circuits["a"], world.deployments["a"])
    signature = registry.sign_registration("signed-a", record, OWNER)
    registry.register_signed("signed-a", record, signature=signature, owner=OWNER.address)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register_signed("signed-a", record, signature=signature, owner=OWNER.address)
    # Nor does a registration signature pass as an update.
    test_in, out = proposal_commitments(record.layout, world.circuits["a"].proof)
    with pytest.raises(RegistryError, match="for version 1 but the next version is 2"):
        registry.propose_update_signed(SA, record, test_in, out, version=1, signature=signature)
    with pytest.raises(RegistryError, match="not the owner"):
        registry.propose_update_signed(SA, record, test_in, out, version=2, signature=signature)


# Signed updates


def _signed_model(registry: Registry, world: World) -> tuple[ModelRecord, bytes, bytes]:
    """``signed-a`` registered under OWNER's signature; returns (b's record, b's test commitments)."""
    registry.register_signed("signed-a", record_for(world.circuits["a"], world.deployments["a"]), OWNER)
    b = world.circuits["b"]
    test_in, b_out = proposal_commitments(b.layout(), b.proof)
    return record_for(b, world.deployments["b"]), test_in, b_out


def test_signed_update_goes_through_the_challenge_window(registry: Registry, world: World, chain: Chain) -> None:
    record_b, test_in, b_out = _signed_model(registry, world)
    version, _, receipt = registry.propose_update_signed(SA, record_b, test_in, b_out, OWNER)
    assert version == 2 and registry.version_status(SA, 2) == "pending"
    signed = dict(registry.events(receipt))["RecordSigned"]
    update = provenance.ModelUpdate(signable(registry, record_b, "signed-a", 2), test_in, b_out)
    assert signed["signer"] == OWNER.address and signed["digest"] == digest(registry, update)
    chain.increase_time(world.window)
    registry.finalize(SA)
    assert registry.verify(SA, world.circuits["b"].proof) is True
    # The used signature cannot be submitted again.
    with pytest.raises(RegistryError, match="for version 2 but the next version is 3"):
        registry.propose_update_signed(SA, record_b, test_in, b_out, version=2,
                                       signature=signed["signature"])


def test_update_signed_by_another_key_is_refused(registry: Registry, world: World) -> None:
    record_b, test_in, b_out = _signed_model(registry, world)
    with pytest.raises(RegistryError, match=f"recovers to {OTHER.address}, not the owner {OWNER.address}"):
        registry.propose_update_signed(SA, record_b, test_in, b_out, OTHER)
    # The relayer's own transaction is no substitute for the owner's signature either.
    with pytest.raises(RegistryError, match="is not the owner"):
        registry.propose_update(SA, record_b, test_in, b_out)
    assert registry.model(owned("signed-a")).pending is None


UPDATE_TAMPERS: list[tuple[str, Callable[[World, ModelRecord, bytes, bytes], tuple[ModelRecord, bytes, bytes]]]] = [
    ("test input swapped", lambda w, r, t, o: (r, o, o)),
    ("prediction swapped (griefing: anyone could then reject it)", lambda w, r, t, o: (r, t, b"\x01" * 32)),
    ("verifier", lambda w, r, t, o: (dataclasses.replace(r, verifier=w.deployments["a"].address), t, o)),
    ("metadata", lambda w, r, t, o: (dataclasses.replace(r, metadata_uri="ipfs://other"), t, o)),
]


@pytest.mark.parametrize(("case", "tamper"), UPDATE_TAMPERS, ids=[t[0] for t in UPDATE_TAMPERS])
def test_update_changed_after_signing_is_refused(case: str, tamper: Any, registry: Registry, world: World) -> None:
    record_b, test_in, b_out = _signed_model(registry, world)
    signature = registry.sign_update(SA, 2, record_b, test_in, b_out, OWNER)
    changed = tamper(world, record_b, test_in, b_out)
    with pytest.raises(RegistryError, match="not the owner"):
        registry.propose_update_signed(SA, *changed, version=2, signature=signature)
    version, _, _ = registry.propose_update_signed(SA, record_b, test_in, b_out, version=2,
                                                   signature=signature)
    assert version == 2


def test_cancelled_update_signature_cannot_be_replayed(registry: Registry, world: World) -> None:
    record_b, test_in, b_out = _signed_model(registry, world)
    signature = registry.sign_update(SA, 2, record_b, test_in, b_out, OWNER)
    registry.propose_update_signed(SA, record_b, test_in, b_out, version=2, signature=signature)
    as_account(registry, OWNER_KEY).cancel_update(SA)  # the owner withdraws it
    assert registry.version_status(SA, 2) == "cancelled"
    with pytest.raises(RegistryError, match="for version 2 but the next version is 3"):
        registry.propose_update_signed(SA, record_b, test_in, b_out, version=2, signature=signature)
    with pytest.raises(RegistryError, match="not the owner"):
        registry.propose_update_signed(SA, record_b, test_in, b_out, version=3, signature=signature)
    # A fresh signature for version 3 is fine.
    version, _, _ = registry.propose_update_signed(SA, record_b, test_in, b_out, OWNER)
    assert version == 3


def test_after_transfer_only_the_new_owner_signs(registry: Registry, world: World) -> None:
    record_b, test_in, b_out = _signed_model(registry, world)
    early = registry.sign_update(SA, 2, record_b, test_in, b_out, OWNER)
    as_account(registry, OWNER_KEY).transfer_ownership(SA, OTHER.address)
    with pytest.raises(RegistryError, match=f"not the owner {OTHER.address}"):
        registry.propose_update_signed(SA, record_b, test_in, b_out, version=2, signature=early)
    version, _, _ = registry.propose_update_signed(SA, record_b, test_in, b_out, OTHER)
    assert version == 2


# The contract's digests are provenance.py's


def test_type_hashes_and_domain_match_python(registry: Registry) -> None:
    call = registry.contract.call
    assert bytes(call("LAYOUT_TYPEHASH")) == provenance.layout_typehash()
    assert bytes(call("RECORD_TYPEHASH")) == provenance.record_typehash()
    assert bytes(call("UPDATE_TYPEHASH")) == provenance.update_typehash()
    assert registry.domain_separator() == provenance.domain_separator(registry.chain.chain_id, registry.address)
    _, name, version, chain_id, contract, _, _ = call("eip712Domain")
    assert (name, version, chain_id, contract) == (provenance.DOMAIN_NAME, provenance.DOMAIN_VERSION,
                                                   registry.chain.chain_id, registry.address)


RECORDS: list[tuple[str, Callable[[World], ModelRecord], int]] = [
    ("per-circuit", lambda w: record_for(w.circuits["a"], w.deployments["a"]), 1),
    ("reusable + vka", _reusable, 2),
    ("hashed params + dataset root", lambda w: record_for(w.circuits["h"], w.deployments["h"],
                                                          dataset_root=b"\xab" * 32), 7),
    ("unicode metadata, max version", lambda w: record_for(w.circuits["a"], w.deployments["a"],
                                                           metadata_uri="ipfs://modèle/ü/" + "x" * 200), 2**64 - 1),
]


@pytest.mark.parametrize(("case", "make", "version"), RECORDS, ids=[r[0] for r in RECORDS])
def test_solidity_digest_equals_python(case: str, make: Callable[[World], ModelRecord], version: int,
                                       registry: Registry, world: World) -> None:
    record = make(world)
    signed = signable(registry, record, "digest-check", version)
    mid = model_id_of(OWNER.address, "digest-check")
    assert registry.onchain_record_digest(mid, version, record) == digest(registry, signed)
    test_in, out = b"\x11" * 32, b"\x22" * 32
    update = provenance.ModelUpdate(signed, test_in, out)
    assert registry.onchain_update_digest(mid, version, record, test_in, out) == digest(registry, update)
    assert digest(registry, update) != digest(registry, signed)


def test_signed_registration_gas(registry: Registry, world: World) -> None:
    record = record_for(world.circuits["a"], world.deployments["a"])
    plain = registry.register("plain-a", record).gas_used
    signed = registry.register_signed("signed-a", record, OWNER).gas_used
    # EIP-712 hashing, one ecrecover and the RecordSigned event: a few thousand gas, not tens of thousands.
    assert plain < signed < plain + 20_000, (plain, signed)


# Dataset commitments through the registry


def _bitflip(data: bytes, byte: int, mask: int = 1) -> bytes:
    return data[:byte] + bytes([data[byte] ^ mask]) + data[byte + 1:]


# (case, change of (index, features bytes, label bytes, proof))
Row = tuple[int, bytes, bytes, list[bytes]]
ROW_TAMPERS: list[tuple[str, Callable[[Row], Row]]] = [
    ("feature lowest bit", lambda r: (r[0], _bitflip(r[1], 8 * 5 + 7), r[2], r[3])),
    ("feature sign bit", lambda r: (r[0], _bitflip(r[1], 0, 0x80), r[2], r[3])),
    ("last feature lowest bit", lambda r: (r[0], _bitflip(r[1], len(r[1]) - 1), r[2], r[3])),
    ("label lowest bit", lambda r: (r[0], r[1], _bitflip(r[2], 7), r[3])),
    ("label dropped", lambda r: (r[0], r[1], b"", r[3])),
    ("other index", lambda r: (r[0] + 1, r[1], r[2], r[3])),
    ("proof sibling bit", lambda r: (r[0], r[1], r[2], [_bitflip(r[3][0], 31), *r[3][1:]])),
]


def _python_leaf(index: int, features: bytes, label: bytes) -> bytes:
    values = np.frombuffer(features, dtype=">f8")
    return zcommit.row_leaf(index, values, None if not label else float(np.frombuffer(label, dtype=">f8")[0]))


def _register_with_root(registry: Registry, world: World, root: bytes) -> None:
    registry.register_signed("digits", record_for(world.circuits["a"], world.deployments["a"], dataset_root=root),
                             OWNER)


@pytest.mark.parametrize("index", [0, 1, 180, 358, 359])
def test_committed_rows_prove_inclusion_on_chain(index: int, registry: Registry, world: World,
                                                 digits: zcommit.CommittedDataset, dataset: zcommit.Dataset) -> None:
    _register_with_root(registry, world, digits.commitment.root)
    assert digits.commitment.n_rows == 360 and digits.commitment.has_labels
    assert dataset.labels is not None
    features, label = dataset.features[index], float(dataset.labels[index])
    leaf, proof = digits.leaf(index), digits.proof(index)
    # The registry recomputes the leaf exactly as zkml.commitments.dataset does.
    assert registry.contract.call("datasetRowLeaf", index, *row_calldata(features, label)) == leaf
    assert registry.verify_dataset_member(owned("digits"), proof, leaf) is True
    assert registry.verify_dataset_row(owned("digits"), index, features, label, proof) is True
    assert zcommit.verify_row(digits.commitment.root, TEST_SET, index, proof) is True


@pytest.mark.parametrize(("case", "tamper"), ROW_TAMPERS, ids=[t[0] for t in ROW_TAMPERS])
def test_row_changed_by_one_bit_is_refused(case: str, tamper: Callable[[Row], Row], registry: Registry,
                                           world: World, digits: zcommit.CommittedDataset,
                                           dataset: zcommit.Dataset) -> None:
    _register_with_root(registry, world, digits.commitment.root)
    assert dataset.labels is not None
    index = 42
    features, label = row_calldata(dataset.features[index], float(dataset.labels[index]))
    honest: Row = (index, features, label, digits.proof(index))
    assert registry.contract.call("verifyDatasetRow", model_id_of(OWNER.address, "digits"), *_row_args(honest)) is True
    changed = tamper(honest)
    assert changed != honest
    # Solidity refuses it ...
    assert registry.contract.call("verifyDatasetRow", model_id_of(OWNER.address, "digits"), *_row_args(changed)) is False
    leaf = _python_leaf(changed[0], changed[1], changed[2])
    assert registry.contract.call("datasetRowLeaf", changed[0], changed[1], changed[2]) == leaf
    assert registry.verify_dataset_member(owned("digits"), changed[3], leaf) is False
    # ... and so does Python.
    assert zcommit.verify_inclusion(digits.commitment.root, leaf, changed[3]) is False


def _row_args(row: Row) -> tuple[Any, ...]:
    index, features, label, proof = row
    return proof, index, features, label


def test_set_dataset_root_once_by_the_owner(registry: Registry, world: World, digits: zcommit.CommittedDataset,
                                            dataset: zcommit.Dataset) -> None:
    root = digits.commitment.root
    assert dataset.labels is not None
    row = (dataset.features[7], float(dataset.labels[7]))
    with pytest.raises(RegistryError, match="has no dataset root"):
        registry.verify_dataset_row("model-a", 7, *row, digits.proof(7))
    stranger = as_account(registry, OTHER_KEY)
    with pytest.raises(RegistryError, match="is not the owner"):
        stranger.set_dataset_root(registry.model_id("model-a"), root)
    with pytest.raises(RegistryError, match="must not be zero"):
        registry.set_dataset_root("model-a", bytes(32))
    receipt = registry.set_dataset_root("model-a", root)
    ev = dict(registry.events(receipt))["DatasetRootSet"]
    assert ev["root"] == root and ev["version"] == 1 and ev["by"] == registry.chain.sender
    assert registry.model("model-a").record.dataset_root == root
    assert registry.verify_dataset_row("model-a", 7, *row, digits.proof(7)) is True
    with pytest.raises(RegistryError, match="already has dataset root 0x"):
        registry.set_dataset_root("model-a", b"\x01" * 32)
    assert registry.history("model-a")[-1].name == "DatasetRootSet"


def test_dataset_root_belongs_to_the_version(registry: Registry, world: World, chain: Chain,
                                             digits: zcommit.CommittedDataset) -> None:
    """An update carries its own root: the active version's root is the one checked."""
    _register_with_root(registry, world, digits.commitment.root)
    b = world.circuits["b"]
    test_in, out = proposal_commitments(b.layout(), b.proof)
    registry.propose_update_signed(owned("digits"), record_for(b, world.deployments["b"]), test_in, out, OWNER)
    chain.increase_time(world.window)
    registry.finalize(owned("digits"))
    with pytest.raises(RegistryError, match="has no dataset root"):
        registry.verify_dataset_member(owned("digits"), digits.proof(0), digits.leaf(0))
    from chainkit import EMERGENCY_KEY

    as_account(registry, EMERGENCY_KEY).rollback(owned("digits"))
    assert registry.verify_dataset_member(owned("digits"), digits.proof(0), digits.leaf(0)) is True


# CLI: zkml data commit --register, zkml deploy --sign-key-file

runner = CliRunner()


def _store_for(registry: Registry, tmp_path: Path) -> Store:
    """A store that records the session registry for this chain."""
    store = Store(tmp_path / "store")
    save_records(store, registry.chain, {"chain_id": registry.chain.chain_id, "verifiers": {}, "models": {},
                                         "registry": {"address": registry.address}})
    return store


def test_cli_data_commit_register(registry: Registry, tmp_path: Path, digits: zcommit.CommittedDataset) -> None:
    store = _store_for(registry, tmp_path)
    args = ["data", "commit", str(TEST_SET), "-o", str(tmp_path / "c.json"), "--register", "model-a",
            "--rpc-url", registry.chain.rpc_url, "--store", str(store.root)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["root"] == digits.commitment.root_hex == out["registry"]["dataset_root"]
    assert out["registry"]["tx"].startswith("0x") and out["registry"]["version"] == 1
    assert registry.model("model-a").record.dataset_root == digits.commitment.root
    assert registry.verify_dataset_member("model-a", digits.proof(5), digits.leaf(5)) is True
    # Idempotent: the same root again sends nothing.
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert "already recorded" in r.stdout


def test_cli_data_commit_register_refusals_are_one_line(registry: Registry, tmp_path: Path) -> None:
    store = _store_for(registry, tmp_path)
    key_file = tmp_path / "other.key"
    key_file.write_text(OTHER_KEY)
    key_file.chmod(0o600)
    base = ["data", "commit", str(TEST_SET), "-o", str(tmp_path / "c.json"), "--rpc-url", registry.chain.rpc_url,
            "--store", str(store.root)]
    cases = [
        (["--register", "0x" + registry.model_id("model-a").hex(), "--key-file", str(key_file)],
         f"{OTHER.address} is not the owner of model 0x"),
        (["--register", "model-a", "--key-file", str(key_file)], "is not registered"),  # OTHER's own namespace
        (["--register", "no-such-model"], "is not registered"),
    ]
    for extra, reason in cases:
        r = runner.invoke(app, [*base, *extra, "--json"])  # --json: no progress lines on stderr
        assert r.exit_code == 2, r.stdout
        assert reason in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert OTHER_KEY[2:] not in r.stderr + r.stdout


def test_cli_deploy_with_signed_record(registry: Registry, store: Store, mlp_circuit: Circuit,
                                      tmp_path: Path) -> None:
    key_file = tmp_path / "owner.key"
    key_file.write_text(OWNER_KEY + "\n")
    key_file.chmod(0o600)
    # A store of its own (its chain records name a new registry on the session chain), sharing the SRS.
    own = Store(tmp_path / "store")
    own.root.mkdir()
    (own.root / "srs").symlink_to(store.root / "srs", target_is_directory=True)
    r = runner.invoke(app, ["deploy", str(mlp_circuit.folder), "--model-id", "signed-mlp", "--sign-key-file",
                            str(key_file), "--rpc-url", registry.chain.rpc_url, "--store", str(own.root), "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    reg = out["registration"]
    assert reg["owner"] == OWNER.address and reg["signed"] is True
    deployed = Registry(registry.chain.at(registry.contract.abi, out["registry"], "registry"))
    info = deployed.model(owned("signed-mlp"))
    assert info.owner == OWNER.address != registry.chain.sender
    assert out["model_id_hex"] == "0x" + model_id_of(OWNER.address, "signed-mlp").hex()
    signed = [e for e in deployed.history(owned("signed-mlp")) if e.name == "RecordSigned"]
    assert len(signed) == 1 and signed[0].args["signer"] == OWNER.address
    assert provenance.verify_record(info.record.signable(info.model_id, 1), signed[0].args["signature"],
                                    OWNER.address, registry.chain.chain_id, deployed.address)
    assert OWNER_KEY[2:] not in r.stdout + r.stderr


def test_cli_deploy_bad_sign_key_is_one_line(tmp_path: Path) -> None:
    key_file = tmp_path / "owner.key"
    key_file.write_text("0x1234")
    key_file.chmod(0o600)
    for path, reason in [(key_file, "is not a 32-byte hex"), (tmp_path / "missing.key", "not found")]:
        r = runner.invoke(app, ["deploy", "does-not-matter", "--sign-key-file", str(path),
                                "--store", str(tmp_path / "store")])
        assert r.exit_code == 2 and reason in r.stderr and len(r.stderr.strip().splitlines()) == 1
