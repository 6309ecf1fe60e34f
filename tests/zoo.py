"""A zoo of small models built in code: torch modules exported to ONNX, graphs made with
``onnx.helper``, and a scikit-learn tree converted by skl2onnx. Nothing is downloaded.

Each entry builds its ONNX file and a calibration feed (``{input name: [n, *shape]}``, int
inputs as int64, masks as bool). ``rescue`` marks the models raw ezkl refuses as exported and
zkml compiles after preprocessing (``zkml.preprocess``). Used by ``tests/test_zoo.py`` and
``benches/bench_coverage.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

N_CAL = 6


@dataclass(frozen=True)
class ZooModel:
    name: str
    """Short id."""
    covers: str
    """The ops it exercises."""
    build: Callable[[Path], dict[str, np.ndarray]]
    """Write the ONNX to the path; return the calibration feed."""
    rescue: bool = False
    """True: raw ezkl refuses it as exported; zkml's preprocessing rescues it."""
    options: dict[str, object] = field(default_factory=dict)
    """CircuitOptions overrides for zkml."""


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _floats(*shape: int, seed: int = 0, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return _rng(seed).uniform(lo, hi, size=(N_CAL, *shape)).astype(np.float32)


# ---------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------


def _torch(module_fn: Callable[[], object], shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str] | None = None,
           outputs: tuple[str, ...] = ("out",), seed: int = 0, high: int = 4) -> Callable[[Path], dict[str, np.ndarray]]:
    """Export ``module_fn()`` with fixed batch-1 inputs ``shapes`` (sample shapes, batch 1 added)."""
    dtypes = dtypes or {}

    def build(path: Path) -> dict[str, np.ndarray]:
        import torch

        torch.manual_seed(seed)
        m = module_fn().eval()  # type: ignore[attr-defined]
        feed: dict[str, np.ndarray] = {}
        args = []
        for k, (name, shape) in enumerate(shapes.items()):
            if dtypes.get(name) == "int64":
                feed[name] = _rng(seed + k).integers(0, high, size=(N_CAL, *shape)).astype(np.int64)
                args.append(torch.zeros((1, *shape), dtype=torch.int64))
            else:
                feed[name] = _floats(*shape, seed=seed + k)
                args.append(torch.zeros((1, *shape)))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, tuple(args), str(path), opset_version=17, input_names=list(shapes),
                              output_names=list(outputs), dynamo=False)
        return feed

    return build


def _seq(*layers: Callable[[], object]) -> Callable[[], object]:
    def make() -> object:
        import torch

        return torch.nn.Sequential(*[f() for f in layers])

    return make


def _nn(name: str, *a: object, **kw: object) -> Callable[[], object]:
    def make() -> object:
        import torch

        return getattr(torch.nn, name)(*a, **kw)

    return make


