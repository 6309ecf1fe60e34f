"""Quantization: choose ezkl settings on real calibration data.

ezkl's own calibration picks scales by a fidelity heuristic; zkml instead
searches a small list of candidate scales and keeps the *smallest circuit that
meets the accuracy target*, measured the way a user cares about it: every
calibration sample is run through onnxruntime (float) and through the
quantized circuit (ezkl witness), and we compare max abs error and argmax
agreement. ``--target resources`` tries scales from small to large (by
bisection when the first candidate is already a big circuit: about log2(n)
candidates instead of n, see :data:`EXPENSIVE_CELLS`) and stops at the first
scale that needs more than ``max_logrows``; ``--target accuracy`` from large to
small (the most precise circuit that fits within ``max_logrows``). Every
candidate, its logrows, resource estimate, accuracy and verdict is reported
(``calibration.json``), so what was traded is on record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zkml.errors import CircuitError, ConfigError, ModelError, ResourceError
from zkml.inputs import Feed, batches, feed_len, feed_slice, to_ezkl_json, to_feed
from zkml.onnx_check import ModelInfo
from zkml.quant import felts_to_floats
from zkml.util import native_output_captured

VISIBILITIES = ("public", "private", "hashed", "fixed")
RESOURCE_SCALES = (6, 7, 8, 9, 10, 11, 12, 13)
EXPENSIVE_CELLS = 4_000_000
"""From this many committed cells in the first candidate's circuit on, ``resources`` bisects the scales."""


