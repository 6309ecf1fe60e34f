"""Operating a deployed model: ``zkml cid`` (content ids of artifacts) and ``zkml monitor`` (drift, circuit breaker).

    zkml cid FILE…        # IPFS CIDv1 of each file, offline
    zkml monitor MODEL_ID --reference REF.npz [--window BLOCKS] [--bundles DIR] [--pause-on-alert]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import JsonOpt, KeyFileOpt, RpcOpt, StoreOpt, emit, progress, run


def cid(
    files: Annotated[list[Path], typer.Argument(metavar="FILE…", help="Files to name.")],
    json_out: JsonOpt = False,
) -> None:
    """Print the IPFS CIDv1 of each file, computed offline.

    A file of at most 256 KiB gets the CID `ipfs add --cid-version 1 --raw-leaves` prints (bafkrei…); a larger
    one a raw-codec CID of its sha256, marked `raw-sha256` (not the UnixFS root `ipfs add` would give).
    """
    from zkml.commitments.cid import cid_of_file

    out = run(lambda: [(str(f), cid_of_file(f)) for f in files])
    data = {"files": [{"path": p, "cid": c.cid, "kind": c.kind, "size": c.size, "sha256": c.sha256,
                       "matches_ipfs_add": c.matches_ipfs_add} for p, c in out]}
    emit(json_out, data, "\n".join(f"{c.cid}  {p}" + ("" if c.matches_ipfs_add else "  (raw-sha256: over 256 KiB, "
                                                      "not the ipfs add root)") for p, c in out))


def monitor(
    model_id: Annotated[str, typer.Argument(help="Model: a name this store registered, 0xOWNER/name, or a 0x id.")],
    reference: Annotated[Path, typer.Option("--reference", help="Reference .npz (x, y): the in-distribution data.")],
    window: Annotated[int, typer.Option("--window", help="Blocks per window.")] = 10,
    bundles: Annotated[Path | None, typer.Option("--bundles", help="Directory of proof bundles: their instances, matched to the events by hash, give inputs/outputs.")] = None,
    from_block: Annotated[int, typer.Option("--from-block", help="First block to read.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory for monitor.json and monitor.png.")] = Path("monitor-out"),
    gas_baseline: Annotated[float | None, typer.Option("--gas-baseline", help="Baseline verification gas (default: the first window's mean).")] = None,
    ks_threshold: Annotated[float, typer.Option("--ks-threshold", help="Alert when a window's mean input KS exceeds this.")] = 0.4,
    psi_threshold: Annotated[float, typer.Option("--psi-threshold", help="Alert when a window's argmax PSI exceeds this.")] = 2.0,
    gas_threshold: Annotated[float, typer.Option("--gas-threshold", help="Alert when a window's gas over the baseline exceeds this.")] = 1.5,
    pause_on_alert: Annotated[bool, typer.Option("--pause-on-alert", help="On an alert, pause the model through the MonitorGuard (the key must be one of its monitors).")] = False,
    guard: Annotated[str | None, typer.Option("--guard", help="MonitorGuard address (default: the one this store recorded).")] = None,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Drift of a deployed model over block windows (inputs, predicted classes, gas). Exit 1 on an alert."""
    from zkml.evm.deploy import ensure_existing_registry, open_chain, resolve_model
    from zkml.monitor import open_guard, run_monitor
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        chain = open_chain(st, rpc_url, key_file, progress=report)
        reg = ensure_existing_registry(st, chain)
        mid = resolve_model(st, chain, reg, model_id)
        g = open_guard(st, chain, guard) if pause_on_alert else None
        return run_monitor(reg, mid, reference, window=window, bundles_dir=bundles, from_block=from_block,
                           thresholds={"input_ks_mean": ks_threshold, "argmax_psi": psi_threshold,
                                       "gas_ratio": gas_threshold},
                           gas_baseline=gas_baseline, out_dir=out, guard=g, progress=report)

    r = run(go)
    rep = r.report

    def f(v: float | None) -> str:
        return "     -" if v is None else f"{v:6.3f}"

    lines = [f"model {rep.model_id[:18]}…: {len(rep.windows)} window(s) of {rep.window} blocks, "
             f"{rep.unmatched} proof(s) without a bundle",
             "  blocks          proofs  ks_mean  ks_max  argmax_psi  gas_mean  gas_ratio  alerts"]
    for w in rep.windows:
        lines.append(f"  {w.start_block:>6}-{w.end_block:<6}  {w.proofs:>3}/{w.matched:<3} {f(w.input_ks_mean)}  "
                     f"{f(w.input_ks_max)}  {f(w.argmax_psi)}      {w.gas_mean:>9.0f}  {w.gas_ratio:7.3f}    "
                     f"{','.join(w.alerts) or 'ok'}")
    lines.append(f"  json {r.json_path}" + (f", plot {r.plot_path}" if r.plot_path else ""))
    if r.paused:
        lines.append(f"  PAUSED through MonitorGuard {r.paused['guard']}: {r.paused['statistic']} = "
                     f"{r.paused['value']:.3f} (tx {r.paused['tx']})")
    data = {**rep.to_json(), "json_path": r.json_path, "plot_path": r.plot_path, "paused": r.paused}
    emit(json_out, data, "\n".join(lines))
    if rep.alert is not None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach ``cid`` and ``monitor``."""
    app.command("cid")(cid)
    app.command("monitor")(monitor)
