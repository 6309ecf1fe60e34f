"""The CI gate: compile, sample, prove, verify (locally and on chain), compare, judge.

``zkml gate [zkml.toml]`` reads a config naming models, the committed test set
and thresholds, runs every check for every model and exits 0 (all passed),
1 (a threshold failed; the report says which, with numbers) or 2 (the config
is wrong: unknown key, missing file, wrong type; one line).

Config (paths are relative to the config file)::

    [test_set]
    path = "models/digits_test.npz"      # .npz: x = samples, y = integer labels
    # sha256 = "…"                       # optional pin of the file's digest

    [sample]
    size = 16                            # test rows to prove; "all" = the whole set (no VRF)
    suite = "p256"                       # ECVRF suite: p256 | secp256k1
    # key_file = "vrf.key"               # else $ZKML_VRF_SK (hex), else an ephemeral key
    # alpha = "…"                        # hex VRF input; default derived below

    [thresholds]                         # defaults for every model
    min_accuracy = 0.75                  # proven (circuit) accuracy on the sample
    max_error = "auto"                   # max |float - circuit|; "auto" = zkml.compare's tolerance
    max_verify_gas = 700000              # per proof, on chain
    max_verifier_bytes = 24576           # EIP-170
    verify_local = true
    verify_onchain = true

    [[models]]
    name = "digits-mlp"
    path = "circuits/digits_mlp.toml"    # an .onnx or a circuits/*.toml recipe
    # calibration = "…"                  # for an .onnx (default: found beside it)
    # verifier = "auto"                  # per-circuit | reusable | auto (per-circuit if under EIP-170)
    # thresholds = { min_accuracy = 0.9 }  per-model overrides

Sampling. The rows to prove are ``zkml.sampling.sample_indices(beta, n, k)``
where ``beta`` is the ECVRF output for ``alpha``; unless the config sets it,
``alpha = sha256("zkml-gate/v1" || model sha256 || circuit id || test-set
sha256)``, so the sample is fixed by the exact model, circuit and test set, and
cannot be chosen by whoever runs the gate without the VRF secret key (keep it
in a CI secret, ``ZKML_VRF_SK``). The report records suite, public key,
alpha, pi, beta and the indices: anyone can check pi against the public key
and re-derive the indices. Without a key the gate uses an ephemeral one (the
report says so): the sample is still unpredictable, but a rerun draws another.

Every check reports its value and threshold: ``compile``, ``prove``,
``accuracy``, ``error``, ``runtimes`` (tract/torch agree with onnxruntime),
``verify_local``, ``verifier_bytes``, ``verify_onchain``, ``gas``. With
``verifier = "auto"`` a circuit whose per-circuit verifier exceeds EIP-170
(the digits MLP at batch 16: 25,217 bytes) is checked with ezkl's reusable
verifier and its VK artifact instead, and the report says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from zkml import sampling, vrf
from zkml.errors import ConfigError, ZkmlError
from zkml.util import sha256_file, write_json_atomic

CONFIG_NAME = "zkml.toml"
ALPHA_DOMAIN = b"zkml-gate/v1"
SK_ENV = "ZKML_VRF_SK"
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
EIP170 = 24_576
KEY_FILE_FORMAT = "zkml-vrf-key/1"
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
    suite: str
    """ECVRF suite name."""
    key_file: Path | None
    """VRF secret key file (zkml vrf keygen --out, or a file holding hex)."""
    alpha: bytes | None
    """VRF input; None = derived from model, circuit and test set digests."""


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
    "sample": {"size", "suite", "key_file", "alpha"},
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
    from zkml.pipeline import find_calibration
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
    suite = sm.get("suite", "p256")
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
    return GateConfig(cfg, test_set, pin.lower() if pin else None, SampleSpec(size, suite, key_file, alpha), models)


# Report


@dataclass(frozen=True)
class GateCheck:
    """One judged fact with its numbers."""

    name: str
    """compile | prove | accuracy | error | runtimes | verify_local | verifier_bytes | verify_onchain | gas."""
    ok: bool | None
    """Passed, failed, or None when not run (skipped by config or after an earlier failure)."""
    value: Any
    """The measured number (or text)."""
    threshold: Any
    """What it was judged against (None when not gated)."""
    detail: str
    """One line, with numbers."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "value": self.value, "threshold": self.threshold, "detail": self.detail}


