"""Compile / prove / verify on the bundled models, with real proofs.

Tamper cases, bad inputs, the store's cache and its recovery, concurrency,
and the prover's timeout.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support import CALIBRATION, MLP, REPO
from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model, open_circuit
from zkml.errors import BundleError, InputError, ModelError, ProveTimeout, StoreError, UnsupportedOpsError
from zkml.inputs import load_samples
from zkml.onnx_check import load_model
from zkml.prove import prove
from zkml.store import Store
from zkml.util import sha256_json
from zkml.verify import Artifacts, artifacts_from_store, verify_bundle


def _verify(data: dict[str, Any], store: Store) -> tuple[bool, str | None]:
    b = Bundle.parse(copy.deepcopy(data))
    v = verify_bundle(b, artifacts_from_store(b, store))
    return v.valid, v.reason


# Roundtrips


def test_mlp_roundtrip(mlp_bundle: Bundle, mlp_circuit: Circuit, store: Store, test_set: Any) -> None:
    valid, reason = _verify(mlp_bundle.to_json(), store)
    assert valid, reason
    assert mlp_bundle.samples == 1
    assert mlp_bundle.model_sha256 == load_model(MLP).sha256
    assert mlp_bundle.to_json()["circuit"]["vk_sha256"] == mlp_circuit.files["vk.key"]
    assert mlp_bundle.meta.prover_srs["insecure"] is True and mlp_bundle.warnings
    # The proven outputs are the float model's, within quantization error
    from zkml.calibrate import float_outputs

    ref = float_outputs(MLP, load_model(MLP), test_set[0][:1], 1)
    out = np.asarray(mlp_bundle.outputs)
    assert np.abs(out - ref).max() < 0.5
    assert out.argmax() == ref.argmax()


def test_cnn_roundtrip(cnn_circuit: Circuit, store: Store, test_set: Any) -> None:
    x = test_set[0][1:2].reshape(1, 1, 8, 8)
    b = prove(cnn_circuit, x)
    valid, reason = _verify(b.to_json(), store)
    assert valid, reason
    assert np.argmax(b.outputs[0]) == test_set[1][1]


def test_batch_proof_with_padding(store: Store, test_set: Any) -> None:
    """3 samples through a batch-2 circuit: two proofs, the last padded; all verify."""
    cal = load_samples(CALIBRATION, (64,))
    c, _ = compile_model(MLP, cal, CircuitOptions(batch_size=2), store=store)
    b = prove(c, test_set[0][:3])
    assert [(p.first_sample, p.real_samples) for p in b.proofs] == [(0, 2), (2, 1)]
    assert len(b.outputs) == 3
    valid, reason = _verify(b.to_json(), store)
    assert valid, reason


# Tamper cases


def _flip_proof_byte(d: dict[str, Any]) -> None:
    h = d["proofs"][0]["proof"]
    i = 2 + 200
    d["proofs"][0]["proof"] = h[:i] + ("1" if h[i] == "0" else "0") + h[i + 1 :]


def _edit_output(d: dict[str, Any]) -> None:
    d["outputs"]["values"][0][3] += 0.015625


def _edit_output_instance(d: dict[str, Any]) -> None:
    col = d["proofs"][0]["instances"][0]
    col[-1] = col[-2]
    d["outputs"]["values"][0][-1] = d["outputs"]["values"][0][-2]  # consistent lie: only the SNARK can catch it


def _edit_input(d: dict[str, Any]) -> None:
    d["input"]["values"][0][10] = 0.5


def _edit_input_instance_and_value(d: dict[str, Any]) -> None:
    d["input"]["values"][0][10] = 1.0
    d["proofs"][0]["instances"][0][10] = (64).to_bytes(32, "little").hex()
    d["input"]["sha256"] = sha256_json(d["input"]["values"])  # a consistent lie: only the SNARK can catch it


def _other_model(d: dict[str, Any]) -> None:
    d["model"]["sha256"] = "00" * 32


def _other_vk_digest(d: dict[str, Any]) -> None:
    d["circuit"]["vk_sha256"] = "11" * 32


def _other_settings_digest(d: dict[str, Any]) -> None:
    d["circuit"]["settings_sha256"] = "22" * 32


def _drop_proof(d: dict[str, Any]) -> None:
    d["samples"] = 2


def _visibility(d: dict[str, Any]) -> None:
    d["circuit"]["visibility"]["output"] = "hashed"


def _truncate_proof(d: dict[str, Any]) -> None:
    d["proofs"][0]["proof"] = d["proofs"][0]["proof"][:-64]


TAMPERS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("flip a proof byte", _flip_proof_byte, "invalid"),
    ("truncate the proof", _truncate_proof, "invalid"),
    ("edit a reported output", _edit_output, "outputs differ"),
    ("edit an output instance (consistently)", _edit_output_instance, "invalid"),
    ("edit the revealed input", _edit_input, "instance"),
    ("edit input and its instance", _edit_input_instance_and_value, "invalid"),
    ("claim another model", _other_model, "model"),
    ("claim another vk", _other_vk_digest, "vk"),
    ("claim other settings", _other_settings_digest, "settings"),
    ("claim more samples than proven", _drop_proof, "samples"),
    ("claim another visibility", _visibility, "visibility"),
]


@pytest.mark.parametrize(("name", "tamper", "reason"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_bundle_is_refused(
    mlp_bundle: Bundle, store: Store, name: str, tamper: Callable[[dict[str, Any]], None], reason: str
) -> None:
    d = copy.deepcopy(mlp_bundle.to_json())
    tamper(d)
    valid, why = _verify(d, store)
    assert not valid, name
    assert why is not None and reason in why


def test_bundle_of_another_circuit_is_refused(mlp_bundle: Bundle, cnn_circuit: Circuit, store: Store) -> None:
    """Verifying an MLP bundle against the CNN's artifacts (a swapped vk/settings) fails on digests."""
    art = Artifacts(settings=cnn_circuit.settings_path, vk=cnn_circuit.vk, srs=cnn_circuit.srs.path)
    v = verify_bundle(Bundle.parse(copy.deepcopy(mlp_bundle.to_json())), art)
    assert not v.valid and "digest" in (v.checks[-1]["name"])


