"""The runtimes :mod:`zkml.compare` executes: onnxruntime (the float reference), tract and torch.

Each returns the model outputs of every sample flattened to
``[samples, total elements]`` (outputs concatenated in model order), so every
runtime is scored the same way. The circuit's outputs come from ezkl's
witness (:func:`zkml.calibrate.circuit_outputs`) or from a proof bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zkml.errors import ConfigError, ModelError
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


def _chunks(samples: np.ndarray, info: ModelInfo) -> list[np.ndarray]:
    """All samples at once for a symbolic batch axis, else chunks of the fixed batch (last padded)."""
    if info.batch_symbolic:
        return [samples]
    from zkml.inputs import batches

    return batches(samples, int(info.batch_dim))


def _flatten(results: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, list[int]]:
    parts = [np.asarray(r, dtype=np.float64).reshape(n, -1) for r in results]
    return np.concatenate(parts, axis=1), [p.shape[1] for p in parts]


def run_onnxruntime(onnx_path: Path, info: ModelInfo, samples: np.ndarray) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Float reference: outputs [n, total] and (name, size) per output.

    Raises:
        ModelError: onnxruntime cannot load or run the model.
    """
    sess = _ort_session(onnx_path)
    names = [o.name for o in sess.get_outputs()]
    rows, sizes = [], []
    try:
        for chunk in _chunks(samples, info):
            res = sess.run(None, {info.input_name: chunk.astype(np.float32)})
            flat, sizes = _flatten(res, len(chunk))
            rows.append(flat)
    except Exception as e:
        raise ModelError(f"onnxruntime failed on {onnx_path}: {str(e).splitlines()[0]}") from None
    return np.concatenate(rows, axis=0)[: len(samples)], list(zip(names, sizes, strict=True))


def run_tract(onnx_path: Path, info: ModelInfo, samples: np.ndarray) -> np.ndarray:
    """Second ONNX runtime (tract). Raises ImportError when it is not installed; other failures propagate."""
    import tract

    rows = []
    cache: dict[int, Any] = {}
    for chunk in _chunks(samples, info):
        n = len(chunk)
        if n not in cache:
            model = tract.onnx().load(str(onnx_path))
            model.set_input_fact(0, ",".join(str(d) for d in (n, *info.sample_shape)) + ",f32")
            cache[n] = model.into_model().into_runnable()
        res = cache[n].run([np.ascontiguousarray(chunk, dtype=np.float32)])
        flat, _ = _flatten([t.to_numpy() for t in res], n)
        rows.append(flat)
    return np.concatenate(rows, axis=0)[: len(samples)]


def run_torch(spec: str, weights: Path | None, samples: np.ndarray) -> np.ndarray:
    """The source torch module on ``samples``.

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
        with torch.no_grad():
            out = module(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
    except Exception as e:
        raise ModelError(f"{spec} failed on the input: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    outs = list(out) if isinstance(out, list | tuple) else [out]
    flat, _ = _flatten([o.detach().cpu().numpy() for o in outs], len(samples))
    return flat
