"""Core commands: export, compile, prove, verify, inspect."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from zkml.util import printable
from zkml_cli.common import JsonOpt, KeyFileOpt, RayOpt, RpcOpt, ServerOpt, StoreOpt, WorkersOpt, emit, progress, run

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

    if c.srs.insecure:
        return f"\nWARNING: {DEV_WARNING}"
    origin = c.srs_origin()
    return "" if origin.trusted else f"\nWARNING: {origin.label}"


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
    max_memory: Annotated[float | None, typer.Option("--max-memory", help="Memory budget in GB for setup/prove (default: 90% of this machine's); a bigger circuit is refused before it is built.")] = None,
    calibration_seconds: Annotated[float | None, typer.Option("--calibration-seconds", help="Time budget of the calibration search (the scales tried and skipped are reported).")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Calibrate, compile and set up a circuit (cached in the artifact store)."""
    from zkml.targets import resolve_circuit

    t = time.perf_counter()
    c, hit = run(lambda: resolve_circuit(
        target, _store(store), calibration=calibration, srs=srs, progress=progress(json_out),
        max_memory_gb=max_memory, max_seconds=calibration_seconds,
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
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    server: ServerOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove an inference (compiling the circuit first if needed) and write a proof bundle."""
    from zkml.inputs import read_raw
    from zkml.targets import resolve_circuit

    report = progress(json_out)

    def go() -> Any:
        from zkml.scale.route import ProveRoute, prove_target

        t = time.perf_counter()
        route = ProveRoute.from_flags(workers, ray, server)
        raw = read_raw(input)

        def resolve() -> Any:
            return resolve_circuit(
                target, _store(store), calibration=calibration, srs=srs, progress=report,
                overrides=_overrides(batch=batch, input_visibility=input_visibility, param_visibility=param_visibility,
                                     output_visibility=output_visibility),
            )

        c, hit, b, via = prove_target(target, raw, _store(store), resolve, route=route,
                                      timeout=timeout, progress=report)
        b.save(out)
        return c, hit, b, via, time.perf_counter() - t

    c, hit, b, via, secs = run(go)
    outs = b.outputs
    lines = [_circuit_line(c, hit) if c is not None else f"circuit {b.circuit_id} (on the server)",
             f"proved {b.samples} sample(s) in {len(b.proofs)} proof(s) by {via} -> {out} ({secs:.2f}s total, "
             f"prove {b.timings['prove_seconds']:.2f}s)"]
    if outs is not None:
        for i, row in enumerate(outs[:8]):
            arr = np.asarray(row)
            lines.append(f"  sample {i}: argmax {int(arr.argmax())}  outputs [{', '.join(f'{v:.3f}' for v in arr[:10])}{', …' if len(arr) > 10 else ''}]")
        if len(outs) > 8:
            lines.append(f"  … {len(outs) - 8} more")
    else:
        lines.append("  outputs are private (not revealed)")
    emit(json_out, {"bundle": str(out), "circuit_id": b.circuit_id, "cache_hit": hit, "samples": b.samples,
                    "proofs": len(b.proofs), "outputs": outs, "timings": dict(b.timings), "seconds": secs,
                    "proved_by": via, "warnings": list(b.warnings)},
         "\n".join(lines) + (_srs_warning(c) if c is not None else "".join(f"\nWARNING: {w}" for w in b.warnings)))


def verify(
    bundle: Annotated[Path, typer.Argument(help="Proof bundle (from zkml prove).")],
    circuit: Annotated[str | None, typer.Option("--circuit", help="Circuit id in the store (trusted) or a circuit folder (untrusted: the model is then not bound).")] = None,
    settings: Annotated[Path | None, typer.Option("--settings", help="settings.json (with --vk and --srs, instead of a store; untrusted).")] = None,
    vk: Annotated[Path | None, typer.Option("--vk", help="Verifying key.")] = None,
    srs_file: Annotated[Path | None, typer.Option("--srs", help="SRS file.")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Your ONNX: reproduce the circuit from it and bind the proof to it.")] = None,
    trusted_srs: Annotated[list[Path] | None, typer.Option("--trusted-srs", help="File of SRS sha256 digests you trust (one per line); also $ZKML_TRUSTED_SRS.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 unless the model is bound and the SRS is a pinned ceremony file or trusted.")] = False,
    onchain: Annotated[bool, typer.Option("--onchain", help="Verify through the on-chain registry (eth_call) instead of locally.")] = False,
    record: Annotated[bool, typer.Option("--record", help="With --onchain: send a transaction so the verification is an event; the receipt goes into the bundle.")] = False,
    model_id: Annotated[str | None, typer.Option("--model-id", help="Registry model id (default: the one deployed for this circuit).")] = None,
    batch: Annotated[bool, typer.Option("--batch-verify", help="With --onchain: all proofs in one verifyBatch call, one pairing (needs `zkml deploy --batch-verify`).")] = False,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a proof bundle: locally (digests, public instances, every SNARK; each claim bound or not) or --onchain. Exit 1 if invalid."""
    if onchain or record or batch:
        return _verify_onchain(bundle, record, model_id, rpc_url, key_file, store, json_out, batch)
    from zkml.bundle import Bundle
    from zkml.verify import verify as do_verify

    def go() -> Any:
        b = Bundle.load(bundle)
        v = do_verify(b, _store(store), circuit=circuit, settings=settings, vk=vk, srs=srs_file, model=model,
                      trusted_srs=[str(p) for p in trusted_srs or []], progress=progress(json_out))
        return b, v

    b, v = run(go)
    strict_fail = strict and v.valid and not (v.model_bound and v.srs is not None and v.srs.trusted)
    data = {"bundle": str(bundle), "samples": b.samples, "proofs": len(b.proofs), **v.as_dict(),
            "strict": strict, "metadata": {"note": "written by the prover, not verified", **b.meta.as_dict()}}
    if strict_fail:
        data["valid"] = False
        data["reason"] = "--strict: " + ("the model is not bound" if not v.model_bound else "the SRS is not trusted")
    if v.valid and not strict_fail:
        emit(json_out, data, render_verdict(b, v))
    else:
        if json_out:
            emit(True, data, "")
        else:
            if v.valid:
                typer.echo(render_verdict(b, v), err=True)
            typer.echo(f"invalid: {printable(data['reason'])}", err=True)
        raise typer.Exit(1)


def render_verdict(b: Any, v: Any) -> str:
    """The human summary of a valid verdict: each claim with what bound it; metadata labelled."""
    lines = [f"valid: {len(b.proofs)} proof(s) of {b.samples} sample(s) verify ({v.seconds:.2f}s)"]
    for c in v.claims:
        if c.name == "srs":
            mark = "trusted" if c.bound else "UNTRUSTED"
        else:
            mark = "bound" if c.bound else "NOT BOUND" if c.name == "model" else "unbound"
        if c.name == "model":
            value = f"sha256 {c.value}"
        elif c.name == "circuit":
            value = f"vk {c.value['vk_sha256'][:16]}…" + (f" (circuit {c.value['id']})" if "id" in c.value else "")
        elif c.name == "outputs" and c.value is not None:
            argmax = [int(np.argmax(r)) for r in c.value]
            value = f"argmax {argmax[:16]}{' …' if len(argmax) > 16 else ''}"
        elif c.name == "input" and c.value is not None:
            value = f"{c.value['samples']} sample(s), sha256 {str(c.value['sha256'])[:16]}…"
        elif c.name == "srs":
            value = f"{c.value['kind']} {c.value['sha256'][:16]}…"
        elif c.name in ("weights", "input commitment"):
            value = ", ".join(str(x)[:16] + "…" for x in c.value[:2])
        else:
            value = "-"
        lines.append(f"  {c.name:<9} {mark:<9} {value}: {c.basis}")
    if v.srs is not None and not v.srs.trusted:
        lines.append(f"WARNING: {v.srs.label}")
    if not v.model_bound:
        lines.append("WARNING: the model is NOT bound: this verdict says the proofs are valid for the given vk, not for any named model")
    if b.meta.created or b.meta.tools:
        lines.append(f"  metadata (not verified): created {printable(b.meta.created)}, "
                     f"ezkl {printable(b.meta.tools.get('ezkl', '?'))}")
    return "\n".join(lines)


def _verify_onchain(bundle: Path, record: bool, model_id: str | None, rpc_url: str | None,
                    key_file: Path | None, store: Path | None, json_out: bool, batch: bool = False) -> None:
    from zkml.bundle import Bundle
    from zkml.evm.deploy import open_chain
    from zkml.evm.verify_onchain import verify_bundle_onchain

    report = progress(json_out)

    def go() -> tuple[Any, dict[str, Any]]:
        b = Bundle.load(bundle)
        st = _store(store)
        chain = open_chain(st, rpc_url, key_file, progress=report)
        res = verify_bundle_onchain(b, st, chain, model_id=model_id, record=record, batch=batch, progress=report)
        if record and res["valid"]:
            b.with_receipt(res).save(bundle)
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


def reproduce(
    model: Annotated[Path, typer.Argument(help="Your ONNX file.")],
    bundle: Annotated[Path | None, typer.Argument(help="A proof bundle whose circuit (from the store) to check.")] = None,
    circuit: Annotated[str | None, typer.Option("--circuit", help="A circuit folder or id instead of a bundle.")] = None,
    settings: Annotated[Path | None, typer.Option("--settings", help="settings.json (with --vk and --srs).")] = None,
    vk: Annotated[Path | None, typer.Option("--vk", help="Verifying key to check.")] = None,
    srs_file: Annotated[Path | None, typer.Option("--srs", help="SRS file.")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Does this verifying key belong to this ONNX? Recompile it with the circuit's settings, regenerate the vk, compare. Exit 1 if not."""
    from zkml.bundle import Bundle
    from zkml.reproduce import reproduce_named

    def go() -> Any:
        b = Bundle.load(bundle) if bundle is not None else None
        return reproduce_named(model, _store(store), bundle=b, circuit=circuit, settings=settings, vk=vk,
                               srs=srs_file, progress=progress(json_out))

    r = run(go)
    data = r.as_dict()
    if r.binds_model:
        emit(json_out, data, f"match: {r.detail()} ({r.seconds:.1f}s)")
        return
    if json_out:
        emit(True, data, "")
    else:
        typer.echo(("MISMATCH: " if not r.vk_match else "NOT BOUND: ") + r.detail(), err=True)
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
            d = b.to_json()
            from zkml.srs import identify_digest

            srs_label = identify_digest(b.srs_sha256, b.srs_logrows, _store(store)).label
            summary = {k: d[k] for k in ("model", "circuit", "srs", "samples", "outputs", "metadata")}
            summary["note"] = "inspect shows what the bundle claims; nothing here is verified (use zkml verify)"
            summary["proofs"] = [{"first_sample": e.first_sample, "real_samples": e.real_samples,
                                  "instances": len(e.instances[0]) if e.instances else 0,
                                  "proof_bytes": len(e.proof_hex) // 2 - 1} for e in b.proofs]
            vis = b.visibility
            human = "\n".join([
                f"proof bundle v{d['version']} (claims, not verified: run `zkml verify`)",
                f"  model     sha256 {b.model_sha256}",
                f"  circuit   {b.circuit_id} (logrows {b.circuit.logrows}, batch {b.batch_size}, "
                f"input {vis.input}, params {vis.params}, output {vis.output})",
                f"  vk        sha256 {b.vk_sha256}",
                f"  srs       sha256 {b.srs_sha256[:16]}… k={b.srs_logrows}: {srs_label}",
                f"  samples   {b.samples} in {len(b.proofs)} proof(s) of {summary['proofs'][0]['proof_bytes']} bytes",
                "  outputs   " + ("private" if b.outputs is None else f"argmax {[int(np.argmax(r)) for r in b.outputs][:16]}"),
                "  metadata  " + printable(f"created {b.meta.created}, {len(b.onchain)} claimed on-chain receipt(s)"),
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
            f"  srs       k={s['srs']['logrows']}: {s['srs']['origin']['label']}",
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
    app.command("reproduce")(reproduce)
