"""What the model registry stores, in Python and in its ABI form: ids, layouts, records, commitments.

Pure data and helpers, no RPC: :func:`to_model_id` / :func:`to_bytes32`,
:class:`InstanceLayout` (where inputs, weights commitment and outputs sit in a
proof's public instances, derived from ezkl's settings), :class:`ModelRecord`
(one version, with its ABI tuple and EIP-712 signable form),
:class:`PendingUpdate`, :class:`ModelInfo`, and the commitments an update
proposal carries (:func:`commit`, :func:`proposal_commitments`) or a dataset
row check sends (:func:`row_calldata`). :mod:`zkml.evm.registry` re-exports
every public name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from eth_utils import keccak, to_checksum_address

from zkml.evm.registry import signing as provenance
from zkml.errors import ConfigError, InputError
from zkml.evm.abi import keccak_words
from zkml.evm.verifier import VerifierDeployment, read_proof
from zkml.util import read_json

ZERO32: Final[bytes] = b"\x00" * 32


# Identifiers and digests


def to_model_id(value: str | bytes) -> bytes:
    """A 32-byte model id: ``0x`` + 64 hex digits as is, raw 32 bytes as is, else keccak256 of the UTF-8 name.

    Raises:
        ConfigError: empty name.
    """
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ConfigError("a raw model id must be 32 bytes")
        return value
    if value.startswith("0x") and len(value) == 66:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    if not value:
        raise ConfigError("the model id must not be empty")
    return keccak(value.encode())


def model_id_of(owner: str, name: str | bytes) -> bytes:
    """The registry's id of ``name`` in ``owner``'s namespace: ``keccak256(abi.encode(owner, to_model_id(name)))``.

    The registry derives every id this way from the registrant's address
    (``ModelRegistry.modelIdOf``), so nobody can take a name in another
    account's namespace.

    Raises:
        ConfigError: empty name or malformed address.
    """
    try:
        addr = bytes.fromhex(to_checksum_address(owner)[2:])
    except (ValueError, TypeError):
        raise ConfigError(f"not an address: {owner!r}") from None
    return keccak(addr.rjust(32, b"\0") + to_model_id(name))


def parse_model_ref(value: str | bytes, default_owner: str | None) -> bytes:
    """The model id a user names: ``0x`` + 64 hex digits (or 32 raw bytes) as is, ``0xOWNER/name``
    in that owner's namespace, and a bare name in ``default_owner``'s.

    Raises:
        ConfigError: empty, a bare name with no default owner, or a malformed owner.
    """
    if isinstance(value, bytes):
        return to_model_id(value)
    if value.startswith("0x") and len(value) == 66:
        return to_model_id(value)
    owner, sep, name = value.partition("/")
    if sep and owner.startswith("0x") and len(owner) == 42:
        return model_id_of(owner, name)
    if default_owner is None:
        raise ConfigError(f"model {value!r}: name its owner (0xOWNER/{value}) or give the 0x model id")
    return model_id_of(default_owner, value)


def to_bytes32(value: str | bytes | int | None, what: str = "value") -> bytes:
    """A bytes32 from hex (sha256 digests, 0x-prefixed or not), raw bytes, an int, or None (zero).

    Raises:
        ConfigError: not 32 bytes.
    """
    if value is None:
        return ZERO32
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"{what} is not hex") from None
    if len(value) != 32:
        raise ConfigError(f"{what} must be 32 bytes, got {len(value)}")
    return bytes(value)


# Layout


def _visibility(raw: Any) -> tuple[str, bool]:
    """(kind, hash_is_public) from ezkl's settings encoding ("Public", {"Hashed": {...}}, ...)."""
    if isinstance(raw, Mapping):
        kind = next(iter(raw), "")
        inner = raw.get(kind)
        public = bool(inner.get("hash_is_public", True)) if isinstance(inner, Mapping) else True
        return str(kind).lower(), public
    return str(raw).lower(), True


