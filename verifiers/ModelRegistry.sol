// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Halo2Batch} from "./Halo2BatchVerifier.sol";

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
/// Signed records (EIP-712, domain name "zkml ModelRegistry", version "1", this chain and address).
/// The model owner signs what the registry will store, so a relayer (anyone) may submit it and nobody
/// can register or update a model in the owner's name with other digests, another verifier, another
/// layout or another metadata URI:
///   InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,
///                  uint32 outputOffset,uint32 outputLen)
///   ModelRecord(bytes32 modelId,uint64 version,address verifier,address vka,bytes32 onnxSha256,
///               bytes32 weightsCommitment,bytes32 vkDigest,bytes32 datasetRoot,InstanceLayout layout,
///               string metadataURI)
///   ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)
/// (each type string followed by its referenced types, sorted by name, per EIP-712). The domain is
/// computed here exactly as OpenZeppelin's EIP712 does (cached separator, rebuilt after a chain fork;
/// ERC-5267 eip712Domain()): OZ 5.x's EIP712 imports Strings -> Bytes, which uses MCOPY and would stop
/// the registry compiling for pre-Cancun targets (evmVersion paris). Signatures go through OZ's ECDSA
/// (65 bytes, low s). `registerSigned`
/// takes a ModelRecord signature for version 1; `proposeUpdateSigned` a ModelUpdate signature by the
/// current owner for exactly the next version number. Version numbers are never reused (rejected and
/// cancelled proposals keep theirs), so a signature can be used at most once. The unsigned `register`
/// and `proposeUpdate` remain for owners who send their own transactions (msg.sender is the signer).
///
/// Dataset root. Part of the (signed) record. A version registered without one (zero) may get it
/// later, once, from the model owner (`setDatasetRoot`); changing a set root is an update.
/// `verifyDatasetRow` recomputes a row's leaf on chain (zkml.commit leaf encoding v1:
/// keccak256(bytes.concat(keccak256(abi.encode(uint256 index, bytes features, bytes label))))).
///
/// Audits. `recordAudit` puts the outcome of an audit (zkml.audit: a VRF challenge, proofs of the sampled
/// committed rows, the auditor's check) on chain, pass or fail, as an AuditRecorded event. Anyone may
/// record: the auditor is msg.sender, and consumers trust the auditors they choose by filtering on it.
/// The model must be registered and `version` must be one of its versions (any status).
///
/// Emergency. EMERGENCY_ROLE may pause/unpause a model and roll it back to the previous accepted
/// version. Every change emits an event: the event log is the audit trail.
contract ModelRegistry is AccessControl, IERC5267 {
    bytes32 public constant EMERGENCY_ROLE = keccak256("EMERGENCY_ROLE");
    uint64 public constant MAX_CHALLENGE_WINDOW = 365 days;

    // EIP-712 domain and type hashes (see the header; zkml/provenance.py builds the same strings)
    string private constant EIP712_NAME = "zkml ModelRegistry";
    string private constant EIP712_VERSION = "1";
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant LAYOUT_TYPEHASH = keccak256(
        "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
        "uint32 outputOffset,uint32 outputLen)"
    );
    bytes32 public constant RECORD_TYPEHASH = keccak256(
        "ModelRecord(bytes32 modelId,uint64 version,address verifier,address vka,bytes32 onnxSha256,"
        "bytes32 weightsCommitment,bytes32 vkDigest,bytes32 datasetRoot,InstanceLayout layout,string metadataURI)"
        "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
        "uint32 outputOffset,uint32 outputLen)"
    );
    bytes32 public constant UPDATE_TYPEHASH = keccak256(
        "ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)"
        "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
        "uint32 outputOffset,uint32 outputLen)"
        "ModelRecord(bytes32 modelId,uint64 version,address verifier,address vka,bytes32 onnxSha256,"
        "bytes32 weightsCommitment,bytes32 vkDigest,bytes32 datasetRoot,InstanceLayout layout,string metadataURI)"
    );

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

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;
    address private immutable _cachedThis;

    mapping(bytes32 => Model) private _models;
    mapping(bytes32 => ModelRecord[]) private _versions; // _versions[id][v - 1]
    mapping(bytes32 => VersionStatus[]) private _status; // parallel to _versions
    mapping(bytes32 => uint64[]) private _accepted; // stack of accepted versions; top == current
    /// @notice deferredVerifier[modelId][verifier]: the deferred-pairing variant of that verifier, for
    /// verifyBatch. Keyed by verifier, so a version update never reuses the previous circuit's variant.
    mapping(bytes32 => mapping(address => address)) public deferredVerifier;

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
    error SignerNotOwner(bytes32 modelId, address signer, address owner);
    error WrongVersion(bytes32 modelId, uint64 signed, uint64 next);
    error ZeroDatasetRoot();
    error DatasetRootAlreadySet(bytes32 modelId, uint64 version, bytes32 root);
    error InvalidAuditCounts(uint32 sampled, uint32 correct);
    error NoDeferredVerifier(bytes32 modelId, address verifier);
    error BatchNeedsPerCircuitVerifier(bytes32 modelId);

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
    event DeferredVerifierSet(bytes32 indexed modelId, address indexed verifier, address deferred);
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
    /// The owner's EIP-712 signature under which `version` was registered or proposed (re-checkable off chain).
    event RecordSigned(
        bytes32 indexed modelId, uint64 indexed version, address indexed signer, bytes32 digest, bytes signature
    );
    event DatasetRootSet(bytes32 indexed modelId, uint64 indexed version, bytes32 root, address indexed by);
    /// An auditor's verdict on `version`: `sampled` rows drawn by the VRF output `beta` of the challenge
    /// `challengeDigest`, `correct` of them classified right; `reportDigest` names the auditor's report.
    event AuditRecorded(
        bytes32 indexed modelId,
        uint64 indexed version,
        address indexed auditor,
        bytes32 challengeDigest,
        bytes32 beta,
        uint32 sampled,
        uint32 correct,
        bool passed,
        bytes32 reportDigest
    );

    constructor(address admin, uint64 window) {
        if (admin == address(0)) revert ZeroAddress();
        if (window > MAX_CHALLENGE_WINDOW) revert WindowTooLong(window);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(EMERGENCY_ROLE, admin);
        challengeWindow = window;
        emit ChallengeWindowChanged(0, window);
        _cachedChainId = block.chainid;
        _cachedThis = address(this);
        _cachedDomainSeparator = _buildDomainSeparator();
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
        _register(modelId, record, msg.sender);
        return 1;
    }

    /// @notice Register a new model under `owner`'s EIP-712 signature of the record (version 1).
    /// Anyone may submit it; `owner` becomes the model's owner.
    function registerSigned(bytes32 modelId, ModelRecord calldata record, address owner, bytes calldata signature)
        external
        returns (uint64)
    {
        if (owner == address(0)) revert ZeroAddress();
        bytes32 digest = _hashTypedDataV4(_recordHash(modelId, 1, record));
        _checkSigner(modelId, digest, signature, owner);
        _register(modelId, record, owner);
        emit RecordSigned(modelId, 1, owner, digest, signature);
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
        return _propose(modelId, record, testInputCommitment, predictedOutputCommitment);
    }

    /// @notice proposeUpdate() under the current owner's EIP-712 ModelUpdate signature; anyone may submit.
    /// @param version the version number that was signed: must be the next one (latest + 1).
    function proposeUpdateSigned(
        bytes32 modelId,
        uint64 version,
        ModelRecord calldata record,
        bytes32 testInputCommitment,
        bytes32 predictedOutputCommitment,
        bytes calldata signature
    ) external known(modelId) returns (uint64) {
        uint64 next = uint64(_versions[modelId].length) + 1;
        if (version != next) revert WrongVersion(modelId, version, next);
        address owner = _models[modelId].owner;
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    UPDATE_TYPEHASH,
                    _recordHash(modelId, version, record),
                    testInputCommitment,
                    predictedOutputCommitment
                )
            )
        );
        _checkSigner(modelId, digest, signature, owner);
        _propose(modelId, record, testInputCommitment, predictedOutputCommitment);
        emit RecordSigned(modelId, version, owner, digest, signature);
        return version;
    }

    /// @notice Record the training-data Merkle root of the active version, if it has none yet (owner only).
    /// A root once set is changed only by an update (challenge window).
    function setDatasetRoot(bytes32 modelId, bytes32 root) external onlyModelOwner(modelId) {
        if (root == bytes32(0)) revert ZeroDatasetRoot();
        uint64 version = _models[modelId].current;
        ModelRecord storage record = _versions[modelId][version - 1];
        if (record.datasetRoot != bytes32(0)) revert DatasetRootAlreadySet(modelId, version, record.datasetRoot);
        record.datasetRoot = root;
        emit DatasetRootSet(modelId, version, root, msg.sender);
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

    // Audits

    /// @notice Record an audit outcome (pass or fail) for `version` of `modelId`; msg.sender is the auditor.
    /// Open to anyone: the event names the auditor, and consumers filter on the auditors they trust.
    function recordAudit(
        bytes32 modelId,
        uint64 version,
        bytes32 challengeDigest,
        bytes32 beta,
        bytes32 reportDigest,
        uint32 sampled,
        uint32 correct,
        bool passed
    ) external known(modelId) {
        if (version == 0 || version > _versions[modelId].length) revert UnknownVersion(modelId, version);
        if (correct > sampled) revert InvalidAuditCounts(sampled, correct);
        emit AuditRecorded(modelId, version, msg.sender, challengeDigest, beta, sampled, correct, passed, reportDigest);
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

    /// @notice Owner: the deferred-pairing variant (zkml.evm.optimize.defer_pairing) of the active
    /// version's verifier, which verifyBatch uses. It carries the same trust as the verifier the owner
    /// registered: anyone can rebuild both from the registered VK and compare code.
    function setDeferredVerifier(bytes32 modelId, address deferred) external onlyModelOwner(modelId) {
        (ModelRecord storage record,) = _active(modelId);
        if (record.vka != address(0)) revert BatchNeedsPerCircuitVerifier(modelId);
        if (deferred.code.length == 0) revert NoVerifierCode(deferred);
        deferredVerifier[modelId][record.verifier] = deferred;
        emit DeferredVerifierSet(modelId, record.verifier, deferred);
    }

    /// @notice Check several proofs of the model's active version at once, with one pairing
    /// (Halo2Batch): the same checks as verify() for each proof, reverting on the first failure
    /// (Halo2Batch.BatchProofInvalid names the index), true when all are valid.
    function verifyBatch(bytes32 modelId, bytes[] calldata proofs, uint256[][] calldata instances)
        external
        view
        returns (bool)
    {
        (ModelRecord storage record,) = _active(modelId);
        address deferred = deferredVerifier[modelId][record.verifier];
        if (deferred == address(0)) revert NoDeferredVerifier(modelId, record.verifier);
        for (uint256 i = 0; i < instances.length; ++i) {
            _checkInstances(record, instances[i]);
        }
        return Halo2Batch.verify(deferred, proofs, instances);
    }

    /// @notice Whether `leaf` is in the active version's training-data Merkle tree
    /// (keccak256 leaves, sorted-pair hashing, as OpenZeppelin's MerkleProof).
    function verifyDatasetMember(bytes32 modelId, bytes32[] calldata proof, bytes32 leaf)
        public
        view
        known(modelId)
        returns (bool)
    {
        bytes32 root = _versions[modelId][_models[modelId].current - 1].datasetRoot;
        if (root == bytes32(0)) revert NoDatasetRoot(modelId);
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice Whether row `index` with these values is in the active version's dataset: the leaf is
    /// recomputed here from the row (`features`: big-endian float64 values in C order; `label`: one
    /// big-endian float64, or empty for an unlabelled dataset).
    function verifyDatasetRow(
        bytes32 modelId,
        bytes32[] calldata proof,
        uint256 index,
        bytes calldata features,
        bytes calldata label
    ) external view returns (bool) {
        return verifyDatasetMember(modelId, proof, datasetRowLeaf(index, features, label));
    }

    /// @notice The dataset leaf of one row (zkml.commit leaf encoding v1, OpenZeppelin StandardMerkleTree style).
    function datasetRowLeaf(uint256 index, bytes calldata features, bytes calldata label)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(index, features, label))));
    }

    // EIP-712 digests (what the owner signs)

    /// @notice The EIP-712 domain separator (name "zkml ModelRegistry", version "1", this chain and address).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IERC5267
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", EIP712_NAME, EIP712_VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @notice The digest an owner signs to register (`version` 1) `record` as `modelId`.
    function hashRecord(bytes32 modelId, uint64 version, ModelRecord calldata record) external view returns (bytes32) {
        return _hashTypedDataV4(_recordHash(modelId, version, record));
    }

    /// @notice The digest an owner signs to propose `record` as `version` of `modelId`.
    function hashUpdate(
        bytes32 modelId,
        uint64 version,
        ModelRecord calldata record,
        bytes32 testInputCommitment,
        bytes32 predictedOutputCommitment
    ) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    UPDATE_TYPEHASH,
                    _recordHash(modelId, version, record),
                    testInputCommitment,
                    predictedOutputCommitment
                )
            )
        );
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

    function _register(bytes32 modelId, ModelRecord calldata record, address owner) internal {
        if (modelId == bytes32(0)) revert InvalidModelId();
        if (_versions[modelId].length != 0) revert ModelAlreadyRegistered(modelId);
        _validate(record);
        _versions[modelId].push(record);
        _status[modelId].push(VersionStatus.Accepted);
        _accepted[modelId].push(1);
        Model storage m = _models[modelId];
        m.owner = owner;
        m.current = 1;
        emit ModelRegistered(modelId, owner, 1, record);
    }

    function _propose(
        bytes32 modelId,
        ModelRecord calldata record,
        bytes32 testInputCommitment,
        bytes32 predictedOutputCommitment
    ) internal returns (uint64 version) {
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

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256(bytes(EIP712_NAME)), keccak256(bytes(EIP712_VERSION)), block.chainid,
                address(this)
            )
        );
    }

    /// @dev As OpenZeppelin's EIP712._domainSeparatorV4: the cached separator unless the chain id changed.
    function _domainSeparatorV4() internal view returns (bytes32) {
        if (address(this) == _cachedThis && block.chainid == _cachedChainId) return _cachedDomainSeparator;
        return _buildDomainSeparator();
    }

    /// @dev keccak256("\x19\x01" || domainSeparator || structHash), as OpenZeppelin's _hashTypedDataV4.
    function _hashTypedDataV4(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", _domainSeparatorV4(), structHash));
    }

    /// @dev EIP-712 hashStruct(ModelRecord) of the record as `version` of `modelId`.
    function _recordHash(bytes32 modelId, uint64 version, ModelRecord calldata record)
        internal
        pure
        returns (bytes32)
    {
        InstanceLayout calldata l = record.layout;
        bytes32 layoutHash = keccak256(
            abi.encode(
                LAYOUT_TYPEHASH, l.total, l.inputOffset, l.inputLen, l.weightsOffset, l.weightsLen, l.outputOffset,
                l.outputLen
            )
        );
        bytes memory head = abi.encode(RECORD_TYPEHASH, modelId, version, record.verifier, record.vka);
        bytes memory tail = abi.encode(
            record.onnxSha256,
            record.weightsCommitment,
            record.vkDigest,
            record.datasetRoot,
            layoutHash,
            keccak256(bytes(record.metadataURI))
        );
        return keccak256(bytes.concat(head, tail));
    }

    /// @dev Reverts unless `signature` is `expected`'s (ECDSA, low s, 65 bytes) over `digest`.
    function _checkSigner(bytes32 modelId, bytes32 digest, bytes calldata signature, address expected)
        internal
        pure
    {
        address signer = ECDSA.recoverCalldata(digest, signature);
        if (signer != expected) revert SignerNotOwner(modelId, signer, expected);
    }

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
