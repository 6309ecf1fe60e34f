"""Signed model records: the owner's EIP-712 signature over a model's identity.

A model record binds a model id and version to everything the registry will
store for it: the verifier contract (and the reusable verifier's VK artifact),
the digests that define the model (ONNX file, weights commitment, verifying
key, training-data root), the public-instance layout and the metadata URI. The
owner signs it with an Ethereum key as EIP-712 typed data, so the signature can
be checked off chain (``verify_record``) and on chain by
``verifiers/ModelRegistry.sol`` (OpenZeppelin ``EIP712`` + ``ECDSA``), where
``registerSigned`` / ``proposeUpdateSigned`` accept it from any submitter.

Why the verifier, VK artifact and layout are signed: the digests alone say
*which* model, but the registry routes proofs to ``verifier``; a front-runner
who could pair the owner's signed digests with his own verifier (one that
accepts anything) or with a layout that skips the weights-commitment check
would own the model's name on chain.

Typed data (the spec the Solidity registry reproduces)
======================================================
Domain (OpenZeppelin ``EIP712(name, version)``; no salt)::

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
    name              = "zkml ModelRegistry"
    version           = "2"
    chainId           = the chain's id
    verifyingContract = the registry's address

Types (:data:`INSTANCE_LAYOUT_TYPE`, :data:`MODEL_RECORD_TYPE`, :data:`MODEL_UPDATE_TYPE`;
per EIP-712 ``encodeType``, a type string is followed by the types it references,
sorted by name)::

    InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,uint32 outputOffset,uint32 outputLen)
    ModelRecord(bytes32 modelId,uint64 version,address verifier,bytes32 verifierCodeHash,address vka,address deferredVerifier,bytes32 deferredCodeHash,bytes32 onnxSha256,bytes32 weightsCommitment,bytes32 vkDigest,bytes32 datasetRoot,uint64 challengeWindow,InstanceLayout layout,string metadataURI)InstanceLayout(...)
    ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)InstanceLayout(...)ModelRecord(...)

Hashes, with ``keccak256`` and Solidity's ``abi.encode``::

    layoutHash      = keccak256(abi.encode(LAYOUT_TYPEHASH, total, inputOffset, inputLen, weightsOffset,
                                           weightsLen, outputOffset, outputLen))
    recordHash      = keccak256(abi.encode(RECORD_TYPEHASH, modelId, version, verifier, verifierCodeHash, vka,
                                           deferredVerifier, deferredCodeHash, onnxSha256, weightsCommitment,
                                           vkDigest, datasetRoot, challengeWindow, layoutHash,
                                           keccak256(bytes(metadataURI))))
    updateHash      = keccak256(abi.encode(UPDATE_TYPEHASH, recordHash, testInputCommitment,
                                           predictedOutputCommitment))
    domainSeparator = keccak256(abi.encode(
                          keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                          keccak256("zkml ModelRegistry"), keccak256("1"), chainId, verifyingContract))
    digest          = keccak256("\\x19\\x01" ‖ domainSeparator ‖ structHash)

In Solidity that is ``_hashTypedDataV4(structHash)``, and the signer is
``ECDSA.recover(digest, signature)``. Signatures are 65 bytes ``r ‖ s ‖ v``
with ``v`` in {27, 28}; like OpenZeppelin's ``ECDSA``, verification refuses
``s`` in the upper half of the curve order (malleable signatures).

Field meanings: ``modelId`` is the owner's namespaced id,
``keccak256(abi.encode(owner, keccak256(name)))`` (``ModelRegistry.modelIdOf``); ``version`` is the version number the record will get: 1 for a
registration, the registry's latest version + 1 for an update (the registry
never reuses a number, so a signature is usable once); ``verifier`` is the
verifier contract and ``vka`` the VK-artifact contract of a reusable verifier
(the zero address otherwise); ``verifierCodeHash`` / ``deferredCodeHash`` are the
``extcodehash`` of the verifier and of its deferred-pairing variant ``deferredVerifier`` (used by
``verifyBatch``; zero address and hash when none), so the signature pins code, not just addresses;
``challengeWindow`` is how long the model's next update must wait; ``onnxSha256`` is :func:`zkml.commitments.dataset.onnx_digest`;
``weightsCommitment`` is the circuit's weights commitment (ezkl's Poseidon hash
of the parameters with ``hashed`` visibility, or :func:`zkml.commitments.dataset.weights_digest`);
``vkDigest`` is the sha256 of the verifying key; ``datasetRoot`` is the
dataset Merkle root from :mod:`zkml.commitments.dataset` (zero when not committed);
``layout`` says where inputs, weights commitment and outputs sit in a proof's
public instances. A ``ModelUpdate`` adds the update's challenge commitments
(``commit(test input)``, ``commit(predicted output)``), so a submitter cannot
swap them.

Keys
====
The signing key comes from :mod:`zkml.keys` (``ZKML_PRIVATE_KEY`` or a key
file: a hex private key, or an encrypted Ethereum keystore JSON whose
password is given or taken from ``ZKML_KEY_PASSWORD``). A key is held in a
:class:`zkml.keys.SigningKey` (re-exported here) whose repr shows only its
address; error messages name where a key came from, never its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import is_checksum_address, is_checksum_formatted_address, is_hex_address, keccak, to_checksum_address

from zkml.commitments import hex32, to_bytes32
from zkml.errors import InputError
from zkml.keys import SECP256K1_N, SigningKey, load_eth_key

DOMAIN_NAME: Final[str] = "zkml ModelRegistry"
"""EIP-712 domain name of the registry."""

DOMAIN_VERSION: Final[str] = "2"
"""EIP-712 domain version of the registry."""

EIP712_DOMAIN_TYPE: Final[str] = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
"""The EIP-712 domain type string (OpenZeppelin ``EIP712``'s ``TYPE_HASH`` preimage)."""

INSTANCE_LAYOUT_TYPE: Final[str] = (
    "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
    "uint32 outputOffset,uint32 outputLen)"
)
"""The EIP-712 type string of the instance layout (``LAYOUT_TYPEHASH`` preimage)."""

MODEL_RECORD_TYPE: Final[str] = (
    "ModelRecord(bytes32 modelId,uint64 version,address verifier,bytes32 verifierCodeHash,address vka,"
    "address deferredVerifier,bytes32 deferredCodeHash,bytes32 onnxSha256,bytes32 weightsCommitment,"
    "bytes32 vkDigest,bytes32 datasetRoot,uint64 challengeWindow,InstanceLayout layout,string metadataURI)"
    + INSTANCE_LAYOUT_TYPE
)
"""The EIP-712 encoded type of a model record (``RECORD_TYPEHASH`` preimage)."""

MODEL_UPDATE_TYPE: Final[str] = (
    "ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)"
    + INSTANCE_LAYOUT_TYPE
    + MODEL_RECORD_TYPE.removesuffix(INSTANCE_LAYOUT_TYPE)
)
"""The EIP-712 encoded type of an update proposal (``UPDATE_TYPEHASH`` preimage)."""

LAYOUT_FIELDS: Final[tuple[str, ...]] = (
    "total",
    "inputOffset",
    "inputLen",
    "weightsOffset",
    "weightsLen",
    "outputOffset",
    "outputLen",
)
"""Field names of ``InstanceLayout``, in order (:attr:`ModelRecord.layout` is a tuple in this order)."""

ZERO_ADDRESS: Final[str] = "0x" + "00" * 20
"""The zero address (no VK artifact; an unbound verifier)."""


_DOMAIN_FIELDS: Final[list[dict[str, str]]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

_TYPES: Final[dict[str, list[dict[str, str]]]] = {
    "EIP712Domain": _DOMAIN_FIELDS,
    "InstanceLayout": [{"name": name, "type": "uint32"} for name in LAYOUT_FIELDS],
    "ModelRecord": [
        {"name": "modelId", "type": "bytes32"},
        {"name": "version", "type": "uint64"},
        {"name": "verifier", "type": "address"},
        {"name": "verifierCodeHash", "type": "bytes32"},
        {"name": "vka", "type": "address"},
        {"name": "deferredVerifier", "type": "address"},
        {"name": "deferredCodeHash", "type": "bytes32"},
        {"name": "onnxSha256", "type": "bytes32"},
        {"name": "weightsCommitment", "type": "bytes32"},
        {"name": "vkDigest", "type": "bytes32"},
        {"name": "datasetRoot", "type": "bytes32"},
        {"name": "challengeWindow", "type": "uint64"},
        {"name": "layout", "type": "InstanceLayout"},
        {"name": "metadataURI", "type": "string"},
    ],
    "ModelUpdate": [
        {"name": "record", "type": "ModelRecord"},
        {"name": "testInputCommitment", "type": "bytes32"},
        {"name": "predictedOutputCommitment", "type": "bytes32"},
    ],
}


class SignatureError(InputError):
    """A signature is malformed (not 65 bytes of hex) or recovers to no address."""


# ---------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------

_BYTES32_FIELDS: Final[tuple[str, ...]] = (
    "model_id",
    "onnx_sha256",
    "weights_commitment",
    "vk_digest",
    "dataset_root",
    "verifier_code_hash",
    "deferred_code_hash",
)


@dataclass(frozen=True)
class ModelRecord:
    """A model version as its owner signs it (EIP-712 ``ModelRecord``): what the registry will store."""

    model_id: bytes
    """``modelId``: the 32-byte namespaced id, keccak256(abi.encode(owner, keccak256(name)))."""

    version: int
    """``version``: uint64 version number the record gets (1 to register; latest + 1 for an update)."""

    onnx_sha256: bytes
    """``onnxSha256``: sha256 of the ONNX file's bytes (32 bytes)."""

    weights_commitment: bytes
    """``weightsCommitment``: commitment to the weights (ezkl Poseidon hash or weights digest, 32 bytes)."""

    vk_digest: bytes
    """``vkDigest``: sha256 of the circuit's verifying key (32 bytes)."""

    dataset_root: bytes
    """``datasetRoot``: Merkle root of the training/evaluation dataset, or 32 zero bytes."""

    metadata_uri: str = ""
    """``metadataURI``: where to find the model card; signed as keccak256 of its UTF-8 bytes."""

    verifier: str = ZERO_ADDRESS
    """``verifier``: the verifier contract proofs are routed to (checksummed; the registry refuses zero)."""

    vka: str = ZERO_ADDRESS
    """``vka``: the reusable verifier's VK-artifact contract, or the zero address (checksummed)."""

    layout: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)
    """``layout``: the 7 ``InstanceLayout`` uint32 fields, in :data:`LAYOUT_FIELDS` order."""

    verifier_code_hash: bytes = bytes(32)
    """``verifierCodeHash``: ``extcodehash(verifier)``; the registry refuses other code (32 bytes)."""

    deferred_verifier: str = ZERO_ADDRESS
    """``deferredVerifier``: the deferred-pairing verifier ``verifyBatch`` uses, or the zero address."""

    deferred_code_hash: bytes = bytes(32)
    """``deferredCodeHash``: ``extcodehash(deferredVerifier)``, zero when there is none (32 bytes)."""

    challenge_window: int = 0
    """``challengeWindow``: uint64 seconds the model's next update must wait while this version is active."""

    def __post_init__(self) -> None:
        """Raise :class:`InputError` for a field of the wrong type or size; checksum the addresses."""
        for name in _BYTES32_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise InputError(f"ModelRecord.{name} must be 32 bytes")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or not 0 <= self.version < 2**64:
            raise InputError(f"ModelRecord.version must be an integer in [0, 2**64), got {self.version!r}")
        if not isinstance(self.metadata_uri, str):
            raise InputError("ModelRecord.metadata_uri must be a string")
        object.__setattr__(self, "verifier", checksum_address(self.verifier, "ModelRecord.verifier"))
        object.__setattr__(self, "vka", checksum_address(self.vka, "ModelRecord.vka"))
        object.__setattr__(self, "deferred_verifier",
                           checksum_address(self.deferred_verifier, "ModelRecord.deferred_verifier"))
        w = self.challenge_window
        if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w < 2**64:
            raise InputError(f"ModelRecord.challenge_window must be an integer in [0, 2**64), got {w!r}")
        layout = self.layout
        if (
            not isinstance(layout, (tuple, list))
            or len(layout) != len(LAYOUT_FIELDS)
            or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**32 for v in layout)
        ):
            raise InputError(f"ModelRecord.layout must be {len(LAYOUT_FIELDS)} integers in [0, 2**32)")
        object.__setattr__(self, "layout", tuple(layout))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRecord:
        """Parse the form written by :meth:`to_json` (hex bytes32, EIP-712 field names).

        ``vka`` and ``metadataURI`` may be omitted (zero address, empty).
        Raises :class:`InputError` for missing keys or bad values.
        """
        try:
            layout = data["layout"]
            if not isinstance(layout, Mapping):
                raise InputError("model record layout must be an object with the InstanceLayout fields")
            return cls(
                model_id=to_bytes32(data["modelId"], "modelId"),
                version=data["version"],
                verifier=data["verifier"],
                vka=data.get("vka", ZERO_ADDRESS),
                onnx_sha256=to_bytes32(data["onnxSha256"], "onnxSha256"),
                weights_commitment=to_bytes32(data["weightsCommitment"], "weightsCommitment"),
                vk_digest=to_bytes32(data["vkDigest"], "vkDigest"),
                dataset_root=to_bytes32(data["datasetRoot"], "datasetRoot"),
                layout=tuple(layout[name] for name in LAYOUT_FIELDS),
                metadata_uri=data.get("metadataURI", ""),
                verifier_code_hash=to_bytes32(data.get("verifierCodeHash", "0x" + "00" * 32), "verifierCodeHash"),
                deferred_verifier=data.get("deferredVerifier", ZERO_ADDRESS),
                deferred_code_hash=to_bytes32(data.get("deferredCodeHash", "0x" + "00" * 32), "deferredCodeHash"),
                challenge_window=data.get("challengeWindow", 0),
            )
        except KeyError as e:
            raise InputError(f"model record is missing {e.args[0]!r}") from None

    def to_json(self) -> dict[str, Any]:
        """JSON form with EIP-712 field names and ``0x`` hex bytes32."""
        return {
            "modelId": hex32(self.model_id),
            "version": self.version,
            "verifier": self.verifier,
            "verifierCodeHash": hex32(self.verifier_code_hash),
            "vka": self.vka,
            "deferredVerifier": self.deferred_verifier,
            "deferredCodeHash": hex32(self.deferred_code_hash),
            "onnxSha256": hex32(self.onnx_sha256),
            "weightsCommitment": hex32(self.weights_commitment),
            "vkDigest": hex32(self.vk_digest),
            "datasetRoot": hex32(self.dataset_root),
            "challengeWindow": self.challenge_window,
            "layout": dict(zip(LAYOUT_FIELDS, self.layout, strict=True)),
            "metadataURI": self.metadata_uri,
        }

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` object (bytes32 as raw bytes), as eth_account takes it."""
        return {
            "modelId": self.model_id,
            "version": self.version,
            "verifier": self.verifier,
            "verifierCodeHash": self.verifier_code_hash,
            "vka": self.vka,
            "deferredVerifier": self.deferred_verifier,
            "deferredCodeHash": self.deferred_code_hash,
            "onnxSha256": self.onnx_sha256,
            "weightsCommitment": self.weights_commitment,
            "vkDigest": self.vk_digest,
            "datasetRoot": self.dataset_root,
            "challengeWindow": self.challenge_window,
            "layout": dict(zip(LAYOUT_FIELDS, self.layout, strict=True)),
            "metadataURI": self.metadata_uri,
        }


@dataclass(frozen=True)
class ModelUpdate:
    """An update proposal as the model owner signs it (EIP-712 ``ModelUpdate``)."""

    record: ModelRecord
    """The proposed version (``record.version`` = the registry's latest version + 1)."""

    test_input_commitment: bytes
    """``testInputCommitment``: commit(input slice) of the proposer's test input (32 bytes)."""

    predicted_output_commitment: bytes
    """``predictedOutputCommitment``: commit(output slice) the proposed model gives on it (32 bytes)."""

    def __post_init__(self) -> None:
        """Raise :class:`InputError` for a field of the wrong type or size."""
        if not isinstance(self.record, ModelRecord):
            raise InputError("ModelUpdate.record must be a ModelRecord")
        for name in ("test_input_commitment", "predicted_output_commitment"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise InputError(f"ModelUpdate.{name} must be 32 bytes")

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` object, as eth_account takes it."""
        return {
            "record": self.record.message(),
            "testInputCommitment": self.test_input_commitment,
            "predictedOutputCommitment": self.predicted_output_commitment,
        }


Signable = ModelRecord | ModelUpdate
"""What an owner signs: a record (registration) or an update proposal."""


# ---------------------------------------------------------------------------
# Typed data and digests
# ---------------------------------------------------------------------------


def checksum_address(value: str, what: str = "address") -> str:
    """The EIP-55 checksummed form of a ``0x`` + 40 hex digit address.

    All-lowercase and all-uppercase digits are accepted as is; mixed case must
    carry a valid EIP-55 checksum (a typo guard). Raises :class:`InputError`
    otherwise.
    """
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or not is_hex_address(value):
        raise InputError(f"{what} is not a 0x-prefixed 20-byte hex address: {value!r}")
    if is_checksum_formatted_address(value) and not is_checksum_address(value):
        raise InputError(f"{what} has an invalid EIP-55 checksum: {value!r}")
    return str(to_checksum_address(value))


def _checked_domain(chain_id: int, registry_address: str) -> dict[str, Any]:
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 < chain_id < 2**256:
        raise InputError(f"chain id must be a positive integer below 2**256, got {chain_id!r}")
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": checksum_address(registry_address, "registry address"),
    }


def typed_data(record: Signable, chain_id: int, registry_address: str) -> dict[str, Any]:
    """The full EIP-712 typed-data object (``types``, ``primaryType``, ``domain``, ``message``).

    ``primaryType`` is ``ModelRecord`` or ``ModelUpdate`` after the type of
    ``record``. Hex-encode the bytes32 values to hand it to a wallet's
    ``eth_signTypedData_v4``. Raises :class:`InputError` for a bad chain id
    or address, or something that is neither a record nor an update.
    """
    if isinstance(record, ModelRecord):
        primary = "ModelRecord"
        types = {k: _TYPES[k] for k in ("EIP712Domain", "ModelRecord", "InstanceLayout")}
    elif isinstance(record, ModelUpdate):
        primary = "ModelUpdate"
        types = dict(_TYPES)
    else:
        raise InputError(f"can only sign a ModelRecord or ModelUpdate, not {type(record).__name__}")
    return {
        "types": types,
        "primaryType": primary,
        "domain": _checked_domain(chain_id, registry_address),
        "message": record.message(),
    }


def _signable(record: Signable, chain_id: int, registry_address: str) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(record, chain_id, registry_address))


def layout_typehash() -> bytes:
    """``keccak256(INSTANCE_LAYOUT_TYPE)``: the registry's ``LAYOUT_TYPEHASH``."""
    return keccak(text=INSTANCE_LAYOUT_TYPE)


