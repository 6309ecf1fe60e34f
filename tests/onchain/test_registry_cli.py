"""``zkml registry propose|finalize|challenge|pause|unpause|rollback`` through Typer's CliRunner.

Two tiny Linear(4,3)+ReLU models (chainkit.export_linear, seeds 0 and 1)
compiled into a module store; ``tiny`` is deployed from model a on the store's
embedded anvil. Each test runs between evm_snapshot / evm_revert, with the
store's chain record restored too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chainkit import EMERGENCY_KEY, STRANGER_KEY, TEST_INPUT, export_linear
from typer.testing import CliRunner

from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.evm.chain import Chain
from zkml.evm.deploy import ensure_existing_registry, ensure_verifier, open_chain
from zkml.evm.registry import commit
from zkml.prove import prove
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()
MODEL = "tiny"
WINDOW = 86_400  # the default challenge window of a registry `zkml deploy` creates


@dataclass(frozen=True)
class Setup:
    store: Store
    chain: Chain
    a: Circuit
    b: Circuit
    deployed: dict[str, Any]
    test_input: Path
    bundle_a: Path
    emergency_key: Path
    """Key file of the account holding the registry's emergency role (not the deployer)."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("registry-cli")
    store = Store(root / "store")
    cal = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    circuits = []
    for seed in (0, 1):
        onnx = root / f"tiny{seed}.onnx"
        export_linear(seed, onnx)
        circuits.append(compile_model(onnx, cal, CircuitOptions(), store=store)[0])
    a, b = circuits
    test_input = root / "test_input.json"
    test_input.write_text(json.dumps([TEST_INPUT]))
    bundle_a = root / "a.json"
    prove(a, np.asarray([TEST_INPUT])).save(bundle_a)
    from eth_account import Account

    emergency_key = root / "emergency.key"
    emergency_key.write_text(EMERGENCY_KEY)
    emergency_key.chmod(0o600)
    r = runner.invoke(app, ["deploy", a.circuit_id, "--model-id", MODEL, "--store", str(store.root), "--json",
                            "--emergency", Account.from_key(EMERGENCY_KEY).address])
    assert r.exit_code == 0, r.stderr
    chain = open_chain(store)
    ensure_verifier(b, store, chain)  # once, before the per-test snapshots: proposals reuse it
    try:
        yield Setup(store, chain, a, b, json.loads(r.stdout), test_input, bundle_a, emergency_key)
    finally:
        runner.invoke(app, ["chain", "down", "--store", str(store.root)])


@pytest.fixture
def s(setup: Setup) -> Iterator[Setup]:
    """The module's world, with chain and the store's chain record restored after the test."""
    record = setup.store.root / "chains" / f"{setup.chain.chain_id}.json"
    saved = record.read_bytes()
    snap = setup.chain.snapshot()
    try:
        yield setup
    finally:
        setup.chain.revert(snap)
        record.write_bytes(saved)


def _cli(s: Setup, *args: str) -> Any:
    return runner.invoke(app, [*args, "--store", str(s.store.root)])


