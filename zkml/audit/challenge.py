"""The challenge: alpha and its fields, the expected model, the challenge file, the auditor's key, issuing.

The alpha encoding, the nonce commitment, the challenge digest and the
anti-replay rules are described in the :mod:`zkml.audit` package docstring.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from eth_utils import keccak

from zkml import keys, sampling, vrf
from zkml.audit.common import CHALLENGE_FORMAT, FORMAT_VERSION, AuditError, _read_doc
from zkml.bundle import now_iso
from zkml.commitments import hex32, to_bytes32
from zkml.errors import InputError
from zkml.util import sha256_json, write_json_atomic

ALPHA_DOMAIN_TEXT: Final = "zkml-audit-challenge/v1"
ALPHA_DOMAIN: Final[bytes] = keccak(text=ALPHA_DOMAIN_TEXT)
"""First word of alpha: ``keccak256("zkml-audit-challenge/v1")``."""

DEFAULT_SUITE: Final = keys.DEFAULT_VRF_SUITE
"""The suite ``VRFVerifier.sol`` checks on chain (0xFE); :data:`zkml.keys.DEFAULT_VRF_SUITE`."""
SK_ENV: Final = keys.VRF_SK_ENV
"""Env var holding the auditor's VRF secret key as hex (:mod:`zkml.keys` reads it)."""
KEY_FILE_FORMAT: Final = keys.VRF_KEY_FORMAT
"""The key file ``zkml vrf keygen --out`` writes."""

COMMIT_DOMAIN_TEXT: Final = "zkml-audit-commit/v1"
COMMIT_DOMAIN: Final[bytes] = keccak(text=COMMIT_DOMAIN_TEXT)
"""First word of a nonce commitment, and of the calldata that publishes it."""

