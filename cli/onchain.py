"""On-chain commands: deploy a circuit's verifier; inspect and update the registry.

    zkml registry propose MODEL_ID CIRCUIT --test-input FILE   # owner: next version, after the window
    zkml registry finalize MODEL_ID                            # anyone, once the window has passed
    zkml registry challenge MODEL_ID PROOF_BUNDLE              # anyone, during the window
    zkml registry pause|unpause|rollback MODEL_ID              # emergency role
    zkml registry check MODEL_ID FILE…                         # local files against the registered CIDs
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli import committee as _committee
from zkml_cli import validation as _validation
from zkml_cli.common import JsonOpt, KeyFileOpt, RpcOpt, StoreOpt, emit, progress, run

ModelIdOpt = Annotated[str | None, typer.Option("--model-id", help="Model name, registered in the owner's namespace (default: the ONNX file stem).")]
WindowOpt = Annotated[int | None, typer.Option("--challenge-window", help="Seconds the model's next update must wait (default: the registry's minimum; fixed in the record).")]
EvmOpt = Annotated[str, typer.Option("--evm-version", help="solc evmVersion (e.g. paris for chains without PUSH0).")]
SignOpt = Annotated[bool, typer.Option("--sign", help="Register with a record the owner signs (EIP-712): key from --sign-key-file, else $ZKML_PRIVATE_KEY. The signer becomes the owner; the transaction key only submits.")]
SignKeyFileOpt = Annotated[Path | None, typer.Option("--sign-key-file", envvar="ZKML_SIGN_KEY_FILE", help="Owner's signing key: hex key or keystore JSON (password from $ZKML_KEY_PASSWORD). Implies --sign.")]

registry_app = typer.Typer(name="registry", help="Read and update the on-chain ModelRegistry.", no_args_is_help=True, add_completion=False)
ModelIdArg = Annotated[str, typer.Argument(help="Model: a name this store registered, 0xOWNER/name, or a 0x-bytes32 id.")]


def deploy(
    target: Annotated[str, typer.Argument(help="Circuit id/folder, recipe or ONNX (compiled if needed).")],
    reusable: Annotated[bool, typer.Option("--reusable", help="ezkl's reusable verifier + VK artifact (for circuits over EIP-170).")] = False,
    model_id: ModelIdOpt = None,
    evm_version: EvmOpt = "cancun",
    dataset_root: Annotated[str | None, typer.Option("--dataset-root", help="Merkle root of the training/test data (zkml data commit).")] = None,
    sign: SignOpt = False,
    sign_key_file: SignKeyFileOpt = None,
    batch: Annotated[bool, typer.Option("--batch-verify", help="Also deploy the deferred-pairing verifier and name it in the record so "
                                                       "`zkml verify --onchain --batch-verify` checks many proofs with one pairing.")] = False,
    challenge_window: WindowOpt = None,
    emergency: Annotated[str | None, typer.Option("--emergency", help="Address given the registry's emergency role (pause, rollback) if this deploys the registry; never the admin (the sender). Default: nobody.")] = None,
    dataset: Annotated[Path | None, typer.Option("--dataset", help="Dataset file (e.g. the .npz the model was trained/tested on): its CID goes into the record's metadata.")] = None,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate, compile (solc-js), size-check, deploy and register a circuit's verifier (with the artifacts' CIDs)."""
    from zkml.evm.deploy import deploy_circuit, open_chain
    from zkml.targets import resolve_circuit
    from zkml.evm.registry.signing import load_signing_key
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        sign_key = load_signing_key(sign_key_file) if sign or sign_key_file is not None else None
        st = Store(store)
        circuit, _ = resolve_circuit(target, st, progress=report)
        chain = open_chain(st, rpc_url, key_file, progress=report)
        return deploy_circuit(circuit, st, chain, model_id=model_id, reusable=reusable, evm_version=evm_version,
                              dataset_root=dataset_root, sign_key=sign_key, batch=batch,
                              challenge_window=challenge_window, emergency=emergency, dataset_file=dataset,
                              progress=report)

    r = run(go)
    v = r.verifier
    emit(json_out, r.as_dict(), "\n".join([
        f"model '{r.model_id}' ({r.model_id_hex[:18]}…) registered on chain {r.chain_id}",
        f"  verifier  {v['address']} ({'reusable' if v.get('reusable') else 'per-circuit'}, {v.get('bytecode_bytes', '?')} bytes of code"
        f" / EIP-170 limit 24576, deploy gas {v.get('deploy_gas', '?')})",
        *([f"  gas       {v['ec_muls_saved']} ecMul (~{6_000 * v['ec_muls_saved']:,} gas) fewer per verification than ezkl's"
           " contract (zero VK points folded)"] if v.get("ec_muls_saved") else []),
        f"  registry  {r.registry}",
        f"  owner     {r.registration.get('owner', '?')}" + (" (signed record)" if r.registration.get("signed") else ""),
        f"  tx        {r.registration.get('tx')} (gas {r.registration.get('gas')})",
        f"  id        {r.model_id_hex} (name '{r.model_id}' in the owner's namespace)",
        *([f"  batch     deferred verifier {r.batch['address']} in the record, for verifyBatch"] if r.batch else []),
        *[f"  cid       {name:9} {c['cid']}" + ("" if c["kind"] == "ipfs-raw-leaf" else f" ({c['kind']})")
          for name, c in (r.registration.get("cids") or {}).items()],
        f"  rpc       {r.rpc_url}",
    ]))


