"""Load, validate and describe an ONNX model before it goes near a circuit.

Checks, in order: the file parses, passes ``onnx.checker``, shape inference
runs, and every input has a known shape (only a shared first axis, the batch,
may be symbolic). Inputs are described one by one (name, shape of one sample,
dtype): float inputs are quantized by the circuit, integer and boolean inputs
(indices, masks) are passed as integers. A model may have any number of
inputs, none included.

Operator coverage is **ezkl's** to decide, not a list kept here:
:func:`check_coverage` asks ezkl's own graph loading (``gen_settings``) and,
when it refuses, names the node(s), op type(s) and the reason in one line,
with a suggestion where one is known.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zkml.errors import ModelError, UnsupportedOpsError
from zkml.util import native_output_captured, sha256_bytes

if TYPE_CHECKING:  # `import onnx` costs ~0.8 s (ml_dtypes): only the functions that parse a graph import it
    import onnx

# ONNX element types zkml feeds, by the kind the circuit gives them
# onnx.TensorProto.DataType numbers (fixed by the ONNX spec, onnx.proto3), so this module imports without onnx
_FLOAT_TYPES = {1: "float32", 11: "float64", 10: "float16"}  # FLOAT, DOUBLE, FLOAT16
_INT_TYPES = {7: "int64", 6: "int32", 5: "int16", 3: "int8", 2: "uint8", 4: "uint16", 12: "uint32"}
_BOOL_TYPES = {9: "bool"}  # BOOL

# Equivalent rewrites for ops ezkl does not lay out (shown with the refusal)
SUGGESTIONS: dict[str, str] = {
    "Mish": "write it as x * Tanh(Softplus(x))",
    "NonZero": "avoid data-dependent shapes: use a Where mask of fixed shape",
    "Unique": "avoid data-dependent shapes",
    "Loop": "unroll the loop at export time (fixed trip count)",
    "If": "export with the branch fixed (torch.jit tracing, not scripting)",
    "Scan": "unroll the recurrence at export time",
    "ZipMap": "convert with options={id(model): {'zipmap': False}} (skl2onnx)",
    "TreeEnsembleClassifier": "zkml lowers tree ensembles to plain tensor ops: compile it with zkml",
    "TreeEnsembleRegressor": "zkml lowers tree ensembles to plain tensor ops: compile it with zkml",
    "Det": "no circuit layout exists for Det",
    "IsNaN": "drop it: circuit inputs are finite by construction",
    "IsInf": "drop it: circuit inputs are finite by construction",
    "STFT": "compute the transform outside the circuit",
    "DFT": "compute the transform outside the circuit",
}


@dataclass(frozen=True)
class InputSpec:
    """One graph input as the circuit takes it."""

    name: str
    """The ONNX input name (the key of a named-array input file)."""
    shape: tuple[int, ...]
    """Shape of one sample: the input's shape without the batch axis (when the model has one)."""
    dtype: str
    """numpy dtype name fed to onnxruntime: ``float32``, ``int64``, ``bool`` …"""

    @property
    def kind(self) -> str:
        """``float`` (quantized at the input scale), ``int`` or ``bool`` (passed as integers, scale 0)."""
        if self.dtype == "bool":
            return "bool"
        return "float" if self.dtype.startswith("float") else "int"

    @property
    def size(self) -> int:
        """Elements in one sample."""
        return int(np.prod(self.shape, dtype=np.int64))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ModelInfo:
    """What zkml needs to know about an ONNX model."""

    path: Path
    """Where the model was read from."""
    sha256: str
    """sha256 of the ONNX file's bytes: the model's identity everywhere in zkml."""
    opset: int
    """Default-domain opset version."""
    inputs: tuple[InputSpec, ...]
    """The graph inputs (initializers excluded), in order; empty for a constant graph."""
    batch_dim: int | str
    """The inputs' shared first axis: a fixed size, a symbolic name such as ``batch_size``, or 1 when
    the model has no batch axis (each sample is the whole input)."""
    output_names: tuple[str, ...]
    """Graph output names, in order."""
    op_counts: dict[str, int] = field(default_factory=dict)
    """How many nodes of each op type the graph has."""
    n_params: int = 0
    """Number of scalar weights (initializer elements)."""
    batched: bool = True
    """True when every input's first axis is the batch axis (so ``shape`` excludes it)."""

    @property
    def batch_symbolic(self) -> bool:
        """True when the batch axis is symbolic, so a circuit can fix any batch size."""
        return isinstance(self.batch_dim, str)

    @property
    def input_name(self) -> str:
        """The first input's name ("" for a graph without inputs)."""
        return self.inputs[0].name if self.inputs else ""

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The first input's sample shape (``()`` for a graph without inputs)."""
        return self.inputs[0].shape if self.inputs else ()

    @property
    def single_float_input(self) -> bool:
        """True for the common case of one float input (the v1 layout)."""
        return len(self.inputs) == 1 and self.inputs[0].kind == "float"


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def _dtype(p: Path, vi: onnx.ValueInfoProto) -> str:
    t = vi.type
    if t.WhichOneof("value") != "tensor_type":
        raise ModelError(f"{p}: input '{vi.name}' is a {t.WhichOneof('value')}, not a tensor")
    et = t.tensor_type.elem_type
    for table in (_FLOAT_TYPES, _INT_TYPES, _BOOL_TYPES):
        if et in table:
            return table[et]
    import onnx

    raise ModelError(f"{p}: input '{vi.name}' has element type {onnx.TensorProto.DataType.Name(et)}, "
                     "which no circuit input can carry (use float, int or bool)")


