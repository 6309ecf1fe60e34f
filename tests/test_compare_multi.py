"""zkml compare on models with several inputs (float, int64, bool) and several outputs.

Real zoo models (tests/zoo.py) compiled into the session store the way
tests/test_zoo.py compiles them (their own calibration feed, default options);
every runtime runs for real: onnxruntime, tract, ezkl witnesses and proofs.
The reference is re-computed here with a plain onnxruntime session fed by
hand, so a runtime fed a different (e.g. quantized int) input cannot agree by
construction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import zoo
from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.compare import compare_bundle, compare_model, load_input
from zkml.errors import ConfigError, InputError
from zkml.onnx_check import load_model
from zkml.prove import prove
from zkml.store import Store
from zkml.util import sha256_json
from zkml_cli.main import app

runner = CliRunner()

# two float inputs; float + int64 index (no batch axis); one int64 input (Embedding); two outputs; bool mask + 2 floats
MODELS = ("matmul_two_inputs", "gather_two_inputs", "embedding", "two_heads", "where_mask")


def error_lines(stderr: str) -> list[str]:
    """stderr without progress lines: what a failing command says (must be exactly one line)."""
    return [ln for ln in stderr.splitlines() if not ln.startswith("  .. ")]


@pytest.fixture(scope="session")
def zoo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, np.ndarray]]]:
    """The zoo models of these tests: ONNX path and calibration feed."""
    root = tmp_path_factory.mktemp("zoo-compare")
    out = {}
    for name in MODELS:
        p = root / f"{name}.onnx"
        out[name] = (p, zoo.by_name(name).build(p))
    return out


@pytest.fixture(scope="session")
def circuits(zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], store: Store) -> dict[str, Circuit]:
    """Each model compiled with its zoo options on its calibration feed (as tests/test_zoo.py does)."""
    out = {}
    for name in MODELS:
        path, feed = zoo_models[name]
        out[name], _ = compile_model(path, feed, CircuitOptions(**zoo.by_name(name).options), store=store)
    return out


def reference(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    """onnxruntime by hand, one sample per call: every output flattened and concatenated per sample."""
    info = load_model(path, check_ops=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
    for i in range(len(next(iter(feed.values())))):
        args = {}
        for s in info.inputs:
            v = feed[s.name][i : i + 1].astype(s.dtype)
            args[s.name] = v if info.batched else v.reshape(s.shape)
        rows.append(np.concatenate([np.asarray(r, np.float64).reshape(-1) for r in sess.run(None, args)]))
    return np.stack(rows)


# Model mode


@pytest.mark.parametrize("name", MODELS)
def test_every_output_of_a_multi_input_model_is_judged(
    name: str, zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit]
) -> None:
    path, feed = zoo_models[name]
    circuit = circuits[name]
    c = compare_model(path, circuit, feed)
    assert c.ok, c.failures
    info = load_model(path, check_ops=False)
    assert c.samples == len(next(iter(feed.values())))
    assert c.inputs == [(s.name, s.shape, s.dtype) for s in info.inputs]
    # The reference is onnxruntime on the feed as given (int/bool inputs as integers)
    assert np.array_equal(c.values["onnxruntime"], reference(path, feed))
    # One circuit row and one tolerance per model output, in order, each within its own tolerance
    names = [n for n, _ in c.outputs]
    assert names == list(info.output_names)
    circ = [r for r in c.rows if r.runtime == "circuit"]
    assert [r.output for r in circ] == names == [t.output for t in c.tolerances]
    scales = circuit.settings["model_output_scales"]
    for row, tol, scale in zip(circ, c.tolerances, scales, strict=True):
        assert row.status == "ok" and row.within is True
        assert row.max_abs_error <= row.tolerance == tol.value
        assert tol.source == "derived" and tol.output_scale == scale
    # The circuit is quantized: a real error somewhere
    assert max(r.max_abs_error for r in circ) > 0.0
    # tract runs the same feed and agrees to float precision
    tract = [r for r in c.rows if r.runtime == "tract"]
    assert [r.output for r in tract] == names
    assert all(r.status == "ok" and r.within is True and r.max_abs_error <= 1e-5 for r in tract)
    assert [ch.name for ch in c.checks] == ["model digest"] and c.checks[0].ok is True


def test_outputs_are_judged_each_against_its_own_tolerance(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit]
) -> None:
    path, feed = zoo_models["two_heads"]
    clean = compare_model(path, circuits["two_heads"], feed)
    err = {r.output: r.max_abs_error for r in clean.rows if r.runtime == "circuit"}
    assert set(err) == {"cls", "reg"} and err["cls"] != err["reg"]
    lo, hi = sorted(err, key=err.__getitem__)
    # A tolerance equal to the smaller error: that output passes, the other fails, and only it is named
    c = compare_model(path, circuits["two_heads"], feed, tolerance=err[lo])
    verdict = {r.output: r.within for r in c.rows if r.runtime == "circuit"}
    assert verdict == {lo: True, hi: False}
    assert [f for f in c.failures] == [f"circuit output '{hi}': max abs error {err[hi]:.4g} exceeds tolerance {err[lo]:.4g}"]


def test_int_input_is_fed_as_integers(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit]
) -> None:
    """The Embedding's rows come back for the given indices: a quantized index (idx * 2^s) would pick others or fail."""
    path, feed = zoo_models["embedding"]
    idx = np.array([[0, 5, 2], [4, 4, 1]], np.int64)
    c = compare_model(path, circuits["embedding"], {"idx": idx})
    assert c.ok, c.failures
    import onnx
    from onnx import numpy_helper

    (table,) = [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer if i.dims == [6, 3]]
    assert np.allclose(c.values["onnxruntime"], table[idx].reshape(2, -1), atol=0)
    assert np.abs(c.values["circuit"] - table[idx].reshape(2, -1)).max() <= c.tolerances[0].value


