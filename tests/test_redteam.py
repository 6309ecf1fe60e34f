"""Red team: every way we found to make `zkml verify` say "valid" for the wrong thing (issue 9, items 1–5).

Real proofs throughout. Two layers:
- the every-leaf mutation test: each leaf of real bundles of several shapes is
  changed alone; verification must refuse it unless :data:`zkml.bundle.FIELDS`
  declares it metadata, and then the verdict's claims must not change;
- a table of attacks (path-like circuit ids, foreign circuit folders whose
  manifest names the genuine model, a backdoored copy of the model, dev SRS
  files passed off as ceremony files, revealed values nothing binds).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from support import CALIBRATION, MLP, export_tiny_mlp
from zkml.bundle import Bundle, rule_for
from zkml.calibrate import CircuitOptions
from zkml.circuit import Circuit, compile_model
from zkml.errors import BundleError, StoreError, ZkmlError
from zkml.inputs import load_samples
from zkml.prove import prove
from zkml.store import Store
from zkml.util import sha256_file, sha256_json
from zkml.verify import verify
from zkml_cli.main import app

runner = CliRunner()


# ---------------------------------------------------------------------------
# Fixtures: a tiny model in four bundle shapes; the digits MLP and a backdoored copy
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_mlp(tmp_path_factory.mktemp("tiny-redteam") / "tiny.onnx", (4, 3, 2), seed=3)


TINY_CAL = np.random.default_rng(5).uniform(-1, 1, size=(16, 4)).astype(np.float32)

SHAPES: dict[str, tuple[dict[str, Any], int, bool | None]] = {
    # name: (options, samples, reveal_input)
    "public": (dict(), 1, None),
    "hashed-all": (dict(input_visibility="hashed", param_visibility="hashed", output_visibility="hashed"), 1, True),
    "hashed-unrevealed-input": (dict(input_visibility="hashed", output_visibility="public"), 1, False),
    "private-in-hashed-out": (dict(input_visibility="private", output_visibility="hashed"), 1, None),
    "batch2-padded": (dict(batch_size=2), 3, None),
}


@pytest.fixture(scope="session")
def multi_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three inputs (float x, int64 indices, bool mask) and two outputs: Gather(x, idx) and Where(mask, x, 0)."""
    from onnx import TensorProto as T
    from onnx import helper as h

    g = h.make_graph(
        [h.make_node("Gather", ["x", "idx"], ["g"], axis=1, name="gather"),
         h.make_node("Where", ["m", "x", "zero"], ["w"], name="where")],
        "multi",
        [h.make_tensor_value_info("x", T.FLOAT, [1, 4]), h.make_tensor_value_info("idx", T.INT64, [2]),
         h.make_tensor_value_info("m", T.BOOL, [1, 4])],
        [h.make_tensor_value_info("g", T.FLOAT, [1, 2]), h.make_tensor_value_info("w", T.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(np.zeros(4, np.float32), "zero")])
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("multi-redteam") / "multi.onnx"
    onnx.save(model, str(path))
    return path


_R = np.random.default_rng(9)
MULTI_CAL = {"x": _R.uniform(-1, 1, size=(8, 1, 4)).astype(np.float32),
             "idx": _R.integers(0, 4, size=(8, 2)).astype(np.int64),
             "m": _R.integers(0, 2, size=(8, 1, 4)).astype(bool)}
MULTI_SHAPES: dict[str, tuple[dict[str, Any], int, bool | None]] = {
    "multi-input-public": (dict(), 1, None),
    "multi-input-hashed": (dict(input_visibility="hashed", output_visibility="hashed"), 1, True),
}


@pytest.fixture(scope="session")
def shaped_bundles(tiny_model: Path, multi_model: Path, store: Store) -> dict[str, Bundle]:
    out = {}
    for name, (opts, n, reveal) in SHAPES.items():
        c, _ = compile_model(tiny_model, TINY_CAL, CircuitOptions(min_agreement=0.8, **opts), store=store)
        out[name] = prove(c, TINY_CAL[:n], reveal_input=reveal)
    for name, (opts, n, reveal) in MULTI_SHAPES.items():
        c, _ = compile_model(multi_model, MULTI_CAL, CircuitOptions(min_agreement=0.8, **opts), store=store)
        out[name] = prove(c, {k: v[:n] for k, v in MULTI_CAL.items()}, reveal_input=reveal)
    return out


def _leaves(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def _set(doc: Any, path: str, value: Any) -> None:
    import re

    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p[1:-1])] if p.startswith("[") else cur[p]
    last = parts[-1]
    if last.startswith("["):
        cur[int(last[1:-1])] = value
    else:
        cur[last] = value