def _batch_layout(p: Path, inputs: list[onnx.ValueInfoProto]) -> tuple[bool, int | str]:
    """Whether the inputs share a batch axis, and its size (a name when symbolic).

    A shared symbolic first axis is the batch; so is a shared fixed first axis on
    inputs of rank >= 2 (``[1, 64]``). Otherwise each sample is the whole input.
    """
    if not inputs:
        return False, 1
    firsts = [(_dims(i) or [None])[0] for i in inputs]
    ranks = [len(_dims(i)) for i in inputs]
    if any(isinstance(f, str) for f in firsts):
        if len(set(firsts)) == 1 and all(r >= 1 for r in ranks):
            return True, firsts[0]  # type: ignore[return-value]
        names = ", ".join(f"{i.name} {_dims(i)}" for i in inputs)
        raise ModelError(f"{p}: inputs do not share one symbolic batch axis ({names}); export with fixed shapes "
                         "or one common batch dimension")
    if len(set(firsts)) == 1 and all(r >= 2 for r in ranks):
        return True, int(firsts[0])  # type: ignore[arg-type]
    return False, 1


def parse_model(data: bytes, where: str = "model") -> onnx.ModelProto:
    """Parse and check ONNX bytes, with shapes inferred.

    Raises:
        ModelError: not ONNX, empty, or refused by ``onnx.checker``.
    """
    import onnx
    from onnx import shape_inference

    try:
        model = onnx.load_from_string(data)
    except Exception as e:  # protobuf raises its own DecodeError types
        raise ModelError(f"{where}: not a valid ONNX file ({type(e).__name__})") from None
    if not model.graph.node:
        raise ModelError(f"{where}: not a valid ONNX model (empty graph)")
    try:
        onnx.checker.check_model(model)
        return shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as e:
        raise ModelError(f"{where}: ONNX checker failed: {str(e).splitlines()[0]}") from None


