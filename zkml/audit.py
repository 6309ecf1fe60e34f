"""The audit protocol: a VRF challenge, batched proofs of the sampled committed rows, the auditor's check.

An auditor wants to know how a registered model does on its committed
dataset (a Merkle root, :mod:`zkml.commit`) without letting the model owner
pick the rows. Three steps, three files:

1. **challenge** (auditor, :func:`issue_challenge`): an ECVRF proof (:mod:`zkml.vrf`)
   over ``alpha`` (below) gives ``beta``; ``sample_indices(beta, N, k)``
   (:mod:`zkml.sampling`) gives the ``k`` rows to prove. The challenge file
   records suite, public key, the alpha fields, ``alpha``, ``pi``, ``beta``,
   ``k``, ``N``, the indices, the model the auditor expects (ONNX and VK
   digests) and the creation time; its *digest* names it.
2. **respond** (owner, :func:`respond`): the sampled rows are proven with the
   model's circuit in one bundle (batched at the circuit's batch size, input
   revealed), each with the Merkle inclusion proof of its leaf; the labels are
   revealed (they are committed in the leaves).
3. **check** (auditor, :func:`check_response`): the response answers the
   challenge the auditor issued; the VRF verifies; the indices follow from
   ``beta``; every proven input, with its revealed label, hashes to a leaf under
   the committed root at the sampled index; the proofs are of the audited model
   and circuit; every SNARK verifies; the proven outputs' argmax meets
   ``min_accuracy`` against the labels. With a chain: the VRF and the sampling
   are re-checked by ``VRFVerifier.sol``, the block hash is re-read, the
   registry record and dataset membership are checked through
   ``ModelRegistry.sol``, a passing audit's proofs are recorded with
   ``verifyAndRecord`` (one ``ProofVerified`` event per proof), and the
   outcome, pass or fail, with ``recordAudit`` (one ``AuditRecorded`` event
   naming the auditor, the challenge digest, ``beta``, the counts and the
   report's verdict digest, see :meth:`AuditReport.verdict_digest`).

Alpha encoding (version 1)
==========================
``alpha`` is 9 ABI words (288 bytes), so a contract can rebuild it::

    alpha = abi.encode(
        bytes32 domain,        // keccak256("zkml-audit-challenge/v1")
        uint256 chainId,       // EIP-155 id of the chain the block is on (0: none, local audit)
        bytes32 modelId,       // registry model id (keccak256 of the name, or a raw 0x id)
        uint256 modelVersion,  // registry version audited (0: local audit, no registry)
        bytes32 datasetRoot,   // Merkle root of the committed dataset
        uint256 nRows,         // rows under that root: the sampling population N
        bytes32 nonce,         // 32 fresh random bytes of the auditor, one per challenge
        uint256 blockNumber,   // the block whose hash is mixed in (0: not given)
        bytes32 blockHash)     // its hash; on chain a block after the model version became active

The owner fixed model and dataset root before that block existed and does not
hold the VRF key, so it can neither predict nor steer the sample. For a
purely local audit the auditor names the block hash (``--block-hash``); the
challenge then says that the unpredictability rests on the auditor. The
auditor, who picks nonce and block, could grind them for a sample it likes;
an auditor who must be bound as well should publish ``keccak256(nonce)`` first.

Challenge digest and anti-replay
================================
``digest = sha256(canonical JSON of the challenge without "digest" and "posted")``.
A response names the digest and embeds the challenge. The auditor keeps a
*ledger* of the challenges it issued (``<store>/audit/ledger.json``): issuing
a challenge for a (model id, dataset root) supersedes the earlier ones. The
check takes the challenge to compare against from the auditor's side only,
never from the response: ``--challenge FILE`` (the file it issued) or, by
default, the ledger entry with the response's digest, which must be the latest
one for that model and root. A response to an old challenge, to a challenge
the auditor never issued, or with an edited challenge is refused.

Trust notes
===========
The leaf binds the row index, features and label; inclusion proves the row is
in the committed tree. A committer who put two leaves with the same index in
its own tree could choose between them; the registry's root is the owner's
claim about its data, and that is what an audit measures.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from eth_utils import keccak

from zkml import sampling, vrf
from zkml.bundle import Bundle, now_iso
from zkml.commit import (
    Dataset,
    MerkleTree,
    dataset_leaves,
    hex32,
    load_dataset,
    row_leaf,
    to_bytes32,
    verify_inclusion,
)
from zkml.errors import ConfigError, InputError, StoreError, ZkmlError
from zkml.util import sha256_json, write_json_atomic

if TYPE_CHECKING:  # the chain side is imported only when an on-chain audit runs
    from zkml.circuit import Circuit
    from zkml.evm.chain import Chain, Contract
    from zkml.evm.registry import Registry
    from zkml.store import Store
    from zkml.verify import Artifacts

__all__ = [
    "ALPHA_DOMAIN",
    "AlphaFields",
    "AuditCheck",
    "AuditError",
    "AuditReport",
    "BlockRef",
    "Challenge",
    "ExpectedModel",
    "Ledger",
    "OnChain",
    "Response",
    "RowEvidence",
    "check_response",
    "default_ledger_path",
    "issue_challenge",
    "issue_onchain_challenge",
    "ensure_vrf_verifier",
    "load_vrf_key",
    "open_onchain",
    "parse_model_id",
    "respond",
    "write_report",
]

CHALLENGE_FORMAT: Final = "zkml-audit-challenge"
RESPONSE_FORMAT: Final = "zkml-audit-response"
REPORT_FORMAT: Final = "zkml-audit-report"
LEDGER_FORMAT: Final = "zkml-audit-ledger"
FORMAT_VERSION: Final = 1

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

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class AuditError(InputError):
    """A challenge or response file is malformed or inconsistent, or a request cannot be answered."""


# ---------------------------------------------------------------------------
# Alpha, the expected model, the challenge
# ---------------------------------------------------------------------------


def _word(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise AuditError(f"{what} must be an integer in [0, 2**256), got {value!r}")
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class AlphaFields:
    """The values hashed into the VRF input (see the module docstring)."""

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


def _read_doc(path: str | os.PathLike[str], what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise AuditError(f"{what} file not found: {p}")
    try:
        return json.loads(p.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuditError(f"{p}: not a JSON {what} file ({type(e).__name__})") from None


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


@dataclass(frozen=True)
class OnChain:
    """The chain, registry and VRF verifier an on-chain audit uses."""

    chain: Chain
    """The chain (with a signing key for transactions)."""
    registry: Registry
    """The ModelRegistry holding the audited model."""
    vrf_verifier: Contract | None = None
    """A deployed ``VRFVerifier``; None: deploy one when needed."""
    cache_dir: Path | None = None
    """solc-js output cache (``<store>/solc-cache``)."""

    def verifier(self) -> Contract:
        """The VRF verifier, deploying one if none was given (the caller keeps the returned handle)."""
        from zkml.evm import vrf_onchain

        if self.vrf_verifier is not None:
            return self.vrf_verifier
        return vrf_onchain.deploy_verifier(self.chain, vrf_onchain.compile_verifier(cache_dir=self.cache_dir))

    def verifier_at(self, address: str) -> Contract:
        """A handle on the ``VRFVerifier`` deployed at ``address``. Raises ChainError when there is no code."""
        from zkml.evm import vrf_onchain

        return self.chain.at(vrf_onchain.compile_verifier(cache_dir=self.cache_dir), address, "VRFVerifier")


_ACTIVATION_EVENTS: Final = ("ModelRegistered", "UpdateProposed", "UpdateFinalized", "RolledBack", "DatasetRootSet")


def activation_block(registry: Registry, model_id: bytes, version: int) -> int:
    """The last block at which ``version`` of the model was registered, proposed, finalized, rolled back to,
    or given its dataset root.

    A block after it was unknown when the version's record (and dataset root)
    was fixed. Raises :class:`zkml.errors.ChainError` when the registry has no
    such event.
    """
    from zkml.errors import ChainError

    blocks = []
    for ev in registry.history(model_id):
        v = ev.args.get("toVersion") if ev.name == "RolledBack" else ev.args.get("version")
        if ev.name in _ACTIVATION_EVENTS and v is not None and int(v) == version:
            blocks.append(ev.block)
    if not blocks:
        raise ChainError(f"the registry has no event for version {version} of model {hex32(model_id)}")
    return max(blocks)


def _block_hash(chain: Chain, number: int) -> bytes:
    from zkml.errors import ChainError

    block = chain.rpc("eth_getBlockByNumber", [hex(number), False])
    if not isinstance(block, Mapping) or not block.get("hash"):
        raise ChainError(f"block {number} is not known to {chain.rpc_url}")
    return bytes.fromhex(str(block["hash"]).removeprefix("0x"))


def issue_onchain_challenge(
    onchain: OnChain,
    *,
    sk: bytes,
    suite: vrf.Suite | str,
    model_id: bytes,
    k: int,
    n_rows: int,
    dataset_root: bytes | None = None,
    block_number: int | None = None,
    circuit: Circuit | None = None,
    nonce: bytes | None = None,
    post: bool = True,
    wait: float = 0.0,
    progress: Progress = _quiet,
) -> tuple[Challenge, Contract | None]:
    """A challenge for the model's active registry version, on a block after that version became active.

    The dataset root, ONNX and VK digests come from the registry record
    (``dataset_root``, when given, must equal the registered one; ``circuit``,
    a :class:`zkml.circuit.Circuit`, when given, must be the registered one and
    is pinned by id so the owner and the check find it). The block
    is ``block_number`` or the latest one (waiting up to ``wait`` seconds for a
    block after the activation). With ``post`` the challenge is put
    on chain as a transaction calling ``VRFVerifier.verify(pk, alpha, pi, …)``
    (its calldata is the public record; its receipt is stored in
    ``challenge.posted``). Returns the challenge and the VRF verifier handle
    used (None when not posted).

    Raises:
        AuditError: no dataset root registered, a root or circuit mismatch, no block after
            the activation yet, a suite the on-chain verifier does not support.
        RegistryError / ChainError: unknown or paused model, RPC failure.
    """
    from zkml.evm import vrf_onchain

    s = vrf.get_suite(suite)
    if post and s != vrf.SECP256K1:
        raise AuditError(f"the on-chain VRFVerifier checks secp256k1 proofs only, not {s.short_name}")
    registry, chain = onchain.registry, onchain.chain
    info = registry.model(model_id)
    if info.paused:
        raise AuditError(f"model {hex32(model_id)} is paused in the registry")
    record = info.record
    if record.dataset_root == bytes(32):
        raise AuditError(f"model {hex32(model_id)} has no dataset root in the registry")
    if dataset_root is not None and dataset_root != record.dataset_root:
        raise AuditError(
            f"--dataset-root {hex32(dataset_root)} is not the registered root {hex32(record.dataset_root)}"
        )
    if circuit is not None and (circuit.model_sha256 != record.onnx_sha256.hex()
                                or circuit.files["vk.key"] != record.vk_digest.hex()):
        raise AuditError(f"circuit {circuit.circuit_id} is not the registered circuit of model {hex32(model_id)}")
    active_since = activation_block(registry, model_id, info.current_version)
    latest = chain.block_number()
    deadline = time.monotonic() + wait
    while block_number is None and latest <= active_since and time.monotonic() < deadline:
        progress(f"waiting for a block after {active_since}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        latest = chain.block_number()
    number = latest if block_number is None else block_number
    if number <= active_since:
        raise AuditError(
            f"block {number} is not after block {active_since}, where version {info.current_version} became "
            "active: wait for a later block (--wait SECONDS; on a dev chain, send any transaction)"
        )
    if number > latest:
        raise AuditError(f"block {number} does not exist yet (latest is {latest})")
    block = BlockRef(chain.chain_id, number, _block_hash(chain, number), "chain")
    model = ExpectedModel(record.onnx_sha256.hex(), record.vk_digest.hex(),
                          circuit.circuit_id if circuit is not None else None)
    challenge = issue_challenge(
        sk=sk, suite=s, model_id=model_id, dataset_root=record.dataset_root, n_rows=n_rows, k=k, model=model,
        block=block, model_version=info.current_version, nonce=nonce, registry=registry.address,
        activation_block=active_since,
    )
    if not post:
        return challenge, None
    contract = onchain.verifier()
    progress(f"posting the challenge to VRFVerifier at {contract.address}")
    receipt = contract.transact("verify", *vrf_onchain.verify_args(challenge.pk, challenge.alpha, challenge.pi))
    posted = {"chain_id": chain.chain_id, "vrf_verifier": contract.address, "tx_hash": receipt.tx_hash,
              "block": receipt.block, "gas_used": receipt.gas_used}
    return replace(challenge, posted=posted), contract


def _vrf_record_path(store_root: Path, chain_id: int) -> Path:
    return store_root / "audit" / "chains" / f"{chain_id}.json"


def ensure_vrf_verifier(store_root: Path, chain: Chain, *, cache_dir: Path | None = None,
                        progress: Progress = _quiet) -> Contract:
    """The ``VRFVerifier`` this store uses on ``chain``, deployed (and recorded) if missing or gone.

    The address is kept in ``<store>/audit/chains/<chain id>.json`` and trusted
    only while the code there is exactly the compiled ``VRFVerifier`` (another
    dev chain with the same chain id may hold something else at that address).
    """
    from zkml.evm import vrf_onchain

    path = _vrf_record_path(store_root, chain.chain_id)
    compiled = vrf_onchain.compile_verifier(cache_dir=cache_dir)
    try:
        known = json.loads(path.read_bytes()).get("vrf_verifier") if path.is_file() else None
    except (OSError, ValueError):
        known = None
    if isinstance(known, Mapping) and known.get("address") \
            and chain.code_at(str(known["address"])) == compiled.deployed_bytecode:
        return chain.at(compiled, str(known["address"]), "VRFVerifier")
    progress(f"deploying VRFVerifier on chain {chain.chain_id}")
    dep = chain.deploy(compiled)
    write_json_atomic(path, {"chain_id": chain.chain_id, "vrf_verifier": {
        "address": dep.address, "tx": dep.tx_hash, "gas": dep.gas_used, "block": dep.block,
        "deployed_size": compiled.deployed_size}})
    return chain.at(compiled, dep.address, "VRFVerifier")


def open_onchain(
    store: Store,
    *,
    rpc_url: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    registry: str | None = None,
    vrf_verifier: str | None = None,
    progress: Progress = _quiet,
) -> OnChain:
    """Connect for an on-chain audit: ``rpc_url`` or the store's embedded chain, its registry, a VRF verifier.

    The registry is ``registry`` or the one ``zkml deploy`` recorded in the
    store for this chain; the VRF verifier is ``vrf_verifier`` or the store's
    own (deployed on first use).

    Raises:
        ChainError: dead RPC, no registry recorded or no code at an address.
        ConfigError: a malformed address or key.
    """
    from zkml.errors import ChainError
    from zkml.evm import vrf_onchain
    from zkml.evm.deploy import load_records, open_chain
    from zkml.evm.registry import Registry, compile_registry

    chain = open_chain(store, rpc_url, key_file, progress=progress)
    cache = store.root / "solc-cache"
    address = registry or (load_records(store, chain).get("registry") or {}).get("address")
    if not address:
        raise ChainError(f"no ModelRegistry recorded for chain {chain.chain_id} in this store: "
                         "run `zkml deploy` first or pass --registry ADDRESS")
    reg = Registry.at(chain, address, compile_registry(cache_dir=cache))
    if vrf_verifier:
        contract = chain.at(vrf_onchain.compile_verifier(cache_dir=cache), vrf_verifier, "VRFVerifier")
    else:
        contract = ensure_vrf_verifier(store.root, chain, cache_dir=cache, progress=progress)
    return OnChain(chain, reg, contract, cache)


# ---------------------------------------------------------------------------
# The auditor's ledger
# ---------------------------------------------------------------------------


def default_ledger_path(store_root: str | os.PathLike[str]) -> Path:
    """``<store>/audit/ledger.json``."""
    return Path(store_root) / "audit" / "ledger.json"


class Ledger:
    """The challenges an auditor issued, newest last; the latest per (model id, dataset root) is the open one."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path: Final[Path] = Path(path)
        """The ledger JSON file."""

    def _lock(self) -> Any:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=60)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"format": LEDGER_FORMAT, "version": FORMAT_VERSION, "entries": []}
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as e:
            raise StoreError(f"audit ledger {self.path} is unreadable ({type(e).__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != LEDGER_FORMAT or not isinstance(doc.get("entries"), list):
            raise StoreError(f"{self.path} is not a zkml audit ledger")
        return doc

    def record_issued(self, challenge: Challenge, file: str | None = None) -> list[str]:
        """Add ``challenge``; return the digests it supersedes (same model id and dataset root)."""
        with self._lock():
            doc = self._read()
            key = (hex32(challenge.fields.model_id), hex32(challenge.fields.dataset_root))
            superseded = []
            for e in doc["entries"]:
                if (e["model_id"], e["dataset_root"]) == key and e.get("superseded_by") is None:
                    e["superseded_by"] = challenge.digest
                    superseded.append(e["digest"])
            doc["entries"].append({
                "digest": challenge.digest, "model_id": key[0], "dataset_root": key[1], "issued": challenge.created,
                "file": file, "superseded_by": None, "checks": [], "challenge": challenge.to_json(),
            })
            write_json_atomic(self.path, doc)
            return superseded

    def expected(self, digest: str) -> tuple[Challenge | None, str]:
        """The issued challenge with ``digest`` if it is the open one, and why not otherwise.

        Returns ``(challenge, "open")``, ``(None, "superseded by …")`` or
        ``(None, "never issued")``.
        """
        doc = self._read()
        for e in doc["entries"]:
            if e["digest"] == digest:
                if e.get("superseded_by"):
                    return None, f"superseded by challenge {e['superseded_by'][:16]}… (issued later)"
                return Challenge.from_json(e["challenge"], source=f"ledger entry {digest[:16]}…"), "open"
        return None, "never issued by this auditor"

    def latest(self, model_id: bytes, dataset_root: bytes) -> Challenge | None:
        """The open challenge for this model and dataset, if any."""
        key = (hex32(model_id), hex32(dataset_root))
        for e in reversed(self._read()["entries"]):
            if (e["model_id"], e["dataset_root"]) == key and not e.get("superseded_by"):
                return Challenge.from_json(e["challenge"], source=f"ledger entry {e['digest'][:16]}…")
        return None

    def record_check(self, digest: str, passed: bool, report: str | None) -> None:
        """Note a check of the response to ``digest`` (time, verdict, report path)."""
        if not self.path.is_file():
            return
        with self._lock():
            doc = self._read()
            hits = [e for e in doc["entries"] if e["digest"] == digest]
            for e in hits:
                e.setdefault("checks", []).append({"time": now_iso(), "passed": passed, "report": report})
            if hits:
                write_json_atomic(self.path, doc)


# ---------------------------------------------------------------------------
# Responding
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RowEvidence:
    """One sampled row as the owner reveals it (its features are the bundle's proven input)."""

    index: int
    """Row index in the dataset."""
    label: float
    """The committed label (revealed)."""
    leaf: bytes
    """The row's leaf (``zkml.commit.row_leaf``)."""
    proof: tuple[bytes, ...]
    """Merkle inclusion proof of the leaf (OpenZeppelin order)."""

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "leaf": hex32(self.leaf),
                "proof": [hex32(p) for p in self.proof]}

    @classmethod
    def from_json(cls, d: Any, where: str) -> RowEvidence:
        if not isinstance(d, Mapping):
            raise AuditError(f"{where} must be an object")
        try:
            index, label = d["index"], d["label"]
            if isinstance(index, bool) or not isinstance(index, int):
                raise AuditError(f"{where}.index must be an integer")
            if isinstance(label, bool) or not isinstance(label, (int, float)):
                raise AuditError(f"{where}.label must be a number")
            return cls(index, float(label), to_bytes32(d["leaf"], f"{where}.leaf"),
                       tuple(to_bytes32(p, f"{where}.proof") for p in d["proof"]))
        except KeyError as e:
            raise AuditError(f"{where} is missing {e.args[0]!r}") from None
        except TypeError as e:
            raise AuditError(f"{where} is malformed ({e})") from None
        except InputError as e:
            raise AuditError(e.message) from None


