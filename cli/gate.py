"""``zkml gate [zkml.toml]``: the CI gate.

Exit codes: 0 every check passed; 1 a threshold failed (the report names the
check, with numbers); 2 the configuration is wrong (one line on stderr).
The JSON and Markdown reports and the proof bundles go to ``--out``; the
Markdown is appended to ``$GITHUB_STEP_SUMMARY`` when that is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import refuse, JsonOpt, RayOpt, RpcOpt, ServerOpt, StoreOpt, WorkersOpt, emit, progress, run

ConfigArg = Annotated[Path, typer.Argument(help="Gate config (TOML): models, test set, thresholds.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Directory for report.json, report.md and the proof bundles.")]


def gate(
    config: ConfigArg = Path("zkml.toml"),
    out: OutOpt = Path("zkml-gate"),
    store: StoreOpt = None,
    rpc_url: RpcOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    server: ServerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compile, sample, prove, verify (locally and on chain) and compare every model; exit 1 if a threshold fails."""
    from zkml.gate import load_config, run_gate
    from zkml.scale.route import ProveRoute
    from zkml.store import Store

    def go() -> Any:
        route = ProveRoute.from_flags(workers, ray, server)
        cfg = load_config(config)
        return run_gate(cfg, store=Store(store), out_dir=out, rpc_url=rpc_url, route=route, progress=progress(json_out))

    report = run(go)
    emit(json_out, report.as_dict(),
         report.summary() + f"\nreport: {out / 'report.json'}, {out / 'report.md'}"
         + "".join(f"\nWARNING: {n}" for n in report.notes))
    if not report.passed:
        from zkml.errors import first_failure

        raise refuse(first_failure(list(report.failures()), "gate failed"))


def register(app: typer.Typer) -> None:
    """Attach ``zkml gate`` to the root app."""
    app.command("gate")(gate)
