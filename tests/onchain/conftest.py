"""Fixtures of the on-chain tests: one anvil for the whole run, the shared world on it, a revert after each test.

``anvil``, ``circuits`` and ``world`` are session fixtures (one node, one set of tiny circuits,
one registry per run, shared by every module here). Every test that uses the shared world
(``world``, ``chain``, ``registry``) runs between ``evm_snapshot`` and ``evm_revert`` (the
autouse fixture below), so no test sees another's transactions. Modules that need a node of
their own (another chain id, a node they stop mid-transaction, zkml's embedded chain) start it
themselves. The helpers tests import by name are in ``chainkit``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chainkit import Circuit, World, build_circuits, build_world

from zkml.evm.anvil import Anvil
from zkml.evm.chain import Chain, connect
from zkml.evm.registry import Registry
from zkml.store import Store


@pytest.fixture(scope="session")
def evm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The on-chain tests' working folder (circuits' proofs, verifiers, solc cache)."""
    return tmp_path_factory.mktemp("evm")


@pytest.fixture(scope="session")
def circuits(evm_root: Path) -> dict[str, Circuit]:
    """The tiny circuits ``a``, ``b``, ``h`` compiled by zkml into a store of their own, with their proofs."""
    return build_circuits(Store(evm_root / "store"), evm_root / "circuits")


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """The shared node (chain 31337), stopped at the end of the run."""
    node = Anvil.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def module_chain(anvil: Anvil) -> Iterator[Chain]:
    """The shared anvil for a module that deploys its own contracts (not the shared world): reverted
    when the module is done, so its deployments vanish with it."""
    c = connect(anvil.rpc_url, allow_dev_key=True)
    snap = c.snapshot()
    try:
        yield c
    finally:
        c.revert(snap)


@pytest.fixture(scope="session")
def world(evm_root: Path, anvil: Anvil, circuits: dict[str, Circuit]) -> World:
    """Verifiers and a registry holding ``model-a``/``model-b``/``model-h``, deployed once on the shared anvil."""
    return build_world(anvil.rpc_url, evm_root, circuits)


@pytest.fixture(autouse=True)
def _shared_chain_reverted(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that uses the shared world runs between a snapshot and a revert of the shared chain."""
    if "world" not in request.fixturenames:
        yield
        return
    w = request.getfixturevalue("world")
    if not isinstance(w, World):  # a module's own `world` fixture (its own node)
        yield
        return
    snap = w.chain.snapshot()
    try:
        yield
    finally:
        w.chain.revert(snap)


@pytest.fixture
def chain(world: World) -> Chain:
    """The shared chain (reverted after the test by the autouse fixture)."""
    return world.chain


@pytest.fixture
def registry(world: World) -> Registry:
    """The shared registry."""
    return world.registry
