"""ECVRF (RFC 9381) with try-and-increment encoding, on NIST P-256 and secp256k1.

A verifiable random function maps ``alpha`` (any bytes) to a pseudorandom
``beta`` that only the secret-key holder can compute, together with a proof
``pi`` anyone holding the public key can check. zkml uses it to pick which
inferences an auditor re-proves (see :mod:`zkml.sampling`): the prover cannot
choose the sample, and everyone can recompute it.

Two suites, both following RFC 9381 section 5 exactly (names mirror the RFC):

* ``0x01`` ``ECVRF-P256-SHA256-TAI`` -- the RFC's own suite (section 5.5),
  reproducing its Appendix B.1 vectors byte for byte.
* ``0xFE`` ``ECVRF-SECP256K1-SHA256-TAI`` -- the same rules on secp256k1 (the
  suite byte is from the private-use range), the suite ``VRFVerifier.sol``
  verifies on chain.

Encodings (RFC 9381 section 5.5): points are SEC1 compressed (33 bytes),
scalars big-endian, ``pi = Gamma (33) || c (16) || s (32)`` (81 bytes),
``beta`` is SHA-256 (32 bytes). The nonce is RFC 6979 section 3.2
(HMAC-DRBG), as RFC 9381 section 5.4.2.1 requires.

Error design (the same everywhere in this module):

* :func:`verify` answers a question, so it never raises for any bytes given
  as ``pk``, ``alpha`` or ``pi``: whatever RFC 9381 calls "INVALID"
  (undecodable public key or Gamma, wrong lengths, ``s >= q``, a challenge
  mismatch) returns ``None``. A valid proof returns ``beta``.
* Functions that compute (:func:`public_key`, :func:`prove`,
  :func:`proof_to_hash`, :func:`get_suite`) raise :class:`VRFError` on bad
  input: an unknown suite, a secret key that is not a 32-byte scalar in
  ``[1, q-1]``, a proof that does not decode.

The curve arithmetic is pure Python (Jacobian coordinates). It is exact but
not constant-time: fine for auditing and tests, not for keys exposed to
timing attackers on shared hardware.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from zkml.errors import ZkmlError

__all__ = [
    "P256",
    "SECP256K1",
    "SUITES",
    "Curve",
    "Point",
    "Suite",
    "VRFError",
    "challenge_generation",
    "decode_proof",
    "encode_to_curve_tai",
    "get_suite",
    "keygen",
    "nonce_generation_rfc6979",
    "point_to_string",
    "proof_to_hash",
    "prove",
    "public_key",
    "string_to_point",
    "verify",
]


class VRFError(ZkmlError):
    """Bad input to a VRF computation: unknown suite, malformed key or proof."""


# An affine point; ``None`` is the point at infinity (the group identity).
Point = tuple[int, int] | None
# Jacobian (X, Y, Z) standing for (X/Z^2, Y/Z^3); Z == 0 is the identity.
_Jacobian = tuple[int, int, int]
_JACOBIAN_IDENTITY: Final[_Jacobian] = (1, 1, 0)


@dataclass(frozen=True)
class Curve:
    """A short Weierstrass curve ``y^2 = x^3 + a*x + b`` over GF(p) with prime-order base point."""

    name: str
    """Human name of the curve, e.g. ``"P-256"``."""
    p: int
    """Field prime; must be 3 mod 4 so square roots are one exponentiation."""
    a: int
    """Coefficient ``a`` (reduced mod p)."""
    b: int
    """Coefficient ``b``."""
    n: int
    """Prime order ``q`` of the base point (RFC 9381 calls it ``q``)."""
    gx: int
    """Base point ``B``, x coordinate."""
    gy: int
    """Base point ``B``, y coordinate."""
    cofactor: int = 1
    """Group cofactor; 1 for both curves here."""

    def __post_init__(self) -> None:
        if self.p % 4 != 3:
            raise VRFError(f"curve {self.name}: field prime must be 3 mod 4")
        if not self.is_on_curve(self.generator):
            raise VRFError(f"curve {self.name}: base point is not on the curve")

    @property
    def generator(self) -> Point:
        """The base point ``B``."""
        return (self.gx, self.gy)

    @property
    def byte_len(self) -> int:
        """Octets of a field element or scalar (32 for both curves)."""
        return (self.p.bit_length() + 7) // 8

    # -- Affine helpers ------------------------------------------------------

    def is_on_curve(self, point: Point) -> bool:
        """True if ``point`` is the identity or satisfies the curve equation with reduced coordinates."""
        if point is None:
            return True
        x, y = point
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    def neg(self, point: Point) -> Point:
        """``-point``."""
        if point is None:
            return None
        x, y = point
        return (x, (-y) % self.p)

    def y_from_x(self, x: int, odd: bool) -> int | None:
        """The y with parity ``odd`` such that ``(x, y)`` is on the curve, or None if none exists."""
        p = self.p
        rhs = (x * x * x + self.a * x + self.b) % p
        y = pow(rhs, (p + 1) // 4, p)
        if y * y % p != rhs:
            return None
        if (y & 1) != int(odd):
            y = (p - y) % p
        if y & 1 != int(odd):  # y == 0 has no odd twin
            return None
        return y

    # -- Group law (Jacobian inside, affine outside) --------------------------

    def _to_jacobian(self, point: Point) -> _Jacobian:
        if point is None:
            return _JACOBIAN_IDENTITY
        return (point[0], point[1], 1)

    def _to_affine(self, jp: _Jacobian) -> Point:
        x, y, z = jp
        if z % self.p == 0:
            return None
        p = self.p
        zinv = pow(z, -1, p)
        zinv2 = zinv * zinv % p
        return (x * zinv2 % p, y * zinv2 * zinv % p)

    def _double(self, jp: _Jacobian) -> _Jacobian:
        x, y, z = jp
        p = self.p
        if z == 0 or y == 0:
            return _JACOBIAN_IDENTITY
        yy = y * y % p
        zz = z * z % p
        s = 4 * x * yy % p
        m = (3 * x * x + self.a * zz * zz) % p
        x3 = (m * m - 2 * s) % p
        y3 = (m * (s - x3) - 8 * yy * yy) % p
        z3 = 2 * y * z % p
        return (x3, y3, z3)

    def _add(self, jp: _Jacobian, jq: _Jacobian) -> _Jacobian:
        x1, y1, z1 = jp
        x2, y2, z2 = jq
        if z1 == 0:
            return jq
        if z2 == 0:
            return jp
        p = self.p
        z1z1 = z1 * z1 % p
        z2z2 = z2 * z2 % p
        u1 = x1 * z2z2 % p
        u2 = x2 * z1z1 % p
        s1 = y1 * z2 * z2z2 % p
        s2 = y2 * z1 * z1z1 % p
        if u1 == u2:
            return self._double(jp) if s1 == s2 else _JACOBIAN_IDENTITY
        h = (u2 - u1) % p
        r = (s2 - s1) % p
        hh = h * h % p
        hhh = h * hh % p
        v = u1 * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        y3 = (r * (v - x3) - s1 * hhh) % p
        z3 = h * z1 * z2 % p
        return (x3, y3, z3)

    def add(self, p1: Point, p2: Point) -> Point:
        """``p1 + p2``."""
        return self._to_affine(self._add(self._to_jacobian(p1), self._to_jacobian(p2)))

    def mul(self, scalar: int, point: Point) -> Point:
        """``scalar * point`` by double-and-add (scalar >= 0)."""
        if scalar < 0:
            raise VRFError("scalar must be non-negative")
        acc = _JACOBIAN_IDENTITY
        base = self._to_jacobian(point)
        for bit in bin(scalar)[2:]:
            acc = self._double(acc)
            if bit == "1":
                acc = self._add(acc, base)
        return self._to_affine(acc)

    def mul_base(self, scalar: int) -> Point:
        """``scalar * B``."""
        return self.mul(scalar, self.generator)


P256_CURVE: Final = Curve(
    name="P-256",
    p=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    a=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
    b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)

SECP256K1_CURVE: Final = Curve(
    name="secp256k1",
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F,
    a=0,
    b=7,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    gx=0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    gy=0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


# -- Suites -----------------------------------------------------------------


@dataclass(frozen=True)
class Suite:
    """An ECVRF ciphersuite (RFC 9381 section 5.5): curve, hash, encodings."""

    name: str
    """RFC-style suite name, e.g. ``"ECVRF-P256-SHA256-TAI"``."""
    short_name: str
    """Name used by the CLI and :func:`get_suite`: ``"p256"`` or ``"secp256k1"``."""
    suite_string: bytes
    """The one-octet suite identifier hashed into every domain-separated hash."""
    curve: Curve
    """The elliptic-curve group."""
    hash_name: str = "sha256"
    """The ``Hash`` function (hashlib name)."""
    pt_len: int = 33
    """Octets of an encoded point (SEC1 compressed)."""
    c_len: int = 16
    """Octets of the challenge ``c``."""
    q_len: int = 32
    """Octets of a scalar mod q."""

    @property
    def suite_byte(self) -> int:
        """The suite identifier as an int (0x01 or 0xFE)."""
        return self.suite_string[0]

    @property
    def pi_len(self) -> int:
        """Octets of a proof ``pi = Gamma || c || s`` (81)."""
        return self.pt_len + self.c_len + self.q_len

    @property
    def h_len(self) -> int:
        """Octets of a ``Hash`` output, which is also the length of ``beta``."""
        return hashlib.new(self.hash_name).digest_size

    def hash(self, data: bytes) -> bytes:
        """``Hash(data)``."""
        return hashlib.new(self.hash_name, data).digest()


P256: Final = Suite(
    name="ECVRF-P256-SHA256-TAI",
    short_name="p256",
    suite_string=b"\x01",
    curve=P256_CURVE,
)

SECP256K1: Final = Suite(
    name="ECVRF-SECP256K1-SHA256-TAI",
    short_name="secp256k1",
    suite_string=b"\xfe",
    curve=SECP256K1_CURVE,
)

SUITES: Final[tuple[Suite, ...]] = (P256, SECP256K1)

SuiteLike = Suite | str | int

# Domain separators (RFC 9381 sections 5.4.1.1, 5.4.3, 5.2).
_ENCODE_TO_CURVE_FRONT: Final = b"\x01"
_CHALLENGE_FRONT: Final = b"\x02"
_PROOF_TO_HASH_FRONT: Final = b"\x03"
_BACK: Final = b"\x00"


def get_suite(suite: SuiteLike) -> Suite:
    """Resolve a suite from itself, its short or full name (any case), or its suite byte.

    Raises :class:`VRFError` for an unknown suite.
    """
    if isinstance(suite, Suite):
        return suite
    for candidate in SUITES:
        if isinstance(suite, str) and suite.lower() in (candidate.short_name, candidate.name.lower()):
            return candidate
        if isinstance(suite, int) and not isinstance(suite, bool) and suite == candidate.suite_byte:
            return candidate
    known = ", ".join(s.short_name for s in SUITES)
    shown = f"0x{suite:02x}" if isinstance(suite, int) and not isinstance(suite, bool) else repr(suite)
    raise VRFError(f"unknown VRF suite {shown} (expected one of {known})")


# -- Encodings (RFC 9381 section 5.5) ----------------------------------------


def int_to_string(value: int, length: int) -> bytes:
    """Big-endian ``length``-octet encoding of ``value``."""
    return value.to_bytes(length, "big")


def string_to_int(data: bytes) -> int:
    """Big-endian decoding."""
    return int.from_bytes(data, "big")


def point_to_string(suite: SuiteLike, point: Point) -> bytes:
    """SEC1 compressed encoding (33 octets). Raises :class:`VRFError` for the identity."""
    s = get_suite(suite)
    if point is None:
        raise VRFError("the point at infinity has no compressed encoding")
    x, y = point
    return bytes([0x02 | (y & 1)]) + int_to_string(x, s.curve.byte_len)


def string_to_point(suite: SuiteLike, data: bytes) -> Point:
    """Decode a SEC1 compressed point; None ("INVALID") if it is not one.

    Rejects wrong lengths, a prefix other than 0x02/0x03, ``x >= p`` and an
    ``x`` with no curve point. The result is never the identity.
    """
    s = get_suite(suite)
    curve = s.curve
    if len(data) != s.pt_len or data[0] not in (0x02, 0x03):
        return None
    x = string_to_int(data[1:])
    if x >= curve.p:
        return None
    y = curve.y_from_x(x, odd=data[0] == 0x03)
    if y is None:
        return None
    return (x, y)


# -- Keys ---------------------------------------------------------------------


def _secret_scalar(suite: Suite, sk: bytes) -> int:
    # Inputs validation: SK is int_to_string(x, qLen) with 1 <= x < q.
    if not isinstance(sk, (bytes, bytearray)):
        raise VRFError("secret key must be bytes")
    if len(sk) != suite.q_len:
        raise VRFError(f"secret key must be {suite.q_len} bytes, got {len(sk)}")
    x = string_to_int(bytes(sk))
    if not 1 <= x < suite.curve.n:
        raise VRFError(f"secret key is not a scalar in [1, q-1] for {suite.curve.name}")
    return x


def keygen(suite: SuiteLike) -> tuple[bytes, bytes]:
    """A fresh key pair ``(sk, pk)`` from the OS CSPRNG (32-byte scalar, 33-byte compressed point)."""
    s = get_suite(suite)
    x = 1 + secrets.randbelow(s.curve.n - 1)
    sk = int_to_string(x, s.q_len)
    return sk, public_key(s, sk)


def public_key(suite: SuiteLike, sk: bytes) -> bytes:
    """``PK_string = point_to_string(x*B)``. Raises :class:`VRFError` for a malformed ``sk``."""
    s = get_suite(suite)
    x = _secret_scalar(s, sk)
    return point_to_string(s, s.curve.mul_base(x))


# -- Building blocks (RFC 9381 section 5.4) -----------------------------------


def encode_to_curve_tai(suite: SuiteLike, encode_to_curve_salt: bytes, alpha: bytes) -> Point:
    """ECVRF_encode_to_curve_try_and_increment (section 5.4.1.1); the salt is ``PK_string``.

    Raises :class:`VRFError` if all 256 counters fail (probability ~2^-256).
    """
    s = get_suite(suite)
    prefix = s.suite_string + _ENCODE_TO_CURVE_FRONT + encode_to_curve_salt + alpha
    for ctr in range(256):
        hash_string = s.hash(prefix + int_to_string(ctr, 1) + _BACK)
        # interpret_hash_value_as_a_point: string_to_point(0x02 || hash_string)
        point = string_to_point(s, b"\x02" + hash_string[: s.pt_len - 1])
        if point is not None:
            return s.curve.mul(s.curve.cofactor, point)
    raise VRFError("encode_to_curve: no counter value produced a curve point")


def nonce_generation_rfc6979(suite: SuiteLike, sk: bytes, h_string: bytes) -> int:
    """ECVRF_nonce_generation_RFC6979 (section 5.4.2.1): RFC 6979 section 3.2 with ``m = h_string``.

    The full HMAC-DRBG procedure, with bits2int, int2octets and bits2octets
    exactly as RFC 6979 section 2.3 defines them.
    """
    s = get_suite(suite)
    x = _secret_scalar(s, sk)
    q = s.curve.n
    qlen = q.bit_length()
    rlen = (qlen + 7) // 8

    def bits2int(data: bytes) -> int:
        value = string_to_int(data)
        blen = 8 * len(data)
        return value >> (blen - qlen) if blen > qlen else value

    def int2octets(value: int) -> bytes:
        return int_to_string(value, rlen)

    def bits2octets(data: bytes) -> bytes:
        return int2octets(bits2int(data) % q)

    def mac(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, s.hash_name).digest()

    # Procedure (RFC 6979 section 3.2, steps a-h)
    h1 = s.hash(h_string)
    hlen = len(h1)
    v = b"\x01" * hlen
    k = b"\x00" * hlen
    seed = int2octets(x) + bits2octets(h1)
    k = mac(k, v + b"\x00" + seed)
    v = mac(k, v)
    k = mac(k, v + b"\x01" + seed)
    v = mac(k, v)
    while True:
        t = b""
        while 8 * len(t) < qlen:
            v = mac(k, v)
            t += v
        nonce = bits2int(t)
        if 1 <= nonce < q:
            return nonce
        k = mac(k, v + b"\x00")
        v = mac(k, v)


def challenge_generation(suite: SuiteLike, points: tuple[Point, ...]) -> int:
    """ECVRF_challenge_generation (section 5.4.3) over ``(Y, H, Gamma, U, V)``.

    Raises :class:`VRFError` if a point is the identity (it has no 33-byte encoding).
    """
    s = get_suite(suite)
    data = s.suite_string + _CHALLENGE_FRONT
    for point in points:
        data += point_to_string(s, point)
    c_string = s.hash(data + _BACK)
    return string_to_int(c_string[: s.c_len])


def decode_proof(suite: SuiteLike, pi: bytes) -> tuple[Point, int, int] | None:
    """ECVRF_decode_proof (section 5.4.4): ``(Gamma, c, s)``, or None ("INVALID").

    Invalid when the length is not 81, Gamma does not decode, or ``s >= q``.
    """
    s = get_suite(suite)
    if len(pi) != s.pi_len:
        return None
    gamma = string_to_point(s, pi[: s.pt_len])
    if gamma is None:
        return None
    c = string_to_int(pi[s.pt_len : s.pt_len + s.c_len])
    s_scalar = string_to_int(pi[s.pt_len + s.c_len :])
    if s_scalar >= s.curve.n:
        return None
    return gamma, c, s_scalar


# -- The VRF --------------------------------------------------------------------


def prove(suite: SuiteLike, sk: bytes, alpha: bytes) -> bytes:
    """ECVRF_prove (section 5.1): the 81-byte proof ``pi`` for ``alpha`` under ``sk``.

    Deterministic. Raises :class:`VRFError` for a malformed ``sk``.
    """
    s = get_suite(suite)
    curve = s.curve
    x = _secret_scalar(s, sk)
    alpha = bytes(alpha)
    # Procedure
    y_point = curve.mul_base(x)
    pk_string = point_to_string(s, y_point)
    h_point = encode_to_curve_tai(s, pk_string, alpha)
    h_string = point_to_string(s, h_point)
    gamma = curve.mul(x, h_point)
    k = nonce_generation_rfc6979(s, bytes(sk), h_string)
    c = challenge_generation(s, (y_point, h_point, gamma, curve.mul_base(k), curve.mul(k, h_point)))
    s_scalar = (k + c * x) % curve.n
    return point_to_string(s, gamma) + int_to_string(c, s.c_len) + int_to_string(s_scalar, s.q_len)


def _gamma_to_hash(suite: Suite, gamma: Point) -> bytes:
    # beta = Hash(suite_string || 0x03 || point_to_string(cofactor * Gamma) || 0x00)
    cleared = suite.curve.mul(suite.curve.cofactor, gamma)
    return suite.hash(suite.suite_string + _PROOF_TO_HASH_FRONT + point_to_string(suite, cleared) + _BACK)


def proof_to_hash(suite: SuiteLike, pi: bytes) -> bytes:
    """ECVRF_proof_to_hash (section 5.2): ``beta`` from ``pi``, without checking the proof.

    Only meaningful for a proof :func:`verify` accepted (or one you made with
    :func:`prove`). Raises :class:`VRFError` if ``pi`` does not decode.
    """
    s = get_suite(suite)
    decoded = decode_proof(s, bytes(pi))
    if decoded is None:
        raise VRFError(f"malformed {s.name} proof (need {s.pi_len} bytes: a curve point Gamma, c, and s < q)")
    return _gamma_to_hash(s, decoded[0])


def verify(suite: SuiteLike, pk: bytes, alpha: bytes, pi: bytes) -> bytes | None:
    """ECVRF_verify (section 5.3): ``beta`` if ``pi`` proves ``alpha`` under ``pk``, else None.

    Never raises for any ``pk``/``alpha``/``pi`` bytes (only an unknown suite
    raises :class:`VRFError`). The key check of section 5.4.5 is always on;
    with cofactor 1 it reduces to "Y is not the identity", which decoding
    already guarantees. A proof whose U or V is the identity (only a key
    holder deliberately using nonce 0 can make one) is refused, matching the
    on-chain verifier, which cannot represent it either.
    """
    s = get_suite(suite)
    curve = s.curve
    pk, alpha, pi = bytes(pk), bytes(alpha), bytes(pi)
    # Inputs validation
    y_point = string_to_point(s, pk)
    if y_point is None:
        return None
    decoded = decode_proof(s, pi)
    if decoded is None:
        return None
    gamma, c, s_scalar = decoded
    # Procedure
    h_point = encode_to_curve_tai(s, pk, alpha)
    u_point = curve.add(curve.mul_base(s_scalar), curve.neg(curve.mul(c, y_point)))
    v_point = curve.add(curve.mul(s_scalar, h_point), curve.neg(curve.mul(c, gamma)))
    if u_point is None or v_point is None:
        return None
    if challenge_generation(s, (y_point, h_point, gamma, u_point, v_point)) != c:
        return None
    return _gamma_to_hash(s, gamma)
