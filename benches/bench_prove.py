"""Benchmark: zkml prove (cold and warm) vs raw ezkl with its defaults, on the reference models.

    .venv/bin/python benches/bench_prove.py [--models mlp,cnn] [--out benches/out/bench_prove.json]

Every variant runs in its own subprocess so wall time and peak RSS are its own:
- ``raw``: ezkl defaults, gen_settings -> compile -> gen_srs (k from settings;
  offline there is no get_srs) -> setup -> gen_witness -> prove.
- ``cold``: ``zkml prove MODEL.onnx`` on an empty store (calibrate, compile,
  dev SRS, setup, prove).
- ``warm``: the same command again (cached circuit) vs raw ``ezkl.prove`` on
  the same circuit files.
- ``batch16``: a batch-16 circuit proving 16 samples in one proof, per inference.
Accuracy: test-set argmax agreement float vs circuit (ezkl witness) for the
zkml circuit and for the raw-defaults circuit.
Prints a table and writes JSON. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODELS = {
    "mlp": (REPO / "models" / "digits_mlp.onnx", (64,)),
    "cnn": (REPO / "models" / "digits_cnn.onnx", (1, 8, 8)),
}
CAL = REPO / "models" / "digits_calibration.json"
TEST = REPO / "models" / "digits_test.npz"
ZKML = str(Path(sys.executable).parent / "zkml")


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS MB of that child alone, stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves to get its own rusage
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(cmd)}\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024, stdout


# Child modes (run in a fresh interpreter)


def mode_raw(model: str, workdir: str, sample_json: str) -> None:
    """ezkl with its defaults; prints stage timings as JSON."""
    import ezkl

    w = Path(workdir)
    t: dict[str, float] = {}
    s = time.perf_counter()
    ezkl.gen_settings(model, str(w / "settings.json"))
    t["gen_settings"] = time.perf_counter() - s
    s = time.perf_counter()
    ezkl.compile_circuit(model, str(w / "model.compiled"), str(w / "settings.json"))
    t["compile"] = time.perf_counter() - s
    logrows = json.loads((w / "settings.json").read_text())["run_args"]["logrows"]
    s = time.perf_counter()
    ezkl.gen_srs(str(w / "kzg.srs"), logrows)
    t["srs"] = time.perf_counter() - s
    s = time.perf_counter()
    ezkl.setup(str(w / "model.compiled"), str(w / "vk.key"), str(w / "pk.key"), srs_path=str(w / "kzg.srs"))
    t["setup"] = time.perf_counter() - s
    s = time.perf_counter()
    ezkl.gen_witness(sample_json, str(w / "model.compiled"), str(w / "witness.json"))
    t["witness"] = time.perf_counter() - s
    s = time.perf_counter()
    ezkl.prove(str(w / "witness.json"), str(w / "model.compiled"), str(w / "pk.key"), str(w / "proof.json"), srs_path=str(w / "kzg.srs"))
    t["prove"] = time.perf_counter() - s
    assert ezkl.verify(str(w / "proof.json"), str(w / "settings.json"), str(w / "vk.key"), srs_path=str(w / "kzg.srs"))
    print(json.dumps({"stages": t, "logrows": logrows, "proof_bytes": len(json.loads((w / "proof.json").read_text())["hex_proof"]) // 2 - 1}))


def mode_lib_warm(model: str, store: str, sample_json: str) -> None:
    """zkml's library on a warm store: cache check + witness + worker prove (interpreter startup excluded)."""
    from zkml.inputs import read_raw
    from zkml.targets import resolve_circuit
    from zkml.prove import prove
    from zkml.store import Store

    raw = read_raw(sample_json)
    s = time.perf_counter()
    c, hit = resolve_circuit(model, Store(store), calibration=Path(CAL))
    b = prove(c, raw)
    print(json.dumps({"seconds": time.perf_counter() - s, "hit": hit, "prove": b.timings["prove_seconds"]}))


def mode_raw_prove(folder: str, witness: str, srs: str) -> None:
    """Raw ``ezkl.prove`` on a zkml circuit's files (the warm baseline)."""
    import ezkl

    f = Path(folder)
    with tempfile.TemporaryDirectory() as tmp:
        s = time.perf_counter()
        ezkl.prove(witness, str(f / "model.compiled"), str(f / "pk.key"), str(Path(tmp) / "p.json"), srs_path=srs)
        print(json.dumps({"prove": time.perf_counter() - s}))


# Parent


