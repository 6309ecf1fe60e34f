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

from zkml.bundle import Bundle
from zkml.circuit import Circuit
from zkml.errors import ChainError, ConfigError, InputError
from zkml.evm.anvil import chain_up
from zkml.evm.chain import Chain, connect, load_private_key
from zkml.evm.registry import (
    InstanceLayout,
    ModelRecord,
    Registry,
    compile_registry,
    proposal_commitments,
    to_model_id,
)
from zkml.evm.solc import DEFAULT_EVM_VERSION
from zkml.evm.verifier import VerifierDeployment, compile_verifier, deploy_verifier, generate_verifier
from zkml.provenance import SigningKey
from zkml.quant import weights_commitment_bytes32
from zkml.store import Store
from zkml.util import read_json, write_json_atomic


def open_chain(store: Store, rpc_url: str | None = None, key_file: str | Path | None = None,
               progress: Callable[[str], None] = lambda _: None) -> Chain:
    """Connect to ``rpc_url`` (key from ``$ZKML_PRIVATE_KEY`` or ``key_file``), or to the embedded chain.

    Raises:
        ChainError: dead RPC, or the embedded anvil cannot start.
        ToolError: anvil is not installed.
    """
    key = load_private_key(key_file)
    if rpc_url:
        return connect(rpc_url, key, allow_dev_key=True)
    info = chain_up(store.root)
    progress(f"embedded chain: anvil at {info.rpc_url} (chain {info.chain_id})")
    return connect(info.rpc_url, key, allow_dev_key=True, expected_chain_id=info.chain_id)


def _record_path(store: Store, chain: Chain) -> Path:
    return store.root / "chains" / f"{chain.chain_id}.json"


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
                    evm_version: str = DEFAULT_EVM_VERSION, progress: Callable[[str], None] = lambda _: None) -> Registry:
    """The registry this store uses on ``chain``, deployed if missing (or gone)."""
    rec = load_records(store, chain)
    reg = rec.get("registry") or {}
    if _alive(chain, reg.get("address")):
        return Registry.at(chain, reg["address"], compile_registry(cache_dir=store.root / "solc-cache"))
    progress("deploying ModelRegistry")
    kwargs: dict[str, Any] = {"evm_version": evm_version, "cache_dir": store.root / "solc-cache"}
    if challenge_window is not None:
        kwargs["challenge_window"] = challenge_window
    registry = Registry.deploy(chain, **kwargs)
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
        out_dir = circuit.folder / "evm"
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out_dir, reusable=reusable)
        progress(f"compiling it with solc-js (evmVersion {evm_version})")
        compiled = compile_verifier(art, evm_version=evm_version, cache_dir=store.root / "solc-cache")
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
    progress: Callable[[str], None] = lambda _: None,
) -> DeployResult:
    """Generate, compile, deploy and register ``circuit``'s verifier.

    With ``sign_key`` the model is registered under that key's EIP-712
    signature of the record, and the key's address becomes the owner. With
    ``batch`` the verifier's deferred-pairing variant is deployed too and set
    for the model, so ``verifyBatch`` checks many proofs with one pairing.

    Raises:
        VerifierTooLarge: over EIP-170 without ``reusable``.
        ChainError / RegistryError: a transaction failed.
    """
    mid = model_id or default_model_id(circuit)
    deployment, vinfo = ensure_verifier(circuit, store, chain, reusable=reusable, evm_version=evm_version,
                                        progress=progress)
    registry = ensure_registry(store, chain, evm_version=evm_version, progress=progress)
    rec = load_records(store, chain)
    record = circuit_record(circuit, deployment, dataset_root=dataset_root, metadata_uri=metadata_uri)
    mid_hex = "0x" + to_model_id(mid).hex()
    current = rec["models"].get(mid)
    if current and current.get("circuit_id") == circuit.circuit_id and current.get("verifier") == deployment.address:
        progress(f"model '{mid}' is already registered with this circuit")
        registration = current
    elif current:
        raise ConfigError(
            f"model '{mid}' is already registered with circuit {current.get('circuit_id')}; updates go through "
            f"the challenge window (`zkml registry propose {mid} {circuit.circuit_id} --test-input FILE`), "
            "or deploy under another --model-id"
        )
    else:
        if sign_key is not None:
            progress(f"registering model '{mid}' with a record signed by {sign_key.address}")
            receipt = registry.register_signed(mid, record, sign_key)
            owner = sign_key.address
        else:
            progress(f"registering model '{mid}' in the registry")
            receipt = registry.register(mid, record)
            owner = chain.sender
        registration = {"model_id_hex": mid_hex, "circuit_id": circuit.circuit_id, "verifier": deployment.address,
                        "owner": owner, "signed": sign_key is not None, "tx": receipt.tx_hash,
                        "gas": receipt.gas_used, "block": receipt.block,
                        "versions": {"1": {"circuit_id": circuit.circuit_id, "verifier": deployment.address}}}
        rec["models"][mid] = registration
        save_records(store, chain, rec)
    binfo = (enable_batch(circuit, store, chain, registry, mid, deployment.address, evm_version=evm_version,
                          progress=progress) if batch else None)
    return DeployResult(chain.chain_id, chain.rpc_url, mid, mid_hex, circuit.circuit_id, vinfo, registry.address,
                        registration, binfo)


