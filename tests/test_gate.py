"""The CI gate: the bundled digits model passes, a broken copy fails with exit 1, bad configs exit 2.

The passing run is a true subprocess of the installed ``zkml gate zkml.toml``
(what CI runs); the others go through Typer's runner. All share the session
store, so the digits circuit is compiled once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from support import CALIBRATION, MLP, REPO, TEST_SET
from test_compare import broken_copy, error_lines
from zkml import sampling, vrf
from zkml.circuit import Circuit
from zkml.errors import ConfigError
from zkml.gate import derive_alpha, load_config
from zkml.store import Store
from zkml.util import sha256_file
from zkml_cli.main import app

runner = CliRunner()
#: A fixed VRF secret key, so the sampled rows are the same on every run.
TEST_SK = "7f1c0a1e5b2d4c3a9e8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928"
CHECKS = ["compile", "prove", "accuracy", "error", "runtimes", "verify_local", "verifier_bytes", "verify_onchain", "gas"]


def _write(folder: Path, text: str) -> Path:
    p = folder / "zkml.toml"
    p.write_text(text)
    return p


def _gate(cfg: Path, store: Store, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["gate", str(cfg), "--store", str(store.root), "--out", str(out), *extra])


# The bundled config


def test_bundled_config_passes(store: Store, mlp_circuit: Circuit, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {**os.environ, "ZKML_VRF_SK": TEST_SK, "GITHUB_STEP_SUMMARY": str(summary), "ZKML_STORE": str(store.root)}
    env.pop("ZKML_RPC_URL", None)
    zkml = shutil.which("zkml", path=str(REPO / ".venv" / "bin")) or "zkml"
    proc = subprocess.run([zkml, "gate", "zkml.toml", "--out", str(tmp_path / "out"), "--workers", "2"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gate: PASS" in proc.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passed"] and report["exit_code"] == 0 and report["failures"] == []
    (m,) = report["models"]
    assert [c["name"] for c in m["checks"]] == CHECKS
    assert all(c["ok"] is True for c in m["checks"]), m["checks"]
    # The numbers the thresholds were judged on
    assert m["model_sha256"] == sha256_file(MLP) and m["circuit"]["id"] == mlp_circuit.circuit_id
    assert m["proofs"] == 16 and m["sample"]["size"] == 16 and m["sample"]["population"] == 360
    assert m["accuracy"]["circuit_sample"] >= 0.75 and m["accuracy"]["float_full_set"] == pytest.approx(0.95, abs=0.01)
    assert 0 < m["errors"]["max_abs_error"] <= m["errors"]["tolerance"]
    assert 0 < m["onchain"]["verifier_bytes"] <= 24_576
    assert len(m["onchain"]["gas"]) == 16 and 0 < max(m["onchain"]["gas"]) <= 650_000
    # An auditor re-derives the sample from the recorded VRF evidence
    v = m["sample"]["vrf"]
    assert v["key"] == "env"
    alpha = derive_alpha(m["model_sha256"], m["circuit"]["id"], sha256_file(TEST_SET))
    assert v["alpha"] == alpha.hex()
    beta = vrf.verify(v["suite"], bytes.fromhex(v["pk"]), alpha, bytes.fromhex(v["pi"]))
    assert beta is not None and beta.hex() == v["beta"]
    assert sampling.sample_indices(beta, 360, 16) == m["sample"]["indices"]
    # The proven rows are the sampled rows
    bundle = json.loads(Path(m["bundle"]).read_text())
    x = np.load(TEST_SET)["x"]
    assert np.allclose(np.asarray(bundle["input"]["values"]), x[m["sample"]["indices"]])
    # --workers 2: the 16 proofs ran on the warm pool, in two worker processes
    provers = bundle["metadata"]["provers"]
    assert len(provers) == 16 and {p["backend"] for p in provers} == {"pool"} and len({p["pid"] for p in provers}) == 2
    # Markdown for the job summary
    md = summary.read_text()
    assert md.startswith("## zkml gate: PASS") and f"| gas | {max(m['onchain']['gas']):,} |" in md and "digits-mlp" in md
    assert (tmp_path / "out" / "report.md").read_text() == md


# Failing thresholds


def test_broken_copy_fails_with_exit_1(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = broken_copy(tmp_path)
    key = tmp_path / "vrf.key"
    key.write_text(TEST_SK)
    key.chmod(0o600)  # a group/world-readable key file would add a warning line
    monkeypatch.delenv("ZKML_VRF_SK", raising=False)
    cfg = _write(tmp_path, f"""
