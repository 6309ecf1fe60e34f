"""The runtimes :mod:`zkml.compare` executes: onnxruntime (the float reference), tract and torch.

Each takes the same named feed (:data:`zkml.inputs.Feed`: every model input,
float inputs as float32, int/bool inputs as integers) and returns the model
outputs of every sample flattened to ``[samples, total elements]`` (outputs
concatenated in model order), so every runtime is scored the same way. The circuit's outputs come from ezkl's
witness (:func:`zkml.calibrate.circuit_outputs`) or from a proof bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zkml.errors import ConfigError, ModelError
from zkml.inputs import Feed, feed_len, feed_slice, to_feed
from zkml.onnx_check import ModelInfo

REFERENCE = "onnxruntime"


# Runtimes


def _ort_session(onnx_path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load {onnx_path}: {str(e).splitlines()[0]}") from None


def as_feed(info: ModelInfo, samples: Any) -> Feed:
    """``samples`` as a feed of the model's inputs: a feed as is (re-checked), or one array for a one-input model.

    Raises:
        InputError: the samples do not fit the model's inputs.
    """
    return to_feed(samples, info.inputs, source="input")


def _calls(info: ModelInfo, feed: Feed) -> list[tuple[int, list[np.ndarray]]]:
    """The session calls that run ``feed``: (samples in the call, one array per input in graph order).

    A symbolic batch axis takes every sample at once; a fixed one takes chunks
    of its size (the last padded by repeating its final sample); a model
    without a batch axis (or without inputs) takes one sample per call.
    """
    specs = info.inputs
    n = feed_len(feed)
    if not specs:
        return [(1, [])]
    if not info.batched:
        return [(1, [feed[s.name][i].reshape(s.shape).astype(np.dtype(s.dtype)) for s in specs]) for i in range(n)]
    if info.batch_symbolic:
        return [(n, [feed[s.name].astype(np.dtype(s.dtype)) for s in specs])]
    b = int(info.batch_dim)
    chunks = (feed_slice(feed, i, i + b, b) for i in range(0, n, b))
    return [(b, [c[s.name].astype(np.dtype(s.dtype)) for s in specs]) for c in chunks]


def _flatten(results: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, list[int]]:
    parts = [np.asarray(r, dtype=np.float64).reshape(n, -1) for r in results]
    return np.concatenate(parts, axis=1), [p.shape[1] for p in parts]


def run_onnxruntime(onnx_path: Path, info: ModelInfo, samples: Any) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Float reference on ``samples`` (a feed, or one array for a one-input model):
    outputs [n, total] and (name, size) per output.

    Raises:
        InputError: the samples do not fit the model's inputs.
        ModelError: onnxruntime cannot load or run the model.
    """
    feed = as_feed(info, samples)
    sess = _ort_session(onnx_path)
    names = [o.name for o in sess.get_outputs()]
    rows, sizes = [], []
    try:
        for k, arrays in _calls(info, feed):
            res = sess.run(None, {s.name: a for s, a in zip(info.inputs, arrays, strict=True)})
            flat, sizes = _flatten(res, k)
            rows.append(flat)
    except Exception as e:
        raise ModelError(f"onnxruntime failed on {onnx_path}: {str(e).splitlines()[0]}") from None
    return np.concatenate(rows, axis=0)[: feed_len(feed)], list(zip(names, sizes, strict=True))


TRACT_TYPES = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32", "int16": "i16",
               "int8": "i8", "uint8": "u8", "bool": "bool"}
"""numpy dtype name -> tract datum type (for its input facts)."""


def run_tract(onnx_path: Path, info: ModelInfo, samples: Any) -> np.ndarray:
    """Second ONNX runtime (tract) on the same feed. Raises ImportError when it is not installed; other failures propagate."""
    import tract

    feed = as_feed(info, samples)
    rows = []
    cache: dict[tuple[tuple[int, ...], ...], Any] = {}
    for k, arrays in _calls(info, feed):
        key = tuple(a.shape for a in arrays)
        if key not in cache:
            model = tract.onnx().load(str(onnx_path))
            for j, (s, a) in enumerate(zip(info.inputs, arrays, strict=True)):
                model.set_input_fact(j, ",".join(str(d) for d in a.shape) + "," + TRACT_TYPES.get(s.dtype, s.dtype))
            cache[key] = model.into_model().into_runnable()
        res = cache[key].run([np.ascontiguousarray(a) for a in arrays])
        flat, _ = _flatten([t.to_numpy() for t in res], k)
        rows.append(flat)
    return np.concatenate(rows, axis=0)[: feed_len(feed)]


def run_torch(spec: str, weights: Path | None, samples: np.ndarray | Sequence[np.ndarray], n: int | None = None) -> np.ndarray:
    """The source torch module on the batch of each model input (``samples``: one array, or one per input
    in the ONNX graph's input order, passed as positional arguments; none for a graph without inputs).

    ``n``: samples in the batch (default: the first array's length; 1 without inputs).

    Raises:
        ConfigError: bad spec or weights file missing.
        ModelError: the factory, the state_dict or the forward pass failed.
    """
    import torch

    from zkml.export import load_factory

    module = load_factory(spec)
    if weights is not None:
        if not Path(weights).is_file():
            raise ConfigError(f"weights file not found: {weights}")
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
            module.load_state_dict(state)
        except Exception as e:
            raise ModelError(f"cannot load weights {weights} into {spec}: {str(e).splitlines()[0]}") from None
    module.eval()
    try:
        arrays = [np.asarray(samples)] if isinstance(samples, np.ndarray) else [np.asarray(a) for a in samples]
        args = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32 if x.dtype.kind == "f" else x.dtype))
                for x in arrays]
        with torch.no_grad():
            out = module(*args)
    except Exception as e:
        raise ModelError(f"{spec} failed on the input: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    outs = list(out) if isinstance(out, list | tuple) else [out]
    flat, _ = _flatten([o.detach().cpu().numpy() for o in outs], n if n is not None else (len(arrays[0]) if arrays else 1))
    return flat