def test_swapped_vk_file_is_refused(mlp_bundle: Bundle, mlp_circuit: Circuit, cnn_circuit: Circuit, tmp_path: Path) -> None:
    """Even with the bundle's vk digest rewritten to the swapped key, the SNARK fails."""
    d = copy.deepcopy(mlp_bundle.to_json())
    d["circuit"]["vk_sha256"] = cnn_circuit.files["vk.key"]
    art = Artifacts(settings=mlp_circuit.settings_path, vk=cnn_circuit.vk, srs=mlp_circuit.srs.path)
    v = verify_bundle(Bundle.parse(d), art)
    assert not v.valid


def test_edited_settings_file_is_refused(mlp_bundle: Bundle, mlp_circuit: Circuit, tmp_path: Path) -> None:
    s = json.loads(mlp_circuit.settings_path.read_text())
    s["run_args"]["input_scale"] += 1
    (tmp_path / "settings.json").write_text(json.dumps(s))
    art = Artifacts(settings=tmp_path / "settings.json", vk=mlp_circuit.vk, srs=mlp_circuit.srs.path)
    v = verify_bundle(Bundle.parse(copy.deepcopy(mlp_bundle.to_json())), art)
    assert not v.valid and "settings" in (v.reason or "")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON file"),
        ('{"format": "something-else"}', "not a zkml proof bundle"),
        ('{"format": "zkml-proof-bundle", "version": 99}', "version 99"),
        ('{"format": "zkml-proof-bundle", "version": 1}', "version 1 is not supported"),
        ('{"format": "zkml-proof-bundle", "version": 2}', "malformed bundle"),
    ],
)
def test_malformed_bundles_raise(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "b.json"
    p.write_text(content)
    with pytest.raises(BundleError, match=message):
        Bundle.load(p)


# Bad inputs


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((1, 63)), "not fit|not a multiple"),
        (np.full((1, 64), np.nan), "NaN"),
        (np.full((1, 64), np.inf), "NaN or infinite"),
        (np.full((1, 64), 1e9), "quantization range"),
    ],
)
def test_bad_input_refused_before_proving(mlp_circuit: Circuit, x: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        prove(mlp_circuit, x)


def test_malformed_onnx(tmp_path: Path) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelError):
        load_model(p)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.onnx")