@dataclass
class ModelReport:
    """Everything the gate found out about one model."""

    name: str
    """The model's label."""
    path: str
    """Its .onnx or recipe."""
    onnx: str | None = None
    """The ONNX file (the recipe's model for a recipe)."""
    model_sha256: str | None = None
    """sha256 of the ONNX."""
    circuit: dict[str, Any] = field(default_factory=dict)
    """Circuit id, logrows, batch, scale, cache hit."""
    sample: dict[str, Any] = field(default_factory=dict)
    """Population, size, indices and the VRF evidence."""
    bundle: str | None = None
    """Where the proof bundle was written."""
    proofs: int = 0
    """Number of SNARKs."""
    accuracy: dict[str, Any] = field(default_factory=dict)
    """Circuit and float accuracy on the sample, float accuracy on the whole set."""
    errors: dict[str, Any] = field(default_factory=dict)
    """Float-vs-circuit error summary (from zkml.compare)."""
    onchain: dict[str, Any] = field(default_factory=dict)
    """Chain id, verifier address and size, gas per proof."""
    checks: list[GateCheck] = field(default_factory=list)
    """Every check, in order."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage."""
    thresholds: dict[str, Any] = field(default_factory=dict)
    """The thresholds applied."""

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def failures(self) -> list[str]:
        return [c.detail for c in self.checks if c.ok is False]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": self.path, "onnx": self.onnx, "passed": self.passed, "model_sha256": self.model_sha256,
            "circuit": self.circuit, "sample": self.sample, "bundle": self.bundle, "proofs": self.proofs,
            "accuracy": self.accuracy, "errors": self.errors, "onchain": self.onchain,
            "thresholds": self.thresholds, "checks": [c.as_dict() for c in self.checks], "seconds": self.seconds,
        }


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict over every model."""

    config: str
    """The config file."""
    test_set: dict[str, Any]
    """Path, sha256 and rows of the test set."""
    models: list[ModelReport]
    """Per model."""
    seconds: float
    """Total wall time."""
    tools: dict[str, str]
    """Tool versions."""
    notes: list[str] = field(default_factory=list)
    """Warnings (dev SRS, ephemeral VRF key)."""

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failures(self) -> list[str]:
        return [f"{m.name}: {f}" for m in self.models for f in m.failures()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": "zkml-gate-report", "version": 1, "passed": self.passed, "exit_code": self.exit_code,
            "failures": self.failures(), "config": self.config, "test_set": self.test_set,
            "models": [m.as_dict() for m in self.models], "seconds": self.seconds, "tools": self.tools, "notes": self.notes,
        }

    def markdown(self) -> str:
        """The report as GitHub-flavoured Markdown (the job summary)."""
        icon = {True: "✅", False: "❌", None: "➖"}
        out = [f"## zkml gate: {'PASS ✅' if self.passed else 'FAIL ❌'}", ""]
        out.append(f"config `{self.config}` · test set `{self.test_set['path']}` ({self.test_set['rows']} rows, "
                   f"sha256 `{self.test_set['sha256'][:16]}…`) · {len(self.models)} model(s) · {self.seconds:.1f} s")
        for n in self.notes:
            out += ["", f"> ⚠️ {n}"]
        for m in self.models:
            c = m.circuit
            out += ["", f"### {m.name}: {'PASS ✅' if m.passed else 'FAIL ❌'}", ""]
            if m.model_sha256:
                out.append(f"- model `{m.onnx or m.path}` sha256 `{m.model_sha256}`" + (f" (recipe `{m.path}`)" if m.onnx and m.onnx != m.path else ""))
            if c:
                out.append(f"- circuit `{c.get('id')}` (logrows {c.get('logrows')}, batch {c.get('batch_size')}, "
                           f"scale {c.get('input_scale')}, {'cached' if c.get('cache_hit') else 'built'})")
            if m.sample:
                s = m.sample
                out.append(f"- sample: {s.get('size')} of {s.get('population')} test rows, {m.proofs} proof(s)"
                           + (f", bundle `{m.bundle}`" if m.bundle else ""))
                v = s.get("vrf")
                if v:
                    out.append(f"- VRF {v['suite']} ({v['key']} key): pk `{v['pk']}`, alpha `{v['alpha']}`, "
                               f"beta `{v['beta']}`, pi `{v['pi']}`")
                out.append(f"- indices: `{s.get('indices')}`")
            out += ["", "| check | value | threshold | verdict |", "|---|---|---|---|"]
            for ch in m.checks:
                out.append(f"| {ch.name} | {_md(ch.name, ch.value)} | {_md(ch.name, ch.threshold)} | {icon[ch.ok]} {_cell(ch.detail)} |")
        fails = self.failures()
        if fails:
            out += ["", "**Failed:**", ""] + [f"- {f}" for f in fails]
        return "\n".join(out) + "\n"

    def summary(self) -> str:
        """Plain-text summary for the terminal."""
        mark = {True: "ok  ", False: "FAIL", None: "--  "}
        lines = []
        for m in self.models:
            lines.append(f"{m.name}: {'PASS' if m.passed else 'FAIL'}  (model {str(m.model_sha256)[:12]}…, circuit {m.circuit.get('id')}, "
                         f"{m.proofs} proof(s))")
            for ch in m.checks:
                lines.append(f"  {mark[ch.ok]} {ch.name:<15} {ch.detail}")
        lines.append(f"gate: {'PASS' if self.passed else 'FAIL'} in {self.seconds:.1f}s")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md(check: str, v: Any) -> str:
    if v is None:
        return "—"
    if check == "accuracy" and isinstance(v, float):
        return f"{100 * v:.1f}%"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return _cell(str(v))


# Sampling


def _vrf_key(spec: SampleSpec) -> tuple[bytes, str]:
    """The VRF secret key and where it came from (file, env, ephemeral).

    Raises:
        ConfigError: the key file or env value is not a usable key.
    """
    if spec.key_file is not None:
        text = spec.key_file.read_text().strip()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            if doc.get("format") != KEY_FILE_FORMAT or not isinstance(doc.get("sk"), str):
                raise ConfigError(f"{spec.key_file}: not a {KEY_FILE_FORMAT} key file")
            if doc.get("suite") and vrf.get_suite(str(doc["suite"])).short_name != spec.suite:
                raise ConfigError(f"{spec.key_file}: a {doc['suite']} key, but sample.suite is {spec.suite}")
            text = doc["sk"]
        try:
            return bytes.fromhex(text.removeprefix("0x")), "file"
        except ValueError:
            raise ConfigError(f"{spec.key_file}: the VRF key is not hex") from None
    env = os.environ.get(SK_ENV, "").strip()
    if env:
        try:
            return bytes.fromhex(env.removeprefix("0x")), "env"
        except ValueError:
            raise ConfigError(f"${SK_ENV} is not a hex VRF secret key") from None
    sk, _ = vrf.keygen(spec.suite)
    return sk, "ephemeral"


def derive_alpha(model_sha256: str, circuit_id: str, test_set_sha256: str) -> bytes:
    """Default VRF input: binds the sample to the exact model, circuit and test set."""
    return hashlib.sha256(
        ALPHA_DOMAIN + bytes.fromhex(model_sha256) + circuit_id.encode() + bytes.fromhex(test_set_sha256)
    ).digest()


def vrf_sample(spec: SampleSpec, n: int, alpha: bytes, sk: bytes, key_source: str) -> tuple[list[int], dict[str, Any]]:
    """Indices to prove and the evidence an auditor re-checks.

    Raises:
        ConfigError: bad key, or a sample larger than the test set.
    """
    k = spec.size
    if k is not None and k > n:
        raise ConfigError(f"sample.size {k} is larger than the test set ({n} rows)")
    suite = vrf.get_suite(spec.suite)
    try:
        pk = vrf.public_key(suite, sk)
        pi = vrf.prove(suite, sk, alpha)
    except vrf.VRFError as e:
        raise ConfigError(f"VRF key ({key_source}): {e.message}") from None
    beta = vrf.verify(suite, pk, alpha, pi)
    if beta is None:
        raise ZkmlError("internal error: a fresh VRF proof does not verify")
    indices = sampling.sample_indices(beta, n, k if k is not None else n)
    evidence = {"suite": suite.short_name, "key": key_source, "pk": pk.hex(), "alpha": alpha.hex(), "pi": pi.hex(),
                "beta": beta.hex(), "rule": "zkml.sampling.sample_indices(beta, population, size)"}
    return indices, evidence


# Running


@dataclass
class _Chain:
    """The chain the gate verifies on: started lazily, shared by every model."""

    rpc_url: str | None
    stack: ExitStack
    chain: Any = None

    def get(self) -> Any:
        if self.chain is None:
            from zkml.evm.anvil import Anvil
            from zkml.evm.chain import connect, load_private_key

            if self.rpc_url is None:
                node = self.stack.enter_context(Anvil.start())
                self.chain = connect(node.rpc_url, allow_dev_key=True)
            else:
                self.chain = connect(self.rpc_url, load_private_key(), allow_dev_key=True)
        return self.chain


def run_gate(
    config: GateConfig,
    *,
    store: Any,
    out_dir: str | Path,
    rpc_url: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> GateReport:
    """Run every check of ``config`` and write ``report.json``/``report.md`` and the bundles to ``out_dir``.

    Raises:
        ConfigError: the config does not fit the data (test set digest or
            shape, sample size, VRF key).
        ToolError / ChainError: solc-js or the chain is not usable (nothing
            could be judged on chain).
    """
    from zkml.store import tool_versions

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Test set
    ts_sha = sha256_file(config.test_set)
    if config.test_set_sha256 is not None and ts_sha != config.test_set_sha256:
        raise ConfigError(f"{config.test_set.name} has sha256 {ts_sha[:16]}…, the config pins {config.test_set_sha256[:16]}…")
    x, y = _load_test_set(config.test_set)
    if config.sample.size is not None and config.sample.size > len(x):
        raise ConfigError(f"sample.size {config.sample.size} is larger than the test set ({len(x)} rows)")
    sk, key_source = _vrf_key(config.sample)
    notes: list[str] = []
    if key_source == "ephemeral" and config.sample.size is not None:
        notes.append(f"ephemeral VRF key: the sample cannot be reproduced; set ${SK_ENV} (a CI secret) or sample.key_file")
    reports: list[ModelReport] = []
    with ExitStack() as stack:
        chain = _Chain(rpc_url, stack)
        for spec in config.models:
            progress(f"[{spec.name}] gating {spec.path.name}")
            reports.append(_gate_model(spec, config, x, y, ts_sha, sk, key_source, store, out, chain, progress))
    if any(m.circuit.get("srs_insecure") for m in reports):
        from zkml.srs import DEV_WARNING

        notes.append(DEV_WARNING)
    report = GateReport(
        config=str(config.path), test_set={"path": _rel(config.test_set, config.path.parent), "sha256": ts_sha, "rows": int(len(x))},
        models=reports, seconds=time.perf_counter() - t0, tools=tool_versions(), notes=notes,
    )
    write_json_atomic(out / "report.json", report.as_dict())
    (out / "report.md").write_text(report.markdown())
    summary = os.environ.get(SUMMARY_ENV)
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(report.markdown())
    return report


def _load_test_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise ConfigError(f"{path.name}: a test set needs arrays x (samples) and y (labels); it has {sorted(z.keys())}")
            x, y = np.asarray(z["x"], dtype=np.float32), np.asarray(z["y"]).reshape(-1)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path.name}: not a readable .npz test set ({e})") from None
    if len(x) != len(y) or len(x) == 0:
        raise ConfigError(f"{path.name}: {len(x)} samples but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{path.name}: labels y must be integers, not {y.dtype}")
    return x, y.astype(np.int64)


def _gate_model(
    spec: ModelSpec, config: GateConfig, x: np.ndarray, y: np.ndarray, ts_sha: str, sk: bytes, key_source: str,
    store: Any, out: Path, chain: _Chain, progress: Callable[[str], None],
) -> ModelReport:
    from zkml.errors import CircuitError, ModelError
    from zkml.inputs import to_samples
    from zkml.pipeline import resolve_circuit
    from zkml.prove import prove
    from zkml.recipe import load_recipe

    th = spec.thresholds
    rep = ModelReport(spec.name, _rel(spec.path, config.path.parent), thresholds=th.as_dict())
    checks = rep.checks

    def skipped(*names: str, why: str) -> None:
        for n in names:
            checks.append(GateCheck(n, None, None, None, why))

    later = ("accuracy", "error", "runtimes", "verify_local", "verifier_bytes", "verify_onchain", "gas")
    # Compile (cached)
    t = time.perf_counter()
    try:
        circuit, hit = resolve_circuit(str(spec.path), store, calibration=spec.calibration, progress=progress)
    except (CircuitError, ModelError) as e:
        checks.append(GateCheck("compile", False, None, None, f"the model does not compile: {e.message}"))
        skipped("prove", *later, why="not run: the model did not compile")
        return rep
    rep.seconds["compile"] = time.perf_counter() - t
    rep.model_sha256 = circuit.model_sha256
    rep.onnx = _rel(spec.path if spec.path.suffix == ".onnx" else load_recipe(spec.path).model, config.path.parent)
    s = circuit.summary()
    rep.circuit = {"id": circuit.circuit_id, "logrows": circuit.logrows, "batch_size": circuit.batch_size,
                   "input_scale": s["input_scale"], "cache_hit": hit, "srs": s["srs"]["kind"],
                   "srs_insecure": bool(circuit.srs.insecure), "folder": str(circuit.folder)}
    how = "cached" if hit else f"built in {rep.seconds['compile']:.1f}s"
    checks.append(GateCheck("compile", True, circuit.circuit_id, None,
                            f"circuit {circuit.circuit_id}: logrows {circuit.logrows}, batch {circuit.batch_size} ({how})"))
    # Sample
    samples_all = to_samples(x, circuit.sample_shape, source=config.test_set.name)
    alpha = config.sample.alpha or derive_alpha(circuit.model_sha256, circuit.circuit_id, ts_sha)
    if config.sample.size is None:
        indices = list(range(len(x)))
        evidence = None
    else:
        indices, evidence = vrf_sample(config.sample, len(x), alpha, sk, key_source)
    rep.sample = {"population": int(len(x)), "size": len(indices), "indices": indices, "vrf": evidence}
    samples, labels = samples_all[indices], y[indices]
    # Prove
    t = time.perf_counter()
    progress(f"[{spec.name}] proving {len(indices)} sample(s) (batch {circuit.batch_size})")
    try:
        bundle = prove(circuit, samples, progress=progress)
    except ConfigError:
        raise
    except ZkmlError as e:  # ProofError, ProveTimeout, InputError (a row beyond the circuit's range)
        checks.append(GateCheck("prove", False, None, None, f"proving failed: {e.message}"))
        skipped(*later, why="not run: proving failed")
        return rep
    rep.seconds["prove"] = time.perf_counter() - t
    path = out / f"{_slug(spec.name)}.proof.json"
    bundle.save(path)
    rep.bundle, rep.proofs = str(path), len(bundle.proofs)
    checks.append(GateCheck("prove", True, len(bundle.proofs), None,
                            f"{len(indices)} sample(s) in {len(bundle.proofs)} proof(s), {bundle.data['timings']['prove_seconds']:.1f}s proving"))
    _accuracy_and_error(spec, circuit, bundle, samples_all, labels, y, rep, progress)
    _verify_local(th, bundle, store, rep, progress)
    _onchain(spec, circuit, bundle, store, chain, rep, progress)
    return rep


def _rel(p: Path, base: Path) -> str:
    """``p`` relative to the config's folder when it lies inside it (reports stay readable and portable)."""
    try:
        return str(p.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(p)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)


