"""The challenge: alpha and its fields, the expected model, the challenge file, the auditor's key, issuing.

The alpha encoding, the challenge digest and the anti-replay rules are
described in the :mod:`zkml.audit` package docstring.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from eth_utils import keccak

from zkml import sampling, vrf
from zkml.audit.common import CHALLENGE_FORMAT, FORMAT_VERSION, AuditError, _read_doc
from zkml.bundle import now_iso
from zkml.commit import hex32, to_bytes32
from zkml.errors import ConfigError, InputError
from zkml.util import sha256_json, write_json_atomic

ALPHA_DOMAIN_TEXT: Final = "zkml-audit-challenge/v1"
ALPHA_DOMAIN: Final[bytes] = keccak(text=ALPHA_DOMAIN_TEXT)
"""First word of alpha: ``keccak256("zkml-audit-challenge/v1")``."""

DEFAULT_SUITE: Final = "secp256k1"
"""The suite ``VRFVerifier.sol`` checks on chain (0xFE)."""
SK_ENV: Final = "ZKML_VRF_SK"
"""Env var holding the auditor's VRF secret key as hex."""
KEY_FILE_FORMAT: Final = "zkml-vrf-key/1"
"""The key file ``zkml vrf keygen --out`` writes."""

LOCAL_BLOCK_NOTE: Final = (
    "the block hash was given by the auditor, not read from a chain: "
    "the sample's unpredictability rests on the auditor"
)


# ---------------------------------------------------------------------------
# Alpha, the expected model, the challenge
# ---------------------------------------------------------------------------


