"""Solidity's SMTChecker (CHC engine) over the registry, through the pinned solc-js standard JSON.

What runs: ``verifiers/smt/RegistryInvariants.sol`` (ModelRegistry unchanged plus one ``view`` per
invariant whose ``assert`` must hold after any sequence of transactions, see
``verifiers/INVARIANTS.md``) is compiled with ``settings.modelChecker`` = CHC on the targets asked
for. The checker answers per target: **proved** ("... check is safe!"), **violated** (a
counterexample), **unproved** (the solver gave up: "might happen"), or reports a construct it
**cannot model** (inline assembly, some external calls ...). A run that does not finish within the
wall-clock budget is **timeout** as a whole.

Why no per-query ``modelChecker.timeout``: in solc-js (emscripten, no threads) Z3's timeout needs a
thread and the compile fails ("thread constructor failed"), so the bound here is the wall clock of the
node process, run per invariant so one hard query does not hide the others.

Run it: ``python -m zkml.evm.registry.smt [--budget SECONDS] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from zkml.errors import ToolError
from zkml.evm.solc import _NODE_SCRIPT, find_node, find_node_modules
from zkml.evm.registry.client import registry_source

#: The harness contract and its unit name as solc sees it.
HARNESS_UNIT: Final[str] = "smt/RegistryInvariants.sol"
HARNESS_CONTRACT: Final[str] = "RegistryInvariants"
#: The invariant views of the harness (S1..S6 of INVARIANTS.md).
INVARIANTS: Final[tuple[str, ...]] = (
    "invActiveExists", "invStatusParallel", "invPendingIsLatest", "invActiveAccepted", "invAcceptedTop",
    "invPausedNeverActive",
)
#: Wall-clock seconds per invariant by default.
DEFAULT_BUDGET_S: Final[float] = 60.0


@dataclass(frozen=True)
class Finding:
    """One message of the model checker."""

    verdict: str
    """``proved``, ``violated``, ``unproved`` or ``unsupported``."""
    target: str
    """What was checked: ``assert``, ``underflow``, ... (or the unsupported construct)."""
    function: str
    """The function the source location falls in (best effort; empty when unknown)."""
    line: int
    """1-based line in ``file`` (0: no location)."""
    file: str
    """Source unit of the location."""
    message: str
    """The checker's first line."""


@dataclass(frozen=True)
class RunResult:
    """The checker run for one invariant view (or the whole contract)."""

    invariant: str
    """Harness function checked (``*``: all asserts of the harness)."""
    status: str
    """``done`` or ``timeout`` (the run did not finish within ``budget_s``)."""
    seconds: float
    """Wall-clock seconds taken."""
    budget_s: float
    """Wall-clock budget."""
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    """Every model-checker message of the run."""

    def verdict(self) -> str:
        """``proved`` / ``violated`` / ``unproved`` for the invariant's asserts, or ``timeout``."""
        if self.status == "timeout":
            return "timeout"
        mine = [f for f in self.findings if f.target == "assert" and f.function == self.invariant]
        if any(f.verdict == "violated" for f in mine):
            return "violated"
        if mine and all(f.verdict == "proved" for f in mine):
            return "proved"
        return "unproved"


_TARGETS = {
    "Assertion violation": "assert", "Underflow": "underflow", "Overflow": "overflow",
    "Division by zero": "divByZero", "Empty array \"pop\"": "popEmptyArray", "Out of bounds": "outOfBounds",
    "Insufficient funds": "balance",
}


def _function_at(source: str, offset: int) -> str:
    """Name of the last ``function NAME`` declared before ``offset`` (good enough for a report)."""
    names = re.findall(r"function\s+(\w+)", source[: max(offset, 0)])
    return names[-1] if names else ""


def _classify(err: dict[str, Any], sources: dict[str, str]) -> Finding | None:
    msg = str(err.get("message", ""))
    first = msg.splitlines()[0] if msg else ""
    if not (first.startswith(("CHC:", "BMC:")) or "SMTChecker" in first or err.get("errorCode") in {"7737", "5724"}):
        return None
    loc = err.get("sourceLocation") or {}
    unit = str(loc.get("file", ""))
    start = int(loc.get("start", -1))
    src = sources.get(unit, "")
    line = src.count("\n", 0, start) + 1 if start >= 0 and src else 0
    target = next((t for k, t in _TARGETS.items() if k in first), "other")
    if "is safe" in first:
        verdict = "proved"
    elif "might happen" in first or "might not" in first:
        verdict = "unproved"
    elif "happens here" in first:
        verdict = "violated"
    else:
        verdict, target = "unsupported", first.removeprefix("CHC: ").removeprefix("BMC: ")
    return Finding(verdict, target, _function_at(src, start) if start >= 0 else "", line, unit, first)


def _sources(verifiers: Path) -> dict[str, str]:
    """The harness and the registry sources it imports from verifiers/ (OpenZeppelin comes by import)."""
    return {u: (verifiers / u).read_text() for u in (HARNESS_UNIT, "ModelRegistry.sol", "Halo2BatchVerifier.sol")}


