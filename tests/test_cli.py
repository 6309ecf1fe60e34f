"""The CLI: Typer's runner for each command, plus true subprocess runs of the installed ``zkml``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from support import CALIBRATION, MLP, REPO, MODELS
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()


def _zkml(*args: str, store: Store) -> tuple[int, str, str]:
    r = runner.invoke(app, [*args, "--store", str(store.root)])
    return r.exit_code, r.stdout, r.stderr


def test_compile_prove_verify_inspect_json(store: Store, tmp_path: Path, test_set: tuple[np.ndarray, np.ndarray]) -> None:
    code, out, _ = _zkml("compile", str(REPO / "circuits" / "digits_mlp.toml"), "--json", store=store)
    assert code == 0, out
    c = json.loads(out)
    assert c["logrows"] <= 14 and c["accuracy"]["argmax_agreement"] >= 0.99
    inp = tmp_path / "x.npy"
    np.save(inp, test_set[0][:2])
    proof = tmp_path / "p.json"
    code, out, _ = _zkml("prove", c["circuit_id"], "--input", str(inp), "-o", str(proof), "--json", store=store)
    assert code == 0, out
    p = json.loads(out)
    assert p["cache_hit"] and p["samples"] == 2 and len(p["outputs"]) == 2
    code, out, _ = _zkml("verify", str(proof), "--json", store=store)
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, _ = _zkml("inspect", str(proof), store=store)
    assert code == 0 and "INSECURE development SRS" in out and c["circuit_id"] in out
    code, out, _ = _zkml("inspect", c["circuit_id"][:8], "--json", store=store)
    assert code == 0 and json.loads(out)["circuit_id"] == c["circuit_id"]


def test_prove_from_onnx_finds_calibration_and_summarizes(store: Store, tmp_path: Path) -> None:
    proof = tmp_path / "p.json"
    code, out, err = _zkml("prove", str(MLP), "--input", str(MODELS / "digits_input.json"), "-o", str(proof), store=store)
    assert code == 0, err
    assert "argmax" in out and "WARNING: INSECURE" in out
    code, out, _ = _zkml("verify", str(proof), store=store)
    assert code == 0 and out.startswith("valid:")


def test_verify_tampered_exits_1_with_reason(mlp_bundle_file: Path, store: Store, tmp_path: Path) -> None:
    d = json.loads(mlp_bundle_file.read_text())
    d["outputs"]["values"][0][0] += 1.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    code, out, err = _zkml("verify", str(bad), store=store)
    assert code == 1
    assert err.strip().startswith("invalid:") and "outputs differ" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["prove", "models/digits_mlp.onnx", "--input", "nope.json"], 2, "input file not found"),
        (["prove", "models/missing.onnx", "--input", "models/digits_input.json"], 2, "model file not found"),
        (["verify", "nope.json"], 2, "bundle not found"),
        (["compile", "circuits/nope.toml"], 2, "recipe not found"),
        (["compile", "models/digits_mlp.onnx", "--target", "speed"], 2, "target must be"),
        (["compile", "models/digits_mlp.onnx", "--input-visibility", "secret"], 2, "input-visibility must be"),
        (["inspect", "deadbeef"], 2, "no circuit 'deadbeef'"),
    ],
)
def test_bad_invocations_one_line(store: Store, args: list[str], code: int, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    rc, _, err = _zkml(*args, store=store)
    assert rc == code
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("  ..")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_export_bad_factory(tmp_path: Path) -> None:
    r = runner.invoke(app, ["export", f"{MODELS / 'train_digits.py'}:nothing", "--shape", "1,64", "-o", str(tmp_path / "x.onnx")])
    assert r.exit_code == 2 and "no attribute 'nothing'" in r.stderr and not (tmp_path / "x.onnx").exists()


def test_nan_input_is_one_line(store: Store, tmp_path: Path, mlp_circuit: object) -> None:
    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps({"input_data": [[float("nan")] + [0.0] * 63]}).replace("NaN", "NaN"))
    rc, _, err = _zkml("prove", mlp_circuit.circuit_id, "--input", str(bad), store=store)  # type: ignore[attr-defined]
    assert rc == 2 and "NaN or infinite" in err and "Traceback" not in err


def test_recipe_rejects_unknown_keys_and_types(tmp_path: Path, store: Store) -> None:
    r = tmp_path / "r.toml"
    r.write_text(f'model = "{MLP}"\ncalibration = "{CALIBRATION}"\nbatchsize = 4\n')
    rc, _, err = _zkml("compile", str(r), store=store)
    assert rc == 2 and "unknown key(s) batchsize" in err
    r.write_text(f'model = "{MLP}"\ncalibration = "{CALIBRATION}"\nmax_logrows = "big"\n')
    rc, _, err = _zkml("compile", str(r), store=store)
    assert rc == 2 and "max_logrows has the wrong type" in err
    r.write_text(f'model = "{MLP}"\ncalibration = "{CALIBRATION}"\nfreivalds = "yes"\n')
    rc, _, err = _zkml("compile", str(r), store=store)
    assert rc == 2 and "freivalds must be true or false" in err


def test_export_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    r = runner.invoke(app, ["export", f"{MODELS / 'train_digits.py'}:mlp", "--shape", "1,64", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["sample_shape"] == [64] and d["ops"] == {"Gemm": 2, "Relu": 1}


# True subprocess runs of the installed console script


def _installed() -> str:
    exe = shutil.which("zkml") or str(Path(os.sys.executable).parent / "zkml")  # type: ignore[attr-defined]
    assert Path(exe).exists(), "the zkml console script is not installed"
    return exe


def test_installed_zkml_end_to_end(store: Store, tmp_path: Path, mlp_circuit: object) -> None:
    exe = _installed()
    env = {**os.environ, "ZKML_STORE": str(store.root)}
    proof = tmp_path / "p.json"
    r = subprocess.run([exe, "prove", str(REPO / "circuits" / "digits_mlp.toml"), "--input", str(MODELS / "digits_input.json"),
                        "-o", str(proof), "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["proofs"] == 1  # stdout is pure JSON: ezkl's chatter is kept out
    r = subprocess.run([exe, "verify", str(proof)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("valid:")
    d = json.loads(proof.read_text())
    d["proofs"][0]["instances"][0][0] = d["proofs"][0]["instances"][0][1]
    proof.write_text(json.dumps(d))
    r = subprocess.run([exe, "verify", str(proof)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "invalid" in r.stderr and "Traceback" not in r.stderr


def test_installed_zkml_debug_shows_traceback(tmp_path: Path) -> None:
    exe = _installed()
    r = subprocess.run([exe, "verify", str(tmp_path / "nope.json")], capture_output=True, text=True, env={**os.environ, "ZKML_DEBUG": "1"})
    assert r.returncode == 2 and "Traceback" in r.stderr and "bundle not found" in r.stderr


def test_verify_with_public_artifacts_only(mlp_bundle_file: Path, mlp_circuit: object, tmp_path: Path) -> None:
    """An auditor with just the bundle, settings, vk and SRS (no store) can verify."""
    pub = tmp_path / "public"
    pub.mkdir()
    c = mlp_circuit
    for src, name in ((c.settings_path, "settings.json"), (c.vk, "vk.key"), (c.srs.path, "kzg.srs")):  # type: ignore[attr-defined]
        shutil.copyfile(src, pub / name)
    args = ["verify", str(mlp_bundle_file), "--settings", str(pub / "settings.json"), "--vk", str(pub / "vk.key"),
            "--srs", str(pub / "kzg.srs"), "--store", str(tmp_path / "empty-store")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and r.stdout.startswith("valid:"), r.stderr
    # A vk from elsewhere is refused on its digest
    raw = bytearray((pub / "vk.key").read_bytes())
    raw[-1] ^= 1
    (pub / "vk.key").write_bytes(bytes(raw))
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "vk.key sha256" in r.stderr


def test_installed_zkml_usage_error_is_one_line() -> None:
    exe = _installed()
    r = subprocess.run([exe, "prove", "--bogus", "x"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "No such option: --bogus" in r.stderr


# The lean warm path: a compiled model is proven without parsing ONNX or loading what proving does not need,
# through the console script's own entry (zkml_cli.boot: the early prover, the core-only app)
_HEAVY_PROBE = (
    "import sys\n"
    "import zkml._prove_worker as pw\n"
    "taken = []\n"
    "orig = pw.take_prestarted\n"
    "def spy():\n    p = orig(); taken.append(p is not None); return p\n"
    "pw.take_prestarted = spy\n"
    "from zkml_cli.boot import main\n"
    "sys.argv = ['zkml', 'prove', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
    "heavy = [m for m in ('onnx', 'ml_dtypes', 'onnxruntime', 'torch', 'web3', 'ray', 'fastapi', 'matplotlib', 'pydantic')"
    " if m in sys.modules]\n"
    "print('HEAVY', code, ','.join(heavy), file=sys.stderr)\n"
    "print('TAKEN', taken, file=sys.stderr)\n"
)


@pytest.mark.parametrize("by", ["onnx", "id"])
def test_warm_prove_imports_no_onnx(by: str, mlp_circuit, store: Store, test_set, tmp_path: Path) -> None:
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps({"input_data": [test_set[0][0].tolist()]}))
    target = str(MLP) if by == "onnx" else mlp_circuit.circuit_id
    r = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", _HEAVY_PROBE, target, "-i", str(inp),
                        "-o", str(tmp_path / "p.json"), "--store", str(store.root)],
                       capture_output=True, text=True, timeout=300)
    line = [x for x in r.stderr.splitlines() if x.startswith("HEAVY")][-1].split(" ")
    assert line[1] == "0", r.stderr
    assert line[2:] == [""], f"a warm prove imported {line[2]}"
    assert "TAKEN [True]" in r.stderr  # the prover started first thing is the one that proved
    assert f"circuit {mlp_circuit.circuit_id} (cached)" in r.stdout
    from zkml.bundle import Bundle
    from zkml.verify import verify

    assert verify(Bundle.load(tmp_path / "p.json"), store).valid


@pytest.mark.parametrize(("argv", "early"), [
    (["prove", "c1", "-i", "x.json"], True),
    (["prove", "c1", "-i", "x.json", "--json", "--timeout", "5"], True),
    (["prove", "c1", "-i", "x.json", "--workers", "2"], False),
    (["prove", "c1", "-i", "x.json", "--workers=2"], False),
    (["prove", "c1", "-i", "x.json", "--ray", "auto"], False),
    (["prove", "c1", "-i", "x.json", "--server", "http://127.0.0.1:1"], False),
    (["prove", "--help"], False),
    (["verify", "proof.json"], False),
    ([], False),
])
def test_early_prover_only_for_a_plain_local_prove(argv: list[str], early: bool) -> None:
    from zkml_cli.boot import wants_early_prover

    assert wants_early_prover(argv) is early


def test_untaken_early_prover_holds_no_secret_and_ends_with_its_parent() -> None:
    """A prover started early that nothing takes (bad input, say) exits with the CLI; it never saw a key."""
    import time

    import psutil

    code = ("import time, zkml._prove_worker as pw; pw.prestart(); print(pw._prestarted.pid, flush=True); time.sleep(1.5);"
            "print(open(f'/proc/{pw._prestarted.pid}/environ', 'rb').read().count(b'hunter2'), flush=True)")
    env = {**os.environ, "ZKML_PRIVATE_KEY": "0x" + "11" * 32, "MY_DEPLOY_SECRET": "hunter2", "ZKML_KEY_PASSWORD": "hunter2"}
    r = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)
    pid, secrets = (int(x) for x in r.stdout.split())
    assert secrets == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the untaken early prover {pid} outlived its parent")


def test_installed_core_command_is_the_same_command() -> None:
    """The console script runs core commands on a core-only app: same usage line, same one-line errors."""
    exe = _installed()
    lean = subprocess.run([exe, "verify", "--help"], capture_output=True, text=True)
    full = runner.invoke(app, ["verify", "--help"])
    assert lean.returncode == 0 and full.exit_code == 0
    assert "Usage: zkml verify [OPTIONS]" in " ".join(lean.stdout.split())
    assert [ln.split()[0] for ln in lean.stdout.splitlines() if ln.strip().startswith("│ --")] == \
        [ln.split()[0] for ln in full.stdout.splitlines() if ln.strip().startswith("│ --")]
    r = subprocess.run([exe, "verify", "/nonexistent/proof.json"], capture_output=True, text=True)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