def test_input_files_in_every_format_give_the_same_comparison(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit], tmp_path: Path
) -> None:
    path, feed = zoo_models["gather_two_inputs"]
    x, idx = feed["x"][:3], feed["idx"][:3]
    ezkl_json = tmp_path / "ezkl.json"
    ezkl_json.write_text(json.dumps({"input_data": [x.reshape(-1).tolist(), idx.reshape(-1).tolist()]}))
    named_json = tmp_path / "named.json"
    named_json.write_text(json.dumps({"x": x.tolist(), "idx": idx.tolist(), "y": [0, 1, 2]}))  # labels ride along
    npz = tmp_path / "named.npz"
    np.savez(npz, x=x, idx=idx)
    specs = circuits["gather_two_inputs"].inputs
    values = []
    for f in (ezkl_json, named_json, npz):
        got = load_input(f, specs)
        assert set(got) == {"x", "idx"} and got["idx"].dtype == np.int64 and np.array_equal(got["idx"], idx)
        values.append(compare_model(path, circuits["gather_two_inputs"], got).values["circuit"])
    assert np.array_equal(values[0], values[1]) and np.array_equal(values[0], values[2])


TORCH_TWO = """
import torch


class MatMul2(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, a, b):
        return (a @ b) * self.factor


def make():
    return MatMul2(1.0)


def off():
    return MatMul2(1.01)
"""


@pytest.mark.parametrize("factory, agrees", [("make", True), ("off", False)])
def test_torch_module_with_two_inputs(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit], tmp_path: Path,
    factory: str, agrees: bool
) -> None:
    """A two-input torch module gets both inputs, positionally in the ONNX input order; a different module disagrees."""
    path, feed = zoo_models["matmul_two_inputs"]
    mod = tmp_path / "mm.py"
    mod.write_text(TORCH_TWO)
    c = compare_model(path, circuits["matmul_two_inputs"], feed, torch_spec=f"{mod}:{factory}")
    (row,) = [r for r in c.rows if r.runtime == "torch"]
    assert row.status == "ok" and row.within is agrees, row
    if agrees:
        assert row.max_abs_error <= 1e-5
    else:
        assert row.max_abs_error > 1e-3 and any("torch output" in f for f in c.failures)


