"""The gate's report: judged checks per model, ``report.json``, ``report.md`` and the job summary.

:func:`write_report` writes the JSON and the GitHub-flavoured Markdown to the
output folder and appends the Markdown to ``$GITHUB_STEP_SUMMARY`` when that
is set (the job summary of a GitHub Actions run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkml.util import write_json_atomic

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


# Report


@dataclass(frozen=True)
class GateCheck:
    """One judged fact with its numbers."""

    name: str
    """compile | prove | accuracy | error | runtimes | verify_local | verifier_bytes | verify_onchain | gas."""
    ok: bool | None
    """Passed, failed, or None when not run (skipped by config or after an earlier failure)."""
    value: Any
    """The measured number (or text)."""
    threshold: Any
    """What it was judged against (None when not gated)."""
    detail: str
    """One line, with numbers."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "value": self.value, "threshold": self.threshold, "detail": self.detail}


@dataclass
class ModelReport:
    """Everything the gate found out about one model."""

    name: str
    """The model's label."""
    path: str
    """Its .onnx or recipe."""
    onnx: str | None = None
    """The ONNX file (the recipe's model for a recipe)."""
    model_sha256: str | None = None
    """sha256 of the ONNX."""
    circuit: dict[str, Any] = field(default_factory=dict)
    """Circuit id, logrows, batch, scale, cache hit."""
    sample: dict[str, Any] = field(default_factory=dict)
    """Population, size, indices and the VRF evidence."""
    bundle: str | None = None
    """Where the proof bundle was written."""
    proofs: int = 0
    """Number of SNARKs."""
    accuracy: dict[str, Any] = field(default_factory=dict)
    """Circuit and float accuracy on the sample, float accuracy on the whole set."""
    errors: dict[str, Any] = field(default_factory=dict)
    """Float-vs-circuit error summary (from zkml.compare)."""
    onchain: dict[str, Any] = field(default_factory=dict)
    """Chain id, verifier address and size, gas per proof."""
    checks: list[GateCheck] = field(default_factory=list)
    """Every check, in order."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage."""
    thresholds: dict[str, Any] = field(default_factory=dict)
    """The thresholds applied."""

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def failures(self) -> list[str]:
        return [c.detail for c in self.checks if c.ok is False]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": self.path, "onnx": self.onnx, "passed": self.passed, "model_sha256": self.model_sha256,
            "circuit": self.circuit, "sample": self.sample, "bundle": self.bundle, "proofs": self.proofs,
            "accuracy": self.accuracy, "errors": self.errors, "onchain": self.onchain,
            "thresholds": self.thresholds, "checks": [c.as_dict() for c in self.checks], "seconds": self.seconds,
        }


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict over every model."""

    config: str
    """The config file."""
    test_set: dict[str, Any]
    """Path, sha256 and rows of the test set."""
    models: list[ModelReport]
    """Per model."""
    seconds: float
    """Total wall time."""
    tools: dict[str, str]
    """Tool versions."""
    notes: list[str] = field(default_factory=list)
    """Warnings (dev SRS, ephemeral VRF key)."""

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failures(self) -> list[str]:
        return [f"{m.name}: {f}" for m in self.models for f in m.failures()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": "zkml-gate-report", "version": 1, "passed": self.passed, "exit_code": self.exit_code,
            "failures": self.failures(), "config": self.config, "test_set": self.test_set,
            "models": [m.as_dict() for m in self.models], "seconds": self.seconds, "tools": self.tools, "notes": self.notes,
        }

    def markdown(self) -> str:
        """The report as GitHub-flavoured Markdown (the job summary)."""
        icon = {True: "✅", False: "❌", None: "➖"}
        out = [f"## zkml gate: {'PASS ✅' if self.passed else 'FAIL ❌'}", ""]
        out.append(f"config `{self.config}` · test set `{self.test_set['path']}` ({self.test_set['rows']} rows, "
                   f"sha256 `{self.test_set['sha256'][:16]}…`) · {len(self.models)} model(s) · {self.seconds:.1f} s")
        for n in self.notes:
            out += ["", f"> ⚠️ {n}"]
        for m in self.models:
            c = m.circuit
            out += ["", f"### {m.name}: {'PASS ✅' if m.passed else 'FAIL ❌'}", ""]
            if m.model_sha256:
                out.append(f"- model `{m.onnx or m.path}` sha256 `{m.model_sha256}`" + (f" (recipe `{m.path}`)" if m.onnx and m.onnx != m.path else ""))
            if c:
                out.append(f"- circuit `{c.get('id')}` (logrows {c.get('logrows')}, batch {c.get('batch_size')}, "
                           f"scale {c.get('input_scale')}, {'cached' if c.get('cache_hit') else 'built'})")
            if m.sample:
                s = m.sample
                out.append(f"- sample: {s.get('size')} of {s.get('population')} test rows, {m.proofs} proof(s)"
                           + (f", bundle `{m.bundle}`" if m.bundle else ""))
                v = s.get("vrf")
                if v:
                    out.append(f"- VRF {v['suite']} ({v['key']} key): pk `{v['pk']}`, alpha `{v['alpha']}` "
                               f"({v.get('alpha_source', 'derived')}), beta `{v['beta']}`, pi `{v['pi']}`")
                out.append(f"- indices: `{s.get('indices')}`")
            out += ["", "| check | value | threshold | verdict |", "|---|---|---|---|"]
            for ch in m.checks:
                out.append(f"| {ch.name} | {_md(ch.name, ch.value)} | {_md(ch.name, ch.threshold)} | {icon[ch.ok]} {_cell(ch.detail)} |")
        fails = self.failures()
        if fails:
            out += ["", "**Failed:**", ""] + [f"- {f}" for f in fails]
        return "\n".join(out) + "\n"

    def summary(self) -> str:
        """Plain-text summary for the terminal."""
        mark = {True: "ok  ", False: "FAIL", None: "--  "}
        lines = []
        for m in self.models:
            lines.append(f"{m.name}: {'PASS' if m.passed else 'FAIL'}  (model {str(m.model_sha256)[:12]}…, circuit {m.circuit.get('id')}, "
                         f"{m.proofs} proof(s))")
            for ch in m.checks:
                lines.append(f"  {mark[ch.ok]} {ch.name:<15} {ch.detail}")
        lines.append(f"gate: {'PASS' if self.passed else 'FAIL'} in {self.seconds:.1f}s")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md(check: str, v: Any) -> str:
    if v is None:
        return "—"
    if check == "accuracy" and isinstance(v, float):
        return f"{100 * v:.1f}%"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return _cell(str(v))


def write_report(report: GateReport, out: Path) -> None:
    """Write ``report.json`` and ``report.md`` to ``out``; append the Markdown to ``$GITHUB_STEP_SUMMARY`` if set."""
    write_json_atomic(out / "report.json", report.as_dict())
    (out / "report.md").write_text(report.markdown())
    summary = os.environ.get(SUMMARY_ENV)
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(report.markdown())