@dataclass(frozen=True)
class Response:
    """The owner's answer: the challenge it answers, the revealed rows, one proof bundle."""

    challenge: Challenge
    """The challenge as the owner received it."""
    challenge_digest: str
    """The digest the response names."""
    rows: tuple[RowEvidence, ...]
    """One per sampled row, in the challenge's order; row ``p`` is the bundle's sample ``p``."""
    bundle: Bundle
    """Proofs of the rows (input revealed)."""
    dataset: Mapping[str, Any]
    """Root, row count, file sha256 and row shape of the owner's dataset file."""
    created: str
    """UTC time of the response."""
    timings: Mapping[str, float] = field(default_factory=dict)
    """Seconds spent (prove, total)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RESPONSE_FORMAT, "version": FORMAT_VERSION, "created": self.created,
            "challenge_digest": self.challenge_digest, "challenge": self.challenge.to_json(),
            "dataset": dict(self.dataset), "rows": [r.to_json() for r in self.rows],
            "bundle": self.bundle.data, "timings": dict(self.timings),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the response file atomically."""
        write_json_atomic(path, self.to_json(), indent=1)

    @classmethod
    def from_json(cls, doc: Any, source: str = "response") -> Response:
        """Parse a response; its challenge must be well formed (its VRF is re-checked at check time).

        Raises :class:`AuditError` (or :class:`zkml.errors.BundleError`) for a malformed file.
        """
        if not isinstance(doc, Mapping) or doc.get("format") != RESPONSE_FORMAT:
            raise AuditError(f"{source}: not a zkml audit response")
        if doc.get("version") != FORMAT_VERSION:
            raise AuditError(f"{source}: unsupported response version {doc.get('version')!r}")
        try:
            rows_raw = doc["rows"]
            if not isinstance(rows_raw, list):
                raise AuditError(f"{source}: rows must be a list")
            return cls(
                challenge=Challenge.from_json(doc["challenge"], source=f"{source}: its challenge"),
                challenge_digest=str(doc["challenge_digest"]),
                rows=tuple(RowEvidence.from_json(r, f"{source}: rows[{i}]") for i, r in enumerate(rows_raw)),
                bundle=Bundle.parse(doc["bundle"], source=f"{source}: its bundle"),
                dataset=dict(doc.get("dataset") or {}),
                created=str(doc.get("created", "")),
                timings=dict(doc.get("timings") or {}),
            )
        except KeyError as e:
            raise AuditError(f"{source}: malformed response (missing {e.args[0]!r})") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Response:
        """Read a response file. Raises :class:`AuditError`."""
        return cls.from_json(_read_doc(path, "response"), source=str(path))