@dataclass(frozen=True)
class InstanceLayout:
    """Where inputs, weights commitment and outputs sit in a proof's public instances."""

    total: int
    """Number of public instances."""
    input_offset: int
    """First input instance (raw inputs, or their Poseidon hash)."""
    input_len: int
    """Number of input instances (0: inputs private)."""
    weights_offset: int
    """First weights-commitment instance."""
    weights_len: int
    """0 when the VK binds the weights (fixed params); else the Poseidon hash slice."""
    output_offset: int
    """First output instance."""
    output_len: int
    """Number of output instances (0: outputs private)."""

    def as_tuple(self) -> tuple[int, ...]:
        """ABI tuple order of the Solidity struct."""
        return (self.total, self.input_offset, self.input_len, self.weights_offset, self.weights_len,
                self.output_offset, self.output_len)

    @classmethod
    def from_abi(cls, d: Mapping[str, Any]) -> InstanceLayout:
        """From the decoded struct (dict by field name)."""
        return cls(int(d["total"]), int(d["inputOffset"]), int(d["inputLen"]), int(d["weightsOffset"]),
                   int(d["weightsLen"]), int(d["outputOffset"]), int(d["outputLen"]))

    @classmethod
    def from_settings(cls, settings: str | os.PathLike[str] | Mapping[str, Any]) -> InstanceLayout:
        """Derive the layout from ezkl's ``settings.json``.

        ezkl 23.0.5 orders instances as (measured on real proofs): the
        Poseidon hash of a hashed input (one per input tensor), the hash of
        hashed params (one), the raw public inputs, then the outputs — raw
        when public, their hash (one per output tensor) when hashed.

        Raises:
            ConfigError: unreadable settings, or params whose visibility does
                not bind the weights (private, polycommit), or hash counts
                that do not add up to ezkl's module sizes.
        """
        try:
            s: Any = settings if isinstance(settings, Mapping) else read_json(settings)
            ra = s["run_args"]
            shapes = [list(map(int, sh)) for sh in s["model_instance_shapes"]]
            n_in = len(s.get("model_input_scales", [])) or 1
            n_out = len(s.get("model_output_scales", [])) or 1
            hashed_total = sum(int(x) for x in s.get("module_sizes", {}).get("poseidon", [0, [0]])[1])
            vis_in, pub_in = _visibility(ra["input_visibility"])
            vis_par, pub_par = _visibility(ra["param_visibility"])
            vis_out, pub_out = _visibility(ra["output_visibility"])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise ConfigError(f"cannot read circuit settings: {e}") from e

        if vis_par not in ("fixed", "hashed") or (vis_par == "hashed" and not pub_par):
            raise ConfigError(
                f"param visibility {vis_par!r} does not bind the weights to the verifier; "
                "the registry needs fixed params or publicly hashed params"
            )

        def size(shape: list[int]) -> int:
            n = 1
            for d in shape:
                n *= d
            return n

        h_in = n_in if vis_in == "hashed" and pub_in else 0
        h_par = 1 if vis_par == "hashed" else 0
        h_out = n_out if vis_out == "hashed" and pub_out else 0
        if h_in + h_par + h_out != hashed_total:
            raise ConfigError(
                f"cannot derive the instance layout: {h_in + h_par + h_out} public hashes expected, "
                f"settings report {hashed_total}"
            )
        raw_in = sum(size(sh) for sh in shapes[:n_in]) if vis_in == "public" else 0
        raw_out_shapes = shapes[n_in:] if vis_in == "public" else shapes
        raw_out = sum(size(sh) for sh in raw_out_shapes[:n_out]) if vis_out == "public" else 0
        total = h_in + h_par + h_out + raw_in + raw_out
        # Measured on ezkl 23.0.5: [input hash][params hash][raw public input][output: raw or hash]
        if vis_in == "hashed":
            in_off, in_len = 0, h_in
        else:
            in_off, in_len = h_in + h_par, raw_in
        if vis_out == "hashed":
            out_off, out_len = h_in + h_par + raw_in, h_out
        else:
            out_off, out_len = h_in + h_par + raw_in, raw_out
        return cls(total, in_off, in_len, h_in if h_par else 0, h_par, out_off, out_len)

    def inputs(self, instances: Sequence[int]) -> list[int]:
        """The input slice of ``instances``."""
        return list(instances[self.input_offset : self.input_offset + self.input_len])

    def outputs(self, instances: Sequence[int]) -> list[int]:
        """The output slice of ``instances``."""
        return list(instances[self.output_offset : self.output_offset + self.output_len])

    def weights_commitment(self, instances: Sequence[int]) -> bytes:
        """The weights commitment a proof carries (zero when the VK binds the weights)."""
        if self.weights_len == 0:
            return ZERO32
        part = instances[self.weights_offset : self.weights_offset + self.weights_len]
        return int(part[0]).to_bytes(32, "big") if self.weights_len == 1 else keccak_words(part)


