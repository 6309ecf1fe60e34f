"""Benchmark: verifier bytecode size, deploy gas and verification gas on a real anvil, zkml vs raw ezkl.

    .venv/bin/python benches/bench_gas.py [--models mlp,cnn] [--batches 1,16,64] [--variants all|base|onchain]
                                         [--batch-verify 1,2,4,8] [--scale S] [--out benches/out/bench_gas.json]

For each reference model and batch size: compile (cached in benches/out/store),
prove, then generate the Solidity verifier twice from the same verifying key:

* **raw ezkl**: the contract exactly as ``ezkl.create_evm_verifier`` renders it,
  compiled with solc's default ``runs`` (200);
* **zkml**: the same contract after :mod:`zkml.evm.optimize` (zero VK points
  folded out of the MSM), compiled for execution (``runs`` 1e6, size fallback).

Both are deployed (the per-circuit verifier, or ezkl's reusable verifier + VK
artifact when the per-circuit one is over EIP-170) and verify the same proof.
Gas per proof and per inference; the zkml verifier is also called through a
``ModelRegistry`` transaction (the path users take). Every variant after the
first batch-1 circuit reuses its calibrated scale, so batch sizes compare
like with like. With ``--batch-verify``, batch-1 rows also measure
``Halo2BatchVerifier``: n independent proofs checked in one call with one
pairing (:mod:`zkml.evm.batch`). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import collections
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
ONCHAIN = {"input_visibility": "private", "num_inner_cols": 1}


def variants(batches: list[int], which: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for b in batches:
        if which in ("all", "base"):
            out.append((f"batch {b}", {"batch_size": b}))
        if which in ("all", "onchain"):
            if b == 1:
                out.append(("batch 1, private input, 1 inner column", {"batch_size": 1, **ONCHAIN}))
            else:
                # one inner column doubles the rows: allow the logrows that keeps them in one block of columns
                out.append((f"batch {b}, private input, 1 inner column, hashed outputs",
                            {"batch_size": b, **ONCHAIN, "output_visibility": "hashed", "max_logrows": 18 if b <= 16 else 19}))
        if which == "all" and b == 1:
            out += [
                ("hashed params", {"param_visibility": "hashed"}),
                ("hashed outputs", {"output_visibility": "hashed"}),
                ("private input", {"input_visibility": "private"}),
                ("1 inner column", {"num_inner_cols": 1}),
            ]
        if which == "all" and b == 16:
            out.append(("batch 16, Freivalds on (zkml <= 0.1 default)", {"batch_size": 16, "freivalds": True}))
    return out


def ec_muls(chain: Any, address: str, calldata: bytes) -> int:
    """ecMul precompile calls during one verification (anvil's debug_traceCall, call tracer)."""
    trace = chain.rpc("debug_traceCall", [{"to": address, "data": "0x" + calldata.hex()}, "latest", {"tracer": "callTracer"}])
    c = collections.Counter(int(call["to"], 16) for call in trace.get("calls", []))
    return c[7]


def deploy_and_verify(chain: Any, store: Any, circuit: Any, proof: dict[str, Any], out: Path, *, zkml: bool) -> dict[str, Any]:
    from zkml.evm.verifier import (SIZE_OPTIMIZER_RUNS, VerifierTooLarge, compile_verifier, deploy_verifier,
                                   generate_verifier, read_proof, verify_calldata, verify_onchain)

    runs = None if zkml else SIZE_OPTIMIZER_RUNS
    cache = store.root / "solc-cache"
    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out, optimize=zkml)
    try:
        compiled = compile_verifier(art, cache_dir=cache, optimizer_runs=runs)
        per_circuit = compiled.deployed_size
    except VerifierTooLarge as e:
        per_circuit = e.size
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out, reusable=True)
        compiled = compile_verifier(art, cache_dir=cache, optimizer_runs=runs)
    dep = deploy_verifier(chain, compiled)
    ok, gas = verify_onchain(chain, dep, proof)
    assert ok and gas, f"{'zkml' if zkml else 'raw ezkl'} verifier rejected a valid proof"
    p, inst = read_proof(proof)
    return {"dep": dep, "art": art, "per_circuit_bytecode": per_circuit, "reusable": dep.reusable, "deployed_bytecode": compiled.deployed_size,
            "deploy_gas": dep.deploy_gas, "verify_gas": gas, "optimizer_runs": compiled.contract.optimizer_runs,
            "ec_muls": ec_muls(chain, dep.address, verify_calldata(p, inst, dep.vka_words)),
            "optimizations": list(art.optimizations)}


def batch_verification(chain: Any, store: Any, circuit: Any, art: Any, shape: tuple[int, ...], sizes: list[int],
                       registry: Any, model_id: str) -> list[dict[str, Any]]:
    """Gas of verifying n independent single proofs in one call, for each n: standalone and through the registry."""
    from zkml.evm.batch import deploy_batch, verify_batch_onchain
    from zkml.prove import prove

    with np.load(TEST) as z:
        x = z["x"][: max(sizes) * circuit.batch_size].reshape(-1, *shape)
    proofs = [p.to_ezkl("23.0.5") for p in prove(circuit, x, timeout=3600).proofs]
    dep = deploy_batch(chain, art, circuit.folder / "evm-bench-batch", cache_dir=store.root / "solc-cache")
    # the deferred verifier is part of a model's record (no setter): a sibling model carries it
    import dataclasses

    record = registry.record(model_id, 1)
    model_id = f"{model_id}-batch"
    registry.register(model_id, dataclasses.replace(record, deferred_verifier=dep.deferred,
                                                    deferred_code_hash=b"\x00" * 32))
    out = []
    for n in sizes:
        ok, gas = verify_batch_onchain(chain, dep, proofs[:n])
        rok, rgas = registry.verify_batch(model_id, proofs[:n])
        assert ok and gas and rok and rgas, f"batch of {n} valid proofs rejected"
        out.append({"proofs": n, "gas": gas, "gas_per_proof": gas / n, "registry_gas": rgas,
                    "registry_gas_per_proof": rgas / n, "deploy_gas": dep.deploy_gas,
                    "deferred_bytecode": dep.deferred_size})
    return out