@dataclass(frozen=True)
class CircuitOptions:
    """Everything a user chooses about a circuit (part of its store key)."""

    target: str = "resources"
    """``resources``: smallest circuit meeting the accuracy bar; ``accuracy``: most precise within max_logrows."""
    max_logrows: int = 18
    """Largest circuit (2^k rows) the search may choose."""
    batch_size: int = 1
    """Samples per proof (the ONNX batch axis must be symbolic for sizes other than its own)."""
    input_visibility: str = "public"
    """public | private | hashed (Poseidon commitment as the public instance)."""
    param_visibility: str = "fixed"
    """fixed (baked into the vk) | hashed (Poseidon commitment public) | private | public."""
    output_visibility: str = "public"
    """public | private | hashed."""
    min_agreement: float = 0.99
    """Minimum argmax agreement, float vs circuit, over the calibration set."""
    max_error: float | None = None
    """Optional bound on max abs error float vs circuit over the calibration set."""
    scales: tuple[int, ...] | None = None
    """Candidate scales (fixed-point bits) to try instead of the defaults."""
    num_inner_cols: int = 2
    """ezkl's inner columns per einsum: 1 halves the commitments (≈20% less verify gas) but doubles rows."""
    freivalds: bool = False
    """ezkl's Freivalds check for batched matmuls: off by default. On, a batch-16 MLP gets 4,700 extra
    einsum columns: a verifier over EIP-170, ~2x the verify gas, and slower proving (measured in benches/)."""

    def validate(self) -> CircuitOptions:
        """Check value ranges.

        Raises:
            ConfigError: an option is out of range.
        """
        if self.target not in ("resources", "accuracy"):
            raise ConfigError(f"target must be 'resources' or 'accuracy', not {self.target!r}")
        if not 8 <= self.max_logrows <= 26:
            raise ConfigError(f"max_logrows must be between 8 and 26, not {self.max_logrows}")
        if not 1 <= self.batch_size <= 4096:
            raise ConfigError(f"batch size must be between 1 and 4096, not {self.batch_size}")
        for name in ("input_visibility", "param_visibility", "output_visibility"):
            v = getattr(self, name)
            allowed = VISIBILITIES if name == "param_visibility" else VISIBILITIES[:3]
            if v not in allowed:
                raise ConfigError(f"{name.replace('_', '-')} must be one of {', '.join(allowed)}, not {v!r}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"min_agreement must be within [0, 1], not {self.min_agreement}")
        if not 1 <= self.num_inner_cols <= 16:
            raise ConfigError(f"num_inner_cols must be between 1 and 16, not {self.num_inner_cols}")
        if self.scales is not None and (not self.scales or any(not 1 <= s <= 20 for s in self.scales)):
            raise ConfigError("scales must be a non-empty list of integers from 1 to 20")
        return self

    def key(self) -> dict[str, Any]:
        """The options as they enter the circuit's store key."""
        d = asdict(self)
        d["scales"] = list(self.scales) if self.scales else None
        return d


@dataclass(frozen=True)
class AccuracyReport:
    """Float (onnxruntime) vs circuit (ezkl witness) over a set of samples."""

    samples: int
    """How many samples were compared."""
    max_abs_error: float
    """Largest |float - circuit| over every output element."""
    mean_abs_error: float
    """Mean |float - circuit|."""
    argmax_agreement: float
    """Fraction of samples whose argmax (per output row) agrees."""
    label_accuracy_float: float | None = None
    """Accuracy of the float model against labels, when labels were given."""
    label_accuracy_circuit: float | None = None
    """Accuracy of the circuit against labels, when labels were given."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    """The chosen settings and the evidence for them."""

    settings: dict[str, Any]
    """ezkl settings JSON of the chosen candidate."""
    scale: int
    """Chosen input/param scale."""
    report: AccuracyReport
    """Accuracy of the chosen candidate on the calibration set."""
    tried: list[dict[str, Any]] = field(default_factory=list)
    """Every candidate tried: scale, logrows, metrics, verdict."""
    seconds: float = 0.0
    """Wall time of the search."""


def _as_feed(info: ModelInfo, samples: Any) -> Feed:
    return to_feed(samples, info.inputs)


def float_outputs(onnx_path: Path, info: ModelInfo, samples: Any, batch: int) -> np.ndarray:
    """Run ``samples`` (a feed, or one array for a one-input model) through onnxruntime in batches of
    ``batch``; returns [n, out_size] (every output flattened per sample and concatenated).

    Raises:
        ModelError: onnxruntime cannot load or run the model.
    """
    import onnxruntime as ort

    feed = _as_feed(info, samples)
    n = feed_len(feed)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"{Path(onnx_path).name}: onnxruntime cannot load it: {str(e).splitlines()[0][:200]}") from None
    per_call = batch if info.batched else 1
    outs = []
    for i in range(0, n, per_call):
        chunk = feed_slice(feed, i, i + per_call, per_call)
        args = {s.name: _onnx_array(chunk[s.name], s, info.batched) for s in info.inputs}
        try:
            res = sess.run(None, args)
        except Exception as e:
            raise ModelError(f"{Path(onnx_path).name}: onnxruntime failed: {str(e).splitlines()[0][:200]}") from None
        rows = [np.asarray(r, dtype=np.float64).reshape(per_call, -1) for r in res]
        outs.append(np.concatenate(rows, axis=1))
    return np.concatenate(outs, axis=0)[:n]


def _onnx_array(v: np.ndarray, spec: Any, batched: bool) -> np.ndarray:
    a = v.astype(np.dtype(spec.dtype))
    return a if batched else a.reshape(spec.shape)


def padded_feed(feed: Feed, batch: int) -> Feed:
    """The whole feed padded to a whole number of batches (ezkl's calibration wants that)."""
    n = feed_len(feed)
    return feed_slice(feed, 0, n, -(-n // batch) * batch) if feed else feed


def circuit_outputs(compiled: Path, settings: dict[str, Any], samples: Any, workdir: Path,
                    specs: Any = None) -> np.ndarray:
    """Dequantized circuit outputs (ezkl witness) for ``samples``; returns [n, out_size].

    Raises:
        CircuitError: witness generation failed (typically a value outside the
            circuit's quantization range).
    """
    import ezkl

    batch = int(dict(settings["run_args"]["variables"]).get("batch_size", 1)) or 1
    scales = settings["model_output_scales"]
    feed = samples if isinstance(samples, dict) else None
    n = feed_len(feed) if feed is not None else len(samples)
    if feed is not None and not feed:
        batch = 1
    rows = []
    data_path = workdir / "cal_input.json"
    wit_path = workdir / "cal_witness.json"
    for i in range(0, n, batch):
        if feed is not None:
            data = to_ezkl_json(feed_slice(feed, i, i + batch, batch), specs)
        else:
            data = to_ezkl_json(batches(samples[i : i + batch], batch)[0])
        data_path.write_text(json.dumps(data))
        try:
            with native_output_captured():
                ezkl.gen_witness(str(data_path), str(compiled), str(wit_path))
        except RuntimeError as e:
            raise CircuitError(f"witness generation failed: {e}") from e
        wit = json.loads(wit_path.read_text())
        parts = [felts_to_floats(o, scales[j]).reshape(batch, -1) for j, o in enumerate(wit["outputs"])]
        rows.append(np.concatenate(parts, axis=1))
    return np.concatenate(rows, axis=0)[:n]


def compare(float_out: np.ndarray, circ_out: np.ndarray, labels: np.ndarray | None = None) -> AccuracyReport:
    """Metrics between float and circuit outputs of the same samples."""
    err = np.abs(float_out - circ_out)
    agree = float(np.mean(float_out.argmax(axis=1) == circ_out.argmax(axis=1)))
    la_f = la_c = None
    if labels is not None:
        la_f = float(np.mean(float_out.argmax(axis=1) == labels))
        la_c = float(np.mean(circ_out.argmax(axis=1) == labels))
    return AccuracyReport(
        samples=len(float_out),
        max_abs_error=float(err.max()),
        mean_abs_error=float(err.mean()),
        argmax_agreement=agree,
        label_accuracy_float=la_f,
        label_accuracy_circuit=la_c,
    )


def run_args_for(options: CircuitOptions, scale: int) -> Any:
    """ezkl run arguments for one candidate scale.

    The range-check decomposition uses base 2^scale so its lookup table is no
    larger than the rebase remainders need (ezkl's default 2^14 table forces
    logrows >= 15 even for tiny models); three legs below scale 10 keep the
    representable magnitude >= 2^14.
    """
    import ezkl

    ra = ezkl.PyRunArgs()
    ra.input_scale = scale
    ra.param_scale = scale
    ra.decomp_base = 1 << scale
    ra.decomp_legs = 3 if scale < 10 else 2
    ra.logrows = options.max_logrows
    ra.num_inner_cols = options.num_inner_cols
    ra.disable_freivalds = not options.freivalds
    ra.variables = [("batch_size", options.batch_size)]
    ra.input_visibility = options.input_visibility
    ra.output_visibility = options.output_visibility
    ra.param_visibility = options.param_visibility
    return ra


def calibrate(
    onnx_path: Path,
    info: ModelInfo,
    samples: Any,
    options: CircuitOptions,
    workdir: Path,
    progress: Callable[[str], None] = lambda _: None,
    *,
    circuit_onnx: Path | None = None,
    max_seconds: float | None = None,
    max_memory_gb: float | None = None,
) -> Calibration:
    """Search candidate scales and return the first that meets the accuracy bar.

    ``onnx_path`` is the user's model (the float reference); ``circuit_onnx``
    the graph ezkl lays out (the preprocessed copy when preprocessing was
    needed). ``max_seconds`` bounds the search: once spent, no further
    candidate is started. Each candidate's settings go through
    :func:`zkml.estimate.estimate` first: one that would not fit
    ``max_memory_gb`` is not built (and, when it is the smallest, the search
    stops with the estimate's one-line refusal).

    Raises:
        CircuitError: no candidate fits ``max_logrows`` and the accuracy bar
            (the message gives the best one seen), or ezkl failed outright.
        ResourceError: the smallest circuit would not fit the memory budget.
    """
    import ezkl

    from zkml.estimate import estimate

    t0 = time.perf_counter()
    circuit_onnx = circuit_onnx or onnx_path
    workdir.mkdir(parents=True, exist_ok=True)
    feed = _as_feed(info, samples)
    batch = options.batch_size if info.inputs else 1
    ref = float_outputs(onnx_path, info, feed, batch)
    cal_json = workdir / "calibration_input.json"
    # ezkl wants a whole number of batches: pad the last one by repeating its final sample
    cal_json.write_text(json.dumps(to_ezkl_json(padded_feed(feed, batch), info.inputs)))
    scales: Sequence[int] = sorted(set(options.scales or RESOURCE_SCALES), reverse=options.target == "accuracy")
    tried: list[dict[str, Any]] = []

    def attempt(scale: int) -> tuple[dict[str, Any], Calibration | None]:
        """One candidate: settings, estimate, compile, accuracy. ``entry["verdict"]`` says how it went."""
        settings_path = workdir / f"settings_s{scale}.json"
        compiled = workdir / f"model_s{scale}.compiled"
        entry: dict[str, Any] = {"scale": scale}
        progress(f"calibrating scale {scale} on {feed_len(feed)} samples")
        try:
            with native_output_captured():
                ezkl.gen_settings(str(circuit_onnx), str(settings_path), py_run_args=run_args_for(options, scale))
                ezkl.calibrate_settings(
                    str(cal_json), str(circuit_onnx), str(settings_path), "resources",
                    scales=[scale], max_logrows=options.max_logrows,
                )
        except RuntimeError as e:
            entry.update(verdict="failed", reason=str(e).splitlines()[0][:200])
            return entry, None
        settings = json.loads(settings_path.read_text())
        logrows = int(settings["run_args"]["logrows"])
        entry["logrows"] = logrows
        need = estimate(settings)
        entry["estimate"] = need.as_dict()
        if logrows > options.max_logrows:
            entry["verdict"] = f"needs logrows {logrows} > max {options.max_logrows}"
            return entry, None
        if max_memory_gb is not None and need.memory_gb > max_memory_gb:
            entry["verdict"] = f"needs ~{need.memory_gb:.1f} GB > budget {max_memory_gb:g} GB"
            if options.target == "resources":
                tried.append(entry)
                raise ResourceError(need.refusal(f"--max-memory {max_memory_gb:g} GB"))
            return entry, None
        try:
            with native_output_captured():
                ezkl.compile_circuit(str(circuit_onnx), str(compiled), str(settings_path))
            circ = circuit_outputs(compiled, settings, feed, workdir, info.inputs)
        except RuntimeError as e:
            entry.update(verdict="failed", reason=str(e).splitlines()[0][:200])
            return entry, None
        except CircuitError as e:
            entry.update(verdict="failed", reason=e.message[:200])
            return entry, None
        report = compare(ref, circ)
        entry.update(report.as_dict())
        ok = report.argmax_agreement >= options.min_agreement and (
            options.max_error is None or report.max_abs_error <= options.max_error
        )
        entry["verdict"] = "chosen" if ok else "below accuracy bar"
        return entry, (Calibration(settings, scale, report, tried, 0.0) if ok else None)

    # The search. `accuracy`: from the largest scale down, the first that fits and meets the bar.
    # `resources`: the smallest scale that meets the bar, over indices lo (known not good enough) <
    # i < hi (known good, or already too big: a larger scale needs at least as many rows). Candidates
    # are tried one by one upwards; when the first candidate's circuit is already big (>= EXPENSIVE_CELLS,
    # so every candidate costs a compile and a witness per sample at that size or more), by bisection:
    # about log2(n) candidates instead of up to n, assuming accuracy grows with the scale.
    lo, hi = -1, len(scales)
    chosen: Calibration | None = None
    bisect = False
    while lo + 1 < hi:
        i = (lo + hi) // 2 if bisect else lo + 1
        spent = time.perf_counter() - t0
        if max_seconds is not None and tried and spent > max_seconds:
            tried.append({"scale": scales[i], "verdict": f"not tried: calibration budget {max_seconds:.0f}s spent"})
            break
        entry, result = attempt(scales[i])
        if bisect:
            entry["search"] = "bisection"
        tried.append(entry)
        if result is not None:
            if options.target == "accuracy":
                chosen = result
                break
            chosen, hi = result, i
        elif options.target == "resources" and entry["verdict"].startswith("needs logrows"):
            hi = i
            if not bisect and i + 1 < len(scales):
                tried.append({"scale": scales[i + 1], "verdict": f"not tried: scale {scales[i]} already needs "
                              f"logrows {entry['logrows']} > max {options.max_logrows}"})
        else:
            lo = i
        if (options.target == "resources" and not bisect and len(tried) == 1
                and entry.get("estimate", {}).get("cells", 0) >= EXPENSIVE_CELLS and lo + 2 < hi):
            bisect = True
            progress(f"scale {scales[i]} already gives {entry['estimate']['cells'] / 1e6:.1f}M cells: "
                     "bisecting the other scales")
    if chosen is not None:
        # `tried` keeps the search's order; earlier "chosen" verdicts of a bisection were superseded
        for t in tried:
            if t.get("verdict") == "chosen" and t["scale"] != chosen.scale:
                t["verdict"] = "good enough, superseded by a smaller scale"
        return replace(chosen, tried=tried, seconds=time.perf_counter() - t0)
    best = max((t for t in tried if "argmax_agreement" in t), key=lambda t: t["argmax_agreement"], default=None)
    detail = (
        f"best: scale {best['scale']}, agreement {best['argmax_agreement']:.3f}, max error {best['max_abs_error']:.4g}"
        if best
        else "; ".join(f"scale {t['scale']}: {t.get('reason') or t['verdict']}" for t in tried[:3])
    )
    raise CircuitError(
        f"no circuit within logrows {options.max_logrows} meets agreement >= {options.min_agreement}"
        + (f" and max error <= {options.max_error}" if options.max_error is not None else "")
        + f" ({detail}; {time.perf_counter() - t0:.0f}s of calibration)"
    )
