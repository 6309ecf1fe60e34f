// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title VRFSampling
/// @notice Draws k distinct indices in [0, n) from a VRF output, exactly as zkml/sampling.py does:
///         candidate_i = uint256(keccak256(abi.encodePacked(beta, i))) for i = 0, 1, 2, ...;
///         a candidate >= (2**256 / n) * n is rejected (no modulo bias), else index = candidate % n;
///         an index already drawn is skipped. Indices come back in draw order.
library VRFSampling {
    /// @notice n is zero: there is nothing to sample from.
    error EmptyPopulation();
    /// @notice More distinct indices were asked for than exist.
    error SampleTooLarge(uint256 n, uint256 k);

    function sampleIndices(bytes32 beta, uint256 n, uint256 k) internal pure returns (uint256[] memory indices) {
        if (n == 0) revert EmptyPopulation();
        if (k > n) revert SampleTooLarge(n, k);
        indices = new uint256[](k);
        // 2**256 mod n, without overflowing: ((2**256 - 1) mod n + 1) mod n.
        uint256 rem = (type(uint256).max % n + 1) % n;
        // A candidate is accepted iff candidate < 2**256 - rem, i.e. candidate <= max - rem.
        uint256 maxAccepted = type(uint256).max - rem;
        uint256 found;
        for (uint256 i; found < k; ++i) {
            uint256 value = uint256(keccak256(abi.encodePacked(beta, i)));
            if (value > maxAccepted) continue;
            uint256 index = value % n;
            bool seen;
            for (uint256 j; j < found; ++j) {
                if (indices[j] == index) {
                    seen = true;
                    break;
                }
            }
            if (!seen) {
                indices[found] = index;
                ++found;
            }
        }
    }
}