# Records


@dataclass(frozen=True)
class ModelRecord:
    """One version of a model as the registry stores it (every field is part of the signed record)."""

    verifier: str
    """Verifier contract (a reusable verifier when :attr:`vka` is set)."""
    onnx_sha256: bytes
    """sha256 of the ONNX file."""
    vk_digest: bytes
    """sha256 of the verification key."""
    layout: InstanceLayout
    """Instance layout of the circuit."""
    weights_commitment: bytes = ZERO32
    """Poseidon hash of the params (hashed params), or zero / informational digest when fixed."""
    dataset_root: bytes = ZERO32
    """Merkle root of the training data (keccak256 leaves, sorted pairs); zero if none."""
    metadata_uri: str = ""
    """Where humans find the model card."""
    vka: str | None = None
    """Data contract holding the VK artifact (reusable verifier only)."""
    verifier_code_hash: bytes = ZERO32
    """``extcodehash`` of :attr:`verifier`; the registry refuses a record (and later every verification)
    whose verifier code differs. Zero here: :class:`zkml.evm.registry.Registry` reads it from the chain."""
    deferred_verifier: str | None = None
    """Deferred-pairing variant of the verifier, used by ``verifyBatch`` (None: no batch verification)."""
    deferred_code_hash: bytes = ZERO32
    """``extcodehash`` of :attr:`deferred_verifier` (filled from the chain like :attr:`verifier_code_hash`)."""
    challenge_window: int | None = None
    """Seconds the next update of the model must wait while this version is active; None: the
    registry's minimum (filled in by :class:`zkml.evm.registry.Registry`)."""

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI tuple order of the Solidity struct."""
        return (
            to_checksum_address(self.verifier),
            to_bytes32(self.verifier_code_hash, "verifier code hash"),
            to_checksum_address(self.vka) if self.vka else "0x" + "00" * 20,
            to_checksum_address(self.deferred_verifier) if self.deferred_verifier else "0x" + "00" * 20,
            to_bytes32(self.deferred_code_hash, "deferred verifier code hash"),
            to_bytes32(self.onnx_sha256, "onnx sha256"),
            to_bytes32(self.weights_commitment, "weights commitment"),
            to_bytes32(self.vk_digest, "vk digest"),
            to_bytes32(self.dataset_root, "dataset root"),
            int(self.challenge_window or 0),
            self.layout.as_tuple(),
            self.metadata_uri,
        )

    @classmethod
    def from_abi(cls, d: Mapping[str, Any]) -> ModelRecord:
        """From the decoded struct (dict by field name)."""
        vka, deferred = str(d["vka"]), str(d["deferredVerifier"])
        return cls(
            verifier=str(d["verifier"]),
            verifier_code_hash=bytes(d["verifierCodeHash"]),
            vka=None if int(vka, 16) == 0 else vka,
            deferred_verifier=None if int(deferred, 16) == 0 else deferred,
            deferred_code_hash=bytes(d["deferredCodeHash"]),
            onnx_sha256=bytes(d["onnxSha256"]),
            weights_commitment=bytes(d["weightsCommitment"]),
            vk_digest=bytes(d["vkDigest"]),
            dataset_root=bytes(d["datasetRoot"]),
            challenge_window=int(d["challengeWindow"]),
            layout=InstanceLayout.from_abi(d["layout"]),
            metadata_uri=str(d["metadataURI"]),
        )

    @classmethod
    def for_deployment(
        cls,
        deployment: VerifierDeployment,
        *,
        onnx_sha256: str | bytes,
        vk_digest: str | bytes,
        layout: InstanceLayout,
        weights_commitment: str | bytes | None = None,
        dataset_root: str | bytes | None = None,
        metadata_uri: str = "",
        deferred_verifier: str | None = None,
        challenge_window: int | None = None,
    ) -> ModelRecord:
        """A record pointing at a deployed verifier (per-circuit or reusable)."""
        return cls(
            verifier=deployment.address,
            vka=deployment.vka_address,
            onnx_sha256=to_bytes32(onnx_sha256, "onnx sha256"),
            vk_digest=to_bytes32(vk_digest, "vk digest"),
            layout=layout,
            weights_commitment=to_bytes32(weights_commitment, "weights commitment"),
            dataset_root=to_bytes32(dataset_root, "dataset root"),
            metadata_uri=metadata_uri,
            deferred_verifier=deferred_verifier,
            challenge_window=challenge_window,
        )

    def signable(self, model_id: str | bytes, version: int) -> provenance.ModelRecord:
        """This record as ``version`` of the model id ``model_id``, in the EIP-712 form its owner signs.

        The code hashes and the window must be filled in (see :meth:`zkml.evm.registry.Registry.complete`).
        """
        return provenance.ModelRecord(
            model_id=to_model_id(model_id),
            version=int(version),
            verifier=to_checksum_address(self.verifier),
            verifier_code_hash=to_bytes32(self.verifier_code_hash, "verifier code hash"),
            vka=to_checksum_address(self.vka) if self.vka else provenance.ZERO_ADDRESS,
            deferred_verifier=(to_checksum_address(self.deferred_verifier) if self.deferred_verifier
                               else provenance.ZERO_ADDRESS),
            deferred_code_hash=to_bytes32(self.deferred_code_hash, "deferred verifier code hash"),
            onnx_sha256=to_bytes32(self.onnx_sha256, "onnx sha256"),
            weights_commitment=to_bytes32(self.weights_commitment, "weights commitment"),
            vk_digest=to_bytes32(self.vk_digest, "vk digest"),
            dataset_root=to_bytes32(self.dataset_root, "dataset root"),
            challenge_window=int(self.challenge_window or 0),
            layout=self.layout.as_tuple(),
            metadata_uri=self.metadata_uri,
        )

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form."""
        return {
            "verifier": self.verifier,
            "verifier_code_hash": "0x" + self.verifier_code_hash.hex(),
            "vka": self.vka,
            "deferred_verifier": self.deferred_verifier,
            "deferred_code_hash": "0x" + self.deferred_code_hash.hex(),
            "onnx_sha256": self.onnx_sha256.hex(),
            "weights_commitment": "0x" + self.weights_commitment.hex(),
            "vk_digest": self.vk_digest.hex(),
            "dataset_root": "0x" + self.dataset_root.hex(),
            "challenge_window": self.challenge_window,
            "layout": dict(zip(("total", "input_offset", "input_len", "weights_offset", "weights_len",
                                "output_offset", "output_len"), self.layout.as_tuple(), strict=True)),
            "metadata_uri": self.metadata_uri,
        }


