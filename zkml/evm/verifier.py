"""Halo2 verifier contracts: generate with ezkl, compile with solc-js, deploy, verify.

Generation. ``ezkl.create_evm_verifier`` (async in ezkl 23) renders the
Solidity, writes it, and only then asks ``svm`` for a solc binary to emit the
ABI — which means a download. We run it in a child process whose HTTP(S)
proxy is a closed loopback port, so that step can never download anything;
its failure is tolerated only if the ``.sol`` was written completely (one
``Halo2Verifier*`` contract, balanced braces), and we compile the file
ourselves with the pinned solc-js.

Two flavours:

* per-circuit (``reusable=False``): ``Halo2Verifier.verifyProof(bytes proof,
  uint256[] instances) returns (bool)`` with the VK baked into the code. It
  must fit EIP-170 (24,576 bytes of runtime code); bigger circuits need
* reusable (``reusable=True``): one ``Halo2VerifierReusable`` contract plus a
  per-circuit VK artifact (VKA) from ``ezkl.create_evm_vka``: a list of
  32-byte words that is registered on the verifier (``registerVka``) and
  passed with every proof: ``verifyProof(proof, instances, bytes32[] vka)``.
  For the model registry we also store the VKA as the code of a data
  contract (a 0x00 byte then the words) so the registry can load it cheaply.

Calldata: the standard ABI encoding of ``(proof, instances)``. The proof is
``hex_proof`` of ezkl's proof JSON; instances are its ``instances`` (field
elements as 32-byte little-endian hex), flattened in column order.
``ezkl.encode_evm_calldata`` (synchronous) yields the same bytes plus 32
trailing zero bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

from zkml.errors import CircuitError, ConfigError, ProofError
from zkml.evm.chain import EIP170_LIMIT, Chain, ContractRevert, Deployment, encode_call
from zkml.evm.optimize import Optimized, optimize_verifier
from zkml.evm.solc import DEFAULT_EVM_VERSION, CompiledContract, compile_file
from zkml.util import read_json, sha256_file

#: BN254 scalar field modulus: every public instance must be below it.
BN254_R: Final[int] = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Contract names ezkl renders.
PER_CIRCUIT_CONTRACT: Final[str] = "Halo2Verifier"
REUSABLE_CONTRACT: Final[str] = "Halo2VerifierReusable"
#: solc ``runs`` for verifiers: optimise for execution (each proof is verified many times).
VERIFIER_OPTIMIZER_RUNS: Final[int] = 1_000_000
#: solc ``runs`` when the execution-tuned code would be over EIP-170.
SIZE_OPTIMIZER_RUNS: Final[int] = 200
#: Seconds ezkl may take to render a verifier.
GENERATE_TIMEOUT_S: Final[float] = 600.0

# A proxy nobody listens on: any download ezkl attempts fails at once.
_BLACKHOLE_PROXY = "http://127.0.0.1:9"

_EZKL_SCRIPT = r"""
import asyncio, json, sys
import ezkl
a = json.loads(sys.argv[1])
async def main():
    if a["what"] == "verifier":
        return await ezkl.create_evm_verifier(a["vk"], a["settings"], a["sol"], a["abi"], a["srs"], a["reusable"])
    return await ezkl.create_evm_vka(a["vk"], a["settings"], a["vka"], a["srs"])
try:
    asyncio.run(main())
    print(json.dumps({"ok": True}))
except BaseException as e:
    print(json.dumps({"ok": False, "error": str(e)}))
"""


class VerifierTooLarge(CircuitError):
    """The verifier's runtime code exceeds EIP-170; it could never be deployed."""

    def __init__(self, size: int, reusable: bool):
        hint = (
            "regenerate it with --reusable (one shared verifier + a per-circuit VK artifact)"
            if not reusable
            else "the circuit is too large even for the reusable verifier"
        )
        super().__init__(f"verifier runtime code is {size:,} bytes, over the EIP-170 limit of {EIP170_LIMIT:,}: {hint}")
        self.size: Final[int] = size


