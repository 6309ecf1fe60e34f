"""ECVRF (RFC 9381): the RFC's vectors, RFC 6979 nonces, tamper tables, secp256k1 cross-checks, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from py_ecc.secp256k1 import secp256k1 as ref_k1
from typer.testing import CliRunner

from zkml import vrf
from zkml.sampling import sample_indices
from zkml.vrf import P256, SECP256K1, VRFError
from zkml_cli.vrf import app as vrf_app

VECTORS_FILE = Path("/work/shared/vectors/ecvrf_p256_sha256_tai.json")
RFC_VECTORS = json.loads(VECTORS_FILE.read_text())["vectors"]

# RFC 9381 Appendix B.1 (Examples 10-12) intermediate values: H, the nonce k, U = k*B, V = k*H.
RFC_INTERMEDIATE = [
    (
        "0272a877532e9ac193aff4401234266f59900a4a9e3fc3cfc6a4b7e467a15d06d4",
        "0d90591273453d2dc67312d39914e3a93e194ab47a58cd598886897076986f77",
        "02bb6a034f67643c6183c10f8b41dc4babf88bff154b674e377d90bde009c21672",
        "02893ebee7af9a0faa6da810da8a91f9d50e1dc071240c9706726820ff919e8394",
    ),
    (
        "02173119b4fff5e6f8afed4868a29fe8920f1b54c2cf89cc7b301d0d473de6b974",
        "5852353a868bdce26938cde1826723e58bf8cb06dd2fed475213ea6f3b12e961",
        "022779a2cafcb65414c4a04a4b4d2adf4c50395f57995e89e6de823250d91bc48e",
        "033b4a14731672e82339f03b45ff6b5b13dee7ada38c9bf1d6f8f61e2ce5921119",
    ),
    (
        "0258055c26c4b01d01c00fb57567955f7d39cd6f6e85fd37c58f696cc6b7aa761d",
        "5689e2e08e1110b4dda293ac21667eac6db5de4a46a519c73d533f69be2f4da3",
        "020f465cd0ec74d2e23af0abde4c07e866ae4e5138bded5dd1196b8843f380db84",
        "036cb6f811428fc4904370b86c488f60c280fa5b496d2f34ff8772f60ed24b2d1d",
    ),
]

SK1 = bytes.fromhex(RFC_VECTORS[0]["SK"])
PK1 = bytes.fromhex(RFC_VECTORS[0]["PK"])
ALPHA1 = bytes.fromhex(RFC_VECTORS[0]["alpha"])
PI1 = bytes.fromhex(RFC_VECTORS[0]["pi"])
BETA1 = bytes.fromhex(RFC_VECTORS[0]["beta"])
P256_N = P256.curve.n
K1_N = SECP256K1.curve.n


EXAMPLE_IDS = ["example-10", "example-11", "example-12"]


def _no_point_x(suite: vrf.Suite, start: int = 1) -> int:
    """The smallest x >= start with no curve point (x^3 + a x + b is not a square)."""
    x = start
    while suite.curve.y_from_x(x, odd=False) is not None:
        x += 1
    return x


def _with_s(pi: bytes, s: int, suite: vrf.Suite = P256) -> bytes:
    return pi[: suite.pt_len + suite.c_len] + s.to_bytes(32, "big")


def _flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :]


# -- RFC 9381 Appendix B.1 ----------------------------------------------------------------------


@pytest.mark.parametrize("v", RFC_VECTORS, ids=EXAMPLE_IDS)
def test_rfc9381_vectors(v: dict[str, str]) -> None:
    sk, pk, alpha = bytes.fromhex(v["SK"]), bytes.fromhex(v["PK"]), bytes.fromhex(v["alpha"])
    pi, beta = bytes.fromhex(v["pi"]), bytes.fromhex(v["beta"])
    assert vrf.public_key(P256, sk) == pk
    assert vrf.prove(P256, sk, alpha) == pi
    assert vrf.proof_to_hash(P256, pi) == beta
    assert vrf.verify(P256, pk, alpha, pi) == beta


@pytest.mark.parametrize(("v", "mid"), list(zip(RFC_VECTORS, RFC_INTERMEDIATE, strict=True)), ids=EXAMPLE_IDS)
def test_rfc9381_intermediate_values(v: dict[str, str], mid: tuple[str, str, str, str]) -> None:
    h_hex, k_hex, u_hex, v_hex = mid
    sk, pk, alpha = bytes.fromhex(v["SK"]), bytes.fromhex(v["PK"]), bytes.fromhex(v["alpha"])
    curve = P256.curve
    h = vrf.encode_to_curve_tai(P256, pk, alpha)
    assert vrf.point_to_string(P256, h).hex() == h_hex
    k = vrf.nonce_generation_rfc6979(P256, sk, bytes.fromhex(h_hex))
    assert k == int(k_hex, 16)
    assert vrf.point_to_string(P256, curve.mul_base(k)).hex() == u_hex
    assert vrf.point_to_string(P256, curve.mul(k, h)).hex() == v_hex
    gamma, c, s = vrf.decode_proof(P256, bytes.fromhex(v["pi"])) or pytest.fail("RFC proof does not decode")
    x = int(v["SK"], 16)
    assert gamma == curve.mul(x, h)
    assert s == (k + c * x) % P256_N


# -- RFC 6979 nonces (section 3.2 with h1 = SHA-256(m)) -------------------------------------------

RFC6979_VECTORS = [
    # RFC 6979 A.2.5 (P-256, SHA-256)
    (P256, "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", b"sample",
     "a6e3c57dd01abe90086538398355dd4c3b17aa873382b0f24d6129493d8aad60"),
    (P256, "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", b"test",
     "d16b6ae827f17175e040871a1c7ec3500192c4c92677336ec2537acaee0008e0"),
    # Widely used secp256k1 / SHA-256 vectors (bitcointalk topic 285142, also in trezor-crypto's tests)
    (SECP256K1, "0000000000000000000000000000000000000000000000000000000000000001", b"Satoshi Nakamoto",
     "8f8a276c19f4149656b280621e358cce24f5f52542772691ee69063b74f15d15"),
    (SECP256K1, "0000000000000000000000000000000000000000000000000000000000000001",
     b"All those moments will be lost in time, like tears in rain. Time to die...",
     "38aa22d72376b4dbc472e06c3ba403ee0a394da63fc58d88686c611aba98d6b3"),
    (SECP256K1, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", b"Satoshi Nakamoto",
     "33a19b60e25fb6f4435af53a3d42d493644827367e6453928554f43e49aa6f90"),
]


@pytest.mark.parametrize(("suite", "sk", "msg", "k"), RFC6979_VECTORS)
def test_rfc6979_nonce(suite: vrf.Suite, sk: str, msg: bytes, k: str) -> None:
    assert vrf.nonce_generation_rfc6979(suite, bytes.fromhex(sk), msg) == int(k, 16)


# -- Rejections: every RFC "INVALID" is None --------------------------------------------------------

PI_POSITIONS = [0, 1, 7, 16, 31, 32, 33, 40, 48, 49, 60, 79, 80]


@pytest.mark.parametrize("pos", PI_POSITIONS)
@pytest.mark.parametrize("mask", [0x01, 0x80])
def test_flipped_proof_byte_is_rejected(pos: int, mask: int) -> None:
    assert vrf.verify(P256, PK1, ALPHA1, _flip(PI1, pos, mask)) is None


@pytest.mark.parametrize("pos", [0, 1, 16, 32])
def test_flipped_public_key_byte_is_rejected(pos: int) -> None:
    assert vrf.verify(P256, _flip(PK1, pos), ALPHA1, PI1) is None


def test_wrong_public_key_is_rejected() -> None:
    other_pk = bytes.fromhex(RFC_VECTORS[2]["PK"])
    assert vrf.verify(P256, other_pk, ALPHA1, PI1) is None


@pytest.mark.parametrize("alpha", [b"", b"sampl", b"sample\x00", b"Sample", bytes.fromhex(RFC_VECTORS[1]["alpha"])])
def test_wrong_alpha_is_rejected(alpha: bytes) -> None:
    assert vrf.verify(P256, PK1, alpha, PI1) is None


def test_proof_for_one_suite_is_rejected_by_the_other() -> None:
    # Same secret scalar, same alpha: the suite byte and curve are part of what is proven.
    k1_pk = vrf.public_key(SECP256K1, SK1)
    assert vrf.verify(SECP256K1, k1_pk, ALPHA1, PI1) is None
    k1_pi = vrf.prove(SECP256K1, SK1, ALPHA1)
    assert vrf.verify(P256, PK1, ALPHA1, k1_pi) is None


@pytest.mark.parametrize("suite", [P256, SECP256K1], ids=lambda s: s.short_name)
def test_gamma_off_curve_is_rejected(suite: vrf.Suite) -> None:
    sk = bytes(31) + b"\x07"
    pk, pi = vrf.public_key(suite, sk), vrf.prove(suite, sk, b"a")
    assert vrf.verify(suite, pk, b"a", pi) is not None
    x = _no_point_x(suite)
    for prefix in (b"\x02", b"\x03"):
        bad = prefix + x.to_bytes(32, "big") + pi[33:]
        assert vrf.decode_proof(suite, bad) is None
        assert vrf.verify(suite, pk, b"a", bad) is None


@pytest.mark.parametrize("suite", [P256, SECP256K1], ids=lambda s: s.short_name)
@pytest.mark.parametrize(
    "make_pk",
    [
        pytest.param(lambda s: b"\x02" + _no_point_x(s).to_bytes(32, "big"), id="x-not-on-curve"),
        pytest.param(lambda s: b"\x02" + s.curve.p.to_bytes(32, "big"), id="x-equals-p"),
        pytest.param(lambda s: b"\x03" + (2**256 - 1).to_bytes(32, "big"), id="x-above-p"),
        pytest.param(lambda s: b"\x04" + s.curve.gx.to_bytes(32, "big"), id="bad-prefix-04"),
        pytest.param(lambda s: b"\x00" + s.curve.gx.to_bytes(32, "big"), id="bad-prefix-00"),
        pytest.param(lambda s: b"\x00", id="identity-sec1"),
    ],
)
def test_public_key_that_does_not_decode_is_rejected(suite: vrf.Suite, make_pk) -> None:  # type: ignore[no-untyped-def]
    pk = make_pk(suite)
    assert vrf.string_to_point(suite, pk) is None
    pi = vrf.prove(suite, SK1, ALPHA1)
    assert vrf.verify(suite, pk, ALPHA1, pi) is None


@pytest.mark.parametrize("s", [P256_N, P256_N + 1, 2**256 - 1], ids=["n", "n+1", "max"])
def test_s_not_below_q_is_rejected(s: int) -> None:
    bad = _with_s(PI1, s)
    assert vrf.decode_proof(P256, bad) is None
    assert vrf.verify(P256, PK1, ALPHA1, bad) is None
    with pytest.raises(VRFError):
        vrf.proof_to_hash(P256, bad)


def test_s_just_below_q_decodes() -> None:
    decoded = vrf.decode_proof(P256, _with_s(PI1, P256_N - 1))
    assert decoded is not None and decoded[2] == P256_N - 1


@pytest.mark.parametrize(
    ("pk", "pi"),
    [
        pytest.param(PK1, PI1[:-1], id="pi-80"),
        pytest.param(PK1, PI1 + b"\x00", id="pi-82"),
        pytest.param(PK1, b"", id="pi-empty"),
        pytest.param(PK1, PI1[:33], id="pi-gamma-only"),
        pytest.param(PK1[:-1], PI1, id="pk-32"),
        pytest.param(PK1 + b"\x00", PI1, id="pk-34"),
        pytest.param(b"", PI1, id="pk-empty"),
    ],
)
def test_wrong_lengths_are_rejected(pk: bytes, pi: bytes) -> None:
    assert vrf.verify(P256, pk, ALPHA1, pi) is None


def test_uncompressed_public_key_is_rejected() -> None:
    x, y = P256.curve.mul_base(int(RFC_VECTORS[0]["SK"], 16)) or pytest.fail("identity")
    uncompressed = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    assert vrf.verify(P256, uncompressed, ALPHA1, PI1) is None


@pytest.mark.parametrize("suite", [P256, SECP256K1], ids=lambda s: s.short_name)
def test_verify_never_raises_on_garbage(suite: vrf.Suite) -> None:
    rng = random.Random(9381)
    for _ in range(40):
        pk = bytes(rng.getrandbits(8) for _ in range(rng.choice([33, 33, 32, 65])))
        pi = bytes(rng.getrandbits(8) for _ in range(rng.choice([81, 81, 80])))
        assert vrf.verify(suite, pk, b"x", pi) is None


# -- Bad input to computations raises ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sk",
    [
        pytest.param(b"", id="empty"),
        pytest.param(SK1[:-1], id="31-bytes"),
        pytest.param(SK1 + b"\x00", id="33-bytes"),
        pytest.param(bytes(32), id="zero"),
        pytest.param(P256_N.to_bytes(32, "big"), id="q"),
        pytest.param((2**256 - 1).to_bytes(32, "big"), id="max"),
    ],
)
@pytest.mark.parametrize("fn", ["prove", "public_key"])
def test_malformed_secret_key_raises(sk: bytes, fn: str) -> None:
    with pytest.raises(VRFError, match="secret key"):
        if fn == "prove":
            vrf.prove(P256, sk, b"a")
        else:
            vrf.public_key(P256, sk)


def test_secret_key_q_minus_1_is_accepted() -> None:
    sk = (P256_N - 1).to_bytes(32, "big")
    pk = vrf.public_key(P256, sk)
    assert vrf.verify(P256, pk, b"edge", vrf.prove(P256, sk, b"edge")) is not None


@pytest.mark.parametrize("pi", [PI1[:-1], _flip(PI1, 0, 0xFF), _with_s(PI1, P256_N)])
def test_proof_to_hash_of_undecodable_proof_raises(pi: bytes) -> None:
    with pytest.raises(VRFError, match="malformed"):
        vrf.proof_to_hash(P256, pi)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("p256", P256), ("P256", P256), ("ECVRF-P256-SHA256-TAI", P256), (0x01, P256), (P256, P256),
     ("secp256k1", SECP256K1), ("ecvrf-secp256k1-sha256-tai", SECP256K1), (0xFE, SECP256K1)],
)
def test_get_suite(key: vrf.SuiteLike, expected: vrf.Suite) -> None:
    assert vrf.get_suite(key) is expected


@pytest.mark.parametrize("key", ["ed25519", "", 0x02, 0x00, True])
def test_unknown_suite_raises(key: vrf.SuiteLike) -> None:
    with pytest.raises(VRFError, match="unknown VRF suite"):
        vrf.get_suite(key)
    with pytest.raises(VRFError, match="unknown VRF suite"):
        vrf.verify(key, PK1, ALPHA1, PI1)


def test_identity_has_no_encoding() -> None:
    with pytest.raises(VRFError, match="infinity"):
        vrf.point_to_string(P256, None)


def test_suite_constants() -> None:
    assert (P256.suite_byte, SECP256K1.suite_byte) == (0x01, 0xFE)
    assert P256.pi_len == SECP256K1.pi_len == 81
    assert P256.h_len == 32


# -- Curve arithmetic ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", [P256, SECP256K1], ids=lambda s: s.short_name)
def test_group_laws(suite: vrf.Suite) -> None:
    curve = suite.curve
    rng = random.Random(1)
    assert curve.mul_base(curve.n) is None
    assert curve.mul_base(0) is None
    assert curve.add(curve.generator, curve.neg(curve.generator)) is None
    assert curve.add(curve.generator, curve.generator) == curve.mul_base(2)
    for _ in range(5):
        a, b = rng.randrange(1, curve.n), rng.randrange(1, curve.n)
        pa, pb = curve.mul_base(a), curve.mul_base(b)
        assert curve.is_on_curve(pa)
        assert curve.add(pa, pb) == curve.mul_base((a + b) % curve.n)
        assert curve.mul(b, pa) == curve.mul(a, pb)
        assert curve.mul_base(curve.n - a) == curve.neg(pa)


SECP256K1_SCALARS = [1, 2, 3, 7, 2**128 + 1, K1_N - 1, 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721]


@pytest.mark.parametrize("x", SECP256K1_SCALARS, ids=lambda x: hex(x)[:12])
def test_secp256k1_public_key_matches_py_ecc(x: int) -> None:
    sk = x.to_bytes(32, "big")
    ref = ref_k1.privtopub(sk)
    assert SECP256K1.curve.mul_base(x) == ref
    assert vrf.public_key(SECP256K1, sk) == bytes([2 | (ref[1] & 1)]) + ref[0].to_bytes(32, "big")
    assert vrf.string_to_point(SECP256K1, vrf.public_key(SECP256K1, sk)) == ref


def test_secp256k1_add_and_mul_match_py_ecc() -> None:
    rng = random.Random(256)
    curve = SECP256K1.curve
    for _ in range(4):
        a, b = rng.randrange(1, K1_N), rng.randrange(1, K1_N)
        pa = ref_k1.multiply(ref_k1.G, a)
        assert curve.mul(b, pa) == ref_k1.multiply(pa, b)
        assert curve.add(pa, ref_k1.multiply(ref_k1.G, b)) == ref_k1.add(pa, ref_k1.multiply(ref_k1.G, b))


def test_secp256k1_known_public_key() -> None:
    assert vrf.public_key(SECP256K1, SK1).hex() == "032c8c31fc9f990c6b55e3865a184a4ce50e09481f2eaeb3e60ec1cea13a6ae645"


def test_secp256k1_encode_to_curve_matches_third_party() -> None:
    # Value from the witnet vrf-rs test suite (RFC 9381 layout, suite 0xFE): an independent implementation.
    pk = bytes.fromhex("032c8c31fc9f990c6b55e3865a184a4ce50e09481f2eaeb3e60ec1cea13a6ae645")
    h = vrf.encode_to_curve_tai(SECP256K1, pk, b"sample")
    assert vrf.point_to_string(SECP256K1, h).hex() == "0221ceb1ce22cd34d8b73a619164ed64e917ca31fd454075d02e4bdfa9c5ce0b48"


def test_encode_to_curve_follows_the_rfc_layout() -> None:
    # Recompute example 10's H by hand: ctr 0 gives no point, ctr 1 does (RFC 9381 B.1).
    def candidate(ctr: int) -> bytes:
        return hashlib.sha256(b"\x01\x01" + PK1 + ALPHA1 + bytes([ctr]) + b"\x00").digest()

    assert vrf.string_to_point(P256, b"\x02" + candidate(0)) is None
    assert vrf.point_to_string(P256, vrf.encode_to_curve_tai(P256, PK1, ALPHA1)) == b"\x02" + candidate(1)


# -- secp256k1 round trips ----------------------------------------------------------------------------

ALPHAS = [b"", b"\x00", b"sample", b"a" * 200, bytes(range(256))]


@pytest.mark.parametrize("alpha", ALPHAS, ids=lambda a: f"len{len(a)}")
@pytest.mark.parametrize("suite", [P256, SECP256K1], ids=lambda s: s.short_name)
def test_roundtrip(suite: vrf.Suite, alpha: bytes) -> None:
    sk, pk = vrf.keygen(suite)
    pi = vrf.prove(suite, sk, alpha)
    assert len(pi) == 81
    beta = vrf.verify(suite, pk, alpha, pi)
    assert beta is not None and len(beta) == 32
    assert beta == vrf.proof_to_hash(suite, pi)
    assert vrf.verify(suite, pk, alpha + b"!", pi) is None


def test_secp256k1_determinism_and_uniqueness() -> None:
    pk = vrf.public_key(SECP256K1, SK1)
    pi = vrf.prove(SECP256K1, SK1, b"epoch-1")
    assert vrf.prove(SECP256K1, SK1, b"epoch-1") == pi
    betas = {vrf.verify(SECP256K1, pk, a, vrf.prove(SECP256K1, SK1, a)) for a in (b"epoch-1", b"epoch-2", b"epoch-3")}
    assert len(betas) == 3 and None not in betas
    other_sk = (2).to_bytes(32, "big")
    assert vrf.proof_to_hash(SECP256K1, vrf.prove(SECP256K1, other_sk, b"epoch-1")) != vrf.proof_to_hash(SECP256K1, pi)


@pytest.mark.parametrize("pos", PI_POSITIONS)
def test_secp256k1_flipped_proof_byte_is_rejected(pos: int) -> None:
    pk = vrf.public_key(SECP256K1, SK1)
    pi = vrf.prove(SECP256K1, SK1, b"sample")
    assert vrf.verify(SECP256K1, pk, b"sample", _flip(pi, pos)) is None


def test_keygen_is_random_and_consistent() -> None:
    (sk1, pk1), (sk2, pk2) = vrf.keygen("secp256k1"), vrf.keygen("secp256k1")
    assert sk1 != sk2 and pk1 != pk2
    assert (len(sk1), len(pk1)) == (32, 33)
    assert vrf.public_key(SECP256K1, sk1) == pk1


# -- CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(vrf_app, name="vrf")
    return root


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner: CliRunner, cli: typer.Typer, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["vrf", *args], env=env)


def test_cli_keygen_out_writes_0600_key_and_prints_only_pk(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    key = tmp_path / "vrf.key"
    res = _run(runner, cli, "keygen", "--suite", "secp256k1", "--out", str(key), "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    doc = json.loads(key.read_text())
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert doc["sk"] not in res.stdout and "sk" not in out
    assert out["pk"] == doc["pk"] == vrf.public_key(SECP256K1, bytes.fromhex(doc["sk"])).hex()
    # An existing key file is never silently replaced.
    again = _run(runner, cli, "keygen", "--out", str(key))
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert json.loads(key.read_text()) == doc


def test_cli_keygen_refuses_to_print_secret_unless_asked(runner: CliRunner, cli: typer.Typer) -> None:
    res = _run(runner, cli, "keygen")
    assert res.exit_code == 2 and res.stdout == ""
    assert "--out" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    shown = _run(runner, cli, "keygen", "--print-secret", "--json")
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["suite"] == "secp256k1"  # the one default suite
    assert vrf.public_key(SECP256K1, bytes.fromhex(data["sk"])).hex() == data["pk"]


def test_cli_prove_reproduces_rfc_vector(runner: CliRunner, cli: typer.Typer) -> None:
    res = _run(runner, cli, "prove", "--suite", "p256", "--alpha", ALPHA1.hex(), env={"ZKML_VRF_SK": SK1.hex()})
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert (data["pi"], data["beta"], data["pk"]) == (PI1.hex(), BETA1.hex(), PK1.hex())


def test_cli_prove_from_env_and_key_file(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    via_env = _run(runner, cli, "prove", "--suite", "p256", "--alpha", "0x" + ALPHA1.hex(), env={"ZKML_VRF_SK": SK1.hex()})
    assert via_env.exit_code == 0, via_env.stderr
    assert json.loads(via_env.stdout)["pi"] == PI1.hex()

    key = tmp_path / "k.key"
    assert _run(runner, cli, "keygen", "--suite", "secp256k1", "--out", str(key)).exit_code == 0
    via_file = _run(runner, cli, "prove", "--sk-file", str(key), "--alpha", "abcd")
    assert via_file.exit_code == 0, via_file.stderr
    data = json.loads(via_file.stdout)
    assert data["suite"] == "secp256k1"  # taken from the key file
    assert vrf.verify(SECP256K1, bytes.fromhex(data["pk"]), b"\xab\xcd", bytes.fromhex(data["pi"])) is not None

    raw = tmp_path / "raw.hex"
    raw.write_text(SK1.hex() + "\n")
    raw.chmod(0o600)
    via_raw = _run(runner, cli, "prove", "--sk-file", str(raw), "--suite", "p256", "--alpha", ALPHA1.hex())
    assert via_raw.exit_code == 0 and json.loads(via_raw.stdout)["beta"] == BETA1.hex()
    assert via_raw.stderr == ""

    clash = _run(runner, cli, "prove", "--sk-file", str(key), "--suite", "p256", "--alpha", "00")
    assert clash.exit_code == 2 and "holds a secp256k1 key, not p256" in clash.stderr


def test_cli_prove_has_no_secret_flag(runner: CliRunner, cli: typer.Typer) -> None:
    """A secret on the command line is visible in ps: there is no --sk, and the env var is the way."""
    res = _run(runner, cli, "prove", "--sk", SK1.hex(), "--alpha", "00", env={"ZKML_VRF_SK": ""})
    assert res.exit_code == 2 and "--sk" in res.stderr and SK1.hex() not in res.stdout
    assert "--sk " not in _run(runner, cli, "prove", "--help").stdout.replace("--sk-file", "")


def test_cli_prove_warns_on_a_world_readable_key_file(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    raw = tmp_path / "raw.hex"
    raw.write_text(SK1.hex())
    raw.chmod(0o644)
    res = _run(runner, cli, "prove", "--sk-file", str(raw), "--suite", "p256", "--alpha", ALPHA1.hex())
    assert res.exit_code == 0 and json.loads(res.stdout)["pi"] == PI1.hex()
    (line,) = res.stderr.strip().splitlines()
    assert "accessible by group or others (mode 0644)" in line and SK1.hex() not in line


def test_cli_verify_valid_and_invalid(runner: CliRunner, cli: typer.Typer) -> None:
    ok = _run(runner, cli, "verify", "--suite", "p256", "--pk", PK1.hex(), "--alpha", ALPHA1.hex(), "--pi", PI1.hex())
    assert ok.exit_code == 0 and ok.stdout.strip() == BETA1.hex()
    bad = _run(runner, cli, "verify", "--suite", "p256", "--pk", PK1.hex(), "--alpha", ALPHA1.hex(), "--pi",
               _flip(PI1, 50).hex())
    assert bad.exit_code == 1
    assert bad.stderr.strip().endswith("invalid VRF proof") and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stdout == ""
    bad_json = _run(runner, cli, "verify", "--suite", "p256", "--pk", PK1.hex(), "--alpha", "00", "--pi", PI1.hex(),
                    "--json")
    assert bad_json.exit_code == 1 and json.loads(bad_json.stdout)["valid"] is False


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["verify", "--pk", "zz", "--alpha", "00", "--pi", PI1.hex()], id="pk-not-hex"),
        pytest.param(["verify", "--pk", PK1.hex(), "--alpha", "0", "--pi", PI1.hex()], id="alpha-odd-length"),
        pytest.param(["verify", "--pk", PK1.hex(), "--alpha", "00", "--pi", PI1.hex()[:-2]], id="pi-80-bytes"),
        pytest.param(["verify", "--pk", PK1.hex()[:-2], "--alpha", "00", "--pi", PI1.hex()], id="pk-32-bytes"),
        pytest.param(["verify", "--suite", "ed25519", "--pk", PK1.hex(), "--alpha", "00", "--pi", PI1.hex()], id="suite"),
        pytest.param(["prove", "--alpha", "00"], id="no-key"),
        pytest.param(["prove", "--sk-file", "/nonexistent/key", "--alpha", "00"], id="missing-key-file"),
        pytest.param(["sample", "--beta", "11" * 32, "-n", "3", "-k", "4"], id="sample-k-above-n"),
        pytest.param(["sample", "--beta", "11" * 31, "-n", "3", "-k", "1"], id="sample-short-beta"),
    ],
)
def test_cli_malformed_input_is_one_line_exit_2(runner: CliRunner, cli: typer.Typer, args: list[str]) -> None:
    res = _run(runner, cli, *args, env={"ZKML_VRF_SK": ""})
    assert res.exit_code == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in res.stderr + res.stdout


@pytest.mark.parametrize(("sk", "message"), [("xyz", "is not a hex VRF secret key"),
                                             ("00" * 32, "secret key"), ("11" * 31, "is not a secp256k1 VRF secret key")])
def test_cli_malformed_env_key_is_one_line_exit_2(runner: CliRunner, cli: typer.Typer, sk: str, message: str) -> None:
    res = _run(runner, cli, "prove", "--alpha", "00", env={"ZKML_VRF_SK": sk})
    assert res.exit_code == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: $ZKML_VRF_SK") and message in line and sk not in line


def test_cli_sample(runner: CliRunner, cli: typer.Typer) -> None:
    res = _run(runner, cli, "sample", "--beta", BETA1.hex(), "-n", "1000", "-k", "5", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["indices"] == sample_indices(BETA1, 1000, 5)


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        pytest.param(["verify", "--suite", "p256", "--pk", PK1.hex(), "--alpha", "00", "--pi", PI1.hex()], 1,
                     "error: invalid VRF proof",
                     id="invalid"),
        pytest.param(["verify", "--pk", "0xg1", "--alpha", "00", "--pi", PI1.hex()], 2,
                     "error: --pk is not valid hex: '0xg1'", id="malformed"),
    ],
)
def test_cli_real_process_exit_codes(args: list[str], code: int, stderr: str) -> None:
    # A real interpreter, so exit codes and stderr are what a shell sees (the group is not wired into `zkml` here).
    script = "from zkml_cli.common import main_guard; from zkml_cli.vrf import app; main_guard(app)"
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ZKML_DEBUG": ""})
    assert proc.returncode == code
    assert proc.stderr.strip() == stderr
    assert proc.stdout == ""
