"""The results of a comparison: per-output tolerances, per-runtime rows, checks and the whole verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zkml.compare.runtimes import REFERENCE
from zkml.compare.tolerance import FLOOR_LSB


# Results


@dataclass(frozen=True)
class OutputTolerance:
    """The circuit tolerance of one model output and how it was derived."""

    output: str
    """Model output name."""
    value: float
    """Absolute tolerance on |circuit - float|."""
    source: str
    """``derived`` (from the scale) or ``override`` (given by the user)."""
    output_scale: int
    """The circuit's fixed-point scale of this output (bits)."""
    emulated_error: float
    """Max |fixed-point emulation - float| over the compared inputs (e_fx)."""
    margin: float
    """Factor on e_fx."""
    floor: float
    """FLOOR_LSB * 2^-s_out."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output, "value": self.value, "source": self.source, "output_scale": self.output_scale,
            "emulated_error": self.emulated_error, "margin": self.margin, "floor": self.floor,
            "formula": "override" if self.source == "override" else f"{self.margin:g} * e_fx + {FLOOR_LSB} * 2^-{self.output_scale}",
        }


@dataclass(frozen=True)
class Row:
    """One runtime's agreement with the reference on one model output."""

    runtime: str
    """``circuit``, ``tract`` or ``torch``."""
    output: str
    """Model output name."""
    status: str
    """``ok`` (ran), ``not installed``, ``error`` (could not run)."""
    detail: str = ""
    """Why a runtime did not run, or a note."""
    max_abs_error: float | None = None
    """max |runtime - reference| over every sample and element."""
    max_rel_error: float | None = None
    """max_abs_error / max |reference| of this output."""
    mean_abs_error: float | None = None
    """mean |runtime - reference|."""
    argmax_agreement: float | None = None
    """Fraction of samples whose argmax agrees (None for one-element outputs)."""
    tolerance: float | None = None
    """The bound max_abs_error is judged against."""
    within: bool | None = None
    """max_abs_error <= tolerance (None when the runtime did not run)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Check:
    """A yes/no fact about the comparison (digests, input commitment, proofs)."""

    name: str
    """Short name."""
    ok: bool | None
    """True/False, or None when it could not be checked (with the reason in detail)."""
    detail: str
    """What was compared, in words."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_model` or :func:`compare_bundle`."""

    mode: str
    """``model`` or ``bundle``."""
    model_path: str
    """The ONNX that was executed."""
    model_sha256: str
    """Its sha256."""
    circuit_id: str | None
    """The circuit compared (the bundle's, in bundle mode)."""
    samples: int
    """How many samples were run."""
    outputs: list[tuple[str, int]]
    """Model outputs: (name, elements per sample), in order."""
    rows: list[Row]
    """Every runtime x output."""
    checks: list[Check]
    """Digest, input commitment and proof checks."""
    tolerances: list[OutputTolerance]
    """Circuit tolerance per output."""
    values: dict[str, np.ndarray] = field(repr=False)
    """Runtime name -> outputs [samples, total elements] (only runtimes that ran)."""
    labels: np.ndarray | None = field(default=None, repr=False)
    """Labels of the samples, when the input file had them."""
    calibration_error: float | None = None
    """Max abs error recorded when the circuit was calibrated (context, not used in the verdict)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per runtime."""
    inputs: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)
    """Model inputs fed to every runtime: (name, sample shape, dtype), in graph order."""

    @property
    def failures(self) -> list[str]:
        """Every failed row or check, in words (empty when the comparison passes)."""
        return [c.detail for c in self.checks if c.ok is False] + self.row_failures()

    def row_failures(self, runtime: str | None = None) -> list[str]:
        """Rows (of ``runtime``, or all) beyond their tolerance, in words."""
        out = []
        for r in self.rows:
            if r.within is False and runtime in (None, r.runtime):
                if r.max_abs_error is None or r.tolerance is None:
                    out.append(f"{r.runtime} output '{r.output}': {r.detail}")
                else:
                    out.append(f"{r.runtime} output '{r.output}': max abs error {r.max_abs_error:.4g} exceeds tolerance {r.tolerance:.4g}")
        return out

    @property
    def ok(self) -> bool:
        """True when every runtime that ran is within tolerance and no check failed."""
        return not self.failures

    def accuracy(self, runtime: str) -> float | None:
        """Label accuracy of a runtime's argmax (first output), when labels are known."""
        v = self.values.get(runtime)
        if v is None or self.labels is None or not self.outputs:
            return None
        n0 = self.outputs[0][1]
        return float(np.mean(v[:, :n0].argmax(axis=1) == self.labels))

    def as_dict(self) -> dict[str, Any]:
        acc = {name: self.accuracy(name) for name in self.values} if self.labels is not None else None
        return {
            "mode": self.mode,
            "ok": self.ok,
            "failures": self.failures,
            "model": {"path": self.model_path, "sha256": self.model_sha256},
            "circuit_id": self.circuit_id,
            "samples": self.samples,
            "inputs": [{"name": n, "shape": list(sh), "dtype": dt} for n, sh, dt in self.inputs],
            "outputs": [{"name": n, "size": s} for n, s in self.outputs],
            "reference": REFERENCE,
            "rows": [r.as_dict() for r in self.rows],
            "checks": [c.as_dict() for c in self.checks],
            "tolerances": [t.as_dict() for t in self.tolerances],
            "calibration_max_abs_error": self.calibration_error,
            "label_accuracy": acc,
            "seconds": self.seconds,
            "values": {k: v.tolist() for k, v in self.values.items()},
        }


# Scoring


