"""``zkml registry committee|approve|execute``: k-of-n committee actions (verifiers/ModelCommittee.sol).

    zkml registry committee MODEL --member 0xA --member 0xB --member 0xC --threshold 2   # owner, once
    zkml registry approve hotfix MODEL --key-file member.key -o approval1.json           # a member, no tx
    zkml registry execute hotfix MODEL approval1.json approval2.json                     # anyone
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import JsonOpt, KeyFileOpt, RpcOpt, StoreOpt, emit, progress, run

ActionArg = Annotated[str, typer.Argument(help="pause, unpause, rollback, hotfix (the pending update, now) or set-committee.")]
ModelArg = Annotated[str, typer.Argument(help="Model: a name this store registered, 0xOWNER/name, or a 0x-bytes32 id.")]


def committee(
    model_id: ModelArg,
    member: Annotated[list[str], typer.Option("--member", help="A member's address (repeat).")],
    threshold: Annotated[int, typer.Option("--threshold", help="Approvals an action needs (k).")],
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deploy a k-of-n committee and name it the model's committee (owner, while none is set)."""
    from zkml.evm.deploy import open_chain
    from zkml.evm.governance import committee_deploy
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        return committee_deploy(st, open_chain(st, rpc_url, key_file, progress=report), model_id, member, threshold)

    r = run(go)
    emit(json_out, r, f"model '{model_id}': committee {r['committee']} ({r['threshold']} of {len(r['members'])}: "
                      f"{', '.join(r['members'])})\n  tx {r['tx']} (gas {r['gas']})")


def approve(
    action: ActionArg,
    model_id: ModelArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the approval JSON.")],
    new_committee: Annotated[str | None, typer.Option("--new-committee", help="set-committee only: the committee to hand the model to.")] = None,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign one member's approval of ACTION on MODEL as the chain stands now (EIP-712; no transaction)."""
    from zkml.evm.deploy import open_chain
    from zkml.evm.governance import committee_approve
    from zkml.keys import load_eth_key
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        key = load_eth_key(key_file)
        a = committee_approve(st, open_chain(st, rpc_url, progress=report), model_id, action, key, new_committee)
        a.write(out)
        return a

    a = run(go)
    emit(json_out, {**a.to_json(), "path": str(out)},
         f"{a.signer} approves {action} of model 0x{a.action.model_id.hex()[:16]}… version {a.action.version} "
         f"(record {('0x' + a.action.record_hash.hex())[:18]}…, nonce {a.action.nonce}) -> {out}")


def execute(
    action: ActionArg,
    model_id: ModelArg,
    approvals: Annotated[list[Path], typer.Argument(metavar="APPROVAL…", help="Approval files (zkml registry approve).")],
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Submit k members' approvals of ACTION on MODEL (any account sends the transaction)."""
    from zkml.evm.deploy import open_chain
    from zkml.evm.governance import committee_execute
    from zkml.evm.registry.committee import Approval
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        parsed = [Approval.read(p) for p in approvals]
        return committee_execute(st, open_chain(st, rpc_url, key_file, progress=report), model_id, action, parsed)

    r = run(go)
    state = f"active version {r['current_version']}" + (", PAUSED" if r["paused"] else "")
    emit(json_out, r, f"model '{model_id}': committee {action} done by {len(r['signers'])} members "
                      f"({', '.join(r['events'])}); {state}\n  tx {r['tx']} (gas {r['gas']})")


def register(registry_app: typer.Typer) -> None:
    """Attach the committee commands to the ``registry`` group."""
    registry_app.command("committee")(committee)
    registry_app.command("approve")(approve)
    registry_app.command("execute")(execute)
