"""Off-chain half of ``verifiers/VRFVerifier.sol``: the helper points of "fast verify".

The contract checks an ECVRF-SECP256K1-SHA256-TAI proof without doing any
scalar multiplication itself: it is handed ``U = s*B - c*Y``, ``s*H`` and
``c*Gamma`` and confirms each with one ``ecrecover`` (see the contract's
header). This module computes those points from ``(pk, alpha, pi)`` and
wraps the contract calls so Python and Solidity agree on ``beta``.

Helper points only help: wrong ones make the contract refuse, they can never
make an invalid proof pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from zkml import vrf
from zkml.evm.chain import Chain, Contract
from zkml.evm.solc import CompiledContract, compile_file
from zkml.vrf import VRFError

__all__ = [
    "CONTRACT_NAME",
    "SOURCE_PATH",
    "FastVerifyParams",
    "compile_verifier",
    "deploy_verifier",
    "fast_verify_params",
    "sample_indices_on_chain",
    "verify_args",
    "verify_gas",
    "verify_on_chain",
]

SOURCE_PATH: Final[Path] = Path(__file__).resolve().parents[2] / "verifiers" / "VRFVerifier.sol"
"""The verifier's Solidity source in a zkml checkout."""
CONTRACT_NAME: Final = "VRFVerifier"
"""Name of the contract to compile and deploy from :data:`SOURCE_PATH`."""

_SUITE: Final = vrf.SECP256K1

AffinePoint = tuple[int, int]


@dataclass(frozen=True)
class FastVerifyParams:
    """The helper points ``VRFVerifier.verify`` checks with ecrecover, affine (x, y)."""

    u: AffinePoint
    """``U = s*B - c*Y``."""
    s_h: AffinePoint
    """``s*H``, with ``H = encode_to_curve(PK, alpha)``."""
    c_gamma: AffinePoint
    """``c*Gamma``."""

    def as_args(self) -> tuple[list[int], list[int], list[int]]:
        """The three ``uint256[2]`` arguments, in the contract's order."""
        return list(self.u), list(self.s_h), list(self.c_gamma)


def _finite(point: vrf.Point, what: str) -> AffinePoint:
    if point is None:
        raise VRFError(f"{what} is the point at infinity: the proof cannot be valid")
    return point


def fast_verify_params(pk: bytes, alpha: bytes, pi: bytes) -> FastVerifyParams:
    """Compute the fast-verify helper points for a secp256k1 proof.

    Does not decide validity (the contract does). Raises :class:`VRFError` if
    ``pk`` or ``pi`` does not decode, or a helper point is the identity, since
    then there is nothing to pass and the proof is invalid anyway.
    """
    curve = _SUITE.curve
    y_point = vrf.string_to_point(_SUITE, bytes(pk))
    if y_point is None:
        raise VRFError("public key is not a compressed secp256k1 point")
    decoded = vrf.decode_proof(_SUITE, bytes(pi))
    if decoded is None:
        raise VRFError(f"malformed {_SUITE.name} proof")
    gamma, c, s = decoded
    h_point = vrf.encode_to_curve_tai(_SUITE, bytes(pk), bytes(alpha))
    u = curve.add(curve.mul_base(s), curve.neg(curve.mul(c, y_point)))
    return FastVerifyParams(
        u=_finite(u, "U = s*B - c*Y"),
        s_h=_finite(curve.mul(s, h_point), "s*H"),
        c_gamma=_finite(curve.mul(c, gamma), "c*Gamma"),
    )


def verify_args(pk: bytes, alpha: bytes, pi: bytes) -> tuple[bytes, bytes, bytes, list[int], list[int], list[int]]:
    """All six arguments of ``VRFVerifier.verify`` for ``(pk, alpha, pi)``."""
    u, s_h, c_gamma = fast_verify_params(pk, alpha, pi).as_args()
    return bytes(pk), bytes(alpha), bytes(pi), u, s_h, c_gamma


def compile_verifier(**kwargs: Any) -> CompiledContract:
    """Compile ``VRFVerifier`` from :data:`SOURCE_PATH` (keyword arguments go to ``compile_file``)."""
    return compile_file(SOURCE_PATH, CONTRACT_NAME, **kwargs)


def deploy_verifier(chain: Chain, compiled: CompiledContract | None = None) -> Contract:
    """Deploy ``VRFVerifier`` (compiling it unless ``compiled`` is given); a handle on it.

    Raises:
        ChainError: the deployment failed.
    """
    compiled = compiled if compiled is not None else compile_verifier()
    return chain.at(compiled, chain.deploy(compiled).address)


def verify_on_chain(contract: Contract, pk: bytes, alpha: bytes, pi: bytes) -> bytes | None:
    """Call a deployed ``VRFVerifier.verify``; ``beta`` if the contract accepts the proof, else None.

    A proof whose helper points cannot be formed is invalid and gives None
    without a call.

    Raises:
        ChainError: the call itself failed (RPC, wrong contract).
    """
    try:
        args = verify_args(pk, alpha, pi)
    except VRFError:
        return None
    valid, beta = contract.call("verify", *args)
    return bytes(beta) if valid else None


def verify_gas(contract: Contract, pk: bytes, alpha: bytes, pi: bytes) -> int:
    """Gas of a transaction calling ``VRFVerifier.verify`` (``eth_estimateGas``, including the 21,000 base)."""
    return contract.estimate_gas("verify", *verify_args(pk, alpha, pi))


def sample_indices_on_chain(contract: Contract, beta: bytes, n: int, k: int) -> list[int]:
    """Call a deployed ``VRFVerifier.sampleIndices``.

    Raises:
        ContractRevert: ``n == 0`` (``EmptyPopulation``) or ``k > n`` (``SampleTooLarge``).
    """
    return [int(i) for i in contract.call("sampleIndices", bytes(beta), n, k)]