def _fn(f: Callable[..., object]) -> Callable[[], object]:
    """A module whose forward is ``f``."""

    def make() -> object:
        import torch

        class M(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lin = torch.nn.Linear(4, 4)

            def forward(self, *xs: object) -> object:
                return f(self, *xs)

        return M()

    return make


def _act(name: str, **kw: object) -> ZooModel:
    return ZooModel(name.lower(), name, _torch(_seq(_nn("Linear", 4, 4), _nn(name, **kw)), {"x": (4,)}))


# ---------------------------------------------------------------------------
# onnx.helper
# ---------------------------------------------------------------------------


def _helper(nodes: list[object], inputs: list[tuple[str, int, list[object]]], outputs: list[tuple[str, int, list[object]]],
            inits: list[tuple[str, np.ndarray]], feed: Callable[[], dict[str, np.ndarray]], opset: int = 17
            ) -> Callable[[Path], dict[str, np.ndarray]]:
    def build(path: Path) -> dict[str, np.ndarray]:
        import onnx
        from onnx import helper, numpy_helper

        g = helper.make_graph(
            nodes, "zoo", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
            initializer=[numpy_helper.from_array(a, n) for n, a in inits])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        onnx.save(m, str(path))
        return feed()

    return build


def _helper_models() -> list[ZooModel]:
    from onnx import TensorProto as T
    from onnx import helper as h

    F, I, B = T.FLOAT, T.INT64, T.BOOL
    idx3 = lambda hi: {"idx": _rng(1).integers(0, hi, size=(N_CAL, 3)).astype(np.int64)}  # noqa: E731
    w = _rng(2).uniform(-1, 1, size=(4, 4)).astype(np.float32)
    return [
        ZooModel("gather_two_inputs", "Gather (float data + int64 indices input)", _helper(
            [h.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="gather")],
            [("x", F, [1, 5]), ("idx", I, [3])], [("y", F, [1, 3])], [],
            lambda: {"x": _floats(1, 5), **idx3(5)})),
        ZooModel("gather_elements", "GatherElements", _helper(
            [h.make_node("GatherElements", ["x", "idx"], ["y"], axis=1, name="ge")],
            [("x", F, [1, 5]), ("idx", I, [1, 3])], [("y", F, [1, 3])], [],
            lambda: {"x": _floats(1, 5), "idx": _rng(1).integers(0, 5, size=(N_CAL, 1, 3)).astype(np.int64)})),
        ZooModel("scatter_nd", "ScatterND", _helper(
            [h.make_node("ScatterND", ["x", "ind", "upd"], ["y"], name="scatter")],
            [("x", F, [4, 3]), ("upd", F, [2, 3])], [("y", F, [4, 3])],
            [("ind", np.array([[1], [3]], np.int64))],
            lambda: {"x": _floats(4, 3), "upd": _floats(2, 3, seed=4)})),
        ZooModel("where_mask", "Where with a bool mask input (three inputs)", _helper(
            [h.make_node("Where", ["m", "a", "b"], ["y"], name="where")],
            [("m", B, [1, 4]), ("a", F, [1, 4]), ("b", F, [1, 4])], [("y", F, [1, 4])], [],
            lambda: {"m": _rng(3).integers(0, 2, size=(N_CAL, 4)).astype(bool), "a": _floats(4, seed=1),
                     "b": _floats(4, seed=2)})),
        ZooModel("bool_logic", "And/Or/Not on four bool inputs, Where", _helper(
            [h.make_node("And", ["p", "q"], ["pq"], name="and"), h.make_node("Or", ["r", "s"], ["rs"], name="or"),
             h.make_node("Not", ["rs"], ["nrs"], name="not"), h.make_node("Or", ["pq", "nrs"], ["m"], name="or2"),
             h.make_node("Where", ["m", "one", "zero"], ["y"], name="where")],
            [(n, B, [1, 4]) for n in "pqrs"], [("y", F, [1, 4])],
            [("one", np.ones(4, np.float32)), ("zero", np.zeros(4, np.float32))],
            lambda: {n: _rng(k).integers(0, 2, size=(N_CAL, 4)).astype(bool) for k, n in enumerate("pqrs")})),
        ZooModel("matmul_two_inputs", "MatMul of two inputs", _helper(
            [h.make_node("MatMul", ["a", "b"], ["y"], name="mm")],
            [("a", F, [1, 3, 4]), ("b", F, [1, 4, 2])], [("y", F, [1, 3, 2])], [],
            lambda: {"a": _floats(3, 4), "b": _floats(4, 2, seed=1)})),
        ZooModel("constant_graph", "a graph without inputs (Relu of a constant)", _helper(
            [h.make_node("MatMul", ["c", "w"], ["m"], name="mm"), h.make_node("Relu", ["m"], ["y"], name="relu")],
            [], [("y", F, [1, 4])], [("c", np.array([[0.5, -0.25, 1.0, 0.75]], np.float32)), ("w", w)],
            lambda: {})),
        ZooModel("reduce_ops", "ReduceSum/ReduceMean/ReduceMax (multi-output)", _helper(
            [h.make_node("ReduceSum", ["x", "ax"], ["s"], keepdims=0, name="rsum"),
             h.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=0, name="rmean"),
             h.make_node("ReduceMax", ["x"], ["mx"], axes=[1], keepdims=0, name="rmax")],
            [("x", F, [1, 6])], [("s", F, [1]), ("m", F, [1]), ("mx", F, [1])], [("ax", np.array([1], np.int64))],
            lambda: {"x": _floats(6)})),
        ZooModel("nonzero_constant", "NonZero/Reshape on a constant, Gather", _helper(
            [h.make_node("NonZero", ["mask"], ["nz"], name="nonzero"),
             h.make_node("Reshape", ["nz", "flat"], ["idx"], name="reshape"),
             h.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="gather")],
            [("x", F, [1, 6])], [("y", F, [1, 3])],
            [("mask", np.array([0, 1, 0, 1, 1, 0], np.float32)), ("flat", np.array([-1], np.int64))],
            lambda: {"x": _floats(6)})),
        ZooModel("pad", "Pad (constant pads)", _helper(
            [h.make_node("Pad", ["x", "pads", "cv"], ["y"], mode="constant", name="pad")],
            [("x", F, [1, 4])], [("y", F, [1, 7])],
            [("pads", np.array([0, 1, 0, 2], np.int64)), ("cv", np.array(0, np.float32))], lambda: {"x": _floats(4)})),
        # Rescued: a symbolic batch axis not named batch_size
        ZooModel("batch_named_n", "Gemm+Relu with a batch axis named N", _helper(
            [h.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, name="gemm"), h.make_node("Relu", ["g"], ["y"], name="relu")],
            [("x", F, ["N", 4])], [("y", F, ["N", 4])], [("w", w), ("b", np.zeros(4, np.float32))],
            lambda: {"x": _floats(4)}), rescue=True),
    ]


