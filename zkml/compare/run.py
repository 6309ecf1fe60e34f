"""Running a comparison: a model (one feed through every runtime) or a proof bundle (re-executed).

A model may have any number of inputs and outputs. Every runtime gets the same
named feed (:data:`zkml.inputs.Feed`, checked like ``zkml prove`` checks it:
float inputs quantized by the circuit, int/bool inputs passed as integers),
and every output is scored in its own row against its own tolerance.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from zkml.bundle import Bundle
from zkml.circuit import Circuit
from zkml.compare.result import Check, Comparison, OutputTolerance, Row
from zkml.compare.runtimes import REFERENCE, run_onnxruntime, run_torch, run_tract
from zkml.compare.tolerance import (
    FLOOR_LSB,
    MARGIN,
    check_tolerance,
    derive_tolerance,
    emulate_fixed_point,
    float_tolerance,
    within,
)
from zkml.errors import ConfigError, InputError
from zkml.inputs import Feed, feed_from_revealed, feed_len, read_raw, revealed_values, to_feed
from zkml.onnx_check import ModelInfo, load_model
from zkml.util import sha256_json

LABEL_KEYS = ("y", "Y", "labels", "label", "targets")


def _split(values: np.ndarray, outputs: list[tuple[str, int]]) -> list[np.ndarray]:
    parts, pos = [], 0
    for _, size in outputs:
        parts.append(values[:, pos : pos + size])
        pos += size
    return parts


def _score(runtime: str, name: str, got: np.ndarray, ref: np.ndarray, tol: float) -> Row:
    err = np.abs(got - ref)
    peak = float(np.max(np.abs(ref))) if ref.size else 0.0
    mx = float(err.max()) if err.size else 0.0
    agree = float(np.mean(got.argmax(axis=1) == ref.argmax(axis=1))) if ref.shape[1] > 1 else None
    return Row(
        runtime=runtime, output=name, status="ok",
        max_abs_error=mx, max_rel_error=mx / peak if peak > 0 else (0.0 if mx == 0 else math.inf),
        mean_abs_error=float(err.mean()) if err.size else 0.0,
        argmax_agreement=agree, tolerance=tol, within=within(mx, tol),
    )


def tolerances_for(
    outputs: list[tuple[str, int]], ref: np.ndarray, emulated: np.ndarray, out_scales: Sequence[int], override: float | None
) -> list[OutputTolerance]:
    """Each output's tolerance: from the fixed-point emulation at the circuit's scales, or ``override``."""
    if len(out_scales) != len(outputs):
        raise ConfigError(f"the circuit has {len(out_scales)} outputs, the model {len(outputs)}: they are not the same model")
    tols = []
    for (name, _), r, e, s in zip(outputs, _split(ref, outputs), _split(emulated, outputs), out_scales, strict=True):
        e_fx = float(np.max(np.abs(e - r))) if r.size else 0.0
        floor = FLOOR_LSB * 2.0 ** -int(s)
        value = override if override is not None else derive_tolerance(e_fx, int(s))
        tols.append(OutputTolerance(name, value, "override" if override is not None else "derived", int(s), e_fx, MARGIN, floor))
    return tols


def rows_for(
    runtime: str, got: np.ndarray, ref: np.ndarray, outputs: list[tuple[str, int]], tols: Sequence[float]
) -> list[Row]:
    """One row per output of ``runtime``'s values against the reference, judged by ``tols``."""
    if got.shape != ref.shape:
        return [Row(runtime, name, "error", f"output shape {list(got.shape)} differs from the reference's {list(ref.shape)}",
                    within=False) for name, _ in outputs]
    return [
        _score(runtime, name, g, r, t)
        for (name, _), g, r, t in zip(outputs, _split(got, outputs), _split(ref, outputs), tols, strict=True)
    ]