def load_model(path: str | Path, *, check_ops: bool = True) -> ModelInfo:
    """Parse and validate an ONNX file; with ``check_ops`` also ask ezkl whether it can lay it out.

    Raises:
        ModelError: missing, unparseable, invalid, an input of unknown shape or an unusable dtype.
        UnsupportedOpsError: ezkl refuses the graph (nodes, op types and reason named).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    data = p.read_bytes()
    model = parse_model(data, str(p))
    # Inputs and outputs
    init_names = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in init_names]
    batched, batch_dim = _batch_layout(p, graph_inputs)
    specs = []
    for vi in graph_inputs:
        dims = _dims(vi)
        sample = dims[1:] if batched else dims
        if any(not isinstance(d, int) or d <= 0 for d in sample):
            raise ModelError(f"{p}: input '{vi.name}' has shape {dims}; only the first (batch) axis may be symbolic")
        specs.append(InputSpec(name=vi.name, shape=tuple(int(d) for d in sample), dtype=_dtype(p, vi)))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    counts = Counter(n.op_type for n in model.graph.node)
    info = ModelInfo(
        path=p,
        sha256=sha256_bytes(data),
        opset=int(opset),
        inputs=tuple(specs),
        batch_dim=batch_dim,
        output_names=tuple(o.name for o in model.graph.output),
        op_counts=dict(sorted(counts.items())),
        n_params=sum(int(np.prod(i.dims, dtype=np.int64)) for i in model.graph.initializer),
        batched=batched,
    )
    if check_ops:
        check_coverage(p, model)
    return info


# ---------------------------------------------------------------------------
# Coverage: ezkl is the authority
# ---------------------------------------------------------------------------


def ezkl_settings(onnx_path: Path, settings_path: Path, run_args: Any = None) -> str:
    """Run ``ezkl.gen_settings``; return ezkl's console log. Raises RuntimeError as ezkl does."""
    import logging

    import ezkl

    # ezkl logs through Python's logging when a handler is installed (pytest), else to fd 2
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("ezkl")
    logger.addHandler(handler)
    try:
        with native_output_captured() as log:
            try:
                if run_args is None:
                    ezkl.gen_settings(str(onnx_path), str(settings_path))
                else:
                    ezkl.gen_settings(str(onnx_path), str(settings_path), py_run_args=run_args)
            except RuntimeError as e:
                text = log.read_text(errors="replace") + "\n" + "\n".join(records)
                raise RuntimeError(f"{e}\n--log--\n{text}") from None
            return log.read_text(errors="replace")
    finally:
        logger.removeHandler(handler)


def check_coverage(path: Path, model: onnx.ModelProto | None = None, run_args: Any = None) -> None:
    """Ask ezkl whether it can lay the graph out.

    Raises:
        UnsupportedOpsError: ezkl refuses; the nodes, op types, ezkl's reason and a suggestion.
    """
    with tempfile.TemporaryDirectory(prefix="zkml-coverage-") as tmp:
        try:
            ezkl_settings(path, Path(tmp) / "settings.json", run_args)
        except RuntimeError as e:
            if model is None:
                import onnx

                model = onnx.load(str(path))
            raise coverage_error(model, str(e)) from None


_UNKNOWN = re.compile(r"Unknown op: (?:onnx\.)?([A-Za-z0-9_]+)")
_TRANSLATING = re.compile(r'Translating node #\d+ "([^"]*)" (?:Unimplemented\(([A-Za-z0-9_]+)\))?')
_LEADS = ("Failed to generate settings: ", "[graph] ", "[tract] ", "[halo2] ")


def coverage_error(model: onnx.ModelProto, message: str) -> UnsupportedOpsError:
    """Turn ezkl's refusal (its error and console log) into named nodes, op types and one reason."""
    err, _, log = message.partition("\n--log--\n")
    err_line = (err.strip().splitlines() or ["ezkl refused the graph"])[0]
    reason = err_line
    for lead in _LEADS:
        reason = reason.replace(lead, "")
    by_name = {n.name: n for n in model.graph.node if n.name}
    ops: list[str] = []
    nodes: list[tuple[str, str]] = []
    m = _TRANSLATING.search(err_line)
    if m:
        name, op = m.group(1), m.group(2)
        node = by_name.get(name)
        nodes.append((name, op or (node.op_type if node else "?")))
        reason = f"tract cannot translate {op or 'this node'}" if op else reason
    for op in _UNKNOWN.findall(log + "\n" + err):
        if op not in ops:
            ops.append(op)
    for op in ops:
        hits = [(n.name or f"#{i}", n.op_type) for i, n in enumerate(model.graph.node) if n.op_type.lower() == op.lower()]
        for h in hits or ([] if nodes else [("?", op)]):
            if h not in nodes:
                nodes.append(h)
    if ops and ("synthesis error" in reason or "Undetermined symbol" in reason or "unsupported" in reason.lower()):
        reason = f"ezkl has no circuit layout for {', '.join(sorted({op for _, op in nodes}))} ({reason})"
    suggestion = next((SUGGESTIONS[op] for _, op in nodes if op in SUGGESTIONS), None)
    return UnsupportedOpsError(nodes, reason=reason, suggestion=suggestion)
