"""Core commands: export, compile, prove, verify, inspect."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from zkml_cli.common import JsonOpt, KeyFileOpt, RpcOpt, StoreOpt, emit, progress, run

Target = Annotated[str, typer.Argument(help="An .onnx model, a circuits/*.toml recipe, a circuit folder or a circuit id.")]
CalibrationOpt = Annotated[Path | None, typer.Option("--calibration", "-c", help="Calibration data (.json/.npy/.npz).")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="resources (smallest circuit meeting the accuracy bar) | accuracy.")]
MaxLogrowsOpt = Annotated[int | None, typer.Option("--max-logrows", help="Largest circuit size (2^k rows) to accept.")]
BatchOpt = Annotated[int | None, typer.Option("--batch", help="Samples per proof.")]
InVisOpt = Annotated[str | None, typer.Option("--input-visibility", help="public | private | hashed")]
ParamVisOpt = Annotated[str | None, typer.Option("--param-visibility", help="fixed | hashed | private")]
OutVisOpt = Annotated[str | None, typer.Option("--output-visibility", help="public | private | hashed")]
SrsOpt = Annotated[Path | None, typer.Option("--srs", help="Ceremony SRS file (default: an INSECURE dev SRS, with a warning).")]
InnerColsOpt = Annotated[int | None, typer.Option("--inner-cols", help="ezkl inner columns (1: less on-chain gas, more rows).")]
FreivaldsOpt = Annotated[bool | None, typer.Option("--freivalds/--no-freivalds",
                                                   help="ezkl's Freivalds matmul check (off by default: more columns, more gas).")]
AgreementOpt = Annotated[float | None, typer.Option("--min-agreement", help="Argmax agreement float vs circuit required on calibration data.")]


def _store(store: Path | None) -> Any:
    from zkml.store import Store

    return Store(store)


def _overrides(**kw: Any) -> dict[str, Any]:
    key = {"batch": "batch_size"}
    return {key.get(k, k): v for k, v in kw.items() if v is not None}


def _circuit_line(c: Any, hit: bool) -> str:
    s = c.summary()
    return (
        f"circuit {c.circuit_id} ({'cached' if hit else 'built'}): logrows {s['logrows']}, batch {s['batch_size']}, "
        f"scale {s['input_scale']}, pk {s['pk_bytes'] / 1e6:.1f} MB, vk {s['vk_bytes'] / 1e3:.1f} kB"
    )


def _srs_warning(c: Any) -> str:
    from zkml.srs import DEV_WARNING

    return f"\nWARNING: {DEV_WARNING}" if c.srs.insecure else ""


def export(
    spec: Annotated[str, typer.Argument(help="MODULE.py:FACTORY returning a torch.nn.Module.")],
    shape: Annotated[str, typer.Option("--shape", help="Input shape, e.g. 1,64 (a leading 1 is the batch axis).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="ONNX file to write.")],
    opset: Annotated[int, typer.Option("--opset")] = 17,
    json_out: JsonOpt = False,
) -> None:
    """Export a torch module to ONNX (fixed opset, symbolic batch axis) and check op coverage."""
    from zkml.errors import ConfigError
    from zkml.export import export_module

    def go() -> Any:
        try:
            dims = tuple(int(d) for d in shape.split(","))
        except ValueError:
            raise ConfigError(f"--shape must be comma-separated integers, not {shape!r}") from None
        return export_module(spec, dims, out, opset=opset)

    info = run(go)
    data = {"onnx": str(out), "sha256": info.sha256, "opset": info.opset, "sample_shape": list(info.sample_shape),
            "ops": info.op_counts, "params": info.n_params}
    emit(json_out, data, f"exported {out} (opset {info.opset}, sample shape {list(info.sample_shape)}, "
         f"{info.n_params} params): all {sum(info.op_counts.values())} nodes supported\nsha256 {info.sha256}")


def compile(
    target: Target,
    calibration: CalibrationOpt = None,
    target_mode: TargetOpt = None,
    max_logrows: MaxLogrowsOpt = None,
    batch: BatchOpt = None,
    input_visibility: InVisOpt = None,
    param_visibility: ParamVisOpt = None,
    output_visibility: OutVisOpt = None,
    min_agreement: AgreementOpt = None,
    inner_cols: InnerColsOpt = None,
    freivalds: FreivaldsOpt = None,
    srs: SrsOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Calibrate, compile and set up a circuit (cached in the artifact store)."""
    from zkml.pipeline import resolve_circuit

    t = time.perf_counter()
    c, hit = run(lambda: resolve_circuit(
        target, _store(store), calibration=calibration, srs=srs, progress=progress(json_out),
        overrides=_overrides(target=target_mode, max_logrows=max_logrows, batch=batch, input_visibility=input_visibility,
                             param_visibility=param_visibility, output_visibility=output_visibility, min_agreement=min_agreement,
                             num_inner_cols=inner_cols, freivalds=freivalds),
    ))
    secs = time.perf_counter() - t
    s = c.summary()
    acc = s["accuracy"] or {}
    data = {**s, "cache_hit": hit, "seconds": secs}
    human = (
        f"{_circuit_line(c, hit)} in {secs:.2f}s\n"
        f"accuracy on {acc.get('samples')} calibration samples: max abs error {acc.get('max_abs_error', 0):.4g}, "
        f"argmax agreement {100 * acc.get('argmax_agreement', 0):.1f}%"
        + _srs_warning(c)
    )
    emit(json_out, data, human)


