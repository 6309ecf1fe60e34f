"""Reading model inputs in every format a user is likely to have.

A model has any number of inputs (:class:`zkml.onnx_check.InputSpec`: name,
shape of one sample, dtype). Accepted files:

- ezkl's own JSON: ``{"input_data": [flat_0, flat_1, ...]}``, one flattened
  list per input in graph order; each list may hold several samples
  concatenated (its length a multiple of one sample's size);
- named arrays: a ``.npz`` whose keys are the input names, or a JSON object
  keyed by input name (each value one sample or ``[n, *shape]``);
- for a one-input model also a plain nested JSON array, a ``.npy``, or a
  ``.npz`` with one array (or a key ``x``/``X``/``input``/``inputs``).

The result is a **feed**: ``{input name: array [n_samples, *sample_shape]}``
with each input's own dtype (float inputs float32, int inputs int64, bool
inputs bool: integers are never quantized). A size or shape that does not fit
says which shape was expected; NaN and inf are refused; a non-integer value
for an int input is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zkml.errors import InputError

if TYPE_CHECKING:
    from zkml.onnx_check import InputSpec

NPZ_KEYS = ("x", "X", "input", "inputs", "input_data")

Feed = dict[str, np.ndarray]
"""Input name -> samples ``[n, *sample_shape]`` in the input's dtype."""


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------
# One array against one sample shape
# ---------------------------------------------------------------------------


