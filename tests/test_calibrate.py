"""The calibration search itself: one by one upwards vs bisection for big circuits.

Real ezkl calibrations of a tiny model; the bisection threshold (``EXPENSIVE_CELLS``) is lowered so
the tiny circuit counts as "big" and the search under test is the one big models get.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support import export_tiny_mlp
from zkml import calibrate as cal
from zkml.calibrate import CircuitOptions
from zkml.onnx_check import load_model

X = np.random.default_rng(3).uniform(-1, 1, size=(12, 4)).astype(np.float32)
SCALES = tuple(range(2, 14))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_mlp(tmp_path_factory.mktemp("cal") / "tiny.onnx", (4, 6, 3), seed=11)


def _run(tiny: Path, tmp: Path, **kw: object) -> cal.Calibration:
    opts = CircuitOptions(scales=SCALES, min_agreement=1.0, **kw).validate()  # type: ignore[arg-type]
    return cal.calibrate(tiny, load_model(tiny), X, opts, tmp)


@pytest.fixture(scope="module")
def linear(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> cal.Calibration:
    return _run(tiny, tmp_path_factory.mktemp("lin"), max_error=0.004)


def test_linear_search_picks_the_smallest_good_scale(linear: cal.Calibration) -> None:
    tried = linear.tried
    assert [t["scale"] for t in tried] == list(SCALES[: len(tried)])  # upwards, one by one
    assert tried[-1]["verdict"] == "chosen" and tried[-1]["scale"] == linear.scale
    assert all(t["verdict"] == "below accuracy bar" for t in tried[:-1])
    assert linear.report.max_abs_error <= 0.004
    assert len(tried) >= 4, "the bar should need a few candidates, or this test shows nothing"


def test_bisection_finds_the_same_scale_with_fewer_candidates(
        linear: cal.Calibration, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cal, "EXPENSIVE_CELLS", 0)  # the tiny circuit counts as big
    b = _run(tiny, tmp_path, max_error=0.004)
    assert b.scale == linear.scale
    assert len(b.tried) < len(linear.tried)
    assert b.tried[0]["scale"] == SCALES[0] and "search" not in b.tried[0]
    assert all(t["search"] == "bisection" for t in b.tried[1:])
    assert [t["scale"] for t in b.tried if t["verdict"] == "chosen"] == [b.scale]
    # every other candidate is below the bar (smaller) or good but superseded (larger)
    for t in b.tried:
        if t["scale"] < b.scale:
            assert t["verdict"] == "below accuracy bar", t
        elif t["scale"] > b.scale:
            assert t["verdict"].startswith("good enough, superseded"), t


def test_estimate_is_affine_in_work_cells_and_bounds_the_digits_mlp(mlp_circuit) -> None:
    """The fitted estimate (benches/bench_estimate.py): more rows or columns cost more; the digits MLP's
    (logrows 12, measured 2.0-2.1 s setup+prove and ~0.07 GB peak there) lands near those figures."""
    from zkml import estimate as E

    base = {"run_args": {"logrows": 12, "num_inner_cols": 2}, "total_assignments": 0}
    small, big = E.estimate(base, cores=2), E.estimate({**base, "run_args": {"logrows": 13, "num_inner_cols": 2}}, cores=2)
    wider = E.estimate({**base, "required_lookups": ["relu"] * 3}, cores=2)
    assert small.seconds < big.seconds and small.memory_gb < big.memory_gb
    assert small.seconds < wider.seconds and small.memory_gb < wider.memory_gb
    assert E.BASE_GB < small.memory_gb
    est = E.estimate(mlp_circuit.settings, cores=2)
    assert 0.07 <= est.memory_gb <= 0.5
    assert 1.0 <= est.seconds <= 5.0
    assert "needs ~" in est.refusal("--max-memory 0.01 GB") and f"logrows {est.logrows}" in est.refusal("x")
