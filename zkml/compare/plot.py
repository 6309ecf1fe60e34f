"""The comparison figure of ``zkml compare --plot``: float vs circuit outputs and the error distribution."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zkml.compare.runtimes import REFERENCE
from zkml.errors import ConfigError, ZkmlError
from zkml.util import atomic_path

if TYPE_CHECKING:
    from zkml.compare.result import Comparison


# Plot


def plot(comparison: Comparison, path: str | Path) -> Path:
    """Draw float vs circuit outputs and the error distribution to a PNG.

    1. float vs circuit: grouped bars per output element for one sample, a
       scatter of every element (with y = x) for several;
    2. error vs magnitude: circuit - float against the float value, with the
       ±tolerance band, so a reader sees whether errors grow with the output;
    3. error distribution: histogram of circuit - float over every element
       of every sample, with ±tolerance.

    Raises:
        ConfigError: no circuit outputs to draw.
        ZkmlError: the figure cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = comparison.values[REFERENCE]
    circ = comparison.values.get("circuit")
    if circ is None or circ.shape != ref.shape:
        raise ConfigError("no circuit outputs of the model's shape to plot")
    tol = max(t.value for t in comparison.tolerances)
    err = circ - ref
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.6))
    verdict = "within tolerance" if comparison.ok else "MISMATCH"
    fig.suptitle(f"{Path(comparison.model_path).name} vs circuit {comparison.circuit_id}: "
                 f"{comparison.samples} sample(s), {verdict}")
    # 1. Float vs circuit
    ax = axes[0]
    if comparison.samples == 1:
        idx = np.arange(ref.shape[1])
        ax.bar(idx - 0.2, ref[0], width=0.4, color="tab:gray", label="float (onnxruntime)")
        ax.bar(idx + 0.2, circ[0], width=0.4, color="tab:blue", label="circuit (dequantized)")
        ax.set_xlabel("output element")
        ax.set_ylabel("value")
        ax.set_xticks(idx)
    else:
        lo, hi = float(min(ref.min(), circ.min())), float(max(ref.max(), circ.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="y = x")
        ax.scatter(ref.reshape(-1), circ.reshape(-1), s=6, alpha=0.5, color="tab:blue", label="output elements")
        ax.set_xlabel("float output (onnxruntime)")
        ax.set_ylabel("circuit output (dequantized)")
    ax.set_title("float vs circuit")
    ax.legend(loc="upper left", fontsize=8)
    # 2. Error vs magnitude
    ax = axes[1]
    ax.axhspan(-tol, tol, color="tab:green", alpha=0.15, label=f"±tolerance {tol:.3g}")
    ax.scatter(ref.reshape(-1), err.reshape(-1), s=6, alpha=0.5, color="tab:blue")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("float output")
    ax.set_ylabel("circuit − float")
    ax.set_title("error vs output value")
    ax.legend(loc="upper left", fontsize=8)
    # 3. Error distribution
    ax = axes[2]
    ax.hist(err.reshape(-1), bins=int(min(60, max(10, err.size // 10))), color="tab:blue", alpha=0.85)
    for x in (-tol, tol):
        ax.axvline(x, color="tab:red", ls="--", lw=1)
    ax.set_xlabel("circuit − float")
    ax.set_ylabel("output elements")
    ax.set_title(f"error distribution (max |err| {np.abs(err).max():.3g}, tolerance {tol:.3g})")
    fig.tight_layout()
    out = Path(path)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    except OSError as e:
        raise ZkmlError(f"cannot write plot {out}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return out
