"""The on-chain side of an audit: the activation block, on-chain challenges, the VRF verifier, connecting."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from zkml import vrf
from zkml.audit.challenge import BlockRef, Challenge, ExpectedModel, issue_challenge
from zkml.audit.common import AuditError, Progress, _quiet
from zkml.commit import hex32
from zkml.util import write_json_atomic

if TYPE_CHECKING:  # the chain side is imported only when an on-chain audit runs
    from zkml.circuit import Circuit
    from zkml.evm.chain import Chain, Contract
    from zkml.evm.registry import Registry
    from zkml.store import Store


@dataclass(frozen=True)
class OnChain:
    """The chain, registry and VRF verifier an on-chain audit uses."""

    chain: Chain
    """The chain (with a signing key for transactions)."""
    registry: Registry
    """The ModelRegistry holding the audited model."""
    vrf_verifier: Contract | None = None
    """A deployed ``VRFVerifier``; None: deploy one when needed."""
    cache_dir: Path | None = None
    """solc-js output cache (``<store>/solc-cache``)."""

    def verifier(self) -> Contract:
        """The VRF verifier, deploying one if none was given (the caller keeps the returned handle)."""
        from zkml.evm import vrf_onchain

        if self.vrf_verifier is not None:
            return self.vrf_verifier
        return vrf_onchain.deploy_verifier(self.chain, vrf_onchain.compile_verifier(cache_dir=self.cache_dir))

    def verifier_at(self, address: str) -> Contract:
        """A handle on the ``VRFVerifier`` deployed at ``address``. Raises ChainError when there is no code."""
        from zkml.evm import vrf_onchain

        return self.chain.at(vrf_onchain.compile_verifier(cache_dir=self.cache_dir), address, "VRFVerifier")


_ACTIVATION_EVENTS: Final = ("ModelRegistered", "UpdateProposed", "UpdateFinalized", "RolledBack", "DatasetRootSet")


def activation_block(registry: Registry, model_id: bytes, version: int) -> int:
    """The last block at which ``version`` of the model was registered, proposed, finalized, rolled back to,
    or given its dataset root.

    A block after it was unknown when the version's record (and dataset root)
    was fixed. Raises :class:`zkml.errors.ChainError` when the registry has no
    such event.
    """
    from zkml.errors import ChainError

    blocks = []
    for ev in registry.history(model_id):
        v = ev.args.get("toVersion") if ev.name == "RolledBack" else ev.args.get("version")
        if ev.name in _ACTIVATION_EVENTS and v is not None and int(v) == version:
            blocks.append(ev.block)
    if not blocks:
        raise ChainError(f"the registry has no event for version {version} of model {hex32(model_id)}")
    return max(blocks)


def _block_hash(chain: Chain, number: int) -> bytes:
    from zkml.errors import ChainError

    block = chain.rpc("eth_getBlockByNumber", [hex(number), False])
    if not isinstance(block, Mapping) or not block.get("hash"):
        raise ChainError(f"block {number} is not known to {chain.rpc_url}")
    return bytes.fromhex(str(block["hash"]).removeprefix("0x"))


def issue_onchain_challenge(
    onchain: OnChain,
    *,
    sk: bytes,
    suite: vrf.Suite | str,
    model_id: bytes,
    k: int,
    n_rows: int,
    dataset_root: bytes | None = None,
    block_number: int | None = None,
    circuit: Circuit | None = None,
    nonce: bytes | None = None,
    post: bool = True,
    wait: float = 0.0,
    progress: Progress = _quiet,
) -> tuple[Challenge, Contract | None]:
    """A challenge for the model's active registry version, on a block after that version became active.

    The dataset root, ONNX and VK digests come from the registry record
    (``dataset_root``, when given, must equal the registered one; ``circuit``,
    a :class:`zkml.circuit.Circuit`, when given, must be the registered one and
    is pinned by id so the owner and the check find it). The block
    is ``block_number`` or the latest one (waiting up to ``wait`` seconds for a
    block after the activation). With ``post`` the challenge is put
    on chain as a transaction calling ``VRFVerifier.verify(pk, alpha, pi, …)``
    (its calldata is the public record; its receipt is stored in
    ``challenge.posted``). Returns the challenge and the VRF verifier handle
    used (None when not posted).

    Raises:
        AuditError: no dataset root registered, a root or circuit mismatch, no block after
            the activation yet, a suite the on-chain verifier does not support.
        RegistryError / ChainError: unknown or paused model, RPC failure.
    """
    from zkml.evm import vrf_onchain

    s = vrf.get_suite(suite)
    if post and s != vrf.SECP256K1:
        raise AuditError(f"the on-chain VRFVerifier checks secp256k1 proofs only, not {s.short_name}")
    registry, chain = onchain.registry, onchain.chain
    info = registry.model(model_id)
    if info.paused:
        raise AuditError(f"model {hex32(model_id)} is paused in the registry")
    record = info.record
    if record.dataset_root == bytes(32):
        raise AuditError(f"model {hex32(model_id)} has no dataset root in the registry")
    if dataset_root is not None and dataset_root != record.dataset_root:
        raise AuditError(
            f"--dataset-root {hex32(dataset_root)} is not the registered root {hex32(record.dataset_root)}"
        )
    if circuit is not None and (circuit.model_sha256 != record.onnx_sha256.hex()
                                or circuit.files["vk.key"] != record.vk_digest.hex()):
        raise AuditError(f"circuit {circuit.circuit_id} is not the registered circuit of model {hex32(model_id)}")
    active_since = activation_block(registry, model_id, info.current_version)
    latest = chain.block_number()
    deadline = time.monotonic() + wait
    while block_number is None and latest <= active_since and time.monotonic() < deadline:
        progress(f"waiting for a block after {active_since}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        latest = chain.block_number()
    number = latest if block_number is None else block_number
    if number <= active_since:
        raise AuditError(
            f"block {number} is not after block {active_since}, where version {info.current_version} became "
            "active: wait for a later block (--wait SECONDS; on a dev chain, send any transaction)"
        )
    if number > latest:
        raise AuditError(f"block {number} does not exist yet (latest is {latest})")
    block = BlockRef(chain.chain_id, number, _block_hash(chain, number), "chain")
    model = ExpectedModel(record.onnx_sha256.hex(), record.vk_digest.hex(),
                          circuit.circuit_id if circuit is not None else None)
    challenge = issue_challenge(
        sk=sk, suite=s, model_id=model_id, dataset_root=record.dataset_root, n_rows=n_rows, k=k, model=model,
        block=block, model_version=info.current_version, nonce=nonce, registry=registry.address,
        activation_block=active_since,
    )
    if not post:
        return challenge, None
    contract = onchain.verifier()
    progress(f"posting the challenge to VRFVerifier at {contract.address}")
    receipt = contract.transact("verify", *vrf_onchain.verify_args(challenge.pk, challenge.alpha, challenge.pi))
    posted = {"chain_id": chain.chain_id, "vrf_verifier": contract.address, "tx_hash": receipt.tx_hash,
              "block": receipt.block, "gas_used": receipt.gas_used}
    return replace(challenge, posted=posted), contract


def _vrf_record_path(store_root: Path, chain_id: int) -> Path:
    return store_root / "audit" / "chains" / f"{chain_id}.json"


def ensure_vrf_verifier(store_root: Path, chain: Chain, *, cache_dir: Path | None = None,
                        progress: Progress = _quiet) -> Contract:
    """The ``VRFVerifier`` this store uses on ``chain``, deployed (and recorded) if missing or gone.

    The address is kept in ``<store>/audit/chains/<chain id>.json`` and trusted
    only while the code there is exactly the compiled ``VRFVerifier`` (another
    dev chain with the same chain id may hold something else at that address).
    """
    from zkml.evm import vrf_onchain

    path = _vrf_record_path(store_root, chain.chain_id)
    compiled = vrf_onchain.compile_verifier(cache_dir=cache_dir)
    try:
        known = json.loads(path.read_bytes()).get("vrf_verifier") if path.is_file() else None
    except (OSError, ValueError):
        known = None
    if isinstance(known, Mapping) and known.get("address") \
            and chain.code_at(str(known["address"])) == compiled.deployed_bytecode:
        return chain.at(compiled, str(known["address"]), "VRFVerifier")
    progress(f"deploying VRFVerifier on chain {chain.chain_id}")
    dep = chain.deploy(compiled)
    write_json_atomic(path, {"chain_id": chain.chain_id, "vrf_verifier": {
        "address": dep.address, "tx": dep.tx_hash, "gas": dep.gas_used, "block": dep.block,
        "deployed_size": compiled.deployed_size}})
    return chain.at(compiled, dep.address, "VRFVerifier")


def open_onchain(
    store: Store,
    *,
    rpc_url: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    registry: str | None = None,
    vrf_verifier: str | None = None,
    progress: Progress = _quiet,
) -> OnChain:
    """Connect for an on-chain audit: ``rpc_url`` or the store's embedded chain, its registry, a VRF verifier.

    The registry is ``registry`` or the one ``zkml deploy`` recorded in the
    store for this chain; the VRF verifier is ``vrf_verifier`` or the store's
    own (deployed on first use).

    Raises:
        ChainError: dead RPC, no registry recorded or no code at an address.
        ConfigError: a malformed address or key.
    """
    from zkml.errors import ChainError
    from zkml.evm import vrf_onchain
    from zkml.evm.deploy import load_records, open_chain
    from zkml.evm.registry import Registry, compile_registry

    chain = open_chain(store, rpc_url, key_file, progress=progress)
    cache = store.root / "solc-cache"
    address = registry or (load_records(store, chain).get("registry") or {}).get("address")
    if not address:
        raise ChainError(f"no ModelRegistry recorded for chain {chain.chain_id} in this store: "
                         "run `zkml deploy` first or pass --registry ADDRESS")
    reg = Registry.at(chain, address, compile_registry(cache_dir=cache))
    if vrf_verifier:
        contract = chain.at(vrf_onchain.compile_verifier(cache_dir=cache), vrf_verifier, "VRFVerifier")
    else:
        contract = ensure_vrf_verifier(store.root, chain, cache_dir=cache, progress=progress)
    return OnChain(chain, reg, contract, cache)