def _float_runtimes(
    onnx_path: Path, info: ModelInfo, feed: Feed, ref: np.ndarray, outputs: list[tuple[str, int]],
    torch_spec: str | None, torch_weights: Path | None, progress: Callable[[str], None],
) -> tuple[list[Row], dict[str, np.ndarray], dict[str, float]]:
    rows: list[Row] = []
    values: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    ftols = [float_tolerance(r) for r in _split(ref, outputs)]
    # tract: optional, never fatal
    progress("running tract")
    t = time.perf_counter()
    try:
        tv = run_tract(onnx_path, info, feed)
    except ImportError:
        rows += [Row("tract", name, "not installed", "pip install tract (a second ONNX runtime)") for name, _ in outputs]
    except Exception as e:  # tract raises its own error type from native code
        rows += [Row("tract", name, "error", f"tract could not run the model: {str(e).splitlines()[0][:160]}") for name, _ in outputs]
    else:
        seconds["tract"] = time.perf_counter() - t
        values["tract"] = tv
        rows += rows_for("tract", tv, ref, outputs, ftols)
    # torch: only when named, and then its failures are the user's to fix
    if torch_spec is None:
        if torch_weights is not None:
            raise ConfigError("--weights needs --torch MODULE.py:FACTORY")
        rows += [Row("torch", name, "not given", "pass --torch MODULE.py:FACTORY to compare the source module") for name, _ in outputs]
    else:
        progress(f"running torch module {torch_spec}")
        t = time.perf_counter()
        tv = run_torch(torch_spec, torch_weights, [feed[s.name] for s in info.inputs], len(ref))
        seconds["torch"] = time.perf_counter() - t
        values["torch"] = tv
        rows += rows_for("torch", tv, ref, outputs, ftols)
    return rows, values, seconds


# Entry points


def load_labels(path: str | Path, n: int) -> np.ndarray | None:
    """Integer labels stored beside the input (``y``/``labels`` in an .npz or JSON object), if any."""
    p = Path(path)
    labels: Any = None
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                labels = next((z[k] for k in LABEL_KEYS if k in z), None)
        elif p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                labels = next((data[k] for k in LABEL_KEYS if k in data), None)
    except (OSError, ValueError):
        return None
    if labels is None:
        return None
    arr = np.asarray(labels).reshape(-1)
    if len(arr) != n:
        raise InputError(f"{p}: {len(arr)} labels for {n} samples")
    return arr.astype(np.int64)


def input_feed(raw: Any, specs: Sequence[Any], *, source: str = "input") -> Feed:
    """What :func:`zkml.inputs.read_raw` returned, as a feed of ``specs`` (every format ``zkml prove`` reads).

    Labels stored beside named arrays (``y``/``labels`` …, see :func:`load_labels`)
    are not inputs: they are set aside unless an input has that name.

    Raises:
        InputError: an input missing or unknown, a shape or dtype that does not fit.
    """
    if isinstance(raw, dict):
        names = {s.name for s in specs}
        raw = {k: v for k, v in raw.items() if k in names or k not in LABEL_KEYS}
    return to_feed(raw, specs, source=source)


def load_input(path: str | Path, specs: Sequence[Any]) -> Feed:
    """Read an input file into a feed of ``specs`` (see :func:`input_feed`).

    Raises:
        InputError: missing/unreadable file, or contents that do not fit ``specs``.
    """
    return input_feed(read_raw(path), specs, source=str(path))


def _describe(specs: Sequence[Any]) -> str:
    return ", ".join(f"{s.name} {s.dtype}[{', '.join(map(str, s.shape))}]" for s in specs) or "no inputs"


def _same_inputs(expected: Sequence[Any], info: ModelInfo, who: str, onnx_path: str | Path) -> None:
    """The ONNX takes the inputs the circuit (or bundle) was made for: names, sample shapes, dtypes."""
    if [(s.name, tuple(s.shape), s.dtype) for s in expected] != [(s.name, tuple(s.shape), s.dtype) for s in info.inputs]:
        raise ConfigError(f"{who} takes {_describe(expected)}; {onnx_path} takes {_describe(info.inputs)}")


def _inputs_of(specs: Sequence[Any]) -> list[tuple[str, tuple[int, ...], str]]:
    return [(s.name, tuple(int(d) for d in s.shape), s.dtype) for s in specs]