def _word(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise AuditError(f"{what} must be an integer in [0, 2**256), got {value!r}")
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class AlphaFields:
    """The values hashed into the VRF input (see the :mod:`zkml.audit` docstring)."""

    chain_id: int
    """EIP-155 chain id of the block (0 for a local audit without a chain)."""
    model_id: bytes
    """32-byte registry model id."""
    model_version: int
    """Registry version audited (0 for a local audit)."""
    dataset_root: bytes
    """Merkle root of the committed dataset."""
    n_rows: int
    """Rows under the root: the sampling population."""
    nonce: bytes
    """32 bytes chosen afresh by the auditor."""
    block_number: int
    """Number of the block whose hash is mixed in (0 if not given)."""
    block_hash: bytes
    """That block's hash."""

    def __post_init__(self) -> None:
        """Raise :class:`AuditError` for a field of the wrong type or size."""
        for name in ("model_id", "dataset_root", "nonce", "block_hash"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise AuditError(f"alpha field {name} must be 32 bytes")
        for name in ("chain_id", "model_version", "n_rows", "block_number"):
            _word(getattr(self, name), f"alpha field {name}")
        if self.n_rows < 1:
            raise AuditError("alpha field n_rows must be at least 1")

    def encode(self) -> bytes:
        """``alpha``: the 288-byte ABI encoding."""
        return b"".join(
            (
                ALPHA_DOMAIN,
                _word(self.chain_id, "chain id"),
                self.model_id,
                _word(self.model_version, "model version"),
                self.dataset_root,
                _word(self.n_rows, "n_rows"),
                self.nonce,
                _word(self.block_number, "block number"),
                self.block_hash,
            )
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form (bytes32 as ``0x`` hex)."""
        return {
            "domain": ALPHA_DOMAIN_TEXT,
            "chain_id": self.chain_id,
            "model_id": hex32(self.model_id),
            "model_version": self.model_version,
            "dataset_root": hex32(self.dataset_root),
            "n_rows": self.n_rows,
            "nonce": hex32(self.nonce),
            "block_number": self.block_number,
            "block_hash": hex32(self.block_hash),
        }

    @classmethod
    def from_json(cls, d: Any) -> AlphaFields:
        """Parse :meth:`to_json`'s form. Raises :class:`AuditError`."""
        if not isinstance(d, Mapping):
            raise AuditError("alpha_fields must be an object")
        if d.get("domain") != ALPHA_DOMAIN_TEXT:
            raise AuditError(f"unknown alpha domain {d.get('domain')!r} (expected {ALPHA_DOMAIN_TEXT!r})")
        try:
            return cls(
                chain_id=d["chain_id"],
                model_id=to_bytes32(d["model_id"], "model_id"),
                model_version=d["model_version"],
                dataset_root=to_bytes32(d["dataset_root"], "dataset_root"),
                n_rows=d["n_rows"],
                nonce=to_bytes32(d["nonce"], "nonce"),
                block_number=d["block_number"],
                block_hash=to_bytes32(d["block_hash"], "block_hash"),
            )
        except KeyError as e:
            raise AuditError(f"alpha_fields is missing {e.args[0]!r}") from None
        except InputError as e:
            raise AuditError(f"alpha_fields: {e.message}") from None


@dataclass(frozen=True)
class ExpectedModel:
    """What the audited model is: the proofs must be of exactly this model and circuit."""

    onnx_sha256: str | None
    """sha256 of the ONNX file (hex), from the registry record or the auditor."""
    vk_sha256: str | None
    """sha256 of the circuit's verifying key (hex), from the registry record or the auditor's circuit."""
    circuit_id: str | None = None
    """zkml circuit id, when the auditor named a circuit (locates its public artifacts)."""

    def __post_init__(self) -> None:
        """Raise :class:`AuditError` unless the digests are 64 lowercase hex digits (or None)."""
        for name in ("onnx_sha256", "vk_sha256"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) != 64
                                      or any(c not in "0123456789abcdef" for c in value)):
                raise AuditError(f"expected model {name} must be 64 lowercase hex digits, got {value!r}")
        if self.onnx_sha256 is None and self.vk_sha256 is None:
            raise AuditError("the audited model is unknown: give its ONNX digest or its circuit")

    def to_json(self) -> dict[str, Any]:
        return {"onnx_sha256": self.onnx_sha256, "vk_sha256": self.vk_sha256, "circuit_id": self.circuit_id}

    @classmethod
    def from_json(cls, d: Any) -> ExpectedModel:
        if not isinstance(d, Mapping):
            raise AuditError("model must be an object")
        cid = d.get("circuit_id")
        return cls(d.get("onnx_sha256"), d.get("vk_sha256"), str(cid) if cid is not None else None)


@dataclass(frozen=True)
class BlockRef:
    """The block whose hash goes into alpha, and where it came from."""

    chain_id: int
    """Chain id (0: no chain)."""
    number: int
    """Block number (0: not given)."""
    hash: bytes
    """Block hash (32 bytes)."""
    source: str
    """``chain`` (read from an RPC) or ``auditor`` (given by hand)."""


@dataclass(frozen=True)
class Challenge:
    """An issued audit challenge (the challenge file)."""

    suite: str
    """ECVRF suite short name (``secp256k1`` or ``p256``)."""
    pk: bytes
    """The auditor's VRF public key (33 bytes, compressed)."""
    fields: AlphaFields
    """What alpha encodes."""
    pi: bytes
    """VRF proof (81 bytes)."""
    beta: bytes
    """VRF output (32 bytes)."""
    k: int
    """Rows to prove."""
    indices: tuple[int, ...]
    """``sample_indices(beta, N, k)``, in draw order."""
    model: ExpectedModel
    """The audited model."""
    created: str
    """UTC time of issue (ISO 8601)."""
    block_source: str
    """``chain`` or ``auditor`` (see :class:`BlockRef`)."""
    registry: str | None = None
    """Registry address, for an on-chain audit."""
    activation_block: int | None = None
    """Block at which the audited version became active (on-chain audits)."""
    notes: tuple[str, ...] = ()
    """Caveats (e.g. a block hash given by hand)."""
    posted: Mapping[str, Any] | None = field(default=None, compare=False)
    """Receipt of the transaction that put the challenge on chain (outside the digest)."""

    @property
    def alpha(self) -> bytes:
        """The VRF input."""
        return self.fields.encode()

    @property
    def n(self) -> int:
        """The population size N."""
        return self.fields.n_rows

    def core(self) -> dict[str, Any]:
        """Everything the digest covers."""
        return {
            "format": CHALLENGE_FORMAT,
            "version": FORMAT_VERSION,
            "created": self.created,
            "suite": self.suite,
            "pk": self.pk.hex(),
            "alpha_fields": self.fields.to_json(),
            "alpha": self.alpha.hex(),
            "pi": self.pi.hex(),
            "beta": self.beta.hex(),
            "k": self.k,
            "n": self.n,
            "indices": list(self.indices),
            "model": self.model.to_json(),
            "block_source": self.block_source,
            "registry": self.registry,
            "activation_block": self.activation_block,
            "notes": list(self.notes),
        }

    @property
    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`core`."""
        return sha256_json(self.core())

    def to_json(self) -> dict[str, Any]:
        """The challenge file's content."""
        return {**self.core(), "posted": dict(self.posted) if self.posted else None, "digest": self.digest}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the challenge file atomically."""
        write_json_atomic(path, self.to_json())

    @classmethod
    def from_json(cls, doc: Any, source: str = "challenge") -> Challenge:
        """Parse and check a challenge: structure, VRF proof, indices, digest.

        Raises :class:`AuditError` for anything malformed or inconsistent.
        """
        if not isinstance(doc, Mapping) or doc.get("format") != CHALLENGE_FORMAT:
            raise AuditError(f"{source}: not a zkml audit challenge")
        if doc.get("version") != FORMAT_VERSION:
            raise AuditError(f"{source}: unsupported challenge version {doc.get('version')!r}")
        try:
            suite = vrf.get_suite(str(doc["suite"]))
            fields = AlphaFields.from_json(doc["alpha_fields"])
            k = doc["k"]
            indices = doc["indices"]
            if isinstance(k, bool) or not isinstance(k, int) or not isinstance(indices, list):
                raise AuditError(f"{source}: k must be an integer and indices a list")
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
                raise AuditError(f"{source}: indices must be integers")
            registry, activation, posted = doc.get("registry"), doc.get("activation_block"), doc.get("posted")
            if registry is not None and not isinstance(registry, str):
                raise AuditError(f"{source}: registry must be an address string")
            if activation is not None and (isinstance(activation, bool) or not isinstance(activation, int)):
                raise AuditError(f"{source}: activation_block must be an integer")
            if posted is not None and not isinstance(posted, Mapping):
                raise AuditError(f"{source}: posted must be an object")
            challenge = cls(
                suite=suite.short_name,
                pk=bytes.fromhex(str(doc["pk"])),
                fields=fields,
                pi=bytes.fromhex(str(doc["pi"])),
                beta=bytes.fromhex(str(doc["beta"])),
                k=k,
                indices=tuple(indices),
                model=ExpectedModel.from_json(doc["model"]),
                created=str(doc["created"]),
                block_source=str(doc["block_source"]),
                registry=registry,
                activation_block=activation,
                notes=tuple(str(n) for n in doc.get("notes") or ()),
                posted=posted,
            )
        except KeyError as e:
            raise AuditError(f"{source}: malformed challenge (missing {e.args[0]!r})") from None
        except (ValueError, TypeError) as e:
            raise AuditError(f"{source}: malformed challenge ({e})") from None
        except AuditError as e:
            raise AuditError(e.message if e.message.startswith(source) else f"{source}: {e.message}") from None
        except vrf.VRFError as e:
            raise AuditError(f"{source}: {e.message}") from None
        # Consistency: alpha, the VRF proof, the indices, the digest
        if doc.get("alpha") != challenge.alpha.hex():
            raise AuditError(f"{source}: alpha does not match its fields")
        problem = challenge.vrf_problem()
        if problem:
            raise AuditError(f"{source}: {problem}")
        if doc.get("n") != challenge.n:
            raise AuditError(f"{source}: n does not match alpha_fields.n_rows")
        if doc.get("digest") != challenge.digest:
            raise AuditError(f"{source}: the digest does not match the content (edited challenge)")
        return challenge

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Challenge:
        """Read and check a challenge file. Raises :class:`AuditError`."""
        return cls.from_json(_read_doc(path, "challenge"), source=str(path))

    def vrf_problem(self) -> str | None:
        """Why the VRF evidence is wrong (proof, beta or indices), or None when it holds."""
        beta = vrf.verify(self.suite, self.pk, self.alpha, self.pi)
        if beta is None:
            return "the VRF proof does not verify for this public key and alpha"
        if beta != self.beta:
            return "beta is not the VRF output of the proof"
        try:
            expected = sampling.sample_indices(beta, self.n, self.k)
        except sampling.SamplingError as e:
            return e.message
        if list(self.indices) != expected:
            return "the indices are not sample_indices(beta, N, k)"
        return None


# ---------------------------------------------------------------------------
# Keys and ids
# ---------------------------------------------------------------------------


def load_vrf_key(
    key_file: str | os.PathLike[str] | None = None,
    suite: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> tuple[bytes, vrf.Suite]:
    """The auditor's VRF secret key and suite: from ``key_file`` if given, else ``$ZKML_VRF_SK``.

    A key file is the JSON of ``zkml vrf keygen --out`` (it names its suite) or
    a file holding the key as hex. ``suite`` defaults to the key file's, else
    secp256k1. Raises :class:`ConfigError` (never quoting the key) for a
    missing, unreadable or malformed key, or a suite that contradicts the file.
    """
    environ = os.environ if env is None else env
    file_suite: str | None = None
    if key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(f"VRF key file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read VRF key file {path} ({type(e).__name__})") from None
        origin = f"VRF key file {path}"
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{origin} is neither hex nor a {KEY_FILE_FORMAT} file") from None
            if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT or not isinstance(doc.get("sk"), str):
                raise ConfigError(f"{origin} is not a {KEY_FILE_FORMAT} key file")
            text = doc["sk"]
            file_suite = doc.get("suite") if isinstance(doc.get("suite"), str) else None
    else:
        text = environ.get(SK_ENV, "").strip()
        origin = f"${SK_ENV}"
        if not text:
            raise ConfigError(f"no VRF key: pass --vrf-key FILE (from `zkml vrf keygen --out`) or set ${SK_ENV}")
    try:
        sk = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ConfigError(f"{origin} is not a hex VRF secret key") from None
    try:
        if suite is not None and file_suite is not None and vrf.get_suite(suite) != vrf.get_suite(file_suite):
            raise ConfigError(f"{origin} holds a {file_suite} key, not {suite}")
        s = vrf.get_suite(suite or file_suite or DEFAULT_SUITE)
        vrf.public_key(s, sk)
    except vrf.VRFError as e:
        raise ConfigError(f"{origin}: {e.message}") from None
    return sk, s


def parse_model_id(value: str | bytes) -> bytes:
    """The registry's model id for ``value``: a ``0x`` + 64 hex id as is, else keccak256 of the name.

    Raises :class:`ConfigError` for an empty name.
    """
    from zkml.evm.registry import to_model_id

    return to_model_id(value)


# ---------------------------------------------------------------------------
# Issuing a challenge
# ---------------------------------------------------------------------------


def issue_challenge(
    *,
    sk: bytes,
    suite: vrf.Suite | str,
    model_id: bytes,
    dataset_root: bytes,
    n_rows: int,
    k: int,
    model: ExpectedModel,
    block: BlockRef,
    model_version: int = 0,
    nonce: bytes | None = None,
    registry: str | None = None,
    activation_block: int | None = None,
) -> Challenge:
    """Prove alpha with the auditor's key and draw ``k`` of ``n_rows`` indices.

    ``nonce`` defaults to 32 fresh random bytes. Raises :class:`AuditError`
    for ``k < 1`` or ``k > n_rows`` or malformed fields, :class:`ConfigError`
    for a bad key.
    """
    # Inputs validation
    s = vrf.get_suite(suite)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise AuditError(f"k must be a positive integer, got {k!r}")
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 1:
        raise AuditError(f"the dataset must have at least one row, got N={n_rows!r}")
    if k > n_rows:
        raise AuditError(f"k={k} exceeds the dataset's {n_rows} rows")
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    fields = AlphaFields(
        chain_id=block.chain_id, model_id=model_id, model_version=model_version, dataset_root=dataset_root,
        n_rows=n_rows, nonce=nonce, block_number=block.number, block_hash=block.hash,
    )
    # Procedure
    alpha = fields.encode()
    try:
        pk = vrf.public_key(s, sk)
        pi = vrf.prove(s, sk, alpha)
    except vrf.VRFError as e:
        raise ConfigError(f"VRF key: {e.message}") from None
    beta = vrf.proof_to_hash(s, pi)
    indices = sampling.sample_indices(beta, n_rows, k)
    notes = (LOCAL_BLOCK_NOTE,) if block.source != "chain" else ()
    return Challenge(
        suite=s.short_name, pk=pk, fields=fields, pi=pi, beta=beta, k=k, indices=tuple(indices), model=model,
        created=now_iso(), block_source=block.source, registry=registry, activation_block=activation_block,
        notes=notes,
    )

