"""Resolving what a user names (ONNX file, recipe, circuit id or folder) to a circuit.

The CLI and the gate both go through here, so ``zkml prove model.onnx`` and
``zkml prove circuits/x.toml`` reach the same cached circuit as ``zkml compile``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model, open_circuit
from zkml.errors import ConfigError
from zkml.inputs import load_samples
from zkml.onnx_check import load_model
from zkml.recipe import load_recipe
from zkml.store import Store


def find_calibration(onnx_path: Path) -> Path | None:
    """A calibration file next to the model: ``<stem>_calibration.json``,
    ``<stem>.calibration.json``, ``calibration.json``, or the only ``*_calibration.json``."""
    d = onnx_path.parent
    for name in (f"{onnx_path.stem}_calibration.json", f"{onnx_path.stem}.calibration.json", "calibration.json"):
        if (d / name).is_file():
            return d / name
    hits = sorted(d.glob("*_calibration.json"))
    return hits[0] if len(hits) == 1 else None


def resolve_circuit(
    target: str,
    store: Store,
    *,
    calibration: Path | None = None,
    options: CircuitOptions | None = None,
    overrides: dict[str, object] | None = None,
    srs: Path | None = None,
    fallback_calibration: np.ndarray | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[Circuit, bool]:
    """Return ``(circuit, cache_hit)`` for an ONNX path, a recipe, a circuit folder or id.

    Raises:
        ConfigError: nothing usable named, or no calibration data for an ONNX.
        plus whatever compiling raises.
    """
    p = Path(target)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if p.suffix == ".toml":
        r = load_recipe(p, overrides)
        cal = load_samples(calibration or r.calibration, load_model(r.model).sample_shape)
        return compile_model(r.model, cal, r.options, store=store, srs_path=srs or r.srs, progress=progress)
    if p.suffix == ".onnx":
        info = load_model(p)
        opts = replace(options or CircuitOptions(), **overrides)
        cal_path = calibration or find_calibration(p)
        if cal_path is not None:
            cal = load_samples(cal_path, info.sample_shape)
        elif fallback_calibration is not None:
            progress("no calibration data given or found next to the model: calibrating on the input itself")
            cal = fallback_calibration
        else:
            raise ConfigError(f"no calibration data for {p}: pass --calibration DATA.json")
        return compile_model(p, cal, opts, store=store, srs_path=srs, progress=progress)
    if p.is_dir():
        return open_circuit(p, store), True
    if p.exists():
        raise ConfigError(f"{p}: expected an .onnx model, a circuits/*.toml recipe, a circuit folder or a circuit id")
    return open_circuit(store.find_circuit(target), store), True
