"""Deploying circuits and checking bundles on a chain, with the store as the record.

``deploy_circuit`` generates the circuit's Halo2 verifier (ezkl), compiles it
with the pinned solc-js, checks EIP-170, deploys it, makes sure a
``ModelRegistry`` exists on that chain, and registers (or, for an existing
model, proposes an update of) the model record. Everything it deployed is
written to ``<store>/chains/<chain_id>.json`` (addresses, tx hashes, gas), and
a recorded address is trusted only while code is still there.

Without ``rpc_url`` the embedded chain is used: the store's detached anvil
(``zkml chain up``), started on demand, with anvil's well-known dev key.

With a signing key the registration carries the owner's EIP-712 signature of
the record (``registerSigned``): the signer becomes the model's owner, and the
transaction key only submits it. ``record_dataset_root`` records a dataset
Merkle root for a registered model that has none (``zkml data commit --register``).

Updates (``zkml registry …``): ``propose_circuit`` deploys a new circuit's
verifier and proposes it as the model's next version, committing to a test
input and the output the new circuit proves on it; ``challenge_update``
submits a fraud proof against the pending update; ``registry_action``
finalizes it after the window, or pauses / unpauses / rolls back the model
(emergency role). The store's record follows the registry's active version.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkml.circuit import Circuit
from zkml.commitments.cid import metadata_uri as cid_metadata_uri
from zkml.errors import ChainError, ConfigError
from zkml.evm.anvil import chain_up
from zkml.evm.chain import Chain, connect, load_private_key
from zkml.evm.registry import (
    InstanceLayout,
    ModelRecord,
    Registry,
    compile_registry,
)
from zkml.evm.solc import DEFAULT_EVM_VERSION
from zkml.evm.verifier import VerifierDeployment, compile_verifier, deploy_verifier, generate_verifier
from zkml.evm.registry.signing import SigningKey
from zkml.quant import weights_commitment_bytes32
from zkml.store import Store
from zkml.util import read_json, write_json_atomic


def open_chain(store: Store, rpc_url: str | None = None, key_file: str | Path | None = None,
               progress: Callable[[str], None] = lambda _: None) -> Chain:
    """Connect to ``rpc_url`` (key from ``$ZKML_PRIVATE_KEY`` or ``key_file``), or to the embedded chain.

    ``rpc_url`` may be an ordered comma-separated list (failover, see
    :mod:`zkml.evm.chain`); ``progress`` hears which endpoint answered.

    Raises:
        ChainError: no endpoint answers, endpoints on different chains, or the embedded anvil cannot start.
        ToolError: anvil is not installed.
    """
    key = load_private_key(key_file)
    if rpc_url:
        return connect(rpc_url, key, allow_dev_key=True, report=progress)
    info = chain_up(store.root)
    progress(f"embedded chain: anvil at {info.rpc_url} (chain {info.chain_id})")
    return connect(info.rpc_url, key, allow_dev_key=True, expected_chain_id=info.chain_id)


def _record_path(store: Store, chain: Chain) -> Path:
    return store.chain_records(chain.chain_id)


def load_records(store: Store, chain: Chain) -> dict[str, Any]:
    """This store's deployments on ``chain`` (empty when none)."""
    p = _record_path(store, chain)
    if p.is_file():
        try:
            data = read_json(p)
            if isinstance(data, dict):
                data.setdefault("verifiers", {})
                data.setdefault("models", {})
                return data
        except (ValueError, OSError):
            pass
    return {"chain_id": chain.chain_id, "registry": None, "verifiers": {}, "models": {}}


def save_records(store: Store, chain: Chain, data: dict[str, Any]) -> None:
    write_json_atomic(_record_path(store, chain), data)


def _alive(chain: Chain, address: str | None) -> bool:
    return bool(address) and len(chain.code_at(address)) > 0  # type: ignore[arg-type]


