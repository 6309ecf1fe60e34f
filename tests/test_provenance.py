"""EIP-712 model records: digest spec, sign/recover, tamper refusal, key handling.

The digest is recomputed by hand from the type strings with pycryptodome's
keccak and manual 32-byte ABI words; signatures are cross-checked with
eth_keys signing that digest directly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from Crypto.Hash import keccak as _keccak
from eth_account import Account
from eth_keys import keys as eth_keys
from eth_utils import to_checksum_address

from zkml.errors import ConfigError, InputError
from zkml.evm.registry.signing import (
    EIP712_DOMAIN_TYPE,
    INSTANCE_LAYOUT_TYPE,
    MODEL_RECORD_TYPE,
    MODEL_UPDATE_TYPE,
    SECP256K1_N,
    ModelRecord,
    ModelUpdate,
    SignatureError,
    SigningKey,
    domain_separator,
    load_signing_key,
    record_digest,
    record_struct_hash,
    record_typehash,
    recover_signer,
    sign_record,
    typed_data,
    update_typehash,
    verify_record,
)

# anvil's first two default accounts: well-known key -> address pairs
KEY_A = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDR_A = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
KEY_B = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDR_B = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CHAIN = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

RECORD = ModelRecord(
    model_id=bytes.fromhex("11" * 32),
    version=3,
    onnx_sha256=bytes.fromhex("22" * 32),
    weights_commitment=bytes.fromhex("33" * 32),
    vk_digest=bytes.fromhex("44" * 32),
    dataset_root=bytes.fromhex("55" * 32),
    metadata_uri="ipfs://bafy-model-card",
    verifier="0x" + "66" * 20,
    vka="0x" + "77" * 20,
    layout=(8, 1, 4, 0, 1, 5, 3),
)
UPDATE = ModelUpdate(RECORD, bytes.fromhex("88" * 32), bytes.fromhex("99" * 32))


def k256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def word(x: int | bytes) -> bytes:
    return x.to_bytes(32, "big") if isinstance(x, int) else x.rjust(32, b"\x00")


def hand_domain_separator(chain_id: int, registry: str) -> bytes:
    return k256(
        k256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + k256(b"zkml ModelRegistry")
        + k256(b"2")
        + word(chain_id)
        + word(bytes.fromhex(registry[2:]))
    )


LAYOUT_TYPE = (
    b"InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
    b"uint32 outputOffset,uint32 outputLen)"
)
RECORD_TYPE = (
    b"ModelRecord(bytes32 modelId,uint64 version,address verifier,bytes32 verifierCodeHash,address vka,"
    b"address deferredVerifier,bytes32 deferredCodeHash,bytes32 onnxSha256,bytes32 weightsCommitment,"
    b"bytes32 vkDigest,bytes32 datasetRoot,uint64 challengeWindow,InstanceLayout layout,string metadataURI)"
)


def hand_struct_hash(r: ModelRecord) -> bytes:
    layout_hash = k256(k256(LAYOUT_TYPE) + b"".join(word(v) for v in r.layout))
    return k256(
        k256(RECORD_TYPE + LAYOUT_TYPE)
        + r.model_id
        + word(r.version)
        + word(bytes.fromhex(r.verifier[2:]))
        + r.verifier_code_hash
        + word(bytes.fromhex(r.vka[2:]))
        + word(bytes.fromhex(r.deferred_verifier[2:]))
        + r.deferred_code_hash
        + r.onnx_sha256
        + r.weights_commitment
        + r.vk_digest
        + r.dataset_root
        + word(r.challenge_window)
        + layout_hash
        + k256(r.metadata_uri.encode("utf-8"))
    )


def hand_update_hash(u: ModelUpdate) -> bytes:
    typehash = k256(
        b"ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)"
        + LAYOUT_TYPE
        + RECORD_TYPE
    )
    return k256(typehash + hand_struct_hash(u.record) + u.test_input_commitment + u.predicted_output_commitment)


def hand_digest(r: ModelRecord | ModelUpdate, chain_id: int, registry: str) -> bytes:
    struct_hash = hand_struct_hash(r) if isinstance(r, ModelRecord) else hand_update_hash(r)
    return k256(b"\x19\x01" + hand_domain_separator(chain_id, registry) + struct_hash)


# ---------------------------------------------------------------------------
# Digest spec
# ---------------------------------------------------------------------------


def test_type_strings() -> None:
    assert EIP712_DOMAIN_TYPE == "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    assert record_typehash() == k256(MODEL_RECORD_TYPE.encode()) == k256(RECORD_TYPE + LAYOUT_TYPE)
    assert INSTANCE_LAYOUT_TYPE.encode() == LAYOUT_TYPE
    assert update_typehash() == k256(MODEL_UPDATE_TYPE.encode())
    assert MODEL_UPDATE_TYPE.encode().endswith(LAYOUT_TYPE + RECORD_TYPE)  # referenced types sorted by name
    assert typed_data(RECORD, CHAIN, REGISTRY)["primaryType"] == "ModelRecord"
    assert typed_data(UPDATE, CHAIN, REGISTRY)["primaryType"] == "ModelUpdate"


@pytest.mark.parametrize(
    ("record", "chain_id", "registry"),
    [
        (RECORD, CHAIN, REGISTRY),
        (RECORD, 1, "0x" + "ab" * 20),
        (dataclasses.replace(RECORD, metadata_uri=""), 11155111, REGISTRY.lower()),
        (dataclasses.replace(RECORD, metadata_uri="https://example.org/ünïcode", version=2**64 - 1), CHAIN, REGISTRY),
        (ModelRecord(bytes(32), 0, bytes(32), bytes(32), bytes(32), bytes(32)), 2**255, REGISTRY),
        (dataclasses.replace(RECORD, layout=(2**32 - 1,) * 7, vka="0x" + "00" * 20), CHAIN, REGISTRY),
        (UPDATE, CHAIN, REGISTRY),
        (ModelUpdate(dataclasses.replace(RECORD, metadata_uri=""), bytes(32), bytes(32)), 1, REGISTRY),
    ],
)
def test_digest_matches_hand_computation(record: ModelRecord | ModelUpdate, chain_id: int, registry: str) -> None:
    assert domain_separator(chain_id, registry) == hand_domain_separator(chain_id, registry)
    hand = hand_struct_hash(record) if isinstance(record, ModelRecord) else hand_update_hash(record)
    assert record_struct_hash(record) == hand
    assert record_digest(record, chain_id, registry) == hand_digest(record, chain_id, registry)


def test_signature_is_over_the_digest() -> None:
    """sign_record equals a raw secp256k1 signature (RFC 6979) of record_digest, with v = 27 + recovery id."""
    sig = bytes.fromhex(sign_record(RECORD, KEY_A, CHAIN, REGISTRY)[2:])
    raw = eth_keys.PrivateKey(bytes.fromhex(KEY_A[2:])).sign_msg_hash(hand_digest(RECORD, CHAIN, REGISTRY))
    assert sig == raw.r.to_bytes(32, "big") + raw.s.to_bytes(32, "big") + bytes([27 + raw.v])


# ---------------------------------------------------------------------------
# Sign / recover / verify
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "address"), [(KEY_A, ADDR_A), (KEY_B, ADDR_B)])
def test_sign_recover_roundtrip(key: str, address: str) -> None:
    sig = sign_record(RECORD, key, CHAIN, REGISTRY)
    assert sig.startswith("0x") and len(sig) == 2 + 130
    assert recover_signer(RECORD, sig, CHAIN, REGISTRY) == address
    assert verify_record(RECORD, sig, address, CHAIN, REGISTRY)
    assert verify_record(RECORD, bytes.fromhex(sig[2:]), address.lower(), CHAIN, REGISTRY)


def test_other_signer_refused() -> None:
    sig = sign_record(RECORD, KEY_B, CHAIN, REGISTRY)
    assert not verify_record(RECORD, sig, ADDR_A, CHAIN, REGISTRY)


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("model_id", {"model_id": bytes.fromhex("11" * 31 + "12")}),
    ("version", {"version": 4}),
    ("onnx_sha256", {"onnx_sha256": bytes.fromhex("22" * 31 + "23")}),
    ("weights_commitment", {"weights_commitment": bytes.fromhex("33" * 31 + "34")}),
    ("vk_digest", {"vk_digest": bytes.fromhex("44" * 31 + "45")}),
    ("dataset_root", {"dataset_root": bytes(32)}),
    ("metadata_uri", {"metadata_uri": "ipfs://bafy-model-card2"}),
    ("metadata_uri emptied", {"metadata_uri": ""}),
    ("verifier", {"verifier": "0x" + "66" * 19 + "67"}),
    ("vka", {"vka": "0x" + "00" * 20}),
    ("layout", {"layout": (8, 1, 4, 0, 0, 5, 3)}),
]


@pytest.mark.parametrize(("case", "change"), CHANGES, ids=[c for c, _ in CHANGES])
def test_changed_field_refused(case: str, change: dict[str, Any]) -> None:
    sig = sign_record(RECORD, KEY_A, CHAIN, REGISTRY)
    assert verify_record(RECORD, sig, ADDR_A, CHAIN, REGISTRY)
    assert not verify_record(dataclasses.replace(RECORD, **change), sig, ADDR_A, CHAIN, REGISTRY)


UPDATE_CHANGES: list[tuple[str, Any]] = [
    ("record field", lambda u: dataclasses.replace(u, record=dataclasses.replace(u.record, version=4))),
    ("test input", lambda u: dataclasses.replace(u, test_input_commitment=bytes(32))),
    ("prediction", lambda u: dataclasses.replace(u, predicted_output_commitment=bytes(32))),
    ("the bare record", lambda u: u.record),
]


@pytest.mark.parametrize(("case", "change"), UPDATE_CHANGES, ids=[c for c, _ in UPDATE_CHANGES])
def test_changed_update_refused(case: str, change: Any) -> None:
    sig = sign_record(UPDATE, KEY_A, CHAIN, REGISTRY)
    assert verify_record(UPDATE, sig, ADDR_A, CHAIN, REGISTRY)
    assert not verify_record(change(UPDATE), sig, ADDR_A, CHAIN, REGISTRY)


@pytest.mark.parametrize(("chain_id", "registry"), [(1, REGISTRY), (CHAIN, "0x" + "00" * 19 + "01")])
def test_other_domain_refused(chain_id: int, registry: str) -> None:
    sig = sign_record(RECORD, KEY_A, CHAIN, REGISTRY)
    assert not verify_record(RECORD, sig, ADDR_A, chain_id, registry)


def _tweak(sig: str, fn: Any) -> bytes:
    raw = bytearray(bytes.fromhex(sig[2:]))
    fn(raw)
    return bytes(raw)


def _high_s(raw: bytearray) -> None:
    """The malleable twin (r, n - s, v ^ 1): valid for plain ecrecover, refused by OpenZeppelin ECDSA."""
    s = int.from_bytes(raw[32:64], "big")
    raw[32:64] = (SECP256K1_N - s).to_bytes(32, "big")
    raw[64] = 55 - raw[64]


BAD_SIGNATURES: list[tuple[str, Any]] = [
    ("high s", _high_s),
    ("v = 0", lambda raw: raw.__setitem__(64, raw[64] - 27)),
    ("v = 29", lambda raw: raw.__setitem__(64, 29)),
    ("v flipped", lambda raw: raw.__setitem__(64, 55 - raw[64])),
    ("r zeroed", lambda raw: raw.__setitem__(slice(0, 32), bytes(32))),
    ("s zeroed", lambda raw: raw.__setitem__(slice(32, 64), bytes(32))),
    ("r >= n", lambda raw: raw.__setitem__(slice(0, 32), b"\xff" * 32)),
    ("r byte flipped", lambda raw: raw.__setitem__(5, raw[5] ^ 1)),
]


@pytest.mark.parametrize(("case", "tweak"), BAD_SIGNATURES, ids=[c for c, _ in BAD_SIGNATURES])
def test_bad_signature_refused(case: str, tweak: Any) -> None:
    sig = _tweak(sign_record(RECORD, KEY_A, CHAIN, REGISTRY), tweak)
    assert not verify_record(RECORD, sig, ADDR_A, CHAIN, REGISTRY)


def test_high_s_recovers_with_plain_ecrecover_but_is_refused() -> None:
    """The malleability check is what refuses it: eth_account alone would recover the same signer."""
    from eth_account.messages import encode_typed_data

    sig = _tweak(sign_record(RECORD, KEY_A, CHAIN, REGISTRY), _high_s)
    signable = encode_typed_data(full_message=typed_data(RECORD, CHAIN, REGISTRY))
    assert Account.recover_message(signable, signature=sig) == ADDR_A
    with pytest.raises(SignatureError, match="upper half"):
        recover_signer(RECORD, sig, CHAIN, REGISTRY)


@pytest.mark.parametrize("sig", ["0x1234", "0x" + "zz" * 65, b"\x00" * 64, "0x" + "00" * 66, 12345])
def test_malformed_signature_raises(sig: Any) -> None:
    with pytest.raises(SignatureError):
        verify_record(RECORD, sig, ADDR_A, CHAIN, REGISTRY)
    with pytest.raises(SignatureError):
        recover_signer(RECORD, sig, CHAIN, REGISTRY)


@pytest.mark.parametrize(
    ("chain_id", "registry", "signer"),
    [
        (0, REGISTRY, ADDR_A),
        (-1, REGISTRY, ADDR_A),
        (True, REGISTRY, ADDR_A),
        (2**256, REGISTRY, ADDR_A),
        (CHAIN, "0x1234", ADDR_A),
        (CHAIN, REGISTRY.replace("F", "f", 1).replace("b", "B", 1), ADDR_A),  # broken checksum
        (CHAIN, REGISTRY, "0xnotanaddress"),
        (CHAIN, REGISTRY, ADDR_A.replace("F", "f")),  # broken checksum
        (CHAIN, REGISTRY[2:], ADDR_A),  # no 0x
        (CHAIN, REGISTRY, "0x" + "00" * 19),  # 19 bytes
        (CHAIN, 0x5FBDB2315678AFECB367F032D93F642F64180AA3, ADDR_A),  # not a string
    ],
)
def test_bad_domain_or_signer_raises(chain_id: Any, registry: Any, signer: Any) -> None:
    sig = sign_record(RECORD, KEY_A, CHAIN, REGISTRY)
    with pytest.raises(InputError):
        verify_record(RECORD, sig, signer, chain_id, registry)


# ---------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"model_id": b"\x11" * 31},
        {"onnx_sha256": "22" * 32},
        {"weights_commitment": bytearray(32)},
        {"vk_digest": b"\x44" * 33},
        {"dataset_root": None},
        {"version": -1},
        {"version": 2**64},
        {"version": True},
        {"version": 1.0},
        {"metadata_uri": b"ipfs://x"},
        {"verifier": "0x1234"},
        {"verifier": "0x" + "ab" * 19 + "aB"},  # mixed case, bad checksum
        {"vka": None},
        {"layout": (1, 2, 3)},
        {"layout": (0, 0, 0, 0, 0, 0, 2**32)},
        {"layout": (0, 0, 0, 0, 0, 0, -1)},
        {"layout": (0, 0, 0, 0, 0, 0, True)},
    ],
)
def test_record_validation(change: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        dataclasses.replace(RECORD, **change)


def test_record_json_roundtrip() -> None:
    doc = RECORD.to_json()
    assert doc["modelId"] == "0x" + "11" * 32
    assert ModelRecord.from_json(json.loads(json.dumps(doc))) == RECORD
    assert doc["layout"] == {"total": 8, "inputOffset": 1, "inputLen": 4, "weightsOffset": 0, "weightsLen": 1,
                             "outputOffset": 5, "outputLen": 3}
    assert dataclasses.replace(RECORD, verifier="0x" + "ab" * 20).verifier == to_checksum_address("0x" + "ab" * 20)
    del doc["vkDigest"]
    with pytest.raises(InputError, match="vkDigest"):
        ModelRecord.from_json(doc)


# ---------------------------------------------------------------------------
# Keys: loading and never leaking
# ---------------------------------------------------------------------------


def _secret_forms(key_hex: str) -> list[str]:
    bare = key_hex[2:]
    return [bare, bare.upper(), bare[:16], bare[-16:]]


def test_signing_key_repr_hides_secret() -> None:
    key = SigningKey.from_secret(KEY_A)
    assert key.address == ADDR_A
    for text in (repr(key), str(key), f"{key}", repr([key]), repr({"k": key})):
        assert ADDR_A in text
        assert "secret" not in text and repr(key.secret)[2:12] not in text
        for form in _secret_forms(KEY_A):
            assert form not in text
            assert form.lower() not in text.lower()


@pytest.mark.parametrize(
    "secret",
    [
        KEY_A[:-2],  # too short
        KEY_A[:-1] + "g",  # not hex
        "0x" + "00" * 32,  # zero
        "0x" + "ff" * 32,  # >= n
        bytes(31),
        12345,
    ],
)
def test_malformed_key_message_has_no_key_material(secret: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        SigningKey.from_secret(secret)
    message = str(exc.value)
    if isinstance(secret, str):
        assert secret[2:10] not in message and secret[-8:] not in message
    assert exc.value.__cause__ is None


def test_sign_with_malformed_key_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        sign_record(RECORD, "0x1234", CHAIN, REGISTRY)


def test_signing_key_address_must_match() -> None:
    with pytest.raises(ConfigError):
        SigningKey(address=ADDR_B, secret=bytes.fromhex(KEY_A[2:]))


def test_load_key_from_env() -> None:
    assert load_signing_key(env={"ZKML_PRIVATE_KEY": KEY_A}).address == ADDR_A
    assert load_signing_key(env={"ZKML_PRIVATE_KEY": KEY_B[2:] + "\n"}).address == ADDR_B
    with pytest.raises(ConfigError, match="ZKML_PRIVATE_KEY"):
        load_signing_key(env={})
    with pytest.raises(ConfigError, match=r"\$ZKML_PRIVATE_KEY is not"):
        load_signing_key(env={"ZKML_PRIVATE_KEY": "0xdeadbeef"})


def test_load_key_from_env_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKML_PRIVATE_KEY", KEY_B)
    assert load_signing_key().address == ADDR_B


def test_load_key_from_hex_file(tmp_path: Path) -> None:
    p = tmp_path / "owner.key"
    p.write_text(KEY_A + "\n")
    assert load_signing_key(p, env={"ZKML_PRIVATE_KEY": KEY_B}).address == ADDR_A  # the file wins
    p.write_text("not a key at all")
    with pytest.raises(ConfigError) as exc:
        load_signing_key(p, env={})
    assert "not a key" not in str(exc.value)
    with pytest.raises(ConfigError, match="not found"):
        load_signing_key(tmp_path / "missing.key", env={})


def test_load_key_from_keystore(tmp_path: Path) -> None:
    keystore = Account.encrypt(KEY_A, "correct horse", kdf="pbkdf2", iterations=2)
    p = tmp_path / "owner.json"
    p.write_text(json.dumps(keystore))
    assert load_signing_key(p, password="correct horse", env={}).address == ADDR_A
    assert load_signing_key(p, env={"ZKML_KEY_PASSWORD": "correct horse"}).address == ADDR_A
    with pytest.raises(ConfigError, match="ZKML_KEY_PASSWORD"):
        load_signing_key(p, env={})
    with pytest.raises(ConfigError, match="wrong password") as exc:
        load_signing_key(p, password="wrong", env={})
    assert "wrong" not in str(exc.value).replace("wrong password", "")
    p.write_text("{broken json")
    with pytest.raises(ConfigError, match="neither a hex key nor keystore"):
        load_signing_key(p, password="x", env={})


def test_sign_with_loaded_key_verifies() -> None:
    key = load_signing_key(env={"ZKML_PRIVATE_KEY": KEY_A})
    sig = sign_record(RECORD, key, CHAIN, REGISTRY)
    assert sig == sign_record(RECORD, bytes.fromhex(KEY_A[2:]), CHAIN, REGISTRY)
    assert verify_record(RECORD, sig, key.address, CHAIN, REGISTRY)