def to_samples(raw: Any, sample_shape: Sequence[int], *, source: str = "input", dtype: str = "float32") -> np.ndarray:
    """Reshape ``raw`` to ``[n, *sample_shape]`` in ``dtype``.

    Accepts one sample (exactly ``sample_shape``), a batch (``[n, *sample_shape]``)
    or a flat vector whose length is a multiple of the sample size.

    Raises:
        InputError: empty, not numeric, NaN/inf, a fraction for an int input, or a size/shape that does not fit.
    """
    if isinstance(raw, Mapping) or (isinstance(raw, list) and len(raw) > 1 and all(isinstance(x, np.ndarray) for x in raw)):
        n = len(raw)
        raise InputError(f"{source}: the file has {n} inputs, the model takes 1")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise InputError(f"{source}: not a numeric array ({e})") from None
    sample_shape = tuple(int(d) for d in sample_shape)
    size = int(math.prod(sample_shape))
    if arr.size == 0:
        raise InputError(f"{source}: empty input; expected samples of shape {_fmt(sample_shape)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{source}: {bad} value(s) are NaN or infinite")
    if dtype != "float32" and not dtype.startswith("float") and not np.all(arr == np.round(arr)):
        raise InputError(f"{source}: the model takes {dtype} here, but the values are not all integers")
    shape = tuple(arr.shape)
    if shape == sample_shape:
        out = arr.reshape(1, *sample_shape)
    elif shape[1:] == sample_shape:
        out = arr
    elif arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1):
        if arr.size % size != 0:
            raise InputError(
                f"{source}: {arr.size} values is not a multiple of one sample's {size} "
                f"(expected shape {_fmt(sample_shape)} or [n, {', '.join(map(str, sample_shape))}])"
            )
        out = arr.reshape(-1, *sample_shape)
    elif arr.size % size == 0 and arr.ndim >= 2 and int(math.prod(shape[1:])) == size:
        out = arr.reshape(-1, *sample_shape)
    else:
        raise InputError(
            f"{source}: shape {_fmt(shape)} does not fit; expected {_fmt(sample_shape)} "
            f"or [n, {', '.join(map(str, sample_shape))}]"
        )
    if dtype == "bool":
        return out.astype(bool)
    return out.astype(np.float32 if dtype.startswith("float") else np.dtype(dtype))


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def read_raw(path: str | Path) -> Any:
    """Load what an input file holds, before any reshaping.

    Returns one array, a list of flat lists (ezkl ``input_data`` with several
    inputs), or a dict of named arrays.

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
                    if k in z and len(keys) == 1:
                        return z[k]
                if len(keys) == 1:
                    return z[keys[0]]
                return {k: z[k] for k in keys}
        if suffix == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                if "input_data" in data:
                    data = data["input_data"]
                    if not isinstance(data, list):
                        raise InputError(f"{p}: input_data must be a list (one flattened list per input)")
                    if len(data) == 1:
                        return np.asarray(data[0], dtype=np.float64)
                    return [np.asarray(d, dtype=np.float64) for d in data]
                if not data:
                    raise InputError(f"{p}: JSON object needs an 'input_data' key (ezkl format) or input names as keys")
                return {str(k): v for k, v in data.items()}
            return np.asarray(data, dtype=np.float64)
    except InputError:
        raise
    except (ValueError, TypeError, OSError) as e:
        raise InputError(f"{p}: cannot read input ({e})") from None
    raise InputError(f"{p}: unknown input format '{suffix}' (use .json, .npy or .npz)")


def load_samples(path: str | Path, sample_shape: Sequence[int]) -> np.ndarray:
    """Read ``path`` for a one-input model: float32 samples of shape ``[n, *sample_shape]``."""
    raw = read_raw(path)
    if isinstance(raw, dict):
        hits = [k for k in NPZ_KEYS if k in raw]
        only = next(iter(raw.values())) if len(raw) == 1 else None
        if hits:
            raw = raw[hits[0]]
        elif isinstance(only, np.ndarray):  # a .npz with one array
            raw = only
        else:
            raise InputError(f"{path}: has {sorted(raw)}; use ezkl's 'input_data' key or name the input "
                             f"one of {list(NPZ_KEYS)}")
    if isinstance(raw, list) and raw and all(isinstance(x, np.ndarray) for x in raw):
        raise InputError(f"{path}: the file has {len(raw)} inputs, the model takes 1")
    return to_samples(raw, sample_shape, source=str(path))


# ---------------------------------------------------------------------------
# Feeds: every input of a model
# ---------------------------------------------------------------------------


def to_feed(raw: Any, specs: Sequence[InputSpec], *, source: str = "input") -> Feed:
    """Shape what :func:`read_raw` returned (or an array / dict / list given in code) into a feed.

    Raises:
        InputError: an input missing or unknown, a shape that does not fit, or inputs with different sample counts.
    """
    if not specs:
        if raw is None or (isinstance(raw, list | dict) and len(raw) == 0) or (
                isinstance(raw, np.ndarray) and raw.size == 0):
            return {}
        raise InputError(f"{source}: the model takes no inputs")
    names = [s.name for s in specs]
    if isinstance(raw, Mapping) and not isinstance(raw, np.ndarray):
        keys = set(raw)
        if len(specs) == 1 and names[0] not in keys:
            hits = [k for k in NPZ_KEYS if k in keys]
            only = next(iter(raw.values())) if len(keys) == 1 else None
            if hits or isinstance(only, np.ndarray):  # a conventional key, or a .npz with one array
                raw = {names[0]: raw[hits[0]] if hits else only}
                keys = set(raw)
        missing, extra = [n for n in names if n not in keys], sorted(keys - set(names))
        if missing or extra:
            raise InputError(f"{source}: the model's inputs are {names}; " + "; ".join(
                ([f"missing {missing}"] if missing else []) + ([f"unknown {extra}"] if extra else [])))
        parts = [raw[n] for n in names]
    elif len(specs) == 1:
        parts = [raw[0] if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], np.ndarray) else raw]
    elif isinstance(raw, list | tuple) and len(raw) == len(specs):
        parts = list(raw)
    else:
        n = len(raw) if isinstance(raw, list | tuple) else 1
        raise InputError(f"{source}: the model takes {len(specs)} inputs {names}; the file has {n} "
                         "(give ezkl input_data with one flattened list per input, or arrays named by input)")
    feed = {s.name: to_samples(p, s.shape, source=f"{source} '{s.name}'", dtype=s.dtype) for s, p in zip(specs, parts)}
    counts = {k: len(v) for k, v in feed.items()}
    if len(set(counts.values())) > 1:
        raise InputError(f"{source}: inputs hold different numbers of samples ({counts})")
    return feed


def read_feed(path: str | Path, specs: Sequence[InputSpec]) -> Feed:
    """Read an input file for a model with inputs ``specs``."""
    return to_feed(read_raw(path), specs, source=str(path))


def feed_len(feed: Feed) -> int:
    """Number of samples in a feed (1 for a model without inputs: it has one evaluation)."""
    return len(next(iter(feed.values()))) if feed else 1


def feed_slice(feed: Feed, start: int, stop: int, batch: int) -> Feed:
    """Samples ``start:stop`` of every input, padded to ``batch`` by repeating the last sample."""
    out = {}
    for k, v in feed.items():
        chunk = v[start:stop]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)], axis=0)
        out[k] = chunk
    return out


def feed_digest_bytes(feed: Feed) -> bytes:
    """Canonical bytes of a feed (for the circuit key): a lone float input keeps its historic encoding."""
    if len(feed) == 1:
        (v,) = feed.values()
        if v.dtype == np.float32:
            return np.ascontiguousarray(v, dtype="<f4").tobytes() + repr(v.shape).encode()
    parts = []
    for k in sorted(feed):
        v = feed[k]
        parts.append(k.encode() + b"\0" + str(v.dtype).encode() + repr(v.shape).encode()
                     + np.ascontiguousarray(v.astype(v.dtype.newbyteorder("<"))).tobytes())
    return b"\x01".join(parts)


def to_ezkl_json(samples: Any, specs: Sequence[InputSpec] | None = None) -> dict[str, list[list[Any]]]:
    """ezkl's input format: per input, all samples flattened and concatenated.

    ``samples`` is a feed (with ``specs``) or, for a one-input model, one array.
    Float inputs are written as floats (ezkl quantizes them); int and bool
    inputs as integers (ezkl takes them at scale 0).
    """
    if not isinstance(samples, dict):
        return {"input_data": [np.asarray(samples, dtype=np.float64).reshape(-1).tolist()]}
    order = [s.name for s in specs] if specs is not None else list(samples)
    data: list[list[Any]] = []
    for name in order:
        v = samples[name]
        if v.dtype == bool or np.issubdtype(v.dtype, np.integer):
            data.append([int(x) for x in v.reshape(-1)])
        else:
            data.append(np.asarray(v, dtype=np.float64).reshape(-1).tolist())
    return {"input_data": data}


def revealed_values(feed: Feed, specs: Sequence[InputSpec]) -> list[Any]:
    """The input as a bundle reveals it: per sample, the input's nested array (one input) or the list of them."""
    n = feed_len(feed)
    if len(specs) == 1:
        v = feed[specs[0].name]
        return v.astype(np.float64).tolist() if v.dtype != bool else v.astype(np.int64).tolist()
    rows = []
    for i in range(n):
        rows.append([(feed[s.name][i].astype(np.int64) if s.kind == "bool" else feed[s.name][i].astype(np.float64)).tolist()
                     for s in specs])
    return rows


