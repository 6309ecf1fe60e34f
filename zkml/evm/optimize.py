"""Gas optimisation of ezkl's per-circuit Halo2 verifier (a source-to-source rewrite).

The verifier's final multi-scalar multiplication folds the verifying key's
commitments (fixed columns, then permutation columns) into an accumulator by
Horner's rule, one ``ecMul`` (6,000 gas) and one ``ecAdd`` per point::

    acc = acc * zeta + P_i        for P_i in the VK points, in order

ezkl allocates fixed columns it never fills (unused gate selectors, tables
of range checks the model does not need); their commitment is the point at
infinity, encoded ``(0, 0)`` in the VK. Adding it changes nothing, so a run
of ``z`` such points followed by a real one ``P`` is the same as one step
``acc = acc * zeta^(z+1) + P``: ``z`` fewer ``ecMul`` calls. The rewrite
unrolls the loop with exactly that folding; the result is the same group
element for every proof, so the verifier accepts and rejects exactly the
same proofs (the tests check both on chain).

Only the loop shape ezkl 23's template emits is touched; anything else is
left as it was and :func:`optimize_verifier` reports that nothing applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from zkml.errors import ToolError

# The VK is written into memory as ``mstore(0xADDR, 0xVALUE) // name`` lines.
_VK_WORD = re.compile(r"mstore\((0x[0-9a-fA-F]+),\s*(0x[0-9a-fA-F]+)\)\s*//\s*(\S+)")

# ezkl's Horner loop over VK points held in memory (descending addresses).
_VK_LOOP = re.compile(
    r"(?P<indent>[ \t]*)for\s*\{\s*let mptr := (?P<start>0x[0-9a-fA-F]+)\s*let mptr_end := (?P<end>0x[0-9a-fA-F]+)\s*\}\s*"
    r"lt\(mptr_end, mptr\)\s*\{\s*mptr := sub\(mptr, 0x40\)\s*\}\s*"
    r"\{\s*success := ec_mul_(?P<kind>acc|tmp)\(success, mload\(ZETA_MPTR\)\)\s*"
    r"success := ec_add_(?P=kind)\(success, mload\(mptr\), mload\(add\(mptr, 0x20\)\)\)\s*\}"
)

#: Name of the one rewrite this module performs.
ZERO_POINT_FOLDING: Final[str] = "fold-zero-vk-points"


@dataclass(frozen=True)
class Optimized:
    """A rewritten verifier source and what was done to it."""

    source: str
    applied: tuple[str, ...]
    """Names of the rewrites that changed the source (empty: unchanged)."""
    ec_muls_saved: int
    """``ecMul`` precompile calls removed from every verification."""


def _vk_words(source: str) -> dict[int, tuple[int, str]]:
    return {int(a, 16): (int(v, 16), name) for a, v, name in _VK_WORD.findall(source)}


def _zeta_power(p: int) -> str:
    """A Yul expression for ``zeta^p`` (p >= 1) from the local ``zeta``."""
    expr = "zeta"
    for _ in range(p - 1):
        expr = f"mulmod({expr}, zeta, R)"
    return expr


def _unrolled(m: re.Match[str], words: dict[int, tuple[int, str]]) -> tuple[str, int] | None:
    start, end, kind, ind = int(m["start"], 16), int(m["end"], 16), m["kind"], m["indent"]
    points = list(range(start, end, -0x40))
    if any(a not in words or a + 0x20 not in words for a in points):
        return None  # not the VK region: leave it alone
    zero = [words[a][0] == 0 and words[a + 0x20][0] == 0 for a in points]
    if not any(zero):
        return None
    inner = ind + "    "
    lines = [f"{ind}{{", f"{inner}let zeta := mload(ZETA_MPTR)"]
    pending = 0
    saved = 0
    for a, is_zero in zip(points, zero, strict=True):
        if is_zero:
            pending += 1
            lines.append(f"{inner}// {words[a][1].removesuffix('.x')} is the point at infinity: folded into the next zeta power")
            continue
        saved += pending
        lines.append(f"{inner}success := ec_mul_{kind}(success, {_zeta_power(pending + 1)})")
        lines.append(f"{inner}success := ec_add_{kind}(success, mload({a:#06x}), mload({a + 0x20:#06x}))")
        pending = 0
    if pending:
        saved += pending - 1
        lines.append(f"{inner}success := ec_mul_{kind}(success, {_zeta_power(pending)})")
    lines.append(f"{ind}}}")
    return "\n".join(lines), saved


def optimize_verifier(source: str) -> Optimized:
    """Apply the zero-point folding to an ezkl per-circuit verifier source."""
    words = _vk_words(source)
    out: list[str] = []
    pos = 0
    saved = 0
    for m in _VK_LOOP.finditer(source):
        rewritten = _unrolled(m, words)
        if rewritten is None:
            continue
        out += [source[pos : m.start()], rewritten[0]]
        saved += rewritten[1]
        pos = m.end()
    if not saved:
        return Optimized(source, (), 0)
    out.append(source[pos:])
    return Optimized("".join(out), (ZERO_POINT_FOLDING,), saved)


# Deferred pairing (batch verification)

#: Contract name of the deferred-pairing variant.
DEFERRED_CONTRACT: Final[str] = "Halo2VerifierDeferred"

_SIGNATURE = re.compile(
    r"contract Halo2Verifier \{(?P<body>.*?)function verifyProof\(\s*bytes calldata proof,\s*uint256\[\] calldata instances\s*\)"
    r"\s*public returns \(bool\)",
    re.S,
)
_PAIRING = re.compile(
    r"// Perform pairing\s*success := ec_pairing\(\s*success,\s*mload\(PAIRING_LHS_X_MPTR\),\s*mload\(PAIRING_LHS_Y_MPTR\),"
    r"\s*mload\(PAIRING_RHS_X_MPTR\),\s*mload\(PAIRING_RHS_Y_MPTR\)\s*\)"
)
_RETURN = re.compile(r"// Return 1 as result if everything succeeds\s*mstore\(0x00, 1\)\s*return\(0x00, 0x20\)")

_DEFERRED_RETURN = """// Return the pairing inputs instead of checking them: the caller (Halo2BatchVerifier)
            // checks e(lhs, g2) * e(rhs, -s*g2) == 1 for a random combination of many proofs.
            mstore(0x00, mload(PAIRING_LHS_X_MPTR))
            mstore(0x20, mload(PAIRING_LHS_Y_MPTR))
            mstore(0x40, mload(PAIRING_RHS_X_MPTR))
            mstore(0x60, mload(PAIRING_RHS_Y_MPTR))
            mstore(0x80, mload(G2_X_1_MPTR))
            mstore(0xa0, mload(G2_X_2_MPTR))
            mstore(0xc0, mload(G2_Y_1_MPTR))
            mstore(0xe0, mload(G2_Y_2_MPTR))
            mstore(0x0100, mload(NEG_S_G2_X_1_MPTR))
            mstore(0x0120, mload(NEG_S_G2_X_2_MPTR))
            mstore(0x0140, mload(NEG_S_G2_Y_1_MPTR))
            mstore(0x0160, mload(NEG_S_G2_Y_2_MPTR))
            return(0x00, 0x0180)"""


class TemplateMismatch(ToolError):
    """ezkl's verifier does not have the shape a rewrite needs (the template changed): one line, exit 2."""


