"""Unbiased sampling of distinct indices from a VRF output.

An audit re-proves ``k`` of ``n`` inferences chosen by a VRF output ``beta``
(:mod:`zkml.vrf`), so neither the prover nor the auditor picks them. The rule
is simple enough to run identically in Solidity
(``VRFSampling.sampleIndices`` in ``verifiers/VRFVerifier.sol``):

1. ``candidate_i = keccak256(beta || uint256_be(i))`` for ``i = 0, 1, 2, ...``
   (exactly ``keccak256(abi.encodePacked(bytes32 beta, uint256 i))``);
2. reject ``candidate_i`` if it is ``>= (2**256 // n) * n``, so every index
   is equally likely (no modulo bias); otherwise ``index = candidate_i mod n``;
3. skip an index already drawn; stop once ``k`` distinct indices are drawn.

Indices are returned in the order drawn, so the first ``j`` indices of a
``k``-sample are the ``j``-sample of the same ``beta``.
"""

from __future__ import annotations

from typing import Final

from Crypto.Hash import keccak

from zkml.errors import ZkmlError

__all__ = ["BETA_LEN", "SamplingError", "candidate", "sample_indices"]

BETA_LEN: Final = 32
"""Length of ``beta`` in bytes (a ``bytes32`` on chain; the ECVRF SHA-256 output)."""

_TWO_256: Final = 1 << 256


class SamplingError(ZkmlError):
    """Sampling parameters are impossible: ``n < 1``, ``k < 0``, ``k > n``, or ``beta`` is not 32 bytes."""


def candidate(beta: bytes, i: int) -> int:
    """``int(keccak256(beta || uint256_be(i)))``: the ``i``-th raw draw."""
    h = keccak.new(digest_bits=256)
    h.update(bytes(beta) + i.to_bytes(32, "big"))
    return int.from_bytes(h.digest(), "big")


def sample_indices(beta: bytes, n: int, k: int) -> list[int]:
    """``k`` distinct indices in ``[0, n)`` drawn from ``beta``, in draw order.

    Raises :class:`SamplingError` if ``beta`` is not 32 bytes, ``n < 1``,
    ``k < 0`` or ``k > n``. Cost grows like a coupon collector as ``k``
    approaches ``n`` (about ``n * ln n`` hashes for ``k == n``).
    """
    # Inputs validation
    beta = bytes(beta)
    if len(beta) != BETA_LEN:
        raise SamplingError(f"beta must be {BETA_LEN} bytes, got {len(beta)}")
    if n < 1:
        raise SamplingError(f"population size n must be at least 1, got {n}")
    if n >= _TWO_256:
        raise SamplingError("population size n must fit in a uint256")
    if k < 0:
        raise SamplingError(f"sample size k must be non-negative, got {k}")
    if k > n:
        raise SamplingError(f"cannot sample k={k} distinct indices from n={n}")
    # Procedure
    limit = (_TWO_256 // n) * n
    drawn: list[int] = []
    seen: set[int] = set()
    i = 0
    while len(drawn) < k:
        value = candidate(beta, i)
        i += 1
        if value >= limit:
            continue
        index = value % n
        if index not in seen:
            seen.add(index)
            drawn.append(index)
    return drawn