def run_one(name: str, label: str, opts: dict[str, Any], store: Any, chain: Any, registry: Any,
            batch_sizes: list[int] | None = None) -> dict[str, Any]:
    from zkml.calibrate import CircuitOptions
    from zkml.circuit import compile_model
    from zkml.evm.registry import InstanceLayout, ModelRecord
    from zkml.inputs import load_samples
    from zkml.prove import prove
    from zkml.quant import weights_commitment_bytes32

    model, shape = MODELS[name]
    t0 = time.perf_counter()
    circuit, _ = compile_model(model, load_samples(CAL, shape), CircuitOptions(**opts), store=store)
    t_compile = time.perf_counter() - t0
    with np.load(TEST) as z:
        x = z["x"][: circuit.batch_size].reshape(-1, *shape)
    bundle = prove(circuit, x, timeout=3600)
    proof = bundle.proofs[0].to_ezkl("23.0.5")
    raw = deploy_and_verify(chain, store, circuit, proof, circuit.folder / "evm-bench-raw", zkml=False)
    ours = deploy_and_verify(chain, store, circuit, proof, circuit.folder / "evm-bench", zkml=True)
    dep = ours.pop("dep")
    art = ours.pop("art")
    raw.pop("dep")
    raw.pop("art")
    model_id = f"{name}-{circuit.circuit_id}"
    registry.register(model_id, ModelRecord.for_deployment(
        dep, onnx_sha256=circuit.model_sha256, vk_digest=circuit.files["vk.key"],
        layout=InstanceLayout.from_settings(circuit.settings_path),
        weights_commitment=weights_commitment_bytes32(circuit.manifest.get("weights_commitment")),
    ))
    batched = (batch_verification(chain, store, circuit, art, shape, batch_sizes, registry, model_id)
               if batch_sizes and not art.reusable else None)
    receipt = registry.verify_and_record(model_id, proof)
    B = circuit.batch_size
    return {
        "model": name, "variant": label, "options": opts, "circuit_id": circuit.circuit_id, "logrows": circuit.logrows,
        "scale": circuit.summary()["input_scale"], "batch": B, "instances": len(proof["instances"][0]),
        "compile_seconds": t_compile, "prove_seconds": bundle.timings["prove_seconds"],
        "raw_ezkl": raw, "zkml": ours,
        "verify_gas_direct": ours["verify_gas"], "verify_gas_registry_tx": receipt.gas_used,
        "gas_per_inference": ours["verify_gas"] / B, "registry_gas_per_inference": receipt.gas_used / B,
        "raw_over_zkml": raw["verify_gas"] / ours["verify_gas"],
        "batch_verification": batched,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | variant | logrows | instances | verifier bytes | deploy gas | verify gas, raw ezkl | verify gas, zkml (ecMul) "
             "| raw / zkml | via registry tx | zkml gas / inference | prove s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        z, raw = r["zkml"], r["raw_ezkl"]
        size = (f"{r['zkml']['per_circuit_bytecode']:,} (over EIP-170: reusable {z['deployed_bytecode']:,})" if z["reusable"]
                else f"{z['deployed_bytecode']:,}")
        lines.append(f"| {r['model']} | {r['variant']} | {r['logrows']} | {r['instances']} | {size} | {z['deploy_gas']:,} | "
                     f"{raw['verify_gas']:,} ({raw['ec_muls']}) | **{z['verify_gas']:,}** ({z['ec_muls']}) | {r['raw_over_zkml']:.2f}× | "
                     f"{r['verify_gas_registry_tx']:,} | **{r['gas_per_inference']:,.0f}** | {r['prove_seconds']:.1f} |")
    batched = [r for r in rows if r.get("batch_verification")]
    if batched:
        sizes = [b["proofs"] for b in batched[0]["batch_verification"]]
        lines += ["", "Batch verification (one pairing for n independent proofs): gas per proof, "
                  "standalone `Halo2BatchVerifier` / through `ModelRegistry.verifyBatch`",
                  "", "| model | variant | verify alone | " + " | ".join(f"n = {n}" for n in sizes) + " |",
                  "|---|---|---|" + "---|" * len(sizes)]
        for r in batched:
            cells = " | ".join(f"{b['gas_per_proof']:,.0f} / {b['registry_gas_per_proof']:,.0f}" for b in r["batch_verification"])
            lines.append(f"| {r['model']} | {r['variant']} | {r['verify_gas_direct']:,} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    from zkml.evm.anvil import Anvil
    from zkml.evm.chain import connect
    from zkml.evm.registry import Registry
    from zkml.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--variants", default="all", choices=["all", "base", "onchain"])
    ap.add_argument("--batch-verify", default="", help="also verify n single proofs in one batch, e.g. 1,2,4,8 (batch-1 rows)")
    ap.add_argument("--scale", type=int, default=None, help="pin every variant to this scale (default: the first one's)")
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
            scale: int | None = args.scale
            for label, opts in variants([int(b) for b in args.batches.split(",")], args.variants):
                if scale is not None:
                    opts = {**opts, "scales": (scale,)}
                print(f"{name}: {label} ...", file=sys.stderr, flush=True)
                sizes = [int(n) for n in args.batch_verify.split(",") if n] if opts.get("batch_size", 1) == 1 else None
                rows.append(run_one(name, label, opts, store, chain, registry, sizes))
                scale = scale or rows[-1]["scale"]
                out.write_text(json.dumps({"command": " ".join(sys.argv), "results": rows}, indent=1, default=str))
    print(table(rows))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
