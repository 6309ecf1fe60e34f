"""On-chain side of zkml: compile, run a local chain, deploy verifiers, and the model registry.

Modules, one concept each:

* :mod:`zkml.evm.solc` — pinned solc-js (through ``node``), standard JSON, compile cache.
* :mod:`zkml.evm.anvil` — the embedded anvil: a child process, or the detached
  chain of ``zkml chain up|down|status`` with ``--state`` persistence.
* :mod:`zkml.evm.chain` — connect to any EVM RPC, sign locally, deploy / call /
  transact; :mod:`zkml.evm.abi` encodes calls and decodes results, events and
  reverts; keys come from :mod:`zkml.keys`.
* :mod:`zkml.evm.verifier` — render the Halo2 verifier with ezkl (no download),
  compile, check EIP-170, deploy, verify proofs on chain, measure gas;
  :mod:`zkml.evm.optimize` is its exact gas rewrite of ezkl's Solidity;
  :mod:`zkml.evm.batch` checks many proofs with one pairing (``Halo2BatchVerifier.sol``).
* :mod:`zkml.evm.registry` — client of ``verifiers/ModelRegistry.sol``; its record
  types are in :mod:`zkml.evm.registry.records`, its revert messages in
  :mod:`zkml.evm.registry.errors`.

Nothing is imported here eagerly: ``zkml chain status`` should not pay for web3.
"""
