"""``zkml compare``: one feed (every model input) through onnxruntime, the circuit, tract and torch; or re-execute a proof bundle.

Exit codes: 0 every runtime agrees within tolerance, 1 a mismatch (the table
says which, with numbers), 2 bad arguments or unusable files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import refuse, JsonOpt, StoreOpt, emit, progress, run

Target = Annotated[str, typer.Argument(help="An .onnx model, a circuits/*.toml recipe, a circuit id/folder, or a proof bundle (.json).")]
InputOpt = Annotated[Path | None, typer.Option("--input", "-i", help="Input samples: ezkl JSON (one flattened list per input), a JSON object or .npz keyed by input name, or for one input a .npy/array (labels y may ride along). Required for a model; for a bundle only when it does not reveal its input.")]
CircuitOpt = Annotated[str | None, typer.Option("--circuit", help="The circuit to compare against (id, folder or recipe); default: compile/find the model's own.")]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="Bundle mode: the ONNX the bundle names (default: the copy in its circuit folder).")]
CalibrationOpt = Annotated[Path | None, typer.Option("--calibration", "-c", help="Calibration data, if the model's circuit must be compiled.")]
TorchOpt = Annotated[str | None, typer.Option("--torch", help="Also run the source torch module: MODULE.py:FACTORY (called with every model input, in the ONNX input order).")]
WeightsOpt = Annotated[Path | None, typer.Option("--weights", help="A state_dict file to load into the --torch module.")]
TolOpt = Annotated[float | None, typer.Option("--tolerance", help="Absolute circuit tolerance (default: derived from the circuit's scale).")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG of float vs circuit outputs and the error distribution.")]


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.4g}"


def table(c: Any) -> str:
    """The human summary of a :class:`zkml.compare.Comparison`."""
    from zkml.compare import REFERENCE

    head = (f"compare {Path(c.model_path).name} (sha256 {c.model_sha256[:12]}…) against circuit {c.circuit_id}"
            f" on {c.samples} sample(s)" + (" [proof bundle]" if c.mode == "bundle" else ""))
    if len(c.inputs) > 1 or any(not dt.startswith("float") for _, _, dt in c.inputs):
        head += "\n  inputs: " + ", ".join(f"{n} {dt}[{', '.join(map(str, sh))}]" for n, sh, dt in c.inputs)
    cols = ("runtime", "output", "max abs", "max rel", "argmax", "tolerance", "verdict")
    lines = [cols]
    for name, _ in c.outputs:
        lines.append((REFERENCE, name, "—", "—", "—", "—", "reference"))
    for r in c.rows:
        verdict = r.status if r.status != "ok" else ("ok" if r.within else "MISMATCH")
        lines.append((r.runtime, r.output, _fmt(r.max_abs_error), _fmt(r.max_rel_error), _fmt(r.argmax_agreement, True),
                      _fmt(r.tolerance), verdict))
    widths = [max(len(row[i]) for row in lines) for i in range(len(cols))]
    out = [head] + ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    for t in c.tolerances:
        how = ("given with --tolerance" if t.source == "override"
               else f"= {t.margin:g} × {t.emulated_error:.4g} (fixed-point emulation at the circuit's scale) + {t.floor:.4g} (4 LSB at scale {t.output_scale})")
        out.append(f"tolerance '{t.output}': {t.value:.4g} {how}")
    if c.calibration_error is not None:
        out.append(f"calibration recorded max abs error {c.calibration_error:.4g} (context only)")
    if c.labels is not None:
        acc = ", ".join(f"{k} {100 * a:.1f}%" for k in c.values if (a := c.accuracy(k)) is not None)
        out.append(f"label accuracy: {acc}")
    for ch in c.checks:
        mark = {True: "ok", False: "FAIL", None: "skipped"}[ch.ok]
        out.append(f"check {ch.name}: {mark} — {ch.detail}")
    notes = [r for r in c.rows if r.status not in ("ok",) and r.detail]
    for r in {(r.runtime, r.detail): r for r in notes}.values():
        out.append(f"{r.runtime}: {r.status} ({r.detail})")
    out.append("verdict: PASS" if c.ok else f"verdict: FAIL — {c.failures[0]}")
    return "\n".join(out)


def compare(
    target: Target,
    input: InputOpt = None,
    circuit: CircuitOpt = None,
    model: ModelOpt = None,
    calibration: CalibrationOpt = None,
    torch: TorchOpt = None,
    weights: WeightsOpt = None,
    tolerance: TolOpt = None,
    plot: PlotOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare runtimes on the same input (float vs circuit vs tract vs torch); exit 1 on a mismatch."""
    from zkml.bundle import Bundle
    from zkml.compare import check_tolerance, compare_bundle, compare_model, input_feed, load_labels
    from zkml.compare import plot as draw
    from zkml.errors import ConfigError, InputError
    from zkml.inputs import feed_len, read_raw
    from zkml.targets import resolve_circuit
    from zkml.recipe import load_recipe
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        check_tolerance(tolerance)
        st = Store(store)
        raw = read_raw(input) if input is not None else None
        if target.endswith(".json"):
            # Bundle mode
            b = Bundle.load(target)
            c = None
            if circuit is not None:
                c, _ = resolve_circuit(circuit, st, progress=report)
            elif st.circuit_dir(b.circuit_id).is_dir():
                c, _ = resolve_circuit(str(st.circuit_dir(b.circuit_id)), st)
            labels = load_labels(input, b.samples) if input is not None else None
            feed = input_feed(raw, b.model.all_inputs, source=str(input)) if raw is not None else None
            return compare_bundle(b, onnx_path=model, circuit=c, samples=feed, labels=labels, torch_spec=torch,
                                  torch_weights=weights, tolerance=tolerance, progress=report)
        # Model mode
        if model is not None:
            raise ConfigError("--model is for a proof bundle; for a model, name the ONNX as the argument")
        if raw is None:
            raise InputError("comparing a model needs --input FILE")
        p = Path(target)
        if p.suffix == ".onnx":
            onnx_path = p
        elif p.suffix == ".toml":
            onnx_path = load_recipe(p).model
        else:
            onnx_path = None
        c, _ = resolve_circuit(circuit or target, st, calibration=calibration, progress=report)
        onnx_path = onnx_path or c.onnx
        feed = input_feed(raw, c.inputs, source=str(input))
        labels = load_labels(input, feed_len(feed)) if input is not None else None
        return compare_model(onnx_path, c, feed, labels=labels, torch_spec=torch, torch_weights=weights,
                             tolerance=tolerance, progress=report)

    result = run(go)
    if plot is not None:
        run(lambda: draw(result, plot))
    data = result.as_dict()
    if plot is not None:
        data["plot"] = str(plot)
    emit(json_out, data, table(result) + (f"\nplot written to {plot}" if plot is not None else ""))
    if not result.ok:
        from zkml.errors import first_failure

        raise refuse(first_failure(list(result.failures), "mismatch"))


def register(app: typer.Typer) -> None:
    """Attach ``zkml compare`` to the root app."""
    app.command("compare")(compare)