def show(
    model_id: ModelIdArg,
    rpc_url: RpcOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The model's on-chain record and its history (from the registry's events)."""
    from zkml.evm.deploy import ensure_existing_registry, open_chain
    from zkml.evm.deploy import resolve_model
    from zkml.commitments.cid import parse_metadata_uri
    from zkml.evm.registry import code_hash
    from zkml.store import Store

    report = progress(json_out)

    def go() -> tuple[Any, Any, Any, bool]:
        st = Store(store)
        chain = open_chain(st, rpc_url, progress=report)
        reg = ensure_existing_registry(st, chain)
        mid = resolve_model(st, chain, reg, model_id)
        info = reg.model(mid)
        same_code = code_hash(chain, info.record.verifier) == info.record.verifier_code_hash
        committee = None
        addr = reg.committee_of(mid)
        if addr:
            from zkml.evm.registry.committee import Committee

            c = Committee.at(chain, addr)
            actions = [{"event": e.name, "block": e.block, "tx": e.tx_hash, "args": e.args} for e in c.history(mid)]
            committee = {"address": addr, "members": c.members(), "threshold": c.threshold(), "actions": actions}
        from zkml.evm.registry.gate import store_gate

        g = store_gate(st, chain, reg, mid)
        gate = None if g is None else g.state(mid, info.pending.version if info.pending is not None else None)
        return chain, info, reg.history(mid), same_code, committee, gate

    chain, info, events, same_code, committee, gate = run(go)
    rec = info.record.to_json()
    data = {"chain_id": chain.chain_id, "model_id": "0x" + info.model_id.hex(), "owner": info.owner,
            "pin": {"owner": info.owner, "verifier_code_hash": rec["verifier_code_hash"],
                    "verifier_code_matches": same_code},
            "current_version": info.current_version, "latest_version": info.latest_version, "paused": info.paused,
            "pending": None if info.pending is None else str(info.pending), "record": rec,
            "history": [{"event": e.name, "block": e.block, "tx": e.tx_hash, "args": e.args} for e in events]}
    data["rpc_url"] = chain.rpc_url
    data["committee"] = committee
    data["gate"] = gate
    lines = [f"model {data['model_id']} on chain {chain.chain_id} (via {chain.rpc_url}): version {info.current_version}"
             + (" (PAUSED)" if info.paused else "") + f", owner {info.owner}"]
    lines.append(f"  pin: owner {info.owner} + verifier code hash {rec['verifier_code_hash']}"
                 + ("" if same_code else "  (CODE CHANGED: the registry refuses this verifier)"))
    lines += [f"  {k:18} {v}" for k, v in rec.items() if k != "layout"]
    meta = parse_metadata_uri(info.record.metadata_uri)
    data["cids"] = meta.cids
    lines += [f"  cid {name:14} {cid}" for name, cid in meta.cids.items()]
    if committee is not None:
        lines.append(f"  committee          {committee['address']}: {committee['threshold']} of "
                     f"{len(committee['members'])} ({', '.join(committee['members'])}), "
                     f"{len(committee['actions'])} action(s)")
        lines += [f"    block {a['block']:>6}  {a['event']}  {a['tx'][:18]}…" for a in committee["actions"]]
    else:
        lines.append("  committee          none (emergency actions: the registry's emergency role only)")
    lines += _validation.gate_lines(gate)
    if info.pending is not None:
        lines.append(f"  pending update     {info.pending}")
    lines.append(f"  history ({len(events)} events):")
    lines += [f"    block {e.block:>6}  {e.name}  {e.tx_hash[:18]}…" for e in events]
    emit(json_out, data, "\n".join(lines))


def _when(ts: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def propose(
    model_id: ModelIdArg,
    target: Annotated[str, typer.Argument(help="The new circuit: id/folder, recipe or ONNX (compiled if needed).")],
    test_input: Annotated[Path, typer.Option("--test-input", help="Test input (one proof's worth of samples): proven with the new circuit; the update commits to it and to the output.")],
    reusable: Annotated[bool, typer.Option("--reusable", help="ezkl's reusable verifier + VK artifact (for circuits over EIP-170).")] = False,
    evm_version: EvmOpt = "cancun",
    dataset_root: Annotated[str | None, typer.Option("--dataset-root", help="Dataset Merkle root of the new version (default: the active version's).")] = None,
    batch: Annotated[bool, typer.Option("--batch-verify", help="Name the new circuit's deferred-pairing verifier in the record (for verifyBatch).")] = False,
    challenge_window: WindowOpt = None,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose a new circuit as the model's next version (owner); it activates after the challenge window."""
    from zkml.evm.deploy import open_chain
    from zkml.evm.governance import propose_circuit
    from zkml.inputs import read_raw
    from zkml.targets import resolve_circuit
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        raw = read_raw(test_input)
        circuit, _ = resolve_circuit(target, st, progress=report)
        chain = open_chain(st, rpc_url, key_file, progress=report)
        return propose_circuit(circuit, st, chain, model_id, raw, reusable=reusable, evm_version=evm_version,
                               dataset_root=dataset_root, batch=batch, challenge_window=challenge_window,
                               progress=report)

    r = run(go)
    emit(json_out, r.as_dict(), "\n".join([
        f"model '{r.model_id}': version {r.version} (circuit {r.circuit_id}) proposed on chain {r.chain_id}",
        f"  verifier   {r.verifier['address']}",
        f"  test input {r.test_input_commitment} -> predicted output {r.predicted_output_commitment}",
        f"  test proof {r.test_proof}",
        f"  tx         {r.tx} (gas {r.gas})",
        f"  challenge window ends {_when(r.deadline)}: then `zkml registry finalize {r.model_id}`",
    ]))


