// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice The part of verifiers/ModelRegistry.sol a committee calls (types ABI-identical to the registry's).
interface IModelRegistryForCommittee {
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
    function hashRecord(bytes32 modelId, uint64 version, ModelRecord calldata record) external view returns (bytes32);
    function committeeOf(bytes32 modelId) external view returns (address);
    function pause(bytes32 modelId) external;
    function unpause(bytes32 modelId) external;
    function rollback(bytes32 modelId) external;
    function finalize(bytes32 modelId) external;
    function setCommittee(bytes32 modelId, address committee) external;
}

/// @title ModelCommittee
/// @notice k-of-n governance for the models of one ModelRegistry whose record names this contract
/// (registry.committeeOf(modelId)). Members sign an EIP-712 CommitteeAction offline; anyone submits k
/// distinct members' signatures with execute(), which checks them and calls the registry.
///
/// Actions: Pause, Unpause, Rollback (revoke the active version, reactivate the previous accepted one),
/// Hotfix (activate the pending update now, skipping its challenge window) and SetCommittee (hand the
/// model to another committee contract). Membership and threshold are fixed at deployment; the
/// committee changes itself by SetCommittee to a new ModelCommittee.
///
/// An approval binds (INVARIANTS.md C1-C5):
///  - the action and the model id;
///  - `version`: the model's active version (Hotfix: the pending version) at execution;
///  - `recordHash`: registry.hashRecord(modelId, version, that version's record) -- the registry's own
///    EIP-712 digest of the record, so a Hotfix approval names the exact verifier, its code hash, the VK
///    digest, the ONNX digest, the weights commitment, window, layout and metadata URI;
///  - `nonce`: the model's committee nonce, incremented by every execution (an approval is used once);
///  - the chain and this contract (EIP-712 domain "zkml ModelCommittee", version "1").
/// Type: CommitteeAction(uint8 action,bytes32 modelId,uint64 version,bytes32 recordHash,
///                       address newCommittee,uint64 nonce)
contract ModelCommittee {
    enum Action {
        Pause,
        Unpause,
        Rollback,
        Hotfix,
        SetCommittee
    }

    struct CommitteeAction {
        uint8 action; // Action
        bytes32 modelId;
        uint64 version; // active version (Hotfix: pending version) the approval is for
        bytes32 recordHash; // registry.hashRecord of that version's record
        address newCommittee; // SetCommittee only; zero otherwise
        uint64 nonce; // nonces[modelId] at execution
    }

    bytes32 public constant ACTION_TYPEHASH = keccak256(
        "CommitteeAction(uint8 action,bytes32 modelId,uint64 version,bytes32 recordHash,address newCommittee,uint64 nonce)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    IModelRegistryForCommittee public immutable registry;
    uint256 public immutable threshold;
    address[] private _members;
    mapping(address => bool) public isMember;
    /// @notice Executions so far per model: the nonce the next approval must name.
    mapping(bytes32 => uint64) public nonces;

    error BadCommittee();
    error UnknownAction(uint8 action);
    error NotEnoughApprovals(uint256 given, uint256 threshold);
    error DuplicateSigner(address signer);
    error NotMember(address signer);
    error StaleNonce(bytes32 modelId, uint64 signed, uint64 expected);
    error VersionMismatch(bytes32 modelId, uint64 signed, uint64 actual);
    error RecordMismatch(bytes32 modelId, bytes32 signed, bytes32 actual);
    error NotThisCommittee(bytes32 modelId, address committee);
    error UnexpectedNewCommittee(address newCommittee);

    /// Every executed action, with the members whose approvals carried it.
    event CommitteeActionExecuted(
        bytes32 indexed modelId,
        uint8 indexed action,
        uint64 version,
        bytes32 recordHash,
        address newCommittee,
        uint64 nonce,
        address[] signers,
        address indexed submitter
    );

    constructor(address registry_, address[] memory members_, uint256 threshold_) {
        if (registry_ == address(0) || threshold_ == 0 || threshold_ > members_.length) revert BadCommittee();
        for (uint256 i = 0; i < members_.length; ++i) {
            address m = members_[i];
            if (m == address(0) || isMember[m]) revert BadCommittee();
            isMember[m] = true;
        }
        registry = IModelRegistryForCommittee(registry_);
        _members = members_;
        threshold = threshold_;
    }

    function members() external view returns (address[] memory) {
        return _members;
    }

    /// @notice The EIP-712 domain separator (name "zkml ModelCommittee", version "1", this chain and address).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("zkml ModelCommittee"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @notice The digest a member signs to approve `a`.
    function hashAction(CommitteeAction calldata a) public view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(ACTION_TYPEHASH, a.action, a.modelId, a.version, a.recordHash, a.newCommittee, a.nonce));
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
    }

    /// @notice What an approval for `action` on `modelId` must name now: (version, recordHash, nonce).
    function expected(uint8 action, bytes32 modelId) public view returns (uint64 version, bytes32 recordHash, uint64 nonce) {
        if (action > uint8(Action.SetCommittee)) revert UnknownAction(action);
        (, uint64 current,,, IModelRegistryForCommittee.Pending memory p) = registry.getModel(modelId);
        version = action == uint8(Action.Hotfix) ? p.version : current;
        if (version != 0) recordHash = registry.hashRecord(modelId, version, registry.getRecord(modelId, version));
        nonce = nonces[modelId];
    }

    /// @notice Carry out `a` under `signatures` of at least `threshold` distinct members over hashAction(a).
    function execute(CommitteeAction calldata a, bytes[] calldata signatures) external returns (address[] memory signers) {
        bytes32 id = a.modelId;
        // Binding to the registry's current state
        if (registry.committeeOf(id) != address(this)) revert NotThisCommittee(id, registry.committeeOf(id));
        (uint64 version, bytes32 recordHash, uint64 nonce) = expected(a.action, id);
        if (a.nonce != nonce) revert StaleNonce(id, a.nonce, nonce);
        if (a.version != version) revert VersionMismatch(id, a.version, version);
        if (a.recordHash != recordHash) revert RecordMismatch(id, a.recordHash, recordHash);
        if ((a.action == uint8(Action.SetCommittee)) != (a.newCommittee != address(0))) {
            revert UnexpectedNewCommittee(a.newCommittee);
        }
        // k distinct members
        if (signatures.length < threshold) revert NotEnoughApprovals(signatures.length, threshold);
        bytes32 digest = hashAction(a);
        signers = new address[](signatures.length);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address s = ECDSA.recoverCalldata(digest, signatures[i]);
            if (!isMember[s]) revert NotMember(s);
            for (uint256 j = 0; j < i; ++j) {
                if (signers[j] == s) revert DuplicateSigner(s);
            }
            signers[i] = s;
        }
        // Effects, then the registry call
        nonces[id] = nonce + 1;
        emit CommitteeActionExecuted(id, a.action, a.version, a.recordHash, a.newCommittee, nonce, signers, msg.sender);
        if (a.action == uint8(Action.Pause)) registry.pause(id);
        else if (a.action == uint8(Action.Unpause)) registry.unpause(id);
        else if (a.action == uint8(Action.Rollback)) registry.rollback(id);
        else if (a.action == uint8(Action.Hotfix)) registry.finalize(id);
        else registry.setCommittee(id, a.newCommittee);
    }
}