def record_typehash() -> bytes:
    """``keccak256(MODEL_RECORD_TYPE)``: the registry's ``RECORD_TYPEHASH``."""
    return keccak(text=MODEL_RECORD_TYPE)


def update_typehash() -> bytes:
    """``keccak256(MODEL_UPDATE_TYPE)``: the registry's ``UPDATE_TYPEHASH``."""
    return keccak(text=MODEL_UPDATE_TYPE)


def domain_separator(chain_id: int, registry_address: str) -> bytes:
    """The EIP-712 domain separator of the registry at ``registry_address`` on ``chain_id``.

    Raises :class:`InputError` for a bad chain id or address.
    """
    zero = ModelRecord(bytes(32), 0, bytes(32), bytes(32), bytes(32), bytes(32), "")
    return bytes(_signable(zero, chain_id, registry_address).header)


def record_struct_hash(record: Signable) -> bytes:
    """EIP-712 ``hashStruct(record)`` of a record or update (independent of the domain)."""
    return bytes(_signable(record, 1, ZERO_ADDRESS).body)


def record_digest(record: Signable, chain_id: int, registry_address: str) -> bytes:
    """The 32-byte EIP-712 digest that is signed: ``keccak256(0x1901 ‖ domainSeparator ‖ structHash)``.

    Equal to Solidity's ``_hashTypedDataV4(structHash)`` in the registry.
    Raises :class:`InputError` for a bad chain id or address.
    """
    signable = _signable(record, chain_id, registry_address)
    return keccak(b"\x19" + bytes(signable.version) + bytes(signable.header) + bytes(signable.body))


