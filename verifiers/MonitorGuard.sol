// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The one registry function the guard may call.
interface IRegistryPause {
    function pause(bytes32 modelId) external;
}

/// @title MonitorGuard: a drift monitor's circuit breaker that can only pause.
/// @notice Holds the ModelRegistry's EMERGENCY_ROLE (granted by the registry admin at deployment) and
/// exposes exactly one action, `trip`, to the monitor accounts fixed in its constructor: it pauses a
/// model and records which statistic crossed its threshold. It has no unpause, rollback, record or
/// role function and no owner, so a monitor key can never lift a pause or change a record; unpausing
/// stays with the registry's other emergency holders.
contract MonitorGuard {
    IRegistryPause public immutable registry;
    mapping(address => bool) public isMonitor;

    /// `value` is the statistic times 1e6 (fixed point), `statistic` its name (e.g. "input_ks_mean").
    event CircuitBreakerTripped(bytes32 indexed modelId, address indexed monitor, string statistic, uint256 value);

    error NotMonitor(address caller);
    error ZeroAddress();

    constructor(address registry_, address[] memory monitors) {
        if (registry_ == address(0)) revert ZeroAddress();
        registry = IRegistryPause(registry_);
        for (uint256 i = 0; i < monitors.length; i++) {
            if (monitors[i] == address(0)) revert ZeroAddress();
            isMonitor[monitors[i]] = true;
        }
    }

    /// @notice Pause `modelId` in the registry (reverts as the registry does, e.g. already paused).
    function trip(bytes32 modelId, string calldata statistic, uint256 value) external {
        if (!isMonitor[msg.sender]) revert NotMonitor(msg.sender);
        registry.pause(modelId);
        emit CircuitBreakerTripped(modelId, msg.sender, statistic, value);
    }
}
