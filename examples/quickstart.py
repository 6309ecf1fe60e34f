"""zkml from Python: compile the bundled digits MLP, prove one digit, verify it, reproduce it.

Run from the repository root:  .venv/bin/python examples/quickstart.py
"""

from __future__ import annotations

import tempfile

import numpy as np

import zkml

store = tempfile.mkdtemp(prefix="zkml-example-")
circuit = zkml.compile("circuits/digits_mlp.toml", store=store)
print(f"circuit {circuit.circuit_id}: logrows {circuit.logrows}")

with np.load("models/digits_test.npz") as z:
    x, y = z["x"][:1], int(z["y"][0])
bundle = zkml.prove(circuit, x, store=store)
print(f"proved: argmax {int(np.argmax(bundle.outputs[0]))} (label {y})")

verdict = zkml.verify(bundle, store=store)
print(f"valid: {verdict.valid}, model bound: {verdict.model_bound}, SRS: {verdict.srs.kind if verdict.srs else '?'}")
for claim in verdict.claims:
    status = ("trusted" if claim.bound else "UNTRUSTED") if claim.name == "srs" else ("bound" if claim.bound else "NOT BOUND")
    print(f"  {claim.name:<8} {status}: {claim.basis}")

rep = zkml.reproduce("models/digits_mlp.onnx", bundle, store=store)
print(f"reproduced from the ONNX: {rep.vk_match} ({rep.seconds:.1f}s)")
