"""Cross-runtime comparison: clean models pass, altered models and manipulated bundles are caught.

Everything runs for real: onnxruntime, tract, torch, ezkl witnesses and proofs
of the session circuits. The "broken" model (classes rotated in the last
layer) is shared with the gate tests, so its circuit is compiled once.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from typer.testing import CliRunner

from support import CALIBRATION, MLP, MODELS
from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model, open_circuit
from zkml.compare import (
    FLOOR_LSB,
    MARGIN,
    check_tolerance,
    compare_bundle,
    compare_model,
    derive_tolerance,
    float_tolerance,
    plot,
    within,
)
from zkml.errors import ConfigError, InputError
from zkml.inputs import load_samples
from zkml.prove import prove
from zkml.store import Store
from zkml.util import sha256_file, write_json_atomic
from zkml.verify import artifacts_from_store, verify_bundle
from zkml_cli.main import app

runner = CliRunner()


def error_lines(stderr: str) -> list[str]:
    """stderr without progress lines: what a failing command says (must be exactly one line)."""
    return [ln for ln in stderr.splitlines() if not ln.startswith("  .. ")]


TORCH_SPEC = f"{MODELS / 'train_digits.py'}:mlp"


# Model surgery


def alter_onnx(src: Path, dst: Path, how: str) -> Path:
    """Write a changed copy of an ONNX model.

    ``rotate``: the last layer's rows (weights and bias) rotated by one class,
    so every prediction moves to the next label (a deliberately broken model);
    ``nudge``: one first-layer weight moved by 1e-3 (invisible in the outputs).
    """
    m = onnx.load(str(src))
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init).copy()
        if how == "rotate" and a.shape[0] == 10:
            a = np.roll(a, 1, axis=0)
        elif how == "nudge" and a.ndim == 2 and a.shape[1] == 64:
            a[0, 0] += 1e-3
        else:
            continue
        init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(m, str(dst))
    return dst


def broken_copy(folder: Path) -> Path:
    """The digits MLP with rotated classes, plus its calibration file beside it."""
    dst = alter_onnx(MLP, folder / "digits_broken.onnx", "rotate")
    shutil.copyfile(CALIBRATION, folder / "digits_broken_calibration.json")
    return dst


@pytest.fixture(scope="session")
def broken_circuit(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Circuit:
    """The broken copy compiled with default options (an honest circuit of a bad model)."""
    onnx_path = broken_copy(tmp_path_factory.mktemp("broken"))
    circuit, _ = compile_model(onnx_path, load_samples(CALIBRATION, (64,)), CircuitOptions(), store=store)
    return circuit


def _x(test_set: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    return test_set[0][:n]


# Tolerance


@pytest.mark.parametrize(
    ("emulated", "scale", "expected"),
    [
        (0.0, 6, FLOOR_LSB / 64),                 # exact emulation: the rescale floor alone
        (0.1, 6, MARGIN * 0.1 + FLOOR_LSB / 64),
        (0.1, 10, MARGIN * 0.1 + FLOOR_LSB / 1024),
        (0.0, 0, float(FLOOR_LSB)),               # scale 0: whole-number steps
        (1e-9, 20, MARGIN * 1e-9 + FLOOR_LSB * 2.0**-20),
    ],
)
def test_derived_tolerance_formula(emulated: float, scale: int, expected: float) -> None:
    assert derive_tolerance(emulated, scale) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("error", "tol", "ok"),
    [
        (0.25, 0.25, True),                        # equal to the tolerance passes
        (np.nextafter(0.25, 1.0), 0.25, False),    # one ulp above fails
        (0.0, 0.0, True),                          # zero tolerance, exact runtime
        (1e-12, 0.0, False),                       # zero tolerance, any error
        (math.nan, 1.0, False),                    # NaN never passes
        (math.inf, 1e308, False),
    ],
)
def test_within_edges(error: float, tol: float, ok: bool) -> None:
    assert within(error, tol) is ok


@pytest.mark.parametrize("bad", [-1e-9, -1.0, math.nan, math.inf, -math.inf])
def test_bad_tolerance_is_a_config_error(bad: float) -> None:
    with pytest.raises(ConfigError, match="tolerance must be a finite number >= 0"):
        check_tolerance(bad)


@pytest.mark.parametrize(("ref", "tol"), [([0.5, -0.25], 1e-4), ([30.0, -2.0], 30e-4), ([0.0], 1e-4)])
def test_float_tolerance_is_relative_above_one(ref: list[float], tol: float) -> None:
    assert float_tolerance(np.asarray([ref])) == pytest.approx(tol)


# Model mode


def test_clean_model_passes_on_the_whole_test_set(mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = test_set
    c = compare_model(MLP, mlp_circuit, x, labels=y, torch_spec=TORCH_SPEC)
    assert c.ok, c.failures
    rows = {r.runtime: r for r in c.rows}
    # The circuit is quantized: a real error, below the derived tolerance
    circ = rows["circuit"]
    assert 0.0 < circ.max_abs_error <= circ.tolerance
    assert circ.argmax_agreement == 1.0
    tol = c.tolerances[0]
    assert tol.source == "derived" and tol.output_scale == mlp_circuit.settings["model_output_scales"][0]
    assert tol.value == pytest.approx(derive_tolerance(tol.emulated_error, tol.output_scale))
    # The emulation predicts the circuit's error (same order, never far below it)
    assert 0.5 * circ.max_abs_error <= tol.emulated_error <= 2 * circ.max_abs_error
    # Float runtimes agree to float precision
    assert rows["tract"].status == "ok" and rows["tract"].max_abs_error <= 1e-5
    assert rows["torch"].status == "ok" and rows["torch"].max_abs_error <= 1e-4
    assert c.accuracy("onnxruntime") == pytest.approx(0.95, abs=0.01)
    assert c.accuracy("circuit") == c.accuracy("onnxruntime") == c.accuracy("tract")
    assert [ch.ok for ch in c.checks] == [True]


@pytest.mark.parametrize(("how", "numbers_fail"), [("rotate", True), ("nudge", False)])
def test_onnx_altered_after_compiling_is_caught(
    how: str, numbers_fail: bool, mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    altered = alter_onnx(MLP, tmp_path / "digits_mlp.onnx", how)
    c = compare_model(altered, mlp_circuit, _x(test_set, 8))
    assert not c.ok
    digest = c.checks[0]
    assert digest.name == "model digest" and digest.ok is False and "changed after compiling" in digest.detail
    circ = next(r for r in c.rows if r.runtime == "circuit")
    assert circ.within is (not numbers_fail)
    if numbers_fail:
        assert circ.max_abs_error > 5 * circ.tolerance
    # The float runtimes run the altered ONNX too, so they agree with onnxruntime
    assert next(r for r in c.rows if r.runtime == "tract").within is True


def test_torch_module_with_other_weights_disagrees(test_set: tuple[np.ndarray, np.ndarray], mlp_circuit: Circuit, tmp_path: Path) -> None:
    from zkml.export import load_factory

    state = load_factory(TORCH_SPEC).state_dict()
    state["fc2.bias"] = state["fc2.bias"] + 0.01
    w = tmp_path / "other.pt"
    torch.save(state, w)
    c = compare_model(MLP, mlp_circuit, _x(test_set, 4), torch_spec=TORCH_SPEC, torch_weights=w)
    row = next(r for r in c.rows if r.runtime == "torch")
    assert row.within is False and row.max_abs_error == pytest.approx(0.01, rel=1e-3)
    assert any("torch output" in f for f in c.failures)


@pytest.mark.parametrize("factor", [1.0, "below"])
def test_tolerance_override_edges(factor: Any, mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray]) -> None:
    x = _x(test_set, 4)
    err = next(r for r in compare_model(MLP, mlp_circuit, x).rows if r.runtime == "circuit").max_abs_error
    tol = err if factor == 1.0 else float(np.nextafter(err, 0.0))
    c = compare_model(MLP, mlp_circuit, x, tolerance=tol)
    assert c.tolerances[0].source == "override" and c.tolerances[0].value == tol
    assert c.ok is (factor == 1.0)


def test_missing_second_runtime_is_a_row_not_a_failure(
    mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tract", None)  # import tract -> ImportError
    c = compare_model(MLP, mlp_circuit, _x(test_set, 2))
    row = next(r for r in c.rows if r.runtime == "tract")
    assert row.status == "not installed" and row.within is None
    assert c.ok


def test_plot_draws_a_png(mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    for n in (1, 16):
        c = compare_model(MLP, mlp_circuit, _x(test_set, n))
        out = plot(c, tmp_path / f"cmp{n}.png")
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


# Bundle mode


def test_clean_bundle_passes(mlp_bundle: Bundle, mlp_circuit: Circuit) -> None:
    c = compare_bundle(mlp_bundle, circuit=mlp_circuit)
    assert c.ok, c.failures
    assert {ch.name: ch.ok for ch in c.checks} == {"model digest": True, "input commitment": True, "proofs": True}
    assert c.values["circuit"].tolist() == mlp_bundle.outputs


def test_hidden_input_must_match_the_commitment(mlp_circuit: Circuit, test_set: tuple[np.ndarray, np.ndarray]) -> None:
    x = _x(test_set, 2)
    b = prove(mlp_circuit, x, reveal_input=False)
    assert b.to_json()["input"]["values"] is None
    with pytest.raises(InputError, match="does not reveal its input"):
        compare_bundle(b, circuit=mlp_circuit)
    # The exact input: it matches the proofs' public instances (an unrevealed input has no sha256 in the bundle)
    assert b.input_sha256 is None
    c = compare_bundle(b, circuit=mlp_circuit, samples=x)
    assert c.ok and "quantized public input" in c.checks[1].detail
    # Off by less than half a quantization step: not the same floats, but the same public instances
    c = compare_bundle(b, circuit=mlp_circuit, samples=x + 1e-4)
    assert c.ok and "quantized public input" in c.checks[1].detail
    # Another input: refused before anything is judged
    with pytest.raises(InputError, match="not the bundle's input"):
        compare_bundle(b, circuit=mlp_circuit, samples=test_set[0][2:4])
    with pytest.raises(InputError, match="1 sample"):
        compare_bundle(b, circuit=mlp_circuit, samples=x[:1])


def _forge(broken: Circuit, honest_onnx: Path, store: Store, root: Path) -> Circuit:
    """A circuit folder compiled from the broken weights whose manifest claims the honest ONNX.

    Everything in it is self-consistent (files match the manifest), so bundle
    verification cannot tell; only re-executing the named ONNX can.
    """
    from zkml.util import sha256_json

    forged_store = Store(root / "forged-store")
    shutil.copytree(store.root / "srs", forged_store.root / "srs")
    man = json.loads((broken.folder / "manifest.json").read_text())
    man["key"]["onnx_sha256"] = man["model"]["sha256"] = sha256_file(honest_onnx)
    man["store_key"] = sha256_json(man["key"])
    man["circuit_id"] = man["store_key"][:20]
    folder = forged_store.circuit_dir(man["circuit_id"])
    shutil.copytree(broken.folder, folder)
    shutil.copyfile(honest_onnx, folder / "model.onnx")
    man["files"]["model.onnx"] = sha256_file(folder / "model.onnx")
    write_json_atomic(folder / "manifest.json", man)
    return open_circuit(folder, forged_store)


def test_bundle_from_a_circuit_of_other_weights_is_flagged(
    broken_circuit: Circuit, store: Store, test_set: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    forged = _forge(broken_circuit, MLP, store, tmp_path)
    b = prove(forged, _x(test_set, 1))
    assert b.model_sha256 == sha256_file(MLP)  # the bundle names the honest model
    # Verification alone is satisfied: every digest and proof is consistent
    fstore = Store(tmp_path / "forged-store")
    v = verify_bundle(b, artifacts_from_store(b, fstore))
    assert v.valid, v.reason
    # Reproduction from the honest ONNX is not: the vk is not the honest model's
    from zkml.verify import verify

    r = verify(b, fstore, model=MLP)
    assert not r.valid and "NOT the one" in (r.reason or "")
    # Re-execution is not
    c = compare_bundle(b, circuit=forged)
    assert not c.ok
    assert {ch.name: ch.ok for ch in c.checks} == {"model digest": True, "input commitment": True, "proofs": True}
    circ = next(r for r in c.rows if r.runtime == "circuit")
    assert circ.within is False and circ.max_abs_error > 1.0 and circ.argmax_agreement == 0.0
    # And through the CLI: exit 1, one line on stderr
    path = tmp_path / "forged.json"
    b.save(path)
    r = runner.invoke(app, ["compare", str(path), "--store", str(fstore.root)])
    assert r.exit_code == 1, r.stdout
    assert "MISMATCH" in r.stdout and "verdict: FAIL" in r.stdout
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: mismatch: circuit output 'logits': max abs error")


def test_bundle_with_edited_outputs_is_flagged(mlp_bundle_file: Path, mlp_circuit: Circuit, tmp_path: Path) -> None:
    d = json.loads(mlp_bundle_file.read_text())
    d["outputs"]["values"][0][3] += 1.0
    b = Bundle.parse(d)
    c = compare_bundle(b, circuit=mlp_circuit)
    assert not c.ok
    proofs = next(ch for ch in c.checks if ch.name == "proofs")
    assert proofs.ok is False and "reported outputs differ" in proofs.detail
    assert next(r for r in c.rows if r.runtime == "circuit").within is False
    # Without the circuit's artifacts the proofs are unchecked, but re-execution still flags it
    c = compare_bundle(b, onnx_path=MLP)
    assert next(ch for ch in c.checks if ch.name == "proofs").ok is None
    assert not c.ok


def test_bundle_against_another_onnx_is_flagged(mlp_bundle: Bundle, tmp_path: Path) -> None:
    other = alter_onnx(MLP, tmp_path / "other.onnx", "nudge")
    c = compare_bundle(mlp_bundle, onnx_path=other)
    assert c.checks[0].name == "model digest" and c.checks[0].ok is False
    assert not c.ok


def test_private_outputs_cannot_be_compared(mlp_bundle: Bundle) -> None:
    d = json.loads(json.dumps(mlp_bundle.to_json()))
    d["outputs"]["values"] = None
    with pytest.raises(ConfigError, match="outputs are private"):
        compare_bundle(Bundle.parse(d), onnx_path=MLP)


# CLI


def _cli(*args: str, store: Store) -> Any:
    return runner.invoke(app, ["compare", *args, "--store", str(store.root)])


def test_cli_model_table_and_json(store: Store, mlp_circuit: Circuit, tmp_path: Path) -> None:
    r = _cli(str(MLP), "--input", str(MODELS / "digits_input.json"), "--torch", TORCH_SPEC, "--plot", str(tmp_path / "p.png"), store=store)
    assert r.exit_code == 0, r.stderr
    for word in ("onnxruntime", "circuit", "tract", "torch", "tolerance 'logits'", "verdict: PASS"):
        assert word in r.stdout
    assert (tmp_path / "p.png").is_file()
    r = _cli(str(MLP), "--input", str(MODELS / "digits_input.json"), "--json", store=store)
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["ok"] and d["circuit_id"] == mlp_circuit.circuit_id and d["samples"] == 1
    assert {row["runtime"] for row in d["rows"]} == {"circuit", "tract", "torch"}
    assert len(d["values"]["circuit"]) == 1 and len(d["values"]["circuit"][0]) == 10


def test_cli_altered_model_exits_1(store: Store, mlp_circuit: Circuit, tmp_path: Path) -> None:
    altered = alter_onnx(MLP, tmp_path / "digits_mlp.onnx", "nudge")
    r = _cli(str(altered), "--circuit", mlp_circuit.circuit_id, "--input", str(MODELS / "digits_input.json"), store=store)
    assert r.exit_code == 1
    assert "check model digest: FAIL" in r.stdout
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: mismatch: ") and "changed after compiling" in line


def test_cli_zero_tolerance_fails_a_clean_model(store: Store, mlp_circuit: Circuit) -> None:
    r = _cli(str(MLP), "--input", str(MODELS / "digits_input.json"), "--tolerance", "0", store=store)
    assert r.exit_code == 1 and "exceeds tolerance 0" in r.stderr


def test_cli_clean_bundle(store: Store, mlp_bundle_file: Path, mlp_circuit: Circuit) -> None:
    r = _cli(str(mlp_bundle_file), store=store)
    assert r.exit_code == 0, r.stderr
    assert "[proof bundle]" in r.stdout and "check proofs: ok" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tolerance", "-1"], "tolerance must be a finite number >= 0"),
        ([], "comparing a model needs --input"),
        (["--input", "{inp}", "--weights", "{inp}"], "--weights needs --torch"),
        (["--input", "{inp}", "--torch", "no_such_file.py:mlp"], "module file not found"),
        (["--input", "{missing}"], "input file not found"),
        (["--input", "{inp}", "--model", "{mlp}"], "--model is for a proof bundle"),
    ],
)
def test_cli_bad_arguments_exit_2(args: list[str], message: str, store: Store, mlp_circuit: Circuit, tmp_path: Path) -> None:
    fill = {"inp": str(MODELS / "digits_input.json"), "missing": str(tmp_path / "nope.json"), "mlp": str(MLP)}
    r = _cli(str(MLP), *[a.format(**fill) for a in args], store=store)
    assert r.exit_code == 2, r.stdout
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: ") and message in line