def test_an_onnx_with_other_inputs_is_refused(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit]
) -> None:
    path, feed = zoo_models["matmul_two_inputs"]
    with pytest.raises(ConfigError, match=r"the circuit takes a float32\[3, 4\], b float32\[4, 2\]; .* takes x float32\[1, 5\]"):
        compare_model(zoo_models["gather_two_inputs"][0], circuits["matmul_two_inputs"], feed)


# CLI


def _cli(*args: str, store: Store) -> Any:
    return runner.invoke(app, ["compare", *args, "--store", str(store.root)])


def test_cli_multi_input_multi_output(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit], store: Store, tmp_path: Path
) -> None:
    path, feed = zoo_models["gather_two_inputs"]
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps({"input_data": [feed["x"][:2].reshape(-1).tolist(), feed["idx"][:2].reshape(-1).tolist()]}))
    r = _cli(str(path), "--circuit", circuits["gather_two_inputs"].circuit_id, "--input", str(inp), store=store)
    assert r.exit_code == 0, r.stderr
    assert "inputs: x float32[1, 5], idx int64[3]" in r.stdout and "verdict: PASS" in r.stdout
    r = _cli(str(path), "--circuit", circuits["gather_two_inputs"].circuit_id, "--input", str(inp), "--json", store=store)
    d = json.loads(r.stdout)
    assert d["ok"] and d["samples"] == 2
    assert d["inputs"] == [{"name": "x", "shape": [1, 5], "dtype": "float32"}, {"name": "idx", "shape": [3], "dtype": "int64"}]
    # Two outputs: a row each
    path2, feed2 = zoo_models["two_heads"]
    npz = tmp_path / "x.npz"
    np.savez(npz, x=feed2["x"])
    r = _cli(str(path2), "--circuit", circuits["two_heads"].circuit_id, "--input", str(npz), "--json", store=store)
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert [(row["runtime"], row["output"]) for row in d["rows"] if row["runtime"] != "torch"] == [
        ("circuit", "cls"), ("circuit", "reg"), ("tract", "cls"), ("tract", "reg")]
    assert [t["output"] for t in d["tolerances"]] == ["cls", "reg"]
    assert all(row["within"] for row in d["rows"] if row["runtime"] == "circuit")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"x": [[0.1, 0.2, 0.3, 0.4, 0.5]], "index": [0, 1, 2]}, "the model's inputs are ['x', 'idx']; missing ['idx']; unknown ['index']"),
        ({"x": [0.1, 0.2, 0.3, 0.4], "idx": [0, 1, 2]}, "'x': 4 values is not a multiple of one sample's 5"),
        ({"x": [[0.1, 0.2, 0.3, 0.4, 0.5]], "idx": [0.5, 1, 2]}, "'idx': the model takes int64 here, but the values are not all integers"),
        ({"x": [[0.1, 0.2, 1e6, 0.4, 0.5]], "idx": [0, 1, 2]}, "input 'x' value 1e+06 is beyond the circuit's quantization range"),
        ({"x": [[0.1, 0.2, 0.3, 0.4, 0.5]], "idx": [0, 1]}, "'idx': 2 values is not a multiple of one sample's 3"),
        ({"input_data": [[0.1, 0.2, 0.3, 0.4, 0.5]]}, "the model takes 2 inputs ['x', 'idx']; the file has 1"),
        ({"x": [[0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]], "idx": [0, 1, 2]}, "inputs hold different numbers of samples"),
        ({"x": [[0.1, 0.2, 0.3, 0.4, 0.5]], "idx": [0, 1, 7]}, "onnxruntime failed"),  # index beyond the 5 columns
    ],
)
def test_cli_mismatching_input_is_one_line(
    data: dict[str, Any], message: str, zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]],
    circuits: dict[str, Circuit], store: Store, tmp_path: Path,
) -> None:
    inp = tmp_path / "bad.json"
    inp.write_text(json.dumps(data))
    r = _cli(str(zoo_models["gather_two_inputs"][0]), "--circuit", circuits["gather_two_inputs"].circuit_id,
             "--input", str(inp), store=store)
    assert r.exit_code == 2, r.stdout
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: ") and message in line