def test_unsupported_ops_are_named(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="ok_relu"),
            helper.make_node("NonZero", ["r"], ["nz"], name="find_nonzero"),
            helper.make_node("Cast", ["nz"], ["c"], name="cast", to=TensorProto.FLOAT),
            helper.make_node("Add", ["r", "c"], ["y"], name="add"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    p = tmp_path / "nz.onnx"
    onnx.save(m, p)
    with pytest.raises(UnsupportedOpsError, match=r"find_nonzero \(NonZero\)") as e:
        load_model(p)
    assert e.value.nodes == [("find_nonzero", "NonZero")]


# Store


def test_cache_hit_and_corrupted_manifest_rebuild(tmp_path: Path) -> None:
    st = Store(tmp_path / "store")
    cal = load_samples(CALIBRATION, (64,))[:8]
    c1, hit1 = compile_model(MLP, cal, CircuitOptions(), store=st)
    c2, hit2 = compile_model(MLP, cal, CircuitOptions(), store=st)
    assert (hit1, hit2) == (False, True) and c1.circuit_id == c2.circuit_id
    # Another calibration set or option is another circuit
    c3, hit3 = compile_model(MLP, cal[:4], CircuitOptions(), store=st)
    assert not hit3 and c3.circuit_id != c1.circuit_id
    # A corrupted key is detected, never trusted, and rebuilt
    pk = c1.pk
    raw = bytearray(pk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    pk.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="pk.key does not match"):
        open_circuit(c1.folder, st)
    c4, hit4 = compile_model(MLP, cal, CircuitOptions(), store=st)
    assert not hit4 and c4.circuit_id == c1.circuit_id
    open_circuit(c4.folder, st)  # validates again
    # A manifest edited by hand is not trusted either
    m = json.loads((c4.folder / "manifest.json").read_text())
    m["files"]["vk.key"] = "0" * 64
    (c4.folder / "manifest.json").write_text(json.dumps(m))
    _, hit5 = compile_model(MLP, cal, CircuitOptions(), store=st)
    assert not hit5
    # No staging folders are left behind
    assert not [d for d in st.circuits.iterdir() if d.name.startswith(".")]


def test_concurrent_compiles_build_once(tmp_path: Path) -> None:
    """Two processes asking for the same new circuit: one builds, the other waits and reuses it."""
    script = (
        "import sys, json; from zkml.calibrate import CircuitOptions; from zkml.circuit import compile_model;"
        "from zkml.inputs import load_samples; from zkml.store import Store;"
        f"cal = load_samples({str(CALIBRATION)!r}, (64,))[:8];"
        f"c, hit = compile_model({str(MLP)!r}, cal, CircuitOptions(min_agreement=0.9), store=Store(sys.argv[1]));"
        "print(json.dumps({'id': c.circuit_id, 'hit': hit}))"
    )
    store_dir = tmp_path / "shared-store"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(store_dir)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert results[0]["id"] == results[1]["id"]
    assert sorted(r["hit"] for r in results) == [False, True]
    assert len([d for d in (store_dir / "circuits").iterdir() if not d.name.startswith(".")]) == 1


def test_prove_timeout_is_clean(mlp_circuit: Circuit, test_set: Any, store: Store) -> None:
    with pytest.raises(ProveTimeout, match="timed out"):
        prove(mlp_circuit, test_set[0][:1], timeout=0.05)
    # The store is still consistent and usable
    open_circuit(mlp_circuit.folder, store)


def test_srs_by_path_is_checked_and_its_origin_comes_from_the_verifier(tmp_path: Path, mlp_circuit: Circuit, store: Store) -> None:
    """An SRS file given by path is checked for k and size; its kind is decided by its digest alone."""
    from zkml.errors import SRSError
    from zkml.srs import ceremony_srs, identify

    good = tmp_path / "kzg.srs"
    shutil.copyfile(mlp_circuit.srs.path, good)  # an ezkl.gen_srs file, renamed as if it were a ceremony's
    s = ceremony_srs(good, mlp_circuit.logrows)
    assert s.kind == "file"
    # This store knows it as its own dev SRS; any other store cannot tell it from any file: unknown, never ceremony
    assert identify(good, store).kind == "dev"
    other = identify(good, tmp_path / "elsewhere")
    assert other.kind == "unknown" and not other.trusted and "UNKNOWN" in other.label
    # Only the user's own list makes it trusted
    lst = tmp_path / "trusted.txt"
    lst.write_text(f"# my ceremony files\n{s.sha256} my-kzg-k{s.logrows}\n")
    t = identify(good, tmp_path / "elsewhere", trusted=[str(lst)])
    assert t.kind == "trusted" and t.trusted and "my-kzg" in t.label
    with pytest.raises(SRSError, match="needs logrows"):
        ceremony_srs(good, mlp_circuit.logrows + 1)
    bad = tmp_path / "truncated.srs"
    bad.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(SRSError, match="truncated"):
        ceremony_srs(bad, mlp_circuit.logrows)


def test_repo_layout() -> None:
    for d in ("zkml", "cli", "circuits", "verifiers", "models", "tests", "benches"):
        assert (REPO / d).is_dir(), d


def test_batch_larger_than_calibration_set(tmp_path: Path, test_set: Any) -> None:
    """A batch-4 circuit calibrated on 3 samples (not a whole batch) still builds and proves."""
    st = Store(tmp_path / "store")
    cal = load_samples(CALIBRATION, (64,))[:3]
    c, _ = compile_model(MLP, cal, CircuitOptions(batch_size=4, min_agreement=0.6), store=st)
    b = prove(c, test_set[0][:4])
    v = verify_bundle(b, artifacts_from_store(b, st))
    assert v.valid, v.reason
    assert c.batch_size == 4


@pytest.mark.parametrize("freivalds", [False, True])
def test_freivalds_is_off_unless_asked(freivalds: bool, tmp_path: Path) -> None:
    """With Freivalds on, ezkl lays a batched matmul out in thousands of extra einsum columns."""
    import ezkl

    from zkml.calibrate import run_args_for

    ra = run_args_for(CircuitOptions(batch_size=16, freivalds=freivalds), 7)
    assert ra.disable_freivalds is not freivalds
    settings = tmp_path / "settings.json"
    assert ezkl.gen_settings(str(MLP), str(settings), py_run_args=ra)
    cols = json.loads(settings.read_text())["einsum_params"]["total_einsum_col_size"]
    assert (cols > 1000) if freivalds else cols == 0



@pytest.mark.parametrize("recipe", sorted((REPO / "circuits").glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_recipes_load(recipe: Path) -> None:
    from zkml.recipe import load_recipe

    r = load_recipe(recipe)
    assert r.model.is_file() and r.calibration.is_file()
    if "onchain" in recipe.stem:  # the gas-tuned recipes: fewest commitments, Freivalds off
        assert r.options.num_inner_cols == 1 and r.options.input_visibility == "private" and not r.options.freivalds