def run_model_checker(sources: dict[str, str], unit: str, contract: str, *, budget_s: float,
                      targets: Sequence[str] = ("assert",), engine: str = "chc", label: str = "*",
                      import_roots: Sequence[Path] = ()) -> RunResult:
    """Run solc-js's model checker on ``contract`` of ``unit`` (``sources``: unit -> text), bounded by
    ``budget_s`` seconds of wall clock.

    Raises:
        ToolError: node / solc-js missing, or solc-js failed (compile error) within the budget.
    """
    nm = find_node_modules()
    std_input = {
        "language": "Solidity",
        "sources": {u: {"content": c} for u, c in sources.items()},
        "settings": {
            "evmVersion": "cancun",
            "modelChecker": {
                "engine": engine,
                "contracts": {unit: [contract]},
                "targets": list(targets),
                "showProvedSafe": True, "showUnproved": True, "showUnsupported": True,
            },
            "outputSelection": {"*": {"*": []}},
        },
    }
    request = {"input": std_input, "roots": [*(str(r) for r in import_roots), str(nm)], "nodeModules": str(nm)}
    t0 = time.monotonic()
    proc = subprocess.Popen([find_node(), "-e", _NODE_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "NODE_OPTIONS": "--max-old-space-size=4096"})
    try:
        stdout, stderr = proc.communicate(json.dumps(request).encode(), timeout=budget_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return RunResult(label, "timeout", round(time.monotonic() - t0, 1), budget_s)
    seconds = round(time.monotonic() - t0, 1)
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()
        raise ToolError(f"solc-js failed: {tail[-1] if tail else proc.returncode}")
    out = json.loads(stdout)["output"]
    errors = out.get("errors", [])
    fatal = [e for e in errors if e.get("severity") == "error"]
    if fatal:
        raise ToolError(f"the SMTChecker run failed: {fatal[0].get('message', '').splitlines()[0]}")
    findings = tuple(f for e in errors if (f := _classify(e, sources)) is not None)
    return RunResult(label, "done", seconds, budget_s, findings)


def check(invariant: str = "*", *, budget_s: float = DEFAULT_BUDGET_S,
          targets: Sequence[str] = ("assert",), engine: str = "chc") -> RunResult:
    """Run the model checker over the registry harness; ``invariant`` names one harness view (the
    other views' asserts are neutralised) or ``*`` for all.

    Raises:
        ToolError: as :func:`run_model_checker`; an unknown invariant.
    """
    verifiers = registry_source().parent
    sources = _sources(verifiers)
    content = sources[HARNESS_UNIT]
    if invariant != "*":
        if invariant not in INVARIANTS:
            raise ToolError(f"unknown invariant {invariant!r}: one of {', '.join(INVARIANTS)}")
        content = _only(content, invariant)
    sources[HARNESS_UNIT] = content
    return run_model_checker(sources, HARNESS_UNIT, HARNESS_CONTRACT, budget_s=budget_s, targets=targets,
                             engine=engine, label=invariant, import_roots=[verifiers])


def _only(content: str, keep: str) -> str:
    """The harness with the asserts of every invariant view but ``keep`` neutralised."""
    parts = re.split(r"(?=    /// S\d)", content)
    out = []
    for part in parts:
        m = re.search(r"function\s+(\w+)", part)
        if m and m.group(1) in INVARIANTS and m.group(1) != keep:
            part = part.replace("assert(", "require(true || ")
        out.append(part)
    return "".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Check every invariant, print a table (or JSON); exit 1 when one is violated."""
    ap = argparse.ArgumentParser(prog="python -m zkml.evm.registry.smt", description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="wall-clock seconds per invariant")
    ap.add_argument("--only", choices=INVARIANTS, action="append", help="check only these invariants")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = []
    try:
        for inv in args.only or INVARIANTS:
            r = check(inv, budget_s=args.budget)
            results.append(r)
            if not args.json:
                print(f"{inv:24s} {r.verdict():9s} {r.seconds:6.1f}s", flush=True)
        base = check("*", budget_s=args.budget, targets=("underflow", "overflow", "popEmptyArray", "outOfBounds"))
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unsupported = sorted({f.target for r in [*results, base] for f in r.findings if f.verdict == "unsupported"})
    arith = {v: sum(1 for f in base.findings if f.verdict == v) for v in ("proved", "unproved", "violated")}
    if args.json:
        print(json.dumps({"invariants": [{**asdict(r), "verdict": r.verdict()} for r in results],
                          "builtin_targets": {"status": base.status, "seconds": base.seconds, **arith},
                          "unsupported": unsupported}, indent=1))
    else:
        print(f"{'builtin targets':24s} {base.status:9s} {base.seconds:6.1f}s  " +
              ", ".join(f"{k} {v}" for k, v in arith.items()))
        for u in unsupported:
            print(f"cannot model: {u}")
    return 1 if any(r.verdict() == "violated" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