def _committed(data_path: str | os.PathLike[str]) -> tuple[Dataset, MerkleTree]:
    dataset = load_dataset(data_path)
    return dataset, MerkleTree.build(dataset_leaves(dataset))


def respond(
    challenge: Challenge,
    data_path: str | os.PathLike[str],
    circuit: Circuit,
    *,
    timeout: float | None = None,
    progress: Progress = _quiet,
) -> Response:
    """Prove the challenged rows of the dataset at ``data_path`` with ``circuit`` (one bundle, batched).

    Raises:
        AuditError: the challenge's VRF evidence is wrong, the data is not the
            challenged dataset (root or row count), it has no labels, the
            circuit is not the challenged model or hides its input or output,
            or a row is not exactly representable in the circuit's float32 input.
        InputError / ProofError / ProveTimeout: as :func:`zkml.prove.prove`.
    """
    from zkml.prove import DEFAULT_TIMEOUT_S, prove

    t0 = time.perf_counter()
    # Inputs validation: the challenge
    problem = challenge.vrf_problem()
    if problem:
        raise AuditError(f"refusing to answer an invalid challenge: {problem}")
    # The dataset
    progress(f"committing {Path(data_path).name} (Merkle tree over its rows)")
    dataset, tree = _committed(data_path)
    if tree.root != challenge.fields.dataset_root:
        raise AuditError(
            f"{data_path} has root {hex32(tree.root)}, the challenge is for {hex32(challenge.fields.dataset_root)}"
        )
    if dataset.n_rows != challenge.n:
        raise AuditError(f"{data_path} has {dataset.n_rows} rows, the challenge samples from {challenge.n}")
    if dataset.labels is None:
        raise AuditError(f"{data_path} has no labels: an audit needs committed labels")
    # The circuit
    opts = circuit.options
    if opts.input_visibility == "private" or opts.output_visibility == "private":
        raise AuditError("the circuit keeps its input or output private: an audit needs both revealed")
    pinned = challenge.model
    if pinned.onnx_sha256 is not None and circuit.model_sha256 != pinned.onnx_sha256:
        raise AuditError(
            f"circuit {circuit.circuit_id} is of model {circuit.model_sha256[:16]}…, "
            f"the challenge audits model {pinned.onnx_sha256[:16]}…"
        )
    if pinned.vk_sha256 is not None and circuit.files["vk.key"] != pinned.vk_sha256:
        raise AuditError(
            f"circuit {circuit.circuit_id} has vk {circuit.files['vk.key'][:16]}…, "
            f"the challenge audits vk {pinned.vk_sha256[:16]}…"
        )
    idx = list(challenge.indices)
    features = dataset.features[idx].reshape(len(idx), -1)
    if features.shape[1] != int(np.prod(circuit.sample_shape)):
        raise AuditError(
            f"rows have {features.shape[1]} features, the circuit takes samples of shape {list(circuit.sample_shape)}"
        )
    if not np.array_equal(features.astype(np.float32).astype(np.float64), features):
        raise AuditError("a sampled row is not exactly representable as float32 (the circuit's input type)")
    # Procedure: prove all sampled rows in one bundle, then attach the Merkle evidence
    progress(f"proving rows {idx} with circuit {circuit.circuit_id} (batch {circuit.batch_size})")
    samples = features.reshape(len(idx), *circuit.sample_shape)
    bundle = prove(circuit, samples, reveal_input=True, timeout=timeout or DEFAULT_TIMEOUT_S, progress=progress)
    rows = tuple(
        RowEvidence(i, float(dataset.labels[i]), tree.leaf(i), tuple(tree.proof(i))) for i in idx
    )
    return Response(
        challenge=challenge,
        challenge_digest=challenge.digest,
        rows=rows,
        bundle=bundle,
        dataset={"root": hex32(tree.root), "n_rows": dataset.n_rows, "file_sha256": dataset.sha256,
                 "row_shape": list(dataset.row_shape)},
        created=now_iso(),
        timings={"prove_seconds": float(bundle.data["timings"]["prove_seconds"]),
                 "total_seconds": time.perf_counter() - t0},
    )


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCheck:
    """One judged fact."""

    name: str
    """challenge | vrf | block | indices | rows | model | snark | accuracy | registry | vrf_onchain |
    rows_onchain | snark_onchain | record."""
    ok: bool | None
    """Passed, failed, or None when not run."""
    detail: str
    """One line, with numbers."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class AuditReport:
    """The verdict on one response."""

    checks: list[AuditCheck]
    """Every check, in order."""
    challenge: dict[str, Any]
    """What was challenged (digest, model, root, N, k, indices, VRF evidence, block)."""
    response: dict[str, Any]
    """What was answered (digest named, bundle model/circuit, proofs)."""
    accuracy: dict[str, Any]
    """correct, total, accuracy, min_accuracy, per-row predictions."""
    onchain: dict[str, Any]
    """Chain id, contracts, gas and transactions, when checked on chain."""
    seconds: float
    """Wall time of the check."""
    notes: list[str]
    """Caveats (dev SRS, hand-given block hash)."""
    created: str = field(default_factory=now_iso)
    """When the report was made."""

    @property
    def passed(self) -> bool:
        return all(c.ok is True for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.ok is False]

    def check(self, name: str) -> AuditCheck:
        """The check called ``name``. Raises KeyError."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "version": FORMAT_VERSION, "created": self.created, "passed": self.passed,
            "exit_code": self.exit_code, "failures": self.failures(), "checks": [c.as_dict() for c in self.checks],
            "challenge": self.challenge, "response": self.response, "accuracy": self.accuracy,
            "onchain": self.onchain, "seconds": self.seconds, "notes": self.notes,
        }

    def verdict_digest(self) -> str:
        """sha256 of what was judged: the ``reportDigest`` an on-chain audit records.

        ``sha256_json({"challenge", "response", "accuracy", "checks"})`` of this
        report, leaving out the ``record`` check (written after the digest went
        on chain). Anyone holding the JSON report recomputes it with
        :func:`verdict_digest`.
        """
        return verdict_digest(self.as_dict())

    def summary(self) -> str:
        """Plain-text summary for the terminal."""
        mark = {True: "ok  ", False: "FAIL", None: "--  "}
        ch, acc = self.challenge, self.accuracy
        lines = [
            f"audit of model {ch['model_id']} (version {ch['model_version']}), dataset root {ch['dataset_root'][:18]}…",
            f"  challenge {ch['digest'][:16]}…: {ch['k']} of {ch['n']} rows {ch['indices']}",
        ]
        for c in self.checks:
            lines.append(f"  {mark[c.ok]} {c.name:<14} {c.detail}")
        if acc.get("total"):
            lines.append(f"  accuracy {acc['correct']}/{acc['total']} = {100 * acc['accuracy']:.1f}% "
                         f"(min {100 * acc['min_accuracy']:.1f}%)")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"audit: {'PASS' if self.passed else 'FAIL'} in {self.seconds:.1f}s")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The human summary written beside the JSON report."""
        icon = {True: "✅", False: "❌", None: "➖"}
        ch, acc = self.challenge, self.accuracy
        out = [f"# zkml audit: {'PASS ✅' if self.passed else 'FAIL ❌'}", "",
               f"- model `{ch['model_id']}` version {ch['model_version']}; expected ONNX sha256 "
               f"`{ch['model'].get('onnx_sha256')}`, vk sha256 `{ch['model'].get('vk_sha256')}`",
               f"- dataset root `{ch['dataset_root']}` ({ch['n']} rows); {ch['k']} sampled: `{ch['indices']}`",
               f"- challenge `{ch['digest']}` issued {ch['created']}; block {ch['block_number']} "
               f"`{ch['block_hash']}` on chain {ch['chain_id']} ({ch['block_source']})",
               f"- VRF {ch['suite']}: pk `{ch['pk']}`, beta `{ch['beta']}`"]
        if acc.get("total"):
            out.append(f"- accuracy {acc['correct']}/{acc['total']} = {100 * acc['accuracy']:.1f}% "
                       f"(min {100 * acc['min_accuracy']:.1f}%)")
        for n in self.notes:
            out += ["", f"> ⚠️ {n}"]
        out += ["", "| check | verdict | detail |", "|---|---|---|"]
        out += [f"| {c.name} | {icon[c.ok]} | {c.detail.replace('|', '/')} |" for c in self.checks]
        if acc.get("rows"):
            out += ["", "| row | label | predicted | correct |", "|---|---|---|---|"]
            out += [f"| {r['index']} | {r['label']:g} | {r['predicted']} | {'yes' if r['correct'] else 'no'} |"
                    for r in acc["rows"]]
        if self.onchain:
            out += ["", "On chain: " + ", ".join(f"{k} `{v}`" for k, v in self.onchain.items() if not isinstance(v, (list, dict)))]
        return "\n".join(out) + "\n"


def verdict_digest(report: Mapping[str, Any]) -> str:
    """The verdict digest of a report (an :meth:`AuditReport.as_dict`, e.g. a loaded JSON report)."""
    core = {k: report[k] for k in ("challenge", "response", "accuracy")}
    core["checks"] = [c for c in report["checks"] if c["name"] != "record"]
    return sha256_json(core)


def write_report(report: AuditReport, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the JSON report to ``path`` and the Markdown summary beside it (``.md``)."""
    p = Path(path)
    write_json_atomic(p, report.as_dict())
    md = p.with_suffix(".md")
    md.write_text(report.markdown())
    return p, md


