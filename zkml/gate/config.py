"""The gate's configuration: parse and validate ``zkml.toml``.

The file format is documented in :mod:`zkml.gate`. Every problem (invalid
TOML, unknown key, wrong type or range, missing file, unusable recipe,
duplicate model name) raises :class:`zkml.errors.ConfigError` with one line
naming the file and the key: the gate exits 2.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from zkml import vrf
from zkml.errors import ConfigError

CONFIG_NAME = "zkml.toml"
EIP170 = 24_576
VERIFIER_FLAVOURS = ("auto", "per-circuit", "reusable")


# Config


@dataclass(frozen=True)
class Thresholds:
    """What a model must meet. ``None`` means the value is reported but not gated."""

    min_accuracy: float | None = None
    """Minimum accuracy of the proven (circuit) outputs on the sample."""
    max_error: float | None = None
    """Maximum |float - circuit| on the sample; None = the tolerance derived by zkml.compare ("auto")."""
    max_verify_gas: int | None = None
    """Maximum gas of one on-chain verification."""
    max_verifier_bytes: int = EIP170
    """Maximum deployed verifier bytecode (EIP-170 by default)."""
    verify_local: bool = True
    """Every proof must verify with ezkl."""
    verify_onchain: bool = True
    """Every proof must verify on the chain (embedded anvil or --rpc-url)."""

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["max_error"] = "auto" if self.max_error is None else self.max_error
        return d


@dataclass(frozen=True)
class ModelSpec:
    """One model to gate."""

    name: str
    """Label in the report (unique)."""
    path: Path
    """An .onnx model or a circuits/*.toml recipe."""
    calibration: Path | None
    """Calibration data for an .onnx (None: found beside it)."""
    thresholds: Thresholds
    """The global thresholds with this model's overrides."""
    verifier: str = "auto"
    """Solidity verifier: ``per-circuit`` (VK in the code), ``reusable`` (shared verifier + VK artifact),
    or ``auto`` (per-circuit when it fits EIP-170, else reusable)."""


@dataclass(frozen=True)
class SampleSpec:
    """How the test rows to prove are chosen."""

    size: int | None
    """Rows to prove; None = every row (no VRF)."""
    suite: str | None
    """ECVRF suite name; None = the key file's, else :data:`zkml.keys.DEFAULT_VRF_SUITE`."""
    key_file: Path | None
    """VRF secret key file (zkml vrf keygen --out, or a file holding hex)."""
    alpha: bytes | None
    """VRF input; None = derived from model, circuit and test set digests. Only with ``replay``."""
    replay: bool = False
    """The config pins ``alpha`` to replay a recorded sample (the report says the sample is a replay)."""


@dataclass(frozen=True)
class GateConfig:
    """A parsed, validated gate config."""

    path: Path
    """The config file."""
    test_set: Path
    """The committed test set (.npz with x and y)."""
    test_set_sha256: str | None
    """Pinned digest of the test set file, if any."""
    sample: SampleSpec
    """Sampling rules."""
    models: list[ModelSpec]
    """Models to gate, in order."""


_SCHEMA: dict[str, set[str]] = {
    "": {"test_set", "sample", "thresholds", "models"},
    "test_set": {"path", "sha256"},
    "sample": {"size", "suite", "key_file", "alpha", "replay"},
    "thresholds": {f.name for f in fields(Thresholds)},
    "models": {"name", "path", "calibration", "thresholds", "verifier"},
}


def _table(cfg: str, where: str, value: Any, kind: str) -> dict[str, Any]:
    """``value`` as a table whose keys are all in ``_SCHEMA[kind]``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{cfg}: {where or 'the config'} must be a table")
    allowed = _SCHEMA[kind]
    unknown = sorted(set(value) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"{cfg}: unknown key '{prefix}{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    return value


def _path(cfg: Path, where: str, value: Any) -> Path:
    """An existing file named relative to the config."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{cfg.name}: {where} must be a path string, not {type(value).__name__}")
    p = (cfg.parent / value).resolve()
    if not p.is_file():
        raise ConfigError(f"{cfg.name}: {where}: file not found: {value}")
    return p


def _number(cfg: str, where: str, value: Any, *, integer: bool = False, lo: float = 0.0, hi: float = math.inf) -> Any:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        want = "an integer" if integer else "a number"
        raise ConfigError(f"{cfg}: {where} must be {want}, not {type(value).__name__} ({value!r})")
    if not (lo <= value <= hi) or (not integer and not math.isfinite(value)):
        bound = f"at least {lo:g}" if hi == math.inf else f"between {lo:g} and {hi:g}"
        raise ConfigError(f"{cfg}: {where} must be {bound}, not {value}")
    return value


def _thresholds(cfg: str, where: str, raw: dict[str, Any], base: Thresholds) -> Thresholds:
    t = _table(cfg, where, raw, "thresholds")
    kw: dict[str, Any] = {}
    for k, v in t.items():
        w = f"{where}.{k}"
        if k == "min_accuracy":
            kw[k] = float(_number(cfg, w, v, hi=1.0))
        elif k == "max_error":
            if isinstance(v, str):
                if v != "auto":
                    raise ConfigError(f"{cfg}: {w} must be a number or \"auto\", not {v!r}")
                kw[k] = None
            else:
                kw[k] = float(_number(cfg, w, v))
        elif k in ("max_verify_gas", "max_verifier_bytes"):
            kw[k] = int(_number(cfg, w, v, integer=True, lo=1))
        else:
            if not isinstance(v, bool):
                raise ConfigError(f"{cfg}: {w} must be true or false, not {type(v).__name__} ({v!r})")
            kw[k] = v
    return replace(base, **kw)


def load_config(path: str | Path = CONFIG_NAME) -> GateConfig:
    """Parse and validate a gate config.

    Raises:
        ConfigError: missing or invalid TOML, unknown key, wrong type or range,
            missing file, unusable recipe, duplicate model name.
    """
    from zkml.targets import find_calibration
    from zkml.recipe import load_recipe

    cfg = Path(path).resolve()
    name = Path(path).name
    if not cfg.is_file():
        raise ConfigError(f"gate config not found: {path}")
    try:
        raw = tomllib.loads(cfg.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: invalid TOML ({e})") from None
    _table(name, "", raw, "")
    # Test set
    if "test_set" not in raw:
        raise ConfigError(f"{name}: missing [test_set] (path = the committed .npz test set)")
    ts = _table(name, "test_set", raw["test_set"], "test_set")
    if "path" not in ts:
        raise ConfigError(f"{name}: test_set.path is required")
    test_set = _path(cfg, "test_set.path", ts["path"])
    pin = ts.get("sha256")
    if pin is not None and (not isinstance(pin, str) or len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin.lower())):
        raise ConfigError(f"{name}: test_set.sha256 must be 64 hex characters")
    # Sample
    sm = _table(name, "sample", raw.get("sample", {}), "sample")
    size_raw = sm.get("size", 16)
    if isinstance(size_raw, str):
        if size_raw != "all":
            raise ConfigError(f"{name}: sample.size must be an integer or \"all\", not {size_raw!r}")
        size = None
    else:
        size = int(_number(name, "sample.size", size_raw, integer=True, lo=1))
    suite = sm.get("suite")
    if suite is not None:
        if not isinstance(suite, str):
            raise ConfigError(f"{name}: sample.suite must be a string, not {type(suite).__name__}")
        try:
            suite = vrf.get_suite(suite).short_name
        except vrf.VRFError as e:
            raise ConfigError(f"{name}: sample.suite: {e.message}") from None
    key_file = _path(cfg, "sample.key_file", sm["key_file"]) if "key_file" in sm else None
    alpha = None
    if "alpha" in sm:
        if not isinstance(sm["alpha"], str):
            raise ConfigError(f"{name}: sample.alpha must be a hex string, not {type(sm['alpha']).__name__}")
        try:
            alpha = bytes.fromhex(sm["alpha"].removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"{name}: sample.alpha is not valid hex") from None
    replay = sm.get("replay", False)
    if not isinstance(replay, bool):
        raise ConfigError(f"{name}: sample.replay must be true or false, not {type(replay).__name__} ({replay!r})")
    # A pinned alpha lets whoever edits the config grind it until the VRF draws rows it likes
    if alpha is not None and not replay:
        raise ConfigError(f"{name}: sample.alpha pins the VRF input, so the sample can be ground by choosing alpha: "
                          "remove it (alpha is then derived from the model, circuit and test set) or set "
                          "sample.replay = true to replay a recorded sample")
    if replay and alpha is None:
        raise ConfigError(f"{name}: sample.replay = true needs the recorded sample.alpha to replay")
    # Thresholds
    base = _thresholds(name, "thresholds", raw.get("thresholds", {}), Thresholds())
    # Models
    models_raw = raw.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise ConfigError(f"{name}: needs at least one [[models]] entry (path = an .onnx or a circuits/*.toml recipe)")
    models: list[ModelSpec] = []
    for i, m in enumerate(models_raw):
        where = f"models[{i}]"
        m = _table(name, where, m, "models")
        if "path" not in m:
            raise ConfigError(f"{name}: {where}.path is required")
        p = _path(cfg, f"{where}.path", m["path"])
        if p.suffix not in (".onnx", ".toml"):
            raise ConfigError(f"{name}: {where}.path must be an .onnx model or a .toml recipe, not {m['path']}")
        label = m.get("name", p.stem)
        if not isinstance(label, str) or not label:
            raise ConfigError(f"{name}: {where}.name must be a non-empty string")
        if any(x.name == label for x in models):
            raise ConfigError(f"{name}: duplicate model name '{label}'")
        cal = _path(cfg, f"{where}.calibration", m["calibration"]) if "calibration" in m else None
        if p.suffix == ".toml":
            if cal is not None:
                raise ConfigError(f"{name}: {where}: a recipe names its own calibration; drop 'calibration'")
            try:
                load_recipe(p)
            except ConfigError as e:
                raise ConfigError(f"{name}: {where}: {e.message}") from None
        elif cal is None and find_calibration(p) is None:
            raise ConfigError(f"{name}: {where}: no calibration data for {m['path']}: set calibration = \"…\"")
        th = _thresholds(name, f"{where}.thresholds", m["thresholds"], base) if "thresholds" in m else base
        flavour = m.get("verifier", "auto")
        if flavour not in VERIFIER_FLAVOURS:
            raise ConfigError(f"{name}: {where}.verifier must be one of {', '.join(VERIFIER_FLAVOURS)}, not {flavour!r}")
        models.append(ModelSpec(label, p, cal, th, flavour))
    return GateConfig(cfg, test_set, pin.lower() if pin else None, SampleSpec(size, suite, key_file, alpha, replay),
                      models)
