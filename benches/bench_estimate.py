"""Estimate bench: zkml's resource estimate (``zkml/estimate.py``) against measured setup + prove, and a re-fit.

For each model (zoo models and the two digits models): a child process compiles it with zkml
(default options, its own store); a second, fresh child runs ``ezkl.setup`` + ``gen_witness`` +
``ezkl.prove`` on that circuit's files and reports their wall time and the child's peak RSS. The
estimate is computed from the circuit's settings. Then the constants are re-fitted by least
squares (see :func:`refit`) and compared with the constants zkml has now.

    .venv/bin/python benches/bench_estimate.py [--only mlp,conv2d] [--out benches/results/bench_estimate.json]

Prints a table and writes JSON. Needs an idle machine (it times setup and proving).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

DEFAULT = ("mlp,conv1d,conv2d,maxpool,layernorm,gelu,softmax,attention,lstm,gru,residual,embedding,topk,"
           "reduce_ops,digits_mlp,digits_cnn")


def _compile(name: str, work: Path) -> dict[str, object]:
    import numpy as np

    from zkml.calibrate import CircuitOptions
    from zkml.circuit import compile_model
    from zkml.inputs import load_samples
    from zkml.store import Store

    st = Store(work / "store")
    if name.startswith("digits_"):
        onnx = REPO / "models" / f"{name}.onnx"
        shape = (64,) if name == "digits_mlp" else (1, 8, 8)
        feed: object = load_samples(REPO / "models" / "digits_calibration.json", shape)
        first = {"input": np.asarray(feed)[:1]}
    else:
        import zoo

        m = zoo.by_name(name)
        onnx = work / f"{name}.onnx"
        feed = m.build(onnx)
        first = {k: v[:1] for k, v in feed.items()}  # type: ignore[union-attr]
    c, _ = compile_model(onnx, feed, CircuitOptions(**zoo_options(name)), store=st, max_seconds=120)
    from zkml.inputs import to_ezkl_json
    from zkml.prove import check_samples

    data = work / "input.json"
    data.write_text(json.dumps(to_ezkl_json(check_samples(c, first if len(c.inputs) > 1 else next(iter(first.values()))),
                                            c.inputs)))
    return {"folder": str(c.folder), "srs": str(c.srs.path), "settings": json.loads(c.settings_path.read_text()),
            "input": str(data)}


def zoo_options(name: str) -> dict[str, object]:
    if name.startswith("digits_"):
        return {}
    import zoo

    return dict(zoo.by_name(name).options)


def _measure(folder: str, srs: str, data: str) -> dict[str, object]:
    import resource
    import time

    import ezkl

    from zkml.util import native_output_captured

    f = Path(folder)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        with native_output_captured():
            t0 = time.perf_counter()
            ezkl.setup(str(f / "model.compiled"), str(t / "vk"), str(t / "pk"), srs)
            t_setup = time.perf_counter() - t0
            ezkl.gen_witness(data, str(f / "model.compiled"), str(t / "w.json"))
            t0 = time.perf_counter()
            ezkl.prove(str(t / "w.json"), str(f / "model.compiled"), str(t / "pk"), str(t / "p.json"), srs_path=srs)
            t_prove = time.perf_counter() - t0
    return {"setup_s": t_setup, "prove_s": t_prove, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def refit(rows: list[dict[str, object]], E: object) -> dict[str, object]:
    """Least-squares constants for the estimate's form, next to the constants it has now.

    Work per row = the committed columns plus ``WORK_COLUMNS`` (selectors, fixed and lookup tables,
    permutation: FFT work a column count from the settings does not see); work cells = 2^k × that.
    Time: seconds = S0 + S_PER_MCELL × work Mcells / cores^0.7 (affine least squares; WORK_COLUMNS by grid
    search). Memory: GB = BASE_GB + GB_PER_MCELL × work Mcells (slope by least squares, base raised until no
    measured point is above the estimate: it is a bound to refuse early with, better high than low).
    """
    import os

    cores = max(1, min(os.cpu_count() or 1, 2))
    secs = [float(r["seconds"]) for r in rows]  # type: ignore[arg-type]
    mem = [float(r["peak_rss_gb"]) for r in rows]  # type: ignore[arg-type]

    def work(extra: float) -> list[float]:
        return [(1 << int(r["logrows"])) * (int(r["columns"]) + extra) / 1e6 for r in rows]  # type: ignore[call-overload]

    def affine(xs: list[float], ys: list[float]) -> tuple[float, float]:
        mx, my = statistics.mean(xs), statistics.mean(ys)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        return my - b * mx, b

    def sse(extra: float) -> float:
        xs = [x / cores ** 0.7 for x in work(extra)]
        a, b = affine(xs, secs)
        return sum((a + b * x - y) ** 2 for x, y in zip(xs, secs, strict=True))

    extra = min(range(0, 121), key=sse)
    xs = [x / cores ** 0.7 for x in work(extra)]
    s0, s = affine(xs, secs)
    wm = work(extra)
    _, g = affine(wm, mem)
    base = max(y - g * x for x, y in zip(wm, mem, strict=True))

    def rel(pred: list[float], meas: list[float]) -> float:
        return statistics.median(abs(p - m) / m for p, m in zip(pred, meas, strict=True))

    def report(constants: dict[str, float], t_pred: list[float], m_pred: list[float]) -> dict[str, object]:
        return {"constants": constants, "median_rel_error_seconds": rel(t_pred, secs),
                "median_rel_error_memory": rel(m_pred, mem),
                "underestimates_memory": sum(p < m - 1e-9 for p, m in zip(m_pred, mem, strict=True))}

    old = report({n: float(getattr(E, n)) for n in ("WORK_COLUMNS", "S0", "S_PER_MCELL", "BASE_GB", "GB_PER_MCELL")
                  if hasattr(E, n)},
                 [float(r["est_seconds"]) for r in rows], [float(r["est_memory_gb"]) for r in rows])  # type: ignore[arg-type]
    new = report({"WORK_COLUMNS": extra, "S0": s0, "S_PER_MCELL": s, "BASE_GB": base, "GB_PER_MCELL": g},
                 [s0 + s * x for x in xs], [base + g * x for x in wm])
    return {"cores": cores, "current": old, "refit": new}


def _child(args: list[str], timeout: float = 900) -> dict[str, object]:
    r = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"child {args[0]} failed: {r.stderr[-1500:]}")
    return dict(json.loads(lines[-1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=DEFAULT)
    ap.add_argument("--out", type=Path, default=REPO / "benches" / "results" / "bench_estimate.json")
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        res = _compile(rest[0], Path(rest[1])) if kind == "compile" else _measure(*rest)
        print(json.dumps(res), flush=True)
        return 0

    from zkml import estimate as E

    rows = []
    print(f"{'model':<12} {'logrows':>7} {'Mcells':>7} {'est s':>6} {'setup+prove s':>13} {'est GB':>6} {'peak GB':>7}")
    for name in [x for x in a.only.split(",") if x]:
        with tempfile.TemporaryDirectory(prefix="zkml-bench-est-") as tmp:
            c = _child(["compile", name, tmp])
            m = _child(["measure", str(c["folder"]), str(c["srs"]), str(c["input"])])
        est = E.estimate(c["settings"])  # type: ignore[arg-type]
        row = {"model": name, "logrows": est.logrows, "columns": est.columns, "mcells": est.cells / 1e6,
               "est_seconds": est.seconds, "est_memory_gb": est.memory_gb, **m,
               "seconds": float(m["setup_s"]) + float(m["prove_s"])}  # type: ignore[arg-type]
        rows.append(row)
        print(f"{name:<12} {row['logrows']:>7} {row['mcells']:>7.2f} {row['est_seconds']:>6.1f} {row['seconds']:>13.1f} "
              f"{row['est_memory_gb']:>6.2f} {row['peak_rss_gb']:>7.2f}", flush=True)
    fit = refit(rows, E)
    for k in ("current", "refit"):
        f = fit[k]
        print(f"{k:>7}: {', '.join(f'{n} {v:.4g}' for n, v in f['constants'].items())}; median error: time "
              f"{100 * f['median_rel_error_seconds']:.0f}%, memory {100 * f['median_rel_error_memory']:.0f}% "
              f"(memory under-estimated for {f['underestimates_memory']}/{len(rows)})")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"rows": rows, "fit": fit}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
