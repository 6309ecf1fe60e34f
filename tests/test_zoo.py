"""The model zoo: coverage of the issue's op list, and real proofs of a representative handful.

``make test`` proves a few models that exercise what is new (int and bool inputs, several
inputs and outputs, no input at all, preprocessing that rescues a graph ezkl refuses);
the whole zoo runs under ``-m slow`` and in ``benches/bench_coverage.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import zoo
from zkml.calibrate import CircuitOptions
from zkml.circuit import compile_model
from zkml.errors import UnsupportedOpsError
from zkml.onnx_check import check_coverage, load_model
from zkml.prove import prove
from zkml.store import Store
from zkml.util import sha256_file
from zkml.verify import verify

# torch folds BatchNorm2d into the Conv and writes GELU as Erf at opset 17: the modules are in the zoo, the ops not
OPS = ("Conv", "MaxPool", "AveragePool", "LayerNormalization", "Relu", "Sigmoid",
       "Tanh", "Erf", "Softmax", "LogSoftmax", "LSTM", "GRU", "Gather", "GatherElements", "ScatterND", "Where",
       "TopK", "ArgMax", "Reshape", "Transpose", "Concat", "Split", "Slice", "Pad", "ReduceSum", "ReduceMean",
       "ReduceMax", "MatMul", "Elu", "Celu", "Selu", "Softplus", "HardSwish", "PRelu", "LeakyRelu")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("zoo")
    out = {}
    for m in zoo.models():
        p = root / f"{m.name}.onnx"
        out[m.name] = (p, m.build(p))
    return out


def test_zoo_covers_the_op_list(built: dict[str, tuple[Path, dict]]) -> None:
    assert len(built) >= 40
    seen: set[str] = set()
    for p, _ in built.values():
        seen |= set(load_model(p, check_ops=False).op_counts)
    missing = [op for op in OPS if op not in seen]
    assert missing == [], f"zoo misses {missing}"
    kinds = {s.dtype for p, _ in built.values() for s in load_model(p, check_ops=False).inputs}
    assert {"float32", "int64", "bool"} <= kinds


def test_rescued_models_are_refused_by_ezkl_as_exported(built: dict[str, tuple[Path, dict]]) -> None:
    for m in zoo.models():
        if m.rescue:
            with pytest.raises(UnsupportedOpsError):
                check_coverage(built[m.name][0])


HANDFUL = ["gather_two_inputs", "where_mask", "constant_graph", "two_heads", "sklearn_tree", "batch_named_n"]


@pytest.mark.parametrize("name", HANDFUL)
def test_handful_prove_and_verify(name: str, built: dict[str, tuple[Path, dict]], store: Store) -> None:
    path, feed = built[name]
    c, _ = compile_model(path, feed, CircuitOptions(**zoo.by_name(name).options), store=store)
    b = prove(c, {k: v[:1] for k, v in feed.items()}, timeout=300)
    v = verify(b, store)
    assert v.valid, v.reason
    assert b.model_sha256 == sha256_file(path)  # bound to the ONNX as the user has it
    assert [i.as_dict() for i in b.model.all_inputs] == [s.as_dict() for s in load_model(path, check_ops=False).inputs] \
        or not feed
    if zoo.by_name(name).rescue:
        pre = c.preprocessing
        assert pre is not None and pre["original_sha256"] == c.model_sha256 != pre["sha256"]
        # A verifier holding only the original ONNX reproduces the circuit (same deterministic preprocessing)
        r = verify(b, Store(store.root), model=path)
        assert r.valid and r.model_bound, r.reason
    else:
        assert c.preprocessing is None  # a graph ezkl takes is compiled as is


@pytest.mark.slow
@pytest.mark.parametrize("name", [m.name for m in zoo.models() if m.name not in HANDFUL])
def test_whole_zoo(name: str, built: dict[str, tuple[Path, dict]], store: Store) -> None:
    path, feed = built[name]
    c, _ = compile_model(path, feed, CircuitOptions(**zoo.by_name(name).options), store=store)
    b = prove(c, {k: v[:1] for k, v in feed.items()}, timeout=300)
    assert verify(b, store).valid
