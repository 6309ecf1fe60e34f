"""The audit protocol: a VRF challenge, batched proofs of the sampled committed rows, the auditor's check.

An auditor wants to know how a registered model does on its committed
dataset (a Merkle root, :mod:`zkml.commitments.dataset`) without letting the model owner
pick the rows. Three steps, three files:

1. **challenge** (auditor, :func:`issue_challenge`): an ECVRF proof (:mod:`zkml.vrf`)
   over ``alpha`` (below) gives ``beta``; ``sample_indices(beta, N, k)``
   (:mod:`zkml.sampling`) gives the ``k`` rows to prove. The challenge file
   records suite, public key, the alpha fields, ``alpha``, ``pi``, ``beta``,
   ``k``, ``N``, the indices, the model the auditor expects (ONNX and VK
   digests) and the creation time; its *digest* names it.
2. **respond** (owner, :func:`respond`): the sampled rows are proven with the
   model's circuit in one bundle (batched at the circuit's batch size, input
   revealed), each row with its features, label and the Merkle inclusion proof
   of its leaf.
3. **check** (auditor, :func:`check_response`): the response answers the
   challenge the auditor issued; the VRF verifies; on chain, the nonce opens a
   commitment published before the block (see below); the indices follow from
   ``beta``; every revealed row, with its label, hashes to a leaf under the
   committed root at the sampled index; the proofs are of the audited model
   and circuit; every SNARK verifies; each revealed row is **bound** to its
   proof (its quantization equals the public input instances, or opens the
   Poseidon input commitment: :mod:`zkml.audit.binding`); the predictions are
   read from the proofs' public outputs (or the Poseidon preimage of a hashed
   output), never from the bundle's values, and their argmax meets
   ``min_accuracy`` against the labels. A circuit with a private input or
   output cannot be audited: nothing binds rows or predictions to its proofs. With a chain: the VRF and the sampling
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
        uint256 blockNumber,   // the block whose hash is mixed in (on chain: the committed target block)
        bytes32 blockHash)     // its hash, read from the chain; a block after the model version became active

The owner fixed model and dataset root before that block existed and does not
hold the VRF key, so it can neither predict nor steer the sample.

Commit-reveal: the auditor cannot grind either
=============================================
The VRF is deterministic, so whoever picks nonce and block after seeing block
hashes could try nonces until the sample suits it. An on-chain challenge is
therefore made in two steps (:mod:`zkml.audit.onchain`):

1. ``zkml audit commit``: the auditor publishes, as the calldata of a
   transaction (``keccak256("zkml-audit-commit/v1") || commitment``)::

       commitment = keccak256(abi.encode(bytes32 commitDomain, uint256 chainId, bytes32 modelId,
                                         uint256 modelVersion, bytes32 datasetRoot, uint256 nRows, uint256 k,
                                         bytes32 keccak256(pk), uint256 targetBlock, bytes32 nonce))

   with ``targetBlock`` after the block the transaction lands in;
2. ``zkml audit challenge --from-commit``: once ``targetBlock`` exists, its hash
   is read from the chain (never given by the auditor) and alpha mixes it with
   the committed nonce.

The check refuses an on-chain challenge without a commitment, whose nonce (with
its model, dataset, k and key) does not open the commitment, whose commitment
was not published in a block before ``targetBlock`` (re-read from the chain),
or whose block hash is not the chain's. What remains: an auditor that
publishes several commitments may reveal the one it likes; they are all public
transactions of its account, so the owner can count them; and an auditor can
always decline to reveal (then there is no audit).

For a purely local audit the auditor names the block hash (``--block-hash``)
and nothing is committed: the challenge, the check's report and the CLI say
loudly (``LOCAL_BLOCK_NOTE``) that the sample rests on the auditor alone.

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
* :mod:`zkml.audit.challenge`: alpha, the nonce commitment, the expected model, the challenge, issuing;
* :mod:`zkml.audit.onchain`: the chain side (activation block, commit and reveal, the VRF verifier);
* :mod:`zkml.audit.binding`: what the proofs' instances bind (proven inputs and outputs);
* :mod:`zkml.audit.ledger`: the auditor's ledger of issued challenges;
* :mod:`zkml.audit.respond`: the owner's response;
* :mod:`zkml.audit.check`: the auditor's check, the report, recording the outcome on chain.
"""

from zkml.audit.binding import Layout, Proven, proven_io
from zkml.audit.challenge import (
    ALPHA_DOMAIN,
    ALPHA_DOMAIN_TEXT,
    COMMIT_DOMAIN,
    COMMIT_DOMAIN_TEXT,
    DEFAULT_SUITE,
    KEY_FILE_FORMAT,
    LOCAL_BLOCK_NOTE,
    SK_ENV,
    AlphaFields,
    BlockRef,
    Challenge,
    ExpectedModel,
    NonceCommitment,
    commitment_of,
    issue_challenge,
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
    COMMIT_FORMAT,
    AuditCommit,
    OnChain,
    activation_block,
    commit_onchain_challenge,
    ensure_vrf_verifier,
    issue_onchain_challenge,
    open_onchain,
    published_commitment,
)
from zkml.audit.respond import Response, RowEvidence, respond

__all__ = [
    "ALPHA_DOMAIN",
    "COMMIT_DOMAIN",
    "COMMIT_FORMAT",
    "LOCAL_BLOCK_NOTE",
    "AlphaFields",
    "AuditCommit",
    "AuditCheck",
    "AuditError",
    "AuditReport",
    "BlockRef",
    "Challenge",
    "ExpectedModel",
    "Layout",
    "Ledger",
    "NonceCommitment",
    "Proven",
    "OnChain",
    "Response",
    "RowEvidence",
    "check_response",
    "commit_onchain_challenge",
    "commitment_of",
    "default_ledger_path",
    "issue_challenge",
    "issue_onchain_challenge",
    "ensure_vrf_verifier",
    "open_onchain",
    "parse_model_id",
    "proven_io",
    "published_commitment",
    "respond",
    "write_report",
]