@dataclass(frozen=True)
class VerifierArtifact:
    """A generated verifier: Solidity source (and VK artifact when reusable) on disk."""

    sol_path: Path
    """The Solidity source ezkl rendered."""
    contract_name: str
    """``Halo2Verifier`` or ``Halo2VerifierReusable``."""
    reusable: bool
    """Whether this is the reusable verifier (needs :attr:`vka_path`)."""
    vka_path: Path | None
    """ezkl's VK artifact (u64 LE word count, then 32-byte words) for the reusable verifier."""
    sol_sha256: str
    """sha256 of the Solidity source."""
    vk_sha256: str
    """sha256 of the verification key it was generated from."""
    num_instances: int
    """Number of public instances a proof must carry."""
    optimizations: tuple[str, ...] = ()
    """Gas rewrites applied to ezkl's source (see :mod:`zkml.evm.optimize`)."""
    ec_muls_saved: int = 0
    """``ecMul`` calls (6,000 gas each) those rewrites remove from every verification."""


@dataclass(frozen=True)
class CompiledVerifier:
    """A verifier compiled with solc-js and checked against EIP-170."""

    artifact: VerifierArtifact
    """What was compiled."""
    contract: CompiledContract
    """The compiled contract."""
    compile_seconds: float
    """Wall time of the compile (near zero on a cache hit)."""

    @property
    def deployed_size(self) -> int:
        """Runtime code size in bytes (what EIP-170 limits)."""
        return self.contract.deployed_size


@dataclass(frozen=True)
class VerifierDeployment:
    """A verifier on chain, ready to check proofs of one circuit."""

    address: str
    """The verifier contract (for a reusable verifier: the shared contract)."""
    reusable: bool
    """Whether :attr:`address` is a reusable verifier."""
    vka_words: tuple[bytes, ...] = field(repr=False, default=())
    """The VK artifact passed with every proof (reusable only)."""
    vka_address: str | None = None
    """Data contract holding the VK artifact (reusable only; what the registry records)."""
    deploy_gas: int = 0
    """Total gas of the deployment transactions (verifier + VKA registration + data contract)."""
    deployments: tuple[Deployment, ...] = field(repr=False, default=())
    """The individual contract creations."""


class VerifyResult(NamedTuple):
    """Outcome of an on-chain verification."""

    ok: bool
    """True only if the verifier accepted the proof."""
    gas: int | None
    """Gas a transaction making this call would use (``eth_estimateGas``), None if it was refused."""


# Generation