def _circuit_artifacts(circuit: Circuit) -> Artifacts:
    from zkml.verify import Artifacts

    return Artifacts(settings=circuit.settings_path, vk=circuit.vk, srs=circuit.srs.path,
                     model_sha256=circuit.model_sha256, weights_commitment=circuit.manifest.get("weights_commitment"))


def audited_artifacts(expected: ExpectedModel, bundle: Bundle, store: Store) -> Artifacts:
    """Public artifacts of the audited circuit, from ``store``.

    Found by the expected circuit id, else by the expected vk digest (the
    bundle's circuit first, then every circuit in the store), else (no vk
    pinned) the bundle's own circuit. Raises :class:`StoreError` when the
    store does not hold it.
    """
    from zkml.circuit import open_circuit

    candidates: list[Path] = []
    if expected.circuit_id:
        candidates.append(store.circuit_dir(expected.circuit_id))
    candidates.append(store.circuit_dir(bundle.circuit_id))
    if store.circuits.is_dir():
        candidates += sorted(d for d in store.circuits.iterdir() if d.is_dir() and not d.name.startswith("."))
    for folder in candidates:
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            continue
        try:
            files = json.loads(manifest.read_bytes()).get("files", {})
        except (OSError, ValueError):
            continue
        if expected.vk_sha256 is None or files.get("vk.key") == expected.vk_sha256:
            circuit = open_circuit(folder, store)
            if expected.vk_sha256 is None and expected.onnx_sha256 not in (None, circuit.model_sha256):
                continue
            return _circuit_artifacts(circuit)
    want = f"vk sha256 {expected.vk_sha256[:16]}…" if expected.vk_sha256 else f"circuit {bundle.circuit_id}"
    raise StoreError(
        f"the audited circuit ({want}) is not in store {store.root}: pass --circuit with its public artifacts"
    )