@dataclass(frozen=True)
class PendingUpdate:
    """An update waiting out its challenge window."""

    version: int
    """Version number it will get."""
    deadline: int
    """Unix time from which it may be finalized (challenges before)."""
    test_input_commitment: bytes
    """commit(input slice) of the proposer's test input."""
    predicted_output_commitment: bytes
    """commit(output slice) the proposer claims the new model produces."""


@dataclass(frozen=True)
class ModelInfo:
    """A model's current state."""

    model_id: bytes
    """32-byte id."""
    owner: str
    """Owner address."""
    current_version: int
    """Active version."""
    latest_version: int
    """Highest version number ever proposed."""
    paused: bool
    """Whether verification is paused."""
    pending: PendingUpdate | None
    """The update in its challenge window, if any."""
    record: ModelRecord
    """The active record."""


def commit(values: Sequence[int]) -> bytes:
    """The registry's commitment: ``keccak256(abi.encodePacked(uint256[] values))``."""
    return keccak_words(values)


def proposal_commitments(layout: InstanceLayout, proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(commit(inputs), commit(outputs))`` of a proof: what ``propose_update`` needs.

    Make an honest proof of the *proposed* model on the test input and pass it here.
    """
    _, instances = read_proof(proof_json)
    return commit(layout.inputs(instances)), commit(layout.outputs(instances))


def row_calldata(features: Any, label: float | None) -> tuple[bytes, bytes]:
    """``(features, label)`` bytes of one dataset row as ``verifyDatasetRow`` takes them.

    Leaf encoding v1 of :mod:`zkml.commitments.dataset`: the row's values flattened in C
    order as big-endian float64, and the label as one big-endian float64
    (empty for an unlabelled dataset).

    Raises:
        InputError: NaN or infinite values.
    """
    values = np.asarray(features, dtype=np.float64)
    if not np.isfinite(values).all() or (label is not None and not np.isfinite(label)):
        raise InputError("a dataset row must not contain NaN or infinity")
    label_bytes = b"" if label is None else np.asarray([label], dtype=">f8").tobytes()
    return np.ascontiguousarray(values, dtype=">f8").tobytes(), label_bytes
