"""The registry's custom errors, turned into one-line messages (:class:`RegistryError`).

Every revert of ``verifiers/ModelRegistry.sol`` is decoded against its ABI
(:func:`zkml.evm.abi.decode_revert`) and re-raised by :mod:`zkml.evm.registry`
through :func:`_friendly` with the message from the table below.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from zkml.evm.abi import ContractRevert


class RegistryError(ContractRevert):
    """The registry refused a call or transaction (decoded reason in the message)."""


# Error messages


def _h(b: Any) -> str:
    return "0x" + bytes(b).hex() if isinstance(b, (bytes, bytearray)) else str(b)


def _when(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_MESSAGES: Final[dict[str, Any]] = {
    "InvalidModelId": lambda a: "the zero model id is not allowed",
    "UnknownModel": lambda a: f"model {_h(a['modelId'])} is not registered",
    "ModelAlreadyRegistered": lambda a: f"model {_h(a['modelId'])} is already registered",
    "NotModelOwner": lambda a: f"{a['caller']} is not the owner of model {_h(a['modelId'])}",
    "ModelIsPaused": lambda a: f"model {_h(a['modelId'])} is paused",
    "ModelNotPaused": lambda a: f"model {_h(a['modelId'])} is not paused",
    "NoVerifierCode": lambda a: f"verifier not deployed: no code at {a['verifier']}",
    "BadVka": lambda a: f"{a['vka']} does not hold a VK artifact",
    "InvalidLayout": lambda a: "the instance layout is inconsistent (a slice runs past the instance count)",
    "MissingWeightsCommitment": lambda a: "the layout binds hashed weights but the weights commitment is zero",
    "MissingTestCommitment": lambda a: "an update needs the test-input and predicted-output commitments",
    "InstanceCountMismatch": lambda a: (
        f"the proof carries {a['actual']} public instances but the model expects {a['expected']} "
        "(a proof for another circuit?)"
    ),
    "WeightsCommitmentMismatch": lambda a: (
        f"the proof's weights commitment {_h(a['actual'])} is not the registered {_h(a['expected'])} "
        "(a proof for other weights)"
    ),
    "InvalidProof": lambda a: f"the verifier rejected the proof for model {_h(a['modelId'])} version {a['version']}",
    "UpdateAlreadyPending": lambda a: f"model {_h(a['modelId'])} already has update v{a['version']} pending",
    "NoPendingUpdate": lambda a: f"model {_h(a['modelId'])} has no pending update",
    "ChallengeWindowOpen": lambda a: (
        f"the challenge window of model {_h(a['modelId'])} is open until {_when(a['deadline'])}: finalize after it"
    ),
    "ChallengeWindowClosed": lambda a: (
        f"the challenge window of model {_h(a['modelId'])} closed at {_when(a['deadline'])}"
    ),
    "ChallengeUnsupported": lambda a: (
        f"the proposed version of model {_h(a['modelId'])} has no public inputs or outputs to challenge"
    ),
    "TestInputMismatch": lambda a: (
        f"the proof's input commits to {_h(a['actual'])}, not the committed test input {_h(a['expected'])}"
    ),
    "OutputMatchesPrediction": lambda a: "challenge failed: the proof's output matches the proposer's prediction",
    "NothingToRollBack": lambda a: f"model {_h(a['modelId'])} has no earlier accepted version to roll back to",
    "NoDatasetRoot": lambda a: f"model {_h(a['modelId'])} has no dataset root",
    "UnknownVersion": lambda a: f"model {_h(a['modelId'])} has no version {a['version']}",
    "WindowOutOfRange": lambda a: (
        f"a challenge window of {a['window']} s is outside this registry's range [{a['min']}, {a['max']}] s"
    ),
    "CodeHashMismatch": lambda a: (
        f"the code at {a['target']} has code hash {_h(a['actual'])}, not the {_h(a['expected'])} the record pins"
    ),
    "RolesNotSeparate": lambda a: f"{a['account']} holds another registry role: admin and emergency must be separate keys",
    "DeferredAgrees": lambda a: (
        "challenge failed: the proposed verifier and deferred verifier agree on this proof"
    ),
    "ProofAlreadyRecorded": lambda a: (
        f"this proof was already recorded (by {a['by']}); a proof is recorded once"
    ),
    "NoVrfVerifier": lambda a: "this registry has no VRF verifier: auditors cannot register",
    "BadAuditorKeyProof": lambda a: (
        f"VRF key proof for {a['account']} refused: it must prove auditorKeyAlpha of the sending account"
    ),
    "NotAnAuditor": lambda a: (
        f"{a['account']} has not proved a VRF auditor key (`Registry.register_auditor` first)"
    ),
    "AuditAlreadyRecorded": lambda a: (
        f"an audit of challenge {_h(a['challengeDigest'])} is already recorded under this auditor key"
    ),
    "ZeroAddress": lambda a: "the zero address is not allowed",
    "SignerNotOwner": lambda a: (
        f"signature refused for model {_h(a['modelId'])}: it recovers to {a['signer']}, not the owner {a['owner']} "
        "(signed by another key, or the record changed after signing)"
    ),
    "WrongVersion": lambda a: (
        f"signature refused for model {_h(a['modelId'])}: it is for version {a['signed']} but the next version is "
        f"{a['next']} (a replayed or stale signature)"
    ),
    "ZeroDatasetRoot": lambda a: "the dataset root must not be zero",
    "DatasetRootAlreadySet": lambda a: (
        f"model {_h(a['modelId'])} version {a['version']} already has dataset root {_h(a['root'])}; "
        "a new root needs an update"
    ),
    "InvalidAuditCounts": lambda a: f"an audit cannot have {a['correct']} correct rows out of {a['sampled']} sampled",
    "NoDeferredVerifier": lambda a: (
        f"model {_h(a['modelId'])} version {a['version']} has no deferred verifier in its record: register with "
        "`zkml deploy --batch-verify`, or propose an update with one (`zkml registry propose … --batch-verify`)"
    ),
    "BatchNeedsPerCircuitVerifier": lambda a: (
        "a reusable verifier has no deferred variant: batch verification needs a per-circuit verifier"
    ),
    "ECDSAInvalidSignature": lambda a: "the signature is invalid (it recovers to no address)",
    "ECDSAInvalidSignatureLength": lambda a: f"the signature must be 65 bytes, got {a['length']}",
    "ECDSAInvalidSignatureS": lambda a: "the signature's s is in the upper half of the curve order (malleable)",
    "NotCommittee": lambda a: f"{a['caller']} is not the committee of model {_h(a['modelId'])} (nor its owner while none is set)",
    "GateRefused": lambda a: (
        f"the validation gate refuses version {a['version']} of model {_h(a['modelId'])}: it needs a passing "
        "on-chain audit, no failing one and no audit still open" if int(a["version"]) else
        f"model {_h(a['modelId'])} already has a validation gate (it is set once)"
    ),
    # verifiers/ValidationGate.sol
    "UpdatePending": lambda a: f"gate: model {_h(a['modelId'])} has update v{a['version']} pending",
    "BadConfig": lambda a: ("gate: thresholds must be in [0, 1], 1 <= k <= rows, the audit TTL in [60 s, 7 days] and "
                            "the notice period at least the audit TTL (at most 365 days)"),
    "ConfigLowered": lambda a: "gate: the required accuracy, SLA, slash share, k and notice period can only be raised",
    "GateNotConfigured": lambda a: f"gate: model {_h(a['modelId'])} has no gate or SLA configured",
    "NotThisGate": lambda a: f"gate: the registry names gate {a['gate']} for model {_h(a['modelId'])}, not this one",
    "NoPendingVersion": lambda a: f"gate: model {_h(a['modelId'])} has no pending version to audit",
    "AuditWindowClosed": lambda a: (
        f"gate: the challenge window of model {_h(a['modelId'])} closed at {_when(a['deadline'])}: no new audits"
    ),
    "AuditAlreadyOpened": lambda a: f"gate: this auditor key already opened audit {_h(a['auditId'])} of this version",
    "UnknownAudit": lambda a: f"gate: no audit {_h(a['auditId'])} was opened (another key or version?)",
    "NotAuditOpener": lambda a: f"gate: {a['caller']} did not open audit {_h(a['auditId'])}",
    "AuditClosed": lambda a: f"gate: audit {_h(a['auditId'])} was already submitted or has expired",
    "CommitmentMismatch": lambda a: (
        f"gate: the revealed nonce, block, k or key give commitment {_h(a['actual'])}, not the opened "
        f"{_h(a['expected'])}"
    ),
    "TargetBlockUnavailable": lambda a: (
        f"gate: the hash of block {a['targetBlock']} is not available (not after the opening block, not mined "
        "yet, or more than 256 blocks ago)"
    ),
    "BadVrfProof": lambda a: "gate: the VRF proof does not verify for the rebuilt alpha",
    "BetaAlreadyUsed": lambda a: f"gate: VRF output {_h(a['beta'])} was already used by an audit",
    "RowCountMismatch": lambda a: f"gate: {a['actual']} rows submitted, the audit samples {a['expected']}",
    "NotSampledRow": lambda a: (
        f"gate: row {a['actual']} at position {a['position']} is not the sampled row {a['expected']}"
    ),
    "RowNotCommitted": lambda a: f"gate: row {a['index']} is not in the committed dataset (Merkle proof fails)",
    "InputMismatch": lambda a: f"gate: the proof of row {a['index']} does not prove its committed features (feature {a['feature']})",
    "UnsupportedLayout": lambda a: (
        f"gate: the proof of row {a['index']} does not carry one row of public input and public outputs "
        "(an on-chain audit needs batch size 1, public input and output)"
    ),
    "RowProofInvalid": lambda a: f"gate: the proof of row {a['index']} does not verify under the audited version's verifier",
    "RowWeightsMismatch": lambda a: f"gate: the proof of row {a['index']} carries another weights commitment",
    "VerifierCodeChanged": lambda a: f"gate: the code at verifier {a['verifier']} is not the code the record pins",
    "BadFeature": lambda a: f"gate: row {a['index']} has a feature that cannot be quantized",
    "NoBond": lambda a: f"gate: model {_h(a['modelId'])} has no bond",
    "NoticeNotOver": lambda a: (
        f"gate: the bond of model {_h(a['modelId'])} can be withdrawn from {_when(a['withdrawAfter'])}"
        if int(a["withdrawAfter"]) else f"gate: request the withdrawal of model {_h(a['modelId'])}'s bond first"
    ),
    "AuditOpen": lambda a: f"gate: an audit of model {_h(a['modelId'])} is open until {_when(a['until'])}",
    "PayoutFailed": lambda a: f"gate: paying {a['to']} failed",
    "ReentrancyGuardReentrantCall": lambda a: "gate: reentrant call refused",
    # verifiers/ModelCommittee.sol
    "BadCommittee": lambda a: "a committee needs 1 <= threshold <= members, distinct non-zero members and a registry",
    "UnknownAction": lambda a: f"unknown committee action {a['action']}",
    "NotEnoughApprovals": lambda a: f"committee: {a['given']} approvals given, {a['threshold']} needed",
    "DuplicateSigner": lambda a: f"committee: {a['signer']} approved twice; approvals must come from distinct members",
    "NotMember": lambda a: (
        f"committee: an approval recovers to {a['signer']}, not a member (another key, or signed for another "
        "action, model, version, record, nonce, chain or committee)"
    ),
    "StaleNonce": lambda a: (
        f"committee: the approval is for action #{a['signed']} of model {_h(a['modelId'])} but the next is "
        f"#{a['expected']} (a replayed or outdated approval)"
    ),
    "VersionMismatch": lambda a: (
        f"committee: the approval is for version {a['signed']} of model {_h(a['modelId'])}, but the action now "
        f"applies to version {a['actual']}"
    ),
    "RecordMismatch": lambda a: (
        f"committee: the approval names record {_h(a['signed'])}, but model {_h(a['modelId'])} has {_h(a['actual'])}"
    ),
    "NotThisCommittee": lambda a: f"committee: model {_h(a['modelId'])} is governed by {a['committee']}, not this committee",
    "UnexpectedNewCommittee": lambda a: "committee: only set-committee names a new committee, and it must",
    "AccessControlUnauthorizedAccount": lambda a: f"{a['account']} lacks the registry role {_h(a['neededRole'])}",
}


def _friendly(e: ContractRevert) -> RegistryError:
    fmt = _MESSAGES.get(e.error_name or "")
    msg = e.message
    if fmt is not None:
        try:
            msg = f"registry: {fmt(e.error_args)}"
        except (KeyError, TypeError, ValueError):
            pass
    return RegistryError(msg, error_name=e.error_name, error_args=e.error_args, data=e.data)
