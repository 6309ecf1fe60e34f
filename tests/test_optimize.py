"""The verifier gas rewrite computes the same multi-scalar multiplication.

Points are modelled as integers mod a prime (ecMul = multiply, ecAdd = add),
which is exact for a linear combination; the on-chain differential test in
``test_evm.py`` checks the real contract.
"""

from __future__ import annotations

import random
import re

import pytest

from zkml.evm.optimize import ZERO_POINT_FOLDING, optimize_verifier

R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
LOOP = """                    for
                        {
                            let mptr := %s
                            let mptr_end := %s
                        }
                        lt(mptr_end, mptr)
                        { mptr := sub(mptr, 0x40) }
                    {
                        success := ec_mul_acc(success, mload(ZETA_MPTR))
                        success := ec_add_acc(success, mload(mptr), mload(add(mptr, 0x20)))
                    }
"""


def source(points: list[tuple[int, int]], base: int = 0x0840) -> str:
    vk = "\n".join(
        f"                mstore({base + 0x40 * i:#06x}, {x:#066x}) // fixed_comms[{i}].x\n"
        f"                mstore({base + 0x40 * i + 0x20:#06x}, {y:#066x}) // fixed_comms[{i}].y"
        for i, (x, y) in enumerate(points)
    )
    start, end = base + 0x40 * (len(points) - 1), base - 0x40
    return f"{vk}\n                let acc := 1\n{LOOP % (f'{start:#06x}', f'{end:#06x}')}                done()\n"


def run(src: str, points: list[tuple[int, int]], zeta: int, acc: int, base: int = 0x0840) -> int:
    """Interpret the ec_mul_acc / ec_add_acc statements of ``src`` over integers mod R."""
    mem = {base + 0x40 * i: x for i, (x, _) in enumerate(points)}

    def ev(e: str) -> int:
        e = e.strip()
        if e == "mload(ZETA_MPTR)" or e == "zeta":
            return zeta
        if m := re.fullmatch(r"mulmod\((.*), zeta, R\)", e):
            return ev(m[1]) * zeta % R
        if m := re.fullmatch(r"mload\((0x[0-9a-f]+)\)", e):
            return mem[int(m[1], 16)]
        raise AssertionError(f"unexpected expression {e}")

    body = src.split("let acc := 1", 1)[1]
    if "for" in body.split("done()")[0]:  # the original loop
        start = int(re.search(r"let mptr := (0x[0-9a-f]+)", body)[1], 16)  # type: ignore[index]
        end = int(re.search(r"let mptr_end := (0x[0-9a-f]+)", body)[1], 16)  # type: ignore[index]
        for a in range(start, end, -0x40):
            acc = (acc * zeta + mem[a]) % R
        return acc
    for line in body.splitlines():
        if m := re.search(r"ec_mul_acc\(success, (.*)\)$", line.strip()):
            acc = acc * ev(m[1]) % R
        elif m := re.search(r"ec_add_acc\(success, mload\((0x[0-9a-f]+)\), mload\((0x[0-9a-f]+)\)\)$", line.strip()):
            acc = (acc + mem[int(m[1], 16)]) % R
    return acc


@pytest.mark.parametrize("seed", range(12))
def test_folding_computes_the_same_combination(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 14)
    points = [(0, 0) if rng.random() < 0.4 else (rng.randrange(1, R), rng.randrange(1, R)) for _ in range(n)]
    src = source(points)
    out = optimize_verifier(src)
    zeta, acc = rng.randrange(2, R), rng.randrange(1, R)
    assert run(out.source, points, zeta, acc) == run(src, points, zeta, acc)
    zeros = sum(1 for p in points if p == (0, 0))
    # The loop runs from the highest address down: zeros at the lowest addresses come last and
    # still need one ecMul for their zeta power; every other zero point costs nothing.
    assert out.ec_muls_saved == zeros - (1 if points[0] == (0, 0) else 0)
    if out.ec_muls_saved:
        assert out.applied == (ZERO_POINT_FOLDING,)
        assert out.source.count("ec_mul_acc") == n - out.ec_muls_saved
    else:
        assert out.source == src and out.applied == ()


def test_all_zero_points_leave_one_multiplication() -> None:
    points = [(0, 0)] * 3
    out = optimize_verifier(source(points))
    assert out.ec_muls_saved == 2
    assert run(out.source, points, 5, 7) == 7 * 5**3 % R


def test_no_zero_point_leaves_the_source_unchanged() -> None:
    src = source([(1, 2), (3, 4)])
    out = optimize_verifier(src)
    assert out.source == src and out.applied == () and out.ec_muls_saved == 0


def test_loop_outside_the_vk_is_left_alone() -> None:
    src = source([(1, 2), (0, 0), (3, 4)])
    # a loop over addresses that are not VK words (e.g. proof points copied to memory)
    other = LOOP % ("0x2000", "0x1f00")
    out = optimize_verifier(src + other)
    assert out.ec_muls_saved == 1
    assert out.source.endswith(other)


def test_template_drift_is_a_no_op() -> None:
    src = source([(1, 2), (0, 0), (3, 4)]).replace("ec_mul_acc(success, mload(ZETA_MPTR))", "ec_mul_acc(success, mload(NU_MPTR))")
    assert optimize_verifier(src).source == src
