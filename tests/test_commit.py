"""Dataset commitments, Merkle proofs, model digests, and the ``zkml data`` CLI.

Reference values are computed independently of :mod:`zkml.commitments.dataset`: leaves via
``eth_abi`` + pycryptodome's keccak, small-tree roots by hand from the
OpenZeppelin array layout, and the weights digest straight from its spec.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from Crypto.Hash import keccak as _keccak
from eth_abi import encode as abi_encode
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from zkml.commitments import (
    LEAF_ENCODING_VERSION,
    WEIGHTS_DOMAIN,
    CommitmentError,
    MerkleTree,
    RowIndexError,
    build_commitment,
    commit_dataset,
    dataset_leaves,
    encode_row,
    load_dataset,
    onnx_digest,
    process_proof,
    read_commitment,
    row_leaf,
    verify_inclusion,
    verify_row,
    weights_digest,
    write_commitment,
)
from zkml.errors import InputError, ModelError
from zkml_cli.data import app

# ---------------------------------------------------------------------------
# Independent reference
# ---------------------------------------------------------------------------


def k256(data: bytes) -> bytes:
    """keccak256 via pycryptodome (zkml uses eth_utils/eth_hash)."""
    return _keccak.new(digest_bits=256, data=data).digest()


def H(a: bytes, b: bytes) -> bytes:
    """Sorted-pair hash, written from OpenZeppelin's Hashes.commutativeKeccak256."""
    lo, hi = sorted((a, b))
    return k256(lo + hi)


def ref_leaf(index: int, row: list[float] | np.ndarray, label: float | None) -> bytes:
    """Leaf from the spec, with eth_abi doing the ABI encoding."""
    values = [float(v) for v in np.asarray(row, dtype=np.float64).ravel()]
    features = struct.pack(f">{len(values)}d", *values)
    label_bytes = b"" if label is None else struct.pack(">d", float(label))
    return k256(k256(abi_encode(["uint256", "bytes", "bytes"], [index, features, label_bytes])))


def ref_root(leaves: list[bytes]) -> bytes:
    """Root by the array-layout recursion, written independently of MerkleTree.build."""
    n = len(leaves)
    tree: dict[int, bytes] = {2 * n - 2 - i: leaf for i, leaf in enumerate(leaves)}

    def node(k: int) -> bytes:
        return tree[k] if k in tree else H(node(2 * k + 1), node(2 * k + 2))

    return node(0)


def rows_for(n: int, width: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + n)
    return rng.normal(size=(n, width)), rng.integers(0, 10, size=n)


def write_xy(path: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    doc: dict[str, Any] = {"x": x.tolist()}
    if y is not None:
        doc["y"] = y.tolist()
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------------------
# Leaf encoding
# ---------------------------------------------------------------------------


def test_encode_row_exact_bytes() -> None:
    """The ABI layout spelled out word by word for index 1, features [1.0], label 2.0."""
    words = [
        "01".rjust(64, "0"),  # index
        "60".rjust(64, "0"),  # offset of features
        "a0".rjust(64, "0"),  # offset of label = 0x60 + 32 + 32
        "08".rjust(64, "0"),  # len(features)
        "3ff0000000000000".ljust(64, "0"),  # 1.0 big-endian float64, right-padded
        "08".rjust(64, "0"),  # len(label)
        "4000000000000000".ljust(64, "0"),  # 2.0
    ]
    assert encode_row(1, np.array([1.0]), 2.0).hex() == "".join(words)
    no_label = words[:5] + ["00".rjust(64, "0")]
    assert encode_row(1, np.array([1.0]), None).hex() == "".join(no_label)


@pytest.mark.parametrize(
    ("index", "row", "label"),
    [
        (0, [0.0], None),
        (0, [0.0], 0.0),
        (1, [1.5, -2.25, 3.0], 7.0),
        (5, [0.1, 0.2, 0.3, 0.4], None),  # 32 bytes of features: no padding
        (2**40, [-0.0, 1e300, -1e-300], -1.0),
        (3, np.arange(12.0).reshape(3, 4), 4.0),  # multi-dim row, flattened in C order
    ],
)
def test_leaf_matches_eth_abi_reference(index: int, row: Any, label: float | None) -> None:
    assert row_leaf(index, np.asarray(row, dtype=np.float64), label) == ref_leaf(index, row, label)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((0, [1.0, 2.0], 1.0), (1, [1.0, 2.0], 1.0)),  # index
        ((0, [1.0, 2.0], 1.0), (0, [2.0, 1.0], 1.0)),  # feature order
        ((0, [1.0, 2.0], 1.0), (0, [1.0, 2.0], 2.0)),  # label
        ((0, [1.0, 2.0], 0.0), (0, [1.0, 2.0], None)),  # label 0 vs no label
        ((0, [0.0], None), (0, [-0.0], None)),  # sign of zero
        ((0, [1.0, 2.0], None), (0, [1.0, 2.0, 0.0], None)),  # trailing zero feature
    ],
)
def test_leaf_distinguishes(a: tuple[int, list[float], float | None], b: tuple[int, list[float], float | None]) -> None:
    assert row_leaf(a[0], np.array(a[1]), a[2]) != row_leaf(b[0], np.array(b[1]), b[2])


