"""Resource estimate: what setup and proving a circuit will need, before building it.

From ezkl's settings (logrows, rows used, einsum columns, lookups, range
checks, dynamic lookups, shuffles) we count the circuit's **cells**: 2^logrows
rows times the columns Halo2 commits to. Key generation and proving are
dominated by FFTs and multi-scalar multiplications, which also run over the
fixed, selector, table and permutation columns a count from the settings does
not see: the **work cells** are 2^logrows × (columns + ``WORK_COLUMNS``).
Memory and time are taken as affine in them, with constants fitted by
``benches/bench_estimate.py`` (16 zoo and digits circuits, logrows 7–13,
measured setup + prove wall time and peak RSS on this 2-core machine; JSON in
``benches/results/bench_estimate.json``):

- time: setup + prove ≈ ``S0 + S_PER_MCELL * work_cells / 1e6 / cores**0.7``
  (median error 7% over the fitted circuits; the previous constants, fitted by
  hand, were off by 99%);
- memory: peak RSS of setup + prove ≈ ``BASE_GB + GB_PER_MCELL * work_cells / 1e6``,
  with the base raised until no measured circuit is above it (a bound to
  refuse with: better high than low).

The numbers are estimates to refuse early with a clear message ("needs ~X GB
/ ~Y s at logrows N; try …") instead of running into a timeout or the OOM
killer, not predictions to the second.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

WORK_COLUMNS = 22
"""Column-equivalents of per-row work the settings' column count misses (fitted)."""
BASE_GB = 0.063
"""Fixed memory of an ezkl setup + prove process (fitted, raised to bound every measured circuit)."""
GB_PER_MCELL = 0.402
"""Peak RSS per million work cells (fitted)."""
S0 = 0.19
"""Fixed seconds of setup + prove (fitted)."""
S_PER_MCELL = 20.8
"""Setup + prove seconds per million work cells on one core of this machine (fitted)."""


@dataclass(frozen=True)
class Estimate:
    """What a circuit is expected to need."""

    logrows: int
    """k: the circuit has 2^k rows."""
    rows_used: int
    """Rows ezkl's layout actually fills."""
    columns: int
    """Columns committed to (advice, lookup and permutation), as counted here."""
    cells: int
    """2^logrows × columns."""
    memory_gb: float
    """Expected peak memory of setup/prove."""
    seconds: float
    """Expected setup + prove wall time on this machine."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def refusal(self, budget: str) -> str:
        """The one-line refusal: need, size and what to try."""
        return (f"needs ~{self.memory_gb:.1f} GB / ~{self.seconds:.0f} s at logrows {self.logrows} "
                f"({self.rows_used:,} rows × {self.columns} columns), over {budget}; try a smaller input or batch, "
                "--target resources, fewer --scales, --param-visibility fixed, or more --max-memory")


def columns(settings: dict[str, Any]) -> int:
    """Columns the circuit commits to, counted from ezkl's settings."""
    ra = settings.get("run_args", {})
    k = int(ra.get("logrows", 17))
    assignments = int(settings.get("total_assignments", 0) or 0)
    advice = max(int(ra.get("num_inner_cols", 2)) + 1, math.ceil(assignments / (1 << k)))
    lookups = len(settings.get("required_lookups", []) or [])
    ranges = len(settings.get("required_range_checks", []) or [])
    dynamic = int(settings.get("num_dynamic_lookups", 0) or 0)
    shuffles = int(settings.get("num_shuffles", 0) or 0)
    einsum = 0
    ep = settings.get("einsum_params") or {}
    if isinstance(ep, dict):
        einsum = int(ep.get("total_einsum_col_size", 0) or 0) // max(1, 1 << k)
    return advice + 4 * lookups + 3 * ranges + 5 * dynamic + 3 * shuffles + einsum + 6


def estimate(settings: dict[str, Any], cores: int | None = None) -> Estimate:
    """Estimate setup/prove memory and time for a circuit with these ezkl settings."""
    k = int(settings["run_args"]["logrows"])
    cols = columns(settings)
    cells = (1 << k) * cols
    cores = cores or max(1, min(os.cpu_count() or 1, 2))
    work = (1 << k) * (cols + WORK_COLUMNS) / 1e6
    return Estimate(
        logrows=k, rows_used=int(settings.get("num_rows", 0) or 0), columns=cols, cells=cells,
        memory_gb=BASE_GB + GB_PER_MCELL * work, seconds=S0 + S_PER_MCELL * work / cores ** 0.7,
    )


def machine_memory_gb() -> float:
    """Memory this machine has available now (what ``--max-memory`` defaults to)."""
    import psutil

    return float(psutil.virtual_memory().available) / 1e9
