"""Verifying a proof bundle through the registry: every local claim check first, then the SNARK on chain."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from zkml.bundle import Bundle
from zkml.errors import ConfigError, VerificationError
from zkml.evm.chain import Chain
from zkml.evm.registry import (
    ModelRecord,
)
from zkml.store import Store
from zkml.evm.deploy import resolve_model, ensure_existing_registry, load_records


def model_for_bundle(store: Store, chain: Chain, bundle: Bundle) -> str:
    """The model name this store registered for the bundle's circuit on ``chain``.

    Raises:
        ConfigError: none (pass --model-id).
    """
    rec = load_records(store, chain)
    hits = sorted(m for m, r in rec["models"].items() if r.get("circuit_id") == bundle.circuit_id)
    if not hits:
        raise ConfigError(
            f"no model registered for circuit {bundle.circuit_id} on chain {chain.chain_id} in this store: "
            "run `zkml deploy` or pass --model-id"
        )
    if len({str(rec["models"][m].get("model_id_hex")) for m in hits}) > 1:
        raise ConfigError(
            f"circuit {bundle.circuit_id} is registered as {len(hits)} models on chain {chain.chain_id} in this store "
            f"({', '.join(hits)}): pass --model-id to say which one the proof is for"
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
    from zkml.evm.registry.records import ZERO32
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