@pytest.mark.parametrize(
    ("index", "row", "label"),
    [(-1, [1.0], None), (True, [1.0], None), (0, [float("nan")], None), (0, [float("inf")], None), (0, [1.0], float("nan"))],
)
def test_encode_row_refuses(index: Any, row: list[float], label: float | None) -> None:
    with pytest.raises(InputError):
        encode_row(index, np.array(row), label)


# ---------------------------------------------------------------------------
# Merkle tree
# ---------------------------------------------------------------------------

L = [k256(bytes([i])) for i in range(8)]


@pytest.mark.parametrize(
    ("n", "root", "proof0", "proof_last"),
    [
        (1, L[0], [], []),
        (2, H(L[0], L[1]), [L[1]], [L[0]]),
        # n=3: nodes [H(n1, l2), H(l1, l0), l2, l1, l0]
        (3, H(H(L[0], L[1]), L[2]), [L[1], L[2]], [H(L[0], L[1])]),
        (4, H(H(L[0], L[1]), H(L[2], L[3])), [L[1], H(L[2], L[3])], [L[2], H(L[0], L[1])]),
        # n=5: nodes [H(n1,n2), H(n3,l4), H(l3,l2), H(l1,l0), l4, l3, l2, l1, l0]
        (5, H(H(H(L[0], L[1]), L[4]), H(L[2], L[3])), [L[1], L[4], H(L[2], L[3])], [H(L[0], L[1]), H(L[2], L[3])]),
    ],
)
def test_small_trees_by_hand(n: int, root: bytes, proof0: list[bytes], proof_last: list[bytes]) -> None:
    tree = MerkleTree.build(L[:n])
    assert tree.root == root
    assert tree.proof(0) == proof0
    assert tree.proof(n - 1) == proof_last
    assert tree.leaves() == L[:n]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 33])
def test_dataset_roundtrip(tmp_path: Path, n: int) -> None:
    x, y = rows_for(n)
    committed = build_commitment(write_xy(tmp_path / "d.json", x, y))
    expected_leaves = [ref_leaf(i, x[i], float(y[i])) for i in range(n)]
    assert committed.tree.leaves() == expected_leaves
    assert committed.commitment.root == ref_root(expected_leaves)
    for i in range(n):
        proof = committed.proof(i)
        assert len(proof) <= (n - 1).bit_length()  # a complete binary tree: depth ceil(log2 n)
        assert verify_inclusion(committed.commitment.root, expected_leaves[i], proof)
        assert verify_inclusion(committed.commitment.root_hex, "0x" + expected_leaves[i].hex(), ["0x" + p.hex() for p in proof])


