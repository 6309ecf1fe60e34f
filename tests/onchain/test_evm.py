"""On-chain foundation: solc-js, anvil, the chain client, Halo2 verifiers — against a real anvil."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import ezkl
import pytest
from chainkit import Circuit, World
from eth_account import Account
from typer.testing import CliRunner

from zkml.errors import ChainError, CircuitError, ConfigError, ProofError, ToolError
from zkml.evm.anvil import ANVIL_DEV_KEY, Anvil, chain_status, free_port
from zkml.evm.chain import Chain, ContractRevert, InsufficientFunds, connect, load_private_key
from zkml.evm.registry import Registry, compile_registry
from zkml.evm.solc import SolcError, compile_file, compile_sources
from zkml.evm.verifier import (
    BN254_R,
    EIP170_LIMIT,
    VerifierArtifact,
    VerifierTooLarge,
    compile_verifier,
    deploy_verifier,
    generate_verifier,
    read_proof,
    verify_calldata,
    verify_onchain,
)
from zkml_cli.chain import app as chain_app

PUSH0 = 0x5F


def opcodes(code: bytes) -> list[int]:
    """Opcodes of EVM bytecode, skipping PUSH immediates."""
    out, i = [], 0
    while i < len(code):
        op = code[i]
        out.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return out


# solc-js


@pytest.mark.parametrize(("evm_version", "has_push0"), [("cancun", True), ("paris", False)])
def test_registry_compiles_for_both_evm_versions(evm_version: str, has_push0: bool, tmp_path: Path) -> None:
    c = compile_registry(evm_version=evm_version, cache_dir=tmp_path)
    assert c.evm_version == evm_version
    assert c.solc_version.startswith("0.8.37")
    assert 0 < c.deployed_size < EIP170_LIMIT
    # Only the runtime part before the CBOR metadata is code; PUSH0 must be absent for paris.
    assert (PUSH0 in opcodes(c.deployed_bytecode[: -2 - int.from_bytes(c.deployed_bytecode[-2:], "big")])) is has_push0
    assert any(e.get("name") == "verifyAndRecord" for e in c.abi)


def test_compile_error_reports_first_error_in_one_line() -> None:
    with pytest.raises(SolcError) as e:
        compile_sources({"Bad.sol": "pragma solidity ^0.8.0; contract Bad { function f() public { y = 1; } }"})
    assert "Undeclared identifier" in e.value.message
    assert "Bad.sol" in e.value.message
    assert "\n" not in e.value.message


def test_unknown_evm_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown evm version"):
        compile_sources({"A.sol": "contract A {}"}, evm_version="homer")


def test_missing_node_modules_says_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZKML_NODE_MODULES", str(tmp_path))
    with pytest.raises(ToolError, match="npm ci"):
        compile_sources({"A.sol": "contract A {}"})


def test_missing_node_is_a_tool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolError, match="node not found"):
        compile_sources({"A.sol": "contract A {}"})


def test_compile_cache_hits_and_notices_changed_imports(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Lib.sol").write_text("pragma solidity ^0.8.0; library Lib { function v() internal pure returns (uint) { return 1; } }")
    (src / "Main.sol").write_text(
        'pragma solidity ^0.8.0; import "./Lib.sol"; contract Main { function v() external pure returns (uint) { return Lib.v(); } }'
    )
    cache = tmp_path / "cache"
    first = compile_file(src / "Main.sol", "Main", cache_dir=cache)
    again = compile_sources({"Main.sol": (src / "Main.sol").read_text()}, import_roots=[src], cache_dir=cache)
    assert again.cached and again.contracts["Main"].deployed_bytecode == first.deployed_bytecode
    (src / "Lib.sol").write_text("pragma solidity ^0.8.0; library Lib { function v() internal pure returns (uint) { return 2; } }")
    changed = compile_sources({"Main.sol": (src / "Main.sol").read_text()}, import_roots=[src], cache_dir=cache)
    assert not changed.cached
    assert changed.contracts["Main"].deployed_bytecode != first.deployed_bytecode


def test_imports_cannot_escape_the_roots(tmp_path: Path) -> None:
    (tmp_path / "secret.sol").write_text("contract Secret {}")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "A.sol").write_text('import "../secret.sol"; contract A {}')
    with pytest.raises(SolcError, match="not found"):
        compile_file(inner / "A.sol", "A")


# anvil


def test_anvil_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    c = compile_sources({"K.sol": "pragma solidity ^0.8.0; contract K { uint public x = 42; }"}).contracts["K"]
    with Anvil.start(state_path=state) as node:
        addr = connect(node.rpc_url, allow_dev_key=True).deploy(c).address
    assert state.is_file()
    with Anvil.start(state_path=state) as node:
        assert connect(node.rpc_url).at(c, addr).call("x") == 42


def test_missing_anvil_says_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZKML_ANVIL", str(tmp_path / "anvil"))
    with pytest.raises(ToolError, match="anvil not found"):
        Anvil.start()


def test_chain_cli_up_status_down(tmp_path: Path) -> None:
    store = tmp_path / "store"
    runner = CliRunner()
    try:
        up = runner.invoke(chain_app, ["up", "--store", str(store), "--json"])
        assert up.exit_code == 0, up.output
        info = json.loads(up.output)
        again = runner.invoke(chain_app, ["up", "--store", str(store), "--json"])
        assert json.loads(again.output)["pid"] == info["pid"]
        st = runner.invoke(chain_app, ["status", "--store", str(store), "--json"])
        assert st.exit_code == 0 and json.loads(st.output)["state"] == "running"
        # Something deployed before `down` is there after the next `up`.
        c = compile_sources({"K.sol": "pragma solidity ^0.8.0; contract K { uint public x = 7; }"}).contracts["K"]
        addr = connect(info["rpc_url"], allow_dev_key=True).deploy(c).address
        down = runner.invoke(chain_app, ["down", "--store", str(store)])
        assert down.exit_code == 0 and "state saved" in down.output
        st = runner.invoke(chain_app, ["status", "--store", str(store)])
        assert st.exit_code == 1 and "stopped" in st.output
        up = runner.invoke(chain_app, ["up", "--store", str(store), "--json"])
        assert connect(json.loads(up.output)["rpc_url"]).at(c, addr).call("x") == 7
    finally:
        runner.invoke(chain_app, ["down", "--store", str(store)])
    assert not chain_status(store).running
    assert "not running" in runner.invoke(chain_app, ["down", "--store", str(store)]).output


# chain client


def test_dead_rpc_is_one_line_chain_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ChainError) as e:
        connect(url)
    assert str(e.value) == f"cannot reach RPC at {url}"
    assert time.monotonic() - started < 5


def test_wrong_chain_id(chain: Chain) -> None:
    with pytest.raises(ChainError, match="wrong chain id"):
        connect(chain.rpc_url, expected_chain_id=1)


def test_contract_not_deployed_is_clear(chain: Chain, circuits: dict[str, Circuit]) -> None:
    nowhere = "0x" + "42" * 20
    with pytest.raises(ChainError, match="not deployed: no code at"):
        verify_onchain(chain, nowhere, circuits["a"].proof)
    with pytest.raises(ChainError, match="registry not deployed"):
        Registry.at(chain, nowhere)


def test_read_only_chain_cannot_send(chain: Chain, world: World) -> None:
    ro = connect(chain.rpc_url)
    assert ro.sender is None
    with pytest.raises(ChainError, match="no private key"):
        ro.at(world.verifiers["a"].contract, world.deployments["a"].address).transact("verifyProof", b"", [])


def test_dev_key_only_for_local_anvil(chain: Chain) -> None:
    assert connect(chain.rpc_url, allow_dev_key=True).sender is not None
    assert connect(chain.rpc_url).sender is None


def test_key_never_appears_in_repr_logs_or_errors(chain: Chain, world: World, caplog: pytest.LogCaptureFixture,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    poor = Account.create()
    key_hex = poor.key.hex().removeprefix("0x")
    key_file = tmp_path / "key"
    key_file.write_text("0x" + key_hex + "\n")
    key = load_private_key(key_file)
    c = connect(chain.rpc_url, key)
    assert c.sender == poor.address
    verifier = c.at(world.verifiers["a"].contract, world.deployments["a"].address)
    with pytest.raises(InsufficientFunds) as e:
        verifier.transact("verifyProof", *read_proof(world.circuits["a"].proof))
    assert poor.address in str(e.value)
    # A funded send with the dev key, with web3 debug logging on.
    dev = connect(chain.rpc_url, ANVIL_DEV_KEY)
    dev.at(world.verifiers["a"].contract, world.deployments["a"].address).transact(
        "verifyProof", *read_proof(world.circuits["a"].proof))
    bad = tmp_path / "bad"
    bad.write_text(key_hex[:-2] + "zz")
    with pytest.raises(ConfigError) as bad_err:
        load_private_key(bad)
    monkeypatch.setenv("ZKML_PRIVATE_KEY", key_hex)
    assert load_private_key() == "0x" + key_hex
    for text in (repr(c), str(c), str(e.value), caplog.text, str(bad_err.value), repr(dev), caplog.text):
        for secret in (key_hex, ANVIL_DEV_KEY.removeprefix("0x"), key_hex[:-2]):
            assert secret not in text.lower()
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(c)


def test_eip170_is_enforced(chain: Chain, tmp_path: Path) -> None:
    blob = "ab" * (EIP170_LIMIT + 100)
    sol = tmp_path / "Halo2Verifier.sol"
    sol.write_text(
        "pragma solidity ^0.8.0; contract Halo2Verifier {"
        f' function blob() external pure returns (bytes memory) {{ return hex"{blob}"; }} }}'
    )
    art = VerifierArtifact(sol_path=sol, contract_name="Halo2Verifier", reusable=False, vka_path=None,
                           sol_sha256="", vk_sha256="", num_instances=0)
    with pytest.raises(VerifierTooLarge, match="--reusable"):
        compile_verifier(art)
    big = compile_verifier(art, check_size=False)
    assert big.deployed_size > EIP170_LIMIT
    with pytest.raises(ChainError, match="over the EIP-170 limit"):
        chain.deploy(big.contract)
    # Our anvil runs without --code-size-limit: the node itself refuses the creation.
    with pytest.raises(ChainError, match="CreateContractSizeLimit"):
        chain.send_raw(None, big.contract.bytecode)
    with pytest.raises(ContractRevert, match="transaction 0x[0-9a-f]+ failed: .*CreateContractSizeLimit"):
        chain.send_raw(None, big.contract.bytecode, gas=15_000_000)


# Halo2 verifiers


def test_valid_proof_is_accepted_with_gas(chain: Chain, world: World) -> None:
    cv, dep = world.verifiers["a"], world.deployments["a"]
    assert cv.deployed_size < EIP170_LIMIT
    assert 1_000_000 < dep.deploy_gas < 10_000_000
    ok, gas = verify_onchain(chain, dep, world.circuits["a"].proof)
    assert ok
    assert gas is not None and 200_000 < gas < 2_000_000


def test_our_calldata_matches_ezkl(world: World, tmp_path: Path) -> None:
    proof, instances = read_proof(world.circuits["a"].proof)
    ezkl_calldata = bytes(ezkl.encode_evm_calldata(str(world.circuits["a"].proof), str(tmp_path / "cd"), None))
    ours = verify_calldata(proof, instances)
    # ezkl appends one zero word; everything the verifier reads is identical.
    assert ezkl_calldata[: len(ours)] == ours
    assert set(ezkl_calldata[len(ours):]) <= {0}


def test_generated_artifact_describes_the_circuit(world: World) -> None:
    art = world.verifiers["a"].artifact
    assert art.sol_path.is_file() and art.sol_path.read_text().rstrip().endswith("}")
    assert art.num_instances == len(read_proof(world.circuits["a"].proof)[1]) == 7
    assert world.verifiers["h"].artifact.num_instances == 8


def test_generate_verifier_failures(world: World, tmp_path: Path) -> None:
    a = world.circuits["a"]
    with pytest.raises(ConfigError, match="verification key not found"):
        generate_verifier(tmp_path / "none.key", a.settings, a.srs, tmp_path / "out")
    garbage = tmp_path / "vk.key"
    garbage.write_bytes(b"not a key")
    with pytest.raises(CircuitError, match="ezkl could not generate the verifier"):
        generate_verifier(garbage, a.settings, a.srs, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.sol"))  # nothing half-written is left behind


def _flip(proof: dict[str, Any], where: str) -> dict[str, Any]:
    raw = bytearray(bytes.fromhex(proof["hex_proof"][2:]))
    i = {"first": 0, "middle": len(raw) // 2, "last": len(raw) - 1}[where]
    raw[i] ^= 0x01
    return {**proof, "hex_proof": "0x" + raw.hex()}


def _set_instance(proof: dict[str, Any], index: int, value: int) -> dict[str, Any]:
    inst = [list(col) for col in proof["instances"]]
    inst[0][index] = (value % BN254_R).to_bytes(32, "little").hex()
    return {**proof, "instances": inst}


def _bump(proof: dict[str, Any], index: int) -> dict[str, Any]:
    _, instances = read_proof(proof)
    return _set_instance(proof, index, instances[index] + 1)


TAMPERS = {
    "flip first proof byte": lambda p: _flip(p, "first"),
    "flip middle proof byte": lambda p: _flip(p, "middle"),
    "flip last proof byte": lambda p: _flip(p, "last"),
    "change an input": lambda p: _bump(p, 0),
    "change an output": lambda p: _bump(p, 6),
    "negate an output": lambda p: _set_instance(p, 6, -1),
    "drop an instance": lambda p: {**p, "instances": [p["instances"][0][:-1]]},
    "extra instance": lambda p: {**p, "instances": [p["instances"][0] + ["00" * 32]]},
    "truncated proof": lambda p: {**p, "hex_proof": p["hex_proof"][:-64]},
}


@pytest.mark.parametrize("tamper", list(TAMPERS), ids=list(TAMPERS))
def test_tampered_proof_is_rejected(tamper: str, chain: Chain, world: World) -> None:
    bad = TAMPERS[tamper](world.circuits["a"].proof_json())
    assert verify_onchain(chain, world.deployments["a"], bad) == (False, None)


def _ec_muls(chain: Chain, address: str, proof: dict[str, Any]) -> int:
    """ecMul precompile calls (address 0x07) made while verifying ``proof``."""
    p, inst = read_proof(proof)
    trace = chain.rpc("debug_traceCall", [{"to": address, "data": "0x" + verify_calldata(p, inst).hex()}, "latest",
                                          {"tracer": "callTracer"}])
    return sum(1 for call in trace.get("calls", []) if int(call["to"], 16) == 7)


def test_gas_rewrite_keeps_every_verdict_and_saves_ec_muls(chain: Chain, world: World, tmp_path: Path) -> None:
    a = world.circuits["a"]
    art = world.verifiers["a"].artifact
    assert art.optimizations == ("fold-zero-vk-points",) and art.ec_muls_saved >= 1
    plain_art = generate_verifier(a.vk, a.settings, a.srs, tmp_path, optimize=False)
    assert plain_art.optimizations == () and plain_art.sol_sha256 != art.sol_sha256
    plain = deploy_verifier(chain, compile_verifier(plain_art, cache_dir=tmp_path / "solc"))
    fast = world.deployments["a"]
    proof = a.proof_json()
    assert _ec_muls(chain, plain.address, proof) - _ec_muls(chain, fast.address, proof) == art.ec_muls_saved
    ok_plain, gas_plain = verify_onchain(chain, plain, proof)
    ok_fast, gas_fast = verify_onchain(chain, fast, proof)
    assert ok_plain and ok_fast and gas_plain is not None and gas_fast is not None
    assert gas_plain - gas_fast >= 6_000 * art.ec_muls_saved
    for name, tamper in TAMPERS.items():
        bad = tamper(proof)
        assert verify_onchain(chain, plain, bad).ok is verify_onchain(chain, fast, bad).ok is False, name
    assert verify_onchain(chain, fast, world.circuits["b"].proof).ok is False


def test_proof_for_another_circuit_is_rejected(chain: Chain, world: World) -> None:
    assert verify_onchain(chain, world.deployments["b"], world.circuits["a"].proof).ok is False
    assert verify_onchain(chain, world.deployments["b"], world.circuits["b"].proof).ok is True


def test_reusable_verifier(chain: Chain, world: World) -> None:
    dep = world.deployments["a_reusable"]
    assert dep.reusable and dep.vka_address is not None and dep.vka_words
    assert chain.code_at(dep.vka_address) == b"\x00" + b"".join(dep.vka_words)
    ok, gas = verify_onchain(chain, dep, world.circuits["a"].proof)
    assert ok and gas is not None
    assert verify_onchain(chain, dep, _flip(world.circuits["a"].proof_json(), "middle")).ok is False
    # One shared verifier serves another circuit's VKA once registered.
    shared = deploy_verifier(chain, world.verifiers["a_reusable"], shared_verifier=dep.address)
    assert shared.address == dep.address and shared.deployments and len(shared.deployments) == 1


def test_malformed_proof_json(chain: Chain, world: World, tmp_path: Path) -> None:
    bad = tmp_path / "proof.json"
    bad.write_text("{}")
    with pytest.raises(ProofError, match="malformed proof"):
        verify_onchain(chain, world.deployments["a"], bad)
    with pytest.raises(ProofError, match="cannot read proof"):
        read_proof(tmp_path / "missing.json")


def test_reverts_are_decoded(chain: Chain, world: World) -> None:
    reg = world.registry.contract
    with pytest.raises(ContractRevert) as e:
        reg.call("getRecord", b"\x01" * 32, 5)
    assert e.value.error_name == "UnknownVersion"
    assert "UnknownVersion(modelId=0x0101" in e.value.message


# Batch verification: many proofs, one pairing


@pytest.fixture(scope="module")
def batch_a(world: World, evm_root: Path) -> Any:
    from zkml.evm.batch import deploy_batch

    return deploy_batch(world.chain, world.verifiers["a"].artifact, evm_root / "batch-a", cache_dir=evm_root / "solc-cache")


def test_batch_of_valid_proofs_is_accepted_for_less_gas_per_proof(chain: Chain, world: World, batch_a: Any) -> None:
    from zkml.evm.batch import verify_batch_onchain

    a = world.circuits["a"]
    one, g1 = verify_batch_onchain(chain, batch_a, [a.proof])
    two, g2 = verify_batch_onchain(chain, batch_a, [a.proof, a.other_proof])
    four, g4 = verify_batch_onchain(chain, batch_a, [a.proof, a.other_proof, a.other_proof, a.proof])
    assert one and two and four and g1 and g2 and g4
    _, single = verify_onchain(chain, world.deployments["a"], a.proof)
    assert single is not None
    # each further proof skips the pairing (113k) and the transaction's 21k
    assert g2 - g1 < single - 100_000 and g4 / 4 < g2 / 2 < single


@pytest.mark.parametrize("tamper", list(TAMPERS), ids=list(TAMPERS))
def test_one_tampered_proof_fails_the_batch(tamper: str, chain: Chain, world: World, batch_a: Any) -> None:
    from zkml.evm.batch import verify_batch_onchain

    a = world.circuits["a"]
    bad = TAMPERS[tamper](a.proof_json("other"))
    assert verify_batch_onchain(chain, batch_a, [a.proof, bad, a.proof]) == (False, None)


def test_batch_refuses_another_circuits_proof(chain: Chain, world: World, batch_a: Any) -> None:
    from zkml.evm.batch import verify_batch_onchain

    assert verify_batch_onchain(chain, batch_a, [world.circuits["a"].proof, world.circuits["b"].proof]) == (False, None)


def test_deferred_verifier_returns_exactly_the_pairing_inputs(chain: Chain, world: World, batch_a: Any) -> None:
    from zkml.evm.optimize import DEFERRED_CONTRACT

    a = world.circuits["a"]
    p, inst = read_proof(a.proof)
    abi = [{"type": "function", "name": "deferredPairing", "stateMutability": "nonpayable",
            "inputs": [{"name": "proof", "type": "bytes"}, {"name": "instances", "type": "uint256[]"}],
            "outputs": [{"name": "", "type": "uint256[12]"}]}]
    from zkml.evm.chain import decode_result, encode_call

    w = decode_result(abi, "deferredPairing", chain.call_raw(batch_a.deferred, encode_call(abi, "deferredPairing", p, inst)))
    words = list(w[0] if isinstance(w, (list, tuple)) and len(w) == 1 else w)
    assert len(words) == 12
    # e(lhs, g2) * e(rhs, -s*g2) == 1 through the pairing precompile itself
    pairing_input = b"".join(x.to_bytes(32, "big") for x in words[0:2] + words[4:8] + words[2:4] + words[8:12])
    assert int.from_bytes(chain.call_raw("0x" + "00" * 19 + "08", pairing_input), "big") == 1
    # a tampered proof yields points the pairing rejects (or reverts earlier): the deferred
    # contract alone is not a verifier, the pairing is what decides
    bad_p, bad_i = read_proof(_flip(a.proof_json(), "middle"))
    try:
        bad = decode_result(abi, "deferredPairing", chain.call_raw(batch_a.deferred, encode_call(abi, "deferredPairing", bad_p, bad_i)))
    except ContractRevert:
        bad = None
    if bad is not None:
        bw = list(bad[0] if isinstance(bad, (list, tuple)) and len(bad) == 1 else bad)
        bad_input = b"".join(x.to_bytes(32, "big") for x in bw[0:2] + bw[4:8] + bw[2:4] + bw[8:12])
        assert int.from_bytes(chain.call_raw("0x" + "00" * 19 + "08", bad_input), "big") == 0
    assert chain.code_at(batch_a.deferred) and DEFERRED_CONTRACT == "Halo2VerifierDeferred"


def test_batch_input_errors(chain: Chain, world: World, batch_a: Any) -> None:
    from zkml.evm.batch import generate_deferred, verify_batch_onchain
    from zkml.evm.optimize import TemplateMismatch, defer_pairing

    with pytest.raises(ConfigError, match="at least one proof"):
        verify_batch_onchain(chain, batch_a, [])
    with pytest.raises(ConfigError, match="per-circuit verifier"):
        generate_deferred(world.verifiers["a_reusable"].artifact, Path("/nonexistent"))
    with pytest.raises(TemplateMismatch):
        defer_pairing("contract Something { }")
    # mismatched proofs / instance lists revert with BadBatch
    from zkml.evm.batch import _ABI
    from zkml.evm.chain import encode_call

    data = encode_call(_ABI, "verifyBatch", batch_a.deferred, [b"\x00"], [])
    with pytest.raises(ContractRevert, match="BatchShapeMismatch"):
        chain.call_raw(batch_a.batch_verifier, data)