def test_cli_torch_with_two_inputs(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit], store: Store, tmp_path: Path
) -> None:
    path, feed = zoo_models["matmul_two_inputs"]
    npz = tmp_path / "ab.npz"
    np.savez(npz, a=feed["a"][:1], b=feed["b"][:1])
    mod = tmp_path / "mm.py"
    mod.write_text(TORCH_TWO)
    r = _cli(str(path), "--circuit", circuits["matmul_two_inputs"].circuit_id, "--input", str(npz),
             "--torch", f"{mod}:make", "--json", store=store)
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    (row,) = [row for row in d["rows"] if row["runtime"] == "torch"]
    assert row["status"] == "ok" and row["within"] is True


# Bundle mode


@pytest.fixture(scope="session")
def gather_bundle(zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit]) -> Bundle:
    """A real proof of two samples of the float + int64 model (public input: revealed)."""
    _, feed = zoo_models["gather_two_inputs"]
    return prove(circuits["gather_two_inputs"], {k: v[:2] for k, v in feed.items()}, timeout=300)


def test_multi_input_bundle_passes(gather_bundle: Bundle, circuits: dict[str, Circuit]) -> None:
    c = compare_bundle(gather_bundle, circuit=circuits["gather_two_inputs"])
    assert c.ok, c.failures
    assert {ch.name: ch.ok for ch in c.checks} == {"model digest": True, "input commitment": True, "proofs": True}
    commit = next(ch for ch in c.checks if ch.name == "input commitment")
    assert commit.detail == "the input is revealed in the bundle and matches the quantized public input of every proof"
    assert c.values["circuit"].tolist() == gather_bundle.outputs
    assert c.inputs == [("x", (1, 5), "float32"), ("idx", (3,), "int64")]


def _edit(bundle: Bundle, sample: int, which: int, delta: float, *, rehash: bool) -> Bundle:
    """The bundle with one revealed input value changed (x is input 0, idx input 1), its sha256 rewritten or not."""
    d = json.loads(json.dumps(bundle.to_json()))
    v = d["input"]["values"][sample][which]
    flat = v[0] if which == 0 else v
    flat[1] = flat[1] + delta if which == 0 else (flat[1] + delta) % 5  # an index stays within the 5 columns
    if rehash:
        d["input"]["sha256"] = sha256_json(d["input"]["values"])
    return Bundle.parse(d)


@pytest.mark.parametrize(
    ("which", "delta", "rehash", "detail"),
    [
        (0, 0.5, False, "the bundle's revealed input does not match its own input sha256"),
        (0, 0.5, True, "the input is revealed in the bundle and does not match the quantized public input of proof 1"),
        (1, 1, True, "the input is revealed in the bundle and does not match the quantized public input of proof 1"),
    ],
)
def test_bundle_with_an_edited_input_is_refused(
    which: int, delta: float, rehash: bool, detail: str, gather_bundle: Bundle, circuits: dict[str, Circuit]
) -> None:
    b = _edit(gather_bundle, 1, which, delta, rehash=rehash)
    c = compare_bundle(b, circuit=circuits["gather_two_inputs"])
    assert not c.ok
    commit = next(ch for ch in c.checks if ch.name == "input commitment")
    assert commit.ok is False and commit.detail.startswith(detail)
    # Without the circuit's artifacts (no proof check) the input commitment alone still refuses it
    c = compare_bundle(b, onnx_path=circuits["gather_two_inputs"].onnx)
    assert next(ch for ch in c.checks if ch.name == "proofs").ok is None
    assert next(ch for ch in c.checks if ch.name == "input commitment").ok is False and not c.ok