/// @title VRFVerifier
/// @notice Verifies ECVRF-SECP256K1-SHA256-TAI proofs (suite 0xFE: RFC 9381 section 5 on secp256k1) and
///         returns beta, so a contract can act on the same VRF output zkml/vrf.py computes.
/// @dev Follows the "fast verify" design of witnet/vrf-solidity, with RFC 9381 encodings:
///      the three scalar multiplications of verification are not computed here but checked with the
///      ecrecover precompile against helper points computed off chain (zkml/evm/vrf_onchain.py):
///        U      = s*B - c*Y   (ecrecover(-s*Yx, v(Y), Yx, -c*Yx) recovers exactly this point)
///        sH     = s*H         (ecrecover(0, v(H), Hx, s*Hx))
///        cGamma = c*Gamma     (ecrecover(0, v(Gamma), Gammax, c*Gammax))
///      ecrecover returns an address (the last 20 bytes of keccak256(x || y)); a helper point is accepted
///      only if its own address matches. V = sH - cGamma is then one affine addition. The RFC steps
///      done in full here: decoding Y and Gamma (on-curve checks), s < q, encode_to_curve (TAI, with
///      the RFC 9381 layout suite || 0x01 || PK || alpha || ctr || 0x00), the challenge
///      SHA256(suite || 0x02 || Y || H || Gamma || U || V || 0x00)[0:16], and
///      beta = SHA256(suite || 0x03 || Gamma || 0x00) (cofactor 1).
///      Limitation of the ecrecover trick: a public key, H or Gamma whose x coordinate is >= q (the group
///      order) cannot be checked, so such a proof is refused; that happens with probability about 2^-128.
contract VRFVerifier {
    /// @notice RFC 9381 suite_string of ECVRF-SECP256K1-SHA256-TAI.
    bytes1 public constant SUITE = 0xFE;

    // secp256k1: y^2 = x^3 + 7 over GF(P), base point order Q.
    uint256 private constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    uint256 private constant Q = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    // Square roots: P = 3 mod 4, so sqrt(a) = a^((P+1)/4) when a is a square.
    uint256 private constant SQRT_EXP = (P + 1) / 4;

    uint256 private constant PT_LEN = 33; // compressed point
    uint256 private constant C_LEN = 16;
    uint256 private constant PI_LEN = 81; // Gamma || c || s

    /// @dev Values decoded from the inputs, kept in memory to stay within the stack limit.
    struct Decoded {
        uint256 yx; // public key Y
        uint256 yy;
        uint256 gx; // Gamma
        uint256 gy;
        uint256 hx; // H = encode_to_curve(Y, alpha)
        uint256 hy;
        uint256 vx; // V = s*H - c*Gamma
        uint256 vy;
        uint256 c;
        uint256 s;
    }

    /// @notice Verify an ECVRF proof; (true, beta) if valid, (false, 0) otherwise. Never reverts on bad input.
    /// @param publicKey compressed public key Y (33 bytes)
    /// @param alpha the VRF input
    /// @param pi the proof Gamma (33) || c (16) || s (32)
    /// @param uPoint helper point U = s*B - c*Y, affine (x, y)
    /// @param sH helper point s*H, affine (x, y)
    /// @param cGamma helper point c*Gamma, affine (x, y)
    function verify(
        bytes calldata publicKey,
        bytes calldata alpha,
        bytes calldata pi,
        uint256[2] calldata uPoint,
        uint256[2] calldata sH,
        uint256[2] calldata cGamma
    ) external view returns (bool valid, bytes32 beta) {
        if (!_verify(publicKey, alpha, pi, uPoint, sH, cGamma)) return (false, bytes32(0));
        // beta = proof_to_hash(pi) = SHA256(suite || 0x03 || Gamma || 0x00)
        return (true, sha256(abi.encodePacked(SUITE, bytes1(0x03), pi[0:PT_LEN], bytes1(0x00))));
    }

    function _verify(
        bytes calldata publicKey,
        bytes calldata alpha,
        bytes calldata pi,
        uint256[2] calldata uPoint,
        uint256[2] calldata sH,
        uint256[2] calldata cGamma
    ) private view returns (bool) {
        // Inputs validation: Y and Gamma decode to curve points, s < q
        if (publicKey.length != PT_LEN || pi.length != PI_LEN) return false;
        Decoded memory d;
        bool ok;
        (ok, d.yx, d.yy) = _decompress(publicKey);
        if (!ok) return false;
        (ok, d.gx, d.gy) = _decompress(pi[0:PT_LEN]);
        if (!ok) return false;
        d.c = uint256(uint128(bytes16(pi[PT_LEN:PT_LEN + C_LEN])));
        d.s = uint256(bytes32(pi[PT_LEN + C_LEN:PI_LEN]));
        if (d.s >= Q) return false;
        // H = encode_to_curve(PK, alpha)
        (ok, d.hx, d.hy) = _encodeToCurve(publicKey, alpha);
        if (!ok) return false;
        // The helper points: U = s*B - c*Y, sH = s*H, cGamma = c*Gamma
        if (!_isMulSubMul(d.s, d.c, d.yx, d.yy, uPoint)) return false;
        if (!_isMul(d.s, d.hx, d.hy, sH)) return false;
        if (!_isMul(d.c, d.gx, d.gy, cGamma)) return false;
        return _challengeMatches(publicKey, pi, d, uPoint, sH, cGamma);
    }

    /// @dev V = sH - cGamma; c' = SHA256(suite || 0x02 || Y || H || Gamma || U || V || 0x00)[0:16]; c' == c.
    function _challengeMatches(
        bytes calldata publicKey,
        bytes calldata pi,
        Decoded memory d,
        uint256[2] calldata uPoint,
        uint256[2] calldata sH,
        uint256[2] calldata cGamma
    ) private view returns (bool) {
        bool ok;
        (ok, d.vx, d.vy) = _sub(sH[0], sH[1], cGamma[0], cGamma[1]);
        if (!ok) return false;
        bytes memory yhg = abi.encodePacked(SUITE, bytes1(0x02), publicKey, _compress(d.hx, d.hy), pi[0:PT_LEN]);
        bytes32 cHash =
            sha256(abi.encodePacked(yhg, _compress(uPoint[0], uPoint[1]), _compress(d.vx, d.vy), bytes1(0x00)));
        return uint256(uint128(bytes16(cHash))) == d.c;
    }

    /// @notice ECVRF_encode_to_curve_try_and_increment (RFC 9381 section 5.4.1.1) for this suite.
    /// @return x affine x of H
    /// @return y affine y of H (always even: the candidate is decoded with prefix 0x02)
    function hashToCurve(bytes calldata publicKey, bytes calldata alpha) external view returns (uint256 x, uint256 y) {
        bool ok;
        (ok, x, y) = _encodeToCurve(publicKey, alpha);
        require(ok, "VRF: encode_to_curve found no point");
    }

    /// @notice k distinct indices in [0, n) drawn from beta (see VRFSampling); reverts if n == 0 or k > n.
    function sampleIndices(bytes32 beta, uint256 n, uint256 k) external pure returns (uint256[] memory) {
        return VRFSampling.sampleIndices(beta, n, k);
    }

    // -- encode_to_curve ----------------------------------------------------------------------------

    function _encodeToCurve(bytes calldata publicKey, bytes calldata alpha)
        private
        view
        returns (bool ok, uint256 x, uint256 y)
    {
        // hash_string = SHA256(suite || 0x01 || PK || alpha || ctr || 0x00), ctr = 0..255
        bytes memory buf = abi.encodePacked(SUITE, bytes1(0x01), publicKey, alpha, bytes1(0x00), bytes1(0x00));
        uint256 ctrAt = buf.length - 2;
        for (uint256 ctr; ctr < 256; ++ctr) {
            buf[ctrAt] = bytes1(uint8(ctr));
            x = uint256(sha256(buf));
            if (x >= P) continue;
            (ok, y) = _sqrt(_rhs(x));
            if (!ok) continue;
            if (y & 1 == 1) y = P - y;
            return (true, x, y);
        }
        return (false, 0, 0);
    }

    // -- Points ------------------------------------------------------------------------------------

    /// @dev x^3 + 7 mod P
    function _rhs(uint256 x) private pure returns (uint256) {
        return addmod(mulmod(mulmod(x, x, P), x, P), 7, P);
    }

    /// @dev SEC1 compressed point (33 bytes) -> affine; false unless prefix 0x02/0x03, x < P and x on the curve.
    function _decompress(bytes calldata data) private view returns (bool ok, uint256 x, uint256 y) {
        uint8 prefix = uint8(data[0]);
        if (prefix != 0x02 && prefix != 0x03) return (false, 0, 0);
        x = uint256(bytes32(data[1:PT_LEN]));
        if (x >= P) return (false, 0, 0);
        (ok, y) = _sqrt(_rhs(x));
        if (!ok) return (false, 0, 0);
        if (y & 1 != prefix & 1) y = P - y;
        return (true, x, y);
    }

    function _compress(uint256 x, uint256 y) private pure returns (bytes memory) {
        return abi.encodePacked(bytes1(uint8(2 + (y & 1))), x);
    }

    /// @dev (x1, y1) - (x2, y2) in affine coordinates; false if the result is the point at infinity.
    function _sub(uint256 x1, uint256 y1, uint256 x2, uint256 y2) private view returns (bool, uint256, uint256) {
        uint256 ny2 = P - y2; // -(x2, y2); y2 != 0 on secp256k1 (no point of order 2)
        uint256 lambda;
        if (x1 == x2) {
            if (y1 != ny2) return (false, 0, 0); // P1 == P2: the difference is the identity
            // P1 == -P2: doubling, lambda = 3 x1^2 / (2 y1)
            lambda = mulmod(mulmod(3, mulmod(x1, x1, P), P), _inverse(mulmod(2, y1, P)), P);
        } else {
            lambda = mulmod(addmod(ny2, P - y1, P), _inverse(addmod(x2, P - x1, P)), P);
        }
        uint256 x3 = addmod(mulmod(lambda, lambda, P), P - addmod(x1, x2, P), P);
        uint256 y3 = addmod(mulmod(lambda, addmod(x1, P - x3, P), P), P - y1, P);
        return (true, x3, y3);
    }

    // -- ecrecover as a multiplication check ------------------------------------------------------

    /// @dev ecrecover(h, v, r, s) returns the address of r^-1 (s*R - h*B), where R = (r, y of parity v - 27).
    function _address(uint256[2] calldata point) private pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked(point[0], point[1])))));
    }

    /// @dev true iff result == scalar * (px, py). With R = (px, py), h = 0, s = scalar*px: r^-1 * s * R = scalar*R.
    function _isMul(uint256 scalar, uint256 px, uint256 py, uint256[2] calldata result) private pure returns (bool) {
        if (px >= Q) return false; // ecrecover needs r < Q
        uint256 sig = mulmod(scalar, px, Q);
        if (sig == 0) return false;
        address got = ecrecover(bytes32(0), py & 1 == 0 ? 27 : 28, bytes32(px), bytes32(sig));
        return got != address(0) && got == _address(result);
    }

    /// @dev true iff result == s*B - c*(px, py). With R = (px, py), h = -s*px, sig = -c*px:
    ///      px^-1 (-c*px*R + s*px*B) = s*B - c*R.
    function _isMulSubMul(uint256 s, uint256 c, uint256 px, uint256 py, uint256[2] calldata result)
        private
        pure
        returns (bool)
    {
        if (px >= Q) return false;
        uint256 h = mulmod(Q - s, px, Q);
        uint256 sig = mulmod(Q - (c % Q), px, Q);
        if (sig == 0) return false;
        address got = ecrecover(bytes32(h), py & 1 == 0 ? 27 : 28, bytes32(px), bytes32(sig));
        return got != address(0) && got == _address(result);
    }

    // -- Field arithmetic via the modexp precompile (0x05) ------------------------------------------

    function _modexp(uint256 base, uint256 exponent) private view returns (uint256 result) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x20)
            mstore(add(m, 0x20), 0x20)
            mstore(add(m, 0x40), 0x20)
            mstore(add(m, 0x60), base)
            mstore(add(m, 0x80), exponent)
            mstore(add(m, 0xa0), P)
            if iszero(staticcall(gas(), 0x05, m, 0xc0, m, 0x20)) { revert(0, 0) }
            result := mload(m)
        }
    }

    /// @dev (true, sqrt(a)) if a is a square mod P, else (false, 0).
    function _sqrt(uint256 a) private view returns (bool, uint256) {
        uint256 y = _modexp(a, SQRT_EXP);
        if (mulmod(y, y, P) != a) return (false, 0);
        return (true, y);
    }

    /// @dev a^-1 mod P (Fermat); a != 0.
    function _inverse(uint256 a) private view returns (uint256) {
        return _modexp(a, P - 2);
    }
}
