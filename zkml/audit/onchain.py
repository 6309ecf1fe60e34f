"""The on-chain side of an audit: the activation block, the nonce commitment, on-chain challenges, the VRF verifier.

An on-chain challenge is made in two steps, so the auditor cannot grind its sample:

1. **commit** (:func:`commit_onchain_challenge`): fix model, version, dataset,
   k, the VRF key and a fresh nonce; publish ``keccak256`` of them with a
   *future* block number as a transaction; keep the nonce in the commit file;
2. **reveal** (:func:`issue_onchain_challenge`): once that block exists, read
   its hash from the chain (never from the auditor) and prove alpha, which
   mixes the committed nonce with that hash.

When the commitment was mined the block hash did not exist, and the VRF is
deterministic: every input of the sample was fixed before anyone could know it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from zkml import keys, vrf
from zkml.audit.challenge import (
    COMMIT_DOMAIN,
    AlphaFields,
    BlockRef,
    Challenge,
    ExpectedModel,
    NonceCommitment,
    commitment_of,
    issue_challenge,
)
from zkml.audit.common import FORMAT_VERSION, AuditError, Progress, _quiet, _read_doc
from zkml.bundle import now_iso
from zkml.commitments import hex32, to_bytes32
from zkml.errors import InputError
from zkml.util import write_json_atomic

COMMIT_FORMAT: Final = "zkml-audit-commit"

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


def published_commitment(chain: Chain, tx_hash: str) -> tuple[bytes, int]:
    """The nonce commitment transaction ``tx_hash`` carries, and its block: ``(commitment, block)``.

    Raises:
        ChainError: no such mined transaction on this chain.
        AuditError: its calldata is not ``COMMIT_DOMAIN || commitment``.
    """
    from zkml.errors import ChainError

    tx = chain.rpc("eth_getTransactionByHash", [tx_hash])
    if not isinstance(tx, Mapping) or tx.get("blockNumber") in (None, ""):
        raise ChainError(f"the commit transaction {tx_hash} is not mined on chain {chain.chain_id}")
    data = bytes.fromhex(str(tx.get("input", "")).removeprefix("0x"))
    if len(data) != 64 or data[:32] != COMMIT_DOMAIN:
        raise AuditError(f"transaction {tx_hash} does not publish a zkml audit nonce commitment")
    return data[32:], int(str(tx["blockNumber"]), 16)


@dataclass(frozen=True)
class AuditCommit:
    """The commit file: a published nonce commitment, and what the auditor needs to reveal it.

    It holds the nonce, which stays with the auditor until the reveal. The
    public part (the commitment, its transaction and block) goes into the challenge.
    """

    commit: NonceCommitment
    """The published commitment."""
    nonce: bytes
    """The committed nonce (32 bytes)."""
    suite: str
    """The VRF suite of the committed key."""
    pk: bytes
    """The committed VRF public key."""
    chain_id: int
    """Chain of the registry and the target block."""
    registry: str
    """ModelRegistry address."""
    model_id: bytes
    """Audited model id."""
    model_version: int
    """Its registry version, active at commit time."""
    activation_block: int
    """Block at which that version became active."""
    dataset_root: bytes
    """The registered dataset root."""
    n_rows: int
    """Rows under the root."""
    k: int
    """Rows to sample."""
    model: ExpectedModel
    """The audited model (from the registry record)."""
    created: str
    """UTC time of the commit."""
    gate: str | None = None
    """The ValidationGate the commitment was published to (an audit of the pending version), else None."""

    def fields(self, block_hash: bytes) -> AlphaFields:
        """The alpha fields once the target block's hash is known."""
        return AlphaFields(chain_id=self.chain_id, model_id=self.model_id, model_version=self.model_version,
                           dataset_root=self.dataset_root, n_rows=self.n_rows, nonce=self.nonce,
                           block_number=self.commit.target_block, block_hash=block_hash)

    def to_json(self) -> dict[str, Any]:
        return {"format": COMMIT_FORMAT, "version": FORMAT_VERSION, "created": self.created,
                "commit": self.commit.to_json(), "nonce": hex32(self.nonce), "suite": self.suite, "pk": self.pk.hex(),
                "chain_id": self.chain_id, "registry": self.registry, "model_id": hex32(self.model_id),
                "model_version": self.model_version, "activation_block": self.activation_block,
                "dataset_root": hex32(self.dataset_root), "n_rows": self.n_rows, "k": self.k,
                "model": self.model.to_json(), **({"gate": self.gate} if self.gate else {})}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the commit file atomically (mode 0600: it holds the nonce until the reveal)."""
        keys.write_key_file(path, json.dumps(self.to_json(), indent=2) + "\n", overwrite=True)

    @classmethod
    def from_json(cls, doc: Any, source: str = "commit") -> AuditCommit:
        """Parse a commit file; the nonce must open its commitment. Raises :class:`AuditError`."""
        if not isinstance(doc, Mapping) or doc.get("format") != COMMIT_FORMAT:
            raise AuditError(f"{source}: not a zkml audit commit file")
        if doc.get("version") != FORMAT_VERSION:
            raise AuditError(f"{source}: unsupported commit file version {doc.get('version')!r}")
        try:
            c = cls(
                commit=NonceCommitment.from_json(doc["commit"]), nonce=to_bytes32(doc["nonce"], "nonce"),
                suite=vrf.get_suite(str(doc["suite"])).short_name, pk=bytes.fromhex(str(doc["pk"])),
                chain_id=int(doc["chain_id"]), registry=str(doc["registry"]),
                model_id=to_bytes32(doc["model_id"], "model_id"), model_version=int(doc["model_version"]),
                activation_block=int(doc["activation_block"]), dataset_root=to_bytes32(doc["dataset_root"], "dataset_root"),
                n_rows=int(doc["n_rows"]), k=int(doc["k"]), model=ExpectedModel.from_json(doc["model"]),
                created=str(doc.get("created", "")), gate=str(doc["gate"]) if doc.get("gate") else None,
            )
        except KeyError as e:
            raise AuditError(f"{source}: malformed commit file (missing {e.args[0]!r})") from None
        except (ValueError, TypeError) as e:
            raise AuditError(f"{source}: malformed commit file ({e})") from None
        except (InputError, vrf.VRFError) as e:
            raise AuditError(f"{source}: {e.message}") from None
        if commitment_of(c.fields(bytes(32)), c.k, c.pk) != c.commit.commitment:
            raise AuditError(f"{source}: the nonce does not open the commitment (edited commit file)")
        return c

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AuditCommit:
        """Read and check a commit file. Raises :class:`AuditError`."""
        return cls.from_json(_read_doc(path, "commit"), source=str(path))


def _audited_record(onchain: OnChain, model_id: bytes, dataset_root: bytes | None, circuit: Circuit | None) -> Any:
    """The registry's current view of the model, checked against what the auditor names."""
    info = onchain.registry.model(model_id)
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
    return info


