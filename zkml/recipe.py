"""Circuit recipes: ``circuits/NAME.toml`` holds the options of ``zkml compile``.

Example::

    model = "../models/digits_mlp.onnx"        # relative to the recipe file
    calibration = "../models/digits_calibration.json"
    target = "resources"
    max_logrows = 18
    batch_size = 1
    input_visibility = "public"
    param_visibility = "fixed"
    output_visibility = "public"
    min_agreement = 0.99
    # max_error = 0.5
    # scales = [7, 8]
    # num_inner_cols = 1                       # fewer commitments: less verify gas, more rows
    # freivalds = false                        # ezkl's Freivalds matmul check (more columns, more gas)
    # srs = "/path/to/ceremony/kzg17.srs"

Unknown keys are an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from zkml.calibrate import CircuitOptions
from zkml.errors import ConfigError

PATH_KEYS = ("model", "calibration", "srs")


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe."""

    path: Path
    """The recipe file."""
    model: Path
    """ONNX model (resolved)."""
    calibration: Path
    """Calibration data (resolved)."""
    options: CircuitOptions
    """Circuit options."""
    srs: Path | None
    """Ceremony SRS, when given."""


def option_names() -> set[str]:
    return {f.name for f in fields(CircuitOptions)}


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Parse and validate a recipe; ``overrides`` (from flags) win over the file.

    Raises:
        ConfigError: unreadable TOML, unknown key, wrong type, missing model/calibration.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe not found: {p}")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML ({e})") from None
    unknown = set(raw) - option_names() - set(PATH_KEYS)
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}")
    for k in PATH_KEYS:
        if k in raw and not isinstance(raw[k], str):
            raise ConfigError(f"{p}: {k} must be a path string")
    paths = {k: (p.parent / raw.pop(k)).resolve() for k in PATH_KEYS if k in raw}
    opts = {**raw, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    if "scales" in opts and opts["scales"] is not None:
        if not isinstance(opts["scales"], list | tuple) or not all(isinstance(s, int) for s in opts["scales"]):
            raise ConfigError(f"{p}: scales must be a list of integers")
        opts["scales"] = tuple(opts["scales"])
    types = {"target": str, "max_logrows": int, "batch_size": int, "input_visibility": str, "param_visibility": str,
             "output_visibility": str, "min_agreement": (int, float), "max_error": (int, float),
             "num_inner_cols": int}
    for k, t in types.items():
        if k in opts and opts[k] is not None and (not isinstance(opts[k], t) or isinstance(opts[k], bool)):
            raise ConfigError(f"{p}: {k} has the wrong type ({type(opts[k]).__name__})")
    if "freivalds" in opts and opts["freivalds"] is not None and not isinstance(opts["freivalds"], bool):
        raise ConfigError(f"{p}: freivalds must be true or false")
    if "model" not in paths or "calibration" not in paths:
        raise ConfigError(f"{p}: a recipe needs 'model' and 'calibration'")
    options = CircuitOptions(**opts).validate()
    return Recipe(path=p, model=paths["model"], calibration=paths["calibration"], options=options, srs=paths.get("srs"))
