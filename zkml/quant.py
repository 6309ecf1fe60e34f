"""Field elements <-> floats, the way ezkl encodes them.

ezkl writes BN254 field elements as 64 hex chars, little-endian. A quantized
value v at scale s is round(v * 2^s); negatives wrap around the field modulus.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
HALF_R = BN254_R // 2


def felt_to_int(felt: str) -> int:
    """Signed integer of a little-endian hex field element."""
    v = int.from_bytes(bytes.fromhex(felt.removeprefix("0x")), "little")
    if v >= BN254_R:
        raise ValueError("not a canonical field element")
    return v - BN254_R if v > HALF_R else v


def int_to_felt(v: int) -> str:
    """Little-endian hex field element of a signed integer."""
    return (v % BN254_R).to_bytes(32, "little").hex()


def felts_to_floats(felts: Iterable[str], scale: int) -> np.ndarray:
    """Dequantize field elements at ``scale`` (value / 2^scale)."""
    return np.array([felt_to_int(f) for f in felts], dtype=np.float64) / float(1 << scale)


def quantize(values: np.ndarray, scale: int) -> list[int]:
    """ezkl's input quantization: round half away from zero of v * 2^scale."""
    scaled = np.asarray(values, dtype=np.float64).reshape(-1) * float(1 << scale)
    return [int(x) for x in np.where(scaled >= 0, np.floor(scaled + 0.5), np.ceil(scaled - 0.5))]


def felt_to_bytes32(felt: str) -> bytes:
    """The field element as the EVM sees it: a big-endian uint256 (ezkl's hex is little-endian)."""
    return int.from_bytes(bytes.fromhex(felt.removeprefix("0x")), "little").to_bytes(32, "big")


def weights_commitment_bytes32(commitment: list[str] | None) -> bytes | None:
    """A circuit's Poseidon weights commitment (one felt) as bytes32 for the registry; None when params are fixed."""
    return felt_to_bytes32(commitment[0]) if commitment else None
