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

/// @notice verifiers/ValidationGate.sol: whether a pending version may become active (I10).
interface IValidationGate {
    function approves(bytes32 modelId, uint64 version) external view returns (bool);
}

/// @notice ezkl's reusable verifier: the circuit's VK artifact (VKA) comes with every call.
/// Its real return is (bool, bytes32, int256[]) in a non-standard encoding; we read only the first word.
interface IHalo2VerifierReusable {
    function verifyProof(bytes calldata proof, uint256[] calldata instances, bytes32[] memory vka)
        external
        returns (bool);
}

/// @notice verifiers/VRFVerifier.sol (ECVRF-SECP256K1-SHA256-TAI, fast verify).
interface IVRFVerifier {
    function verify(
        bytes calldata publicKey,
        bytes calldata alpha,
        bytes calldata pi,
        uint256[2] calldata uPoint,
        uint256[2] calldata sH,
        uint256[2] calldata cGamma
    ) external view returns (bool valid, bytes32 beta);
}

/// @title ModelRegistry
/// @notice Binds a model id to the verifier of its circuit and the digests that identify the model
/// (ONNX file, weights commitment, verification key, training-data Merkle root, metadata URI), with a
/// full version history. Proofs are checked through the registry, so a proof made for another model,
/// other weights or another version is refused.
///
/// INVARIANTS (each one has a regression test in tests/test_registry.py or tests/test_redteam_onchain.py):
///  I1 Namespaced ids. A model id is modelIdOf(owner, name) = keccak256(abi.encode(registrant, name)).
///     Nobody can register under another account's namespace, so a name cannot be squatted; a consumer
///     who knows the owner's address and the name knows the id. Ownership may be transferred later; the
///     id keeps naming the original registrant's namespace and getModel() names the current owner.
///  I2 Everything a proof is checked against is in the versioned record: the verifier and the code hash
///     it had at registration, the VK artifact, the deferred-pairing verifier used by verifyBatch and its
///     code hash, the digests, the layout and the challenge window. No function changes any of these for
///     an existing version (setDatasetRoot fills a zero dataset root once; that root is not used to
///     check proofs). A new value is a new version, which takes effect only through
///     proposeUpdate -> challenge window -> finalize.
///  I3 Code is pinned. Every verification re-checks that the verifier (and for verifyBatch the deferred
///     verifier) still has the code hash in the record, so code swapped under an address is refused.
///  I4 The window is the model's own. A version's challengeWindow (bounded below by the immutable
///     minChallengeWindow and above by MAX_CHALLENGE_WINDOW) is the time the *next* update must wait.
///     No role can shorten it: only an update, itself waiting out the current window, can change it.
///  I5 Roles are separate. DEFAULT_ADMIN_ROLE only grants and revokes roles; EMERGENCY_ROLE may pause,
///     unpause and roll back to an earlier *accepted* version (never activate an unvetted record). No
///     account holds both roles (refused at deployment and on every grant). Model owners need no role.
///  I6 A deferred verifier cannot accept what its verifier rejects without being refutable: during an
///     update's window anyone may call challengeDeferred with any (proof, instances) on which the
///     proposed verifier and the proposed deferred verifier (paired alone) disagree; that rejects the
///     update. verifyBatch also refuses a deferred result with a point at infinity.
///  I7 Audit records are bound to an auditor's VRF key. An account first proves it holds a VRF secret
///     key (registerAuditor: a VRF proof over auditorKeyAlpha(account), checked by the immutable
///     vrfVerifier); recordAudit is accepted only from such an account, names the key's hash, and is
///     accepted once per (key, challenge digest). A consumer checks that the challenge's public key
///     hashes to the event's auditorKey.
///  I8 A proof is recorded once. verifyAndRecord refuses a (model, proof, instances) already recorded,
///     so nobody can replay someone's verification as another ProofVerified event. `submitter` in the
///     event is msg.sender: who sent the transaction, not who made the proof (a proof carries no
///     prover identity; a front-runner can still be first to submit a proof it saw in the mempool).
///  I10 A gated update needs the gate. gateOf[modelId] is named once by the model owner (at any time: a
///     gate can only block) with setGate and never changes; when set, finalize (after the window or by the committee)
///     reverts GateRefused unless the gate approves the pending version (verifiers/ValidationGate.sol).
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
/// output). For the active version's challengeWindow seconds anyone may submit a fraud proof: a proof
/// that verifies under the *proposed* record, whose input slice commits to the test input and whose
/// output slice does not match the prediction (challenge), or any proof on which the proposed verifier
/// and deferred verifier disagree (challengeDeferred). Either rejects the update. After the window
/// anyone may finalize it.
///
/// Signed records (EIP-712, domain name "zkml ModelRegistry", version "2", this chain and address).
/// The model owner signs what the registry will store, so a relayer (anyone) may submit it and nobody
/// can register or update a model in the owner's name with other digests, another verifier or code,
/// another layout, window or metadata URI:
///   InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,
///                  uint32 outputOffset,uint32 outputLen)
///   ModelRecord(bytes32 modelId,uint64 version,address verifier,bytes32 verifierCodeHash,address vka,
///               address deferredVerifier,bytes32 deferredCodeHash,bytes32 onnxSha256,
///               bytes32 weightsCommitment,bytes32 vkDigest,bytes32 datasetRoot,uint64 challengeWindow,
///               InstanceLayout layout,string metadataURI)
///   ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)
/// (each type string followed by its referenced types, sorted by name, per EIP-712). The domain is
/// computed here exactly as OpenZeppelin's EIP712 does (cached separator, rebuilt after a chain fork;
/// ERC-5267 eip712Domain()): OZ 5.x's EIP712 imports Strings -> Bytes, which uses MCOPY and would stop
/// the registry compiling for pre-Cancun targets (evmVersion paris). Signatures go through OZ's ECDSA
/// (65 bytes, low s). `registerSigned` takes a ModelRecord signature for version 1 of
/// modelIdOf(owner, name); `proposeUpdateSigned` a ModelUpdate signature by the current owner for
/// exactly the next version number. Version numbers are never reused (rejected and cancelled proposals
/// keep theirs), so a signature can be used at most once.
///
/// Dataset root. Part of the (signed) record. A version registered without one (zero) may get it
/// later, once, from the model owner (`setDatasetRoot`); changing a set root is an update.
/// `verifyDatasetRow` recomputes a row's leaf on chain (zkml.commit leaf encoding v1:
/// keccak256(bytes.concat(keccak256(abi.encode(uint256 index, bytes features, bytes label))))).
contract ModelRegistry is AccessControl, IERC5267 {
    bytes32 public constant EMERGENCY_ROLE = keccak256("EMERGENCY_ROLE");
    uint64 public constant MAX_CHALLENGE_WINDOW = 365 days;
    /// @notice Shortest challenge window a record may carry (I4); fixed at deployment.
    uint64 public immutable minChallengeWindow;
    /// @notice The VRF verifier that checks auditors' proofs of key possession (I7); zero: no auditors.
    address public immutable vrfVerifier;

    // EIP-712 domain and type hashes (see the header; zkml/provenance.py builds the same strings)
    string private constant EIP712_NAME = "zkml ModelRegistry";
    string private constant EIP712_VERSION = "2";
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant LAYOUT_TYPEHASH = keccak256(
        "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
        "uint32 outputOffset,uint32 outputLen)"
    );
    bytes32 public constant RECORD_TYPEHASH = keccak256(
        "ModelRecord(bytes32 modelId,uint64 version,address verifier,bytes32 verifierCodeHash,address vka,"
        "address deferredVerifier,bytes32 deferredCodeHash,bytes32 onnxSha256,bytes32 weightsCommitment,"
        "bytes32 vkDigest,bytes32 datasetRoot,uint64 challengeWindow,InstanceLayout layout,string metadataURI)"
        "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
        "uint32 outputOffset,uint32 outputLen)"
    );
    bytes32 public constant UPDATE_TYPEHASH = keccak256(
        "ModelUpdate(ModelRecord record,bytes32 testInputCommitment,bytes32 predictedOutputCommitment)"
        "InstanceLayout(uint32 total,uint32 inputOffset,uint32 inputLen,uint32 weightsOffset,uint32 weightsLen,"
        "uint32 outputOffset,uint32 outputLen)"
        "ModelRecord(bytes32 modelId,uint64 version,address verifier,bytes32 verifierCodeHash,address vka,"
        "address deferredVerifier,bytes32 deferredCodeHash,bytes32 onnxSha256,bytes32 weightsCommitment,"
        "bytes32 vkDigest,bytes32 datasetRoot,uint64 challengeWindow,InstanceLayout layout,string metadataURI)"
    );
    /// @notice Domain tag of the message an auditor's VRF key proves (auditorKeyAlpha).
    bytes public constant AUDITOR_KEY_TAG = "zkml-auditor-key/v1";

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
        bytes32 verifierCodeHash; // extcodehash(verifier): checked at registration and on every call (I3)
        address vka; // data contract: 0x00 then the VKA words (reusable verifier only)
        address deferredVerifier; // deferred-pairing variant of `verifier` for verifyBatch; 0: none
        bytes32 deferredCodeHash; // extcodehash(deferredVerifier), zero when there is none
        bytes32 onnxSha256;
        bytes32 weightsCommitment; // may be zero when weightsLen == 0
        bytes32 vkDigest; // sha256 of the verification key file
        bytes32 datasetRoot; // Merkle root (keccak256 leaves, sorted pairs); may be zero
        uint64 challengeWindow; // seconds the next update must wait (I4)
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

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;
    address private immutable _cachedThis;

    mapping(bytes32 => Model) internal _models;
    mapping(bytes32 => ModelRecord[]) internal _versions; // _versions[id][v - 1]
    mapping(bytes32 => VersionStatus[]) internal _status; // parallel to _versions
    mapping(bytes32 => uint64[]) internal _accepted; // stack of accepted versions; top == current
    /// @notice keccak256 of the compressed VRF public key an account proved it holds (I7); zero: none.
    mapping(address => bytes32) public auditorKey;
    /// @notice Who recorded proofKey(modelId, proof, instances) with verifyAndRecord (I8); zero: nobody.
    mapping(bytes32 => address) public recordedBy;
    /// @notice The committee contract of a model (I9): may pause, unpause, roll back and hotfix it; zero: none.
    mapping(bytes32 => address) public committeeOf;
    /// @notice The validation gate of a model (I10): finalize needs its approval; zero: none. Set once.
    mapping(bytes32 => address) public gateOf;
    mapping(bytes32 => bool) private _auditRecorded; // keccak256(abi.encode(auditorKey, challengeDigest))

    // Errors (decoded by zkml's Python client into one-line messages)
    error InvalidModelId();
    error UnknownModel(bytes32 modelId);
    error ModelAlreadyRegistered(bytes32 modelId);
    error NotModelOwner(bytes32 modelId, address caller);
    error ModelIsPaused(bytes32 modelId);
    error ModelNotPaused(bytes32 modelId);
    error NoVerifierCode(address verifier);
    error CodeHashMismatch(address target, bytes32 expected, bytes32 actual);
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
    error DeferredAgrees(bytes32 modelId);
    error NothingToRollBack(bytes32 modelId);
    error NoDatasetRoot(bytes32 modelId);
    error UnknownVersion(bytes32 modelId, uint64 version);
    error WindowOutOfRange(uint64 window, uint64 min, uint64 max);
    error ZeroAddress();
    error RolesNotSeparate(address account);
    error SignerNotOwner(bytes32 modelId, address signer, address owner);
    error WrongVersion(bytes32 modelId, uint64 signed, uint64 next);
    error ZeroDatasetRoot();
    error DatasetRootAlreadySet(bytes32 modelId, uint64 version, bytes32 root);
    error InvalidAuditCounts(uint32 sampled, uint32 correct);
    error NoDeferredVerifier(bytes32 modelId, uint64 version);
    error BatchNeedsPerCircuitVerifier();
    error ProofAlreadyRecorded(bytes32 proofKey, address by);
    error NoVrfVerifier();
    error BadAuditorKeyProof(address account);
    error NotAnAuditor(address account);
    error AuditAlreadyRecorded(bytes32 auditorKey, bytes32 challengeDigest);
    error NotCommittee(bytes32 modelId, address caller);
    error GateRefused(bytes32 modelId, uint64 version);

    // Events: the audit trail
    event ModelRegistered(
        bytes32 indexed modelId, address indexed owner, bytes32 indexed name, uint64 version, ModelRecord record
    );
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
    /// The proposed deferred verifier disagreed with the proposed verifier on (proof, instances).
    event DeferredChallenged(
        bytes32 indexed modelId, uint64 indexed version, address indexed challenger, bool verifierAccepts
    );
    event UpdateCancelled(bytes32 indexed modelId, uint64 indexed version, address indexed by);
    event ModelPaused(bytes32 indexed modelId, address indexed by);
    event ModelUnpaused(bytes32 indexed modelId, address indexed by);
    event RolledBack(bytes32 indexed modelId, uint64 indexed fromVersion, uint64 toVersion, address indexed by);
    event ModelOwnershipTransferred(bytes32 indexed modelId, address indexed previousOwner, address indexed newOwner);
    /// `submitter` sent the transaction; it is not a statement about who made the proof (I8).
    event ProofVerified(
        bytes32 indexed modelId,
        uint64 indexed version,
        bytes32 instancesHash,
        address indexed submitter,
        bytes32 proofKey
    );
    /// The owner's EIP-712 signature under which `version` was registered or proposed (re-checkable off chain).
    event RecordSigned(
        bytes32 indexed modelId, uint64 indexed version, address indexed signer, bytes32 digest, bytes signature
    );
    /// The model's committee changed (set by the owner while none was set, later only by the committee).
    event CommitteeSet(bytes32 indexed modelId, address indexed committee, address indexed by);
    /// The model's validation gate was named (once; verifiers/ValidationGate.sol), I10.
    event GateSet(bytes32 indexed modelId, address indexed gate);
    event DatasetRootSet(bytes32 indexed modelId, uint64 indexed version, bytes32 root, address indexed by);
    /// `account` proved it holds the VRF secret key of `publicKey` (compressed secp256k1).
    event AuditorKeyRegistered(address indexed account, bytes32 indexed keyHash, bytes publicKey);
    /// An auditor's verdict on `version`: `sampled` rows drawn by the VRF output `beta` of the challenge
    /// `challengeDigest`, `correct` of them classified right; `reportDigest` names the auditor's report.
    /// `auditorKey` is the hash of the sender's registered VRF public key (I7).
    event AuditRecorded(
        bytes32 indexed modelId,
        uint64 indexed version,
        address indexed auditor,
        bytes32 auditorKey,
        bytes32 challengeDigest,
        bytes32 beta,
        uint32 sampled,
        uint32 correct,
        bool passed,
        bytes32 reportDigest
    );

    /// @param admin DEFAULT_ADMIN_ROLE (grants roles only); zero: nobody, roles fixed forever.
    /// @param emergency EMERGENCY_ROLE (pause, unpause, rollback); zero: nobody until the admin grants it.
    /// @param minWindow the shortest challenge window any record may carry.
    /// @param vrf a VRFVerifier for auditor registration; zero: auditors cannot register.
    constructor(address admin, address emergency, uint64 minWindow, address vrf) {
        if (minWindow > MAX_CHALLENGE_WINDOW) revert WindowOutOfRange(minWindow, 0, MAX_CHALLENGE_WINDOW);
        if (admin != address(0)) _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (emergency != address(0)) _grantRole(EMERGENCY_ROLE, emergency);
        minChallengeWindow = minWindow;
        vrfVerifier = vrf;
        _cachedChainId = block.chainid;
        _cachedThis = address(this);
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    // Modifiers call one internal function each, so their revert code is not copied into every function
    // (the registry sits close to EIP-170's 24,576 bytes for evmVersion paris).
    modifier onlyModelOwner(bytes32 modelId) {
        _checkOwner(modelId);
        _;
    }

    modifier known(bytes32 modelId) {
        _checkKnown(modelId);
        _;
    }

    function _checkKnown(bytes32 modelId) internal view {
        if (_models[modelId].current == 0) revert UnknownModel(modelId);
    }

    function _checkOwner(bytes32 modelId) internal view {
        _checkKnown(modelId);
        if (_models[modelId].owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }

    /// @dev I5: no account ever holds both the admin and the emergency role.
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        if (
            (role == EMERGENCY_ROLE && hasRole(DEFAULT_ADMIN_ROLE, account))
                || (role == DEFAULT_ADMIN_ROLE && hasRole(EMERGENCY_ROLE, account))
        ) revert RolesNotSeparate(account);
        return super._grantRole(role, account);
    }

    // Registration and updates

    /// @notice The id of `name` in `owner`'s namespace (I1).
    function modelIdOf(address owner, bytes32 name) public pure returns (bytes32) {
        return keccak256(abi.encode(owner, name));
    }

    /// @notice Register `name` in the caller's namespace; the caller owns it and version 1 is active at once.
    function register(bytes32 name, ModelRecord calldata record) external returns (bytes32 modelId) {
        modelId = modelIdOf(msg.sender, name);
        _register(modelId, name, record, msg.sender);
    }

    /// @notice Register `name` in `owner`'s namespace under `owner`'s EIP-712 signature of the record
    /// (as version 1 of modelIdOf(owner, name)). Anyone may submit it; `owner` becomes the model's owner.
    function registerSigned(bytes32 name, ModelRecord calldata record, address owner, bytes calldata signature)
        external
        returns (bytes32 modelId)
    {
        if (owner == address(0)) revert ZeroAddress();
        modelId = modelIdOf(owner, name);
        bytes32 digest = _hashTypedDataV4(_recordHash(modelId, 1, record));
        _checkSigner(modelId, digest, signature, owner);
        _register(modelId, name, record, owner);
        emit RecordSigned(modelId, 1, owner, digest, signature);
    }

    /// @notice Propose a new version; it takes effect only via finalize() after the active version's
    /// challenge window (I2, I4).
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

    /// @notice Activate the pending update once its challenge window has passed. Anyone may call; the
    /// model's committee may call earlier (a hotfix: the committee contract checks k member approvals
    /// over the exact pending record, I9).
    function finalize(bytes32 modelId) external known(modelId) {
        uint64 deadline = _models[modelId].pending.deadline;
        if (block.timestamp < deadline && msg.sender != committeeOf[modelId]) {
            revert ChallengeWindowOpen(modelId, deadline);
        }
        _finalize(modelId);
    }

    /// @notice Name the model's committee: the owner while none is set, afterwards only the committee.
    function setCommittee(bytes32 modelId, address committee) external known(modelId) {
        address current = committeeOf[modelId];
        if (msg.sender != (current == address(0) ? _models[modelId].owner : current)) {
            revert NotCommittee(modelId, msg.sender);
        }
        committeeOf[modelId] = committee;
        emit CommitteeSet(modelId, committee, msg.sender);
    }

    /// @notice Name the model's validation gate (I10): owner only, once (never changed or removed).
    function setGate(bytes32 modelId, address gate) external onlyModelOwner(modelId) {
        if (gateOf[modelId] != address(0)) revert GateRefused(modelId, 0);
        gateOf[modelId] = gate;
        emit GateSet(modelId, gate);
    }

    function _finalize(bytes32 modelId) internal {
        Model storage m = _models[modelId];
        uint64 version = m.pending.version;
        if (version == 0) revert NoPendingUpdate(modelId);
        address gate = gateOf[modelId];
        if (gate != address(0)) {
            bool ok;
            // IValidationGate(gate).approves(modelId, version), in assembly: the registry is close to EIP-170
            assembly ("memory-safe") {
                let p := mload(0x40)
                mstore(p, shl(224, 0x25d3aff0))
                mstore(add(p, 4), modelId)
                mstore(add(p, 36), version)
                ok := staticcall(gas(), gate, p, 68, p, 32) // before the reads below (Yul evaluates right to left)
                ok := and(ok, and(gt(returndatasize(), 31), eq(mload(p), 1)))
            }
            if (!ok) revert GateRefused(modelId, version);
        }
        delete m.pending;
        _status[modelId][version - 1] = VersionStatus.Accepted;
        _accepted[modelId].push(version);
        uint64 previous = m.current;
        m.current = version;
        emit UpdateFinalized(modelId, version, previous);
    }

    /// @notice Fraud proof against the pending update: a proof valid under the proposed record, on the
    /// committed test input, whose outputs differ from the committed prediction. Rejects the update.
    function challenge(bytes32 modelId, bytes calldata proof, uint256[] calldata instances) external {
        (ModelRecord storage record, uint64 version) = _openPending(modelId);
        InstanceLayout memory l = record.layout;
        if (l.inputLen == 0 || l.outputLen == 0) revert ChallengeUnsupported(modelId);
        _checkInstances(record, instances);
        Pending memory p = _models[modelId].pending;
        bytes32 inputCommitment = _commit(instances, l.inputOffset, l.inputLen);
        if (inputCommitment != p.testInputCommitment) revert TestInputMismatch(p.testInputCommitment, inputCommitment);
        bytes32 outputCommitment = _commit(instances, l.outputOffset, l.outputLen);
        if (outputCommitment == p.predictedOutputCommitment) revert OutputMatchesPrediction(modelId);
        if (!_callVerifier(record, proof, instances)) revert InvalidProof(modelId, version);
        _reject(modelId, version);
        emit UpdateChallenged(modelId, version, msg.sender, inputCommitment, outputCommitment);
    }

    /// @notice Fraud proof against the pending update's deferred verifier (I6): any proof and instances
    /// (of the proposed layout) on which the proposed verifier and the proposed deferred verifier, its
    /// pairing done alone, disagree. Rejects the update. Anyone may call during the window.
    function challengeDeferred(bytes32 modelId, bytes calldata proof, uint256[] calldata instances) external {
        (ModelRecord storage record, uint64 version) = _openPending(modelId);
        if (record.deferredVerifier == address(0)) revert NoDeferredVerifier(modelId, version);
        _checkInstances(record, instances);
        bool full = _callVerifier(record, proof, instances);
        bool deferred = Halo2Batch.accepts(record.deferredVerifier, proof, instances);
        if (full == deferred) revert DeferredAgrees(modelId);
        _reject(modelId, version);
        emit DeferredChallenged(modelId, version, msg.sender, full);
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

    // Audits (I7)

    /// @notice The VRF input an auditor proves to bind its VRF key to `account` on this registry and chain:
    /// abi.encodePacked(AUDITOR_KEY_TAG, block.chainid, address(this), account).
    function auditorKeyAlpha(address account) public view returns (bytes memory) {
        return abi.encodePacked(AUDITOR_KEY_TAG, block.chainid, address(this), account);
    }

    /// @notice Bind the caller to the VRF key `publicKey` (33-byte compressed secp256k1) with a VRF proof
    /// `pi` of auditorKeyAlpha(msg.sender) (helper points as VRFVerifier.verify takes them). Only the
    /// key's holder can make the proof, and the proof names the caller, so nobody can claim another
    /// auditor's key. A later proof replaces the caller's key.
    function registerAuditor(
        bytes calldata publicKey,
        bytes calldata pi,
        uint256[2] calldata uPoint,
        uint256[2] calldata sH,
        uint256[2] calldata cGamma
    ) external returns (bytes32 keyHash) {
        if (vrfVerifier == address(0)) revert NoVrfVerifier();
        (bool valid,) = IVRFVerifier(vrfVerifier).verify(publicKey, auditorKeyAlpha(msg.sender), pi, uPoint, sH, cGamma);
        if (!valid) revert BadAuditorKeyProof(msg.sender);
        keyHash = keccak256(publicKey);
        auditorKey[msg.sender] = keyHash;
        emit AuditorKeyRegistered(msg.sender, keyHash, publicKey);
    }

    /// @notice Record an audit outcome (pass or fail) for `version` of `modelId`. Only from an account
    /// with a registered VRF key; once per (that key, `challengeDigest`). The event names the sender and
    /// the key hash: consumers check it is the challenge's key and trust the auditors they choose.
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
        emit AuditRecorded(
            modelId, version, msg.sender, _claimAudit(challengeDigest), challengeDigest, beta, sampled, correct,
            passed, reportDigest
        );
    }

    /// @dev The sender's auditor key, after marking (key, challengeDigest) recorded (once only).
    function _claimAudit(bytes32 challengeDigest) internal returns (bytes32 key) {
        key = auditorKey[msg.sender];
        if (key == bytes32(0)) revert NotAnAuditor(msg.sender);
        bytes32 slot = keccak256(abi.encode(key, challengeDigest));
        if (_auditRecorded[slot]) revert AuditAlreadyRecorded(key, challengeDigest);
        _auditRecorded[slot] = true;
    }

    // Emergency controls (I5)

    /// @dev I5/I9: EMERGENCY_ROLE or the model's committee.
    modifier emergencyOrCommittee(bytes32 modelId) {
        _checkEmergencyOrCommittee(modelId);
        _;
    }

    function _checkEmergencyOrCommittee(bytes32 modelId) internal view {
        _checkKnown(modelId);
        if (msg.sender != committeeOf[modelId]) _checkRole(EMERGENCY_ROLE);
    }

    function pause(bytes32 modelId) external emergencyOrCommittee(modelId) {
        if (_models[modelId].paused) revert ModelIsPaused(modelId);
        _models[modelId].paused = true;
        emit ModelPaused(modelId, msg.sender);
    }

    function unpause(bytes32 modelId) external emergencyOrCommittee(modelId) {
        if (!_models[modelId].paused) revert ModelNotPaused(modelId);
        _models[modelId].paused = false;
        emit ModelUnpaused(modelId, msg.sender);
    }

    /// @notice Revoke the active version and reactivate the previous accepted one.
    function rollback(bytes32 modelId) external emergencyOrCommittee(modelId) {
        uint64[] storage acc = _accepted[modelId];
        if (acc.length < 2) revert NothingToRollBack(modelId);
        uint64 from = acc[acc.length - 1];
        acc.pop();
        uint64 to = acc[acc.length - 1];
        _status[modelId][from - 1] = VersionStatus.Revoked;
        _models[modelId].current = to;
        emit RolledBack(modelId, from, to, msg.sender);
    }

    // Verification

    /// @notice Check a proof against the model's active version (eth_call). Reverts when the model is
    /// unknown or paused, the verifier's code changed, or the instances do not fit its layout or weights
    /// commitment; returns false when the verifier rejects the proof.
    function verify(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        view
        returns (bool)
    {
        (ModelRecord storage record,) = _active(modelId);
        _checkInstances(record, instances);
        return _callVerifier(record, proof, instances);
    }

    /// @notice The dedupe key of a recorded proof (I8).
    function proofKey(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(modelId, keccak256(proof), keccak256(abi.encodePacked(instances))));
    }

    /// @notice Like verify(), but a transaction that reverts on a bad proof or a proof already recorded,
    /// and emits ProofVerified naming the sender as submitter (I8).
    function verifyAndRecord(bytes32 modelId, bytes calldata proof, uint256[] calldata instances)
        external
        returns (bytes32 instancesHash)
    {
        (ModelRecord storage record, uint64 version) = _active(modelId);
        _checkInstances(record, instances);
        bytes32 key = proofKey(modelId, proof, instances);
        address earlier = recordedBy[key];
        if (earlier != address(0)) revert ProofAlreadyRecorded(key, earlier);
        if (!_callVerifier(record, proof, instances)) revert InvalidProof(modelId, version);
        recordedBy[key] = msg.sender;
        instancesHash = keccak256(abi.encodePacked(instances));
        emit ProofVerified(modelId, version, instancesHash, msg.sender, key);
    }

    /// @notice Check several proofs of the model's active version at once, with one pairing
    /// (Halo2Batch) through the deferred verifier named in the active record (I2): the same checks as
    /// verify() for each proof, reverting on the first failure (Halo2Batch.BatchProofInvalid names the
    /// index), true when all are valid.
    function verifyBatch(bytes32 modelId, bytes[] calldata proofs, uint256[][] calldata instances)
        external
        view
        returns (bool)
    {
        (ModelRecord storage record, uint64 version) = _active(modelId);
        address deferred = record.deferredVerifier;
        if (deferred == address(0)) revert NoDeferredVerifier(modelId, version);
        _checkCode(deferred, record.deferredCodeHash);
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

    /// @notice The EIP-712 domain separator (name "zkml ModelRegistry", version "2", this chain and address).
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

    function _register(bytes32 modelId, bytes32 name, ModelRecord calldata record, address owner) internal {
        if (name == bytes32(0)) revert InvalidModelId();
        if (_versions[modelId].length != 0) revert ModelAlreadyRegistered(modelId);
        _validate(record);
        _versions[modelId].push(record);
        _status[modelId].push(VersionStatus.Accepted);
        _accepted[modelId].push(1);
        Model storage m = _models[modelId];
        m.owner = owner;
        m.current = 1;
        emit ModelRegistered(modelId, owner, name, 1, record);
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
        // I4: the window the *active* version fixed, never a registry-wide setting
        uint64 window = _versions[modelId][m.current - 1].challengeWindow;
        _versions[modelId].push(record);
        _status[modelId].push(VersionStatus.Pending);
        version = uint64(_versions[modelId].length);
        uint64 deadline = uint64(block.timestamp) + window;
        m.pending = Pending(version, deadline, testInputCommitment, predictedOutputCommitment);
        emit UpdateProposed(modelId, version, record, testInputCommitment, predictedOutputCommitment, deadline);
    }

    /// @dev The pending record while its window is open.
    function _openPending(bytes32 modelId) internal view returns (ModelRecord storage record, uint64 version) {
        Model storage m = _models[modelId];
        if (m.current == 0) revert UnknownModel(modelId);
        Pending memory p = m.pending;
        if (p.version == 0) revert NoPendingUpdate(modelId);
        if (block.timestamp >= p.deadline) revert ChallengeWindowClosed(modelId, p.deadline);
        return (_versions[modelId][p.version - 1], p.version);
    }

    function _reject(bytes32 modelId, uint64 version) internal {
        delete _models[modelId].pending;
        _status[modelId][version - 1] = VersionStatus.Rejected;
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
        bytes memory head = abi.encode(
            RECORD_TYPEHASH, modelId, version, record.verifier, record.verifierCodeHash, record.vka
        );
        bytes memory mid = abi.encode(
            record.deferredVerifier, record.deferredCodeHash, record.onnxSha256, record.weightsCommitment
        );
        bytes memory tail = abi.encode(
            record.vkDigest, record.datasetRoot, record.challengeWindow, layoutHash, keccak256(bytes(record.metadataURI))
        );
        return keccak256(bytes.concat(head, mid, tail));
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

    /// @dev I3: `target` still has the code hash the record pinned.
    function _checkCode(address target, bytes32 expected) internal view {
        bytes32 actual = target.codehash;
        if (target.code.length == 0) revert NoVerifierCode(target);
        if (actual != expected) revert CodeHashMismatch(target, expected, actual);
    }

    function _validate(ModelRecord calldata record) internal view {
        _checkCode(record.verifier, record.verifierCodeHash);
        if (record.vka != address(0)) {
            uint256 size = record.vka.code.length;
            if (size < 33 || (size - 1) % 32 != 0) revert BadVka(record.vka);
        }
        if (record.deferredVerifier != address(0)) {
            if (record.vka != address(0)) revert BatchNeedsPerCircuitVerifier();
            _checkCode(record.deferredVerifier, record.deferredCodeHash);
        } else if (record.deferredCodeHash != bytes32(0)) {
            revert CodeHashMismatch(address(0), bytes32(0), record.deferredCodeHash);
        }
        uint64 w = record.challengeWindow;
        if (w < minChallengeWindow || w > MAX_CHALLENGE_WINDOW) {
            revert WindowOutOfRange(w, minChallengeWindow, MAX_CHALLENGE_WINDOW);
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
        address verifier = record.verifier;
        _checkCode(verifier, record.verifierCodeHash);
        address vka = record.vka;
        bytes memory callData = vka == address(0)
            ? abi.encodeCall(IHalo2Verifier.verifyProof, (proof, instances))
            : abi.encodeCall(IHalo2VerifierReusable.verifyProof, (proof, instances, _loadVka(vka)));
        (bool ok, bytes memory ret) = verifier.staticcall(callData);
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
