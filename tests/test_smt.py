"""Solidity's SMTChecker through the pinned solc-js (zkml.evm.registry.smt).

The checker is real (CHC / BMC in soljson's Z3). First a contract whose verdicts are known — one
assert that always holds across transactions, one that a two-call sequence breaks — so the verdict
parser is shown to tell them apart; then the registry harness, bounded by wall clock: whatever the
verdict (proved, unproved or timeout on a slow machine), it must never be "violated".
"""

from __future__ import annotations

import pytest

from zkml.evm.registry import smt

KNOWN = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Known {
    uint256 x;
    bool locked;
    function inc() external { if (x < 10) x++; }
    function lock() external { locked = true; }
    function bounded() external view { assert(x <= 10); }
    function neverLocked() external view { assert(!locked); }
}
"""


@pytest.fixture(scope="module")
def known() -> smt.RunResult:
    return smt.run_model_checker({"Known.sol": KNOWN}, "Known.sol", "Known", budget_s=300)


@pytest.mark.parametrize(("function", "verdict"), [("bounded", "proved"), ("neverLocked", "violated")])
def test_chc_tells_proved_from_violated(known: smt.RunResult, function: str, verdict: str) -> None:
    assert known.status == "done"
    mine = [f for f in known.findings if f.target == "assert" and f.function == function]
    assert [f.verdict for f in mine] == [verdict], known.findings


def test_budget_is_wall_clock() -> None:
    r = smt.check("invActiveExists", budget_s=3)
    assert r.status == "timeout" and r.verdict() == "timeout" and 3 <= r.seconds < 30


def test_registry_harness_is_never_violated() -> None:
    r = smt.check("invPausedNeverActive", budget_s=60)
    assert r.verdict() in ("proved", "unproved", "timeout")
    assert not any(f.verdict == "violated" for f in r.findings)


def test_unknown_invariant_refused() -> None:
    with pytest.raises(smt.ToolError, match="unknown invariant"):
        smt.check("invNoSuchThing", budget_s=5)
