"""Session fixtures shared by the whole suite: real circuits, real proofs.

Expensive artifacts (SRS, keys, proofs) are built once per session in a
session-scoped store; every test writes its own files under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.inputs import load_samples
from zkml.prove import prove
from zkml.store import Store

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
MLP = MODELS / "digits_mlp.onnx"
CNN = MODELS / "digits_cnn.onnx"
CALIBRATION = MODELS / "digits_calibration.json"
TEST_SET = MODELS / "digits_test.npz"


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


def export_tiny_mlp(path: Path, sizes: tuple[int, int, int], seed: int) -> Path:
    """A tiny Linear -> ReLU -> Linear torch model (``sizes`` = in, hidden, out; weights from ``seed``) exported
    to ONNX with a symbolic batch axis: input ``input``, output ``out``."""
    import torch

    torch.manual_seed(seed)
    d_in, hidden, d_out = sizes
    m = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d_out)).eval()
    torch.onnx.export(m, (torch.zeros(1, d_in),), str(path), opset_version=17, input_names=["input"], output_names=["out"],
                      dynamic_axes={"input": {0: "batch_size"}, "out": {0: "batch_size"}}, dynamo=False)
    return path


def store_of_its_own(store: Store, circuit: Circuit, root: Path) -> tuple[Store, Circuit]:
    """A store holding a copy of ``circuit`` (and the dev SRS files), for a test that deploys on its own anvil.

    Deployment records are kept per chain id, and every anvil is chain 31337: a module that deploys on
    its own node must not share the session store's records with the embedded chain's.
    """
    import shutil

    from zkml.circuit import open_circuit

    own = Store(root)
    shutil.copytree(store.root / "srs", own.root / "srs")
    shutil.copytree(circuit.folder, own.circuit_dir(circuit.circuit_id))
    return own, open_circuit(own.circuit_dir(circuit.circuit_id), own)


# The fast loop (`make test-fast` = `pytest -m "not slow"`): whole modules that need a chain, a cluster or a
# service are marked slow here, alongside the tests marked slow one by one. `make test` runs everything.
SLOW_MODULES = {
    "test_audit", "test_cid", "test_committee", "test_evm", "test_failover", "test_gate", "test_monitor", "test_onchain_cli",
    "test_provenance_onchain", "test_redteam_audit", "test_redteam_onchain", "test_registry", "test_registry_cli",
    "test_registry_fuzz", "test_report", "test_scale", "test_serve", "test_smt", "test_validation_gate", "test_vrf_onchain",
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
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        if module in SLOW_MODULES or f"{module}::{getattr(item, 'originalname', item.name)}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