def _predicted(bundle: Bundle, p: int) -> int | None:
    outs = bundle.outputs
    if outs is None or p >= len(outs):
        return None
    sizes = [int(n) for n in bundle.data["circuit"].get("output_sizes") or [len(outs[p])]]
    row = np.asarray(outs[p], dtype=np.float64)[: sizes[0]]
    return int(np.argmax(row)) if row.size else None


def check_response(
    response: Response,
    expected: Challenge,
    *,
    store: Store,
    min_accuracy: float,
    artifacts: Artifacts | None = None,
    expected_model: ExpectedModel | None = None,
    replay_note: str | None = None,
    onchain: OnChain | None = None,
    record: bool = True,
    progress: Progress = _quiet,
) -> AuditReport:
    """Judge ``response`` against the challenge the auditor issued (``expected``).

    ``artifacts`` (:class:`zkml.verify.Artifacts`) are the audited circuit's
    public files; by default they are looked up in ``store``.
    ``expected_model`` overrides the challenge's pins (the CLI merges
    ``--model-digest``/``--circuit`` into them). ``replay_note`` explains,
    from the auditor's ledger, why the answered challenge is not the open one. With
    ``onchain``, the VRF, block, registry record, dataset membership and every
    proof are checked on chain too; with ``record`` (and a challenge naming a
    registry version), a passing audit's proofs are recorded with
    ``verifyAndRecord`` and the outcome, pass or fail, with ``recordAudit``
    (its transaction in ``report.onchain["audit_tx"]``).

    A failed check is a verdict in the report, not an exception.

    Raises:
        AuditError: ``min_accuracy`` outside [0, 1].
        StoreError: the audited circuit's artifacts are not available.
        ChainError: the chain is unreachable (nothing on chain could be judged).
    """
    if isinstance(min_accuracy, bool) or not isinstance(min_accuracy, (int, float)) or not 0.0 <= min_accuracy <= 1.0:
        raise AuditError(f"--min-accuracy must be between 0 and 1, got {min_accuracy!r}")
    t0 = time.perf_counter()
    checks: list[AuditCheck] = []
    notes = list(expected.notes)
    bundle = response.bundle
    f = expected.fields
    model = expected_model if expected_model is not None else expected.model

    def add(name: str, ok: bool | None, detail: str) -> bool:
        checks.append(AuditCheck(name, ok, detail))
        return ok is True

    # 1. The challenge answered is the one issued
    named, embedded = response.challenge_digest, response.challenge.digest
    if named != embedded:
        add("challenge", False, f"the response names challenge {named[:16]}… but embeds {embedded[:16]}…")
    elif named != expected.digest:
        add("challenge", False, f"the response answers challenge {named[:16]}…, not the one issued "
                                f"({expected.digest[:16]}…): " + (replay_note or "an old or foreign challenge"))
    else:
        add("challenge", True, f"answers challenge {expected.digest[:16]}… issued {expected.created}")
    # 2. VRF
    problem = expected.vrf_problem()
    add("vrf", problem is None, problem or f"{expected.suite} proof verifies; beta {expected.beta.hex()[:16]}…")
    # 3. Block (re-read on chain below when possible)
    if expected.block_source == "chain" and onchain is None:
        add("block", True, f"block {f.block_number} read from chain {f.chain_id} at issue (not re-read: no chain given)")
    elif expected.block_source != "chain":
        add("block", True, "block hash given by the auditor (local audit)")
    else:
        assert onchain is not None
        add("block", *_check_block(onchain, expected))
    # 4. Indices
    claimed, sampled = [r.index for r in response.rows], list(expected.indices)
    add("indices", claimed == sampled,
        f"proves the sampled rows {sampled}" if claimed == sampled
        else f"proves rows {claimed}, but the sampled rows are {sampled}")
    # 5. Rows: proven inputs with revealed labels are the committed rows at the sampled indices
    add("rows", *_check_rows(response, expected))
    # 6. Model
    model_ok, model_detail = _check_model(bundle, model)
    add("model", model_ok, model_detail)
    # 7. SNARKs, against the audited circuit's artifacts
    from zkml.verify import verify_bundle

    art = artifacts if artifacts is not None else audited_artifacts(model, bundle, store)
    progress(f"verifying {len(bundle.proofs)} proof(s) against the audited circuit")
    verdict = verify_bundle(bundle, art)
    add("snark", verdict.valid, f"{len(bundle.proofs)} proof(s) verify under the audited circuit ({verdict.seconds:.2f}s)"
        if verdict.valid else f"invalid under the audited circuit: {verdict.reason}")
    if bundle.data.get("srs", {}).get("insecure"):
        from zkml.srs import DEV_WARNING

        notes.append(DEV_WARNING)
    # 8. Accuracy against the revealed (committed) labels
    acc = _accuracy(response, min_accuracy)
    add("accuracy", acc["ok"], acc.pop("detail"))
    acc.pop("ok")
    # On chain
    onchain_info: dict[str, Any] = {}
    if onchain is not None:
        _check_onchain(onchain, response, expected, model, checks, onchain_info, progress)
    report = AuditReport(
        checks=checks,
        challenge={
            "digest": expected.digest, "created": expected.created, "model_id": hex32(f.model_id),
            "model_version": f.model_version, "dataset_root": hex32(f.dataset_root), "n": f.n_rows, "k": expected.k,
            "indices": list(expected.indices), "suite": expected.suite, "pk": expected.pk.hex(),
            "alpha": expected.alpha.hex(), "pi": expected.pi.hex(), "beta": expected.beta.hex(),
            "chain_id": f.chain_id, "block_number": f.block_number, "block_hash": hex32(f.block_hash),
            "block_source": expected.block_source, "model": model.to_json(), "posted": expected.posted,
        },
        response={
            "challenge_digest": response.challenge_digest, "created": response.created,
            "model_sha256": bundle.model_sha256, "circuit_id": bundle.circuit_id,
            "vk_sha256": bundle.data["circuit"].get("vk_sha256"), "proofs": len(bundle.proofs),
            "batch_size": bundle.data["circuit"].get("batch_size"), "timings": dict(response.timings),
        },
        accuracy=acc, onchain=onchain_info, seconds=time.perf_counter() - t0, notes=notes,
    )
    if onchain is not None:
        _record_onchain(onchain, report, response, expected, record, progress)
        report.seconds = time.perf_counter() - t0
    return report


