"""VRFVerifier.sol on a real anvil: secp256k1 ECVRF proofs, beta agreement with Python, sampling parity, gas."""

from __future__ import annotations


import pytest

from zkml import vrf
from zkml.evm import vrf_onchain
from zkml.evm.chain import Chain, Contract, ContractRevert
from zkml.evm.solc import CompiledContract
from zkml.sampling import sample_indices
from zkml.vrf import SECP256K1, VRFError

SUITE = SECP256K1
CURVE = SUITE.curve
SK = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
PK = vrf.public_key(SUITE, SK)
ALPHA = b"audit epoch 42"
PI = vrf.prove(SUITE, SK, ALPHA)
BETA = vrf.proof_to_hash(SUITE, PI)
GAS_TARGET = 150_000
FALSE = [False, b"\x00" * 32]


@pytest.fixture(scope="session")
def compiled() -> CompiledContract:
    return vrf_onchain.compile_verifier()


@pytest.fixture(scope="module")
def chain(module_chain: Chain) -> Chain:
    """The shared anvil, reverted when the module is done (its verifier deployments vanish with it)."""
    return module_chain


@pytest.fixture(scope="module")
def verifier(chain: Chain, compiled: CompiledContract) -> Contract:
    return vrf_onchain.deploy_verifier(chain, compiled)


def _call_verify(verifier: Contract, pk: bytes, alpha: bytes, pi: bytes, helpers: vrf_onchain.FastVerifyParams):
    result = verifier.call("verify", pk, alpha, pi, *helpers.as_args())
    return [result[0], bytes(result[1])]


def _helpers_or(pk: bytes, alpha: bytes, pi: bytes, fallback: vrf_onchain.FastVerifyParams):
    """Honest helper points for (pk, alpha, pi) when they exist, else ``fallback``."""
    try:
        return vrf_onchain.fast_verify_params(pk, alpha, pi)
    except VRFError:
        return fallback


VALID_HELPERS = vrf_onchain.fast_verify_params(PK, ALPHA, PI)


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def _alpha_needing_ctr(ctr: int) -> bytes:
    """An alpha whose try-and-increment succeeds exactly at counter ``ctr`` for PK."""
    for i in range(10_000):
        alpha = b"ctr-search-%d" % i
        first = next(
            c
            for c in range(256)
            if vrf.string_to_point(
                SUITE, b"\x02" + SUITE.hash(b"\xfe\x01" + PK + alpha + bytes([c]) + b"\x00")
            )
            is not None
        )
        if first == ctr:
            return alpha
    raise AssertionError(f"no alpha needs ctr {ctr}")


# -- Valid proofs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sk", "alpha"),
    [
        pytest.param(SK, ALPHA, id="fixed-key"),
        pytest.param(SK, b"", id="empty-alpha"),
        pytest.param(SK, b"\x00" * 300, id="long-alpha"),
        pytest.param((1).to_bytes(32, "big"), b"sample", id="sk-1"),
        pytest.param((CURVE.n - 1).to_bytes(32, "big"), b"sample", id="sk-q-minus-1"),
        pytest.param((0xDEADBEEF).to_bytes(32, "big"), bytes(range(32)), id="sk-deadbeef"),
    ],
)
def test_valid_proof_is_accepted_with_pythons_beta(verifier: Contract, sk: bytes, alpha: bytes) -> None:
    pk = vrf.public_key(SUITE, sk)
    pi = vrf.prove(SUITE, sk, alpha)
    beta = vrf.verify(SUITE, pk, alpha, pi)
    assert beta is not None
    assert _call_verify(verifier, pk, alpha, pi, vrf_onchain.fast_verify_params(pk, alpha, pi)) == [True, beta]
    assert vrf_onchain.verify_on_chain(verifier, pk, alpha, pi) == beta


