"""What test modules import by name: the repository's paths and models, and small model/store helpers.

(Fixtures live in the conftest files; importing ``conftest`` by name is ambiguous once a
subfolder has its own.)
"""

from __future__ import annotations

from pathlib import Path

from zkml.circuit import Circuit
from zkml.store import Store

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
MLP = MODELS / "digits_mlp.onnx"
CNN = MODELS / "digits_cnn.onnx"
CALIBRATION = MODELS / "digits_calibration.json"
TEST_SET = MODELS / "digits_test.npz"


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
