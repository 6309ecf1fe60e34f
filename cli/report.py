"""``zkml report``: a static HTML page of a model's public on-chain facts (record, history, committee,
verified proofs, audits), with float-vs-circuit plots for bundles whose proofs the chain verified.

    zkml report MODEL_ID --html DIR [--bundle B.json …] [--rpc-url URL] [--json]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import JsonOpt, RpcOpt, StoreOpt, emit, progress, run

ModelIdArg = Annotated[str, typer.Argument(help="Model: a name this store registered, 0xOWNER/name, or a 0x-bytes32 id.")]


def report(
    model_id: ModelIdArg,
    html_dir: Annotated[Path, typer.Option("--html", help="Directory to write index.html to (created if missing).")],
    bundles: Annotated[list[Path] | None, typer.Option("--bundle", metavar="B.json", help="A proof bundle (untrusted) to match against the chain "
                                                       "by instances hash; repeatable.")] = None,
    rpc_url: RpcOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a self-contained HTML report of the model's on-chain record, history, committee, proofs and audits."""
    from zkml.evm.deploy import open_chain
    from zkml.report import write_report
    from zkml.store import Store

    say = progress(json_out)

    def go() -> Any:
        st = Store(store)
        return write_report(st, open_chain(st, rpc_url, progress=say), model_id, html_dir, bundles=bundles or [],
                            progress=say)

    r = run(go)
    d = r.data
    proofs = [p for b in d.bundles for p in b.proofs]
    same = sum(1 for p in proofs if p.onchain is not None and p.same_proof)
    instances = sum(1 for p in proofs if p.onchain is not None and not p.same_proof)
    actions = sum(len(c.actions) for c in d.committees)
    emit(json_out, {"path": r.path, **d.to_json()}, "\n".join([
        f"report of model {d.model_id} (chain {d.chain_id}, block {d.block}) written to {r.path}",
        f"  versions {len(d.versions)} (active {d.current_version}{', PAUSED' if d.paused else ''}), "
        f"proofs verified {len(d.proofs)}, audits {len(d.audits)}, committee actions {actions}",
        *([f"  bundles {len(d.bundles)}: {same} of {len(proofs)} proof(s) verified on chain"
           + (f", {instances} more whose instances were (by another proof)" if instances else "")
           + f", {len(proofs) - same - instances} not verified on chain"] if d.bundles else []),
    ]))


def register(app: typer.Typer) -> None:
    """Attach ``zkml report`` to the root app."""
    app.command("report")(report)