def _mutate(value: Any, path: str = "") -> Any:
    """A change that keeps the field's form where it can (so it reaches the verifier, not just the reader)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.75
    if isinstance(value, str):
        if value and all(c in "0123456789abcdefx" for c in value):
            return value[:-1] + ("1" if value[-1] != "1" else "2")
        return value + "x"
    if value is None:
        return 0
    if path.endswith("onchain"):
        return [{"chain_id": 1, "valid": True, "tx": "0x" + "ab" * 32}]  # a forged receipt
    return ["an entry"]  # an empty list gains one


def _refused(doc: dict[str, Any], store: Store) -> tuple[bool, Any]:
    try:
        b = Bundle.parse(doc)
        v = verify(b, store)
    except (BundleError, ZkmlError):
        return True, None
    return not v.valid, v


@pytest.mark.parametrize("shape", [*SHAPES, *MULTI_SHAPES])
def test_every_leaf_mutation_is_refused_unless_metadata(shape: str, shaped_bundles: dict[str, Bundle], store: Store) -> None:
    b = shaped_bundles[shape]
    base = verify(b, store)
    assert base.valid, base.reason
    base_claims = [c.as_dict() for c in base.claims]
    doc = b.to_json()
    leaves = list(_leaves(doc))
    assert len(leaves) > 20
    accepted_bound: list[str] = []
    for path, value in leaves:
        m = copy.deepcopy(doc)
        _set(m, path, _mutate(value, path))
        refused, v = _refused(m, store)
        rule = rule_for(path)
        if rule.bound:
            if not refused:
                accepted_bound.append(path)
        else:
            assert not refused, f"{path}: metadata, yet the bundle was refused ({v and v.reason})"
            assert [c.as_dict() for c in v.claims] == base_claims, f"{path}: metadata changed the verdict's claims"
    assert accepted_bound == [], f"{shape}: bound fields accepted when edited: {accepted_bound}"


def test_every_field_of_the_format_has_a_rule(shaped_bundles: dict[str, Bundle]) -> None:
    for b in shaped_bundles.values():
        for path, _ in _leaves(b.to_json()):
            assert rule_for(path).checked_by  # rule_for raises KeyError for an undeclared field


# ---------------------------------------------------------------------------
# Item 1: a circuit id is never a path
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cid", ["../../elsewhere", "/tmp/attacker", "..", "83a424379e7c327338d1/../x", "83A424379E7C327338D1",
                                 "83a424379e7c327338d", "83a424379e7c327338d1\n"])
def test_circuit_id_that_is_not_an_id_is_refused(cid: str, shaped_bundles: dict[str, Bundle], store: Store) -> None:
    doc = shaped_bundles["public"].to_json()
    doc["circuit"]["id"] = cid
    with pytest.raises(BundleError, match="circuit id"):
        Bundle.parse(doc)
    with pytest.raises(StoreError, match="not a circuit id"):
        store.circuit_dir(cid)
    if len(cid) != 19:  # a 19-char hex string is a valid id prefix for the user's own lookups
        with pytest.raises(StoreError, match="not a circuit id"):
            store.find_circuit(cid)


# ---------------------------------------------------------------------------
# Item 2: a foreign circuit never binds the model; reproduction does
# ---------------------------------------------------------------------------


def _backdoor(dst: Path) -> Path:
    """The digits MLP with one bias of the last layer changed (a backdoored copy)."""
    m = onnx.load(str(MLP))
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init).copy()
        if a.ndim == 1 and a.shape[0] == 10:
            a[7] += 4.0
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            break
    else:
        raise AssertionError("no output bias found")
    onnx.save(m, str(dst))
    return dst


@pytest.fixture(scope="session")
def backdoor(tmp_path_factory: pytest.TempPathFactory, store: Store, test_set: Any) -> dict[str, Any]:
    """An attacker's world: a backdoored circuit, its proof dressed up as the genuine model's."""
    root = tmp_path_factory.mktemp("attacker")
    bad_onnx = _backdoor(root / "digits_mlp.onnx")
    attacker_store = Store(root / "store")
    cal = load_samples(CALIBRATION, (64,))
    c, _ = compile_model(bad_onnx, cal, CircuitOptions(), store=attacker_store)
    b = prove(c, test_set[0][:1])
    genuine = sha256_file(MLP)
    doc = b.to_json()
    doc["model"]["sha256"] = genuine  # the bundle claims the genuine model
    # A circuit folder to hand over: public artifacts plus a manifest that names the genuine model and a "ceremony" SRS
    folder = root / "circuit"
    folder.mkdir()
    for name in ("settings.json", "vk.key", "model.compiled"):
        shutil.copyfile(c.folder / name, folder / name)
    shutil.copyfile(c.srs.path, folder / "srs.srs")
    man = json.loads((c.folder / "manifest.json").read_text())
    man["model"]["sha256"] = genuine
    man["srs"] = {"kind": "ceremony", "insecure": False, "logrows": c.logrows, "sha256": sha256_file(c.srs.path),
                  "path": str(folder / "srs.srs")}
    (folder / "manifest.json").write_text(json.dumps(man))
    path = root / "proof.json"
    path.write_text(json.dumps(doc))
    return {"bundle": Bundle.parse(doc), "path": path, "folder": folder, "circuit": c, "onnx": bad_onnx,
            "store": attacker_store}


def test_backdoored_proof_through_a_foreign_folder_is_not_bound_to_the_genuine_model(backdoor: dict[str, Any], store: Store) -> None:
    v = verify(backdoor["bundle"], store, circuit=backdoor["folder"])
    assert v.valid  # the SNARK is fine: it is a real proof of the backdoored circuit
    model = v.claim("model")
    assert model is not None and not model.bound and "NOT BOUND" in model.basis
    assert not v.model_bound
    # The folder's manifest named a ceremony SRS: ignored; the SRS is identified by its digest only
    assert v.srs is not None and v.srs.kind == "unknown" and not v.srs.trusted


def test_backdoored_proof_is_refused_when_reproduced_from_the_genuine_onnx(backdoor: dict[str, Any], store: Store) -> None:
    v = verify(backdoor["bundle"], store, circuit=backdoor["folder"], model=MLP)
    assert not v.valid and "NOT the one" in (v.reason or "")
    # The same through --settings/--vk/--srs
    f = backdoor["folder"]
    v = verify(backdoor["bundle"], store, settings=f / "settings.json", vk=f / "vk.key", srs=f / "srs.srs", model=MLP)
    assert not v.valid


def test_genuine_proof_is_bound_by_reproduction_from_a_foreign_folder(mlp_circuit: Circuit, mlp_bundle: Bundle, tmp_path: Path) -> None:
    """An auditor with only the ONNX and the public artifacts: the vk is reproduced, so the model is bound."""
    folder = tmp_path / "circuit"
    folder.mkdir()
    shutil.copyfile(mlp_circuit.settings_path, folder / "settings.json")
    shutil.copyfile(mlp_circuit.vk, folder / "vk.key")
    shutil.copyfile(mlp_circuit.srs.path, folder / "srs.srs")
    empty = Store(tmp_path / "auditor-store")
    v = verify(mlp_bundle, empty, circuit=folder)
    assert v.valid and not v.model_bound
    v = verify(mlp_bundle, empty, circuit=folder, model=MLP)
    assert v.valid and v.model_bound, v.reason
    assert "reproduced" in v.claim("model").basis  # type: ignore[union-attr]


def test_cli_verify_says_not_bound_and_strict_refuses(backdoor: dict[str, Any], store: Store) -> None:
    args = ["verify", str(backdoor["path"]), "--circuit", str(backdoor["folder"]), "--store", str(store.root)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "NOT BOUND" in r.stdout and "UNKNOWN" in r.stdout
    r = runner.invoke(app, [*args, "--json"])
    d = json.loads(r.stdout)
    assert d["valid"] is True and d["bound"]["model"] is False and d["srs"]["kind"] == "unknown"
    r = runner.invoke(app, [*args, "--strict"])
    assert r.exit_code == 1 and "--strict: the model is not bound" in r.stderr
    r = runner.invoke(app, [*args, "--model", str(MLP)])
    assert r.exit_code == 1 and "invalid:" in r.stderr and "NOT the one" in r.stderr


def test_reproduce_command(backdoor: dict[str, Any], store: Store, mlp_bundle_file: Path) -> None:
    ok = runner.invoke(app, ["reproduce", str(MLP), str(mlp_bundle_file), "--store", str(store.root), "--json"])
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["vk_match"] is True
    bad = runner.invoke(app, ["reproduce", str(MLP), "--circuit", str(backdoor["folder"]), "--store", str(store.root)])
    assert bad.exit_code == 1 and bad.stderr.splitlines()[-1].startswith("MISMATCH: the vk")
    # The backdoored ONNX does reproduce its own vk
    own = runner.invoke(app, ["reproduce", str(backdoor["onnx"]), "--circuit", str(backdoor["folder"]), "--store", str(store.root)])
    assert own.exit_code == 0, own.stderr


def test_path_id_in_the_bundle_cannot_reach_the_attackers_folder(backdoor: dict[str, Any], store: Store, tmp_path: Path) -> None:
    doc = json.loads(backdoor["path"].read_text())
    doc["circuit"]["id"] = str(Path("..") / ".." / backdoor["folder"])
    p = tmp_path / "b.json"
    p.write_text(json.dumps(doc))
    r = runner.invoke(app, ["verify", str(p), "--store", str(store.root)])
    assert r.exit_code == 2 and "circuit id" in r.stderr and "valid" not in r.stdout
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


# ---------------------------------------------------------------------------
# Item 3: the SRS kind comes from the verifier's side
# ---------------------------------------------------------------------------


def test_dev_srs_passed_as_a_file_is_unknown_origin_not_ceremony(mlp_circuit: Circuit, mlp_bundle: Bundle, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    for name in ("settings.json", "vk.key"):
        shutil.copyfile(mlp_circuit.folder / name, folder / name)
    kzg = tmp_path / "kzg12.srs"  # an ezkl.gen_srs file with a ceremony-like name
    shutil.copyfile(mlp_circuit.srs.path, kzg)
    v = verify(mlp_bundle, Store(tmp_path / "other-store"), circuit=folder, srs=kzg)
    assert v.valid and v.srs is not None and v.srs.kind == "unknown" and not v.srs.trusted
    # A bundle cannot say otherwise: its prover_srs label is metadata, and an srs.kind field is not in the format
    doc = mlp_bundle.to_json()
    doc["metadata"]["prover_srs"] = {"kind": "ceremony", "insecure": False}
    v2 = verify(Bundle.parse(doc), Store(tmp_path / "other-store"), circuit=folder, srs=kzg)
    assert v2.srs is not None and v2.srs.kind == "unknown"
    doc["srs"]["kind"] = "ceremony"
    with pytest.raises(BundleError, match="unknown field"):
        Bundle.parse(doc)


def test_compile_with_a_gen_srs_file_warns_unknown_origin(tiny_model: Path, store: Store, tmp_path: Path) -> None:
    import ezkl

    srs = tmp_path / "kzg.srs"
    base, _ = compile_model(tiny_model, TINY_CAL, CircuitOptions(min_agreement=0.8), store=store)
    ezkl.gen_srs(str(srs), base.logrows)
    msgs: list[str] = []
    c, _ = compile_model(tiny_model, TINY_CAL, CircuitOptions(min_agreement=0.8), store=store, srs_path=srs, progress=msgs.append)
    assert c.srs.kind == "file" and not c.srs.insecure
    origin = c.srs_origin()
    assert origin.kind == "unknown" and not origin.trusted
    assert any("UNKNOWN origin" in m for m in msgs)
    assert c.summary()["srs"]["origin"]["kind"] == "unknown"


# ---------------------------------------------------------------------------
# Items 4 and 5: revealed values and edited fields
# ---------------------------------------------------------------------------


def _edit(b: Bundle, fn: Any) -> dict[str, Any]:
    doc = b.to_json()
    fn(doc)
    return doc


def _fake_input(d: dict[str, Any]) -> None:
    d["input"]["values"] = [[0.5, 0.5, 0.5, 0.5]]
    d["input"]["sha256"] = sha256_json(d["input"]["values"])


REVEALED: list[tuple[str, str, Any, str]] = [
    ("hashed input revealed without felts: edited values", "hashed-all",
     lambda d: (d["proofs"][0].update(input_felts=None), _fake_input(d)), "instance"),
    ("hashed input: values injected into an unrevealed bundle", "hashed-unrevealed-input", _fake_input, "instance"),
    ("private input: values injected", "private-in-hashed-out", _fake_input, "private"),
    ("private input: felts injected", "private-in-hashed-out",
     lambda d: d["proofs"][0].update(input_felts=["00" * 32] * 4), "private"),
    ("private output: outputs injected", "hashed-all",
     lambda d: (d["circuit"]["visibility"].update(output="private")), "visibility"),
    ("hashed output: reported outputs edited", "hashed-all", lambda d: d["outputs"]["values"][0].__setitem__(0, 9.0), "outputs"),
    ("input sha256 without revealed input", "hashed-unrevealed-input", lambda d: d["input"].update(sha256="ab" * 32), "nothing binds"),
    ("edited sample shape", "public", lambda d: d["model"].update(sample_shape=[2, 2]), "shape"),
    ("edited compiled digest", "public", lambda d: d["circuit"].update(compiled_sha256="cd" * 32), "compiled"),
    ("edited input sha256", "public", lambda d: d["input"].update(sha256="ef" * 32), "sha256"),
    ("outputs.visibility field", "public", lambda d: d["outputs"].update(visibility="private"), "unknown field"),
]


@pytest.mark.parametrize(("name", "shape", "edit", "reason"), REVEALED, ids=[r[0] for r in REVEALED])
def test_revealed_values_and_edited_fields_are_bound(
    name: str, shape: str, edit: Any, reason: str, shaped_bundles: dict[str, Bundle], store: Store
) -> None:
    doc = _edit(shaped_bundles[shape], edit)
    try:
        v = verify(Bundle.parse(doc), store)
    except (BundleError, ZkmlError) as e:
        assert reason in str(e), str(e)
        return
    assert not v.valid, name
    assert reason in (v.reason or ""), v.reason


def test_private_output_claims_nothing(shaped_bundles: dict[str, Bundle], store: Store, tiny_model: Path) -> None:
    c, _ = compile_model(tiny_model, TINY_CAL, CircuitOptions(min_agreement=0.8, input_visibility="private",
                                                              output_visibility="private"), store=store)
    b = prove(c, TINY_CAL[:1], reveal_input=True)  # asking to reveal a private input reveals nothing
    assert b.input_values is None and b.outputs is None
    v = verify(b, store)
    assert v.valid, v.reason
    assert not v.claim("input").bound and not v.claim("outputs").bound  # type: ignore[union-attr]
    doc = b.to_json()
    doc["outputs"]["values"] = [[1.0, 2.0]]
    v = verify(Bundle.parse(doc), store)
    assert not v.valid and "private" in (v.reason or "")


def test_a_circuit_folder_outside_the_store_is_never_trusted(mlp_circuit: Circuit, mlp_bundle: Bundle, store: Store,
                                                             tmp_path: Path) -> None:
    """A complete, self-consistent copy of a store circuit, handed over as a folder, binds no model."""
    from zkml.circuit import open_circuit
    from zkml.targets import resolve_circuit

    folder = tmp_path / "theirs" / mlp_circuit.circuit_id
    shutil.copytree(mlp_circuit.folder, folder)
    c = open_circuit(folder, store)
    assert not c.in_store
    art = c.artifacts()
    assert art.model_sha256 is None and not art.trusted and art.source == "folder"
    c2, _ = resolve_circuit(str(folder), store)
    assert not c2.artifacts().trusted
    v = verify(mlp_bundle, store, circuit=folder, srs=mlp_circuit.srs.path)
    assert v.valid and not v.model_bound
