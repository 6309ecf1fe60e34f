"""Reading model inputs in every format a user is likely to have.

Accepted:
- ezkl's own JSON: ``{"input_data": [[...flattened...]]}`` where the flat list
  may hold several samples concatenated (its length a multiple of one sample's size);
- a plain nested JSON array, of one sample or of several (first axis = samples);
- ``.npy`` (one array) and ``.npz`` (one array, or a key ``x``/``X``/``input``/``inputs``).

Everything is returned as a float32 array of shape ``[n_samples, *sample_shape]``;
a size or shape that does not fit says which shape was expected. NaN and inf
are refused here, before they reach a circuit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zkml.errors import InputError

NPZ_KEYS = ("x", "X", "input", "inputs", "input_data")


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def to_samples(raw: np.ndarray, sample_shape: Sequence[int], *, source: str = "input") -> np.ndarray:
    """Reshape ``raw`` to ``[n, *sample_shape]``.

    Accepts one sample (exactly ``sample_shape``), a batch (``[n, *sample_shape]``)
    or a flat vector whose length is a multiple of the sample size.

    Raises:
        InputError: empty, not numeric, NaN/inf, or a size/shape that does not fit.
    """
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise InputError(f"{source}: not a numeric array ({e})") from None
    size = int(math.prod(sample_shape))
    if arr.size == 0:
        raise InputError(f"{source}: empty input; expected samples of shape {_fmt(sample_shape)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{source}: {bad} value(s) are NaN or infinite")
    shape = tuple(arr.shape)
    if shape == tuple(sample_shape):
        return arr.reshape(1, *sample_shape).astype(np.float32)
    if shape[1:] == tuple(sample_shape):
        return arr.astype(np.float32)
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1):
        if arr.size % size == 0:
            return arr.reshape(-1, *sample_shape).astype(np.float32)
        raise InputError(
            f"{source}: {arr.size} values is not a multiple of one sample's {size} "
            f"(expected shape {_fmt(sample_shape)} or [n, {', '.join(map(str, sample_shape))}])"
        )
    if arr.size % size == 0 and arr.ndim >= 2 and int(math.prod(shape[1:])) == size:
        return arr.reshape(-1, *sample_shape).astype(np.float32)
    raise InputError(
        f"{source}: shape {_fmt(shape)} does not fit; expected {_fmt(sample_shape)} "
        f"or [n, {', '.join(map(str, sample_shape))}]"
    )


def read_raw(path: str | Path) -> np.ndarray:
    """Load the array stored in an input file, before any reshaping.

    Raises:
        InputError: missing file, unknown extension, unreadable content.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                for k in NPZ_KEYS:
                    if k in z:
                        return z[k]
                if len(keys) == 1:
                    return z[keys[0]]
                raise InputError(f"{p}: .npz has arrays {keys}; name the input array one of {list(NPZ_KEYS)}")
        if suffix == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                if "input_data" in data:
                    data = data["input_data"]
                    if not isinstance(data, list) or len(data) == 0:
                        raise InputError(f"{p}: input_data must be a non-empty list")
                    if len(data) != 1:
                        raise InputError(f"{p}: models with {len(data)} inputs are not supported (one input tensor)")
                    return np.asarray(data[0], dtype=np.float64)
                for k in NPZ_KEYS:
                    if k in data:
                        return np.asarray(data[k], dtype=np.float64)
                raise InputError(f"{p}: JSON object needs an 'input_data' key (ezkl format) or one of {list(NPZ_KEYS)}")
            return np.asarray(data, dtype=np.float64)
    except InputError:
        raise
    except (ValueError, TypeError, OSError) as e:
        raise InputError(f"{p}: cannot read input ({e})") from None
    raise InputError(f"{p}: unknown input format '{suffix}' (use .json, .npy or .npz)")


def load_samples(path: str | Path, sample_shape: Sequence[int]) -> np.ndarray:
    """Read ``path`` and return float32 samples of shape ``[n, *sample_shape]``."""
    return to_samples(read_raw(path), sample_shape, source=str(path))


def to_ezkl_json(samples: np.ndarray) -> dict[str, list[list[float]]]:
    """ezkl's input format: all samples flattened and concatenated."""
    return {"input_data": [np.asarray(samples, dtype=np.float64).reshape(-1).tolist()]}
