"""Session fixtures shared by the whole suite: real circuits, real proofs.

Expensive artifacts (SRS, keys, proofs) are built once per session in a
session-scoped store; every test writes its own files under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import CALIBRATION, CNN, MLP, TEST_SET

from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.inputs import load_samples
from zkml.prove import prove
from zkml.store import Store


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One artifact store for the session (dev SRS files and circuits are reused)."""
    return Store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="session")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    """The committed held-out digits test set: x [n, 64] in [0, 1], y labels."""
    with np.load(TEST_SET) as z:
        return z["x"], z["y"]


@pytest.fixture(scope="session")
def mlp_circuit(store: Store) -> Circuit:
    """The digits MLP compiled with default options (public input/output, fixed params)."""
    cal = load_samples(CALIBRATION, (64,))
    circuit, _ = compile_model(MLP, cal, CircuitOptions(), store=store)
    return circuit


@pytest.fixture(scope="session")
def cnn_circuit(store: Store) -> Circuit:
    """The digits CNN compiled with default options."""
    cal = load_samples(CALIBRATION, (1, 8, 8))
    circuit, _ = compile_model(CNN, cal, CircuitOptions(), store=store)
    return circuit


@pytest.fixture(scope="session")
def mlp_bundle(mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray]) -> Bundle:
    """A real proof of the first test sample through the digits MLP."""
    return prove(mlp_circuit, test_set[0][:1])


@pytest.fixture(scope="session")
def mlp_bundle_file(mlp_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mlp_bundle`` saved to disk (tests copy it before changing it)."""
    path = tmp_path_factory.mktemp("bundles") / "mlp_proof.json"
    mlp_bundle.save(path)
    return path


# The fast loop (`make test-fast` = `pytest -m "not slow"`): every module under tests/onchain/ (they need a
# chain) and the modules here that need a chain, a cluster or a service are marked slow, alongside the tests
# marked slow one by one. `make test` runs everything.
SLOW_FOLDERS = {"onchain"}
SLOW_MODULES = {
    "test_audit", "test_gate", "test_redteam_audit", "test_scale", "test_serve", "test_smt", "test_validation_gate",
}
# Single tests of 4-12 s each (measured with `pytest -m "not slow" --durations=40`): whole compile -> prove
# flows that the fast loop's other tests cover in parts; `make test` runs them.
SLOW_TESTS = {
    "test_targets::test_compile_then_prove_and_compare_with_just_the_onnx",
    "test_core::test_batch_larger_than_calibration_set",
    "test_core::test_cache_hit_and_corrupted_manifest_rebuild",
    "test_core::test_batch_proof_with_padding",
    "test_core::test_concurrent_compiles_build_once",
    "test_compare::test_clean_model_passes_on_the_whole_test_set",
    "test_cli::test_installed_zkml_end_to_end",
    "test_cli::test_compile_prove_verify_inspect_json",
    "test_compare::test_bundle_from_a_circuit_of_other_weights_is_flagged",
    "test_redteam::test_reproduce_command",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        test = f"{module}::{getattr(item, 'originalname', item.name)}"
        if Path(str(item.path)).parent.name in SLOW_FOLDERS or module in SLOW_MODULES or test in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