# ---------------------------------------------------------------------------
# Keys (loaded by zkml.keys; the names stay importable from here)
# ---------------------------------------------------------------------------


def load_signing_key(
    key_file: str | os.PathLike[str] | None = None,
    *,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
) -> SigningKey:
    """The owner's signing key: :func:`zkml.keys.load_eth_key` with a key required.

    Raises :class:`ConfigError` when no key is configured or it cannot be
    loaded (messages never contain key material).
    """
    key = load_eth_key(key_file, password=password, env=env, required=True)
    assert key is not None
    return key


def _as_signing_key(private_key: SigningKey | bytes | str) -> SigningKey:
    if isinstance(private_key, SigningKey):
        return private_key
    return SigningKey.from_secret(private_key)


# ---------------------------------------------------------------------------
# Sign, recover, verify
# ---------------------------------------------------------------------------


def sign_record(
    record: Signable, private_key: SigningKey | bytes | str, chain_id: int, registry_address: str
) -> str:
    """Sign ``record`` (a registration record or an update) for the registry at ``registry_address`` on ``chain_id``.

    Returns the 65-byte signature ``r ‖ s ‖ v`` (``v`` in {27, 28}, low ``s``)
    as ``0x`` hex, the form ``ECDSA.recover`` takes. Raises
    :class:`ConfigError` for a malformed key and :class:`InputError` for a
    bad chain id or address.
    """
    key = _as_signing_key(private_key)
    signed = Account.sign_message(_signable(record, chain_id, registry_address), key.secret)
    return "0x" + bytes(signed.signature).hex()