def _action(action: str, model_id: str, rpc_url: str | None, key_file: Path | None, store: Path | None,
            json_out: bool) -> None:
    from zkml.evm.deploy import open_chain
    from zkml.evm.governance import registry_action
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        return registry_action(st, open_chain(st, rpc_url, key_file, progress=report), model_id, action)

    r = run(go)
    state = f"active version {r['current_version']} (verifier {r['verifier']})" + (", PAUSED" if r["paused"] else "")
    emit(json_out, r, f"model '{model_id}': {action} done ({', '.join(r['events'])}); {state}\n"
                      f"  tx {r['tx']} (gas {r['gas']})")


def finalize(model_id: ModelIdArg, rpc_url: RpcOpt = None, key_file: KeyFileOpt = None, store: StoreOpt = None,
             json_out: JsonOpt = False) -> None:
    """Activate the pending update once its challenge window has passed (anyone)."""
    _action("finalize", model_id, rpc_url, key_file, store, json_out)


def pause(model_id: ModelIdArg, rpc_url: RpcOpt = None, key_file: KeyFileOpt = None, store: StoreOpt = None,
          json_out: JsonOpt = False) -> None:
    """Emergency: make verification through this model revert."""
    _action("pause", model_id, rpc_url, key_file, store, json_out)


def unpause(model_id: ModelIdArg, rpc_url: RpcOpt = None, key_file: KeyFileOpt = None, store: StoreOpt = None,
            json_out: JsonOpt = False) -> None:
    """Emergency: lift a pause."""
    _action("unpause", model_id, rpc_url, key_file, store, json_out)


