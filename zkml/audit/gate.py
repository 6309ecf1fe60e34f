"""On-chain audits of a PENDING version through the validation gate (``verifiers/ValidationGate.sol``).

The same three steps as an on-chain audit of the active version, with the gate
as the judge:

1. :func:`open_gate_audit` (auditor): the nonce commitment
   (:func:`zkml.audit.commitment_of`, for the pending version, the gate's
   ``k`` and ``nRows``) is published by ``gate.openAudit`` instead of a
   self-transaction; the target block is after the one it lands in;
2. :func:`reveal_gate_audit` (auditor): once the target block exists, the
   challenge is issued on its hash (read from the chain); the owner answers it
   with :func:`zkml.audit.respond` and the *pending* version's circuit;
3. :func:`submit_gate_audit` (the same auditor): the rows, their Merkle
   proofs and SNARKs go to ``gate.submitAudit``, which re-derives alpha, checks
   the VRF, the sampled indices, every row's membership, every proof under the
   pending record's verifier with the row as its public input, and computes
   the accuracy (argmax of the proven outputs against the committed labels).
   The verdict is the gate's ``GateAudit`` event (and ``SlaBreached`` with the
   payout on a breach); it is also recorded in the registry (``recordAudit``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zkml.audit.challenge import AlphaFields, BlockRef, Challenge, ExpectedModel, NonceCommitment, commitment_of, issue_challenge
from zkml.audit.common import AuditError, Progress, _quiet
from zkml.audit.onchain import AuditCommit, OnChain, _block_hash, activation_block
from zkml.audit.respond import Response
from zkml.bundle import now_iso
from zkml.commitments import hex32

if TYPE_CHECKING:
    from zkml.evm.registry.gate import ValidationGate
    from zkml.keys import VrfKey


def _pending(onchain: OnChain, model_id: bytes) -> tuple[int, Any]:
    info = onchain.registry.model(model_id)
    if info.pending is None:
        raise AuditError(f"model {hex32(model_id)} has no pending version to audit")
    return info.pending.version, onchain.registry.record(model_id, info.pending.version)


def open_gate_audit(onchain: OnChain, gate: ValidationGate, *, key: VrfKey, model_id: bytes, blocks_ahead: int = 1,
                    nonce: bytes | None = None, progress: Progress = _quiet) -> AuditCommit:
    """Step 1: open an audit of the pending version in the gate (commit to a fresh nonce).

    Raises:
        AuditError: no pending version, no dataset root, a bad ``blocks_ahead``, a commitment mined too late.
        RegistryError: the gate refuses (not an auditor, window closed, already opened, not configured …).
    """
    if isinstance(blocks_ahead, bool) or not isinstance(blocks_ahead, int) or blocks_ahead < 1:
        raise AuditError(f"--blocks-ahead must be at least 1, got {blocks_ahead!r}")
    chain, registry = onchain.chain, onchain.registry
    version, record = _pending(onchain, model_id)
    root = record.dataset_root if any(record.dataset_root) else registry.model(model_id).record.dataset_root
    if not any(root):
        raise AuditError(f"model {hex32(model_id)} has no dataset root to sample from")
    cfg = gate.config(model_id)
    target = chain.block_number() + 1 + blocks_ahead
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    fields = AlphaFields(chain_id=chain.chain_id, model_id=model_id, model_version=version, dataset_root=root,
                         n_rows=cfg.n_rows, nonce=nonce, block_number=target, block_hash=bytes(32))
    commitment = commitment_of(fields, cfg.k, key.pk)
    progress(f"opening an audit of version {version} in the gate {gate.address} (target block {target})")
    receipt = gate.open_audit(model_id, commitment)
    if receipt.block >= target:
        raise AuditError(f"the audit was opened in block {receipt.block}, not before its target block {target}: "
                         "open again with a larger --blocks-ahead")
    return AuditCommit(
        commit=NonceCommitment(commitment, target, receipt.tx_hash, receipt.block, chain.sender),
        nonce=nonce, suite=key.suite.short_name, pk=key.pk, chain_id=chain.chain_id, registry=registry.address,
        model_id=model_id, model_version=version, activation_block=activation_block(registry, model_id, version),
        dataset_root=root, n_rows=cfg.n_rows, k=cfg.k,
        model=ExpectedModel(record.onnx_sha256.hex(), record.vk_digest.hex(), None), created=now_iso(),
        gate=gate.address,
    )


def reveal_gate_audit(onchain: OnChain, commit: AuditCommit, *, key: VrfKey, wait: float = 0.0) -> Challenge:
    """Step 2: the challenge on the committed target block (its hash read from the chain).

    Raises:
        AuditError: another key; the target block not there yet.
    """
    chain = onchain.chain
    if key.pk != commit.pk:
        raise AuditError("the VRF key is not the one the commitment names")
    c = commit.commit
    deadline = time.monotonic() + wait
    while chain.block_number() < c.target_block and time.monotonic() < deadline:
        time.sleep(0.5)
    if chain.block_number() < c.target_block:
        raise AuditError(f"block {c.target_block} does not exist yet: reveal once it does")
    block = BlockRef(chain.chain_id, c.target_block, _block_hash(chain, c.target_block), "chain")
    return issue_challenge(key=key, model_id=commit.model_id, dataset_root=commit.dataset_root, n_rows=commit.n_rows,
                           k=commit.k, model=commit.model, block=block, model_version=commit.model_version,
                           nonce=commit.nonce, registry=commit.registry, activation_block=commit.activation_block,
                           commit=c)


@dataclass(frozen=True)
class GateAuditResult:
    """What the gate decided."""

    version: int
    """The audited (pending) version."""
    sampled: int
    """Rows sampled (k)."""
    correct: int
    """Rows whose proven prediction is the committed label (computed on chain)."""
    passed: bool
    """correct / k >= the gate's required accuracy."""
    breach: bool
    """correct / k < the SLA accuracy."""
    payout: int
    """Wei paid to the auditor from the bond."""
    tx_hash: str
    """The submitAudit transaction."""
    gas_used: int
    """Its gas."""
    record_tx: str | None
    """The registry's recordAudit transaction (AuditRecorded), if recorded."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def submit_args(challenge: Challenge, response: Response) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """``(vrf_proof, rows)`` for ``gate.submitAudit`` from a challenge and the owner's response.

    Raises:
        AuditError: the response does not hold one proof per row (batch size 1) or answers another challenge.
    """
    from zkml.evm import vrf_onchain
    from zkml.evm.registry import row_calldata
    from zkml.evm.verifier import read_proof

    if response.challenge_digest != challenge.digest:
        raise AuditError(f"the response answers challenge {response.challenge_digest[:16]}…, not {challenge.digest[:16]}…")
    bundle = response.bundle
    if len(bundle.proofs) != len(response.rows):
        raise AuditError(f"{len(bundle.proofs)} proof(s) for {len(response.rows)} rows: an on-chain audit needs one "
                         "proof per row (a circuit of batch size 1)")
    pk, _alpha, pi, u, s_h, c_gamma = vrf_onchain.verify_args(challenge.pk, challenge.alpha, challenge.pi)
    rows = []
    for row, entry in zip(response.rows, bundle.proofs, strict=True):
        proof, instances = read_proof(entry.to_ezkl(bundle.ezkl_version))
        features, label = row_calldata(row.features, row.label)
        rows.append((row.index, features, label, list(row.proof), proof, list(instances)))
    return (pk, pi, u, s_h, c_gamma), rows


def submit_gate_audit(onchain: OnChain, gate: ValidationGate, challenge: Challenge, response: Response, *,
                      record: bool = True, progress: Progress = _quiet) -> GateAuditResult:
    """Step 3: submit the response to the gate, which judges it on chain; then record it in the registry.

    Raises:
        AuditError: see :func:`submit_args`.
        RegistryError: the gate refused the audit (the message names the row, proof or VRF problem).
    """
    vrf_proof, rows = submit_args(challenge, response)
    f = challenge.fields
    progress(f"submitting {len(rows)} row(s) and proofs to the gate {gate.address}")
    receipt = gate.submit_audit(f.model_id, f.model_version, f.nonce, f.block_number, vrf_proof, rows)
    events = dict(gate.events(receipt))
    verdict = events.get("GateAudit")
    if verdict is None:
        raise AuditError(f"submitAudit {receipt.tx_hash} emitted no GateAudit event")
    breach = events.get("SlaBreached")
    record_tx = None
    if record:
        progress("recording the verdict in the registry (recordAudit)")
        rec = onchain.registry.record_audit(f.model_id, f.model_version, bytes.fromhex(challenge.digest),
                                            challenge.beta, bytes.fromhex(receipt.tx_hash.removeprefix("0x")),
                                            int(verdict["sampled"]), int(verdict["correct"]), bool(verdict["passed"]))
        record_tx = rec.tx_hash
    return GateAuditResult(version=f.model_version, sampled=int(verdict["sampled"]), correct=int(verdict["correct"]),
                           passed=bool(verdict["passed"]), breach=breach is not None,
                           payout=int(breach["payout"]) if breach else 0, tx_hash=receipt.tx_hash,
                           gas_used=receipt.gas_used, record_tx=record_tx)