def _flip_bit(x: np.ndarray, row: int, col: int) -> np.ndarray:
    out = x.copy()
    out.view(np.uint64)[row, col] ^= np.uint64(1)  # lowest mantissa bit
    return out


TAMPER: list[tuple[str, Callable[[np.ndarray, np.ndarray, list[bytes]], tuple[bytes, list[bytes]]]]] = [
    ("feature bit flipped", lambda x, y, p: (ref_leaf(2, _flip_bit(x, 2, 1)[2], y[2]), p)),
    ("label changed", lambda x, y, p: (ref_leaf(2, x[2], y[2] + 1), p)),
    ("rows swapped", lambda x, y, p: (ref_leaf(2, x[3], y[3]), p)),
    ("index changed", lambda x, y, p: (ref_leaf(3, x[2], y[2]), p)),
    ("leaf of another row", lambda x, y, p: (ref_leaf(3, x[3], y[3]), p)),
    ("label dropped", lambda x, y, p: (ref_leaf(2, x[2], None), p)),
    ("proof truncated", lambda x, y, p: (ref_leaf(2, x[2], y[2]), p[:-1])),
    ("proof extended", lambda x, y, p: (ref_leaf(2, x[2], y[2]), p + [p[0]])),
    ("proof element flipped", lambda x, y, p: (ref_leaf(2, x[2], y[2]), [bytes([p[0][0] ^ 1]) + p[0][1:], *p[1:]])),
    ("proof reversed", lambda x, y, p: (ref_leaf(2, x[2], y[2]), p[::-1])),
    ("empty proof", lambda x, y, p: (ref_leaf(2, x[2], y[2]), [])),
]


@pytest.mark.parametrize(("case", "tamper"), TAMPER, ids=[c for c, _ in TAMPER])
def test_inclusion_refuses_tampering(tmp_path: Path, case: str, tamper: Callable[..., tuple[bytes, list[bytes]]]) -> None:
    x, y = rows_for(7)
    y = y.astype(np.float64)
    committed = build_commitment(write_xy(tmp_path / "d.json", x, y))
    root, proof = committed.commitment.root, committed.proof(2)
    assert verify_inclusion(root, ref_leaf(2, x[2], y[2]), proof)  # the untampered case holds
    leaf, bad_proof = tamper(x, y, proof)
    assert not verify_inclusion(root, leaf, bad_proof)


def test_inclusion_refuses_wrong_root(tmp_path: Path) -> None:
    x, y = rows_for(5)
    c = build_commitment(write_xy(tmp_path / "d.json", x, y))
    other = build_commitment(write_xy(tmp_path / "e.json", x[::-1].copy(), y[::-1].copy()))
    assert other.commitment.root != c.commitment.root
    assert not verify_inclusion(other.commitment.root, c.leaf(1), c.proof(1))


@pytest.mark.parametrize(
    ("root", "leaf", "proof"),
    [
        (b"\x00" * 31, L[0], []),
        ("0x" + "zz" * 32, L[0], []),
        (L[0], L[0][:31], []),
        (L[0], L[0], [L[1][:31]]),
        (L[0], L[0], ["0x1234"]),
        (L[0], L[0], [123]),
    ],
)
def test_verify_inclusion_malformed_raises(root: Any, leaf: Any, proof: Any) -> None:
    with pytest.raises(InputError):
        verify_inclusion(root, leaf, proof)


@pytest.mark.parametrize("leaves", [[], [b"\x00" * 31], [L[0], "0x" + "00" * 32]])
def test_build_refuses(leaves: list[Any]) -> None:
    with pytest.raises(InputError):
        MerkleTree.build(leaves)


@pytest.mark.parametrize("index", [-1, 5, True, 2**70])
def test_proof_index_out_of_range(index: Any) -> None:
    tree = MerkleTree.build(L[:5])
    with pytest.raises(RowIndexError):
        tree.proof(index)
    with pytest.raises(RowIndexError):
        tree.leaf(index)


def test_process_proof_is_commutative_hash_chain() -> None:
    assert process_proof(L[0], [L[1], L[2]]) == H(H(L[0], L[1]), L[2])


