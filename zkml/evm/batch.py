"""Batch verification on chain: many proofs of one circuit, one pairing check.

A Halo2/KZG proof's verifier ends in one pairing check (113k gas), and every
transaction pays 21k of intrinsic gas. ``Halo2VerifierDeferred`` (the
circuit's verifier with the pairing cut off, :func:`zkml.evm.optimize.defer_pairing`)
does all the other work for one proof and returns the pairing's two G1
inputs; ``verifiers/Halo2BatchVerifier.sol`` combines n proofs' inputs with
random weights and pairs once. Proofs stay independent: each is a normal
single proof (e.g. one inference each, from different users); only their
check is shared. A batch is valid only if every proof in it is.

Gas for the on-chain digits MLP recipe is in the README (``benches/bench_gas.py
--batch-verify``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from zkml.errors import ConfigError
from zkml.evm.chain import Chain, ContractRevert, encode_call
from zkml.evm.optimize import DEFERRED_CONTRACT, defer_pairing
from zkml.evm.solc import DEFAULT_EVM_VERSION, CompiledContract, compile_file
from zkml.evm.verifier import EIP170_LIMIT, VerifierArtifact, VerifierTooLarge, read_proof

#: Our batch verifier's source.
SOURCE_PATH: Final[Path] = Path(__file__).resolve().parents[2] / "verifiers" / "Halo2BatchVerifier.sol"
CONTRACT_NAME: Final[str] = "Halo2BatchVerifier"
#: solc ``runs`` for the deferred verifier (as for verifiers: execution first, size fallback).
_RUNS: Final[tuple[int, int]] = (1_000_000, 200)


@dataclass(frozen=True)
class BatchDeployment:
    """A deployed deferred verifier and the batch verifier that pairs for it."""

    deferred: str
    """``Halo2VerifierDeferred`` of one circuit."""
    batch_verifier: str
    """``Halo2BatchVerifier`` (shared by every circuit)."""
    deploy_gas: int
    """Gas of the deployments made here."""
    deferred_size: int
    """Runtime code bytes of the deferred verifier."""


def generate_deferred(artifact: VerifierArtifact, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``Halo2VerifierDeferred.sol`` for a per-circuit verifier (atomically).

    Raises:
        ConfigError: ``artifact`` is a reusable verifier (no per-circuit code to cut).
        TemplateMismatch: the source is not ezkl 23's per-circuit template.
    """
    if artifact.reusable:
        raise ConfigError("batch verification needs the per-circuit verifier, not the reusable one")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sol = out / f"{DEFERRED_CONTRACT}.sol"
    tmp = out / f".{DEFERRED_CONTRACT}.{os.getpid()}.tmp"
    try:
        tmp.write_text(defer_pairing(artifact.sol_path.read_text()))
        os.replace(tmp, sol)
    finally:
        tmp.unlink(missing_ok=True)
    return sol


def compile_deferred(sol: Path, *, evm_version: str = DEFAULT_EVM_VERSION,
                     cache_dir: str | os.PathLike[str] | None = None) -> CompiledContract:
    """Compile the deferred verifier (execution-tuned unless that is over EIP-170).

    Raises:
        VerifierTooLarge: over EIP-170 even when compiled for size.
    """
    for runs in _RUNS:
        c = compile_file(sol, DEFERRED_CONTRACT, evm_version=evm_version, optimizer_runs=runs, cache_dir=cache_dir)
        if c.deployed_size <= EIP170_LIMIT:
            return c
    raise VerifierTooLarge(c.deployed_size, False)


def compile_batch_verifier(**kwargs: Any) -> CompiledContract:
    """Compile ``Halo2BatchVerifier`` (keyword arguments go to ``compile_file``)."""
    return compile_file(SOURCE_PATH, CONTRACT_NAME, **kwargs)


def deploy_batch(chain: Chain, artifact: VerifierArtifact, out_dir: str | os.PathLike[str], *,
                 batch_verifier: str | None = None, evm_version: str = DEFAULT_EVM_VERSION,
                 cache_dir: str | os.PathLike[str] | None = None) -> BatchDeployment:
    """Deploy a circuit's deferred verifier, and a batch verifier unless ``batch_verifier`` is given.

    Raises:
        ConfigError / TemplateMismatch / VerifierTooLarge: see :func:`generate_deferred`, :func:`compile_deferred`.
        ChainError: a deployment failed.
    """
    deferred = compile_deferred(generate_deferred(artifact, out_dir), evm_version=evm_version, cache_dir=cache_dir)
    d = chain.deploy(deferred)
    gas = d.gas_used
    if batch_verifier is None:
        b = chain.deploy(compile_batch_verifier(evm_version=evm_version, cache_dir=cache_dir))
        batch_verifier, gas = b.address, gas + b.gas_used
    else:
        chain.require_code(batch_verifier, "batch verifier")
    return BatchDeployment(deferred=d.address, batch_verifier=batch_verifier, deploy_gas=gas,
                           deferred_size=deferred.deployed_size)


_ABI: Final[list[dict[str, Any]]] = [{
    "type": "function", "name": "verifyBatch", "stateMutability": "view",
    "inputs": [{"name": "deferred", "type": "address"}, {"name": "proofs", "type": "bytes[]"},
               {"name": "instances", "type": "uint256[][]"}],
    "outputs": [{"name": "", "type": "bool"}],
}]


def batch_calldata(deferred: str, proofs: Sequence[str | os.PathLike[str] | Mapping[str, Any]]) -> bytes:
    """ABI calldata of ``verifyBatch(deferred, proofs, instances)`` for ezkl proof JSONs.

    Raises:
        ProofError: a proof JSON is malformed.
    """
    parsed = [read_proof(p) for p in proofs]
    return encode_call(_ABI, "verifyBatch", deferred, [p for p, _ in parsed], [list(i) for _, i in parsed])


def verify_batch_onchain(chain: Chain, deployment: BatchDeployment,
                         proofs: Sequence[str | os.PathLike[str] | Mapping[str, Any]]) -> tuple[bool, int | None]:
    """Check ``proofs`` together with one ``eth_call``; gas by ``eth_estimateGas`` when valid.

    Raises:
        ChainError: RPC failure or no contract at an address.
        ProofError: a proof JSON is malformed.
    """
    if not proofs:
        raise ConfigError("a batch needs at least one proof")
    chain.require_code(deployment.deferred, "deferred verifier")
    data = batch_calldata(deployment.deferred, proofs)
    try:
        ret = chain.call_raw(deployment.batch_verifier, data)
    except ContractRevert:
        return False, None
    if len(ret) < 32 or int.from_bytes(ret[:32], "big") != 1:
        return False, None
    return True, chain.estimate_gas_raw(deployment.batch_verifier, data)
