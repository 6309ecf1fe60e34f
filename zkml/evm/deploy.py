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
from zkml.errors import ChainError, ConfigError, InputError, VerificationError
from zkml.evm.anvil import chain_up
from zkml.evm.chain import Chain, connect, load_private_key
from zkml.evm.registry import (
    InstanceLayout,
    ModelRecord,
    Registry,
    compile_registry,
    proposal_commitments,
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
                    emergency: str | None = None, evm_version: str = DEFAULT_EVM_VERSION,
                    progress: Callable[[str], None] = lambda _: None) -> Registry:
    """The registry this store uses on ``chain``, deployed if missing (or gone).

    A new registry's admin is the sender (it may only grant roles); the
    emergency role goes to ``emergency`` (default: nobody), never to the admin.
    """
    rec = load_records(store, chain)
    reg = rec.get("registry") or {}
    if _alive(chain, reg.get("address")):
        return Registry.at(chain, reg["address"], compile_registry(cache_dir=store.root / "solc-cache"))
    progress("deploying ModelRegistry")
    kwargs: dict[str, Any] = {"evm_version": evm_version, "cache_dir": store.root / "solc-cache"}
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
    challenge_window: int | None = None,
    emergency: str | None = None,
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
                        "versions": {"1": {"circuit_id": circuit.circuit_id, "verifier": deployment.address}}}
        rec["models"][mid] = registration
        save_records(store, chain, rec)
    if batch and binfo is None:
        binfo = {"address": registration.get("deferred")}
    return DeployResult(chain.chain_id, chain.rpc_url, mid, mid_hex, circuit.circuit_id, vinfo, registry.address,
                        registration, binfo)


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
    out_dir = circuit.folder / "evm"
    art = generate_verifier(circuit.vk, circuit.settings_path, circuit.srs.path, out_dir)
    compiled = compile_deferred(generate_deferred(art, out_dir), evm_version=evm_version,
                                cache_dir=store.root / "solc-cache")
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