# ---------------------------------------------------------------------------
# Dataset files
# ---------------------------------------------------------------------------

X = np.array([[0.5, -2.25, 3.0], [1.0, 0.0, -0.125], [7.0, 8.5, 9.75]])
Y = np.array([1, 0, 2])


def _json(doc: Any) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / "data.json"
        p.write_text(json.dumps(doc))
        return p

    return make


def _npz(**arrays: Any) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / "data.npz"
        np.savez(p, **arrays)
        return p

    return make


FORMATS = [
    ("json rows", _json(X.tolist()), False),
    ("json x/y", _json({"x": X.tolist(), "y": Y.tolist()}), True),
    ("json X", _json({"X": X.tolist()}), False),
    ("json inputs/labels", _json({"inputs": X.tolist(), "labels": Y.tolist()}), True),
    ("json input_data", _json({"input_data": X.tolist(), "output_data": [[1.0]]}), False),
    ("json input_data+labels", _json({"input_data": X.tolist(), "labels": Y.tolist()}), True),
    ("npz x/y float64", _npz(x=X, y=Y), True),
    ("npz X/labels float32", _npz(X=X.astype(np.float32), labels=Y.astype(np.int8)), True),
    ("npz inputs", _npz(inputs=X.astype(np.float16)), False),
    ("npz x reshaped 3x1x3", _npz(x=X.reshape(3, 1, 3), y=Y.astype(np.float64)), True),
]


@pytest.mark.parametrize(("case", "make", "labelled"), FORMATS, ids=[c for c, _, _ in FORMATS])
def test_formats_commit_to_the_same_root(tmp_path: Path, case: str, make: Callable[[Path], Path], labelled: bool) -> None:
    """Exactly representable values give one root whatever the container, key names or dtype."""
    c = commit_dataset(make(tmp_path))
    leaves = [ref_leaf(i, X[i], float(Y[i]) if labelled else None) for i in range(3)]
    assert c.root == ref_root(leaves)
    assert (c.n_rows, c.has_labels, c.leaf_encoding_version) == (3, labelled, LEAF_ENCODING_VERSION)


def test_commitment_identity_fields(tmp_path: Path) -> None:
    p = _npz(x=X.reshape(3, 1, 3), y=Y)(tmp_path)
    c = commit_dataset(p)
    assert c.file_sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert c.row_shape == (1, 3)
    assert c.root_hex == "0x" + c.root.hex()


def test_float32_and_float64_data_differ(tmp_path: Path) -> None:
    """0.1 as float32 is a different number from 0.1 as float64: the commitment is bit-exact."""
    a = commit_dataset(_npz(x=np.array([[0.1]], dtype=np.float64))(tmp_path))
    (tmp_path / "b").mkdir()
    b = commit_dataset(_npz(x=np.array([[0.1]], dtype=np.float32))(tmp_path / "b"))
    assert a.root != b.root


def _npy_as_npz(d: Path) -> Path:
    p = d / "data.npz"
    with open(p, "wb") as f:
        np.save(f, X)
    return p