def defer_pairing(source: str) -> str:
    """The ``Halo2VerifierDeferred`` variant of an ezkl per-circuit verifier.

    Everything up to the final pairing runs unchanged (transcript, every
    check, the multi-scalar multiplication) and reverts on any failure; instead
    of the pairing ``e(lhs, g2)·e(rhs, -s·g2) == 1`` it returns the twelve words
    ``lhs, rhs, g2, -s·g2`` from ``deferredPairing(proof, instances)``. Alone it
    is *not* a verifier: ``verifiers/Halo2BatchVerifier.sol`` checks many proofs'
    returns with one pairing over a random linear combination (the cost of the
    pairing, 113k gas, and of the transaction is then shared).

    Raises:
        TemplateMismatch: the source is not ezkl 23's per-circuit verifier.
    """
    if not (_SIGNATURE.search(source) and len(_PAIRING.findall(source)) == 1 and len(_RETURN.findall(source)) == 1):
        raise TemplateMismatch("the verifier does not match ezkl 23's per-circuit template: cannot defer its pairing")
    out = _SIGNATURE.sub(
        lambda m: f"contract {DEFERRED_CONTRACT} {{{m['body']}function deferredPairing(\n        bytes calldata proof,\n"
                  "        uint256[] calldata instances\n    ) public returns (uint256[12] memory)",
        source, count=1)
    out = _PAIRING.sub("// Pairing deferred to the caller (see the return below)", out, count=1)
    return _RETURN.sub(_DEFERRED_RETURN, out, count=1)