def compare_model(
    onnx_path: str | Path,
    circuit: Circuit,
    samples: Any,
    *,
    labels: np.ndarray | None = None,
    torch_spec: str | None = None,
    torch_weights: Path | None = None,
    tolerance: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Comparison:
    """Run ``samples`` through onnxruntime, the circuit (witness), tract and torch, and judge each output.

    ``samples``: a feed (input name -> ``[n, *shape]``), what :func:`zkml.inputs.read_raw`
    returned, or one array for a one-input model. It is checked as ``zkml prove``
    checks it (:func:`zkml.prove.check_samples`), and the same feed goes to every runtime.

    Raises:
        ModelError: the ONNX (or torch module) cannot be run.
        InputError: the samples do not fit the circuit (input names, shapes, dtypes, range).
        ConfigError: bad tolerance, circuit and model with different inputs or outputs,
            or ``--torch`` for a model without exactly one input.
        CircuitError: ezkl could not compute the witness.
    """
    from zkml.calibrate import circuit_outputs
    from zkml.prove import check_samples

    tol_override = check_tolerance(tolerance)
    info = load_model(onnx_path, check_ops=False)
    checks: list[Check] = []
    # Inputs validation
    _same_inputs(circuit.inputs, info, "the circuit", onnx_path)
    feed = check_samples(circuit, samples)
    n = feed_len(feed)
    checks.append(Check(
        "model digest", info.sha256 == circuit.model_sha256,
        f"circuit {circuit.circuit_id} was built from model {circuit.model_sha256[:16]}…"
        + (", the same ONNX" if info.sha256 == circuit.model_sha256 else f", not from {onnx_path} ({info.sha256[:16]}…): the ONNX changed after compiling"),
    ))
    # Procedure
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(f"running onnxruntime on {n} sample(s)")
    ref, outputs = run_onnxruntime(Path(onnx_path), info, feed)
    seconds[REFERENCE] = time.perf_counter() - t
    settings = circuit.settings
    ra = settings["run_args"]
    emulated = emulate_fixed_point(Path(onnx_path), info, feed, int(ra["input_scale"]), int(ra["param_scale"]))
    tols = tolerances_for(outputs, ref, emulated, settings["model_output_scales"], tol_override)
    progress(f"computing circuit witnesses ({n} sample(s), batch {circuit.batch_size})")
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zkml-compare-") as tmp:
        circ = circuit_outputs(circuit.compiled, settings, feed, Path(tmp), circuit.inputs)
    seconds["circuit"] = time.perf_counter() - t
    values = {REFERENCE: ref, "circuit": circ}
    rows = rows_for("circuit", circ, ref, outputs, [x.value for x in tols])
    frows, fvalues, fseconds = _float_runtimes(Path(onnx_path), info, feed, ref, outputs, torch_spec, torch_weights, progress)
    cal = circuit.calibration.get("report", {}).get("max_abs_error")
    return Comparison(
        mode="model", model_path=str(onnx_path), model_sha256=info.sha256, circuit_id=circuit.circuit_id,
        samples=n, outputs=outputs, rows=rows + frows, checks=checks, tolerances=tols,
        values={**values, **fvalues}, labels=labels, calibration_error=cal, seconds={**seconds, **fseconds},
        inputs=_inputs_of(circuit.inputs),
    )


def _bundle_settings(bundle: Bundle) -> dict[str, Any]:
    """The scales the bundle claims, as settings (when the circuit's own settings are not at hand)."""
    s = bundle.circuit.input_scale
    return {"run_args": {"input_scale": s}, "model_input_scales": [s if i.kind == "float" else 0 for i in bundle.model.all_inputs]}


def _instance_mismatch(bundle: Bundle, values: list[Any], artifacts: Any) -> str | None:
    """Where the proofs' public instances differ from what ``values`` as the bundle's input implies (None: nowhere).

    The instance column is derived by :mod:`zkml.verify` itself (one layout, one place):
    each input quantized (float inputs at the input scale, int/bool at 0), raw when
    public, one Poseidon hash per input when hashed.
    """
    from zkml.circuit import Artifacts
    from zkml.verify import expected_column, ClaimFailed

    probe = replace(bundle, input_values=values, input_sha256=sha256_json(values))
    settings = json.loads(Path(artifacts.settings).read_text()) if artifacts is not None else _bundle_settings(bundle)
    art = artifacts if artifacts is not None else Artifacts(Path(), Path(), Path())  # only its weights commitment is read
    for i, e in enumerate(bundle.proofs):
        try:
            want = expected_column(probe, e, settings, art)
        except ClaimFailed as f:
            return f"proof {i} ({f})"
        col = e.instances[0] if e.instances else []
        if len(col) != len(want):
            return f"proof {i} ({len(col)} public instances, the circuit has {len(want)})"
        j = next((j for j, (a, b) in enumerate(zip(col, want, strict=True)) if b is not None and a != b), None)
        if j is not None:
            return f"proof {i} (public instance {j})"
    return None


def input_commitment(bundle: Bundle, samples: Any, artifacts: Any = None) -> Check:
    """Does ``samples`` (a feed of the bundle's inputs, or one array for a one-input model) match the bundle's input?

    For a public or hashed input the proofs' public instances decide: the
    quantized input itself when public, its Poseidon hash (one per input) when
    hashed. For a private input only the bundle's input sha256 (what
    ``zkml prove`` records of revealed values) can match.
    ``artifacts``: the circuit's (for its settings' input scales); default: the scales the bundle names.

    Raises:
        InputError: ``samples`` do not fit the bundle's inputs (names, shapes, dtypes).
    """
    specs = bundle.model.all_inputs
    feed = to_feed(samples, specs, source="input")
    n = feed_len(feed)
    if n != bundle.samples:
        return Check("input commitment", False, f"the input has {n} sample(s), the bundle proves {bundle.samples}")
    values = revealed_values(feed, specs)
    vis = bundle.visibility.input
    if vis not in ("public", "hashed"):
        ok = bundle.input_sha256 is not None and sha256_json(values) == bundle.input_sha256
        return Check("input commitment", ok, "the input matches the bundle's input sha256 (the input is private: no proof binds it)"
                     if ok else "the input does not match the bundle's input sha256 (and the input is private)")
    what = "quantized public input" if vis == "public" else "Poseidon input commitment"
    where = _instance_mismatch(bundle, values, artifacts)
    if where is not None:
        return Check("input commitment", False, f"the input does not match the {what} of {where}")
    return Check("input commitment", True, f"the input matches the {what} of every proof")


def compare_bundle(
    bundle: Bundle,
    *,
    onnx_path: str | Path | None = None,
    circuit: Circuit | None = None,
    artifacts: Any = None,
    samples: Any = None,
    labels: np.ndarray | None = None,
    torch_spec: str | None = None,
    torch_weights: Path | None = None,
    tolerance: float | None = None,
    verify: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> Comparison:
    """Re-execute a proof bundle and judge its proven outputs against onnxruntime.

    ``onnx_path``: the ONNX the bundle names (default: the circuit folder's copy).
    ``circuit``: the bundle's circuit, for its ONNX copy and calibration record.
    ``artifacts``: :class:`zkml.verify.Artifacts` to verify the proofs with
    (default: from ``circuit``); without them, or with ``verify=False`` (the
    caller verified already), the proofs are reported unchecked.
    ``samples``: the input (a feed, what :func:`zkml.inputs.read_raw` returned,
    or one array for a one-input model), when the bundle does not reveal it; it
    must match the bundle's input commitment (see :func:`input_commitment`).
    A revealed input is checked the same way (and against its own sha256).

    Raises:
        ConfigError: no ONNX to run, outputs private, bad tolerance, an ONNX with
            other inputs than the bundle's, ``--torch`` for a model without one input.
        InputError: no input available, or ``samples`` do not fit or do not match the
            commitment (the user named the wrong input: not a verdict on the bundle).
        ModelError: the ONNX cannot be run.
    """
    from zkml.verify import verify_bundle

    tol_override = check_tolerance(tolerance)
    checks: list[Check] = []
    specs = bundle.model.all_inputs
    # The outputs to judge
    if bundle.outputs is None:
        raise ConfigError("the bundle's outputs are private: there is nothing to compare")
    proven = np.asarray(bundle.outputs, dtype=np.float64)
    # The model to re-execute
    if onnx_path is None:
        if circuit is None:
            raise ConfigError(
                f"the bundle's circuit {bundle.circuit_id} is not in the store: pass --model MODEL.onnx "
                f"(the ONNX the bundle names, sha256 {bundle.model_sha256[:16]}…)"
            )
        onnx_path = circuit.onnx
    info = load_model(onnx_path, check_ops=False)
    checks.append(Check(
        "model digest", info.sha256 == bundle.model_sha256,
        f"{onnx_path} is the model the bundle names ({info.sha256[:16]}…)" if info.sha256 == bundle.model_sha256
        else f"{onnx_path} (sha256 {info.sha256[:16]}…) is not the model the bundle names ({bundle.model_sha256[:16]}…)",
    ))
    if artifacts is None and circuit is not None:
        artifacts = circuit.artifacts()
    # The input
    revealed = bundle.input_values
    if samples is not None:
        feed = to_feed(samples, specs, source="--input")
        match = input_commitment(bundle, feed, artifacts)
        if not match.ok:
            raise InputError(f"--input is not the bundle's input: {match.detail}")
        checks.append(match)
    elif revealed is not None:
        feed = feed_from_revealed(revealed, specs)
        if sha256_json(revealed) != bundle.input_sha256:
            checks.append(Check("input commitment", False, "the bundle's revealed input does not match its own input sha256"))
        else:
            match = input_commitment(bundle, feed, artifacts)
            checks.append(Check("input commitment", match.ok, "the input is revealed in the bundle and " + match.detail.removeprefix("the input ")))
    else:
        raise InputError("the bundle does not reveal its input: pass --input FILE (it must match the bundle's input commitment)")
    _same_inputs(specs, info, "the bundle's model", onnx_path)
    # The proofs
    if artifacts is not None and verify:
        progress(f"verifying {len(bundle.proofs)} proof(s)")
        v = verify_bundle(bundle, artifacts)
        checks.append(Check("proofs", v.valid, f"{len(bundle.proofs)} proof(s) verify and carry the reported outputs"
                            if v.valid else f"the bundle does not verify: {v.reason}"))
    elif verify:
        checks.append(Check("proofs", None, "not verified here (the circuit's public artifacts were not found): run zkml verify"))
    # Procedure
    n = feed_len(feed)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(f"re-executing {n} sample(s) with onnxruntime")
    ref, outputs = run_onnxruntime(Path(onnx_path), info, feed)
    seconds[REFERENCE] = time.perf_counter() - t
    in_scale = bundle.circuit.input_scale
    param_scale = in_scale
    if artifacts is not None:
        param_scale = int(json.loads(Path(artifacts.settings).read_text())["run_args"]["param_scale"])
    emulated = emulate_fixed_point(Path(onnx_path), info, feed, in_scale, param_scale)
    tols = tolerances_for(outputs, ref, emulated, list(bundle.circuit.output_scales), tol_override)
    if proven.shape != ref.shape:
        rows = [Row("circuit", name, "error", f"the bundle reports outputs of shape {list(proven.shape)}, the model gives "
                    f"{list(ref.shape)}", within=False) for name, _ in outputs]
    else:
        rows = rows_for("circuit", proven, ref, outputs, [x.value for x in tols])
    frows, fvalues, fseconds = _float_runtimes(Path(onnx_path), info, feed, ref, outputs, torch_spec, torch_weights, progress)
    cal = circuit.calibration.get("report", {}).get("max_abs_error") if circuit is not None else None
    return Comparison(
        mode="bundle", model_path=str(onnx_path), model_sha256=info.sha256, circuit_id=bundle.circuit_id,
        samples=n, outputs=outputs, rows=rows + frows, checks=checks, tolerances=tols,
        values={REFERENCE: ref, "circuit": proven, **fvalues}, labels=labels, calibration_error=cal,
        seconds={**seconds, **fseconds}, inputs=_inputs_of(specs),
    )