def _raw(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / name
        p.write_bytes(content)
        return p

    return make


BAD_DATASETS = [
    ("missing file", lambda d: d / "nope.json", "not found"),
    ("unknown extension", _raw("data.csv", b"1,2\n3,4\n"), "unknown dataset format"),
    ("no extension", _raw("data", b"[[1]]"), "unknown dataset format"),
    ("invalid json", _raw("data.json", b"[[1, 2"), "not valid JSON"),
    ("json scalar", _json(3), "expected a JSON array"),
    ("no features key", _json({"data": [[1.0]]}), "no features key"),
    ("ambiguous features", _json({"x": [[1.0]], "inputs": [[1.0]]}), "ambiguous features"),
    ("ambiguous labels", _json({"x": [[1.0]], "y": [1], "labels": [1]}), "ambiguous labels"),
    ("ragged rows", _json([[1.0, 2.0], [3.0]]), "rectangular"),
    ("strings", _json([["1.0", "2.0"]]), "must be numbers"),
    ("booleans", _json([[True, False]]), "must be numbers"),
    ("null", _json([[1.0, None]]), "must be numbers"),
    ("NaN", _raw("data.json", b"[[1.0, NaN]]"), "NaN or infinity"),
    ("Infinity", _raw("data.json", b"[[1.0, -Infinity]]"), "NaN or infinity"),
    ("int beyond 2**53", _json([[2**53 + 1]]), "2**53"),
    ("huge int", _json([[2**80]]), "must be numbers"),
    ("1-D features", _json([1.0, 2.0]), "at least 2-D"),
    ("no rows", _json([]), "at least 2-D"),
    ("no rows 2-D", _npz(x=np.zeros((0, 3))), "no rows"),
    ("empty rows", _json([[], []]), "no features"),
    ("label count", _json({"x": [[1.0], [2.0]], "y": [1]}), "1 labels for 2 rows"),
    ("2-D labels", _json({"x": [[1.0], [2.0]], "y": [[1], [0]]}), "labels must be 1-D"),
    ("string labels", _json({"x": [[1.0]], "y": ["cat"]}), "must be numbers"),
    ("npz no known key", _npz(features=X), "no features array"),
    ("npz input_data key", _npz(input_data=X), "no features array"),
    ("npz object array", _npz(x=np.array([[1, "a"]], dtype=object)), "not a readable .npz"),
    ("npz corrupt", _raw("data.npz", b"PK\x03\x04garbage"), "not a readable .npz"),
    ("npz is text", _raw("data.npz", b"[[1.0]]"), "not a readable .npz"),
    ("npz is a single .npy", lambda d: _npy_as_npz(d), "single .npy"),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD_DATASETS, ids=[c for c, _, _ in BAD_DATASETS])
def test_bad_datasets_raise(tmp_path: Path, case: str, make: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("*", r"\*")):
        load_dataset(make(tmp_path))


# ---------------------------------------------------------------------------
# Commitment file
# ---------------------------------------------------------------------------


@pytest.fixture
def committed_file(tmp_path: Path) -> tuple[Path, Path]:
    x, y = rows_for(6)
    data = write_xy(tmp_path / "d.json", x, y)
    dest = tmp_path / "out" / "d.commitment.json"
    write_commitment(dest, build_commitment(data))
    return data, dest


def test_commitment_file_roundtrip(committed_file: tuple[Path, Path]) -> None:
    data, dest = committed_file
    built = build_commitment(data)
    read = read_commitment(dest)
    assert read.commitment == built.commitment
    assert read.tree == built.tree
    assert read.source_name == "d.json"
    doc = json.loads(dest.read_text())
    assert doc["root"] == built.commitment.root_hex
    assert doc["proofs"][4] == ["0x" + p.hex() for p in built.proof(4)]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["d.commitment.json"]  # no temp files left


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.__setitem__(key, value)


def _flip_hex(h: str) -> str:
    return h[:-1] + ("0" if h[-1] != "0" else "1")


CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("root changed", lambda d: d.__setitem__("root", _flip_hex(d["root"])), "stored root does not match"),
    ("leaf changed", lambda d: d["leaves"].__setitem__(0, _flip_hex(d["leaves"][0])), "stored root does not match"),
    ("proof changed", lambda d: d["proofs"][3].__setitem__(0, _flip_hex(d["proofs"][3][0])), "proof of row 3"),
    ("proof dropped", lambda d: d["proofs"].pop(), "n_rows=6"),
    ("n_rows changed", _set("n_rows", 7), "n_rows=7"),
    ("wrong format", _set("format", "something"), "not a zkml dataset commitment"),
    ("format version", _set("format_version", 2), "format_version"),
    ("leaf encoding version", _set("leaf_encoding_version", 99), "leaf_encoding_version"),
    ("root not hex", _set("root", "0x" + "gg" * 32), "not hexadecimal"),
    ("root missing", lambda d: d.pop("root"), "malformed"),
    ("has_labels not bool", _set("has_labels", "yes"), "has_labels"),
    ("source missing", lambda d: d.pop("source"), "malformed"),
]