def enable_batch(circuit: Circuit, store: Store, chain: Chain, registry: Registry, model_id: str, verifier: str, *,
                 evm_version: str = DEFAULT_EVM_VERSION, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Deploy (once) the deferred-pairing variant of ``circuit``'s verifier and set it for ``model_id``.

    Raises:
        ConfigError: the model uses the reusable verifier.
        ChainError / RegistryError: a transaction failed (e.g. the sender does not own the model).
    """
    from zkml.evm.batch import compile_deferred, generate_deferred

    rec = load_records(store, chain)
    key = f"{circuit.circuit_id}:deferred:{evm_version}"
    known = rec["verifiers"].get(key)
    if known and _alive(chain, known["address"]):
        info = known
    else:
        progress("generating the deferred-pairing variant of the verifier (for batch verification)")
        out_dir = circuit.folder / "evm"
        art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out_dir)
        compiled = compile_deferred(generate_deferred(art, out_dir), evm_version=evm_version,
                                    cache_dir=store.root / "solc-cache")
        progress(f"deploying it ({compiled.deployed_size} bytes of code)")
        d = chain.deploy(compiled)
        info = {"address": d.address, "deploy_gas": d.gas_used, "tx": d.tx_hash, "bytecode_bytes": compiled.deployed_size}
        rec["verifiers"][key] = info
        save_records(store, chain, rec)
    mid = to_model_id(model_id)
    if registry.contract.call("deferredVerifier", mid, verifier).lower() != info["address"].lower():
        progress(f"setting it for model '{model_id}' in the registry")
        receipt = registry.set_deferred_verifier(model_id, info["address"])
        info = {**info, "set_tx": receipt.tx_hash, "set_gas": receipt.gas_used}
    return info


def circuit_record(circuit: Circuit, deployment: VerifierDeployment, *, dataset_root: str | bytes | None = None,
                   metadata_uri: str = "") -> ModelRecord:
    """The registry record of ``circuit`` served by ``deployment``."""
    return ModelRecord.for_deployment(
        deployment,
        onnx_sha256=circuit.model_sha256,
        vk_digest=circuit.files["vk.key"],
        layout=InstanceLayout.from_settings(circuit.settings_path),
        weights_commitment=weights_commitment_bytes32(circuit.manifest.get("weights_commitment")),
        dataset_root=dataset_root,
        metadata_uri=metadata_uri or f"zkml:circuit:{circuit.circuit_id}",
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
    info = registry.model(model_id)
    result: dict[str, Any] = {"chain_id": chain.chain_id, "registry": registry.address, "model_id": model_id,
                              "model_id_hex": "0x" + info.model_id.hex(), "version": info.current_version,
                              "dataset_root": "0x" + root.hex(), "tx": None, "gas": None}
    if info.record.dataset_root == root:
        progress(f"model '{model_id}' version {info.current_version} already has this dataset root")
        return result
    progress(f"recording the dataset root of model '{model_id}' version {info.current_version}")
    receipt = registry.set_dataset_root(model_id, root)
    result.update(tx=receipt.tx_hash, gas=receipt.gas_used, block=receipt.block)
    rec = load_records(store, chain)
    if model_id in rec["models"]:
        rec["models"][model_id]["dataset_root"] = result["dataset_root"]
        save_records(store, chain, rec)
    return result


def model_for_bundle(store: Store, chain: Chain, bundle: Bundle) -> str:
    """The model id this store registered for the bundle's circuit on ``chain``.

    Raises:
        ConfigError: none (pass --model-id).
    """
    rec = load_records(store, chain)
    hits = [m for m, r in rec["models"].items() if r.get("circuit_id") == bundle.circuit_id]
    if len(hits) != 1:
        raise ConfigError(
            f"no model registered for circuit {bundle.circuit_id} on chain {chain.chain_id} in this store: "
            "run `zkml deploy` or pass --model-id"
        )
    return hits[0]


def verify_bundle_onchain(
    bundle: Bundle, store: Store, chain: Chain, *, model_id: str | None = None, record: bool = False,
    batch: bool = False, progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Verify every proof of ``bundle`` through the registry: eth_call (and a transaction with ``record``).

    With ``batch``, all proofs go in one ``verifyBatch`` call (one pairing; the
    model needs ``zkml deploy --batch-verify``); the verdict is for the whole batch.

    Returns a receipt dict (chain id, registry, verifier, per-proof verdict, gas, tx hashes).

    Raises:
        ConfigError: ``batch`` with ``record`` (a batch check is an eth_call, it records nothing).
        ChainError / RegistryError: the chain or registry refused (paused, unknown model, …).
    """
    if batch and record:
        raise ConfigError("--batch-verify checks all proofs in one eth_call and records nothing: drop --record")
    registry = ensure_existing_registry(store, chain)
    mid = model_id or model_for_bundle(store, chain, bundle)
    info = registry.model(mid)
    ezkl_version = str(bundle.data.get("tools", {}).get("ezkl", ""))
    results: list[dict[str, Any]] = []
    batched: dict[str, Any] | None = None
    if batch:
        progress(f"checking {len(bundle.proofs)} proof(s) in one verifyBatch call")
        ok, gas = registry.verify_batch(mid, [e.to_ezkl(ezkl_version) for e in bundle.proofs])
        results = [{"proof": i, "valid": ok} for i in range(len(bundle.proofs))]
        batched = {"proofs": len(bundle.proofs), "gas": gas,
                   "gas_per_proof": gas / len(bundle.proofs) if gas else None}
    for i, entry in enumerate(bundle.proofs if not batch else []):
        proof_json = entry.to_ezkl(ezkl_version)
        ok = registry.verify(mid, proof_json)
        res: dict[str, Any] = {"proof": i, "valid": ok}
        if ok:
            res["gas"] = registry.verify_gas(mid, proof_json)
            if record:
                progress(f"recording proof {i} on chain")
                r = registry.verify_and_record(mid, proof_json)
                res.update(tx=r.tx_hash, block=r.block, gas_used=r.gas_used)
        results.append(res)
    return {
        "chain_id": chain.chain_id,
        "rpc_url": chain.rpc_url,
        "registry": registry.address,
        "model_id": mid,
        "model_version": info.current_version,
        "verifier": info.record.verifier,
        "valid": all(r["valid"] for r in results),
        "proofs": results,
        "batch": batched,
        "recorded": record,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# Updates and emergency controls


@dataclass(frozen=True)
class ProposeResult:
    """What ``zkml registry propose`` did."""

    chain_id: int
    registry: str
    model_id: str
    model_id_hex: str
    circuit_id: str
    version: int
    """Version number the update will get."""
    deadline: int
    """Unix time from which anyone may finalize it (challenges before)."""
    verifier: dict[str, Any]
    test_input_commitment: str
    predicted_output_commitment: str
    test_proof: str
    """The proof of the test input with the new circuit (a bundle: challengers need the test input)."""
    tx: str
    gas: int

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _model_entry(store: Store, chain: Chain, model_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    rec = load_records(store, chain)
    return rec, rec["models"].get(model_id)


def propose_circuit(
    circuit: Circuit,
    store: Store,
    chain: Chain,
    model_id: str,
    test_input: Any,
    *,
    reusable: bool = False,
    evm_version: str = DEFAULT_EVM_VERSION,
    dataset_root: str | None = None,
    metadata_uri: str = "",
    progress: Callable[[str], None] = lambda _: None,
) -> ProposeResult:
    """Propose ``circuit`` as the next version of ``model_id`` in this store's registry.

    Deploys the circuit's verifier (or reuses this store's), proves
    ``test_input`` (one proof's worth of samples) with the new circuit, and
    proposes the record with ``commit(input slice)`` and ``commit(output
    slice)`` of that proof. The dataset root carries over from the active
    version unless ``dataset_root`` is given. The test proof is saved under
    ``<store>/chains/proposals/`` so challengers can read the test input.

    Raises:
        ChainError: no registry recorded for this chain.
        RegistryError: unknown model, not the owner, an update already pending, ...
        InputError: the test input does not fit the circuit or needs several proofs.
        VerifierTooLarge / ProofError: deploying or proving failed.
    """
    from zkml.prove import prove

    registry = ensure_existing_registry(store, chain)
    info = registry.model(model_id)
    if info.pending is not None:
        raise ConfigError(f"model '{model_id}' already has update v{info.pending.version} pending: "
                          "finalize or challenge it first")
    deployment, vinfo = ensure_verifier(circuit, store, chain, reusable=reusable, evm_version=evm_version,
                                        progress=progress)
    # Commitments: the new circuit's proof of the test input
    progress("proving the test input with the new circuit")
    bundle = prove(circuit, test_input, reveal_input=True, progress=progress)
    if len(bundle.proofs) != 1:
        raise InputError(f"the test input must fit one proof (batch size {circuit.batch_size}), "
                         f"it needs {len(bundle.proofs)}")
    ezkl_version = str(bundle.data.get("tools", {}).get("ezkl", ""))
    layout = InstanceLayout.from_settings(circuit.settings_path)
    test_in, predicted = proposal_commitments(layout, bundle.proofs[0].to_ezkl(ezkl_version))
    record = circuit_record(circuit, deployment, dataset_root=dataset_root or info.record.dataset_root,
                            metadata_uri=metadata_uri)
    progress(f"proposing circuit {circuit.circuit_id} as the next version of model '{model_id}'")
    version, deadline, receipt = registry.propose_update(model_id, record, test_in, predicted)
    # The record: the test proof for challengers, the pending version in the store
    mid_hex = "0x" + info.model_id.hex()
    proof_path = store.root / "chains" / "proposals" / f"{chain.chain_id}-{mid_hex[:18]}-v{version}.json"
    proof_path.parent.mkdir(parents=True, exist_ok=True)
    bundle.save(proof_path)
    rec, entry = _model_entry(store, chain, model_id)
    if entry is not None:
        entry.setdefault("versions", {})[str(version)] = {"circuit_id": circuit.circuit_id,
                                                          "verifier": deployment.address}
        entry["pending"] = {"version": version, "deadline": deadline, "tx": receipt.tx_hash}
        save_records(store, chain, rec)
    return ProposeResult(chain.chain_id, registry.address, model_id, mid_hex, circuit.circuit_id, version, deadline,
                         vinfo, "0x" + test_in.hex(), "0x" + predicted.hex(), str(proof_path), receipt.tx_hash,
                         receipt.gas_used)


#: Registry transactions that take only the model id (finalize: anyone; the rest: emergency role).
REGISTRY_ACTIONS = ("finalize", "pause", "unpause", "rollback", "cancel_update")


def _follow_active(store: Store, chain: Chain, model_id: str, version: int, verifier: str) -> None:
    """Point the store's record of ``model_id`` at the registry's active version (circuit, verifier)."""
    rec, entry = _model_entry(store, chain, model_id)
    if entry is None:
        return
    known = entry.get("versions", {}).get(str(version))
    if known:
        entry["circuit_id"] = known["circuit_id"]
    entry["verifier"] = verifier
    entry["version"] = version
    save_records(store, chain, rec)


def registry_action(store: Store, chain: Chain, model_id: str, action: str) -> dict[str, Any]:
    """Send ``action`` (one of :data:`REGISTRY_ACTIONS`) for ``model_id``; returns the receipt and the new state.

    Raises:
        ConfigError: unknown action.
        ChainError: no registry recorded for this chain.
        RegistryError: the registry refused (window open, not paused, nothing to roll back, missing role, ...).
    """
    if action not in REGISTRY_ACTIONS:
        raise ConfigError(f"unknown registry action {action!r}")
    registry = ensure_existing_registry(store, chain)
    receipt = getattr(registry, action)(model_id)
    info = registry.model(model_id)
    _follow_active(store, chain, model_id, info.current_version, info.record.verifier)
    if action in ("finalize", "cancel_update"):
        rec, entry = _model_entry(store, chain, model_id)
        if entry is not None and entry.pop("pending", None) is not None:
            save_records(store, chain, rec)
    return {"chain_id": chain.chain_id, "registry": registry.address, "model_id": model_id,
            "model_id_hex": "0x" + info.model_id.hex(), "action": action, "tx": receipt.tx_hash,
            "gas": receipt.gas_used, "block": receipt.block, "events": [n for n, _ in registry.events(receipt)],
            "current_version": info.current_version, "latest_version": info.latest_version,
            "paused": info.paused, "verifier": info.record.verifier}


def challenge_update(store: Store, chain: Chain, model_id: str, bundle: Bundle, proof: int = 0) -> dict[str, Any]:
    """Submit proof ``proof`` of ``bundle`` as a fraud proof against ``model_id``'s pending update.

    Success rejects the update (``UpdateChallenged``).

    Raises:
        InputError: the bundle has no proof ``proof``.
        ChainError: no registry recorded for this chain.
        RegistryError: no pending update, window closed, not the committed test input, output matches the
            prediction (the challenge failed), invalid proof, ...
    """
    if not 0 <= proof < len(bundle.proofs):
        raise InputError(f"the bundle has {len(bundle.proofs)} proof(s), no proof {proof}")
    registry = ensure_existing_registry(store, chain)
    before = registry.model(model_id)
    ezkl_version = str(bundle.data.get("tools", {}).get("ezkl", ""))
    receipt = registry.challenge(model_id, bundle.proofs[proof].to_ezkl(ezkl_version))
    rejected = before.pending.version if before.pending is not None else None
    rec, entry = _model_entry(store, chain, model_id)
    if entry is not None and entry.pop("pending", None) is not None:
        save_records(store, chain, rec)
    return {"chain_id": chain.chain_id, "registry": registry.address, "model_id": model_id,
            "model_id_hex": "0x" + before.model_id.hex(), "action": "challenge", "rejected_version": rejected,
            "tx": receipt.tx_hash, "gas": receipt.gas_used, "block": receipt.block,
            "events": [n for n, _ in registry.events(receipt)], "current_version": before.current_version,
            "status": registry.version_status(model_id, rejected) if rejected else None}


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
    return Registry.at(chain, addr, compile_registry(cache_dir=store.root / "solc-cache"))


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