def test_agreement(compiled: Path, settings_path: Path, model: Path, shape: tuple[int, ...]) -> dict[str, float]:
    """Float vs circuit over the committed test set (batch from the settings)."""
    import numpy as np

    from zkml.calibrate import circuit_outputs, compare, float_outputs
    from zkml.onnx_check import load_model

    with np.load(TEST) as z:
        x, y = z["x"].reshape(-1, *shape), z["y"]
    settings = json.loads(settings_path.read_text())
    info = load_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        circ = circuit_outputs(compiled, settings, x, Path(tmp))
    ref = float_outputs(model, info, x, int(dict(settings["run_args"]["variables"]).get("batch_size", 1)))
    r = compare(ref, circ, y)
    return {"max_abs_error": r.max_abs_error, "mean_abs_error": r.mean_abs_error, "argmax_agreement": r.argmax_agreement,
            "accuracy_float": r.label_accuracy_float or 0.0, "accuracy_circuit": r.label_accuracy_circuit or 0.0}


def bench_model(name: str, workroot: Path) -> dict[str, Any]:
    import numpy as np

    model, shape = MODELS[name]
    with np.load(TEST) as z:
        x = z["x"]
    sample = workroot / f"{name}_sample.json"
    sample.write_text(json.dumps({"input_data": [x[0].reshape(-1).tolist()]}))
    batch_in = workroot / f"{name}_batch16.json"
    batch_in.write_text(json.dumps({"input_data": [x[:16].reshape(-1).tolist()]}))
    res: dict[str, Any] = {"model": name}

    # Raw ezkl, defaults
    rawdir = workroot / f"{name}_raw"
    rawdir.mkdir()
    wall, rss, out = run_measured([sys.executable, __file__, "--child", "raw", str(model), str(rawdir), str(sample)])
    raw = json.loads(out.strip().splitlines()[-1])
    raw.update(wall=wall, peak_rss_mb=rss)
    raw["total_excluding_srs"] = wall - raw["stages"]["srs"]
    raw["test_set"] = test_agreement(rawdir / "model.compiled", rawdir / "settings.json", model, shape)
    res["raw_ezkl"] = raw

    # zkml cold and warm
    store = workroot / f"{name}_store"
    env = {**os.environ, "ZKML_STORE": str(store)}
    cmd = [ZKML, "prove", str(model), "--calibration", str(CAL), "--input", str(sample), "-o", str(workroot / f"{name}_proof.json"), "--json"]
    wall, rss, out = run_measured(cmd, env)
    cold = json.loads(out)
    bundle = json.loads((workroot / f"{name}_proof.json").read_text())
    circ_dir = store / "circuits" / cold["circuit_id"]
    manifest = json.loads((circ_dir / "manifest.json").read_text())
    res["zkml_cold"] = {"wall": wall, "peak_rss_mb": rss, "stages": {**manifest["build_seconds"], "prove": cold["timings"]["prove_seconds"],
                        "witness": cold["timings"]["witness_seconds"]}, "logrows": manifest["logrows"],
                        "scale": json.loads((circ_dir / "settings.json").read_text())["run_args"]["input_scale"],
                        "proof_bytes": len(bundle["proofs"][0]["proof"]) // 2 - 1}
    res["zkml_cold"]["total_excluding_srs"] = wall - manifest["build_seconds"]["srs"]
    warm_walls = []
    for _ in range(3):
        wall, rss, out = run_measured(cmd, env)
        warm_walls.append(wall)
        assert json.loads(out)["cache_hit"]
    # Raw ezkl.prove on the same circuit, same witness
    import ezkl

    wit = workroot / f"{name}_w.json"
    ezkl.gen_witness(str(sample), str(circ_dir / "model.compiled"), str(wit))
    srs = store / "srs" / f"dev-k{manifest['logrows']}.srs"
    raw_prove = []
    for _ in range(3):
        _, _, out = run_measured([sys.executable, __file__, "--child", "raw_prove", str(circ_dir), str(wit), str(srs)])
        raw_prove.append(json.loads(out.strip().splitlines()[-1])["prove"])
    lib = []
    for _ in range(3):
        _, _, out = run_measured([sys.executable, __file__, "--child", "lib_warm", str(model), str(store), str(sample)])
        lib.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    res["zkml_warm"] = {"wall_median": sorted(warm_walls)[1], "walls": warm_walls, "peak_rss_mb": rss,
                        "library_median": sorted(lib)[1], "library": lib,
                        "raw_ezkl_prove_median": sorted(raw_prove)[1], "raw_ezkl_prove": raw_prove}
    res["zkml_test_set"] = test_agreement(circ_dir / "model.compiled", circ_dir / "settings.json", model, shape)

    # Batch 16 vs batch 1 (warm prove only)
    cmd16 = [ZKML, "prove", str(model), "--calibration", str(CAL), "--batch", "16", "--input", str(batch_in),
             "-o", str(workroot / f"{name}_proof16.json"), "--json"]
    run_measured(cmd16, env)  # build
    _, _, out = run_measured(cmd16, env)
    b16 = json.loads(out)
    res["batch16"] = {"prove_seconds": b16["timings"]["prove_seconds"], "per_inference": b16["timings"]["prove_seconds"] / 16,
                      "batch1_prove_seconds": cold["timings"]["prove_seconds"]}
    # Ratios
    res["ratios"] = {
        "cold_speedup_vs_raw": raw["wall"] / res["zkml_cold"]["wall"],
        "cold_speedup_vs_raw_excluding_srs": raw["total_excluding_srs"] / res["zkml_cold"]["total_excluding_srs"],
        "warm_over_raw_prove": res["zkml_warm"]["wall_median"] / res["zkml_warm"]["raw_ezkl_prove_median"],
        "warm_library_over_raw_prove": res["zkml_warm"]["library_median"] / res["zkml_warm"]["raw_ezkl_prove_median"],
        "batch16_per_inference_cheaper": res["batch16"]["batch1_prove_seconds"] / res["batch16"]["per_inference"],
    }
    return res


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| model | variant | logrows | wall s | prove s | peak RSS MB | proof B | test argmax agreement | test accuracy (circuit / float) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        raw, cold, warm = r["raw_ezkl"], r["zkml_cold"], r["zkml_warm"]
        rt, zt = r["raw_ezkl"]["test_set"], r["zkml_test_set"]
        rows.append(f"| {r['model']} | raw ezkl defaults (cold) | {raw['logrows']} | {raw['wall']:.2f} | {raw['stages']['prove']:.2f} | "
                    f"{raw['peak_rss_mb']:.0f} | {raw['proof_bytes']} | {100 * rt['argmax_agreement']:.1f}% | "
                    f"{100 * rt['accuracy_circuit']:.1f}% / {100 * rt['accuracy_float']:.1f}% |")
        rows.append(f"| {r['model']} | zkml prove cold | {cold['logrows']} | {cold['wall']:.2f} | {cold['stages']['prove']:.2f} | "
                    f"{cold['peak_rss_mb']:.0f} | {cold['proof_bytes']} | {100 * zt['argmax_agreement']:.1f}% | "
                    f"{100 * zt['accuracy_circuit']:.1f}% / {100 * zt['accuracy_float']:.1f}% |")
        rows.append(f"| {r['model']} | zkml prove warm (CLI process) | {cold['logrows']} | {warm['wall_median']:.2f} | raw ezkl.prove {warm['raw_ezkl_prove_median']:.2f} | "
                    f"{warm['peak_rss_mb']:.0f} | {cold['proof_bytes']} | | |")
        rows.append(f"| {r['model']} | zkml warm (library call) | {cold['logrows']} | {warm['library_median']:.2f} | | | | | |")
        rows.append(f"| {r['model']} | zkml batch 16 (per inference) | | | {r['batch16']['per_inference']:.3f} | | | | |")
    rows.append("")
    rows.append("| model | cold speed-up vs raw (target ≥ 4×) | same, SRS generation excluded | warm CLI / raw ezkl.prove (target ≤ 1.1×) | warm library / raw ezkl.prove | batch-16 per-inference cheaper (target ≥ 5×) |")
    rows.append("|---|---|---|---|---|---|")
    for r in results:
        q = r["ratios"]
        rows.append(f"| {r['model']} | {q['cold_speedup_vs_raw']:.1f}× | {q['cold_speedup_vs_raw_excluding_srs']:.1f}× | "
                    f"{q['warm_over_raw_prove']:.2f}× | {q['warm_library_over_raw_prove']:.2f}× | {q['batch16_per_inference_cheaper']:.1f}× |")
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        {"raw": mode_raw, "raw_prove": mode_raw_prove, "lib_warm": mode_lib_warm}[sys.argv[2]](*sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--out", default=str(REPO / "benches" / "out" / "bench_prove.json"))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="zkml-bench-") as tmp:
        for name in args.models.split(","):
            print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
            results.append(bench_model(name, Path(tmp)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "command": " ".join(["benches/bench_prove.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(table(results))
    print(f"\nJSON: {out}")
    shutil.rmtree(out.parent / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