def model_for_bundle(store: Store, chain: Chain, bundle: Bundle) -> str:
    """The model name this store registered for the bundle's circuit on ``chain``.

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


class OnchainRefused(VerificationError):
    """``verify --onchain`` refused a bundle before sending anything: a local check or the on-chain record
    disagrees with it."""

    check: str
    """Which check refused (``record``, ``local``, ``layout``)."""

    def __init__(self, check: str, message: str):
        super().__init__(f"refused before any on-chain call: {message}")
        self.check = check


def check_against_record(bundle: Bundle, record: ModelRecord, model_hex: str) -> None:
    """The bundle's claimed digests and instances against the registry's record (the chain's word).

    Raises:
        OnchainRefused: the model or vk digest differs from the record, or a proof's instances do not fit
            its layout or carry another weights commitment.
    """
    from zkml.evm.registry_types import ZERO32
    from zkml.evm.verifier import felt_to_int

    # Digests: the record is the trust source for what the model id names
    if bundle.model_sha256.lower() != record.onnx_sha256.hex():
        raise OnchainRefused("record", f"the bundle's model digest {bundle.model_sha256[:16]}… is not the ONNX digest "
                                       f"{record.onnx_sha256.hex()[:16]}… registered for model {model_hex[:18]}…")
    if bundle.vk_sha256.lower() != record.vk_digest.hex():
        raise OnchainRefused("record", f"the bundle's vk digest {bundle.vk_sha256[:16]}… is not the vk digest "
                                       f"{record.vk_digest.hex()[:16]}… registered for model {model_hex[:18]}…")
    # Instances: the layout and the weights commitment the registry will apply
    layout = record.layout
    for i, entry in enumerate(bundle.proofs):
        cols = entry.instances
        if len(cols) != 1 or len(cols[0]) != layout.total:
            raise OnchainRefused("layout", f"proof {i} carries {sum(len(c) for c in cols)} public instances in "
                                           f"{len(cols)} column(s); the registered circuit has {layout.total} in one")
        if layout.weights_len and record.weights_commitment != ZERO32:
            ints = [felt_to_int(x) for x in cols[0]]
            if layout.weights_commitment(ints) != record.weights_commitment:
                raise OnchainRefused("layout", f"proof {i}'s weights commitment is not the registered one")


def local_claims_verdict(bundle: Bundle, store: Store, record: ModelRecord) -> Any:
    """Every local check of ``bundle`` (:func:`zkml.verify.verify_bundle`) against the store's circuit,
    which must be the registered one (same vk and model digests as ``record``).

    The chain checks the SNARK and the layout, not what the bundle says about
    them (input values and digest, decoded outputs, circuit facts): those need
    the circuit's trusted settings, i.e. a circuit this store built.

    Raises:
        OnchainRefused: the circuit is not in this store, is not the registered one, or the verdict is invalid.
    """
    from zkml.errors import StoreError
    from zkml.util import sha256_file
    from zkml.verify import artifacts_from_store, verify_bundle

    try:
        art = artifacts_from_store(bundle, store)
    except StoreError:
        raise OnchainRefused(
            "local", f"circuit {printable_id(bundle.circuit_id)} is not in this store ({store.root}), so the bundle's "
                     "input and output claims cannot be checked against its proof's instances (the chain checks "
                     "only the SNARK): build or import the registered circuit into the store (`zkml compile`) "
                     "and retry") from None
    if sha256_file(art.vk) != record.vk_digest.hex():
        raise OnchainRefused("local", f"the store's circuit {bundle.circuit_id} has another vk than the registered "
                                      f"one ({record.vk_digest.hex()[:16]}…)")
    verdict = verify_bundle(bundle, art)
    if not verdict.valid:
        raise OnchainRefused("local", f"the local check failed: {verdict.reason}")
    return verdict


def printable_id(value: str) -> str:
    """``value`` cut short and stripped of control characters (it comes from an untrusted bundle)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= 80 else text[:77] + "…"


def verify_bundle_onchain(
    bundle: Bundle, store: Store, chain: Chain, *, model_id: str | None = None, record: bool = False,
    batch: bool = False, progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Verify every proof of ``bundle`` through the registry: eth_call (and a transaction with ``record``).

    Before any call: the model's active record is read from the registry;
    the bundle's model and vk digests must equal the record's, its instances
    must fit the record's layout and weights commitment, and every local
    claim check must pass against the store's copy of the registered circuit
    (:func:`local_claims_verdict`). Only then is the SNARK checked on chain.
    A valid result is the one thing a caller may write into the bundle as a
    receipt (it is metadata: no verifier trusts it).

    With ``batch``, all proofs go in one ``verifyBatch`` call (one pairing; the
    record must name a deferred verifier); the verdict is for the whole batch.

    Returns a receipt dict (chain id, registry, verifier, per-proof verdict, gas, tx hashes, local checks).

    Raises:
        OnchainRefused: a check before the chain failed (nothing was sent).
        ConfigError: ``batch`` with ``record`` (a batch check is an eth_call, it records nothing).
        ChainError / RegistryError: the chain or registry refused (paused, unknown model, …).
    """
    if batch and record:
        raise ConfigError("--batch-verify checks all proofs in one eth_call and records nothing: drop --record")
    # The model and its on-chain record (reads only)
    registry = ensure_existing_registry(store, chain)
    name = model_id or model_for_bundle(store, chain, bundle)
    mid = resolve_model(store, chain, registry, name)
    info = registry.model(mid)
    mid_hex = "0x" + mid.hex()
    # Every check that needs no transaction, before any verification call
    check_against_record(bundle, info.record, mid_hex)
    progress("checking the bundle's claims locally against the registered circuit")
    local = local_claims_verdict(bundle, store, info.record)
    # The SNARK, on chain
    ezkl_version = bundle.ezkl_version
    results: list[dict[str, Any]] = []
    batched: dict[str, Any] | None = None
    if batch:
        progress(f"checking {len(bundle.proofs)} proof(s) in one verifyBatch call")
        ok, gas = registry.verify_batch(mid, [e.to_ezkl(ezkl_version) for e in bundle.proofs])
        results = [{"proof": i, "valid": ok} for i in range(len(bundle.proofs))]
        batched = {"proofs": len(bundle.proofs), "gas": gas,
                   "gas_per_proof": gas / len(bundle.proofs) if gas else None}
    else:
        proofs = [e.to_ezkl(ezkl_version) for e in bundle.proofs]
        for i, proof_json in enumerate(proofs):
            ok = registry.verify(mid, proof_json)
            res: dict[str, Any] = {"proof": i, "valid": ok}
            if ok:
                res["gas"] = registry.verify_gas(mid, proof_json)
            results.append(res)
        # Record only a bundle whose every proof is valid on chain
        if record and all(r["valid"] for r in results):
            for res, proof_json in zip(results, proofs, strict=True):
                progress(f"recording proof {res['proof']} on chain")
                r = registry.verify_and_record(mid, proof_json)
                res.update(tx=r.tx_hash, block=r.block, gas_used=r.gas_used)
    valid = all(r["valid"] for r in results)
    return {
        "chain_id": chain.chain_id,
        "rpc_url": chain.rpc_url,
        "registry": registry.address,
        "model_id": name,
        "model_id_hex": mid_hex,
        "model_owner": info.owner,
        "model_version": info.current_version,
        "verifier": info.record.verifier,
        "verifier_code_hash": "0x" + info.record.verifier_code_hash.hex(),
        "valid": valid,
        "local_checks": "passed" if local.valid else "failed",
        "proofs": results,
        "batch": batched,
        "recorded": record and valid,
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
    batch: bool = False,
    challenge_window: int | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> ProposeResult:
    """Propose ``circuit`` as the next version of ``model_id`` in this store's registry.

    Deploys the circuit's verifier (or reuses this store's), proves
    ``test_input`` (one proof's worth of samples) with the new circuit, and
    proposes the record with ``commit(input slice)`` and ``commit(output
    slice)`` of that proof. The dataset root carries over from the active
    version unless ``dataset_root`` is given, and so does the challenge window
    unless ``challenge_window`` is given (it then applies to the update after
    this one). With ``batch`` the new circuit's deferred-pairing verifier is
    part of the record. The test proof is saved under
    ``<store>/chains/proposals/`` so challengers can read the test input.

    Raises:
        ChainError: no registry recorded for this chain.
        RegistryError: unknown model, not the owner, an update already pending, ...
        InputError: the test input does not fit the circuit or needs several proofs.
        VerifierTooLarge / ProofError: deploying or proving failed.
    """
    from zkml.prove import prove

    registry = ensure_existing_registry(store, chain)
    mid = resolve_model(store, chain, registry, model_id)
    info = registry.model(mid)
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
    layout = InstanceLayout.from_settings(circuit.settings_path)
    test_in, predicted = proposal_commitments(layout, bundle.proofs[0].to_ezkl(bundle.ezkl_version))
    deferred = ensure_deferred(circuit, store, chain, evm_version=evm_version, progress=progress) if batch else None
    window = challenge_window if challenge_window is not None else info.record.challenge_window
    record = circuit_record(circuit, deployment, dataset_root=dataset_root or info.record.dataset_root,
                            metadata_uri=metadata_uri, deferred=deferred["address"] if deferred else None,
                            challenge_window=window)
    progress(f"proposing circuit {circuit.circuit_id} as the next version of model '{model_id}'")
    version, deadline, receipt = registry.propose_update(mid, record, test_in, predicted)
    # The record: the test proof for challengers, the pending version in the store
    mid_hex = "0x" + info.model_id.hex()
    proof_path = store.root / "chains" / "proposals" / f"{chain.chain_id}-{mid_hex[:18]}-v{version}.json"
    proof_path.parent.mkdir(parents=True, exist_ok=True)
    bundle.save(proof_path)
    rec, entry = _model_entry(store, chain, model_id)
    if entry is not None:
        entry.setdefault("versions", {})[str(version)] = {"circuit_id": circuit.circuit_id,
                                                          "verifier": deployment.address,
                                                          "deferred": deferred["address"] if deferred else None}
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
        entry["deferred"] = known.get("deferred")
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
    mid = resolve_model(store, chain, registry, model_id)
    receipt = getattr(registry, action)(mid)
    info = registry.model(mid)
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
    mid = resolve_model(store, chain, registry, model_id)
    before = registry.model(mid)
    receipt = registry.challenge(mid, bundle.proofs[proof].to_ezkl(bundle.ezkl_version))
    rejected = before.pending.version if before.pending is not None else None
    rec, entry = _model_entry(store, chain, model_id)
    if entry is not None and entry.pop("pending", None) is not None:
        save_records(store, chain, rec)
    return {"chain_id": chain.chain_id, "registry": registry.address, "model_id": model_id,
            "model_id_hex": "0x" + before.model_id.hex(), "action": "challenge", "rejected_version": rejected,
            "tx": receipt.tx_hash, "gas": receipt.gas_used, "block": receipt.block,
            "events": [n for n, _ in registry.events(receipt)], "current_version": before.current_version,
            "status": registry.version_status(mid, rejected) if rejected else None}


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
