"""``zkml report``: a static, self-contained HTML page of a model's public on-chain facts.

* :mod:`zkml.report.collect` — :class:`ReportData` gathered from the chain (registry getters and events,
  committee, proofs, audits) and from user-named bundles, matched to the chain by instances hash.
* :mod:`zkml.report.html` — :func:`render`: one page, inline CSS and images, every string escaped.

:func:`write_report` does both and writes ``DIR/index.html`` atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from zkml.errors import InputError
from zkml.evm.chain import Chain
from zkml.report.collect import (
    AuditRow,
    BundleProof,
    BundleReport,
    CommitteeActionRow,
    CommitteeInfo,
    ComparisonSummary,
    EmergencyRow,
    EventRow,
    Outcome,
    ProofRow,
    ReportData,
    VersionRow,
    collect_report,
)
from zkml.report.html import render
from zkml.store import Store
from zkml.util import write_bytes_atomic

#: The page's file name inside the output directory.
INDEX: Final[str] = "index.html"


@dataclass(frozen=True)
class ReportResult:
    """What ``zkml report`` wrote."""

    path: str
    """The HTML file."""
    data: ReportData
    """What it shows."""


def _writable_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and check it takes a file, before anything is read from the chain.

    Raises:
        InputError: it cannot be created or written to.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write the report to {out_dir}: {e.strerror or e}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise InputError(f"cannot write the report to {out_dir}: permission denied")


def write_report(store: Store, chain: Chain, model: str, out_dir: str | os.PathLike[str], *,
                 bundles: Sequence[str | os.PathLike[str]] = (),
                 progress: Callable[[str], None] = lambda _: None) -> ReportResult:
    """Collect the model's report from ``chain`` and write it to ``out_dir/index.html`` (atomically).

    Raises:
        InputError: ``out_dir`` is not writable, or a bundle is missing.
        BundleError: a bundle file is not a bundle.
        ChainError: no registry recorded for this chain, RPC failure.
        RegistryError: unknown model.
    """
    out = Path(out_dir)
    _writable_dir(out)
    data = collect_report(store, chain, model, bundles=bundles, progress=progress)
    path = out / INDEX
    try:
        write_bytes_atomic(path, render(data).encode("utf-8"))
        umask = os.umask(0)
        os.umask(umask)
        path.chmod(0o666 & ~umask)  # a page to publish: readable as any new file is, not the temp file's 0600
    except OSError as e:
        raise InputError(f"cannot write the report to {path}: {e.strerror or e}") from None
    return ReportResult(str(path), data)


__all__ = [
    "INDEX", "AuditRow", "BundleProof", "BundleReport", "CommitteeActionRow", "CommitteeInfo", "ComparisonSummary",
    "EmergencyRow", "EventRow", "Outcome", "ProofRow", "ReportData", "ReportResult", "VersionRow", "collect_report",
    "render", "write_report",
]