def test_hidden_multi_input_must_match_the_proofs(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit]
) -> None:
    _, feed = zoo_models["gather_two_inputs"]
    circuit = circuits["gather_two_inputs"]
    x = {k: v[:2] for k, v in feed.items()}
    b = prove(circuit, x, reveal_input=False, timeout=300)
    assert b.input_values is None and b.input_sha256 is None
    with pytest.raises(InputError, match="does not reveal its input"):
        compare_bundle(b, circuit=circuit)
    c = compare_bundle(b, circuit=circuit, samples=x)
    assert c.ok, c.failures
    assert next(ch for ch in c.checks if ch.name == "input commitment").detail == \
        "the input matches the quantized public input of every proof"
    # Another index in the int input: not the proven input
    other = {"x": x["x"], "idx": x["idx"].copy()}
    other["idx"][0, 0] = (other["idx"][0, 0] + 1) % 5
    with pytest.raises(InputError, match=r"not the bundle's input: the input does not match the quantized public input of proof 0"):
        compare_bundle(b, circuit=circuit, samples=other)
    with pytest.raises(InputError, match=r"missing \['idx'\]"):
        compare_bundle(b, circuit=circuit, samples={"x": x["x"]})


def test_hashed_two_float_inputs_match_one_commitment_per_input(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], store: Store, tmp_path: Path
) -> None:
    path, feed = zoo_models["matmul_two_inputs"]
    circuit, _ = compile_model(path, feed, CircuitOptions(input_visibility="hashed"), store=store)
    x = {k: v[:1] for k, v in feed.items()}
    b = prove(circuit, x, reveal_input=False, timeout=300)
    assert b.input_values is None
    c = compare_bundle(b, circuit=circuit, samples=x)
    assert c.ok, c.failures
    assert next(ch for ch in c.checks if ch.name == "input commitment").detail == \
        "the input matches the Poseidon input commitment of every proof"
    # b changed by one quantization step: a different preimage of the second input's hash
    step = 2.0 ** -b.circuit.input_scale
    moved = {"a": x["a"], "b": x["b"] + np.float32(step)}
    with pytest.raises(InputError, match="does not match the Poseidon input commitment of proof 0"):
        compare_bundle(b, circuit=circuit, samples=moved)
    # Through the CLI: the matching input file passes, the moved one is one line (exit 2)
    saved = tmp_path / "hashed.json"
    b.save(saved)
    for arrays, code in ((x, 0), (moved, 2)):
        npz = tmp_path / "in.npz"
        np.savez(npz, **arrays)
        r = _cli(str(saved), "--input", str(npz), store=store)
        assert r.exit_code == code, (r.stdout, r.stderr)
        if code:
            (line,) = error_lines(r.stderr)
            assert "--input is not the bundle's input" in line


def test_cli_multi_output_bundle_and_an_edited_one(
    zoo_models: dict[str, tuple[Path, dict[str, np.ndarray]]], circuits: dict[str, Circuit], store: Store, tmp_path: Path
) -> None:
    _, feed = zoo_models["two_heads"]
    b = prove(circuits["two_heads"], {"x": feed["x"][:1]}, timeout=300)
    good = tmp_path / "two_heads.json"
    b.save(good)
    r = _cli(str(good), "--json", store=store)
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert [(row["output"], row["within"]) for row in d["rows"] if row["runtime"] == "circuit"] == [("cls", True), ("reg", True)]
    assert {ch["name"]: ch["ok"] for ch in d["checks"]} == {"model digest": True, "input commitment": True, "proofs": True}
    # One revealed input value edited (sha256 rewritten): refused by the input commitment, exit 1, one line
    raw = json.loads(good.read_text())
    raw["input"]["values"][0][2] += 0.25
    raw["input"]["sha256"] = sha256_json(raw["input"]["values"])
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(raw))
    r = _cli(str(bad), store=store)
    assert r.exit_code == 1
    assert "check input commitment: FAIL" in r.stdout
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: mismatch: the input is revealed in the bundle and does not match the quantized public input")
