"""Load, validate and describe an ONNX model before it goes near a circuit.

Checks, in order: the file parses, passes ``onnx.checker``, shape inference
runs, it has exactly one input (the shape of one sample is known), and every
operator is one ezkl can lay out. Unsupported operators are reported by node
name and op type, all at once, so a user can fix the export in one go.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import shape_inference

from zkml.errors import ModelError, UnsupportedOpsError
from zkml.util import sha256_bytes

# ONNX operator types ezkl 23 turns into circuit ops (through tract's loader).
# Anything else is reported before ezkl fails with a less readable message.
SUPPORTED_OPS: frozenset[str] = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
    Cast Ceil Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh Div Dropout
    Einsum Elu Equal Erf Exp Expand Flatten Floor Gather GatherElements GatherND Gelu Gemm
    GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual HardSigmoid HardSwish Identity
    InstanceNormalization LayerNormalization LeakyRelu Less LessOrEqual Log LpNormalization
    MatMul Max MaxPool Mean Min Mod Mul Neg Not OneHot Or Pad Pow PRelu Range Reciprocal
    ReduceL1 ReduceL2 ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
    ReduceSumSquare Relu Reshape Resize Round ScatterElements ScatterND Selu Shape Sigmoid
    Sign Sin Sinh Slice Softmax Softplus Softsign Split Sqrt Squeeze Sub Sum Tan Tanh Tile
    TopK Transpose Trilu Unsqueeze Where Xor
    """.split()
)


@dataclass(frozen=True)
class ModelInfo:
    """What zkml needs to know about an ONNX model."""

    path: Path
    """Where the model was read from."""
    sha256: str
    """sha256 of the ONNX file's bytes: the model's identity everywhere in zkml."""
    opset: int
    """Default-domain opset version."""
    input_name: str
    """Name of the single graph input."""
    sample_shape: tuple[int, ...]
    """Shape of one sample (the input shape without its batch axis)."""
    batch_dim: int | str
    """The input's first axis: a fixed size, or a symbolic name such as ``batch_size``."""
    output_names: tuple[str, ...]
    """Graph output names, in order."""
    op_counts: dict[str, int] = field(default_factory=dict)
    """How many nodes of each op type the graph has."""
    n_params: int = 0
    """Number of scalar weights (initializer elements)."""

    @property
    def batch_symbolic(self) -> bool:
        """True when the batch axis is symbolic, so a circuit can fix any batch size."""
        return isinstance(self.batch_dim, str)


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def load_model(path: str | Path, *, check_ops: bool = True) -> ModelInfo:
    """Parse and validate an ONNX file.

    Raises:
        ModelError: missing, unparseable, invalid, not exactly one input, or a
            non-batch axis that is not fixed.
        UnsupportedOpsError: nodes whose op types ezkl cannot compile.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    data = p.read_bytes()
    # Parse and check
    try:
        model = onnx.load_from_string(data)
    except Exception as e:  # protobuf raises its own DecodeError types
        raise ModelError(f"{p}: not a valid ONNX file ({type(e).__name__})") from None
    if not model.graph.node:
        raise ModelError(f"{p}: not a valid ONNX model (empty graph)")
    try:
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as e:
        raise ModelError(f"{p}: ONNX checker failed: {str(e).splitlines()[0]}") from None
    # Inputs and outputs
    init_names = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ModelError(f"{p}: zkml supports models with exactly one input; this one has {len(inputs)}")
    dims = _dims(inputs[0])
    if len(dims) < 1:
        raise ModelError(f"{p}: input '{inputs[0].name}' has no shape")
    sample = dims[1:]
    if any(not isinstance(d, int) or d <= 0 for d in sample):
        raise ModelError(
            f"{p}: input '{inputs[0].name}' has shape {dims}; only the first (batch) axis may be symbolic"
        )
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    counts = Counter(n.op_type for n in model.graph.node)
    info = ModelInfo(
        path=p,
        sha256=sha256_bytes(data),
        opset=int(opset),
        input_name=inputs[0].name,
        sample_shape=tuple(int(d) for d in sample),
        batch_dim=dims[0],
        output_names=tuple(o.name for o in model.graph.output),
        op_counts=dict(sorted(counts.items())),
        n_params=sum(int(_numel(i.dims)) for i in model.graph.initializer),
    )
    # Operator coverage
    if check_ops:
        bad = [
            (n.name or f"#{i}", n.op_type)
            for i, n in enumerate(model.graph.node)
            if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS
        ]
        if bad:
            raise UnsupportedOpsError(bad)
    return info


def _numel(dims: object) -> int:
    n = 1
    for d in dims:  # type: ignore[attr-defined]
        n *= int(d)
    return n