def _check_block(onchain: OnChain, expected: Challenge) -> tuple[bool, str]:
    chain, f = onchain.chain, expected.fields
    if chain.chain_id != f.chain_id:
        return False, f"the challenge names chain {f.chain_id}, the RPC is chain {chain.chain_id}"
    try:
        actual = _block_hash(chain, f.block_number)
    except ZkmlError as e:
        return False, e.message
    if actual != f.block_hash:
        return False, f"block {f.block_number} has hash {hex32(actual)[:18]}…, the challenge says {hex32(f.block_hash)[:18]}…"
    active_since = activation_block(onchain.registry, f.model_id, f.model_version)
    if f.block_number <= active_since:
        return False, (f"block {f.block_number} is not after block {active_since}, where version "
                       f"{f.model_version} became active: the owner could have known it")
    return True, f"block {f.block_number} hash matches chain {f.chain_id}; after activation block {active_since}"


def _check_rows(response: Response, expected: Challenge) -> tuple[bool, str]:
    bundle, rows = response.bundle, response.rows
    values = bundle.data["input"].get("values")
    if values is None:
        return False, "the bundle does not reveal the proven inputs"
    if len(rows) != expected.k or len(values) != expected.k or bundle.samples != expected.k:
        return False, (f"{len(rows)} revealed rows and {len(values)} proven inputs for {expected.k} sampled rows")
    root = expected.fields.dataset_root
    bad: list[str] = []
    for p, (index, row) in enumerate(zip(expected.indices, rows, strict=True)):
        try:
            features = np.asarray(values[p], dtype=np.float64).reshape(-1)
            leaf = row_leaf(index, features, row.label)
            included = verify_inclusion(root, leaf, row.proof)
        except (InputError, ValueError, TypeError) as e:
            bad.append(f"row {index}: {e}")
            continue
        if not included:
            what = "its leaf differs from the revealed one" if leaf != row.leaf else "the leaf is not in the tree"
            bad.append(f"row {index}: proven input with label {row.label:g} is not committed at index {index} "
                       f"under the root ({what})")
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return False, bad[0] + more
    return True, f"{expected.k} proven inputs with their labels are committed under root {hex32(root)[:18]}…"


