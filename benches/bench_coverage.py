"""Coverage bench: the model zoo through raw ezkl and through zkml, in one run.

Raw ezkl, as its users run it: gen_settings -> calibrate_settings("resources")
-> compile -> SRS -> setup -> witness -> prove -> verify. zkml: compile_model
(coverage, preprocessing when ezkl refuses, its own calibration) -> prove ->
verify. Each model and path runs in its own subprocess with a timeout (ezkl
prove can hang: upstream issue 1029); both paths cache SRS files by size.
Prints a table and writes JSON (per model: status, logrows, seconds; totals,
median time ratio raw/zkml over models both prove).

    timeout 1200 .venv/bin/python benches/bench_coverage.py [--only a,b] [--out benches/results/coverage.json] [--resume]

``--resume`` keeps the rows of an earlier (cut-off) run in ``--out`` and runs only the models it lacks,
so a long run can be done in parts; the summary covers all rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def _line(msg: str) -> str:
    return (msg.strip().splitlines() or ["?"])[0][:140]


def raw_one(onnx: Path, work: Path, srs_dir: Path) -> dict[str, object]:
    """Raw ezkl, calibrated path, for one model."""
    import ezkl

    from zkml.util import native_output_captured

    t0 = time.perf_counter()
    s, c, vk, pk = work / "settings.json", work / "model.compiled", work / "vk.key", work / "pk.key"
    cal, inp, wit, proof = work / "cal.json", work / "input.json", work / "witness.json", work / "proof.json"
    step = "gen_settings"
    try:
        with native_output_captured():
            ezkl.gen_settings(str(onnx), str(s))
            step = "calibrate_settings"
            ezkl.calibrate_settings(str(cal), str(onnx), str(s), "resources")
            step = "compile"
            ezkl.compile_circuit(str(onnx), str(c), str(s))
            logrows = int(json.loads(s.read_text())["run_args"]["logrows"])
            srs = srs_dir / f"k{logrows}.srs"
            if not srs.is_file():
                step = "gen_srs"
                ezkl.gen_srs(str(srs), logrows)
            step = "setup"
            ezkl.setup(str(c), str(vk), str(pk), srs_path=str(srs))
            step = "witness"
            ezkl.gen_witness(str(inp), str(c), str(wit))
            step = "prove"
            ezkl.prove(str(wit), str(c), str(pk), str(proof), srs_path=str(srs))
            step = "verify"
            ok = ezkl.verify(str(proof), str(s), str(vk), srs_path=str(srs))
    except BaseException as e:  # ezkl raises RuntimeError, and panics
        if isinstance(e, KeyboardInterrupt):
            raise
        return {"status": f"fail ({step}: {_line(str(e))})", "seconds": time.perf_counter() - t0}
    return {"status": "ok" if ok else "fail (verify false)", "logrows": logrows, "seconds": time.perf_counter() - t0}


def zkml_one(onnx: Path, feed_npz: Path, store_dir: Path, options: dict[str, object]) -> dict[str, object]:
    """zkml compile -> prove -> verify for one model."""
    import numpy as np

    from zkml.calibrate import CircuitOptions
    from zkml.circuit import compile_model
    from zkml.errors import ZkmlError
    from zkml.prove import prove
    from zkml.store import Store
    from zkml.verify import verify

    t0 = time.perf_counter()
    with np.load(feed_npz) as z:
        feed = {k: z[k] for k in z.keys()}
    try:
        st = Store(store_dir)
        c, _ = compile_model(onnx, feed, CircuitOptions(**options), store=st, max_seconds=120)  # type: ignore[arg-type]
        b = prove(c, {k: v[:1] for k, v in feed.items()}, timeout=240)
        v = verify(b, st)
    except ZkmlError as e:
        return {"status": f"fail ({_line(e.message)})", "seconds": time.perf_counter() - t0}
    pre = c.preprocessing
    return {"status": "ok" if v.valid else f"fail (invalid: {v.reason})", "logrows": c.logrows,
            "seconds": time.perf_counter() - t0, "preprocessed": list(pre["steps"]) if pre else None}


def _child(args: list[str], timeout: float) -> dict[str, object]:
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"fail (timeout {timeout:.0f}s)", "seconds": time.perf_counter() - t0}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"status": f"fail (crashed: exit {out.returncode})", "seconds": time.perf_counter() - t0}
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--out", type=Path, default=REPO / "benches" / "results" / "coverage.json")
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument("--resume", action="store_true",
                    help="keep the rows already in --out (a cut-off or partial run) and run only the other models")
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "raw":
            res = raw_one(Path(rest[0]), Path(rest[1]), Path(rest[2]))
        else:
            res = zkml_one(Path(rest[0]), Path(rest[1]), Path(rest[2]), json.loads(rest[3]))
        print(json.dumps(res), flush=True)
        return 0

    import numpy as np
    import zoo

    from zkml.inputs import to_ezkl_json
    from zkml.onnx_check import load_model

    only = {x for x in a.only.split(",") if x}
    rows = []
    if a.resume and a.out.is_file():
        rows = [r for r in json.loads(a.out.read_text()).get("rows", []) if not only or r["model"] in only]
        print(f"resuming: {len(rows)} model(s) kept from {a.out}", flush=True)
    done = {r["model"] for r in rows}
    with tempfile.TemporaryDirectory(prefix="zkml-bench-coverage-") as tmp:
        root = Path(tmp)
        srs_raw = root / "srs-raw"
        srs_raw.mkdir()
        for m in zoo.models():
            if (only and m.name not in only) or m.name in done:
                continue
            d = root / m.name
            d.mkdir()
            onnx = d / "model.onnx"
            feed = m.build(onnx)
            np.savez(d / "feed.npz", **feed)
            # Raw ezkl's files: the same calibration data, the first sample as the input
            raw = d / "raw"
            raw.mkdir()
            info = load_model(onnx, check_ops=False)
            (raw / "cal.json").write_text(json.dumps(to_ezkl_json(feed, info.inputs)))
            (raw / "input.json").write_text(json.dumps(to_ezkl_json({k: v[:1] for k, v in feed.items()}, info.inputs)))
            r = _child(["--child", "raw", str(onnx), str(raw), str(srs_raw)], a.timeout)
            z = _child(["--child", "zkml", str(onnx), str(d / "feed.npz"), str(root / "store"), json.dumps(m.options)],
                       a.timeout)
            row = {"model": m.name, "covers": m.covers, "raw": r, "zkml": z}
            rows.append(row)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps({"partial": True, "rows": rows}, indent=1))  # a cut-off run keeps its rows
            print(f"{m.name:<20} raw {str(r['status'])[:60]:<60} {r.get('logrows', '-')!s:>3} {r['seconds']:7.1f}s | "
                  f"zkml {str(z['status'])[:40]:<40} {z.get('logrows', '-')!s:>3} {z['seconds']:6.1f}s", flush=True)
    both = [r for r in rows if r["raw"]["status"] == "ok" and r["zkml"]["status"] == "ok"]
    ratios = [r["raw"]["seconds"] / r["zkml"]["seconds"] for r in both]
    summary = {
        "models": len(rows),
        "raw_ok": sum(r["raw"]["status"] == "ok" for r in rows),
        "zkml_ok": sum(r["zkml"]["status"] == "ok" for r in rows),
        "zkml_only": [r["model"] for r in rows if r["zkml"]["status"] == "ok" and r["raw"]["status"] != "ok"],
        "raw_only": [r["model"] for r in rows if r["raw"]["status"] == "ok" and r["zkml"]["status"] != "ok"],
        "raw_seconds": sum(r["raw"]["seconds"] for r in rows),
        "zkml_seconds": sum(r["zkml"]["seconds"] for r in rows),
        "median_ratio_raw_over_zkml": statistics.median(ratios) if ratios else None,
        "min_ratio": min(ratios) if ratios else None,
        "slowest_vs_raw": min(both, key=lambda r: r["raw"]["seconds"] / r["zkml"]["seconds"])["model"] if both else None,
    }
    print(json.dumps(summary, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0 if not summary["raw_only"] else 1


if __name__ == "__main__":
    sys.exit(main())
