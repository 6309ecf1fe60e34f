// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../ModelRegistry.sol";

/// @title RegistryInvariants
/// @notice Harness for Solidity's SMTChecker (CHC engine): ModelRegistry unchanged, plus one view per
/// invariant of verifiers/INVARIANTS.md whose `assert` must hold in every state reachable by any sequence
/// of transactions. Never deployed; `python -m zkml.evm.registry.smt` runs the checker over it.
contract RegistryInvariants is ModelRegistry {
    constructor() ModelRegistry(address(1), address(2), 1 hours, address(0)) {}

    /// S1 (I2/I9): the active version exists: 0 < current <= latest, or the model is unregistered.
    function invActiveExists(bytes32 id) external view {
        uint64 current = _models[id].current;
        uint256 latest = _versions[id].length;
        assert((current == 0) == (latest == 0));
        assert(current <= latest);
    }

    /// S2: every version has exactly one status (the status array is parallel to the version array).
    function invStatusParallel(bytes32 id) external view {
        assert(_status[id].length == _versions[id].length);
    }

    /// S3: a pending update is always the newest version, and its status is Pending.
    function invPendingIsLatest(bytes32 id) external view {
        uint64 p = _models[id].pending.version;
        if (p != 0) {
            assert(p == _versions[id].length);
            assert(_status[id][p - 1] == VersionStatus.Pending);
        }
    }

    /// S4 (I9 "a rejected update never becomes active"): the active version's status is Accepted.
    function invActiveAccepted(bytes32 id) external view {
        uint64 current = _models[id].current;
        if (current != 0) assert(_status[id][current - 1] == VersionStatus.Accepted);
    }

    /// S5: the accepted stack's top is the active version (rollback pops to an earlier accepted one).
    function invAcceptedTop(bytes32 id) external view {
        uint64[] storage acc = _accepted[id];
        uint64 current = _models[id].current;
        if (current != 0) {
            assert(acc.length > 0);
            assert(acc[acc.length - 1] == current);
        } else {
            assert(acc.length == 0);
        }
    }

    /// S6 (I9 "a paused model never verifies"): _active reverts for a paused model.
    function invPausedNeverActive(bytes32 id) external view {
        if (_models[id].paused) {
            _active(id);
            assert(false);
        }
    }
}