def commit_onchain_challenge(
    onchain: OnChain,
    *,
    key: keys.VrfKey,
    model_id: bytes,
    k: int,
    n_rows: int,
    dataset_root: bytes | None = None,
    circuit: Circuit | None = None,
    blocks_ahead: int = 1,
    nonce: bytes | None = None,
    progress: Progress = _quiet,
) -> AuditCommit:
    """Step 1 of an on-chain challenge: commit to a fresh nonce against a block ``blocks_ahead`` after the next one.

    The dataset root, ONNX and VK digests come from the registry record
    (``dataset_root`` and ``circuit``, when given, must be the registered ones).
    The commitment (see :class:`zkml.audit.NonceCommitment`) is sent as the
    calldata of a transaction from the chain's account to itself.

    Raises:
        AuditError: a paused model, no or another dataset root, another circuit,
            a bad k, a commitment mined too late (at or after its target block).
        RegistryError / ChainError: unknown model, no signing key, RPC failure.
    """
    if isinstance(blocks_ahead, bool) or not isinstance(blocks_ahead, int) or blocks_ahead < 1:
        raise AuditError(f"--blocks-ahead must be at least 1, got {blocks_ahead!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_rows:
        raise AuditError(f"k must be between 1 and the dataset's {n_rows} rows, got {k!r}")
    chain, registry = onchain.chain, onchain.registry
    info = _audited_record(onchain, model_id, dataset_root, circuit)
    record = info.record
    active_since = activation_block(registry, model_id, info.current_version)
    # The target block does not exist yet: the next block holds the commitment at the earliest
    target = chain.block_number() + 1 + blocks_ahead
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    fields = AlphaFields(chain_id=chain.chain_id, model_id=model_id, model_version=info.current_version,
                         dataset_root=record.dataset_root, n_rows=n_rows, nonce=nonce, block_number=target,
                         block_hash=bytes(32))
    commitment = commitment_of(fields, k, key.pk)
    progress(f"publishing the nonce commitment for block {target}")
    receipt = chain.send_raw(chain.sender, COMMIT_DOMAIN + commitment)
    if receipt.block >= target:
        raise AuditError(f"the commitment was mined in block {receipt.block}, not before its target block {target}: "
                         "commit again with a larger --blocks-ahead")
    model = ExpectedModel(record.onnx_sha256.hex(), record.vk_digest.hex(),
                          circuit.circuit_id if circuit is not None else None)
    return AuditCommit(
        commit=NonceCommitment(commitment, target, receipt.tx_hash, receipt.block, chain.sender),
        nonce=nonce, suite=key.suite.short_name, pk=key.pk, chain_id=chain.chain_id, registry=registry.address,
        model_id=model_id, model_version=info.current_version, activation_block=active_since,
        dataset_root=record.dataset_root, n_rows=n_rows, k=k, model=model, created=now_iso(),
    )


def issue_onchain_challenge(
    onchain: OnChain,
    commit: AuditCommit,
    *,
    key: keys.VrfKey,
    post: bool = True,
    wait: float = 0.0,
    progress: Progress = _quiet,
) -> tuple[Challenge, Contract | None]:
    """Step 2: reveal ``commit``'s nonce in a challenge on its target block, whose hash is read from the chain.

    Waits up to ``wait`` seconds for the target block. The commitment is
    re-read from its transaction; the registry must still hold the committed
    version and root. With ``post`` the challenge is put on chain as a
    transaction calling ``VRFVerifier.verify(pk, alpha, pi, …)`` (its receipt
    in ``challenge.posted``). Returns the challenge and the VRF verifier
    handle used (None when not posted).

    Raises:
        AuditError: another key, chain or registry than committed; a changed
            registry record; the target block not there yet; a commitment not
            published as recorded; a suite the on-chain verifier does not support.
        RegistryError / ChainError: unknown or paused model, RPC failure.
    """
    from zkml.evm import vrf_onchain

    chain, registry = onchain.chain, onchain.registry
    # Inputs validation: the same key, chain, registry and record as committed
    if key.pk != commit.pk or key.suite.short_name != commit.suite:
        raise AuditError("the VRF key is not the one the commitment names")
    if post and key.suite != vrf.SECP256K1:
        raise AuditError(f"the on-chain VRFVerifier checks secp256k1 proofs only, not {key.suite.short_name}")
    if chain.chain_id != commit.chain_id or registry.address.lower() != commit.registry.lower():
        raise AuditError(f"the commitment is for registry {commit.registry} on chain {commit.chain_id}, not "
                         f"{registry.address} on chain {chain.chain_id}")
    info = _audited_record(onchain, commit.model_id, commit.dataset_root, None)
    if info.current_version != commit.model_version:
        raise AuditError(f"the registry's active version is {info.current_version}, the commitment audits "
                         f"version {commit.model_version}: commit again")
    c = commit.commit
    if published_commitment(chain, c.tx_hash) != (c.commitment, c.block):
        raise AuditError(f"transaction {c.tx_hash} does not publish this commitment in block {c.block}")
    # The target block, once it exists; its hash from the chain
    latest = chain.block_number()
    deadline = time.monotonic() + wait
    while latest < c.target_block and time.monotonic() < deadline:
        progress(f"waiting for block {c.target_block} (latest {latest})")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        latest = chain.block_number()
    if latest < c.target_block:
        raise AuditError(f"block {c.target_block} does not exist yet (latest is {latest}): reveal once it does "
                         "(--wait SECONDS; on a dev chain, send any transaction)")
    block = BlockRef(chain.chain_id, c.target_block, _block_hash(chain, c.target_block), "chain")
    challenge = issue_challenge(
        key=key, model_id=commit.model_id, dataset_root=commit.dataset_root, n_rows=commit.n_rows, k=commit.k,
        model=commit.model, block=block, model_version=commit.model_version, nonce=commit.nonce,
        registry=registry.address, activation_block=commit.activation_block, commit=c,
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
    from zkml.store import Store

    return Store(store_root).audit_chain_records(chain_id)


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
    cache = store.solc_cache
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