def _accuracy_and_error(
    spec: ModelSpec, circuit: Any, bundle: Any, samples_all: np.ndarray, labels: np.ndarray, y: np.ndarray,
    rep: ModelReport, progress: Callable[[str], None],
) -> None:
    from zkml.calibrate import float_outputs
    from zkml.compare import REFERENCE, compare_bundle
    from zkml.onnx_check import load_model
    from zkml.recipe import load_recipe

    th = spec.thresholds
    onnx_path = spec.path if spec.path.suffix == ".onnx" else load_recipe(spec.path).model
    t = time.perf_counter()
    progress(f"[{spec.name}] comparing proven outputs with onnxruntime, tract")
    cmp = compare_bundle(bundle, onnx_path=onnx_path, circuit=circuit, labels=labels, tolerance=th.max_error,
                         verify=False, progress=progress)
    # Accuracy: the proven outputs' argmax against the labels
    acc_c = cmp.accuracy("circuit")
    acc_f = cmp.accuracy(REFERENCE)
    info = load_model(onnx_path, check_ops=False)
    full = float_outputs(onnx_path, info, samples_all, int(info.batch_dim) if not info.batch_symbolic else len(samples_all))
    n0 = cmp.outputs[0][1]
    acc_full = float(np.mean(full[:, :n0].argmax(axis=1) == y))
    correct = int(round((acc_c or 0.0) * len(labels)))
    rep.accuracy = {"circuit_sample": acc_c, "float_sample": acc_f, "float_full_set": acc_full,
                    "correct": correct, "samples": int(len(labels))}
    ok = None if th.min_accuracy is None else bool(acc_c is not None and acc_c >= th.min_accuracy)
    detail = (f"proven accuracy {100 * (acc_c or 0):.1f}% ({correct}/{len(labels)})"
              + ("" if th.min_accuracy is None else f" {'>=' if ok else '<'} {100 * th.min_accuracy:.1f}%")
              + f"; float {100 * (acc_f or 0):.1f}% on the sample, {100 * acc_full:.1f}% on all {len(y)} rows")
    rep.checks.append(GateCheck("accuracy", ok, acc_c, th.min_accuracy, detail))
    # Error: proven outputs vs onnxruntime
    circ_rows = [r for r in cmp.rows if r.runtime == "circuit"]
    worst = max(circ_rows, key=lambda r: (r.max_abs_error if r.max_abs_error is not None else math.inf))
    tol = min(tl.value for tl in cmp.tolerances)
    ok = all(r.within for r in circ_rows)
    source = "auto" if th.max_error is None else "max_error"
    rep.errors = {"max_abs_error": worst.max_abs_error, "max_rel_error": worst.max_rel_error,
                  "mean_abs_error": worst.mean_abs_error, "argmax_agreement": worst.argmax_agreement,
                  "tolerance": tol, "tolerance_source": source, "tolerances": [tl.as_dict() for tl in cmp.tolerances],
                  "calibration_max_abs_error": cmp.calibration_error, "rows": [r.as_dict() for r in cmp.rows]}
    rep.checks.append(GateCheck(
        "error", ok, worst.max_abs_error, tol,
        f"max |float - circuit| {_fmt(worst.max_abs_error)} {'<=' if ok else '>'} {tol:.4g} ({source})"
        + (f", argmax agreement {100 * worst.argmax_agreement:.1f}%" if worst.argmax_agreement is not None else ""),
    ))
    # Other runtimes and the model digest
    others = [c.detail for c in cmp.checks if c.ok is False]
    others += [f for name in ("tract", "torch") for f in cmp.row_failures(name)]
    ran = sorted({r.runtime for r in cmp.rows if r.runtime != "circuit" and r.status == "ok"})
    missing = sorted({f"{r.runtime} {r.status}" for r in cmp.rows if r.runtime != "circuit" and r.status not in ("ok", "not given")})
    rep.checks.append(GateCheck(
        "runtimes", not others, ", ".join(ran) or None, None,
        (others[0] if others else
         f"{' and '.join(ran)} {'agrees' if len(ran) == 1 else 'agree'} with onnxruntime; model digest matches" if ran
         else "no second runtime ran; model digest matches")
        + (f" ({'; '.join(missing)})" if missing else ""),
    ))
    rep.seconds["compare"] = time.perf_counter() - t


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _verify_local(th: Thresholds, bundle: Any, store: Any, rep: ModelReport, progress: Callable[[str], None]) -> None:
    from zkml.verify import artifacts_from_store, verify_bundle

    if not th.verify_local:
        rep.checks.append(GateCheck("verify_local", None, None, None, "skipped (verify_local = false)"))
        return
    t = time.perf_counter()
    progress(f"[{rep.name}] verifying {len(bundle.proofs)} proof(s) locally")
    v = verify_bundle(bundle, artifacts_from_store(bundle, store))
    rep.seconds["verify_local"] = time.perf_counter() - t
    rep.checks.append(GateCheck("verify_local", v.valid, v.valid, True,
                                f"{len(bundle.proofs)} proof(s) verify ({v.seconds:.2f}s)" if v.valid else f"invalid: {v.reason}"))


