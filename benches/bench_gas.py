"""Benchmark: verifier bytecode size, deploy gas and verification gas on a real anvil.

    .venv/bin/python benches/bench_gas.py [--models mlp,cnn] [--batches 1,16,64] [--variants all|base]
                                         [--out benches/out/bench_gas.json]

For each reference model and batch size (params fixed, input/output public),
plus, at batch 1, hashed params, hashed outputs, private input and one inner
column: compile (cached in benches/out/store), prove, generate the Solidity
verifier, compile it with solc-js, deploy it (the per-circuit verifier, or
ezkl's reusable verifier + VK artifact when the per-circuit one is over
EIP-170), then verify through a ``ModelRegistry`` transaction (the path users
take) and directly. Gas per proof and per inference. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODELS = {"mlp": (REPO / "models" / "digits_mlp.onnx", (64,)), "cnn": (REPO / "models" / "digits_cnn.onnx", (1, 8, 8))}
CAL = REPO / "models" / "digits_calibration.json"
TEST = REPO / "models" / "digits_test.npz"
EIP170 = 24_576


def variants(batches: list[int], which: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(f"batch {b}", {"batch_size": b}) for b in batches]
    if which == "batch-private":
        return [(f"batch {b}, private input", {"batch_size": b, "input_visibility": "private"}) for b in batches] + [
            (f"batch {b}, private input, hashed outputs", {"batch_size": b, "input_visibility": "private", "output_visibility": "hashed"})
            for b in batches]
    if which == "all":
        out += [
            ("hashed params", {"param_visibility": "hashed"}),
            ("hashed outputs", {"output_visibility": "hashed"}),
            ("private input", {"input_visibility": "private"}),
            ("1 inner column", {"num_inner_cols": 1}),
            ("private input, 1 inner column", {"input_visibility": "private", "num_inner_cols": 1}),
        ]
    return out


def run_one(name: str, label: str, opts: dict[str, Any], store: Any, chain: Any, registry: Any) -> dict[str, Any]:
    from zkml.calibrate import CircuitOptions
    from zkml.circuit import compile_model
    from zkml.evm.registry import InstanceLayout, ModelRecord
    from zkml.evm.verifier import VerifierTooLarge, compile_verifier, deploy_verifier, generate_verifier, verify_onchain
    from zkml.inputs import load_samples
    from zkml.prove import prove
    from zkml.quant import weights_commitment_bytes32

    model, shape = MODELS[name]
    t0 = time.perf_counter()
    circuit, _ = compile_model(model, load_samples(CAL, shape), CircuitOptions(**opts), store=store)
    t_compile = time.perf_counter() - t0
    with np.load(TEST) as z:
        x = z["x"][: circuit.batch_size].reshape(-1, *shape)
    bundle = prove(circuit, x)
    proof = bundle.proofs[0].to_ezkl("23.0.5")
    out = circuit.folder / "evm-bench"
    reusable = False
    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out)
    t = time.perf_counter()
    try:
        compiled = compile_verifier(art, cache_dir=store.root / "solc-cache")
    except VerifierTooLarge:
        per_circuit_size = compile_verifier(art, cache_dir=store.root / "solc-cache", check_size=False).deployed_size
        reusable = True
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out, reusable=True)
        compiled = compile_verifier(art, cache_dir=store.root / "solc-cache")
    else:
        per_circuit_size = compiled.deployed_size
    t_solc = time.perf_counter() - t
    dep = deploy_verifier(chain, compiled)
    ok, direct_gas = verify_onchain(chain, dep, proof)
    assert ok, f"{name} {label}: verifier rejected a valid proof"
    record = ModelRecord.for_deployment(
        dep, onnx_sha256=circuit.model_sha256, vk_digest=circuit.files["vk.key"],
        layout=InstanceLayout.from_settings(circuit.settings_path),
        weights_commitment=weights_commitment_bytes32(circuit.manifest.get("weights_commitment")),
    )
    model_id = f"{name}-{circuit.circuit_id}"
    registry.register(model_id, record)
    receipt = registry.verify_and_record(model_id, proof)
    B = circuit.batch_size
    return {
        "model": name, "variant": label, "options": opts, "circuit_id": circuit.circuit_id, "logrows": circuit.logrows,
        "batch": B, "instances": len(proof["instances"][0]), "compile_seconds": t_compile,
        "prove_seconds": bundle.data["timings"]["prove_seconds"], "solc_seconds": t_solc,
        "per_circuit_bytecode": per_circuit_size, "reusable": reusable, "deployed_bytecode": compiled.deployed_size,
        "over_eip170": per_circuit_size > EIP170, "deploy_gas": dep.deploy_gas,
        "verify_gas_direct": direct_gas, "verify_gas_registry_tx": receipt.gas_used,
        "gas_per_inference": receipt.gas_used / B,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | variant | logrows | instances | verifier bytes (per-circuit) | deployed | deploy gas | verify gas (direct) | verify gas via registry tx | gas / inference | prove s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kind = "reusable" if r["reusable"] else "per-circuit"
        lines.append(f"| {r['model']} | {r['variant']} | {r['logrows']} | {r['instances']} | {r['per_circuit_bytecode']}"
                     f"{' (over EIP-170)' if r['over_eip170'] else ''} | {kind} {r['deployed_bytecode']} | {r['deploy_gas']:,} | "
                     f"{r['verify_gas_direct']:,} | {r['verify_gas_registry_tx']:,} | {r['gas_per_inference']:,.0f} | {r['prove_seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    from zkml.evm.anvil import Anvil
    from zkml.evm.chain import connect
    from zkml.evm.registry import Registry
    from zkml.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--variants", default="all", choices=["all", "base", "batch-private"])
    ap.add_argument("--store", default=str(REPO / "benches" / "out" / "store"))
    ap.add_argument("--out", default=str(REPO / "benches" / "out" / "bench_gas.json"))
    args = ap.parse_args()
    store = Store(args.store)
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with Anvil.start() as anvil:
        chain = connect(anvil.rpc_url, allow_dev_key=True)
        registry = Registry.deploy(chain, cache_dir=store.root / "solc-cache")
        for name in args.models.split(","):
            for label, opts in variants([int(b) for b in args.batches.split(",")], args.variants):
                print(f"{name}: {label} ...", file=sys.stderr, flush=True)
                rows.append(run_one(name, label, opts, store, chain, registry))
                out.write_text(json.dumps({"command": " ".join(sys.argv), "results": rows}, indent=1))
    print(table(rows))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