@pytest.mark.parametrize("ctr", [0, 1, 2, 3])
def test_hash_to_curve_matches_python(verifier: Contract, ctr: int) -> None:
    alpha = _alpha_needing_ctr(ctr)
    h = vrf.encode_to_curve_tai(SUITE, PK, alpha)
    assert tuple(verifier.call("hashToCurve", PK, alpha)) == h
    pi = vrf.prove(SUITE, SK, alpha)
    assert vrf_onchain.verify_on_chain(verifier, PK, alpha, pi) == vrf.proof_to_hash(SUITE, pi)


def test_verify_gas_within_target(verifier: Contract, capsys: pytest.CaptureFixture[str]) -> None:
    alpha32 = bytes(range(32))
    pi32 = vrf.prove(SUITE, SK, alpha32)
    gas = {
        "alpha 14 B": vrf_onchain.verify_gas(verifier, PK, ALPHA, PI),
        "alpha 32 B": vrf_onchain.verify_gas(verifier, PK, alpha32, pi32),
    }
    with capsys.disabled():
        shown = ", ".join(f"{k}: {v:,}" for k, v in gas.items())
        print(f"\n[VRFVerifier.verify gas, eth_estimateGas incl. 21,000 base] {shown} (target <= {GAS_TARGET:,})")
    assert all(g <= GAS_TARGET for g in gas.values()), gas


# -- Refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pos", [0, 1, 16, 32, 33, 40, 48, 49, 64, 80])
def test_flipped_proof_byte_is_refused(verifier: Contract, pos: int) -> None:
    bad = _flip(PI, pos)
    assert vrf.verify(SUITE, PK, ALPHA, bad) is None
    helpers = _helpers_or(PK, ALPHA, bad, VALID_HELPERS)
    assert _call_verify(verifier, PK, ALPHA, bad, helpers) == FALSE
    assert _call_verify(verifier, PK, ALPHA, bad, VALID_HELPERS) == FALSE


def test_wrong_public_key_is_refused(verifier: Contract) -> None:
    other_pk = vrf.public_key(SUITE, (12345).to_bytes(32, "big"))
    assert _call_verify(verifier, other_pk, ALPHA, PI, vrf_onchain.fast_verify_params(other_pk, ALPHA, PI)) == FALSE
    assert _call_verify(verifier, other_pk, ALPHA, PI, VALID_HELPERS) == FALSE
    assert vrf_onchain.verify_on_chain(verifier, other_pk, ALPHA, PI) is None


@pytest.mark.parametrize("alpha", [b"", b"audit epoch 43", ALPHA + b"\x00"])
def test_wrong_alpha_is_refused(verifier: Contract, alpha: bytes) -> None:
    assert _call_verify(verifier, PK, alpha, PI, vrf_onchain.fast_verify_params(PK, alpha, PI)) == FALSE
    assert _call_verify(verifier, PK, alpha, PI, VALID_HELPERS) == FALSE


def _neg(point: tuple[int, int]) -> tuple[int, int]:
    return (point[0], CURVE.p - point[1])


WRONG_HELPERS = {
    "U-is-sH": vrf_onchain.FastVerifyParams(VALID_HELPERS.s_h, VALID_HELPERS.s_h, VALID_HELPERS.c_gamma),
    "U-negated": vrf_onchain.FastVerifyParams(_neg(VALID_HELPERS.u), VALID_HELPERS.s_h, VALID_HELPERS.c_gamma),
    "U-plus-B": vrf_onchain.FastVerifyParams(
        CURVE.add(VALID_HELPERS.u, CURVE.generator), VALID_HELPERS.s_h, VALID_HELPERS.c_gamma  # type: ignore[arg-type]
    ),
    "U-y-plus-1": vrf_onchain.FastVerifyParams(
        (VALID_HELPERS.u[0], VALID_HELPERS.u[1] + 1), VALID_HELPERS.s_h, VALID_HELPERS.c_gamma
    ),
    "sH-cGamma-swapped": vrf_onchain.FastVerifyParams(VALID_HELPERS.u, VALID_HELPERS.c_gamma, VALID_HELPERS.s_h),
    "cGamma-negated": vrf_onchain.FastVerifyParams(VALID_HELPERS.u, VALID_HELPERS.s_h, _neg(VALID_HELPERS.c_gamma)),
    "sH-zero": vrf_onchain.FastVerifyParams(VALID_HELPERS.u, (0, 0), VALID_HELPERS.c_gamma),
    "from-other-alpha": vrf_onchain.fast_verify_params(PK, b"other", vrf.prove(SUITE, SK, b"other")),
}