@pytest.mark.parametrize(("case", "mutate", "message"), CORRUPTIONS, ids=[c for c, _, _ in CORRUPTIONS])
def test_corrupt_commitment_file_raises(
    committed_file: tuple[Path, Path], case: str, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    _, dest = committed_file
    doc = json.loads(dest.read_text())
    mutate(doc)
    dest.write_text(json.dumps(doc))
    with pytest.raises(CommitmentError, match=message):
        read_commitment(dest)


@pytest.mark.parametrize(("content", "error"), [(None, InputError), (b"{not json", CommitmentError), (b"[]", CommitmentError)])
def test_unreadable_commitment_file(tmp_path: Path, content: bytes | None, error: type[Exception]) -> None:
    p = tmp_path / "c.json"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(error):
        read_commitment(p)


def test_verify_row(committed_file: tuple[Path, Path], tmp_path: Path) -> None:
    data, dest = committed_file
    c = read_commitment(dest)
    for i in range(6):
        assert verify_row(c.commitment.root, data, i, c.proof(i))
    assert not verify_row(c.commitment.root, data, 1, c.proof(2))
    # Change one label in the data file: that row no longer verifies, the others still do
    doc = json.loads(data.read_text())
    doc["y"][1] += 1
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(doc))
    assert not verify_row(c.commitment.root, changed, 1, c.proof(1))
    assert verify_row(c.commitment.root, changed, 0, c.proof(0))
    with pytest.raises(RowIndexError):
        verify_row(c.commitment.root, data, 6, [])


def test_leaves_follow_row_order(tmp_path: Path) -> None:
    x, y = rows_for(4)
    ds = load_dataset(write_xy(tmp_path / "d.json", x, y))
    assert dataset_leaves(ds) == [ref_leaf(i, x[i], float(y[i])) for i in range(4)]


# ---------------------------------------------------------------------------
# Model digests
# ---------------------------------------------------------------------------

W = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
B = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def make_model(
    *,
    w: np.ndarray = W,
    b: np.ndarray = B,
    w_name: str = "W",
    reverse_initializers: bool = False,
    producer: str = "zkml-test",
    node_names: tuple[str, str] = ("mm", "add"),
    doc: str = "",
) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(w, w_name), numpy_helper.from_array(b, "B")]
    if reverse_initializers:
        inits.reverse()
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", w_name], ["h"], name=node_names[0]),
            helper.make_node("Add", ["h", "B"], ["y"], name=node_names[1]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[1]])],
        initializer=inits,
        doc_string=doc,
    )
    return helper.make_model(graph, producer_name=producer, opset_imports=[helper.make_opsetid("", 17)])


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def spec_weights_digest(tensors: list[tuple[str, str, np.ndarray]]) -> str:
    """The weights digest written straight from its spec."""
    h = hashlib.sha256(WEIGHTS_DOMAIN)
    for name, dtype, arr in sorted(tensors, key=lambda t: t[0].encode()):
        n, dt, data = name.encode(), dtype.encode(), arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
        h.update(len(n).to_bytes(4, "big") + n + len(dt).to_bytes(4, "big") + dt)
        h.update(arr.ndim.to_bytes(4, "big") + b"".join(d.to_bytes(8, "big") for d in arr.shape))
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def test_weights_digest_matches_spec(tmp_path: Path) -> None:
    p = save(make_model(), tmp_path / "m.onnx")
    assert weights_digest(p) == spec_weights_digest([("W", "FLOAT", W), ("B", "FLOAT", B)])


