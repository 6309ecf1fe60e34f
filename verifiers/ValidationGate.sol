// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice The part of verifiers/ModelRegistry.sol the gate reads (types ABI-identical to the registry's).
interface IGateRegistry {
    struct InstanceLayout {
        uint32 total;
        uint32 inputOffset;
        uint32 inputLen;
        uint32 weightsOffset;
        uint32 weightsLen;
        uint32 outputOffset;
        uint32 outputLen;
    }

    struct ModelRecord {
        address verifier;
        bytes32 verifierCodeHash;
        address vka;
        address deferredVerifier;
        bytes32 deferredCodeHash;
        bytes32 onnxSha256;
        bytes32 weightsCommitment;
        bytes32 vkDigest;
        bytes32 datasetRoot;
        uint64 challengeWindow;
        InstanceLayout layout;
        string metadataURI;
    }

    struct Pending {
        uint64 version;
        uint64 deadline;
        bytes32 testInputCommitment;
        bytes32 predictedOutputCommitment;
    }

    function getModel(bytes32 modelId)
        external
        view
        returns (address owner, uint64 currentVersion, uint64 latestVersion, bool paused, Pending memory pending);
    function getRecord(bytes32 modelId, uint64 version) external view returns (ModelRecord memory);
    function auditorKey(address account) external view returns (bytes32);
    function vrfVerifier() external view returns (address);
    function gateOf(bytes32 modelId) external view returns (address);
}

/// @notice verifiers/VRFVerifier.sol.
interface IGateVRF {
    function verify(
        bytes calldata publicKey,
        bytes calldata alpha,
        bytes calldata pi,
        uint256[2] calldata uPoint,
        uint256[2] calldata sH,
        uint256[2] calldata cGamma
    ) external view returns (bool valid, bytes32 beta);
    function sampleIndices(bytes32 beta, uint256 n, uint256 k) external pure returns (uint256[] memory);
}