def _tree() -> ZooModel:
    def build(path: Path) -> dict[str, np.ndarray]:
        from onnx import save
        from skl2onnx import to_onnx
        from sklearn.tree import DecisionTreeClassifier

        x = _rng(7).uniform(-1, 1, size=(200, 4)).astype(np.float32)
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5).astype(int)
        clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
        m = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
        save(m, str(path))
        return {"X": x[:N_CAL]}

    return ZooModel("sklearn_tree", "scikit-learn DecisionTreeClassifier via skl2onnx (TreeEnsembleClassifier)",
                    build, rescue=True)


def models() -> list[ZooModel]:
    """The zoo (>= 40 models)."""
    import torch

    conv = lambda: _seq(_nn("Conv2d", 1, 2, 3, padding=1), _nn("ReLU"))  # noqa: E731
    zoo = [
        ZooModel("mlp", "Gemm, Relu", _torch(_seq(_nn("Linear", 4, 8), _nn("ReLU"), _nn("Linear", 8, 3)), {"x": (4,)})),
        ZooModel("conv1d", "Conv1d, Relu, Flatten", _torch(_seq(_nn("Conv1d", 2, 2, 3), _nn("ReLU"), _nn("Flatten")), {"x": (2, 6)})),
        ZooModel("conv2d", "Conv2d, Relu", _torch(conv(), {"x": (1, 4, 4)})),
        ZooModel("maxpool", "Conv2d, MaxPool", _torch(_seq(_nn("Conv2d", 1, 2, 3, padding=1), _nn("MaxPool2d", 2)), {"x": (1, 4, 4)})),
        ZooModel("avgpool", "AveragePool", _torch(_seq(_nn("AvgPool2d", 2), _nn("Flatten")), {"x": (1, 4, 4)})),
        ZooModel("globalpool", "Conv2d, GlobalAveragePool", _torch(_seq(_nn("Conv2d", 1, 2, 3), _nn("AdaptiveAvgPool2d", 1), _nn("Flatten")), {"x": (1, 4, 4)})),
        ZooModel("batchnorm", "Conv2d, BatchNormalization", _torch(_seq(_nn("Conv2d", 1, 2, 3), _nn("BatchNorm2d", 2)), {"x": (1, 4, 4)})),
        ZooModel("layernorm", "LayerNormalization", _torch(_seq(_nn("Linear", 4, 4), _nn("LayerNorm", 4)), {"x": (4,)})),
        _act("ReLU"), _act("GELU"), _act("SiLU"), _act("ELU"), _act("CELU"), _act("SELU"), _act("Softplus"),
        _act("Hardswish"), _act("Sigmoid"), _act("Tanh"), _act("LeakyReLU", negative_slope=0.1), _act("PReLU"),
        ZooModel("erf", "Erf", _torch(_fn(lambda s, x: torch.erf(s.lin(x))), {"x": (4,)})),
        ZooModel("softmax", "Softmax", _torch(_seq(_nn("Linear", 4, 4), _nn("Softmax", dim=-1)), {"x": (4,)})),
        ZooModel("logsoftmax", "LogSoftmax", _torch(_seq(_nn("Linear", 4, 4), _nn("LogSoftmax", dim=-1)), {"x": (4,)})),
        ZooModel("attention", "MultiheadAttention (2 heads)", _torch(_mha, {"x": (3, 4)})),
        ZooModel("lstm", "LSTM", _torch(lambda: _Rnn("LSTM"), {"x": (3, 2)})),
        ZooModel("gru", "GRU", _torch(lambda: _Rnn("GRU"), {"x": (3, 2)})),
        ZooModel("embedding", "Gather (Embedding) with int64 indices", _torch(
            _seq(_nn("Embedding", 6, 3), _nn("Flatten")), {"idx": (3,)}, {"idx": "int64"}, high=6)),
        ZooModel("topk", "TopK (values and indices: two outputs)", _torch(
            _fn(lambda s, x: torch.topk(s.lin(x), 2)[0]), {"x": (4,)}, outputs=("values",))),
        ZooModel("argmax", "ArgMax", _torch(_fn(lambda s, x: torch.argmax(s.lin(x), dim=-1)), {"x": (4,)})),
        ZooModel("reshape_transpose", "Reshape, Transpose", _torch(
            _fn(lambda s, x: s.lin(x).reshape(1, 2, 2).transpose(1, 2).reshape(1, 4)), {"x": (4,)})),
        ZooModel("concat_two_inputs", "Concat of two inputs", _torch(
            _fn(lambda s, a, b: s.lin(torch.cat([a, b], dim=-1))), {"a": (2,), "b": (2,)})),
        ZooModel("split", "Split (two outputs)", _torch(
            _fn(lambda s, x: tuple(torch.split(s.lin(x), 2, dim=-1))), {"x": (4,)}, outputs=("lo", "hi"))),
        ZooModel("slice", "Slice", _torch(_fn(lambda s, x: s.lin(x)[:, 1:3]), {"x": (4,)})),
        ZooModel("residual", "Conv2d residual block (Add)", _torch(lambda: _Residual(), {"x": (2, 4, 4)})),
        ZooModel("two_heads", "shared trunk, two output heads", _torch(lambda: _TwoHeads(), {"x": (4,)},
                                                                       outputs=("cls", "reg"))),
    ]
    return zoo + _helper_models() + [_tree()]


def _mha() -> object:
    """Two-head self-attention written out (torch's fused MultiheadAttention kernel has no ONNX export)."""
    import torch

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = torch.nn.Linear(4, 12)
            self.out = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).reshape(1, 3, 3, 2, 2).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-1, -2) / 2 ** 0.5, dim=-1)
            return self.out((att @ v).transpose(1, 2).reshape(1, 3, 4))

    return M()


def _Rnn(kind: str) -> object:  # noqa: N802
    import torch

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(2, 3, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    return M()


def _Residual() -> object:  # noqa: N802
    import torch

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = torch.nn.Conv2d(2, 2, 3, padding=1)
            self.c2 = torch.nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.c2(torch.relu(self.c1(x))))

    return M()


def _TwoHeads() -> object:  # noqa: N802
    import torch

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = torch.nn.Linear(4, 6)
            self.cls = torch.nn.Linear(6, 3)
            self.reg = torch.nn.Linear(6, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = torch.relu(self.trunk(x))
            return self.cls(h), self.reg(h)

    return M()


def by_name(name: str) -> ZooModel:
    return next(m for m in models() if m.name == name)
