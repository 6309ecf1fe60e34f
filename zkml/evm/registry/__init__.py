"""The model registry (``verifiers/ModelRegistry.sol``) from Python.

* :mod:`zkml.evm.registry.client` — :class:`Registry`: deploy, read records and history, register, propose,
  finalize, challenge, verify through the registry.
* :mod:`zkml.evm.registry.records` — the record types (:class:`ModelRecord`, :class:`InstanceLayout`, …).
* :mod:`zkml.evm.registry.errors` — the contract's revert errors as one-line messages.
* :mod:`zkml.evm.registry.signing` — EIP-712 typed data: records signed offline, checked on chain.
"""

from zkml.evm.registry.client import (
    CONTRACTS_DIR_ENV,
    DEFAULT_CHALLENGE_WINDOW,
    REGISTRY_CONTRACT,
    REGISTRY_SOURCE,
    VERSION_STATUS,
    ZERO32,
    InstanceLayout,
    ModelInfo,
    ModelRecord,
    PendingUpdate,
    Registry,
    RegistryError,
    code_hash,
    commit,
    compile_registry,
    model_id_of,
    parse_model_ref,
    proposal_commitments,
    registry_source,
    row_calldata,
    to_bytes32,
    to_model_id,
)

__all__ = [
    "CONTRACTS_DIR_ENV", "DEFAULT_CHALLENGE_WINDOW", "REGISTRY_CONTRACT", "REGISTRY_SOURCE", "VERSION_STATUS", "ZERO32",
    "InstanceLayout", "ModelInfo", "ModelRecord", "PendingUpdate", "Registry", "RegistryError",
    "code_hash", "commit", "compile_registry", "model_id_of", "parse_model_ref",
    "proposal_commitments", "registry_source", "row_calldata", "to_bytes32", "to_model_id",
]