def _verifier(flavour: str, circuit: Any, store: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
    """Generate and compile the verifier of ``flavour`` (auto: per-circuit unless it is over EIP-170).

    Sources are rendered into ``<store>/verifiers/<circuit id>/``; solc-js output
    is cached in ``<store>/solc-cache`` by source digest.
    """
    from zkml.evm.verifier import compile_verifier, generate_verifier

    folder = store.root / "verifiers" / circuit.circuit_id
    cache = store.root / "solc-cache"
    note = ""
    if flavour in ("auto", "per-circuit"):
        progress(f"generating and compiling the per-circuit Solidity verifier of {circuit.circuit_id}")
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, folder)
        compiled = compile_verifier(art, cache_dir=cache, check_size=False)
        if flavour == "per-circuit" or compiled.deployed_size <= EIP170:
            return compiled, "per-circuit verifier"
        note = f" (the per-circuit verifier is {compiled.deployed_size:,} bytes, over EIP-170)"
    progress(f"generating and compiling the reusable Solidity verifier and VK artifact of {circuit.circuit_id}")
    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, folder, reusable=True)
    return compile_verifier(art, cache_dir=cache, check_size=False), "reusable verifier" + note


def _onchain(
    spec: ModelSpec, circuit: Any, bundle: Any, store: Any, chain: _Chain, rep: ModelReport, progress: Callable[[str], None]
) -> None:
    from zkml.evm.verifier import deploy_verifier, verify_onchain

    th = spec.thresholds
    # Verifier
    t = time.perf_counter()
    compiled, what = _verifier(spec.verifier, circuit, store, lambda m: progress(f"[{rep.name}] {m}"))
    size = compiled.deployed_size
    rep.seconds["verifier"] = time.perf_counter() - t
    size_ok = size <= th.max_verifier_bytes
    rep.onchain = {"verifier_kind": "reusable" if compiled.artifact.reusable else "per-circuit", "verifier_bytes": size,
                   "sol_sha256": compiled.artifact.sol_sha256, "solc": compiled.contract.solc_version}
    rep.checks.append(GateCheck("verifier_bytes", size_ok, size, th.max_verifier_bytes,
                                f"{what}: {size:,} bytes deployed {'<=' if size_ok else '>'} {th.max_verifier_bytes:,}"
                                + (" (EIP-170)" if th.max_verifier_bytes == EIP170 else "")))
    if not th.verify_onchain:
        rep.checks.append(GateCheck("verify_onchain", None, None, None, "skipped (verify_onchain = false)"))
        rep.checks.append(GateCheck("gas", None, None, th.max_verify_gas, "skipped (verify_onchain = false)"))
        return
    if size > EIP170:
        rep.checks.append(GateCheck("verify_onchain", False, None, True, f"cannot deploy: {size:,} bytes exceed EIP-170 ({EIP170:,})"))
        rep.checks.append(GateCheck("gas", None, None, th.max_verify_gas, "not run: the verifier cannot be deployed"))
        return
    # Deploy and verify every proof
    t = time.perf_counter()
    progress(f"[{rep.name}] deploying the verifier and verifying {len(bundle.proofs)} proof(s) on chain")
    ch = chain.get()
    dep = deploy_verifier(ch, compiled)
    version = str(bundle.data.get("tools", {}).get("ezkl", ""))
    results = [verify_onchain(ch, dep, e.to_ezkl(version)) for e in bundle.proofs]
    rep.seconds["onchain"] = time.perf_counter() - t
    gas = [r.gas for r in results]
    accepted = sum(1 for r in results if r.ok)
    rep.onchain.update({"chain_id": ch.chain_id, "rpc_url": ch.rpc_url if chain.rpc_url else "embedded anvil",
                        "verifier": dep.address, "vka": dep.vka_address, "deploy_gas": dep.deploy_gas, "gas": gas})
    ok = accepted == len(results)
    rep.checks.append(GateCheck("verify_onchain", ok, accepted, len(results),
                                f"{accepted}/{len(results)} proof(s) accepted by the verifier at {dep.address} (chain {ch.chain_id})"))
    measured = [g for g in gas if g is not None]
    if not measured:
        rep.checks.append(GateCheck("gas", False if th.max_verify_gas else None, None, th.max_verify_gas, "no proof was accepted: no gas figure"))
        return
    mx = max(measured)
    gok = None if th.max_verify_gas is None else mx <= th.max_verify_gas
    rep.checks.append(GateCheck(
        "gas", gok, mx, th.max_verify_gas,
        f"verify gas max {mx:,} (mean {sum(measured) // len(measured):,})"
        + ("" if th.max_verify_gas is None else f" {'<=' if gok else '>'} {th.max_verify_gas:,}"),
    ))