/// @title ValidationGate
/// @notice An on-chain validation gate and an SLA bond for the models of one ModelRegistry.
///
/// A model owner configures (while no update is pending) the accuracy an update must show (`requireBps`),
/// an SLA accuracy (`slaBps`), the share of the bond a breach pays (`slashBps`), the sample size `k`,
/// the row count `nRows` under the dataset root, the input quantization scale, how long an opened audit
/// may stay open (`auditTtl`) and the bond's notice period; then names this gate in the registry
/// (`ModelRegistry.setGate`, once, while no update is pending), and may deposit a bond (ETH).
///
/// An audit of the PENDING version, by an account with a registered VRF key (registry.auditorKey):
///  1. openAudit(modelId, commitment) while the pending version's challenge window is open: the
///     commitment (zkml.audit.commitment_of) fixes model, version, dataset root, nRows, k, the VRF key, a
///     target block after this one and a nonce. One audit per (model, version, auditor key).
///  2. submitAudit(...) by the same account before the audit expires: the nonce opens the commitment;
///     alpha (zkml alpha encoding v1) is rebuilt here with blockhash(targetBlock); the VRF proof is
///     checked by the registry's VRFVerifier, its beta is used once; the rows must be exactly
///     sampleIndices(beta, nRows, k), each in the dataset Merkle tree (leaf recomputed here); each row's
///     proof must verify under the pending record's verifier (code hash pinned, instance count and weights
///     commitment of its layout), with the row's features, quantized here, as its public input; the
///     prediction is the argmax of the proof's public outputs, compared with the committed label.
///  An audit passes when correct * 10000 >= requireBps * k (no rounding). A failing audit blocks the
///  version forever; a passing one counts. `approves` (called by the registry's finalize) is true when
///  the version has a passing audit, no failing one, and no audit still open.
///  correct * 10000 < slaBps * k is a breach: the first breach of a version pays slashBps of the bond
///  to the auditor (checks-effects-interactions, nonReentrant) and emits SlaBreached.
///
/// The bond is withdrawn in two steps: requestWithdrawal, then withdrawBond after noticePeriod with no
/// update pending and no audit open (an audit is open at most auditTtl <= MAX_AUDIT_TTL, and audits can
/// only be opened during a pending update's window, which the owner alone creates).
contract ValidationGate is ReentrancyGuard {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint64 public constant MIN_AUDIT_TTL = 60;
    uint64 public constant MAX_AUDIT_TTL = 7 days;
    uint64 public constant MAX_NOTICE = 365 days;
    bytes32 public constant ALPHA_DOMAIN = keccak256("zkml-audit-challenge/v1");
    bytes32 public constant COMMIT_DOMAIN = keccak256("zkml-audit-commit/v1");

    IGateRegistry public immutable registry;

    struct Config {
        uint16 requireBps; // accuracy an update must show on the sample (0: no gate)
        uint16 slaBps; // accuracy below which an audit is a breach (0: no SLA)
        uint16 slashBps; // share of the bond a breach pays the auditor
        uint32 k; // rows an audit samples
        uint64 nRows; // rows under the dataset root (the sampling population)
        uint8 inputScale; // fixed-point bits of the input quantization of the audited circuits
        uint64 auditTtl; // seconds an opened audit may stay open
        uint64 noticePeriod; // seconds between requestWithdrawal and withdrawBond
    }

    struct Bond {
        uint256 amount;
        uint64 withdrawAfter; // 0: no withdrawal requested
    }

    struct Audit {
        address auditor;
        uint64 version;
        uint64 expires;
        uint64 openedBlock;
        uint32 k;
        uint64 nRows;
        bool done;
        bytes32 commitment;
        bytes32 root;
    }

    struct Tally {
        uint32 passes;
        uint32 open; // opened, not submitted (may have expired)
        uint64 lastExpiry; // latest expiry of an audit opened
        bool failed;
        bool slashed;
    }

    struct Row {
        uint256 index;
        bytes features; // big-endian float64 values (zkml leaf encoding v1)
        bytes label; // one big-endian float64
        bytes32[] merkleProof;
        bytes proof;
        uint256[] instances;
    }

    struct VrfProof {
        bytes pk;
        bytes pi;
        uint256[2] uPoint;
        uint256[2] sH;
        uint256[2] cGamma;
    }

    mapping(bytes32 => Config) public configOf;
    mapping(bytes32 => Bond) public bondOf;
    /// @notice keccak256(abi.encode(modelId, version, auditorKey)) => audit.
    mapping(bytes32 => Audit) public audits;
    mapping(bytes32 => mapping(uint64 => Tally)) public tallyOf;
    /// @notice Per model: audits open across versions (for the bond's withdrawal).
    mapping(bytes32 => Tally) public modelTally;
    mapping(bytes32 => bool) public betaUsed;

    error NotModelOwner(bytes32 modelId, address caller);
    error UpdatePending(bytes32 modelId, uint64 version);
    error BadConfig();
    error ConfigLowered();
    error GateNotConfigured(bytes32 modelId);
    error NotThisGate(bytes32 modelId, address gate);
    error NotAnAuditor(address account);
    error NoPendingVersion(bytes32 modelId);
    error AuditWindowClosed(bytes32 modelId, uint64 deadline);
    error AuditAlreadyOpened(bytes32 auditId);
    error UnknownAudit(bytes32 auditId);
    error NotAuditOpener(bytes32 auditId, address caller);
    error AuditClosed(bytes32 auditId);
    error CommitmentMismatch(bytes32 expected, bytes32 actual);
    error TargetBlockUnavailable(uint256 targetBlock);
    error BadVrfProof();
    error BetaAlreadyUsed(bytes32 beta);
    error RowCountMismatch(uint256 expected, uint256 actual);
    error NotSampledRow(uint256 position, uint256 expected, uint256 actual);
    error RowNotCommitted(uint256 index);
    error VerifierCodeChanged(address verifier);
    error InstanceCountMismatch(uint256 expected, uint256 actual);
    error RowWeightsMismatch(uint256 index);
    error InputMismatch(uint256 index, uint256 feature);
    error UnsupportedLayout(uint256 index);
    error BadFeature(uint256 index);
    error RowProofInvalid(uint256 index);
    error NoBond(bytes32 modelId);
    error NoticeNotOver(bytes32 modelId, uint64 withdrawAfter);
    error AuditOpen(bytes32 modelId, uint64 until);
    error PayoutFailed(address to);

    event GateConfigured(bytes32 indexed modelId, Config config);
    event BondDeposited(bytes32 indexed modelId, address indexed by, uint256 amount, uint256 total);
    event WithdrawalRequested(bytes32 indexed modelId, uint64 withdrawAfter);
    event BondWithdrawn(bytes32 indexed modelId, address indexed to, uint256 amount);
    event AuditOpened(
        bytes32 indexed modelId, uint64 indexed version, address indexed auditor, bytes32 auditorKey,
        bytes32 commitment, uint64 expires
    );
    /// `correct` of `sampled` VRF-drawn rows classified right by proofs verified here.
    event GateAudit(
        bytes32 indexed modelId, uint64 indexed version, address indexed auditor, bytes32 auditorKey, bytes32 beta,
        uint32 sampled, uint32 correct, bool passed
    );
    event SlaBreached(
        bytes32 indexed modelId, uint64 indexed version, address indexed auditor, uint32 sampled, uint32 correct,
        uint256 payout
    );

    constructor(address registry_) {
        registry = IGateRegistry(registry_);
    }

    // Owner: configuration and bond

    function _owner(bytes32 modelId) internal view returns (address owner, uint64 pending) {
        IGateRegistry.Pending memory p;
        (owner,,,, p) = registry.getModel(modelId);
        pending = p.version;
        if (owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }

    /// @notice Set the model's gate and SLA (owner, no update pending). requireBps, slaBps, slashBps, k and
    /// noticePeriod can only be raised once set; nRows, inputScale and auditTtl follow the next version.
    function configure(bytes32 modelId, Config calldata c) external {
        (, uint64 pending) = _owner(modelId);
        if (pending != 0) revert UpdatePending(modelId, pending);
        if (
            c.requireBps > BPS || c.slaBps > BPS || c.slashBps > BPS || c.k == 0 || c.nRows < c.k
                || c.auditTtl < MIN_AUDIT_TTL || c.auditTtl > MAX_AUDIT_TTL || c.noticePeriod < c.auditTtl
                || c.noticePeriod > MAX_NOTICE
        ) revert BadConfig();
        Config storage old = configOf[modelId];
        if (
            c.requireBps < old.requireBps || c.slaBps < old.slaBps || c.slashBps < old.slashBps || c.k < old.k
                || c.noticePeriod < old.noticePeriod
        ) revert ConfigLowered();
        configOf[modelId] = c;
        emit GateConfigured(modelId, c);
    }

    /// @notice Add to the model's bond (owner only).
    function depositBond(bytes32 modelId) external payable {
        _owner(modelId);
        Bond storage b = bondOf[modelId];
        b.amount += msg.value;
        emit BondDeposited(modelId, msg.sender, msg.value, b.amount);
    }

    /// @notice Start the notice period after which the whole bond may be withdrawn.
    function requestWithdrawal(bytes32 modelId) external {
        _owner(modelId);
        Bond storage b = bondOf[modelId];
        if (b.amount == 0) revert NoBond(modelId);
        b.withdrawAfter = uint64(block.timestamp) + configOf[modelId].noticePeriod;
        emit WithdrawalRequested(modelId, b.withdrawAfter);
    }

    /// @notice Withdraw the whole bond to the owner after the notice period, with no update pending and
    /// no audit open.
    function withdrawBond(bytes32 modelId) external nonReentrant {
        (, uint64 pending) = _owner(modelId);
        Bond storage b = bondOf[modelId];
        uint256 amount = b.amount;
        if (amount == 0) revert NoBond(modelId);
        if (b.withdrawAfter == 0 || block.timestamp < b.withdrawAfter) revert NoticeNotOver(modelId, b.withdrawAfter);
        if (pending != 0) revert UpdatePending(modelId, pending);
        Tally storage t = modelTally[modelId];
        if (t.open != 0 && block.timestamp < t.lastExpiry) revert AuditOpen(modelId, t.lastExpiry);
        b.amount = 0;
        b.withdrawAfter = 0;
        emit BondWithdrawn(modelId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // The gate (ModelRegistry._finalize asks)

    /// @notice Whether `version` of `modelId` may become active: no requirement, or a passing audit, no
    /// failing audit and no audit still open.
    function approves(bytes32 modelId, uint64 version) external view returns (bool) {
        if (configOf[modelId].requireBps == 0) return true;
        Tally storage t = tallyOf[modelId][version];
        return t.passes != 0 && !t.failed && (t.open == 0 || block.timestamp >= t.lastExpiry);
    }

    // Audits of the pending version

    function auditIdOf(bytes32 modelId, uint64 version, bytes32 keyHash) public pure returns (bytes32) {
        return keccak256(abi.encode(modelId, version, keyHash));
    }

    /// @notice Open an audit of the pending version: commit to the nonce (see the header).
    function openAudit(bytes32 modelId, bytes32 commitment) external returns (bytes32 id) {
        Config storage c = configOf[modelId];
        if (c.requireBps == 0 && c.slaBps == 0) revert GateNotConfigured(modelId);
        address gate = registry.gateOf(modelId);
        if (gate != address(this)) revert NotThisGate(modelId, gate);
        bytes32 key = registry.auditorKey(msg.sender);
        if (key == bytes32(0)) revert NotAnAuditor(msg.sender);
        (, uint64 current,,, IGateRegistry.Pending memory p) = registry.getModel(modelId);
        if (p.version == 0) revert NoPendingVersion(modelId);
        if (block.timestamp >= p.deadline) revert AuditWindowClosed(modelId, p.deadline);
        id = auditIdOf(modelId, p.version, key);
        if (audits[id].auditor != address(0)) revert AuditAlreadyOpened(id);
        bytes32 root = registry.getRecord(modelId, p.version).datasetRoot;
        if (root == bytes32(0)) root = registry.getRecord(modelId, current).datasetRoot; // the active version's
        uint64 expires = uint64(block.timestamp) + c.auditTtl;
        audits[id] = Audit(msg.sender, p.version, expires, uint64(block.number), c.k, c.nRows, false, commitment, root);
        _count(tallyOf[modelId][p.version], expires);
        _count(modelTally[modelId], expires);
        emit AuditOpened(modelId, p.version, msg.sender, key, commitment, expires);
    }

    function _count(Tally storage t, uint64 expires) internal {
        t.open += 1;
        if (expires > t.lastExpiry) t.lastExpiry = expires;
    }

    /// @notice Reveal and judge an opened audit (its opener only, before it expires). Reverts on any row,
    /// proof or VRF problem; otherwise records the verdict and pays a breach's share of the bond.
    function submitAudit(
        bytes32 modelId,
        uint64 version,
        bytes32 nonce,
        uint256 targetBlock,
        VrfProof calldata v,
        Row[] calldata rows
    ) external nonReentrant returns (uint32 correct, bool passed) {
        bytes32 key = keccak256(v.pk);
        bytes32 id = auditIdOf(modelId, version, key);
        Audit storage a = audits[id];
        if (a.auditor == address(0)) revert UnknownAudit(id);
        if (a.auditor != msg.sender) revert NotAuditOpener(id, msg.sender);
        if (a.done || block.timestamp >= a.expires) revert AuditClosed(id);
        bytes32 beta = _beta(modelId, a, key, nonce, targetBlock, v);
        correct = _judge(modelId, a, beta, rows);
        uint256 payout;
        (passed, payout) = _settle(modelId, a, key, beta, correct);
        // Interaction
        if (payout != 0) _pay(msg.sender, payout);
    }

    /// @dev Effects of a judged audit: close it, count the verdict, take a breach's share of the bond.
    function _settle(bytes32 modelId, Audit storage a, bytes32 key, bytes32 beta, uint32 correct)
        internal
        returns (bool passed, uint256 payout)
    {
        uint64 version = a.version;
        a.done = true;
        Tally storage t = tallyOf[modelId][version];
        t.open -= 1;
        modelTally[modelId].open -= 1;
        Config storage c = configOf[modelId];
        uint256 score = uint256(correct) * BPS;
        passed = score >= uint256(c.requireBps) * a.k;
        if (c.requireBps != 0) {
            if (passed) t.passes += 1;
            else t.failed = true;
        }
        emit GateAudit(modelId, version, msg.sender, key, beta, a.k, correct, passed);
        if (score < uint256(c.slaBps) * a.k) {
            if (!t.slashed) {
                t.slashed = true;
                payout = bondOf[modelId].amount * c.slashBps / BPS;
                bondOf[modelId].amount -= payout;
            }
            emit SlaBreached(modelId, version, msg.sender, a.k, correct, payout);
        }
    }

    function _beta(bytes32 modelId, Audit storage a, bytes32 key, bytes32 nonce, uint256 targetBlock, VrfProof calldata v)
        internal
        returns (bytes32 beta)
    {
        bytes32 expected = keccak256(
            abi.encode(
                COMMIT_DOMAIN, block.chainid, modelId, uint256(a.version), a.root, uint256(a.nRows), uint256(a.k), key,
                targetBlock, nonce
            )
        );
        if (expected != a.commitment) revert CommitmentMismatch(a.commitment, expected);
        bytes32 bh = targetBlock > a.openedBlock ? blockhash(targetBlock) : bytes32(0);
        if (bh == bytes32(0)) revert TargetBlockUnavailable(targetBlock);
        bytes memory alpha = abi.encode(
            ALPHA_DOMAIN, block.chainid, modelId, uint256(a.version), a.root, uint256(a.nRows), nonce, targetBlock, bh
        );
        bool valid;
        (valid, beta) = IGateVRF(registry.vrfVerifier()).verify(v.pk, alpha, v.pi, v.uPoint, v.sH, v.cGamma);
        if (!valid) revert BadVrfProof();
        if (betaUsed[beta]) revert BetaAlreadyUsed(beta);
        betaUsed[beta] = true;
    }

    function _judge(bytes32 modelId, Audit storage a, bytes32 beta, Row[] calldata rows)
        internal
        view
        returns (uint32 correct)
    {
        uint256[] memory indices = IGateVRF(registry.vrfVerifier()).sampleIndices(beta, a.nRows, a.k);
        if (rows.length != indices.length) revert RowCountMismatch(indices.length, rows.length);
        IGateRegistry.ModelRecord memory record = registry.getRecord(modelId, a.version);
        if (record.verifier.codehash != record.verifierCodeHash || record.verifier.code.length == 0) {
            revert VerifierCodeChanged(record.verifier);
        }
        uint8 scale = configOf[modelId].inputScale;
        bytes32[] memory vka = record.vka == address(0) ? new bytes32[](0) : _loadVka(record.vka);
        for (uint256 i = 0; i < rows.length; ++i) {
            Row calldata row = rows[i];
            if (row.index != indices[i]) revert NotSampledRow(i, indices[i], row.index);
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(row.index, row.features, row.label))));
            if (!MerkleProof.verifyCalldata(row.merkleProof, a.root, leaf)) revert RowNotCommitted(row.index);
            uint256 predicted = _proven(record, vka, row, scale);
            if (row.label.length == 8 && bytes8(row.label) == _float64(predicted)) correct += 1;
        }
    }

    /// @dev Check one row's proof under the record and return the argmax of its public outputs.
    function _proven(IGateRegistry.ModelRecord memory record, bytes32[] memory vka, Row calldata row, uint8 scale)
        internal
        view
        returns (uint256 best)
    {
        IGateRegistry.InstanceLayout memory l = record.layout;
        uint256[] calldata inst = row.instances;
        if (inst.length != l.total) revert InstanceCountMismatch(l.total, inst.length);
        if (l.weightsLen != 0) {
            bytes32 got = l.weightsLen == 1
                ? bytes32(inst[l.weightsOffset])
                : keccak256(abi.encodePacked(inst[l.weightsOffset:l.weightsOffset + l.weightsLen]));
            if (got != record.weightsCommitment) revert RowWeightsMismatch(row.index);
        }
        // The input instances are the row's features, quantized here (batch size 1, public input)
        uint256 n = row.features.length / 8;
        if (l.outputLen == 0 || l.inputLen != n || row.features.length % 8 != 0) revert UnsupportedLayout(row.index);
        for (uint256 j = 0; j < n; ++j) {
            if (inst[l.inputOffset + j] != _quantize(row.features, j, scale, row.index)) revert InputMismatch(row.index, j);
        }
        bytes memory callData = vka.length == 0
            ? abi.encodeWithSignature("verifyProof(bytes,uint256[])", row.proof, inst)
            : abi.encodeWithSignature("verifyProof(bytes,uint256[],bytes32[])", row.proof, inst, vka);
        (bool ok, bytes memory ret) = record.verifier.staticcall(callData);
        if (!(ok && ret.length >= 32 && abi.decode(ret, (uint256)) == 1)) revert RowProofInvalid(row.index);
        // argmax of the signed outputs (the first maximum, as numpy)
        int256 top;
        for (uint256 j = 0; j < l.outputLen; ++j) {
            uint256 f = inst[l.outputOffset + j];
            int256 s = f > R / 2 ? -int256(R - f) : int256(f);
            if (j == 0 || s > top) {
                top = s;
                best = j;
            }
        }
    }

    /// @dev ezkl's input quantization, exactly: round half away from zero of x * 2^scale, as a field element.
    function _quantize(bytes calldata features, uint256 j, uint8 scale, uint256 index) internal pure returns (uint256) {
        uint64 bits = uint64(bytes8(features[j * 8:j * 8 + 8]));
        uint256 e = (bits >> 52) & 0x7ff;
        uint256 m = bits & ((uint256(1) << 52) - 1);
        if (e == 0x7ff) revert BadFeature(index);
        int256 shift;
        if (e == 0) {
            shift = -1074;
        } else {
            m |= uint256(1) << 52;
            shift = int256(e) - 1075;
        }
        shift += int256(uint256(scale));
        uint256 q;
        if (shift >= 0) {
            if (shift > 190) revert BadFeature(index);
            q = m << uint256(shift);
        } else {
            uint256 s = uint256(-shift);
            q = s > 60 ? 0 : (m + (uint256(1) << (s - 1))) >> s;
        }
        return (bits >> 63 == 1 && q != 0) ? R - q : q;
    }

    /// @dev The big-endian float64 bits of a small non-negative integer.
    function _float64(uint256 n) internal pure returns (bytes8) {
        if (n == 0) return bytes8(0);
        uint256 e;
        while ((n >> (e + 1)) != 0) ++e;
        return bytes8(uint64(((1023 + e) << 52) | ((n - (uint256(1) << e)) << (52 - e))));
    }

    function _loadVka(address vka) internal view returns (bytes32[] memory words) {
        uint256 n = (vka.code.length - 1) / 32;
        words = new bytes32[](n);
        assembly ("memory-safe") {
            extcodecopy(vka, add(words, 0x20), 1, mul(n, 0x20))
        }
    }

    function _pay(address to, uint256 amount) internal {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert PayoutFailed(to);
    }
}
