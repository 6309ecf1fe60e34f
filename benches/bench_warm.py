"""A whole warm ``zkml prove`` process vs raw ``ezkl.prove`` on the same circuit, in one run.

The issue's target: a warm ``zkml prove`` process (circuit already compiled) within 1.5x of
raw ``ezkl.prove``. Runs are interleaved (raw, CLI, raw, CLI, ...) so that a busy machine
slows both alike. The CLI is run by circuit id and by ONNX path (hashed, not parsed);
its own ``--json`` timings split the process into start-up + resolve, witness and prove.

    .venv/bin/python benches/bench_warm.py [--runs 5]

Prints a table and writes benches/results/bench_warm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ZKML = str(REPO / ".venv" / "bin" / "zkml")
MLP = REPO / "models" / "digits_mlp.onnx"
CAL = REPO / "models" / "digits_calibration.json"

RAW = """
import ezkl, json, sys, time
from pathlib import Path
import numpy as np
from zkml.circuit import open_circuit
from zkml.prove import gen_witness
from zkml.store import Store
st = Store(sys.argv[1]); c = open_circuit(st.find_circuit(sys.argv[2]), st); d = Path(sys.argv[3])
w, _ = gen_witness(c, np.asarray(json.load(open(sys.argv[4]))["input_data"][0]).reshape(1, -1), d)
ezkl.prove(str(w), str(c.compiled), str(c.pk), str(d / "p.json"), srs_path=str(c.srs.path))  # warm-up
for line in sys.stdin:
    t = time.perf_counter()
    ezkl.prove(str(w), str(c.compiled), str(c.pk), str(d / "p.json"), srs_path=str(c.srs.path))
    print(json.dumps(time.perf_counter() - t), flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benches" / "results" / "bench_warm.json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zkml-bench-warm-"))
    store = work / "store"
    env = {**os.environ, "ZKML_STORE": str(store)}
    comp = json.loads(subprocess.run([ZKML, "compile", str(MLP), "--calibration", str(CAL), "--json"], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    cid = comp["circuit_id"]
    import numpy as np

    with np.load(REPO / "models" / "digits_test.npz") as z:
        one = work / "one.json"
        one.write_text(json.dumps({"input_data": [z["x"][0].tolist()]}))
    raw_proc = subprocess.Popen([sys.executable, "-c", RAW, str(store), cid, str(work), str(one)], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rows: dict[str, list[dict[str, float]]] = {"raw ezkl.prove (warm process)": [], "zkml prove ID": [],
                                               "zkml prove MODEL.onnx": []}
    try:
        for _ in range(a.runs):
            raw_proc.stdin.write("go\n")
            raw_proc.stdin.flush()
            rows["raw ezkl.prove (warm process)"].append({"total": json.loads(raw_proc.stdout.readline())})
            for name, target in (("zkml prove ID", cid), ("zkml prove MODEL.onnx", str(MLP))):
                t = time.perf_counter()
                r = subprocess.run([ZKML, "prove", target, "-i", str(one), "-o", str(work / "w.json"), "--json"],
                                   env=env, capture_output=True, text=True, check=True)
                total = time.perf_counter() - t
                tm = json.loads(r.stdout)["timings"]
                rows[name].append({"total": total, "witness": tm["witness_seconds"], "prove": tm["prove_seconds"],
                                   "rest": total - tm["witness_seconds"] - tm["prove_seconds"]})
    finally:
        raw_proc.stdin.close()
        raw_proc.wait(timeout=60)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rows.items()}
    raw_s = med["raw ezkl.prove (warm process)"]["total"]
    print(f"{'row':<32} {'total s':>8} {'witness':>8} {'prove':>8} {'rest':>8} {'vs raw':>7}   (median of {a.runs})")
    for k, m in med.items():
        print(f"{k:<32} {m['total']:8.2f} {m.get('witness', 0):8.2f} {m.get('prove', m['total']):8.2f} "
              f"{m.get('rest', 0):8.2f} {m['total'] / raw_s:6.2f}×")
    print("target: a whole warm zkml prove process <= 1.5× raw ezkl.prove")
    result = {"circuit_id": cid, "runs": a.runs, "median_seconds": med, "raw_s": raw_s,
              "ratios": {k: m["total"] / raw_s for k, m in med.items()}, "samples": rows,
              "cpu_count": os.cpu_count(), "loadavg_end": os.getloadavg()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