def test_onnx_digest_is_file_sha256(tmp_path: Path) -> None:
    p = save(make_model(), tmp_path / "m.onnx")
    assert onnx_digest(p) == hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "variant",
    [
        {"producer": "someone-else"},
        {"node_names": ("n1", "n2")},
        {"doc": "a different doc string"},
        {"reverse_initializers": True},
    ],
)
def test_weights_digest_ignores_metadata(tmp_path: Path, variant: dict[str, Any]) -> None:
    base = save(make_model(), tmp_path / "a.onnx")
    other = save(make_model(**variant), tmp_path / "b.onnx")
    assert onnx_digest(base) != onnx_digest(other)
    assert weights_digest(base) == weights_digest(other)


def _bit_flipped(arr: np.ndarray) -> np.ndarray:
    out = arr.copy()
    out.view(np.uint32).flat[3] ^= np.uint32(1)
    return out


@pytest.mark.parametrize(
    "variant",
    [
        {"w": _bit_flipped(W)},
        {"b": B[::-1].copy()},
        {"w_name": "W2"},
        {"w": W.astype(np.float64)},
        {"w": W.reshape(3, 2)},
    ],
    ids=["weight bit", "bias order", "name", "dtype", "shape"],
)
def test_weights_digest_sees_weight_changes(tmp_path: Path, variant: dict[str, Any]) -> None:
    base = save(make_model(), tmp_path / "a.onnx")
    other_model = make_model(**variant)
    other = tmp_path / "b.onnx"
    onnx.save(other_model, str(other))  # no checker: a dtype/shape variant need not be a valid graph
    assert weights_digest(base) != weights_digest(other)