def rollback(model_id: ModelIdArg, rpc_url: RpcOpt = None, key_file: KeyFileOpt = None, store: StoreOpt = None,
             json_out: JsonOpt = False) -> None:
    """Emergency: revoke the active version and reactivate the previous accepted one."""
    _action("rollback", model_id, rpc_url, key_file, store, json_out)


def challenge(
    model_id: ModelIdArg,
    bundle_path: Annotated[Path, typer.Argument(metavar="PROOF_BUNDLE", help="A proof bundle of the proposed circuit on the committed test input.")],
    proof: Annotated[int, typer.Option("--proof", help="Which proof of the bundle to submit.")] = 0,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fraud proof against the pending update: the proposed circuit's output on the test input is not the predicted one."""
    from zkml.bundle import Bundle
    from zkml.evm.governance import challenge_update
    from zkml.evm.deploy import open_chain
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        st = Store(store)
        bundle = Bundle.load(bundle_path)
        return challenge_update(st, open_chain(st, rpc_url, key_file, progress=report), model_id, bundle, proof)

    r = run(go)
    emit(json_out, r, f"model '{model_id}': update v{r['rejected_version']} rejected by the challenge "
                      f"({r['status']}); active version stays {r['current_version']}\n  tx {r['tx']} (gas {r['gas']})")


def check(
    model_id: ModelIdArg,
    files: Annotated[list[Path], typer.Argument(metavar="FILE…", help="Local files (ONNX, settings, vk, verifier source, dataset).")],
    rpc_url: RpcOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Confirm local files against the CIDs in the model's on-chain record. Exit 1 when one matches none."""
    from zkml.evm.deploy import check_registered, open_chain
    from zkml.store import Store

    report = progress(json_out)

    def go() -> dict[str, Any]:
        st = Store(store)
        return check_registered(st, open_chain(st, rpc_url, progress=report), model_id, list(files))

    r = run(go)
    lines = [f"model {r['model_id'][:18]}… version {r['version']} on chain {r['chain_id']} (via {r['rpc_url']}):"]
    for f in r["files"]:
        verdict = ("matches the registered " + ", ".join(f["matches"])) if f["matches"] else "MATCHES NO REGISTERED CID"
        lines.append(f"  {f['path']}  {f['cid']}  {verdict}")
    emit(json_out, r, "\n".join(lines))
    if not r["ok"]:
        raise typer.Exit(1)


registry_app.command("show")(show)
registry_app.command("check")(check)
registry_app.command("propose")(propose)
registry_app.command("finalize")(finalize)
registry_app.command("challenge")(challenge)
registry_app.command("pause")(pause)
registry_app.command("unpause")(unpause)
registry_app.command("rollback")(rollback)
_committee.register(registry_app)  # committee, approve, execute (k-of-n; cli/committee.py)
_validation.register(registry_app)  # gate, withdraw-bond (validation gate and SLA bond; cli/validation.py)


def register(app: typer.Typer) -> None:
    """Attach ``deploy`` and the ``registry`` group."""
    app.command("deploy")(deploy)
    app.add_typer(registry_app, name="registry")
