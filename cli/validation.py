"""``zkml registry gate`` and ``zkml registry withdraw-bond``: the validation gate and SLA bond of a model.

    zkml registry gate digits_mlp --require-audit 0.75 --sla 0.5 --slash 0.4 --k 8 --rows 360 --input-scale 7 --bond 1.0
    zkml registry withdraw-bond digits_mlp     # first: request (the notice period starts); again after it: withdraw

Audits of a pending version: ``zkml audit commit --pending …`` opens one in the gate (see cli/audit.py).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from zkml_cli.common import JsonOpt, KeyFileOpt, RpcOpt, StoreOpt, emit, progress, run

ModelArg = Annotated[str, typer.Argument(help="Model: a name this store registered, 0xOWNER/name, or a 0x-bytes32 id.")]


def _wei(eth: str) -> int:
    from zkml.errors import InputError

    try:
        value = Decimal(eth) * 10**18
    except InvalidOperation:
        raise InputError(f"--bond must be an amount of ETH, got {eth!r}") from None
    if value < 0 or value != value.to_integral_value():
        raise InputError(f"--bond must be a non-negative amount of ETH with at most 18 decimals, got {eth!r}")
    return int(value)


def gate(
    model: ModelArg,
    require_audit: Annotated[float, typer.Option("--require-audit", help="Accuracy an update must show on an on-chain audit of its version (0: no gate).")] = 0.0,
    sla: Annotated[float, typer.Option("--sla", help="SLA accuracy: an audit below it pays --slash of the bond to its auditor (0: no SLA).")] = 0.0,
    slash: Annotated[float, typer.Option("--slash", help="Share of the bond the first breach of a version pays.")] = 0.5,
    k: Annotated[int, typer.Option("--k", help="Rows an audit samples.")] = 8,
    rows: Annotated[int, typer.Option("--rows", help="Rows under the model's dataset root.")] = 0,
    input_scale: Annotated[int, typer.Option("--input-scale", help="The audited circuits' input scale (settings run_args.input_scale).")] = 7,
    ttl: Annotated[int, typer.Option("--audit-ttl", help="Seconds an opened audit may stay open (60 s to 7 days).")] = 3600,
    notice: Annotated[int, typer.Option("--notice", help="Seconds between a withdrawal request and the withdrawal (at least --audit-ttl).")] = 86_400,
    bond: Annotated[str, typer.Option("--bond", help="ETH to deposit as the SLA bond.")] = "0",
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Configure the model's validation gate and SLA (owner, no update pending), name it, deposit a bond."""
    from zkml.evm.deploy import open_chain
    from zkml.evm.registry.gate import GateConfig, setup_gate, to_bps
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        cfg = GateConfig(to_bps(require_audit, "--require-audit"), to_bps(sla, "--sla"), to_bps(slash, "--slash"), k,
                         rows, input_scale, ttl, notice)
        return setup_gate(st, open_chain(st, rpc_url, key_file, progress=report), model, cfg, _wei(bond),
                          progress=report)

    r = run(go)
    c = r["config"]
    emit(json_out, r, "\n".join([
        f"model {r['model_id']}: gate {r['gate']}",
        f"  require {100 * c['require_accuracy']:.2f}% on {c['k']} of {c['n_rows']} rows; SLA "
        f"{100 * c['sla_accuracy']:.2f}% (breach pays {100 * c['slash_share']:.0f}% of the bond)",
        f"  bond {r['bond_wei'] / 1e18:g} ETH, notice {c['notice_period']} s, audits open at most {c['audit_ttl']} s",
        f"  txs {', '.join(f'{k_} {v[:18]}…' for k_, v in r['txs'].items())}",
    ]))


def withdraw_bond(
    model: ModelArg,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Request the bond's withdrawal; run again after the notice period to withdraw it (owner)."""
    from zkml.evm.deploy import open_chain
    from zkml.evm.registry.gate import withdraw_bond as _withdraw
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        return _withdraw(st, open_chain(st, rpc_url, key_file, progress=report), model, progress=report)

    r = run(go)
    if r["action"] == "requested":
        from datetime import UTC, datetime

        when = datetime.fromtimestamp(r["withdraw_after"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        human = (f"model {r['model_id']}: withdrawal of {r['bond_wei'] / 1e18:g} ETH requested (tx {r['tx'][:18]}…); "
                 f"run again from {when}")
    else:
        human = f"model {r['model_id']}: withdrew {r['bond_wei'] / 1e18:g} ETH (tx {r['tx'][:18]}…, gas {r['gas']:,})"
    emit(json_out, r, human)


def gate_lines(state: dict[str, Any] | None) -> list[str]:
    """The lines ``zkml registry show`` prints for a model's gate."""
    if state is None:
        return ["  gate               none (updates finalize after their window, unaudited)"]
    c = state["config"]
    lines = [f"  gate               {state['gate']}: require {100 * c['require_accuracy']:.2f}% on {c['k']} rows, "
             f"SLA {100 * c['sla_accuracy']:.2f}% (breach pays {100 * c['slash_share']:.0f}%)",
             f"  bond               {state['bond_wei'] / 1e18:g} ETH"
             + (f", withdrawal requested (from {state['withdraw_after']})" if state["withdraw_after"] else "")
             + f"; {state['open_audits']['open']} audit(s) opened and not submitted"]
    if "tally" in state:
        t = state["tally"]
        lines.append(f"  pending v{state['version']} audits {t['passes']} passed, "
                     f"{'a FAILED one' if t['failed'] else 'none failed'}, {t['open']} open: "
                     f"{'the gate approves' if state['approves'] else 'the gate does not approve yet'}")
    return lines


def register(app: typer.Typer) -> None:
    """Attach ``gate`` and ``withdraw-bond`` to the registry group."""
    app.command("gate")(gate)
    app.command("withdraw-bond")(withdraw_bond)


