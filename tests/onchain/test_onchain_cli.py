"""``zkml deploy`` / ``verify --onchain`` / ``registry show`` on the embedded chain (a real anvil)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zkml.bundle import Bundle
from zkml.circuit import Circuit
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def deployed(store: Store, mlp_circuit: Circuit) -> Iterator[dict[str, Any]]:
    """The MLP circuit deployed and registered on the store's embedded chain (started by deploy)."""
    r = runner.invoke(app, ["deploy", mlp_circuit.circuit_id, "--store", str(store.root), "--json"])
    assert r.exit_code == 0, r.stderr
    yield json.loads(r.stdout)
    runner.invoke(app, ["chain", "down", "--store", str(store.root)])


def _cli(store: Store, *args: str) -> Any:
    return runner.invoke(app, [*args, "--store", str(store.root)])


def test_deploy_records_chain_and_eip170(deployed: dict[str, Any], store: Store, mlp_circuit: Circuit) -> None:
    assert deployed["chain_id"] == 31337 and deployed["model_id"] == "digits_mlp"
    assert 0 < deployed["verifier"]["bytecode_bytes"] <= 24_576
    # the digits MLP's VK has zero commitments: the deployed contract is zkml's cheaper rewrite
    assert deployed["verifier"]["optimizations"] == ["fold-zero-vk-points"] and deployed["verifier"]["ec_muls_saved"] >= 1
    assert deployed["verifier"]["optimizer_runs"] == 1_000_000
    assert deployed["registration"]["tx"].startswith("0x")
    rec = json.loads((store.root / "chains" / "31337.json").read_text())
    assert rec["models"]["digits_mlp"]["circuit_id"] == mlp_circuit.circuit_id
    # A second deploy of the same circuit is idempotent
    r = _cli(store, "deploy", mlp_circuit.circuit_id, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["verifier"]["address"] == deployed["verifier"]["address"]


def test_verify_onchain_and_record(deployed: dict[str, Any], store: Store, mlp_bundle: Bundle, tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    mlp_bundle.save(path)
    r = _cli(store, "verify", str(path), "--onchain", "--json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["valid"] and res["proofs"][0]["gas"] > 100_000 and not res["recorded"]
    r = _cli(store, "verify", str(path), "--onchain", "--record")
    assert r.exit_code == 0, r.stderr
    receipt = Bundle.load(path).onchain[-1]
    assert receipt["chain_id"] == 31337 and receipt["proofs"][0]["tx"].startswith("0x")
    assert receipt["verifier"] == deployed["verifier"]["address"]
    r = _cli(store, "registry", "show", "digits_mlp", "--json")
    assert r.exit_code == 0, r.stderr
    events = [e["event"] for e in json.loads(r.stdout)["history"]]
    assert events[0] == "ModelRegistered" and "ProofVerified" in events


def test_tampered_bundle_refused_on_chain(deployed: dict[str, Any], store: Store, mlp_bundle: Bundle, tmp_path: Path) -> None:
    d = copy.deepcopy(mlp_bundle.to_json())
    col = d["proofs"][0]["instances"][0]
    col[-1] = col[-2]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    r = _cli(store, "verify", str(path), "--onchain")
    assert r.exit_code == 1 and "refused before any on-chain call" in r.stderr and "Traceback" not in r.stderr


def test_dead_rpc_is_one_line(store: Store, mlp_bundle_file: Path) -> None:
    r = _cli(store, "verify", str(mlp_bundle_file), "--onchain", "--rpc-url", "http://127.0.0.1:9")
    assert r.exit_code == 2 and "cannot reach RPC" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unknown_model_is_one_line(deployed: dict[str, Any], store: Store, mlp_bundle_file: Path) -> None:
    r = _cli(store, "verify", str(mlp_bundle_file), "--onchain", "--model-id", "no-such-model")
    assert r.exit_code == 2 and "error: registry: model 0x" in r.stderr and "is not registered" in r.stderr
    assert "Traceback" not in r.stderr


def test_batch_verify_through_the_registry(deployed: dict[str, Any], store: Store, mlp_circuit: Circuit,
                                           test_set: Any, tmp_path: Path) -> None:
    from zkml.prove import prove

    path = tmp_path / "three.json"
    prove(mlp_circuit, test_set[0][:3]).save(path)  # three single-sample proofs in one bundle
    mlp = ("--model-id", "digits_mlp")
    r = _cli(store, "verify", str(path), "--onchain", "--batch-verify", *mlp)
    assert r.exit_code != 0 and "no deferred verifier in its record" in r.stderr and "--batch-verify" in r.stderr
    # the batch verifier of a registered model changes only through an update (the challenge window)
    r = _cli(store, "deploy", mlp_circuit.circuit_id, "--batch-verify", "--json")
    assert r.exit_code == 2 and "zkml registry propose" in r.stderr, r.stderr
    # a model registered with one from the start
    batched = ("--model-id", "digits_mlp_batch")
    r = _cli(store, "deploy", mlp_circuit.circuit_id, "--batch-verify", "--json", *batched)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["batch"]["address"].startswith("0x") and out["registration"]["deferred"] == out["batch"]["address"]
    r = _cli(store, "verify", str(path), "--onchain", "--batch-verify", "--json", *batched)
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["valid"] and res["batch"]["proofs"] == 3 and len(res["proofs"]) == 3
    single = json.loads(_cli(store, "verify", str(path), "--onchain", "--json", *mlp).stdout)["proofs"][0]["gas"]
    assert res["batch"]["gas_per_proof"] < single - 60_000
    r = _cli(store, "verify", str(path), "--onchain", "--batch-verify", "--record", *batched)
    assert r.exit_code == 2 and "drop --record" in r.stderr
    # one tampered proof fails the batch (exit 1)
    doc = json.loads(path.read_text())
    bad = copy.deepcopy(doc)
    raw = bad["proofs"][1]["proof"]
    bad["proofs"][1]["proof"] = raw[:40] + ("0" if raw[40] != "0" else "1") + raw[41:]
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps(bad))
    r = _cli(store, "verify", str(bad_path), "--onchain", "--batch-verify", *batched)
    assert r.exit_code == 1 and "refused before any on-chain call" in r.stderr, (r.stdout, r.stderr)
