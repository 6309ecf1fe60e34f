"""Model updates and emergency controls: propose, finalize, challenge, pause, unpause, rollback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkml.bundle import Bundle
from zkml.circuit import Circuit
from zkml.errors import ConfigError, InputError
from zkml.evm.chain import Chain
from zkml.evm.registry import (
    InstanceLayout,
    proposal_commitments,
)
from zkml.evm.solc import DEFAULT_EVM_VERSION
from zkml.store import Store
from zkml.evm.deploy import ensure_existing_registry, load_records, save_records, ensure_verifier, circuit_record, ensure_deferred
from zkml.evm.deploy import resolve_model


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
    proof_path = store.proposal_file(chain.chain_id, f"{mid_hex[:18]}-v{version}")
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




# Committee actions (k-of-n; verifiers/ModelCommittee.sol, zkml.evm.registry.committee)


def _committee_for(store: Store, chain: Chain, model_id: str) -> tuple[Any, bytes, Any]:
    from zkml.evm.registry.committee import Committee

    registry = ensure_existing_registry(store, chain)
    mid = resolve_model(store, chain, registry, model_id)
    address = registry.committee_of(mid)
    if address is None:
        raise ConfigError(f"model '{model_id}' has no committee (`zkml registry committee {model_id} --member …`)")
    chain.remember_abi(registry.contract.abi)
    return registry, mid, Committee.at(chain, address)


def committee_deploy(store: Store, chain: Chain, model_id: str, members: list[str], threshold: int) -> dict[str, Any]:
    """Deploy a k-of-n committee for the store's registry and name it the model's committee (owner, once;
    afterwards the committee hands itself over with ``set-committee``).

    Raises:
        InputError: no members.
        RegistryError: bad threshold / members (``BadCommittee``), not the owner or a committee is set
            (``NotCommittee``).
    """
    from zkml.evm.registry.committee import Committee

    if not members:
        raise InputError("a committee needs at least one --member")
    registry = ensure_existing_registry(store, chain)
    mid = resolve_model(store, chain, registry, model_id)
    committee = Committee.deploy(chain, registry.address, members, threshold,
                                 cache_dir=store.solc_cache,
                                 registry_abi=registry.contract.abi)
    receipt = registry.set_committee(mid, committee.address)
    return {"chain_id": chain.chain_id, "model_id": model_id, "model_id_hex": "0x" + mid.hex(),
            "committee": committee.address, "members": committee.members(), "threshold": committee.threshold(),
            "tx": receipt.tx_hash, "gas": receipt.gas_used}


def committee_approve(store: Store, chain: Chain, model_id: str, action: str, key: Any,
                      new_committee: str | None = None) -> Any:
    """One member's :class:`~zkml.evm.registry.committee.Approval` of ``action`` (no transaction).

    Raises:
        ConfigError: the model has no committee.
        InputError: not a member, unknown action, nothing pending to hotfix.
    """
    from zkml.evm.registry.committee import approve

    _, mid, committee = _committee_for(store, chain, model_id)
    return approve(committee, action, mid, key, new_committee)


def committee_execute(store: Store, chain: Chain, model_id: str, action: str, approvals: list[Any]) -> dict[str, Any]:
    """Submit approvals of ``action`` on ``model_id`` (any account); returns the receipt and the new state.

    Raises:
        InputError: an approval for another action or model than asked, or approvals that disagree.
        RegistryError: the committee or the registry refused.
    """
    from zkml.evm.registry.committee import execute

    registry, mid, committee = _committee_for(store, chain, model_id)
    for a in approvals:
        if a.action.action != action or a.action.model_id != mid:
            raise InputError(f"approval by {a.signer} is for {a.action.action} on 0x{a.action.model_id.hex()}, "
                             f"not {action} on '{model_id}'")
    receipt = execute(committee, approvals)
    info = registry.model(mid)
    _follow_active(store, chain, model_id, info.current_version, info.record.verifier)
    events = [n for n, _ in committee.events(receipt)] + [n for n, _ in registry.events(receipt)]
    return {"chain_id": chain.chain_id, "model_id": model_id, "model_id_hex": "0x" + mid.hex(), "action": action,
            "committee": committee.address, "signers": [a.signer for a in approvals], "tx": receipt.tx_hash,
            "gas": receipt.gas_used, "block": receipt.block, "events": events,
            "current_version": info.current_version, "paused": info.paused, "verifier": info.record.verifier}