def _one_line_error(r: Any, code: int, *fragments: str) -> None:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("  .. ")]  # minus progress
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def _propose(s: Setup) -> dict[str, Any]:
    r = _cli(s, "registry", "propose", MODEL, s.b.circuit_id, "--test-input", str(s.test_input), "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _show(s: Setup) -> dict[str, Any]:
    r = _cli(s, "registry", "show", MODEL, "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _wait_out_window(chain: Chain) -> None:
    chain.rpc("evm_increaseTime", [WINDOW + 1])
    chain.rpc("evm_mine", [])


def test_propose_finalize_after_window_then_rollback(s: Setup) -> None:
    v1_verifier = s.deployed["verifier"]["address"]
    p = _propose(s)
    assert p["version"] == 2 and p["circuit_id"] == s.b.circuit_id and p["verifier"]["address"] != v1_verifier
    now = int(s.chain.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    assert now < p["deadline"] <= now + WINDOW
    assert Path(p["test_proof"]).is_file() and p["tx"].startswith("0x")
    shown = _show(s)
    assert shown["current_version"] == 1 and shown["latest_version"] == 2 and shown["pending"] is not None
    # what a consumer pins: the owner (the id's namespace) and the verifier's code hash
    assert shown["pin"]["owner"] == s.chain.sender and shown["pin"]["verifier_code_matches"] is True
    assert shown["model_id"] == s.deployed["model_id_hex"] and shown["record"]["challenge_window"] == WINDOW
    # Too early: a one-line reason with the window's end
    _one_line_error(_cli(s, "registry", "finalize", MODEL), 2, "challenge window", "is open until", "finalize after it")
    _wait_out_window(s.chain)
    r = _cli(s, "registry", "finalize", MODEL, "--json")
    assert r.exit_code == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["events"] == ["UpdateFinalized"] and done["current_version"] == 2
    assert done["verifier"] == p["verifier"]["address"]
    # The store follows the active version: deploying circuit b again is a no-op
    rec = json.loads((s.store.root / "chains" / f"{s.chain.chain_id}.json").read_text())["models"][MODEL]
    assert rec["circuit_id"] == s.b.circuit_id and "pending" not in rec
    # Rollback restores the previous verifier
    r = _cli(s, "registry", "rollback", MODEL, "--key-file", str(s.emergency_key))
    assert r.exit_code == 0, r.stderr
    assert "rollback done (RolledBack); active version 1" in r.stdout
    shown = _show(s)
    assert shown["current_version"] == 1 and shown["record"]["verifier"] == v1_verifier
    assert [e["event"] for e in shown["history"]][-3:] == ["UpdateProposed", "UpdateFinalized", "RolledBack"]
    rec = json.loads((s.store.root / "chains" / f"{s.chain.chain_id}.json").read_text())["models"][MODEL]
    assert rec["circuit_id"] == s.a.circuit_id
    _one_line_error(_cli(s, "registry", "rollback", MODEL, "--key-file", str(s.emergency_key)), 2,
                    "no earlier accepted version to roll back to")


def test_propose_human_summary_and_second_proposal_refused(s: Setup) -> None:
    r = _cli(s, "registry", "propose", MODEL, s.b.circuit_id, "--test-input", str(s.test_input))
    assert r.exit_code == 0, r.stderr
    assert "version 2" in r.stdout and "challenge window ends" in r.stdout and "zkml registry finalize tiny" in r.stdout
    r = _cli(s, "registry", "propose", MODEL, s.b.circuit_id, "--test-input", str(s.test_input))
    _one_line_error(r, 2, "already has update v2 pending")


def test_pause_blocks_verify_onchain(s: Setup) -> None:
    r = _cli(s, "verify", str(s.bundle_a), "--onchain")
    assert r.exit_code == 0, r.stderr
    em = ("--key-file", str(s.emergency_key))
    r = _cli(s, "registry", "pause", MODEL, "--json", *em)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["paused"] is True
    _one_line_error(_cli(s, "verify", str(s.bundle_a), "--onchain"), 2, "is paused")
    _one_line_error(_cli(s, "registry", "pause", MODEL, *em), 2, "is paused")
    r = _cli(s, "registry", "unpause", MODEL, *em)
    assert r.exit_code == 0 and "unpause done (ModelUnpaused)" in r.stdout, r.stderr
    assert _cli(s, "verify", str(s.bundle_a), "--onchain").exit_code == 0


def test_admin_actions_need_the_emergency_role(s: Setup, tmp_path: Path) -> None:
    key = tmp_path / "stranger.key"
    key.write_text(STRANGER_KEY)
    key.chmod(0o600)
    _one_line_error(_cli(s, "registry", "pause", MODEL, "--key-file", str(key)), 2, "lacks the registry role")
    # the deployer (registry admin and model owner) holds no emergency role either
    _one_line_error(_cli(s, "registry", "pause", MODEL), 2, "lacks the registry role")
    _one_line_error(_cli(s, "registry", "finalize", "no-such-model"), 2, "is not registered")


def test_challenge(s: Setup) -> None:
    p = _propose(s)
    # An honest update survives: the proposer's own test proof matches its prediction
    r = _cli(s, "registry", "challenge", MODEL, p["test_proof"])
    _one_line_error(r, 2, "challenge failed: the proof's output matches the proposer's prediction")
    # A lying update (wrong prediction) is rejected by the same proof
    registry = ensure_existing_registry(s.store, s.chain)
    registry.cancel_update(MODEL)
    record = registry.record(MODEL, 2)
    registry.propose_update(MODEL, record, bytes.fromhex(p["test_input_commitment"][2:]), commit([1, 2, 3]))
    r = _cli(s, "registry", "challenge", MODEL, p["test_proof"], "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["events"] == ["UpdateChallenged"] and out["rejected_version"] == 3 and out["status"] == "rejected"
    assert out["current_version"] == 1
    # Nothing pending any more
    _one_line_error(_cli(s, "registry", "finalize", MODEL), 2, "has no pending update")
    # Another model's bundle is not the committed test input
    registry.propose_update(MODEL, record, bytes.fromhex(p["test_input_commitment"][2:]), commit([1, 2, 3]))
    _one_line_error(_cli(s, "registry", "challenge", MODEL, str(s.bundle_a)), 2)


def test_bad_input_is_one_line(s: Setup, tmp_path: Path) -> None:
    _one_line_error(_cli(s, "registry", "propose", MODEL, s.b.circuit_id, "--test-input", str(tmp_path / "none.json")),
                    2, "input file not found")
    _one_line_error(_cli(s, "registry", "challenge", MODEL, str(s.bundle_a), "--proof", "3"), 2, "no proof 3")