def test_weights_digest_external_data(tmp_path: Path) -> None:
    inline = save(make_model(), tmp_path / "inline.onnx")
    ext_dir = tmp_path / "ext"
    ext_dir.mkdir()
    ext = ext_dir / "m.onnx"
    onnx.save(make_model(), str(ext), save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    assert (ext_dir / "w.bin").is_file()
    assert weights_digest(ext) == weights_digest(inline)


def test_model_digest_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        onnx_digest(tmp_path / "missing.onnx")
    with pytest.raises(InputError):
        weights_digest(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\x00 definitely not protobuf \xff" * 10)
    with pytest.raises(ModelError):
        weights_digest(junk)
    dup = make_model()
    dup.graph.initializer.append(numpy_helper.from_array(B, "B"))
    with pytest.raises(ModelError, match="duplicate"):
        weights_digest(save(dup, tmp_path / "dup.onnx"))
    s = make_model()
    s.graph.initializer.append(helper.make_tensor("S", TensorProto.STRING, [1], [b"x"]))
    with pytest.raises(ModelError, match="string"):
        weights_digest(save(s, tmp_path / "s.onnx"))


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    x, y = rows_for(5)
    return write_xy(tmp_path / "d.json", x, y)


def test_cli_commit(dataset: Path) -> None:
    res = runner.invoke(app, ["commit", str(dataset)])
    assert res.exit_code == 0, res.output
    root = commit_dataset(dataset).root_hex
    assert root in res.stdout and "5" in res.stdout
    assert read_commitment(dataset.with_name("d.commitment.json")).commitment.root_hex == root


def test_cli_commit_json_and_output(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "c.json"
    res = runner.invoke(app, ["commit", str(dataset), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["root"] == commit_dataset(dataset).root_hex
    assert (summary["n_rows"], summary["has_labels"], summary["commitment_file"]) == (5, True, str(out))
    assert read_commitment(out).commitment.root_hex == summary["root"]


def test_cli_prove_row(dataset: Path) -> None:
    runner.invoke(app, ["commit", str(dataset)])
    cfile = dataset.with_name("d.commitment.json")
    res = runner.invoke(app, ["prove-row", str(cfile), "--index", "3", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    c = build_commitment(dataset)
    assert got["leaf"] == "0x" + c.leaf(3).hex()
    assert got["proof"] == ["0x" + p.hex() for p in c.proof(3)]
    assert verify_inclusion(got["root"], got["leaf"], got["proof"])
    human = runner.invoke(app, ["prove-row", str(cfile), "-i", "3"])
    assert human.exit_code == 0 and got["leaf"] in human.stdout and ",".join(got["proof"]) in human.stdout


def test_cli_verify_row(dataset: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["commit", str(dataset)])
    cfile = str(dataset.with_name("d.commitment.json"))
    c = build_commitment(dataset)
    proof = ",".join("0x" + p.hex() for p in c.proof(2))
    ok = [
        [cfile, "--data", str(dataset), "--index", "2"],
        ["--data", str(dataset), "--index", "2", "--root", c.commitment.root_hex, "--proof", proof],
        [cfile, "--data", str(dataset), "--index", "2", "--root", c.commitment.root_hex],
    ]
    for args in ok:
        res = runner.invoke(app, ["verify-row", *args])
        assert res.exit_code == 0, (args, res.output)
        assert res.stdout.startswith("valid")
    res = runner.invoke(app, ["verify-row", cfile, "--data", str(dataset), "--index", "2", "--json"])
    assert json.loads(res.stdout)["valid"] is True

    # Invalid verdicts: exit 1
    doc = json.loads(dataset.read_text())
    doc["x"][2][0] += 1e-9
    tampered = tmp_path / "t.json"
    tampered.write_text(json.dumps(doc))
    other_root = "0x" + "11" * 32
    bad = [
        [cfile, "--data", str(tampered), "--index", "2"],
        [cfile, "--data", str(dataset), "--index", "2", "--root", other_root],
        [cfile, "--data", str(dataset), "--index", "2", "--proof", ",".join("0x" + p.hex() for p in c.proof(1))],
        ["--data", str(dataset), "--index", "1", "--root", c.commitment.root_hex, "--proof", proof],
    ]
    for args in bad:
        res = runner.invoke(app, ["verify-row", *args])
        assert res.exit_code == 1, (args, res.output)
        assert res.stdout.startswith("invalid")
    res = runner.invoke(app, ["verify-row", cfile, "--data", str(tampered), "--index", "2", "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["valid"] is False


def test_cli_single_row_empty_proof(tmp_path: Path) -> None:
    data = write_xy(tmp_path / "one.json", np.array([[1.0, 2.0]]), None)
    root = commit_dataset(data).root_hex
    res = runner.invoke(app, ["verify-row", "--data", str(data), "--index", "0", "--root", root, "--proof", ""])
    assert res.exit_code == 0, res.output


def test_cli_errors_exit_2(dataset: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["commit", str(dataset)])
    cfile = str(dataset.with_name("d.commitment.json"))
    csv = tmp_path / "d.csv"
    csv.write_text("1,2\n")
    cases = [
        (["commit", str(tmp_path / "missing.json")], "not found"),
        (["commit", str(csv)], "unknown dataset format"),
        (["prove-row", str(tmp_path / "missing.json"), "--index", "0"], "not found"),
        (["prove-row", cfile, "--index", "5"], "out of range"),
        (["prove-row", cfile, "--index", "-1"], "out of range"),
        (["prove-row", str(dataset), "--index", "0"], "not a zkml dataset commitment"),
        (["verify-row", "--data", str(dataset), "--index", "0"], "no root"),
        (["verify-row", "--data", str(dataset), "--index", "0", "--root", "0x" + "00" * 32], "no proof"),
        (["verify-row", cfile, "--data", str(dataset), "--index", "9"], "out of range"),
        (["verify-row", cfile, "--data", str(csv), "--index", "0"], "unknown dataset format"),
        (["verify-row", cfile, "--data", str(dataset), "--index", "0", "--root", "0x12"], "--root must be 32 bytes"),
        (["verify-row", cfile, "--data", str(dataset), "--index", "0", "--proof", "0x12"], r"--proof\[0\] must be 32 bytes"),
        (["verify-row", cfile, "--data", str(dataset), "--index", "0", "--proof", "0x" + "00" * 32 + ",,"], "empty element"),
    ]
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stdout == ""
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, res.stderr)
        assert re.search(message, lines[0]), (args, lines[0])
