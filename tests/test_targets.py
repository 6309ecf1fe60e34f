"""One stable circuit per model: `compile model.onnx` then `prove`/`compare`/`inspect model.onnx` use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from support import CALIBRATION, MLP
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_compile_then_prove_and_compare_with_just_the_onnx(tmp_path: Path, test_set: tuple[np.ndarray, np.ndarray]) -> None:
    model = tmp_path / "net.onnx"  # no calibration file beside it
    shutil.copyfile(MLP, model)
    store = str(tmp_path / "store")
    x = tmp_path / "x.npy"
    np.save(x, test_set[0][5:6])
    # Before compiling: a clear refusal, never a circuit calibrated on the proof's own input
    code, out, err = _run("prove", str(model), "--input", str(x), "-o", str(tmp_path / "p0.json"), "--store", store)
    assert code == 2 and "no circuit for net.onnx" in err and "zkml compile" in err
    assert not (tmp_path / "p0.json").exists()
    code, out, err = _run("compile", str(model), "--calibration", str(CALIBRATION), "--json", "--store", store)
    assert code == 0, err
    cid = json.loads(out)["circuit_id"]
    code, out, err = _run("prove", str(model), "--input", str(x), "-o", str(tmp_path / "p.json"), "--json", "--store", store)
    assert code == 0, err
    assert json.loads(out)["circuit_id"] == cid and json.loads(out)["cache_hit"] is True
    code, out, err = _run("compare", str(model), "--input", str(x), "--json", "--store", store)
    assert code == 0, err
    assert json.loads(out)["circuit_id"] == cid
    # Asking for another batch size: not silently a new calibration either
    code, out, err = _run("prove", str(model), "--input", str(x), "--batch", "2", "-o", str(tmp_path / "p2.json"),
                          "--store", store)
    assert code == 2 and cid in err and "batch_size=2" in err
    # The newest compile becomes the current circuit
    code, out, err = _run("compile", str(model), "--calibration", str(CALIBRATION), "--batch", "2", "--json", "--store", store)
    cid2 = json.loads(out)["circuit_id"]
    assert cid2 != cid
    code, out, err = _run("prove", str(model), "--input", str(x), "-o", str(tmp_path / "p3.json"), "--json", "--store", store)
    assert code == 0 and json.loads(out)["circuit_id"] == cid2
    assert Store(store).model_circuit_ids(json.loads(out).get("model_sha256") or _sha(model))[:2] == [cid2, cid]


def _sha(p: Path) -> str:
    from zkml.util import sha256_file

    return sha256_file(p)


def test_memory_budget_refuses_before_building(tmp_path: Path) -> None:
    from support import REPO

    store = str(tmp_path / "store")
    code, out, err = _run("compile", str(REPO / "circuits" / "digits_mlp.toml"), "--max-memory", "0.001", "--store", store)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "needs ~" in lines[0] and "logrows" in lines[0] and "--max-memory" in lines[0]
    assert not any((Path(store) / "circuits").glob("[0-9a-f]*"))  # nothing built