def _parse_signature(signature: bytes | str) -> bytes:
    if isinstance(signature, str):
        text = signature[2:] if signature[:2] in ("0x", "0X") else signature
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise SignatureError("signature is not hexadecimal") from None
    elif isinstance(signature, bytes):
        raw = signature
    else:
        raise SignatureError(f"signature must be bytes or hex, got {type(signature).__name__}")
    if len(raw) != 65:
        raise SignatureError(f"signature must be 65 bytes (r, s, v), got {len(raw)}")
    return raw


def recover_signer(record: Signable, signature: bytes | str, chain_id: int, registry_address: str) -> str:
    """The checksummed address that signed ``record`` for this registry and chain.

    Follows OpenZeppelin ``ECDSA.recover``: raises :class:`SignatureError`
    when the signature is not 65 bytes, ``v`` is not 27 or 28, ``s`` is in the
    upper half of the curve order, or no public key recovers; raises
    :class:`InputError` for a bad chain id or address.
    """
    raw = _parse_signature(signature)
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28):
        raise SignatureError(f"signature v must be 27 or 28, got {v}")
    if s > SECP256K1_N // 2:
        raise SignatureError("signature s is in the upper half of the curve order (malleable)")
    if not 0 < r < SECP256K1_N or s == 0:
        raise SignatureError("signature r or s is out of range")
    signable = _signable(record, chain_id, registry_address)
    try:
        return str(Account.recover_message(signable, signature=raw))
    except Exception as e:  # eth_keys raises BadSignature / ValidationError for points off the curve
        raise SignatureError(f"signature does not recover to an address ({type(e).__name__})") from None


def verify_record(
    record: Signable,
    signature: bytes | str,
    expected_signer: str,
    chain_id: int,
    registry_address: str,
) -> bool:
    """True iff ``signature`` is ``expected_signer``'s signature of ``record`` for this registry and chain.

    A well-formed signature by another key, over another record, domain or
    chain, or one OpenZeppelin's ``ECDSA`` would refuse (bad ``v``, high
    ``s``), returns False. Raises :class:`InputError` when
    ``expected_signer``, the chain id or the registry address is malformed,
    and :class:`SignatureError` when the signature is not 65 bytes of hex.
    """
    signer_address = checksum_address(expected_signer, "expected signer")
    raw = _parse_signature(signature)
    _checked_domain(chain_id, registry_address)
    try:
        signer = recover_signer(record, raw, chain_id, registry_address)
    except SignatureError:
        return False
    return signer == signer_address
