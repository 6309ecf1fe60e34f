"""Commitments: dataset Merkle roots, ONNX file digests, weights digests.

A commitment is a short digest that pins an artifact, so a proof, a registry
entry or an audit can name exactly which dataset, model file or weights it
speaks for. This module defines three of them (the Merkle tree primitives
live in :mod:`zkml.commitments.merkle` and the model digests in :mod:`zkml.commitments.model`;
both are re-exported here).

Dataset commitment (leaf encoding version 1)
============================================
The dataset is a sequence of rows (samples, the first axis of the feature
array) with an optional scalar label per row. Row ``i`` is committed to by the
32-byte leaf::

    leaf_i = keccak256(bytes.concat(keccak256(abi.encode(
                 uint256 index,      // i, the 0-based row position
                 bytes   features,   // the row's values, see below
                 bytes   label       // 8 bytes, or empty if the dataset has no labels
             ))))

* ``features`` is the row flattened in C (row-major) order, every value as an
  IEEE-754 binary64 (float64) in big-endian byte order, concatenated: a row of
  ``F`` values is ``8 * F`` bytes. The value is the dataset file's number
  converted to float64, which is exact for float32/float64 arrays, for JSON
  numbers (parsed with correct rounding, as Python and JavaScript both do) and
  for integers of magnitude at most 2**53; anything not exactly representable
  (larger integers, NaN, +-Inf) is refused. ``-0.0`` and ``0.0`` differ.
* ``label`` is the row's label as one big-endian float64 (8 bytes) when the
  dataset has labels, and the empty byte string when it has none; "no labels"
  therefore never collides with "label 0".
* ``abi.encode`` is Solidity's standard ABI encoding (head: index, offset of
  ``features`` = 0x60, offset of ``label``; tail: each ``bytes`` as its length
  word followed by the data right-padded with zeros to a multiple of 32).
* The double keccak is OpenZeppelin's StandardMerkleTree leaf convention: a
  leaf preimage can never be read as the 64-byte concatenation of two inner
  nodes (second-preimage protection).

Including the index and the label means that reordering rows, changing one
bit of a feature, or changing a label all change the leaf. The row's shape is
*not* in the leaf (only its flattened values are), so the same data stored as a
JSON ``input_data`` file or as an ``.npz`` array commits to the same root; the
shape is recorded beside the root in the commitment file.

Tree
====
The rows' leaves are kept in row order in OpenZeppelin's ``StandardMerkleTree``
layout with sorted-pair keccak256 inner nodes; the layout and the proof order
are specified in :mod:`zkml.commitments.merkle`.

ONNX digest, weights digest
===========================
``onnx_digest(path)`` and ``weights_digest(path)`` are specified in
:mod:`zkml.commitments.model`.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from eth_utils import keccak

from zkml.errors import InputError
from zkml.commitments.merkle import MerkleTree, RowIndexError, hex32, to_bytes32, verify_inclusion
from zkml.util import sha256_file, write_json_atomic


LEAF_ENCODING_VERSION: Final[int] = 1
"""Version of the row-leaf encoding described in the module docstring."""

COMMITMENT_FORMAT: Final[str] = "zkml.dataset-commitment"
"""The ``format`` tag of a commitment file."""

COMMITMENT_FORMAT_VERSION: Final[int] = 1
"""Version of the commitment file layout."""

LEAF_ENCODING_SPEC: Final[str] = (
    "keccak256(bytes.concat(keccak256(abi.encode(uint256 index, bytes features, bytes label)))); "
    "features = row values in C order as big-endian float64; label = big-endian float64 or empty"
)
"""One-line statement of the leaf encoding, written into commitment files."""

TREE_SPEC: Final[str] = "OpenZeppelin StandardMerkleTree layout, sortLeaves=false, commutative keccak256 pairs"
"""One-line statement of the tree layout, written into commitment files."""

FEATURE_KEYS: Final[tuple[str, ...]] = ("input_data", "x", "X", "inputs")
"""Keys that may hold the feature rows (``input_data`` only in JSON files)."""

LABEL_KEYS: Final[tuple[str, ...]] = ("y", "labels")
"""Keys that may hold the labels."""

_MAX_EXACT_INT: Final[int] = 2**53


class CommitmentError(InputError):
    """A dataset commitment file is malformed, of an unknown version, or inconsistent."""


# ---------------------------------------------------------------------------
# Dataset loading
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset as committed: float64 feature rows and optional float64 labels."""

    features: np.ndarray
    """Feature array of shape ``(n_rows, *row_shape)``, dtype float64, all finite."""

    labels: np.ndarray | None
    """Labels of shape ``(n_rows,)``, dtype float64, all finite; None when the file has none."""

    sha256: str
    """Hex sha256 of the dataset file's bytes."""

    @property
    def n_rows(self) -> int:
        """Number of rows (samples)."""
        return int(self.features.shape[0])

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of one row (the feature array's shape without the first axis)."""
        return tuple(int(d) for d in self.features.shape[1:])


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset file; rows are the first axis, labels are optional.

    Accepted files:

    * ``.json`` holding a plain nested array of rows (no labels), or an object
      with exactly one features key among ``input_data``, ``x``, ``X``,
      ``inputs`` and at most one labels key among ``y``, ``labels`` (other
      keys, such as ezkl's ``output_data``, are ignored). In ``input_data``
      each inner list is one (flattened) sample, as in a single-input ezkl
      input file.
    * ``.npz`` holding exactly one features array among ``x``, ``X``,
      ``inputs`` and at most one labels array among ``y``, ``labels``.

    Features must be a numeric array of at least two dimensions (rows and
    features) with at least one row; labels a numeric 1-D array with one value
    per row. Raises :class:`InputError` for a missing file, an unknown
    extension, unparseable content, missing or ambiguous keys, ragged rows,
    non-numeric, non-finite or inexact values, or a label count mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dataset file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        raw_features, raw_labels = _read_json_dataset(path)
    elif suffix == ".npz":
        raw_features, raw_labels = _read_npz_dataset(path)
    else:
        raise InputError(f"unknown dataset format {path.suffix or '(no extension)'!r} for {path} (expected .json or .npz)")

    features = _exact_float64(raw_features, "features", path)
    if features.ndim < 2:
        raise InputError(f"{path}: features must be an array of rows (at least 2-D), got shape {features.shape}")
    if features.shape[0] == 0:
        raise InputError(f"{path}: the dataset has no rows")
    if features.size == 0:
        raise InputError(f"{path}: rows have no features (shape {features.shape})")

    labels: np.ndarray | None = None
    if raw_labels is not None:
        labels = _exact_float64(raw_labels, "labels", path)
        if labels.ndim != 1:
            raise InputError(f"{path}: labels must be 1-D (one scalar per row), got shape {labels.shape}")
        if labels.shape[0] != features.shape[0]:
            raise InputError(f"{path}: {labels.shape[0]} labels for {features.shape[0]} rows")
    return Dataset(features=features, labels=labels, sha256=sha256_file(path))


def _pick_key(keys: Sequence[str], candidates: tuple[str, ...], what: str, path: Path) -> str | None:
    found = [k for k in candidates if k in keys]
    if len(found) > 1:
        raise InputError(f"{path}: ambiguous {what}: keys {found} are all present (keep one of them)")
    return found[0] if found else None


def _read_json_dataset(path: Path) -> tuple[Any, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e
    if isinstance(doc, list):
        return doc, None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON array of rows or an object, got {type(doc).__name__}")
    keys = list(doc)
    fkey = _pick_key(keys, FEATURE_KEYS, "features", path)
    if fkey is None:
        raise InputError(f"{path}: no features key; expected one of {list(FEATURE_KEYS)}, found {keys}")
    lkey = _pick_key(keys, LABEL_KEYS, "labels", path)
    return doc[fkey], (doc[lkey] if lkey is not None else None)


def _read_npz_dataset(path: Path) -> tuple[Any, Any]:
    npz_feature_keys = tuple(k for k in FEATURE_KEYS if k != "input_data")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: not a readable .npz archive ({e})") from e
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: not a readable .npz archive (it holds a single .npy array, not named arrays)")
    try:
        with loaded as npz:
            keys = list(npz.files)
            fkey = _pick_key(keys, npz_feature_keys, "features", path)
            if fkey is None:
                raise InputError(f"{path}: no features array; expected one of {list(npz_feature_keys)}, found {keys}")
            lkey = _pick_key(keys, LABEL_KEYS, "labels", path)
            return npz[fkey], (npz[lkey] if lkey is not None else None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: not a readable .npz archive ({e})") from e


def _exact_float64(raw: Any, what: str, path: Path) -> np.ndarray:
    """Convert to float64, refusing anything that is not numeric, finite and exactly representable."""
    try:
        arr = np.asarray(raw)
    except ValueError as e:  # ragged nesting
        raise InputError(f"{path}: {what} are not a rectangular array ({e})") from e
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{path}: {what} must be numbers (got array dtype {arr.dtype}, e.g. ragged rows, strings or booleans)")
    if arr.dtype.kind in "iu":
        if arr.size and (int(arr.max()) > _MAX_EXACT_INT or int(arr.min()) < -_MAX_EXACT_INT):
            raise InputError(f"{path}: {what} hold integers beyond +-2**53, not exactly representable as float64")
        out = arr.astype(np.float64)
    else:
        out = arr.astype(np.float64)  # float16/32 -> float64 is exact
    if not np.isfinite(out).all():
        raise InputError(f"{path}: {what} contain NaN or infinity")
    return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------
# Leaf encoding
# ---------------------------------------------------------------------------


def _pad32(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 32)


def encode_row(index: int, features: np.ndarray, label: float | None) -> bytes:
    """``abi.encode(uint256 index, bytes features, bytes label)`` for one row (the leaf preimage).

    ``features`` is flattened in C order and written as big-endian float64;
    ``label`` as one big-endian float64, or empty when None. Raises
    :class:`InputError` for a negative index or non-finite values.
    """
    # Inputs validation
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**256:
        raise InputError(f"row index must be a non-negative integer, got {index!r}")
    values = np.asarray(features, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"row {index} contains NaN or infinity")
    if label is not None and not np.isfinite(label):
        raise InputError(f"label of row {index} is NaN or infinity")
    # Procedure
    feature_bytes = np.ascontiguousarray(values, dtype=">f8").tobytes()
    label_bytes = b"" if label is None else struct.pack(">d", float(label))
    label_offset = 0x60 + 32 + len(_pad32(feature_bytes))
    return b"".join(
        (
            index.to_bytes(32, "big"),
            (0x60).to_bytes(32, "big"),
            label_offset.to_bytes(32, "big"),
            len(feature_bytes).to_bytes(32, "big"),
            _pad32(feature_bytes),
            len(label_bytes).to_bytes(32, "big"),
            _pad32(label_bytes),
        )
    )


def row_leaf(index: int, features: np.ndarray, label: float | None) -> bytes:
    """The 32-byte leaf of one row: ``keccak256(keccak256(encode_row(...)))``."""
    return keccak(keccak(encode_row(index, features, label)))


def dataset_leaves(dataset: Dataset) -> list[bytes]:
    """Leaves of every row of ``dataset``, in row order."""
    labels = dataset.labels
    return [
        row_leaf(i, dataset.features[i], None if labels is None else float(labels[i])) for i in range(dataset.n_rows)
    ]


def dataset_row_leaf(dataset: Dataset, index: int) -> bytes:
    """Leaf of row ``index``; raises :class:`RowIndexError` when out of range."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < dataset.n_rows:
        raise RowIndexError(index, dataset.n_rows)
    label = None if dataset.labels is None else float(dataset.labels[index])
    return row_leaf(index, dataset.features[index], label)


# ---------------------------------------------------------------------------
# Dataset commitment
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetCommitment:
    """The identity of a committed dataset: what a registry stores and an auditor checks."""

    root: bytes
    """Merkle root over the row leaves (32 bytes)."""

    n_rows: int
    """Number of rows (leaves)."""

    leaf_encoding_version: int
    """Version of the leaf encoding (see :data:`LEAF_ENCODING_VERSION`)."""

    has_labels: bool
    """Whether the leaves include labels."""

    file_sha256: str
    """Hex sha256 of the dataset file the root was computed from."""

    row_shape: tuple[int, ...]
    """Shape of one row before flattening (not part of the leaves; informational)."""

    @property
    def root_hex(self) -> str:
        """The root as ``0x``-prefixed hex."""
        return hex32(self.root)


@dataclass(frozen=True)
class CommittedDataset:
    """A dataset commitment together with its Merkle tree, so row proofs can be served."""

    commitment: DatasetCommitment
    """The dataset's identity (root, row count, encoding version…)."""

    tree: MerkleTree
    """The tree over the row leaves; ``tree.root == commitment.root``."""

    source_name: str
    """File name (no directory) of the dataset the commitment was built from."""

    def leaf(self, index: int) -> bytes:
        """Leaf of row ``index``; raises :class:`RowIndexError` when out of range."""
        return self.tree.leaf(index)

    def proof(self, index: int) -> list[bytes]:
        """Inclusion proof of row ``index``; raises :class:`RowIndexError` when out of range."""
        return self.tree.proof(index)

    def to_json(self) -> dict[str, Any]:
        """The commitment file's content (see :func:`write_commitment`)."""
        c = self.commitment
        return {
            "format": COMMITMENT_FORMAT,
            "format_version": COMMITMENT_FORMAT_VERSION,
            "leaf_encoding_version": c.leaf_encoding_version,
            "leaf_encoding": LEAF_ENCODING_SPEC,
            "tree": TREE_SPEC,
            "root": c.root_hex,
            "n_rows": c.n_rows,
            "row_shape": list(c.row_shape),
            "has_labels": c.has_labels,
            "source": {"name": self.source_name, "sha256": c.file_sha256},
            "leaves": [hex32(leaf) for leaf in self.tree.leaves()],
            "proofs": [[hex32(p) for p in self.tree.proof(i)] for i in range(c.n_rows)],
        }


def build_commitment(path: str | os.PathLike[str]) -> CommittedDataset:
    """Load the dataset at ``path`` and build its Merkle tree and commitment.

    Raises :class:`InputError` as :func:`load_dataset` does.
    """
    dataset = load_dataset(path)
    tree = MerkleTree.build(dataset_leaves(dataset))
    commitment = DatasetCommitment(
        root=tree.root,
        n_rows=dataset.n_rows,
        leaf_encoding_version=LEAF_ENCODING_VERSION,
        has_labels=dataset.labels is not None,
        file_sha256=dataset.sha256,
        row_shape=dataset.row_shape,
    )
    return CommittedDataset(commitment=commitment, tree=tree, source_name=Path(path).name)


def commit_dataset(path: str | os.PathLike[str]) -> DatasetCommitment:
    """The commitment (Merkle root and identity) of the dataset at ``path``.

    Raises :class:`InputError` as :func:`load_dataset` does.
    """
    return build_commitment(path).commitment


def write_commitment(dest: str | os.PathLike[str], committed: CommittedDataset) -> None:
    """Write the commitment file (root, leaves and one proof per row) atomically.

    The file is JSON: ``format``, ``format_version``, ``leaf_encoding_version``,
    ``leaf_encoding`` and ``tree`` (one-line specs), ``root`` (hex bytes32),
    ``n_rows``, ``row_shape``, ``has_labels``, ``source`` (``name``, ``sha256``),
    ``leaves`` (hex bytes32 per row) and ``proofs`` (per row, a list of hex
    bytes32 ready to pass as ``bytes32[]`` to ``MerkleProof.verify``).
    """
    write_json_atomic(dest, committed.to_json(), indent=1)


def read_commitment(path: str | os.PathLike[str]) -> CommittedDataset:
    """Read and check a commitment file written by :func:`write_commitment`.

    The tree is rebuilt from the stored leaves; the stored root and every
    stored proof must match it, so a file that passes is internally
    consistent. Raises :class:`InputError` when the file is missing and
    :class:`CommitmentError` when it is malformed, of an unknown format or
    version, or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"commitment file not found: {path}")
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CommitmentError(f"{path}: not valid JSON ({e})") from e
    # Format checks
    if not isinstance(doc, dict) or doc.get("format") != COMMITMENT_FORMAT:
        raise CommitmentError(f"{path}: not a zkml dataset commitment (format != {COMMITMENT_FORMAT!r})")
    if doc.get("format_version") != COMMITMENT_FORMAT_VERSION:
        raise CommitmentError(f"{path}: unsupported commitment format_version {doc.get('format_version')!r}")
    if doc.get("leaf_encoding_version") != LEAF_ENCODING_VERSION:
        raise CommitmentError(f"{path}: unsupported leaf_encoding_version {doc.get('leaf_encoding_version')!r}")
    try:
        root = to_bytes32(doc["root"], "root")
        leaves = [to_bytes32(x, f"leaves[{i}]") for i, x in enumerate(doc["leaves"])]
        proofs = [[to_bytes32(p, f"proofs[{i}]") for p in ps] for i, ps in enumerate(doc["proofs"])]
        n_rows = doc["n_rows"]
        row_shape = tuple(int(d) for d in doc["row_shape"])
        has_labels = doc["has_labels"]
        source = doc["source"]
        source_name, file_sha256 = source["name"], source["sha256"]
    except (KeyError, TypeError, ValueError) as e:
        raise CommitmentError(f"{path}: malformed commitment file ({type(e).__name__}: {e})") from e
    except InputError as e:
        raise CommitmentError(f"{path}: {e.message}") from e
    if not isinstance(n_rows, int) or isinstance(n_rows, bool) or not isinstance(has_labels, bool):
        raise CommitmentError(f"{path}: n_rows must be an integer and has_labels a boolean")
    if not isinstance(source_name, str) or not isinstance(file_sha256, str):
        raise CommitmentError(f"{path}: source name and sha256 must be strings")
    # Consistency checks
    if n_rows < 1 or len(leaves) != n_rows or len(proofs) != n_rows:
        raise CommitmentError(f"{path}: n_rows={n_rows} but {len(leaves)} leaves and {len(proofs)} proofs")
    tree = MerkleTree.build(leaves)
    if tree.root != root:
        raise CommitmentError(f"{path}: the stored root does not match the root of the stored leaves")
    for i, stored in enumerate(proofs):
        if stored != tree.proof(i):
            raise CommitmentError(f"{path}: the stored proof of row {i} does not match the stored leaves")
    commitment = DatasetCommitment(
        root=root,
        n_rows=n_rows,
        leaf_encoding_version=LEAF_ENCODING_VERSION,
        has_labels=has_labels,
        file_sha256=file_sha256,
        row_shape=row_shape,
    )
    return CommittedDataset(commitment=commitment, tree=tree, source_name=source_name)


def verify_row(
    root: bytes | str, data_path: str | os.PathLike[str], index: int, proof: Sequence[bytes | str]
) -> bool:
    """True iff row ``index`` of the dataset file, under the leaf encoding, is in the tree with ``root``.

    Raises :class:`InputError` for an unreadable dataset, a malformed root or
    proof, and :class:`RowIndexError` when the file has no row ``index``; a
    row that is not included returns False.
    """
    expected = to_bytes32(root, "root")
    leaf = dataset_row_leaf(load_dataset(data_path), index)
    return verify_inclusion(expected, leaf, proof)
