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


def test_warm_compile_inputs_are_found_by_digest_without_parsing_onnx(store: Store, mlp_circuit, cnn_circuit,
                                                                        tmp_path: Path) -> None:
    """`prove model.onnx --calibration FILE` (and a recipe) on a circuit already built: found from the files'
    digests, no ONNX parsed; a record naming another model's circuit, or other calibration bytes, are not used."""
    import subprocess
    import sys

    from zkml.calibrate import CircuitOptions
    from zkml.targets import inputs_digest, resolve_circuit

    c, hit = resolve_circuit(str(MLP), store, calibration=CALIBRATION)  # records the inputs
    assert hit and c.circuit_id == mlp_circuit.circuit_id
    code = ("import sys; from pathlib import Path; from zkml.store import Store; from zkml.targets import resolve_circuit;"
            "c, hit = resolve_circuit(sys.argv[1], Store(sys.argv[2]), calibration=Path(sys.argv[3]));"
            "print(c.circuit_id, hit, 'onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(MLP), str(store.root), str(CALIBRATION)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [mlp_circuit.circuit_id, "True", "False"]
    # A record altered to name the CNN's circuit (another model) is not trusted: the MLP's own circuit comes back
    digest, _ = inputs_digest(MLP, CALIBRATION, CircuitOptions(), None)
    store.record_inputs(digest, cnn_circuit.circuit_id)
    c, hit = resolve_circuit(str(MLP), store, calibration=CALIBRATION)
    assert c.circuit_id == mlp_circuit.circuit_id and hit
    assert store.circuit_for_inputs(digest) == mlp_circuit.circuit_id  # and the record is put right
    # Other calibration bytes are other inputs: a different digest, so never this record
    other = tmp_path / "cal.json"
    other.write_text(CALIBRATION.read_text() + "\n")
    assert inputs_digest(MLP, other, CircuitOptions(), None)[0] != digest
    assert inputs_digest(MLP, CALIBRATION, CircuitOptions(batch_size=2), None)[0] != digest