def ensure_registry(store: Store, chain: Chain, *, challenge_window: int | None = None,
                    emergency: str | None = None, evm_version: str = DEFAULT_EVM_VERSION,
                    progress: Callable[[str], None] = lambda _: None) -> Registry:
    """The registry this store uses on ``chain``, deployed if missing (or gone).

    A new registry's admin is the sender (it may only grant roles); the
    emergency role goes to ``emergency`` (default: nobody), never to the admin.
    """
    rec = load_records(store, chain)
    reg = rec.get("registry") or {}
    if _alive(chain, reg.get("address")):
        return Registry.at(chain, reg["address"], compile_registry(cache_dir=store.solc_cache))
    progress("deploying ModelRegistry")
    kwargs: dict[str, Any] = {"evm_version": evm_version, "cache_dir": store.solc_cache}
    if challenge_window is not None:
        kwargs["challenge_window"] = challenge_window
    registry = Registry.deploy(chain, emergency=emergency, **kwargs)
    dep = registry.deployment
    rec["registry"] = {"address": registry.address, "tx": dep.tx_hash if dep else None,
                       "gas": dep.gas_used if dep else None, "deployed": time.time()}
    rec["models"] = {}
    save_records(store, chain, rec)
    return registry


@dataclass(frozen=True)
class DeployResult:
    """What ``zkml deploy`` did."""

    chain_id: int
    rpc_url: str
    model_id: str
    model_id_hex: str
    circuit_id: str
    verifier: dict[str, Any]
    registry: str
    registration: dict[str, Any]
    batch: dict[str, Any] | None = None
    """The deferred verifier set for ``verifyBatch`` (``zkml deploy --batch-verify``), else None."""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def default_model_id(circuit: Circuit) -> str:
    """The model's name: its ONNX file stem (stable across versions of the model)."""
    return Path(str(circuit.manifest["model"].get("source") or circuit.circuit_id)).stem


def ensure_verifier(circuit: Circuit, store: Store, chain: Chain, *, reusable: bool = False,
                    evm_version: str = DEFAULT_EVM_VERSION,
                    progress: Callable[[str], None] = lambda _: None) -> tuple[VerifierDeployment, dict[str, Any]]:
    """``circuit``'s verifier on ``chain``: the one this store deployed if its code is still there, else a new one.

    Returns the deployment and its store record (address, size, gas, txs).

    Raises:
        VerifierTooLarge: over EIP-170 without ``reusable``.
        ChainError: a deployment failed.
    """
    rec = load_records(store, chain)
    key = f"{circuit.circuit_id}:{'reusable' if reusable else 'per-circuit'}:{evm_version}"
    known = rec["verifiers"].get(key)
    if known and _alive(chain, known["address"]) and (not reusable or _alive(chain, known.get("vka"))):
        progress(f"verifier already deployed at {known['address']}")
        vinfo = known
        deployment = VerifierDeployment(address=known["address"], reusable=reusable, vka_address=known.get("vka"))
    else:
        progress("generating the Solidity verifier (ezkl)")
        out_dir = store.circuit_evm_dir(circuit.circuit_id)
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out_dir, reusable=reusable)
        progress(f"compiling it with solc-js (evmVersion {evm_version})")
        compiled = compile_verifier(art, evm_version=evm_version, cache_dir=store.solc_cache)
        progress(f"deploying the verifier ({compiled.contract.deployed_size} bytes of code)")
        deployment = deploy_verifier(chain, compiled)
        vinfo = {
            "address": deployment.address,
            "vka": deployment.vka_address,
            "reusable": reusable,
            "evm_version": evm_version,
            "bytecode_bytes": compiled.contract.deployed_size,
            "deploy_gas": deployment.deploy_gas,
            "txs": [d.tx_hash for d in deployment.deployments],
            "sol_sha256": art.sol_sha256,
            "optimizer_runs": compiled.contract.optimizer_runs,
            "optimizations": list(art.optimizations),
            "ec_muls_saved": art.ec_muls_saved,
        }
        rec["verifiers"][key] = vinfo
        save_records(store, chain, rec)
    return deployment, vinfo