def prove(
    target: Target,
    input: Annotated[Path, typer.Option("--input", "-i", help="Input: ezkl JSON, nested array JSON, .npy or .npz.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Proof bundle to write.")] = Path("proof.json"),
    calibration: CalibrationOpt = None,
    batch: BatchOpt = None,
    input_visibility: InVisOpt = None,
    param_visibility: ParamVisOpt = None,
    output_visibility: OutVisOpt = None,
    srs: SrsOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a proof is abandoned.")] = 600.0,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove an inference (compiling the circuit first if needed) and write a proof bundle."""
    from zkml.inputs import read_raw, to_samples
    from zkml.onnx_check import load_model
    from zkml.pipeline import resolve_circuit
    from zkml.prove import prove as do_prove

    report = progress(json_out)

    def go() -> Any:
        t = time.perf_counter()
        raw = read_raw(input)
        fallback = None
        if target.endswith(".onnx"):
            fallback = to_samples(raw, load_model(target).sample_shape, source=str(input))
        c, hit = resolve_circuit(
            target, _store(store), calibration=calibration, srs=srs, fallback_calibration=fallback, progress=report,
            overrides=_overrides(batch=batch, input_visibility=input_visibility, param_visibility=param_visibility,
                                 output_visibility=output_visibility),
        )
        t_compile = time.perf_counter() - t
        b = do_prove(c, raw, timeout=timeout, progress=report)
        b.data["timings"]["compile_seconds"] = t_compile
        b.data["timings"]["cache_hit"] = hit
        b.save(out)
        return c, hit, b, time.perf_counter() - t

    c, hit, b, secs = run(go)
    outs = b.outputs
    lines = [_circuit_line(c, hit), f"proved {b.samples} sample(s) in {len(b.proofs)} proof(s) -> {out} ({secs:.2f}s total, "
             f"prove {b.data['timings']['prove_seconds']:.2f}s)"]
    if outs is not None:
        for i, row in enumerate(outs[:8]):
            arr = np.asarray(row)
            lines.append(f"  sample {i}: argmax {int(arr.argmax())}  outputs [{', '.join(f'{v:.3f}' for v in arr[:10])}{', …' if len(arr) > 10 else ''}]")
        if len(outs) > 8:
            lines.append(f"  … {len(outs) - 8} more")
    else:
        lines.append("  outputs are private (not revealed)")
    emit(json_out, {"bundle": str(out), "circuit_id": c.circuit_id, "cache_hit": hit, "samples": b.samples,
                    "proofs": len(b.proofs), "outputs": outs, "timings": b.data["timings"], "seconds": secs,
                    "warnings": b.data["warnings"]}, "\n".join(lines) + _srs_warning(c))


def verify(
    bundle: Annotated[Path, typer.Argument(help="Proof bundle (from zkml prove).")],
    circuit: Annotated[str | None, typer.Option("--circuit", help="Circuit folder or id (default: the bundle's, from the store).")] = None,
    settings: Annotated[Path | None, typer.Option("--settings", help="settings.json (with --vk and --srs, instead of a store).")] = None,
    vk: Annotated[Path | None, typer.Option("--vk", help="Verifying key.")] = None,
    srs_file: Annotated[Path | None, typer.Option("--srs", help="SRS file.")] = None,
    onchain: Annotated[bool, typer.Option("--onchain", help="Verify through the on-chain registry (eth_call) instead of locally.")] = False,
    record: Annotated[bool, typer.Option("--record", help="With --onchain: send a transaction so the verification is an event; the receipt goes into the bundle.")] = False,
    model_id: Annotated[str | None, typer.Option("--model-id", help="Registry model id (default: the one deployed for this circuit).")] = None,
    batch: Annotated[bool, typer.Option("--batch-verify", help="With --onchain: all proofs in one verifyBatch call, one pairing (needs `zkml deploy --batch-verify`).")] = False,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a proof bundle: locally (digests, public instances, every SNARK) or --onchain. Exit 1 if invalid."""
    if onchain or record or batch:
        return _verify_onchain(bundle, record, model_id, rpc_url, key_file, store, json_out, batch)
    from zkml.bundle import Bundle
    from zkml.errors import ConfigError
    from zkml.verify import Artifacts, artifacts_from_dir, artifacts_from_store, verify_bundle

    def go() -> Any:
        b = Bundle.load(bundle)
        st = _store(store)
        if settings or vk or srs_file:
            if not (settings and vk and srs_file):
                raise ConfigError("--settings, --vk and --srs go together")
            art = Artifacts(settings=settings, vk=vk, srs=srs_file)
        elif circuit:
            p = Path(circuit)
            art = artifacts_from_dir(p) if p.is_dir() else artifacts_from_dir(st.find_circuit(circuit))
        else:
            art = artifacts_from_store(b, st)
        return b, verify_bundle(b, art)

    b, v = run(go)
    data = {"bundle": str(bundle), "model_sha256": b.model_sha256, "circuit_id": b.circuit_id, "samples": b.samples,
            "outputs": b.outputs, "warnings": b.data.get("warnings", []), **v.as_dict()}
    if v.valid:
        outs = b.outputs
        argmax = [int(np.argmax(r)) for r in outs] if outs else None
        human = (f"valid: {b.samples} sample(s) of model {b.model_sha256[:16]}… under circuit {b.circuit_id}"
                 + (f", outputs argmax {argmax[:16]}" if argmax is not None else ", outputs private")
                 + f" ({len(b.proofs)} proof(s), {v.seconds:.2f}s)")
        if b.data.get("warnings"):
            human += "\nWARNING: " + "\nWARNING: ".join(b.data["warnings"])
        emit(json_out, data, human)
    else:
        if json_out:
            emit(True, data, "")
        else:
            typer.echo(f"invalid: {v.reason}", err=True)
        raise typer.Exit(1)


def _verify_onchain(bundle: Path, record: bool, model_id: str | None, rpc_url: str | None,
                    key_file: Path | None, store: Path | None, json_out: bool, batch: bool = False) -> None:
    from zkml.bundle import Bundle
    from zkml.evm.deploy import open_chain, verify_bundle_onchain

    report = progress(json_out)

    def go() -> tuple[Any, dict[str, Any]]:
        b = Bundle.load(bundle)
        st = _store(store)
        chain = open_chain(st, rpc_url, key_file, progress=report)
        res = verify_bundle_onchain(b, st, chain, model_id=model_id, record=record, batch=batch, progress=report)
        if record and res["valid"]:
            b.data.setdefault("onchain", []).append(res)
            b.save(bundle)
        return b, res

    b, res = run(go)
    gas = [p.get("gas") for p in res["proofs"]]
    if res["valid"]:
        bt = res.get("batch")
        gas_text = (f"{bt['proofs']} proof(s) in one verifyBatch call, gas {bt['gas']} ({bt['gas_per_proof']:,.0f} per proof)"
                    if bt else f"gas {', '.join(str(g) for g in gas)}")
        human = (f"valid on chain {res['chain_id']}: model '{res['model_id']}' v{res['model_version']} via registry "
                 f"{res['registry']} (verifier {res['verifier']}), {gas_text}")
        if record:
            human += "\nrecorded: " + ", ".join(p["tx"] for p in res["proofs"]) + f" (receipt written to {bundle})"
        emit(json_out, res, human)
    else:
        if json_out:
            emit(True, res, "")
        else:
            typer.echo(f"invalid on chain {res['chain_id']}: the registry's verifier rejected "
                       f"{sum(not p['valid'] for p in res['proofs'])} of {len(res['proofs'])} proof(s)", err=True)
        raise typer.Exit(1)


def inspect(
    target: Annotated[str, typer.Argument(help="A proof bundle (.json), a circuit folder or a circuit id.")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Summarize a proof bundle or a circuit."""
    from zkml.bundle import Bundle
    from zkml.circuit import open_circuit

    def go() -> tuple[dict[str, Any], str]:
        p = Path(target)
        if p.suffix == ".json" and p.is_file():
            b = Bundle.load(p)
            d = b.data
            summary = {k: d[k] for k in ("created", "model", "circuit", "srs", "warnings", "samples", "outputs", "timings", "onchain", "tools")}
            summary["proofs"] = [{"first_sample": e.first_sample, "real_samples": e.real_samples,
                                  "instances": len(e.instances[0]), "proof_bytes": len(e.proof_hex) // 2 - 1} for e in b.proofs]
            vis = d["circuit"]["visibility"]
            human = "\n".join([
                f"proof bundle v{d['version']} created {d['created']}",
                f"  model     sha256 {d['model']['sha256']}",
                f"  circuit   {d['circuit']['id']} (logrows {d['circuit']['logrows']}, batch {d['circuit']['batch_size']}, "
                f"input {vis['input']}, params {vis['params']}, output {vis['output']})",
                f"  vk        sha256 {d['circuit']['vk_sha256']}",
                f"  srs       {d['srs']['kind']} k={d['srs']['logrows']}" + (" (INSECURE dev SRS)" if d['srs'].get('insecure') else ""),
                f"  samples   {d['samples']} in {len(b.proofs)} proof(s) of {summary['proofs'][0]['proof_bytes']} bytes",
                f"  outputs   " + ("private" if b.outputs is None else f"argmax {[int(np.argmax(r)) for r in b.outputs][:16]}"),
                f"  on chain  " + (", ".join(f"{o.get('chain_id')}:{o.get('verifier')}" for o in d.get('onchain') or []) or "not recorded"),
            ])
            return summary, human
        st = _store(store)
        c = open_circuit(p if p.is_dir() else st.find_circuit(target), st)
        s = c.summary()
        acc = s["accuracy"] or {}
        human = "\n".join([
            f"circuit {c.circuit_id}",
            f"  model     sha256 {s['model_sha256']}",
            f"  size      logrows {s['logrows']} ({s['num_rows']} rows used), batch {s['batch_size']}, scale {s['input_scale']}",
            f"  keys      pk {s['pk_bytes'] / 1e6:.1f} MB, vk {s['vk_bytes'] / 1e3:.1f} kB",
            f"  srs       {s['srs']['kind']} k={s['srs']['logrows']}" + (" (INSECURE dev SRS)" if s['srs']['insecure'] else ""),
            f"  accuracy  max abs error {acc.get('max_abs_error', 0):.4g}, argmax agreement {100 * acc.get('argmax_agreement', 0):.1f}% "
            f"on {acc.get('samples')} calibration samples",
            f"  folder    {s['folder']}",
        ])
        return s, human

    data, human = run(go)
    emit(json_out, data, human)


def register(app: typer.Typer) -> None:
    """Attach the core commands to the root app."""
    app.command("export")(export)
    app.command("compile")(compile)
    app.command("prove")(prove)
    app.command("verify")(verify)
    app.command("inspect")(inspect)
