// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The deferred-pairing variant of an ezkl Halo2 verifier (zkml.evm.optimize.defer_pairing):
///         runs every check of verifyProof except the final pairing, reverts on any failure, and
///         returns the pairing inputs [lhs.x, lhs.y, rhs.x, rhs.y, g2 (4 words), -s*g2 (4 words)].
interface IHalo2VerifierDeferred {
    function deferredPairing(bytes calldata proof, uint256[] calldata instances) external returns (uint256[12] memory);
}

/// @title Halo2Batch
/// @notice Verifies many proofs of one circuit with a single pairing check (internal: used by
///         ModelRegistry.verifyBatch and by the standalone Halo2BatchVerifier below).
/// @dev A Halo2/KZG (SHPLONK) proof is valid iff e(lhs, g2) * e(rhs, -s*g2) == 1 for the two G1 points
///      its verifier derives. For n proofs with derived (lhs_i, rhs_i) this contract checks
///      e(sum r_i*lhs_i, g2) * e(sum r_i*rhs_i, -s*g2) == 1 with r_0 = 1 and r_i = keccak256(seed, i) mod R,
///      where seed hashes every derived point: an invalid proof passes only if the random combination
///      cancels, which happens with probability about n/R (R ~ 2^254). The pairing (113k gas) and the
///      transaction's intrinsic cost are paid once; each further proof costs its verifier's work minus
///      the pairing, plus two ecMul and two ecAdd.
library Halo2Batch {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice No proofs, or proofs and instance lists of different lengths.
    error BatchShapeMismatch(uint256 proofs, uint256 instanceLists);
    /// @notice Proof `index` fails its verifier's checks.
    error BatchProofInvalid(uint256 index);
    /// @notice A point of the combination is not on the curve, or the combined pairing check fails.
    error BatchPairingFailed();

    /// @notice True iff every proof verifies against `deferred` with its instances; reverts otherwise.
    /// @dev Reverting (as ezkl's verifiers do) rather than returning false keeps eth_estimateGas honest:
    ///      an inner call starved of gas must not look like a cheap verdict.
    function verify(address deferred, bytes[] calldata proofs, uint256[][] calldata instances)
        internal
        view
        returns (bool)
    {
        uint256 n = proofs.length;
        if (n == 0 || n != instances.length) revert BatchShapeMismatch(n, instances.length);
        uint256[4][] memory pts = new uint256[4][](n);
        uint256[8] memory g2;
        for (uint256 i = 0; i < n; ) {
            (bool ok, bytes memory ret) =
                deferred.staticcall(abi.encodeCall(IHalo2VerifierDeferred.deferredPairing, (proofs[i], instances[i])));
            if (!ok || ret.length != 384) revert BatchProofInvalid(i);
            uint256[12] memory w = abi.decode(ret, (uint256[12]));
            // A real proof never derives the point at infinity; a stub "verifier" returning zeros would.
            if ((w[0] | w[1]) == 0 || (w[2] | w[3]) == 0) revert BatchProofInvalid(i);
            pts[i] = [w[0], w[1], w[2], w[3]];
            // g2 and -s*g2 are constants of the one deferred verifier: the first proof's copy serves all.
            if (i == 0) g2 = [w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11]];
            unchecked {
                ++i;
            }
        }
        bytes32 seed = keccak256(abi.encode(pts));
        uint256[2] memory lhs = [pts[0][0], pts[0][1]];
        uint256[2] memory rhs = [pts[0][2], pts[0][3]];
        for (uint256 i = 1; i < n; ) {
            uint256 r = uint256(keccak256(abi.encode(seed, i))) % R;
            bool ok;
            (ok, lhs) = _mulAdd(lhs, pts[i][0], pts[i][1], r);
            if (!ok) revert BatchPairingFailed();
            (ok, rhs) = _mulAdd(rhs, pts[i][2], pts[i][3], r);
            if (!ok) revert BatchPairingFailed();
            unchecked {
                ++i;
            }
        }
        if (!_pairing(lhs, rhs, g2)) revert BatchPairingFailed();
        return true;
    }

    /// @notice Whether `deferred` accepts one proof, its pairing done here; never reverts (false instead).
    /// Used by ModelRegistry.challengeDeferred to compare a deferred verifier with its full verifier.
    function accepts(address deferred, bytes calldata proof, uint256[] calldata instances)
        internal
        view
        returns (bool)
    {
        (bool ok, bytes memory ret) =
            deferred.staticcall(abi.encodeCall(IHalo2VerifierDeferred.deferredPairing, (proof, instances)));
        if (!ok || ret.length != 384) return false;
        uint256[12] memory w = abi.decode(ret, (uint256[12]));
        return _pairing([w[0], w[1]], [w[2], w[3]], [w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11]]);
    }

    /// @dev acc + r * (x, y) with the ecMul (0x07) and ecAdd (0x06) precompiles.
    function _mulAdd(uint256[2] memory acc, uint256 x, uint256 y, uint256 r)
        private
        view
        returns (bool ok, uint256[2] memory out)
    {
        uint256[3] memory mulIn = [x, y, r];
        uint256[2] memory prod;
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x07, mulIn, 0x60, prod, 0x40)
        }
        if (!ok) return (false, out);
        uint256[4] memory addIn = [acc[0], acc[1], prod[0], prod[1]];
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x06, addIn, 0x80, out, 0x40)
        }
    }

    /// @dev e(lhs, g2) * e(rhs, -s*g2) == 1 with the pairing precompile (0x08).
    function _pairing(uint256[2] memory lhs, uint256[2] memory rhs, uint256[8] memory g2) private view returns (bool) {
        uint256[12] memory input =
            [lhs[0], lhs[1], g2[0], g2[1], g2[2], g2[3], rhs[0], rhs[1], g2[4], g2[5], g2[6], g2[7]];
        uint256[1] memory result;
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x08, input, 0x180, result, 0x20)
        }
        return ok && result[0] == 1;
    }
}

/// @title Halo2BatchVerifier
/// @notice Standalone batch verification against any deferred verifier (no registry checks).
contract Halo2BatchVerifier {
    /// @notice True iff every proof verifies against `deferred` with its instances; reverts otherwise.
    function verifyBatch(address deferred, bytes[] calldata proofs, uint256[][] calldata instances)
        external
        view
        returns (bool)
    {
        return Halo2Batch.verify(deferred, proofs, instances);
    }
}
