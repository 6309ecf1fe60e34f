// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @notice The per-circuit verifier ezkl renders (VK baked into the code).
interface IHalo2Verifier {
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}

/// @notice ezkl's reusable verifier: the circuit's VK artifact (VKA) comes with every call.
/// Its real return is (bool, bytes32, int256[]) in a non-standard encoding; we read only the first word.
interface IHalo2VerifierReusable {
    function verifyProof(bytes calldata proof, uint256[] calldata instances, bytes32[] memory vka)
        external
        returns (bool);
}

/// @title ModelRegistry
/// @notice Binds a model id to the verifier of its circuit and the digests that identify the model
/// (ONNX file, weights commitment, verification key, training-data Merkle root, metadata URI), with a
/// full version history. Proofs are checked through the registry, so a proof made for another model,
/// other weights or another version is refused.
///
/// Instance layout. ezkl's public instances are, in order: the Poseidon hashes of whatever is
/// "hashed" (inputs, then params, then outputs), then raw public inputs, then raw public outputs.
/// Each record says where the inputs, the weights commitment and the outputs sit in that vector.
/// When the params are hashed (weightsLen > 0) the registry checks the proof carries the registered
/// weights commitment; with fixed params the verifier's VK binds the weights by itself.
///
/// Commitment encoding (used for weights when weightsLen > 1, and for the challenge commitments):
///   commit(slice) = keccak256(abi.encodePacked(uint256[] slice))  -- 32-byte big-endian words.
/// When weightsLen == 1 the weights commitment is the instance itself: bytes32(instances[weightsOffset])
/// (ezkl's Poseidon hash of the params).
///
/// Updates. The owner proposes a new record together with commit(test input) and commit(predicted
/// output). For `challengeWindow` seconds anyone may submit a fraud proof: a proof that verifies under
/// the *proposed* record, whose input slice commits to the test input and whose output slice does not
/// match the prediction. That rejects the update. After the window anyone may finalize it.
///
/// Emergency. EMERGENCY_ROLE may pause/unpause a model and roll it back to the previous accepted
/// version. Every change emits an event: the event log is the audit trail.
contract ModelRegistry is AccessControl {
    bytes32 public constant EMERGENCY_ROLE = keccak256("EMERGENCY_ROLE");
    uint64 public constant MAX_CHALLENGE_WINDOW = 365 days;

    struct InstanceLayout {
        uint32 total; // number of public instances a proof carries
        uint32 inputOffset; // input slice (raw inputs, or their Poseidon hash)
        uint32 inputLen;
        uint32 weightsOffset; // weights commitment slice (0 length: weights bound by the VK)
        uint32 weightsLen;
        uint32 outputOffset; // output slice (raw outputs, or their Poseidon hash)
        uint32 outputLen;
    }

    struct ModelRecord {
        address verifier; // Halo2Verifier, or a Halo2VerifierReusable when vka != 0
        address vka; // data contract: 0x00 then the VKA words (reusable verifier only)
        bytes32 onnxSha256;
        bytes32 weightsCommitment; // may be zero when weightsLen == 0
        bytes32 vkDigest; // sha256 of the verification key file
        bytes32 datasetRoot; // Merkle root (keccak256 leaves, sorted pairs); may be zero
        InstanceLayout layout;
        string metadataURI;
    }

    enum VersionStatus {
        None,
        Pending,
        Accepted,
        Rejected,
        Cancelled,
        Revoked
    }

    struct Pending {
        uint64 version;
        uint64 deadline; // challenges while block.timestamp < deadline; finalize from deadline on
        bytes32 testInputCommitment;
        bytes32 predictedOutputCommitment;
    }

    struct Model {
        address owner;
        uint64 current; // active version, 1-based; 0 = not registered
        bool paused;
        Pending pending;
    }

    uint64 public challengeWindow;

    mapping(bytes32 => Model) private _models;
    mapping(bytes32 => ModelRecord[]) private _versions; // _versions[id][v - 1]
    mapping(bytes32 => VersionStatus[]) private _status; // parallel to _versions
    mapping(bytes32 => uint64[]) private _accepted; // stack of accepted versions; top == current

    // Errors (decoded by zkml's Python client into one-line messages)
    error InvalidModelId();
    error UnknownModel(bytes32 modelId);
    error ModelAlreadyRegistered(bytes32 modelId);
    error NotModelOwner(bytes32 modelId, address caller);
    error ModelIsPaused(bytes32 modelId);
    error ModelNotPaused(bytes32 modelId);
    error NoVerifierCode(address verifier);
    error BadVka(address vka);
    error InvalidLayout();
    error MissingWeightsCommitment();
    error MissingTestCommitment();
    error InstanceCountMismatch(uint256 expected, uint256 actual);
    error WeightsCommitmentMismatch(bytes32 expected, bytes32 actual);
    error InvalidProof(bytes32 modelId, uint64 version);
    error UpdateAlreadyPending(bytes32 modelId, uint64 version);
    error NoPendingUpdate(bytes32 modelId);
    error ChallengeWindowOpen(bytes32 modelId, uint64 deadline);
    error ChallengeWindowClosed(bytes32 modelId, uint64 deadline);
    error ChallengeUnsupported(bytes32 modelId);
    error TestInputMismatch(bytes32 expected, bytes32 actual);
    error OutputMatchesPrediction(bytes32 modelId);
    error NothingToRollBack(bytes32 modelId);
    error NoDatasetRoot(bytes32 modelId);
    error UnknownVersion(bytes32 modelId, uint64 version);
    error WindowTooLong(uint64 window);
    error ZeroAddress();

    // Events: the audit trail
    event ModelRegistered(bytes32 indexed modelId, address indexed owner, uint64 version, ModelRecord record);
    event UpdateProposed(
        bytes32 indexed modelId,
        uint64 indexed version,
        ModelRecord record,
        bytes32 testInputCommitment,
        bytes32 predictedOutputCommitment,
        uint64 deadline
    );
    event UpdateFinalized(bytes32 indexed modelId, uint64 indexed version, uint64 previousVersion);
    event UpdateChallenged(
        bytes32 indexed modelId,
        uint64 indexed version,
        address indexed challenger,
        bytes32 inputCommitment,
        bytes32 outputCommitment
    );
    event UpdateCancelled(bytes32 indexed modelId, uint64 indexed version, address indexed by);
    event ModelPaused(bytes32 indexed modelId, address indexed by);
    event ModelUnpaused(bytes32 indexed modelId, address indexed by);
    event RolledBack(bytes32 indexed modelId, uint64 indexed fromVersion, uint64 toVersion, address indexed by);
    event ModelOwnershipTransferred(bytes32 indexed modelId, address indexed previousOwner, address indexed newOwner);
    event ChallengeWindowChanged(uint64 previous, uint64 current);
    event ProofVerified(bytes32 indexed modelId, uint64 indexed version, bytes32 instancesHash, address indexed caller);

    constructor(address admin, uint64 window) {
        if (admin == address(0)) revert ZeroAddress();
        if (window > MAX_CHALLENGE_WINDOW) revert WindowTooLong(window);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(EMERGENCY_ROLE, admin);
        challengeWindow = window;
        emit ChallengeWindowChanged(0, window);
    }

    modifier onlyModelOwner(bytes32 modelId) {
        Model storage m = _models[modelId];
        if (m.current == 0) revert UnknownModel(modelId);
        if (m.owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
        _;
    }

    modifier known(bytes32 modelId) {
        if (_models[modelId].current == 0) revert UnknownModel(modelId);
        _;
    }

    // Registration and updates

    /// @notice Register a new model; the caller becomes its owner and version 1 is active at once.
    function register(bytes32 modelId, ModelRecord calldata record) external returns (uint64) {
        if (modelId == bytes32(0)) revert InvalidModelId();
        if (_versions[modelId].length != 0) revert ModelAlreadyRegistered(modelId);
        _validate(record);
        _versions[modelId].push(record);
        _status[modelId].push(VersionStatus.Accepted);
        _accepted[modelId].push(1);
        Model storage m = _models[modelId];
        m.owner = msg.sender;
        m.current = 1;
        emit ModelRegistered(modelId, msg.sender, 1, record);
        return 1;
    }

    /// @notice Propose a new version; it takes effect only via finalize() after the challenge window.
    /// @param testInputCommitment commit(input slice) of a test input the proposer chose.
    /// @param predictedOutputCommitment commit(output slice) the proposed model produces on it.
    function proposeUpdate(
        bytes32 modelId,
        ModelRecord calldata record,
        bytes32 testInputCommitment,
        bytes32 predictedOutputCommitment
    ) external onlyModelOwner(modelId) returns (uint64 version) {
        Model storage m = _models[modelId];
        if (m.pending.version != 0) revert UpdateAlreadyPending(modelId, m.pending.version);
        _validate(record);
        if (
            record.layout.inputLen != 0 && record.layout.outputLen != 0
                && (testInputCommitment == bytes32(0) || predictedOutputCommitment == bytes32(0))
        ) revert MissingTestCommitment();
        _versions[modelId].push(record);
        _status[modelId].push(VersionStatus.Pending);
        version = uint64(_versions[modelId].length);
        uint64 deadline = uint64(block.timestamp) + challengeWindow;
        m.pending = Pending(version, deadline, testInputCommitment, predictedOutputCommitment);
        emit UpdateProposed(modelId, version, record, testInputCommitment, predictedOutputCommitment, deadline);
    }

    /// @notice Activate the pending update once its challenge window has passed. Anyone may call.
    function finalize(bytes32 modelId) external known(modelId) {
        Model storage m = _models[modelId];
        Pending memory p = m.pending;
        if (p.version == 0) revert NoPendingUpdate(modelId);
        if (block.timestamp < p.deadline) revert ChallengeWindowOpen(modelId, p.deadline);
        delete m.pending;
        _status[modelId][p.version - 1] = VersionStatus.Accepted;
        _accepted[modelId].push(p.version);
        uint64 previous = m.current;
        m.current = p.version;
        emit UpdateFinalized(modelId, p.version, previous);
    }

    /// @notice Fraud proof against the pending update: a proof valid under the proposed record, on the
    /// committed test input, whose outputs differ from the committed prediction. Rejects the update.
    function challenge(bytes32 modelId, bytes calldata proof, uint256[] calldata instances) external known(modelId) {
        Model storage m = _models[modelId];
        Pending memory p = m.pending;
        if (p.version == 0) revert NoPendingUpdate(modelId);
        if (block.timestamp >= p.deadline) revert ChallengeWindowClosed(modelId, p.deadline);
        ModelRecord storage record = _versions[modelId][p.version - 1];
        InstanceLayout memory l = record.layout;
        if (l.inputLen == 0 || l.outputLen == 0) revert ChallengeUnsupported(modelId);
        _checkInstances(record, instances);
        bytes32 inputCommitment = _commit(instances, l.inputOffset, l.inputLen);
        if (inputCommitment != p.testInputCommitment) revert TestInputMismatch(p.testInputCommitment, inputCommitment);
        bytes32 outputCommitment = _commit(instances, l.outputOffset, l.outputLen);
        if (outputCommitment == p.predictedOutputCommitment) revert OutputMatchesPrediction(modelId);
        if (!_callVerifier(record, proof, instances)) revert InvalidProof(modelId, p.version);
        delete m.pending;
        _status[modelId][p.version - 1] = VersionStatus.Rejected;
        emit UpdateChallenged(modelId, p.version, msg.sender, inputCommitment, outputCommitment);
    }

    /// @notice Withdraw the pending update (model owner or EMERGENCY_ROLE).
    function cancelUpdate(bytes32 modelId) external known(modelId) {
        Model storage m = _models[modelId];
        if (m.owner != msg.sender && !hasRole(EMERGENCY_ROLE, msg.sender)) revert NotModelOwner(modelId, msg.sender);
        uint64 version = m.pending.version;
        if (version == 0) revert NoPendingUpdate(modelId);
        delete m.pending;
        _status[modelId][version - 1] = VersionStatus.Cancelled;
        emit UpdateCancelled(modelId, version, msg.sender);
    }

    function transferModelOwnership(bytes32 modelId, address newOwner) external onlyModelOwner(modelId) {
        if (newOwner == address(0)) revert ZeroAddress();
        emit ModelOwnershipTransferred(modelId, _models[modelId].owner, newOwner);
        _models[modelId].owner = newOwner;
    }

    // Emergency controls

    function pause(bytes32 modelId) external onlyRole(EMERGENCY_ROLE) known(modelId) {
        if (_models[modelId].paused) revert ModelIsPaused(modelId);
        _models[modelId].paused = true;
        emit ModelPaused(modelId, msg.sender);
    }

    function unpause(bytes32 modelId) external onlyRole(EMERGENCY_ROLE) known(modelId) {
        if (!_models[modelId].paused) revert ModelNotPaused(modelId);
        _models[modelId].paused = false;
        emit ModelUnpaused(modelId, msg.sender);
    }

    /// @notice Revoke the active version and reactivate the previous accepted one.
    function rollback(bytes32 modelId) external onlyRole(EMERGENCY_ROLE) known(modelId) {
        uint64[] storage acc = _accepted[modelId];
        if (acc.length < 2) revert NothingToRollBack(modelId);
        uint64 from = acc[acc.length - 1];
        acc.pop();
        uint64 to = acc[acc.length - 1];
        _status[modelId][from - 1] = VersionStatus.Revoked;
        _models[modelId].current = to;
        emit RolledBack(modelId, from, to, msg.sender);
    }

    function setChallengeWindow(uint64 window) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (window > MAX_CHALLENGE_WINDOW) revert WindowTooLong(window);
        emit ChallengeWindowChanged(challengeWindow, window);
        challengeWindow = window;
    }

    // Verification

    /// @notice Check a proof against the model's active version (eth_call). Reverts when the model is
    /// unknown or paused, or the instances do not fit its layout or weights commitment; returns false
    /// when the verifier rejects the proof.
    function verify(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        view
        returns (bool)
    {
        (ModelRecord storage record,) = _active(modelId);
        _checkInstances(record, instances);
        return _callVerifier(record, proof, instances);
    }

    /// @notice Like verify(), but a transaction that reverts on a bad proof and emits ProofVerified.
    function verifyAndRecord(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        returns (bytes32 instancesHash)
    {
        (ModelRecord storage record, uint64 version) = _active(modelId);
        _checkInstances(record, instances);
        if (!_callVerifier(record, proof, instances)) revert InvalidProof(modelId, version);
        instancesHash = keccak256(abi.encodePacked(instances));
        emit ProofVerified(modelId, version, instancesHash, msg.sender);
    }

    /// @notice Whether `leaf` is in the active version's training-data Merkle tree
    /// (keccak256 leaves, sorted-pair hashing, as OpenZeppelin's MerkleProof).
    function verifyDatasetMember(bytes32 modelId, bytes32[] calldata proof, bytes32 leaf)
        external
        view
        known(modelId)
        returns (bool)
    {
        bytes32 root = _versions[modelId][_models[modelId].current - 1].datasetRoot;
        if (root == bytes32(0)) revert NoDatasetRoot(modelId);
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // Views

    function getModel(bytes32 modelId)
        external
        view
        known(modelId)
        returns (address owner, uint64 currentVersion, uint64 latestVersion, bool paused, Pending memory pending)
    {
        Model storage m = _models[modelId];
        return (m.owner, m.current, uint64(_versions[modelId].length), m.paused, m.pending);
    }

    function getRecord(bytes32 modelId, uint64 version) external view returns (ModelRecord memory) {
        if (version == 0 || version > _versions[modelId].length) revert UnknownVersion(modelId, version);
        return _versions[modelId][version - 1];
    }

    function versionStatus(bytes32 modelId, uint64 version) external view returns (VersionStatus) {
        if (version == 0 || version > _status[modelId].length) return VersionStatus.None;
        return _status[modelId][version - 1];
    }

    /// @notice The commitment encoding, on chain: keccak256(abi.encodePacked(values)).
    function commit(uint256[] calldata values) external pure returns (bytes32) {
        return _commit(values, 0, values.length);
    }

    // Internals

    function _active(bytes32 modelId) internal view returns (ModelRecord storage record, uint64 version) {
        Model storage m = _models[modelId];
        version = m.current;
        if (version == 0) revert UnknownModel(modelId);
        if (m.paused) revert ModelIsPaused(modelId);
        record = _versions[modelId][version - 1];
    }

    function _validate(ModelRecord calldata record) internal view {
        if (record.verifier.code.length == 0) revert NoVerifierCode(record.verifier);
        if (record.vka != address(0)) {
            uint256 size = record.vka.code.length;
            if (size < 33 || (size - 1) % 32 != 0) revert BadVka(record.vka);
        }
        InstanceLayout calldata l = record.layout;
        if (
            l.total == 0 || uint256(l.inputOffset) + l.inputLen > l.total
                || uint256(l.weightsOffset) + l.weightsLen > l.total
                || uint256(l.outputOffset) + l.outputLen > l.total
        ) revert InvalidLayout();
        if (l.weightsLen != 0 && record.weightsCommitment == bytes32(0)) revert MissingWeightsCommitment();
    }

    function _checkInstances(ModelRecord storage record, uint256[] calldata instances) internal view {
        InstanceLayout memory l = record.layout;
        if (instances.length != l.total) revert InstanceCountMismatch(l.total, instances.length);
        if (l.weightsLen != 0) {
            bytes32 got = l.weightsLen == 1
                ? bytes32(instances[l.weightsOffset])
                : _commit(instances, l.weightsOffset, l.weightsLen);
            if (got != record.weightsCommitment) revert WeightsCommitmentMismatch(record.weightsCommitment, got);
        }
    }

    /// @dev keccak256(abi.encodePacked(values[offset:offset+len])); bounds are checked by the caller.
    function _commit(uint256[] calldata values, uint256 offset, uint256 len) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, add(values.offset, mul(offset, 0x20)), mul(len, 0x20))
            h := keccak256(ptr, mul(len, 0x20))
        }
    }

    function _callVerifier(ModelRecord storage record, bytes calldata proof, uint256[] calldata instances)
        internal
        view
        returns (bool)
    {
        address vka = record.vka;
        bytes memory callData = vka == address(0)
            ? abi.encodeCall(IHalo2Verifier.verifyProof, (proof, instances))
            : abi.encodeCall(IHalo2VerifierReusable.verifyProof, (proof, instances, _loadVka(vka)));
        (bool ok, bytes memory ret) = record.verifier.staticcall(callData);
        return ok && ret.length >= 32 && abi.decode(ret, (uint256)) == 1;
    }

    /// @dev The VKA words stored as code after a leading 0x00 byte.
    function _loadVka(address vka) internal view returns (bytes32[] memory words) {
        uint256 n = (vka.code.length - 1) / 32;
        words = new bytes32[](n);
        assembly ("memory-safe") {
            extcodecopy(vka, add(words, 0x20), 1, mul(n, 0x20))
        }
    }
}