@pytest.mark.parametrize("name", list(WRONG_HELPERS))
def test_wrong_helper_points_are_refused(verifier: Contract, name: str) -> None:
    assert _call_verify(verifier, PK, ALPHA, PI, WRONG_HELPERS[name]) == FALSE


def _no_point_x() -> int:
    x = 1
    while CURVE.y_from_x(x, odd=False) is not None:
        x += 1
    return x


MALFORMED = {
    "s-equals-q": (PK, PI[:49] + CURVE.n.to_bytes(32, "big")),
    "s-max": (PK, PI[:49] + (2**256 - 1).to_bytes(32, "big")),
    "gamma-off-curve": (PK, b"\x02" + _no_point_x().to_bytes(32, "big") + PI[33:]),
    "gamma-x-is-p": (PK, b"\x03" + CURVE.p.to_bytes(32, "big") + PI[33:]),
    "gamma-prefix-04": (PK, b"\x04" + PI[1:]),
    "pk-off-curve": (b"\x03" + _no_point_x().to_bytes(32, "big"), PI),
    "pk-prefix-00": (b"\x00" + PK[1:], PI),
    "pk-32-bytes": (PK[:32], PI),
    "pk-uncompressed": (b"\x04" + b"\x11" * 64, PI),
    "pi-80-bytes": (PK, PI[:80]),
    "pi-82-bytes": (PK, PI + b"\x00"),
    "pi-empty": (PK, b""),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_is_refused_not_reverted(verifier: Contract, name: str) -> None:
    pk, pi = MALFORMED[name]
    assert vrf.verify(SUITE, pk, ALPHA, pi) is None
    assert _call_verify(verifier, pk, ALPHA, pi, VALID_HELPERS) == FALSE
    assert vrf_onchain.verify_on_chain(verifier, pk, ALPHA, pi) is None


def test_p256_proof_is_refused(verifier: Contract) -> None:
    p256_pi = vrf.prove(vrf.P256, SK, ALPHA)
    assert _call_verify(verifier, PK, ALPHA, p256_pi, _helpers_or(PK, ALPHA, p256_pi, VALID_HELPERS)) == FALSE


# -- Sampling parity -----------------------------------------------------------------------------------

SAMPLE_CASES = [
    (BETA, 1, 1),
    (BETA, 1, 0),
    (BETA, 10, 3),
    (BETA, 10, 10),
    (BETA, 1000, 25),
    (bytes(32), 7, 7),
    (b"\xff" * 32, 2**32, 12),
    (bytes(range(32)), 2**255, 6),  # 2^256 mod n == 0: nothing rejected
    (bytes(range(32)), 2**255 + 1, 8),  # about half of all candidates rejected
    (BETA, 2**256 - 1, 5),
    (vrf.proof_to_hash(SUITE, vrf.prove(SUITE, SK, b"x")), 3, 2),
]


@pytest.mark.parametrize(("beta", "n", "k"), SAMPLE_CASES, ids=[f"n{n}-k{k}" for _, n, k in SAMPLE_CASES])
def test_sample_indices_python_equals_solidity(verifier: Contract, beta: bytes, n: int, k: int) -> None:
    assert vrf_onchain.sample_indices_on_chain(verifier, beta, n, k) == sample_indices(beta, n, k)


@pytest.mark.parametrize(
    ("n", "k", "error"), [(3, 4, "SampleTooLarge"), (0, 0, "EmptyPopulation"), (0, 1, "EmptyPopulation")]
)
def test_sample_indices_reverts_like_python_raises(verifier: Contract, n: int, k: int, error: str) -> None:
    with pytest.raises(ContractRevert) as info:
        vrf_onchain.sample_indices_on_chain(verifier, BETA, n, k)
    assert info.value.error_name == error
