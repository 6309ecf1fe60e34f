"""The audit protocol: a VRF challenge, batched proofs of the sampled committed rows, the auditor's check.

An auditor wants to know how a registered model does on its committed
dataset (a Merkle root, :mod:`zkml.commit`) without letting the model owner
pick the rows. Three steps, three files:

1. **challenge** (auditor, :func:`issue_challenge`): an ECVRF proof (:mod:`zkml.vrf`)
   over ``alpha`` (below) gives ``beta``; ``sample_indices(beta, N, k)``
   (:mod:`zkml.sampling`) gives the ``k`` rows to prove. The challenge file
   records suite, public key, the alpha fields, ``alpha``, ``pi``, ``beta``,
   ``k``, ``N``, the indices, the model the auditor expects (ONNX and VK
   digests) and the creation time; its *digest* names it.
2. **respond** (owner, :func:`respond`): the sampled rows are proven with the
   model's circuit in one bundle (batched at the circuit's batch size, input
   revealed), each with the Merkle inclusion proof of its leaf; the labels are
   revealed (they are committed in the leaves).
3. **check** (auditor, :func:`check_response`): the response answers the
   challenge the auditor issued; the VRF verifies; the indices follow from
   ``beta``; every proven input, with its revealed label, hashes to a leaf under
   the committed root at the sampled index; the proofs are of the audited model
   and circuit; every SNARK verifies; the proven outputs' argmax meets
   ``min_accuracy`` against the labels. With a chain: the VRF and the sampling
   are re-checked by ``VRFVerifier.sol``, the block hash is re-read, the
   registry record and dataset membership are checked through
   ``ModelRegistry.sol``, a passing audit's proofs are recorded with
   ``verifyAndRecord`` (one ``ProofVerified`` event per proof), and the
   outcome, pass or fail, with ``recordAudit`` (one ``AuditRecorded`` event
   naming the auditor, the challenge digest, ``beta``, the counts and the
   report's verdict digest, see :meth:`AuditReport.verdict_digest`).

Alpha encoding (version 1)
==========================
``alpha`` is 9 ABI words (288 bytes), so a contract can rebuild it::

    alpha = abi.encode(
        bytes32 domain,        // keccak256("zkml-audit-challenge/v1")
        uint256 chainId,       // EIP-155 id of the chain the block is on (0: none, local audit)
        bytes32 modelId,       // registry model id (keccak256 of the name, or a raw 0x id)
        uint256 modelVersion,  // registry version audited (0: local audit, no registry)
        bytes32 datasetRoot,   // Merkle root of the committed dataset
        uint256 nRows,         // rows under that root: the sampling population N
        bytes32 nonce,         // 32 fresh random bytes of the auditor, one per challenge
        uint256 blockNumber,   // the block whose hash is mixed in (0: not given)
        bytes32 blockHash)     // its hash; on chain a block after the model version became active

The owner fixed model and dataset root before that block existed and does not
hold the VRF key, so it can neither predict nor steer the sample. For a
purely local audit the auditor names the block hash (``--block-hash``); the
challenge then says that the unpredictability rests on the auditor. The
auditor, who picks nonce and block, could grind them for a sample it likes;
an auditor who must be bound as well should publish ``keccak256(nonce)`` first.

Challenge digest and anti-replay
================================
``digest = sha256(canonical JSON of the challenge without "digest" and "posted")``.
A response names the digest and embeds the challenge. The auditor keeps a
*ledger* of the challenges it issued (``<store>/audit/ledger.json``): issuing
a challenge for a (model id, dataset root) supersedes the earlier ones. The
check takes the challenge to compare against from the auditor's side only,
never from the response: ``--challenge FILE`` (the file it issued) or, by
default, the ledger entry with the response's digest, which must be the latest
one for that model and root. A response to an old challenge, to a challenge
the auditor never issued, or with an edited challenge is refused.

Trust notes
===========
The leaf binds the row index, features and label; inclusion proves the row is
in the committed tree. A committer who put two leaves with the same index in
its own tree could choose between them; the registry's root is the owner's
claim about its data, and that is what an audit measures.

The package is split by step, one module each:

* :mod:`zkml.audit.common`: file formats, :class:`AuditError`, the progress callback;
* :mod:`zkml.audit.challenge`: alpha, the expected model, the challenge, keys and ids, issuing;
* :mod:`zkml.audit.onchain`: the chain side (activation block, on-chain challenges, the VRF verifier);
* :mod:`zkml.audit.ledger`: the auditor's ledger of issued challenges;
* :mod:`zkml.audit.respond`: the owner's response;
* :mod:`zkml.audit.check`: the auditor's check, the report, recording the outcome on chain.
"""

from zkml.audit.challenge import (
    ALPHA_DOMAIN,
    ALPHA_DOMAIN_TEXT,
    DEFAULT_SUITE,
    KEY_FILE_FORMAT,
    LOCAL_BLOCK_NOTE,
    SK_ENV,
    AlphaFields,
    BlockRef,
    Challenge,
    ExpectedModel,
    issue_challenge,
    load_vrf_key,
    parse_model_id,
)
from zkml.audit.check import (
    AuditCheck,
    AuditReport,
    audited_artifacts,
    check_response,
    verdict_digest,
    write_report,
)
from zkml.audit.common import (
    CHALLENGE_FORMAT,
    FORMAT_VERSION,
    LEDGER_FORMAT,
    REPORT_FORMAT,
    RESPONSE_FORMAT,
    AuditError,
    Progress,
)
from zkml.audit.ledger import Ledger, default_ledger_path
from zkml.audit.onchain import (
    OnChain,
    activation_block,
    ensure_vrf_verifier,
    issue_onchain_challenge,
    open_onchain,
)
from zkml.audit.respond import Response, RowEvidence, respond

__all__ = [
    "ALPHA_DOMAIN",
    "AlphaFields",
    "AuditCheck",
    "AuditError",
    "AuditReport",
    "BlockRef",
    "Challenge",
    "ExpectedModel",
    "Ledger",
    "OnChain",
    "Response",
    "RowEvidence",
    "check_response",
    "default_ledger_path",
    "issue_challenge",
    "issue_onchain_challenge",
    "ensure_vrf_verifier",
    "load_vrf_key",
    "open_onchain",
    "parse_model_id",
    "respond",
    "write_report",
]
