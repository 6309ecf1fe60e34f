"""Tolerances of :mod:`zkml.compare` and the fixed-point emulation the circuit tolerance rests on.

How the circuit tolerance is derived, and why only from the ONNX, the inputs
and the circuit's scales, is explained in the :mod:`zkml.compare` module
docstring.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zkml.compare.runtimes import as_feed, run_onnxruntime
from zkml.errors import ConfigError
from zkml.onnx_check import ModelInfo

MARGIN = 2.0
"""Factor on the emulated fixed-point error."""
FLOOR_LSB = 4
"""Output LSBs (2^-s_out each) added for intermediate rescale rounding."""
FLOAT_RTOL = 1e-4
"""Float runtimes must agree with onnxruntime to this fraction of max(1, max |reference|)."""


# Tolerance


def check_tolerance(tolerance: float | None) -> float | None:
    """Validate a user tolerance.

    Raises:
        ConfigError: negative, NaN or infinite.
    """
    if tolerance is None:
        return None
    t = float(tolerance)
    if not math.isfinite(t) or t < 0:
        raise ConfigError(f"tolerance must be a finite number >= 0, not {tolerance}")
    return t


def derive_tolerance(emulated_error: float, output_scale: int, *, margin: float = MARGIN, floor_lsb: int = FLOOR_LSB) -> float:
    """``margin * emulated_error + floor_lsb * 2^-output_scale`` (see the module docstring)."""
    return margin * float(emulated_error) + floor_lsb * 2.0 ** -int(output_scale)


def float_tolerance(reference: np.ndarray) -> float:
    """The agreement two float runtimes must reach on ``reference``."""
    peak = float(np.max(np.abs(reference))) if reference.size else 0.0
    return FLOAT_RTOL * max(1.0, peak)


def within(max_abs_error: float, tolerance: float) -> bool:
    """The verdict: an error equal to the tolerance passes; NaN never does."""
    return bool(max_abs_error <= tolerance)


# Fixed-point emulation


def emulate_fixed_point(onnx_path: Path, info: ModelInfo, samples: Any, input_scale: int, param_scale: int) -> np.ndarray:
    """onnxruntime outputs with float weights rounded to 2^-param_scale and float inputs to 2^-input_scale.

    ``samples`` is the feed every runtime gets (or one array for a one-input
    model); int and bool inputs are fed unchanged (the circuit takes them at
    scale 0, exactly).

    Float initializers and float ``Constant`` nodes are rounded the way ezkl
    quantizes them (round half away from zero), so the result differs from
    the float model by the representation error of the circuit's scale alone.
    """
    import onnx
    from onnx import numpy_helper

    def grid(a: np.ndarray, scale: int) -> np.ndarray:
        # zkml.quant.quantize, vectorized: round half away from zero at 2^scale
        scaled = np.asarray(a, dtype=np.float64) * float(1 << scale)
        q = np.where(scaled >= 0, np.floor(scaled + 0.5), np.ceil(scaled - 0.5)) / float(1 << scale)
        return q.astype(a.dtype)

    model = onnx.load(str(onnx_path))
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f":
            init.CopyFrom(numpy_helper.from_array(grid(arr, param_scale), init.name))
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
                    arr = numpy_helper.to_array(attr.t)
                    attr.t.CopyFrom(numpy_helper.from_array(grid(arr, param_scale), attr.t.name))
    with tempfile.TemporaryDirectory(prefix="zkml-emulate-") as tmp:
        path = Path(tmp) / "emulated.onnx"
        onnx.save(model, str(path))
        feed = {k: grid(v, input_scale) if v.dtype.kind == "f" else v for k, v in as_feed(info, samples).items()}
        out, _ = run_onnxruntime(path, info, feed)
    return out