def _check_model(bundle: Bundle, expected: ExpectedModel) -> tuple[bool, str]:
    sha, vk = bundle.model_sha256, str(bundle.data["circuit"].get("vk_sha256"))
    if expected.onnx_sha256 is not None and sha != expected.onnx_sha256:
        return False, f"proofs are of model {sha[:16]}…, the audited model is {expected.onnx_sha256[:16]}…"
    if expected.vk_sha256 is not None and vk != expected.vk_sha256:
        return False, f"proofs are under vk {vk[:16]}…, the audited circuit's vk is {expected.vk_sha256[:16]}…"
    pinned = " and ".join(x for x, v in (("model", expected.onnx_sha256), ("vk", expected.vk_sha256)) if v)
    return True, f"{pinned} digest(s) match the audited model (circuit {bundle.circuit_id})"


def _accuracy(response: Response, min_accuracy: float) -> dict[str, Any]:
    rows = []
    for p, row in enumerate(response.rows):
        pred = _predicted(response.bundle, p)
        rows.append({"index": row.index, "label": row.label, "predicted": pred,
                     "correct": pred is not None and float(pred) == row.label})
    total = len(rows)
    correct = sum(r["correct"] for r in rows)
    value = correct / total if total else 0.0
    ok = total > 0 and response.bundle.outputs is not None and value >= min_accuracy
    detail = (f"{correct}/{total} proven predictions match the committed labels ({100 * value:.1f}%) "
              f"{'>=' if ok else '<'} {100 * min_accuracy:.1f}%") if response.bundle.outputs is not None \
        else "the bundle does not reveal its outputs"
    return {"ok": ok, "detail": detail, "correct": correct, "total": total, "accuracy": value,
            "min_accuracy": float(min_accuracy), "rows": rows}


def _check_onchain(
    onchain: OnChain, response: Response, expected: Challenge, model: ExpectedModel, checks: list[AuditCheck],
    info: dict[str, Any], progress: Progress,
) -> None:
    from zkml.evm import vrf_onchain
    from zkml.evm.chain import ContractRevert

    chain, registry, f = onchain.chain, onchain.registry, expected.fields
    version = str(response.bundle.data.get("tools", {}).get("ezkl", ""))
    info.update({"chain_id": chain.chain_id, "rpc_url": chain.rpc_url, "registry": registry.address})
    # Registry record: the challenged version is active and names the audited model and dataset
    try:
        m = registry.model(f.model_id)
        rec = m.record
        problems = []
        if m.current_version != f.model_version:
            problems.append(f"active version is {m.current_version}, the challenge audits {f.model_version}")
        if m.paused:
            problems.append("the model is paused")
        if rec.dataset_root != f.dataset_root:
            problems.append(f"registered root {hex32(rec.dataset_root)[:18]}… is not the challenged one")
        if model.onnx_sha256 not in (None, rec.onnx_sha256.hex()):
            problems.append("the registered ONNX digest is not the challenged one")
        if model.vk_sha256 not in (None, rec.vk_digest.hex()):
            problems.append("the registered vk digest is not the challenged one")
        checks.append(AuditCheck("registry", not problems, "; ".join(problems) or
                                 f"version {m.current_version} active at {registry.address} with the audited "
                                 "model, vk and dataset root"))
    except ContractRevert as e:
        checks.append(AuditCheck("registry", False, e.message))
    # VRF and sampling on the Solidity verifier
    if expected.suite != vrf.SECP256K1.short_name:
        checks.append(AuditCheck("vrf_onchain", False, f"VRFVerifier checks secp256k1 proofs only, not {expected.suite}"))
    else:
        contract = onchain.vrf_verifier
        if contract is None and expected.posted and expected.posted.get("vrf_verifier"):
            contract = onchain.verifier_at(str(expected.posted["vrf_verifier"]))
        if contract is None:
            progress("deploying a VRFVerifier")
            contract = onchain.verifier()
        beta = vrf_onchain.verify_on_chain(contract, expected.pk, expected.alpha, expected.pi)
        gas = vrf_onchain.verify_gas(contract, expected.pk, expected.alpha, expected.pi) if beta else None
        drawn = vrf_onchain.sample_indices_on_chain(contract, beta, f.n_rows, expected.k) if beta else None
        info.update({"vrf_verifier": contract.address, "vrf_verify_gas": gas})
        posted_ok, posted_detail = _posted(chain, contract, expected)
        ok = beta == expected.beta and drawn == list(expected.indices) and posted_ok
        detail = (f"VRFVerifier at {contract.address} returns beta and sampleIndices = the challenge's "
                  f"(verify gas {gas:,}){posted_detail}") if ok else (
            "VRFVerifier refuses the proof" if beta is None else
            "on-chain beta differs" if beta != expected.beta else
            "on-chain sampleIndices differ from the challenge's" if drawn != list(expected.indices) else
            posted_detail.removeprefix("; "))
        checks.append(AuditCheck("vrf_onchain", ok, detail))
    # Dataset membership through the registry (the active version's root; the leaf is recomputed on chain)
    try:
        members = []
        values = response.bundle.data["input"].get("values") or []
        for p, (index, row) in enumerate(zip(expected.indices, response.rows, strict=False)):
            if p >= len(values):
                members.append(False)
                continue
            features = np.asarray(values[p], dtype=np.float64).reshape(-1)
            members.append(bool(registry.verify_dataset_row(f.model_id, index, features, row.label, list(row.proof))))
        n_ok = sum(members)
        checks.append(AuditCheck("rows_onchain", n_ok == expected.k and len(members) == expected.k,
                                 f"registry.verifyDatasetRow (leaf recomputed on chain from the proven input and "
                                 f"label) accepts {n_ok}/{expected.k} rows"))
    except (ContractRevert, InputError, ValueError) as e:
        checks.append(AuditCheck("rows_onchain", False, getattr(e, "message", str(e))))
    # Every proof through the registry (eth_call: no gas spent, nothing recorded yet)
    proofs = [e.to_ezkl(version) for e in response.bundle.proofs]
    try:
        accepted = sum(bool(registry.verify(f.model_id, p)) for p in proofs)
        checks.append(AuditCheck("snark_onchain", accepted == len(proofs),
                                 f"registry.verify accepts {accepted}/{len(proofs)} proof(s) for model "
                                 f"{hex32(f.model_id)[:18]}…"))
    except (ContractRevert, ZkmlError) as e:
        checks.append(AuditCheck("snark_onchain", False, f"registry refuses the proofs: {e.message}"))