[test_set]
path = "{TEST_SET}"
[sample]
size = 8
key_file = "vrf.key"
[thresholds]
min_accuracy = 0.75
max_verify_gas = 650000
[[models]]
name = "digits-broken"
path = "{broken.name}"
""")
    r = _gate(cfg, store, tmp_path / "out")
    assert r.exit_code == 1, r.stdout + r.stderr
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: gate failed: digits-broken: proven accuracy ") and "< 75.0%" in line
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert not report["passed"] and report["exit_code"] == 1
    (m,) = report["models"]
    verdicts = {c["name"]: c["ok"] for c in m["checks"]}
    # Only accuracy fails: the circuit faithfully proves a bad model
    assert verdicts == {name: name != "accuracy" for name in CHECKS}
    acc = next(c for c in m["checks"] if c["name"] == "accuracy")
    assert acc["value"] < 0.75 and acc["threshold"] == 0.75
    assert m["sample"]["vrf"]["key"] == "file"
    assert "FAIL" in (tmp_path / "out" / "report.md").read_text()


def test_tight_thresholds_each_report_their_numbers(store: Store, mlp_circuit: Circuit, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZKML_VRF_SK", raising=False)
    cfg = _write(tmp_path, f"""
[test_set]
path = "{TEST_SET}"
[sample]
size = 2
suite = "secp256k1"
[thresholds]
min_accuracy = 0.5
max_error = 0.001
max_verify_gas = 500000
max_verifier_bytes = 10000
[[models]]
path = "{MLP}"
calibration = "{CALIBRATION}"
verifier = "reusable"
""")
    r = _gate(cfg, store, tmp_path / "out", "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    (m,) = report["models"]
    assert m["name"] == "digits_mlp" and m["circuit"]["id"] == mlp_circuit.circuit_id
    checks = {c["name"]: c for c in m["checks"]}
    assert {n for n, c in checks.items() if c["ok"] is False} == {"error", "verifier_bytes", "gas"}
    assert checks["error"]["threshold"] == 0.001 and checks["error"]["value"] > 0.001
    assert checks["verifier_bytes"]["value"] > 10_000 and "> 10,000" in checks["verifier_bytes"]["detail"]
    assert checks["gas"]["value"] > 500_000 and "> 500,000" in checks["gas"]["detail"]
    # Still deployed and verified on chain (under EIP-170, just over this config's limit):
    # the shared reusable verifier, with the circuit's VK artifact in a data contract
    assert checks["verify_onchain"]["ok"] is True and checks["verify_onchain"]["value"] == 2
    assert m["onchain"]["verifier_kind"] == "reusable" and m["onchain"]["vka"].startswith("0x")
    assert "reusable verifier" in checks["verifier_bytes"]["detail"]
    # No key: an ephemeral one, and the report says so
    assert m["sample"]["vrf"]["key"] == "ephemeral" and m["sample"]["vrf"]["suite"] == "secp256k1"
    assert any("ephemeral VRF key" in n for n in report["notes"])
    assert len(report["failures"]) == 3


# Configuration errors: exit 2, one line


GOOD = f"""
[test_set]
path = "{TEST_SET}"
[thresholds]
min_accuracy = 0.75
[[models]]
path = "{REPO / 'circuits' / 'digits_mlp.toml'}"
"""


BAD_CONFIGS = [
    ("unknown top-level table", GOOD + "\n[thresholdz]\nx = 1\n", "unknown key 'thresholdz'"),
    ("unknown threshold", GOOD.replace("min_accuracy = 0.75", "min_acuracy = 0.75"), "unknown key 'thresholds.min_acuracy'"),
    ("unknown model key", GOOD + 'recipe = "x"\n', "unknown key 'models[0].recipe'"),
    ("unknown per-model threshold", GOOD + "thresholds = { max_gas = 1 }\n", "unknown key 'models[0].thresholds.max_gas'"),
    ("missing test set", GOOD.replace(str(TEST_SET), "models/nope.npz"), "test_set.path: file not found: models/nope.npz"),
    ("missing model", GOOD.replace("digits_mlp.toml", "nope.toml"), "models[0].path: file not found"),
    ("accuracy as text", GOOD.replace("0.75", '"high"'), "thresholds.min_accuracy must be a number, not str"),
    ("accuracy out of range", GOOD.replace("0.75", "1.5"), "thresholds.min_accuracy must be between 0 and 1"),
    ("gas as float", GOOD.replace("min_accuracy = 0.75", "max_verify_gas = 1.5e5"), "thresholds.max_verify_gas must be an integer, not float"),
    ("bool as text", GOOD.replace("min_accuracy = 0.75", 'verify_onchain = "yes"'), "thresholds.verify_onchain must be true or false"),
    ("max_error word", GOOD.replace("min_accuracy = 0.75", 'max_error = "big"'), 'thresholds.max_error must be a number or "auto"'),
    ("bool as number", GOOD.replace("0.75", "true"), "thresholds.min_accuracy must be a number, not bool"),
    ("no models", GOOD.split("[[models]]")[0], "needs at least one [[models]] entry"),
    ("duplicate names", GOOD + f'[[models]]\npath = "{REPO / "circuits" / "digits_mlp.toml"}"\n', "duplicate model name 'digits_mlp'"),
    ("not TOML", GOOD + "[[models\n", "invalid TOML"),
    ("verifier flavour", GOOD + 'verifier = "fast"\n', "models[0].verifier must be one of auto, per-circuit, reusable"),
    ("unknown suite", GOOD.replace("[thresholds]", '[sample]\nsuite = "ed25519"\n[thresholds]'), "sample.suite: unknown VRF suite"),
    ("sample size word", GOOD.replace("[thresholds]", '[sample]\nsize = "some"\n[thresholds]'), 'sample.size must be an integer or "all"'),
    ("sample size zero", GOOD.replace("[thresholds]", "[sample]\nsize = 0\n[thresholds]"), "sample.size must be at least 1, not 0"),
    ("bad alpha", GOOD.replace("[thresholds]", '[sample]\nalpha = "xyz"\n[thresholds]'), "sample.alpha is not valid hex"),
    ("pinned alpha without replay", GOOD.replace("[thresholds]", '[sample]\nalpha = "00ff"\n[thresholds]'),
     "sample.alpha pins the VRF input, so the sample can be ground by choosing alpha"),
    ("replay without alpha", GOOD.replace("[thresholds]", "[sample]\nreplay = true\n[thresholds]"),
     "sample.replay = true needs the recorded sample.alpha"),
    ("replay as text", GOOD.replace("[thresholds]", '[sample]\nalpha = "00ff"\nreplay = "yes"\n[thresholds]'),
     "sample.replay must be true or false, not str"),
    ("onnx without calibration", GOOD.replace(str(REPO / "circuits" / "digits_mlp.toml"), "{onnx}"), "no calibration data for"),
    ("no test set", '[[models]]\npath = "x.onnx"\n', "missing [test_set]"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_a_config_error(case: str, text: str, message: str, tmp_path: Path) -> None:
    lone = tmp_path / "lone.onnx"
    shutil.copyfile(MLP, lone)  # an ONNX with no calibration file beside it
    cfg = _write(tmp_path, text.replace("{onnx}", str(lone)))
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert message in e.value.message, e.value.message
    assert "\n" not in e.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("min_accuracy = 0.75", "max_verify_gas = \"lots\""), "error: zkml.toml: thresholds.max_verify_gas must be an integer, not str"),
        (GOOD.replace("[thresholds]", "[sample]\nsize = 400\n[thresholds]"), "error: sample.size 400 is larger than the test set (360 rows)"),
        (GOOD.replace("[thresholds]", "[test_set]\n[thresholds]"), "error: zkml.toml: invalid TOML"),
        (GOOD.replace(f'path = "{TEST_SET}"', f'path = "{TEST_SET}"\nsha256 = "{"0" * 64}"'), "error: digits_test.npz has sha256 4ae08a70"),
    ],
)
def test_cli_config_errors_exit_2_with_one_line(text: str, message: str, store: Store, tmp_path: Path) -> None:
    cfg = _write(tmp_path, text)
    r = _gate(cfg, store, tmp_path / "out")
    assert r.exit_code == 2, r.stdout + r.stderr
    (line,) = error_lines(r.stderr)
    assert line.startswith(message), line
    assert not (tmp_path / "out" / "report.json").exists()


def test_missing_config_file_exits_2(store: Store, tmp_path: Path) -> None:
    r = _gate(tmp_path / "absent.toml", store, tmp_path / "out")
    assert r.exit_code == 2
    assert error_lines(r.stderr) == [f"error: gate config not found: {tmp_path / 'absent.toml'}"]


def test_replay_of_a_recorded_sample_is_reported_as_such(store: Store, mlp_circuit: Circuit, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A pinned alpha is accepted only as a replay, and the report says the sample is not a fresh draw."""
    monkeypatch.setenv("ZKML_VRF_SK", TEST_SK)
    alpha = "ab" * 32
    text = f"""
[test_set]
path = "{TEST_SET}"
[sample]
size = 1
suite = "secp256k1"
alpha = "{alpha}"
replay = true
[thresholds]
min_accuracy = 0.0
verify_onchain = false
[[models]]
path = "{MLP}"
calibration = "{CALIBRATION}"
"""
    cfg = load_config(_write(tmp_path, text))
    assert cfg.sample.replay is True and cfg.sample.alpha == bytes.fromhex(alpha)
    r = _gate(_write(tmp_path, text), store, tmp_path / "out", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    (m,) = report["models"]
    v = m["sample"]["vrf"]
    assert m["sample"]["replay"] is True and v["alpha"] == alpha and v["alpha_source"].startswith("replay")
    beta = vrf.verify("secp256k1", bytes.fromhex(v["pk"]), bytes.fromhex(alpha), bytes.fromhex(v["pi"]))
    assert beta is not None and sampling.sample_indices(beta, 360, 1) == m["sample"]["indices"]
    assert any(n.startswith("replay: sample.alpha is pinned") for n in report["notes"])
    assert "replay: sample.alpha is pinned" in (tmp_path / "out" / "report.md").read_text()
    # The same config without replay = true is refused before anything runs
    r = _gate(_write(tmp_path, text.replace("replay = true\n", "")), store, tmp_path / "out2")
    assert r.exit_code == 2 and "sample.alpha pins the VRF input" in r.stderr
    assert not (tmp_path / "out2").exists()


def test_bundled_config_and_workflow_parse() -> None:
    cfg = load_config(REPO / "zkml.toml")
    assert cfg.test_set_sha256 == sha256_file(TEST_SET)
    assert cfg.sample.alpha is None and cfg.sample.replay is False
    (m,) = cfg.models
    t = m.thresholds
    assert (t.min_accuracy, t.max_error, t.max_verify_gas, t.max_verifier_bytes) == (0.75, None, 650_000, 24_576)
    wf = (REPO / ".github" / "workflows" / "zkml-gate.yml").read_text()
    assert "zkml gate" in wf and "ZKML_VRF_SK" in wf


def test_gate_on_a_named_chain_goes_through_open_chain(store: Store, mlp_circuit: Circuit, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--rpc-url: the gate connects as `zkml deploy --rpc-url` does (failover list; a dead endpoint is skipped)."""
    from web3 import Web3

    from zkml.evm.anvil import Anvil

    monkeypatch.setenv("ZKML_VRF_SK", TEST_SK)
    cfg = _write(tmp_path, f"""
[test_set]
path = "{TEST_SET}"
[sample]
size = 1
[thresholds]
min_accuracy = 0.0
[[models]]
path = "{MLP}"
calibration = "{CALIBRATION}"
""")
    with Anvil.start() as node:
        r = _gate(cfg, store, tmp_path / "out", "--json", "--rpc-url", f"http://127.0.0.1:1,{node.rpc_url}")
        assert r.exit_code == 0, r.stdout + r.stderr
        (m,) = json.loads(r.stdout)["models"]
        assert m["onchain"]["rpc_url"] == node.rpc_url and m["onchain"]["chain_id"] == 31337
        assert len(Web3(Web3.HTTPProvider(node.rpc_url)).eth.get_code(m["onchain"]["verifier"])) > 1000
    r = _gate(cfg, store, tmp_path / "out2", "--rpc-url", "http://127.0.0.1:1")
    assert r.exit_code == 2 and len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr
