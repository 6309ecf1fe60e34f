"""Responding to a challenge: the owner proves the sampled rows and reveals their Merkle evidence."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zkml.audit.challenge import Challenge
from zkml.audit.common import FORMAT_VERSION, RESPONSE_FORMAT, AuditError, Progress, _quiet, _read_doc
from zkml.bundle import Bundle, now_iso
from zkml.commitments import Dataset, MerkleTree, dataset_leaves, hex32, load_dataset, to_bytes32
from zkml.errors import InputError
from zkml.util import write_json_atomic

if TYPE_CHECKING:
    from zkml.circuit import Circuit


# ---------------------------------------------------------------------------
# Responding
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RowEvidence:
    """One sampled row as the owner reveals it: its features and label, its leaf and inclusion proof.

    The check binds the features twice: to the committed tree (the leaf hashes
    index, features and label) and to the proof (the quantized features are its
    public input, or open its Poseidon input commitment).
    """

    index: int
    """Row index in the dataset."""
    features: tuple[float, ...]
    """The row's features, flat (revealed; committed in the leaf)."""
    label: float
    """The committed label (revealed)."""
    leaf: bytes
    """The row's leaf (``zkml.commitments.dataset.row_leaf``)."""
    proof: tuple[bytes, ...]
    """Merkle inclusion proof of the leaf (OpenZeppelin order)."""

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "features": list(self.features), "label": self.label, "leaf": hex32(self.leaf),
                "proof": [hex32(p) for p in self.proof]}

    @classmethod
    def from_json(cls, d: Any, where: str) -> RowEvidence:
        if not isinstance(d, Mapping):
            raise AuditError(f"{where} must be an object")
        try:
            index, label, features = d["index"], d["label"], d["features"]
            if isinstance(index, bool) or not isinstance(index, int):
                raise AuditError(f"{where}.index must be an integer")
            if isinstance(label, bool) or not isinstance(label, (int, float)):
                raise AuditError(f"{where}.label must be a number")
            if not isinstance(features, list) or not features or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in features):
                raise AuditError(f"{where}.features must be a non-empty list of finite numbers")
            return cls(index, tuple(float(x) for x in features), float(label), to_bytes32(d["leaf"], f"{where}.leaf"),
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
    """Proofs of the rows (only its proofs' instances are trusted, once they verify)."""
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
            "bundle": self.bundle.to_json(), "timings": dict(self.timings),
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


def challenged_circuit(challenge: Challenge, store: Any, circuit: str | None = None,
                       progress: Progress = _quiet) -> Circuit:
    """The circuit that answers ``challenge``, from ``store`` (a :class:`zkml.store.Store`).

    ``circuit`` (a circuit id or folder, a recipe or an ONNX file) when given; else the challenged
    circuit, as ``zkml audit check`` finds it (:func:`zkml.audit.check.audited_circuit`: by the challenged
    id, else by the challenged vk, with the challenged vk and ONNX digests). :func:`respond` still checks
    it is the challenged model.

    Raises:
        ConfigError: the store has no such circuit (pass ``circuit``).
    """
    from zkml.audit.check import audited_circuit
    from zkml.errors import ConfigError, StoreError

    if circuit is not None:
        from zkml.targets import resolve_circuit

        return resolve_circuit(circuit, store, progress=progress)[0]
    try:
        return audited_circuit(challenge.model, store)
    except StoreError:
        raise ConfigError("pass --circuit: the challenged circuit is not in this store") from None


def respond(
    challenge: Challenge,
    data_path: str | os.PathLike[str],
    circuit: Circuit,
    *,
    timeout: float | None = None,
    route: Any = None,
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
    from zkml.prove import DEFAULT_TIMEOUT_S
    from zkml.scale.route import ProveRoute

    t0 = time.perf_counter()
    # Inputs validation: the challenge
    problem = challenge.vrf_problem() or challenge.commit_problem()
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
    for part, vis in (("input", opts.input_visibility), ("output", opts.output_visibility)):
        if vis not in ("public", "hashed"):
            raise AuditError(f"the circuit keeps its {part} {vis}: nothing would bind the revealed "
                             f"{'rows' if part == 'input' else 'predictions'} to the proofs, so it cannot answer an audit")
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
    bundle = (route or ProveRoute()).prove(circuit, samples, reveal_input=True, timeout=timeout or DEFAULT_TIMEOUT_S,
                                           progress=progress)
    rows = tuple(
        RowEvidence(i, tuple(float(v) for v in features[p]), float(dataset.labels[i]), tree.leaf(i),
                    tuple(tree.proof(i)))
        for p, i in enumerate(idx)
    )
    return Response(
        challenge=challenge,
        challenge_digest=challenge.digest,
        rows=rows,
        bundle=bundle,
        dataset={"root": hex32(tree.root), "n_rows": dataset.n_rows, "file_sha256": dataset.sha256,
                 "row_shape": list(dataset.row_shape)},
        created=now_iso(),
        timings={"prove_seconds": float(bundle.timings.get("prove_seconds", 0.0)),
                 "total_seconds": time.perf_counter() - t0},
    )