def _run_ezkl(args: dict[str, Any]) -> dict[str, Any]:
    from zkml.keys import child_env

    env = {k: v for k, v in child_env().items() if k.lower() not in ("no_proxy",)}  # no secret reaches ezkl
    env.update(HTTP_PROXY=_BLACKHOLE_PROXY, HTTPS_PROXY=_BLACKHOLE_PROXY, ALL_PROXY=_BLACKHOLE_PROXY,
               http_proxy=_BLACKHOLE_PROXY, https_proxy=_BLACKHOLE_PROXY, all_proxy=_BLACKHOLE_PROXY)
    try:
        proc = subprocess.run([sys.executable, "-c", _EZKL_SCRIPT, json.dumps(args)], capture_output=True,
                              timeout=GENERATE_TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired as e:
        raise CircuitError(f"ezkl did not render the verifier within {GENERATE_TIMEOUT_S:.0f}s") from e
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        tail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CircuitError(f"ezkl crashed while rendering the verifier: {tail[-1] if tail else proc.returncode}") from None


def _sol_is_complete(path: Path, contract_name: str) -> bool:
    """A rendered verifier is complete if it declares the contract once and its braces balance."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    body = text.rstrip()
    return (
        text.count(f"contract {contract_name}") == 1
        and body.endswith("}")
        and body.count("{") == body.count("}")
    )


def _settings_instances(settings_path: Path) -> int:
    try:
        settings = read_json(settings_path)
        shapes = settings["model_instance_shapes"]
        total = 0
        for shape in shapes:
            n = 1
            for d in shape:
                n *= int(d)
            total += n
        hashed = settings.get("module_sizes", {}).get("poseidon", [0, [0]])[1]
        return total + sum(int(x) for x in hashed)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ConfigError(f"cannot read circuit settings {settings_path}: {e}") from e


def generate_verifier(
    vk_path: str | os.PathLike[str],
    settings_path: str | os.PathLike[str],
    srs_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    reusable: bool = False,
    *,
    optimize: bool = True,
) -> VerifierArtifact:
    """Render the Solidity verifier for a circuit (and its VK artifact when ``reusable``).

    Writes ``Halo2Verifier.sol`` (or ``Halo2VerifierReusable.sol`` + ``vka.bin``)
    into ``out_dir``; nothing is downloaded. With ``optimize`` (the default), a
    per-circuit verifier gets the exact gas rewrites of :mod:`zkml.evm.optimize`.

    Raises:
        ConfigError: an input file is missing or the settings are unreadable.
        CircuitError: ezkl failed or wrote an incomplete contract.
    """
    vk, settings, srs = Path(vk_path), Path(settings_path), Path(srs_path)
    for what, p in (("verification key", vk), ("settings", settings), ("SRS", srs)):
        if not p.is_file():
            raise ConfigError(f"{what} not found: {p}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = REUSABLE_CONTRACT if reusable else PER_CIRCUIT_CONTRACT
    sol = out / f"{name}.sol"
    tmp_sol = out / f".{name}.{os.getpid()}.sol.tmp"
    tmp_abi = out / f".{name}.{os.getpid()}.abi.tmp"
    opt: Optimized | None = None
    try:
        res = _run_ezkl({"what": "verifier", "vk": str(vk), "settings": str(settings), "srs": str(srs),
                         "sol": str(tmp_sol), "abi": str(tmp_abi), "reusable": reusable})
        if not res.get("ok"):
            err = str(res.get("error", "unknown error"))
            # The ABI step needs a native solc from svm; offline it fails after the .sol is written.
            abi_step = "svm" in err or "solc" in err.lower()
            if not (abi_step and _sol_is_complete(tmp_sol, name)):
                raise CircuitError(f"ezkl could not generate the verifier: {err}")
        elif not _sol_is_complete(tmp_sol, name):
            raise CircuitError(f"ezkl wrote an incomplete verifier ({tmp_sol.name})")
        if optimize and not reusable:
            opt = optimize_verifier(tmp_sol.read_text())
            if opt.applied:
                tmp_sol.write_text(opt.source)
        os.replace(tmp_sol, sol)
    finally:
        tmp_sol.unlink(missing_ok=True)
        tmp_abi.unlink(missing_ok=True)

    vka: Path | None = None
    if reusable:
        vka = out / "vka.bin"
        tmp_vka = out / f".vka.{os.getpid()}.tmp"
        try:
            res = _run_ezkl({"what": "vka", "vk": str(vk), "settings": str(settings), "srs": str(srs),
                             "vka": str(tmp_vka)})
            if not res.get("ok"):
                raise CircuitError(f"ezkl could not generate the VK artifact: {res.get('error', 'unknown error')}")
            load_vka_words(tmp_vka)  # validates the format
            os.replace(tmp_vka, vka)
        finally:
            tmp_vka.unlink(missing_ok=True)

    return VerifierArtifact(
        sol_path=sol,
        contract_name=name,
        reusable=reusable,
        vka_path=vka,
        sol_sha256=sha256_file(sol),
        vk_sha256=sha256_file(vk),
        num_instances=_settings_instances(settings),
        optimizations=opt.applied if opt else (),
        ec_muls_saved=opt.ec_muls_saved if opt else 0,
    )


def load_vka_words(vka_path: str | os.PathLike[str]) -> tuple[bytes, ...]:
    """The 32-byte words of an ezkl VK artifact file (bincode: u64 LE count, then the words).

    Raises:
        ConfigError: the file is missing or not in that format.
    """
    try:
        data = Path(vka_path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read VK artifact {vka_path}: {e.strerror or e}") from e
    if len(data) < 8:
        raise ConfigError(f"VK artifact {vka_path} is truncated")
    n = int.from_bytes(data[:8], "little")
    if n == 0 or len(data) != 8 + 32 * n:
        raise ConfigError(f"VK artifact {vka_path} is malformed ({len(data)} bytes for {n} words)")
    return tuple(data[8 + 32 * i : 8 + 32 * (i + 1)] for i in range(n))


# Compilation


def compile_verifier(
    artifact: VerifierArtifact,
    *,
    evm_version: str = DEFAULT_EVM_VERSION,
    optimizer_runs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    check_size: bool = True,
) -> CompiledVerifier:
    """Compile a generated verifier with solc-js and check it against EIP-170.

    By default the optimizer is tuned for execution (``runs`` =
    :data:`VERIFIER_OPTIMIZER_RUNS`: ~2-3% less verify gas, ~40% more code);
    if that code is over EIP-170 it is compiled again for size (``runs`` = 200).

    Raises:
        VerifierTooLarge: runtime code over 24,576 bytes (suggests ``--reusable``).
        ToolError / SolcError: solc-js is missing or the source does not compile.
    """
    started = time.monotonic()
    runs = optimizer_runs if optimizer_runs is not None else VERIFIER_OPTIMIZER_RUNS
    contract = compile_file(artifact.sol_path, artifact.contract_name, evm_version=evm_version,
                            optimizer_runs=runs, cache_dir=cache_dir)
    if optimizer_runs is None and contract.deployed_size > EIP170_LIMIT:
        contract = compile_file(artifact.sol_path, artifact.contract_name, evm_version=evm_version,
                                optimizer_runs=SIZE_OPTIMIZER_RUNS, cache_dir=cache_dir)
    seconds = time.monotonic() - started
    if check_size and contract.deployed_size > EIP170_LIMIT:
        raise VerifierTooLarge(contract.deployed_size, artifact.reusable)
    return CompiledVerifier(artifact, contract, seconds)


# Deployment


def deploy_verifier(chain: Chain, compiled: CompiledVerifier, *, shared_verifier: str | None = None) -> VerifierDeployment:
    """Deploy a verifier; for a reusable one also register its VKA and store it as a data contract.

    ``shared_verifier`` reuses an already deployed ``Halo2VerifierReusable``
    (the point of the reusable flavour) instead of deploying another.

    Raises:
        VerifierTooLarge: the code is over EIP-170 (checked before sending).
        ChainError / ContractRevert / InsufficientFunds: the transactions failed.
    """
    contract = compiled.contract
    if contract.deployed_size > EIP170_LIMIT:
        raise VerifierTooLarge(contract.deployed_size, compiled.artifact.reusable)
    if not compiled.artifact.reusable:
        dep = chain.deploy(contract)
        return VerifierDeployment(address=dep.address, reusable=False, deploy_gas=dep.gas_used, deployments=(dep,))

    assert compiled.artifact.vka_path is not None
    words = load_vka_words(compiled.artifact.vka_path)
    deployments: list[Deployment] = []
    gas = 0
    if shared_verifier is None:
        dep = chain.deploy(contract)
        deployments.append(dep)
        gas += dep.gas_used
        address = dep.address
    else:
        address = chain.at(contract, shared_verifier).address
    handle = chain.at(contract, address)
    reg = handle.transact("registerVka", list(words))
    gas += reg.gas_used
    data = chain.deploy_code(b"\x00" + b"".join(words))
    deployments.append(data)
    gas += data.gas_used
    return VerifierDeployment(address=address, reusable=True, vka_words=words, vka_address=data.address,
                              deploy_gas=gas, deployments=tuple(deployments))


# Proofs and verification


def read_proof(proof_json: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[bytes, list[int]]:
    """``(proof bytes, instances)`` from an ezkl proof JSON (path or parsed dict).

    Raises:
        ProofError: the proof file is missing or malformed, or an instance is
            not a BN254 field element.
    """
    if isinstance(proof_json, Mapping):
        data: Any = proof_json
    else:
        try:
            data = read_json(proof_json)
        except (OSError, ValueError) as e:
            raise ProofError(f"cannot read proof {proof_json}: {e}") from e
    try:
        hex_proof = str(data["hex_proof"]) if data.get("hex_proof") else "0x" + bytes(data["proof"]).hex()
        proof = bytes.fromhex(hex_proof.removeprefix("0x"))
        instances = [felt_to_int(x) for column in data["instances"] for x in column]
    except (KeyError, TypeError, ValueError) as e:
        raise ProofError(f"malformed proof JSON: {e}") from e
    if not proof:
        raise ProofError("the proof is empty")
    return proof, instances


def felt_to_int(felt: str | int) -> int:
    """An ezkl field element (32-byte little-endian hex, as in proof JSON) as an integer.

    Raises:
        ValueError: not 32 bytes of hex, or not below the BN254 modulus.
    """
    if isinstance(felt, int):
        value = felt
    else:
        raw = bytes.fromhex(felt.removeprefix("0x"))
        if len(raw) != 32:
            raise ValueError(f"field element {felt!r} is not 32 bytes")
        value = int.from_bytes(raw, "little")
    if not 0 <= value < BN254_R:
        raise ValueError("instance is not a BN254 field element")
    return value


def verify_calldata(proof: bytes, instances: Sequence[int], vka_words: Sequence[bytes] = ()) -> bytes:
    """ABI calldata for ``verifyProof`` (with the VKA for the reusable verifier)."""
    if vka_words:
        return encode_call(_REUSABLE_ABI, "verifyProof", proof, list(instances), list(vka_words))
    return encode_call(_PER_CIRCUIT_ABI, "verifyProof", proof, list(instances))


def verify_onchain(
    chain: Chain,
    address: str | VerifierDeployment,
    proof_json: str | os.PathLike[str] | Mapping[str, Any],
    *,
    vka_words: Sequence[bytes] = (),
) -> VerifyResult:
    """Check a proof against a deployed verifier with ``eth_call``; gas by ``eth_estimateGas``.

    ``address`` may be a :class:`VerifierDeployment` (its VKA is used for a
    reusable verifier) or a plain address (then pass ``vka_words`` for a
    reusable verifier).

    A verifier that reverts or returns false yields ``VerifyResult(False, None)``:
    a bad proof is a verdict, not an error.

    Raises:
        ChainError: RPC failure, or no contract at ``address``.
        ProofError: the proof JSON is malformed.
    """
    if isinstance(address, VerifierDeployment):
        vka_words = vka_words or address.vka_words
        address = address.address
    chain.require_code(address, "verifier")
    proof, instances = read_proof(proof_json)
    data = verify_calldata(proof, instances, vka_words)
    try:
        ret = chain.call_raw(address, data)
    except ContractRevert:
        return VerifyResult(False, None)
    # Both flavours return the verdict as the first word (the reusable one's tail is not ABI-encoded).
    if len(ret) < 32 or int.from_bytes(ret[:32], "big") != 1:
        return VerifyResult(False, None)
    try:
        gas = chain.estimate_gas_raw(address, data)
    except ContractRevert:
        return VerifyResult(False, None)
    return VerifyResult(True, gas)


_PER_CIRCUIT_ABI: Final[list[dict[str, Any]]] = [
    {
        "type": "function",
        "name": "verifyProof",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "proof", "type": "bytes"}, {"name": "instances", "type": "uint256[]"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
_REUSABLE_ABI: Final[list[dict[str, Any]]] = [
    {
        "type": "function",
        "name": "verifyProof",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "proof", "type": "bytes"},
            {"name": "instances", "type": "uint256[]"},
            {"name": "vka", "type": "bytes32[]"},
        ],
        "outputs": [{"name": "success", "type": "bool"}],
    }
]


__all__ = [
    "EIP170_LIMIT",
    "CompiledVerifier",
    "VerifierArtifact",
    "VerifierDeployment",
    "VerifierTooLarge",
    "VerifyResult",
    "compile_verifier",
    "deploy_verifier",
    "felt_to_int",
    "generate_verifier",
    "load_vka_words",
    "read_proof",
    "verify_calldata",
    "verify_onchain",
]