LOCAL_BLOCK_NOTE: Final = (
    "LOCAL AUDIT: the block hash was given by the auditor, not read from a chain, and no nonce was committed "
    "before it: the sample rests on the auditor alone (it could have ground nonce and block for rows it likes)"
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


def commitment_of(fields: AlphaFields, k: int, pk: bytes) -> bytes:
    """The nonce commitment a challenge with these fields must open (see :class:`NonceCommitment`)."""
    return keccak(b"".join((
        COMMIT_DOMAIN, _word(fields.chain_id, "chain id"), fields.model_id, _word(fields.model_version, "model version"),
        fields.dataset_root, _word(fields.n_rows, "n_rows"), _word(k, "k"), keccak(pk),
        _word(fields.block_number, "target block"), fields.nonce,
    )))


@dataclass(frozen=True)
class NonceCommitment:
    """The auditor's commitment to its nonce, published on chain before the block whose hash alpha mixes in.

    ``commitment = keccak256(abi.encode(keccak256("zkml-audit-commit/v1"), chainId, modelId, modelVersion,
    datasetRoot, nRows, k, keccak256(pk), targetBlock, nonce))``, published as
    the calldata ``COMMIT_DOMAIN || commitment`` of a transaction mined in
    ``block < targetBlock``. When it was published, the target block's hash
    did not exist, and the nonce, model, dataset, k and VRF key were fixed: the
    auditor can no longer choose what alpha will be (its VRF is deterministic).
    """

    commitment: bytes
    """The 32-byte commitment."""
    target_block: int
    """The future block whose hash the challenge mixes in (alpha's ``blockNumber``)."""
    tx_hash: str
    """The transaction that published it."""
    block: int
    """The block that transaction was mined in (must be before ``target_block``)."""
    sender: str | None = None
    """Who sent it (the auditor's chain account)."""

    def __post_init__(self) -> None:
        """Raise :class:`AuditError` for malformed fields."""
        if not isinstance(self.commitment, bytes) or len(self.commitment) != 32:
            raise AuditError("the nonce commitment must be 32 bytes")
        for name in ("target_block", "block"):
            _word(getattr(self, name), f"commit {name}")
        if not isinstance(self.tx_hash, str) or len(self.tx_hash) != 66 or not self.tx_hash.startswith("0x"):
            raise AuditError("commit tx_hash must be a 0x-prefixed 32-byte hash")

    @property
    def calldata(self) -> bytes:
        """What the publishing transaction carries."""
        return COMMIT_DOMAIN + self.commitment

    def to_json(self) -> dict[str, Any]:
        return {"domain": COMMIT_DOMAIN_TEXT, "commitment": hex32(self.commitment), "target_block": self.target_block,
                "tx_hash": self.tx_hash, "block": self.block, "sender": self.sender}

    @classmethod
    def from_json(cls, d: Any) -> NonceCommitment:
        """Parse :meth:`to_json`'s form. Raises :class:`AuditError`."""
        if not isinstance(d, Mapping) or d.get("domain") != COMMIT_DOMAIN_TEXT:
            raise AuditError(f"commit must be a {COMMIT_DOMAIN_TEXT} object")
        try:
            sender = d.get("sender")
            return cls(to_bytes32(d["commitment"], "commit.commitment"), d["target_block"], d["tx_hash"], d["block"],
                       str(sender) if sender is not None else None)
        except KeyError as e:
            raise AuditError(f"commit is missing {e.args[0]!r}") from None
        except InputError as e:
            raise AuditError(e.message) from None


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
    commit: NonceCommitment | None = None
    """The published nonce commitment this challenge opens (on-chain audits; None for a local audit)."""
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
            "commit": self.commit.to_json() if self.commit is not None else None,
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
            commit = NonceCommitment.from_json(doc["commit"]) if doc.get("commit") is not None else None
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
                commit=commit,
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

    def commit_problem(self) -> str | None:
        """Why the nonce commitment does not bind this challenge (offline part), or None when it does.

        An on-chain challenge (block read from a chain) must open a commitment
        published in a block before the one whose hash it mixes in; the chain
        side (the publishing transaction, the block hash) is re-read by the check.
        """
        c, f = self.commit, self.fields
        if c is None:
            if self.block_source == "chain":
                return ("no nonce commitment: the auditor could have picked nonce and block after seeing the block "
                        "hash (grinding); commit first with `zkml audit commit`")
            return None
        if c.target_block != f.block_number:
            return f"the commitment is bound to block {c.target_block}, the challenge mixes in block {f.block_number}"
        if c.block >= c.target_block:
            return (f"the commitment was published in block {c.block}, not before block {c.target_block}: "
                    "its hash was already known at commit time")
        if commitment_of(f, self.k, self.pk) != c.commitment:
            return "the nonce (with the challenge's model, dataset, k and VRF key) does not open the commitment"
        return None


# ---------------------------------------------------------------------------
# Ids
# ---------------------------------------------------------------------------


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
    key: keys.VrfKey,
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
    commit: NonceCommitment | None = None,
) -> Challenge:
    """Prove alpha with the auditor's key and draw ``k`` of ``n_rows`` indices.

    ``nonce`` defaults to 32 fresh random bytes. With ``commit`` (an on-chain
    audit) the nonce and block must open it. Raises :class:`AuditError` for
    ``k < 1`` or ``k > n_rows``, malformed fields or a nonce that does not open
    ``commit``.
    """
    # Inputs validation
    s = key.suite
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
    pi = vrf.prove(s, key.sk, alpha)
    beta = vrf.proof_to_hash(s, pi)
    indices = sampling.sample_indices(beta, n_rows, k)
    notes = (LOCAL_BLOCK_NOTE,) if block.source != "chain" else ()
    challenge = Challenge(
        suite=s.short_name, pk=key.pk, fields=fields, pi=pi, beta=beta, k=k, indices=tuple(indices), model=model,
        created=now_iso(), block_source=block.source, registry=registry, activation_block=activation_block,
        notes=notes, commit=commit,
    )
    if commit is not None:
        problem = challenge.commit_problem()
        if problem:
            raise AuditError(f"refusing to issue: {problem}")
    return challenge