def deploy_circuit(
    circuit: Circuit,
    store: Store,
    chain: Chain,
    *,
    model_id: str | None = None,
    reusable: bool = False,
    evm_version: str = DEFAULT_EVM_VERSION,
    dataset_root: str | None = None,
    metadata_uri: str = "",
    sign_key: SigningKey | None = None,
    batch: bool = False,
    challenge_window: int | None = None,
    emergency: str | None = None,
    dataset_file: str | Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> DeployResult:
    """Generate, compile, deploy and register ``circuit``'s verifier.

    The model is registered as ``model_id`` (a name) in the owner's namespace:
    the owner is ``sign_key``'s address when given (the record carries its
    EIP-712 signature), else the sender. With ``batch`` the verifier's
    deferred-pairing variant is deployed too and named in the record, so
    ``verifyBatch`` checks many proofs with one pairing; a model already
    registered without one gets it only by an update (``zkml registry
    propose … --batch-verify``). ``challenge_window`` (default: the
    registry's minimum) is how long the model's next update must wait.

    Unless ``metadata_uri`` is given, the record's metadata names the circuit
    and the IPFS CIDs of its ONNX, settings, vk, verifier source and
    ``dataset_file`` (:func:`artifact_cids`, format in
    :mod:`zkml.commitments.cid`); the registration block timestamps them.

    Raises:
        VerifierTooLarge: over EIP-170 without ``reusable``.
        ConfigError: the model is registered with another circuit, or without the requested batch verifier.
        ChainError / RegistryError: a transaction failed.
    """
    mid = model_id or default_model_id(circuit)
    deployment, vinfo = ensure_verifier(circuit, store, chain, reusable=reusable, evm_version=evm_version,
                                        progress=progress)
    registry = ensure_registry(store, chain, emergency=emergency, evm_version=evm_version, progress=progress)
    rec = load_records(store, chain)
    owner = sign_key.address if sign_key is not None else chain.sender
    if owner is None:
        raise ConfigError("registering a model needs a signing key")
    mid_hex = "0x" + registry.model_id(mid, owner).hex()
    current = rec["models"].get(mid)
    binfo = None
    if current and current.get("circuit_id") == circuit.circuit_id and current.get("verifier") == deployment.address:
        progress(f"model '{mid}' is already registered with this circuit")
        registration = current
        if batch and not current.get("deferred"):
            raise ConfigError(
                f"model '{mid}' is registered without a batch verifier; it becomes part of the record only through "
                f"an update: `zkml registry propose {mid} {circuit.circuit_id} --test-input FILE --batch-verify`"
            )
    elif current:
        raise ConfigError(
            f"model '{mid}' is already registered with circuit {current.get('circuit_id')}; updates go through "
            f"the challenge window (`zkml registry propose {mid} {circuit.circuit_id} --test-input FILE`), "
            "or deploy under another --model-id"
        )
    else:
        if batch:
            binfo = ensure_deferred(circuit, store, chain, evm_version=evm_version, progress=progress)
        cids = artifact_cids(circuit, store, vinfo, dataset_file)
        if not metadata_uri:
            metadata_uri = cid_metadata_uri(circuit.circuit_id, {k: v["cid"] for k, v in cids.items()})
        record = circuit_record(circuit, deployment, dataset_root=dataset_root, metadata_uri=metadata_uri,
                                deferred=binfo["address"] if binfo else None, challenge_window=challenge_window)
        if sign_key is not None:
            progress(f"registering model '{mid}' with a record signed by {sign_key.address}")
            receipt = registry.register_signed(mid, record, sign_key)
        else:
            progress(f"registering model '{mid}' in the registry")
            receipt = registry.register(mid, record)
        registration = {"model_id_hex": mid_hex, "circuit_id": circuit.circuit_id, "verifier": deployment.address,
                        "owner": owner, "signed": sign_key is not None, "tx": receipt.tx_hash,
                        "gas": receipt.gas_used, "block": receipt.block,
                        "deferred": binfo["address"] if binfo else None,
                        "metadata_uri": metadata_uri, "cids": cids,
                        "versions": {"1": {"circuit_id": circuit.circuit_id, "verifier": deployment.address}}}
        rec["models"][mid] = registration
        save_records(store, chain, rec)
    if batch and binfo is None:
        binfo = {"address": registration.get("deferred")}
    return DeployResult(chain.chain_id, chain.rpc_url, mid, mid_hex, circuit.circuit_id, vinfo, registry.address,
                        registration, binfo)


def artifact_cids(circuit: Circuit, store: Store, vinfo: dict[str, Any],
                  dataset_file: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The content ids of what a deployment stands on: ONNX, settings, vk, verifier source, dataset file.

    Each entry is ``{"cid", "kind", "size", "file"}`` (kind: see :mod:`zkml.commitments.cid`). The ONNX
    is the circuit's copy when it has the registered digest; the verifier source is the one whose
    sha256 the store recorded at deployment (left out when that file is gone).

    Raises:
        InputError: ``dataset_file`` cannot be read.
    """
    from zkml.commitments.cid import cid_of_file
    from zkml.util import sha256_file

    files: dict[str, Path] = {}
    if circuit.onnx.is_file() and sha256_file(circuit.onnx) == circuit.model_sha256:
        files["onnx"] = circuit.onnx
    else:
        source = Path(str(circuit.manifest["model"].get("source") or ""))
        if source.is_file() and sha256_file(source) == circuit.model_sha256:
            files["onnx"] = source
    files["settings"] = circuit.settings_path
    files["vk"] = circuit.vk
    sol = store.circuit_evm_dir(circuit.circuit_id) / (
        "Halo2VerifierReusable.sol" if vinfo.get("reusable") else "Halo2Verifier.sol")
    if sol.is_file() and sha256_file(sol) == vinfo.get("sol_sha256"):
        files["verifier"] = sol
    if dataset_file is not None:
        files["dataset"] = Path(dataset_file)
    out = {}
    for name, path in files.items():
        c = cid_of_file(path)
        out[name] = {"cid": c.cid, "kind": c.kind, "size": c.size, "file": str(path)}
    return out


def check_registered(store: Store, chain: Chain, model: str, paths: list[str | Path]) -> dict[str, Any]:
    """Local files against the CIDs in ``model``'s active record (the chain's word, not the store's).

    Returns the registered CIDs and, per file, its CID and the artifacts it matches; ``ok`` is true
    when every file matches one.

    Raises:
        ChainError / RegistryError: no registry, unknown model.
        ConfigError: the record carries no CIDs (registered before they were recorded, or by another tool).
        InputError: a file cannot be read.
    """
    from zkml.commitments.cid import check_files, parse_metadata_uri

    registry = ensure_existing_registry(store, chain)
    info = registry.model(resolve_model(store, chain, registry, model))
    meta = parse_metadata_uri(info.record.metadata_uri)
    if not meta.cids:
        raise ConfigError(f"model {model!r} version {info.current_version} records no content ids "
                          f"(metadata {info.record.metadata_uri[:80]!r})")
    checks = check_files(meta.cids, list(paths))
    return {"chain_id": chain.chain_id, "rpc_url": chain.rpc_url, "model_id": "0x" + info.model_id.hex(),
            "version": info.current_version, "registered": meta.cids,
            "files": [{"path": c.path, "cid": c.cid, "matches": list(c.matches)} for c in checks],
            "ok": all(c.matches for c in checks)}


def ensure_deferred(circuit: Circuit, store: Store, chain: Chain, *, evm_version: str = DEFAULT_EVM_VERSION,
                    progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The deferred-pairing variant of ``circuit``'s verifier on ``chain``, deployed once (store record).

    It becomes usable only as part of a model record (registration or update).

    Raises:
        ConfigError / TemplateMismatch / VerifierTooLarge: see :mod:`zkml.evm.batch`.
        ChainError: the deployment failed.
    """
    from zkml.evm.batch import compile_deferred, generate_deferred

    rec = load_records(store, chain)
    key = f"{circuit.circuit_id}:deferred:{evm_version}"
    known = rec["verifiers"].get(key)
    if known and _alive(chain, known["address"]):
        return dict(known)
    progress("generating the deferred-pairing variant of the verifier (for batch verification)")
    out_dir = store.circuit_evm_dir(circuit.circuit_id)
    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out_dir)
    compiled = compile_deferred(generate_deferred(art, out_dir), evm_version=evm_version,
                                cache_dir=store.solc_cache)
    progress(f"deploying it ({compiled.deployed_size} bytes of code)")
    d = chain.deploy(compiled)
    info = {"address": d.address, "deploy_gas": d.gas_used, "tx": d.tx_hash, "bytecode_bytes": compiled.deployed_size}
    rec["verifiers"][key] = info
    save_records(store, chain, rec)
    return dict(info)


def circuit_record(circuit: Circuit, deployment: VerifierDeployment, *, dataset_root: str | bytes | None = None,
                   metadata_uri: str = "", deferred: str | None = None,
                   challenge_window: int | None = None) -> ModelRecord:
    """The registry record of ``circuit`` served by ``deployment`` (and ``deferred`` for batches)."""
    return ModelRecord.for_deployment(
        deployment,
        onnx_sha256=circuit.model_sha256,
        vk_digest=circuit.files["vk.key"],
        layout=InstanceLayout.from_settings(circuit.settings_path),
        weights_commitment=weights_commitment_bytes32(circuit.manifest.get("weights_commitment")),
        dataset_root=dataset_root,
        metadata_uri=metadata_uri or f"zkml:circuit:{circuit.circuit_id}",
        deferred_verifier=deferred,
        challenge_window=challenge_window,
    )


def record_dataset_root(store: Store, chain: Chain, model_id: str, root: bytes,
                        progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Record ``root`` as the dataset root of ``model_id``'s active version in this store's registry.

    Idempotent: a root already equal to ``root`` is left alone (no transaction).
    The sender must be the model's owner.

    Raises:
        ChainError: no registry recorded for this chain in the store.
        RegistryError: unknown model, not the owner, or another root already set.
    """
    registry = ensure_existing_registry(store, chain)
    info = registry.model(resolve_model(store, chain, registry, model_id))
    result: dict[str, Any] = {"chain_id": chain.chain_id, "registry": registry.address, "model_id": model_id,
                              "model_id_hex": "0x" + info.model_id.hex(), "version": info.current_version,
                              "dataset_root": "0x" + root.hex(), "tx": None, "gas": None}
    if info.record.dataset_root == root:
        progress(f"model '{model_id}' version {info.current_version} already has this dataset root")
        return result
    progress(f"recording the dataset root of model '{model_id}' version {info.current_version}")
    receipt = registry.set_dataset_root(info.model_id, root)
    result.update(tx=receipt.tx_hash, gas=receipt.gas_used, block=receipt.block)
    rec = load_records(store, chain)
    if model_id in rec["models"]:
        rec["models"][model_id]["dataset_root"] = result["dataset_root"]
        save_records(store, chain, rec)
    return result


def resolve_model(store: Store, chain: Chain, registry: Registry, model: str) -> bytes:
    """The registry id of ``model``: the id this store registered under that name on ``chain``, else
    :meth:`Registry.model_id` (a 0x id, ``0xOWNER/name``, or a name in the sender's namespace).

    Raises:
        ConfigError: a bare name with no store record and no signing key.
    """
    entry = load_records(store, chain)["models"].get(model)
    if entry and entry.get("model_id_hex"):
        return bytes.fromhex(str(entry["model_id_hex"]).removeprefix("0x"))
    return registry.model_id(model)


def ensure_existing_registry(store: Store, chain: Chain) -> Registry:
    """The registry recorded for ``chain`` (never deploys one).

    Raises:
        ChainError: none recorded, or no code at the recorded address.
    """
    rec = load_records(store, chain)
    addr = (rec.get("registry") or {}).get("address")
    if not addr:
        raise ChainError(f"no ModelRegistry recorded for chain {chain.chain_id} in this store: run `zkml deploy` first")
    if not _alive(chain, addr):
        raise ChainError(f"registry not deployed: no code at {addr} on chain {chain.chain_id}")
    return Registry.at(chain, addr, compile_registry(cache_dir=store.solc_cache))


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
