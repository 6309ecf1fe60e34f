"""On-chain side of zkml: compile, run a local chain, deploy verifiers, and the model registry.

Modules, one concept each:

* :mod:`zkml.evm.solc` — pinned solc-js (through ``node``), standard JSON, compile cache.
* :mod:`zkml.evm.anvil` — the embedded anvil: a child process, or the detached
  chain of ``zkml chain up|down|status`` with ``--state`` persistence.
* :mod:`zkml.evm.chain` — connect to any EVM RPC, sign locally, deploy / call /
  transact, decode reverts and events.
* :mod:`zkml.evm.verifier` — render the Halo2 verifier with ezkl (no download),
  compile, check EIP-170, deploy, verify proofs on chain, measure gas.
* :mod:`zkml.evm.registry` — client of ``verifiers/ModelRegistry.sol``.

Nothing is imported here eagerly: ``zkml chain status`` should not pay for web3.
"""
