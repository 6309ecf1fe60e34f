"""Model digests: the ONNX file digest and the weights digest.

Two commitments that pin a model, so a proof, a registry entry or an audit
can name exactly which model file or weights it speaks for. The dataset
commitment is in :mod:`zkml.commitments.dataset`, which re-exports both digests.

ONNX digest
===========
``onnx_digest(path)`` is the hex sha256 of the ONNX file's bytes: it pins the
whole model (graph, metadata and weights stored inline).

Weights digest (version 1)
==========================
``weights_digest(path)`` pins only the trained numbers, independent of graph
metadata (producer, doc strings, node names, initializer order in the file).
It is the hex sha256 of::

    b"zkml-weights-v1\\x00"
    ‖ for each initializer of the main graph, sorted by the UTF-8 bytes of its name:
        u32(len(name_utf8)) ‖ name_utf8
        ‖ u32(len(dtype)) ‖ dtype          # ONNX TensorProto.DataType name, ASCII, e.g. b"FLOAT", b"INT64"
        ‖ u32(ndim) ‖ u64(dim_0) ‖ … ‖ u64(dim_{ndim-1})
        ‖ u64(len(data)) ‖ data            # the tensor's values in C order, each little-endian
                                           # (numpy ``tobytes`` of ``onnx.numpy_helper.to_array``)

with ``u32``/``u64`` unsigned big-endian integers. External-data initializers
are loaded from beside the model. Initializers of subgraphs (``If``/``Loop``
bodies) and ``Constant`` nodes are not part of it (``onnx_digest`` covers
them); sparse and string initializers are refused.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Final

import numpy as np

from zkml.errors import InputError, ModelError
from zkml.util import sha256_bytes, sha256_file

WEIGHTS_DOMAIN: Final[bytes] = b"zkml-weights-v1\x00"
"""Domain-separation prefix of the weights digest (version 1)."""


# ---------------------------------------------------------------------------
# Model digests
# ---------------------------------------------------------------------------


def onnx_digest(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of the ONNX file's bytes. Raises :class:`InputError` when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX file not found: {path}")
    return sha256_file(path)


def weights_digest(path: str | os.PathLike[str]) -> str:
    """Hex sha256 identity of the model's main-graph initializers (layout in the module docstring).

    Raises :class:`InputError` when the file is missing and
    :class:`ModelError` when it is not a readable ONNX model or has sparse,
    string or duplicate-named initializers.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as e:  # onnx raises DecodeError, OSError, ValueError… for bad files
        raise ModelError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e
    graph = model.graph
    if len(graph.sparse_initializer):
        raise ModelError(f"{path}: sparse initializers are not supported by the weights digest")
    named = [(t.name.encode("utf-8"), t) for t in graph.initializer]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ModelError(f"{path}: duplicate initializer names")

    chunks = [WEIGHTS_DOMAIN]
    for name, tensor in sorted(named, key=lambda item: item[0]):
        if tensor.data_type == onnx.TensorProto.STRING:
            raise ModelError(f"{path}: string initializer {tensor.name!r} is not supported by the weights digest")
        try:
            arr = numpy_helper.to_array(tensor, base_dir=str(path.parent))
        except Exception as e:
            raise ModelError(f"{path}: cannot read initializer {tensor.name!r} ({type(e).__name__}: {e})") from e
        dtype = onnx.TensorProto.DataType.Name(tensor.data_type).encode("ascii")
        arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        data = arr.tobytes()
        dims = [int(d) for d in tensor.dims]
        chunks += [
            struct.pack(">I", len(name)),
            name,
            struct.pack(">I", len(dtype)),
            dtype,
            struct.pack(">I", len(dims)),
            *(struct.pack(">Q", d) for d in dims),
            struct.pack(">Q", len(data)),
            data,
        ]
    return sha256_bytes(b"".join(chunks))
