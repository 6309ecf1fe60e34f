"""Index sampling from a VRF output: the rule spelled out, rejection, distinctness, bad input."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from eth_utils import keccak

from zkml.sampling import SamplingError, candidate, sample_indices

BETA = bytes.fromhex("a3ad7b0ef73d8fc6655053ea22f9bede8c743f08bbed3d38821f0e16474b505e")  # RFC 9381 example 10
TWO_256 = 2**256


def _beta(seed: int) -> bytes:
    return hashlib.sha256(seed.to_bytes(8, "big")).digest()


def test_candidate_is_keccak_of_beta_and_uint256_counter() -> None:
    # Checked with a second keccak implementation (eth_utils) than the module's (pycryptodome).
    for i in (0, 1, 255, 256, 2**64):
        assert candidate(BETA, i) == int.from_bytes(keccak(BETA + i.to_bytes(32, "big")), "big")


def test_rule_spelled_out() -> None:
    n, k = 10, 4
    expected: list[int] = []
    i = 0
    while len(expected) < k:
        value = int.from_bytes(keccak(BETA + i.to_bytes(32, "big")), "big")
        i += 1
        if value >= (TWO_256 // n) * n:
            continue
        if value % n not in expected:
            expected.append(value % n)
    assert sample_indices(BETA, n, k) == expected


def _first_seed_where(pred) -> bytes:  # type: ignore[no-untyped-def]
    for seed in range(1000):
        if pred(_beta(seed)):
            return _beta(seed)
    raise AssertionError("no seed found")


def test_rejected_candidate_is_skipped() -> None:
    # n = 2^255 + 1: the limit is n itself, so about half of all candidates are rejected.
    n = 2**255 + 1
    beta = _first_seed_where(lambda b: candidate(b, 0) >= n)
    first_ok = next(i for i in range(1, 100) if candidate(beta, i) < n)
    got = sample_indices(beta, n, 1)
    assert got == [candidate(beta, first_ok)]
    assert got != [candidate(beta, 0) % n]  # what a biased "mod n" would have returned


def test_accepted_candidate_just_below_limit_is_kept() -> None:
    n = 2**255 + 1
    beta = _first_seed_where(lambda b: candidate(b, 0) < n)
    assert sample_indices(beta, n, 1) == [candidate(beta, 0)]


def test_duplicate_is_skipped() -> None:
    # With n = 2 the second draw repeats the first about half the time.
    beta = _first_seed_where(lambda b: candidate(b, 0) % 2 == candidate(b, 1) % 2)
    first = candidate(beta, 0) % 2
    assert sample_indices(beta, 2, 2) == [first, 1 - first]


@pytest.mark.parametrize(
    ("n", "k"),
    [(1, 1), (1, 0), (2, 2), (7, 3), (10, 10), (100, 1), (1000, 50), (2**32, 20), (2**255, 5), (2**255 + 1, 5),
     (2**256 - 1, 5)],
)
def test_sample_is_k_distinct_indices_in_range(n: int, k: int) -> None:
    got = sample_indices(BETA, n, k)
    assert len(got) == k == len(set(got))
    assert all(0 <= i < n for i in got)
    assert sample_indices(BETA, n, k) == got  # deterministic


@pytest.mark.parametrize("n", [5, 64, 1000])
def test_full_sample_is_a_permutation(n: int) -> None:
    assert sorted(sample_indices(BETA, n, n)) == list(range(n))


def test_smaller_sample_is_a_prefix() -> None:
    full = sample_indices(BETA, 500, 40)
    for k in (0, 1, 10, 39):
        assert sample_indices(BETA, 500, k) == full[:k]


def test_different_beta_gives_different_sample() -> None:
    assert sample_indices(_beta(1), 10**6, 8) != sample_indices(_beta(2), 10**6, 8)


def test_roughly_uniform() -> None:
    # 6000 draws over 6 values: each count is Binomial(6000, 1/6), sd ~ 29; allow 6 sd.
    counts = Counter(sample_indices(_beta(seed), 6, 1)[0] for seed in range(6000))
    assert set(counts) == set(range(6))
    assert all(abs(c - 1000) < 175 for c in counts.values()), counts


@pytest.mark.parametrize(
    ("beta", "n", "k", "match"),
    [
        pytest.param(BETA, 3, 4, "cannot sample", id="k-above-n"),
        pytest.param(BETA, 0, 0, "at least 1", id="n-zero"),
        pytest.param(BETA, -5, 1, "at least 1", id="n-negative"),
        pytest.param(BETA, 5, -1, "non-negative", id="k-negative"),
        pytest.param(BETA, TWO_256, 1, "uint256", id="n-too-big"),
        pytest.param(BETA[:31], 5, 1, "32 bytes", id="beta-31"),
        pytest.param(BETA + b"\x00", 5, 1, "32 bytes", id="beta-33"),
        pytest.param(b"", 5, 1, "32 bytes", id="beta-empty"),
    ],
)
def test_bad_parameters_raise(beta: bytes, n: int, k: int, match: str) -> None:
    with pytest.raises(SamplingError, match=match):
        sample_indices(beta, n, k)
