"""On-chain commands: deploy a circuit's verifier, inspect the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import JsonOpt, RpcOpt, StoreOpt, emit, progress, run

KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help="File holding the deployer's private key (else $ZKML_PRIVATE_KEY; anvil's dev key on the embedded chain).")]
ModelIdOpt = Annotated[str | None, typer.Option("--model-id", help="Registry model id: a name or 0x-bytes32 (default: the ONNX file stem).")]
EvmOpt = Annotated[str, typer.Option("--evm-version", help="solc evmVersion (e.g. paris for chains without PUSH0).")]
SignOpt = Annotated[bool, typer.Option("--sign", help="Register with a record the owner signs (EIP-712): key from --sign-key-file, else $ZKML_PRIVATE_KEY. The signer becomes the owner; the transaction key only submits.")]
SignKeyFileOpt = Annotated[Path | None, typer.Option("--sign-key-file", envvar="ZKML_SIGN_KEY_FILE", help="Owner's signing key: hex key or keystore JSON (password from $ZKML_KEY_PASSWORD). Implies --sign.")]

registry_app = typer.Typer(name="registry", help="Read the on-chain ModelRegistry.", no_args_is_help=True, add_completion=False)


def deploy(
    target: Annotated[str, typer.Argument(help="Circuit id/folder, recipe or ONNX (compiled if needed).")],
    reusable: Annotated[bool, typer.Option("--reusable", help="ezkl's reusable verifier + VK artifact (for circuits over EIP-170).")] = False,
    model_id: ModelIdOpt = None,
    evm_version: EvmOpt = "cancun",
    dataset_root: Annotated[str | None, typer.Option("--dataset-root", help="Merkle root of the training/test data (zkml data commit).")] = None,
    sign: SignOpt = False,
    sign_key_file: SignKeyFileOpt = None,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate, compile (solc-js), size-check, deploy and register a circuit's verifier."""
    from zkml.evm.deploy import deploy_circuit, open_chain
    from zkml.pipeline import resolve_circuit
    from zkml.provenance import load_signing_key
    from zkml.store import Store

    report = progress(json_out)

    def go() -> Any:
        sign_key = load_signing_key(sign_key_file) if sign or sign_key_file is not None else None
        st = Store(store)
        circuit, _ = resolve_circuit(target, st, progress=report)
        chain = open_chain(st, rpc_url, key_file, progress=report)
        return deploy_circuit(circuit, st, chain, model_id=model_id, reusable=reusable, evm_version=evm_version,
                              dataset_root=dataset_root, sign_key=sign_key, progress=report)

    r = run(go)
    v = r.verifier
    emit(json_out, r.as_dict(), "\n".join([
        f"model '{r.model_id}' ({r.model_id_hex[:18]}…) registered on chain {r.chain_id}",
        f"  verifier  {v['address']} ({'reusable' if v.get('reusable') else 'per-circuit'}, {v.get('bytecode_bytes', '?')} bytes of code"
        f" / EIP-170 limit 24576, deploy gas {v.get('deploy_gas', '?')})",
        f"  registry  {r.registry}",
        f"  owner     {r.registration.get('owner', '?')}" + (" (signed record)" if r.registration.get("signed") else ""),
        f"  tx        {r.registration.get('tx')} (gas {r.registration.get('gas')})",
    ]))


def show(
    model_id: Annotated[str, typer.Argument(help="Model id: a name or 0x-bytes32.")],
    rpc_url: RpcOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The model's on-chain record and its history (from the registry's events)."""
    from zkml.evm.deploy import ensure_existing_registry, open_chain
    from zkml.store import Store

    def go() -> tuple[Any, Any, Any]:
        st = Store(store)
        chain = open_chain(st, rpc_url)
        reg = ensure_existing_registry(st, chain)
        return chain, reg.model(model_id), reg.history(model_id)

    chain, info, events = run(go)
    rec = info.record.to_json()
    data = {"chain_id": chain.chain_id, "model_id": "0x" + info.model_id.hex(), "owner": info.owner,
            "current_version": info.current_version, "latest_version": info.latest_version, "paused": info.paused,
            "pending": None if info.pending is None else str(info.pending), "record": rec,
            "history": [{"event": e.name, "block": e.block, "tx": e.tx_hash, "args": e.args} for e in events]}
    lines = [f"model {data['model_id']} on chain {chain.chain_id}: version {info.current_version}"
             + (" (PAUSED)" if info.paused else "") + f", owner {info.owner}"]
    lines += [f"  {k:18} {v}" for k, v in rec.items() if k != "layout"]
    if info.pending is not None:
        lines.append(f"  pending update     {info.pending}")
    lines.append(f"  history ({len(events)} events):")
    lines += [f"    block {e.block:>6}  {e.name}  {e.tx_hash[:18]}…" for e in events]
    emit(json_out, data, "\n".join(lines))


registry_app.command("show")(show)


def register(app: typer.Typer) -> None:
    """Attach ``deploy`` and the ``registry`` group."""
    app.command("deploy")(deploy)
    app.add_typer(registry_app, name="registry")