def feed_from_revealed(values: list[Any], specs: Sequence[InputSpec], *, source: str = "bundle input") -> Feed:
    """Inverse of :func:`revealed_values`.

    Raises:
        InputError: the values do not fit the inputs.
    """
    if len(specs) == 1:
        return to_feed(np.asarray(values, dtype=np.float64), specs, source=source)
    cols: list[list[Any]] = [[] for _ in specs]
    for row in values:
        if not isinstance(row, list) or len(row) != len(specs):
            raise InputError(f"{source}: each sample must list {len(specs)} inputs")
        for j, x in enumerate(row):
            cols[j].append(x)
    parts = []
    for s, c in zip(specs, cols):
        try:
            parts.append(np.asarray(c, dtype=np.float64).reshape(len(values), *s.shape))
        except ValueError:
            raise InputError(f"{source}: input '{s.name}' does not have shape {_fmt(s.shape)}") from None
    return to_feed(parts, specs, source=source)


def batches(samples: np.ndarray, batch: int) -> list[np.ndarray]:
    """Split into chunks of exactly ``batch`` samples, padding the last with its final sample."""
    out = []
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        if len(chunk) < batch:
            pad = np.repeat(chunk[-1:], batch - len(chunk), axis=0)
            chunk = np.concatenate([chunk, pad], axis=0)
        out.append(chunk)
    return out