def _record_onchain(onchain: OnChain, report: AuditReport, response: Response, expected: Challenge, record: bool,
                    progress: Progress) -> None:
    """Record the outcome: a passing audit's proofs (verifyAndRecord), then the verdict (recordAudit, pass or fail).

    Appends the ``record`` check and puts the transactions in ``report.onchain``.
    A challenge of version 0 (a local audit) names no registry version, so nothing is recorded.
    """
    from zkml.errors import ChainError
    from zkml.evm.chain import ContractRevert

    registry, f, checks, info = onchain.registry, expected.fields, report.checks, report.onchain
    if not record:
        checks.append(AuditCheck("record", True, "not recorded (--no-record)"))
        return
    if f.model_version == 0:
        checks.append(AuditCheck("record", None, "nothing recorded: the challenge names no registry version "
                                                 "(a local audit)"))
        return
    passed = report.passed
    # A passing audit: every proof through verifyAndRecord (ProofVerified events)
    txs: list[dict[str, Any]] = []
    failure = None
    if passed:
        version = str(response.bundle.data.get("tools", {}).get("ezkl", ""))
        progress(f"recording {len(response.bundle.proofs)} proof(s) with registry.verifyAndRecord")
        try:
            for entry in response.bundle.proofs:
                receipt = registry.verify_and_record(f.model_id, entry.to_ezkl(version))
                txs.append({"tx_hash": receipt.tx_hash, "block": receipt.block, "gas_used": receipt.gas_used,
                            "events": [name for name, _ in registry.events(receipt)]})
        except (ContractRevert, ChainError) as e:
            failure = f"verifyAndRecord failed: {e.message}"
        info["records"] = txs
    # The verdict: recordAudit, pass or fail (AuditRecorded)
    outcome = passed and failure is None
    digest = report.verdict_digest()
    beta = expected.beta if len(expected.beta) == 32 else keccak(expected.beta)
    progress(f"recording the audit outcome ({'pass' if outcome else 'fail'}) with registry.recordAudit")
    try:
        receipt = registry.record_audit(f.model_id, f.model_version, bytes.fromhex(expected.digest), beta,
                                        bytes.fromhex(digest), expected.k, int(report.accuracy.get("correct", 0)),
                                        outcome)
    except (ContractRevert, ChainError) as e:
        checks.append(AuditCheck("record", False, failure or f"recordAudit failed: {e.message}"))
        return
    info["audit_tx"] = receipt.tx_hash
    info["audit_record"] = {"tx_hash": receipt.tx_hash, "block": receipt.block, "gas_used": receipt.gas_used,
                            "auditor": onchain.chain.sender, "passed": outcome, "report_digest": digest,
                            "events": [name for name, _ in registry.events(receipt)]}
    verdict = f"AuditRecorded ({'pass' if outcome else 'fail'}) in tx {receipt.tx_hash[:12]}… (gas {receipt.gas_used:,})"
    if failure is not None:
        checks.append(AuditCheck("record", False, f"{failure}; {verdict}"))
    elif not passed:
        checks.append(AuditCheck("record", None, f"the audit failed; {verdict}"))
    else:
        gas = [t["gas_used"] for t in txs]
        checks.append(AuditCheck("record", True, f"{len(txs)} ProofVerified event(s) in tx "
                                                 f"{', '.join(t['tx_hash'][:12] + '…' for t in txs[:3])}"
                                                 f"{' …' if len(txs) > 3 else ''} (gas {min(gas):,}–{max(gas):,}); "
                                                 + verdict))


def _posted(chain: Chain, contract: Contract, expected: Challenge) -> tuple[bool, str]:
    """Whether the challenge's posting transaction is on chain with exactly this challenge's calldata."""
    from zkml.evm import vrf_onchain
    from zkml.evm.chain import encode_call

    posted = expected.posted
    if not posted:
        return True, ""
    tx = chain.rpc("eth_getTransactionByHash", [posted.get("tx_hash")])
    if not isinstance(tx, Mapping):
        return False, f"; the posting transaction {posted.get('tx_hash')} is not on this chain"
    data = encode_call(contract.abi, "verify", *vrf_onchain.verify_args(expected.pk, expected.alpha, expected.pi))
    sent = bytes.fromhex(str(tx.get("input", "")).removeprefix("0x"))
    to = str(tx.get("to") or "").lower()
    if sent != data or to != str(posted.get("vrf_verifier", "")).lower():
        return False, f"; transaction {posted.get('tx_hash')} does not carry this challenge"
    block = int(str(tx.get("blockNumber") or "0x0"), 16)
    return True, f"; posted in tx {str(posted['tx_hash'])[:12]}… at block {block}"

