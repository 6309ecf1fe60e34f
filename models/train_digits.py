"""Train and export the bundled reference models on scikit-learn's 8x8 digits.

The digits set ships inside scikit-learn (no download). Everything is seeded,
so re-running this script reproduces the committed ONNX files, calibration
set and held-out test set:

    .venv/bin/python models/train_digits.py

Outputs (beside this file):
- ``digits_mlp.onnx``  64 -> 32 -> ReLU -> 10, input shape [batch_size, 64]
- ``digits_cnn.onnx``  conv 1->4 (3x3) -> ReLU -> linear 144 -> 10, input [batch_size, 1, 8, 8]
- ``digits_calibration.json``  ezkl-style ``{"input_data": [[...]]}`` of 32 training rows
- ``digits_test.npz``  the held-out test set: ``x`` float32 [n, 64] in [0, 1], ``y`` int64 labels
- ``digits_input.json``  one test sample, ezkl-style, for the demo
- ``digits_models.json``  float test-set accuracy of each model
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SEED = 20261125
OPSET = 17


class DigitsMLP(torch.nn.Module):
    """64 -> 32 -> ReLU -> 10: the default reference model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class DigitsCNN(torch.nn.Module):
    """A small CNN: conv 1->4 (3x3) -> ReLU -> flatten -> linear 144 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, kernel_size=3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.fc(h.reshape(h.shape[0], -1))


def mlp() -> torch.nn.Module:
    """Factory for ``zkml export models/train_digits.py:mlp`` (trained weights)."""
    m = DigitsMLP()
    m.load_state_dict(torch.load(HERE / "digits_mlp.pt", weights_only=True))
    return m.eval()


def cnn() -> torch.nn.Module:
    """Factory for ``zkml export models/train_digits.py:cnn`` (trained weights)."""
    m = DigitsCNN()
    m.load_state_dict(torch.load(HERE / "digits_cnn.pt", weights_only=True))
    return m.eval()


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed train/test split of the digits set, pixels scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=SEED, stratify=y)


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, shape: tuple[int, ...], epochs: int) -> None:
    """Full-batch Adam; small models on a small set converge in seconds."""
    xt = torch.tensor(x).reshape(-1, *shape)
    yt = torch.tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> float:
    with torch.no_grad():
        pred = model(torch.tensor(x).reshape(-1, *shape)).argmax(1).numpy()
    return float((pred == y).mean())


def export(model: torch.nn.Module, shape: tuple[int, ...], path: Path) -> None:
    """Export with a fixed opset; only the batch axis is symbolic (``batch_size``)."""
    dummy = torch.zeros(1, *shape)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch_size"}, "logits": {0: "batch_size"}},
        dynamo=False,
    )


def main() -> None:
    torch.manual_seed(SEED)
    x_tr, x_te, y_tr, y_te = load_split()
    report = {}
    for name, model, shape, epochs in (
        ("digits_mlp", DigitsMLP(), (64,), 400),
        ("digits_cnn", DigitsCNN(), (1, 8, 8), 400),
    ):
        train(model, x_tr, y_tr, shape, epochs)
        model.eval()
        torch.save(model.state_dict(), HERE / f"{name}.pt")
        export(model, shape, HERE / f"{name}.onnx")
        report[name] = {
            "input_shape": list(shape),
            "train_accuracy": accuracy(model, x_tr, y_tr, shape),
            "test_accuracy": accuracy(model, x_te, y_te, shape),
        }
    rng = np.random.default_rng(SEED)
    cal = x_tr[rng.choice(len(x_tr), size=32, replace=False)]
    (HERE / "digits_calibration.json").write_text(json.dumps({"input_data": [cal.reshape(-1).tolist()]}))
    (HERE / "digits_input.json").write_text(json.dumps({"input_data": [x_te[0].tolist()]}))
    np.savez(HERE / "digits_test.npz", x=x_te, y=y_te)
    report["test_rows"] = int(len(y_te))
    report["seed"] = SEED
    (HERE / "digits_models.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
