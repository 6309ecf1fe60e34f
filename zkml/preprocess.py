"""Preprocessing that rescues graphs ezkl refuses as exported.

Exporters leave work in a graph that a circuit cannot do: constant
subgraphs built from ops without a circuit layout (``NonZero``, ``IsNaN``,
``Range`` chains computing a shape), shape arithmetic over symbolic
dimensions, and identity/cast noise. **onnxslim** (a maintained library,
pinned) runs ONNX shape inference, folds constants and simplifies the graph;
scikit-learn tree ensembles (``ai.onnx.ml`` ``TreeEnsemble*``, which ezkl
has no layout for) are lowered by :mod:`zkml.trees` to plain tensor ops.

The rule (:func:`prepare`): a graph ezkl accepts is compiled **as is**;
only when ezkl refuses it is the preprocessed graph tried, and used if ezkl
accepts that. Preprocessing is deterministic (same bytes in, same bytes out,
for the pinned tool versions), so a verifier holding the original ONNX
repeats it (:mod:`zkml.reproduce`) and a proof stays bound to the
**original** digest; the circuit records both digests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from zkml.errors import ModelError, UnsupportedOpsError
from zkml.onnx_check import check_coverage
from zkml.util import sha256_bytes


def tool() -> str:
    """The preprocessing tool chain (part of what a reproduction must match)."""
    import onnxslim

    return f"onnxslim=={onnxslim.__version__}+zkml.trees/1"


@dataclass(frozen=True)
class Prepared:
    """The graph ezkl compiles, and how it was derived from the user's ONNX."""

    path: Path
    """The ONNX file given to ezkl (the original itself when no preprocessing was needed)."""
    original_sha256: str
    """sha256 of the user's ONNX: what proofs are bound to."""
    sha256: str
    """sha256 of the graph ezkl compiles (equal to ``original_sha256`` when not preprocessed)."""
    steps: tuple[str, ...] = ()
    """What preprocessing did (empty: none), e.g. ``("onnxslim", "lower TreeEnsembleClassifier")``."""
    tool: str | None = None
    """Tool versions of the preprocessing (None: none)."""
    rescued: str | None = None
    """ezkl's refusal of the original, when preprocessing rescued it."""

    @property
    def preprocessed(self) -> bool:
        return bool(self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"original_sha256": self.original_sha256, "sha256": self.sha256, "steps": list(self.steps),
                "tool": self.tool, "rescued": self.rescued}


def preprocess(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Deterministically simplify ONNX bytes; returns the new bytes and the steps taken.

    Raises:
        ModelError: the preprocessing libraries fail on the graph.
    """
    import onnxslim

    from zkml.trees import lower_tree_ensembles

    steps: list[str] = []
    model = onnx.load_from_string(data)
    renamed = _name_batch_axis(model)
    if renamed:
        steps.append(f"batch axis named batch_size ({', '.join(renamed)})")
    model, lowered = lower_tree_ensembles(model)
    steps += [f"lower {op}" for op in lowered]
    try:
        slim = onnxslim.slim(model, model_check=False)
    except Exception as e:  # onnxslim raises assorted types
        raise ModelError(f"onnxslim failed on the graph: {type(e).__name__}: {str(e).splitlines()[0][:160]}") from None
    if slim is not None:
        model = slim
        steps.append("onnxslim (shape inference, constant folding, simplification)")
    return model.SerializeToString(deterministic=True), tuple(steps)


def _name_batch_axis(model: onnx.ModelProto) -> list[str]:
    """Name every unnamed or differently named symbolic first axis ``batch_size`` (ezkl's variable)."""
    init = {i.name for i in model.graph.initializer}
    renamed = []
    for vi in [*model.graph.input, *model.graph.output]:
        if vi.name in init or not vi.type.HasField("tensor_type"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value") and dims[0].dim_param != "batch_size":
            renamed.append(f"{vi.name}: {dims[0].dim_param or '?'}")
            dims[0].dim_param = "batch_size"
    return renamed


def prepare(onnx_path: Path, workdir: Path, run_args: Any = None) -> Prepared:
    """Decide which graph ezkl compiles: the original when ezkl takes it, else the preprocessed one.

    Raises:
        UnsupportedOpsError: ezkl refuses the original and the preprocessed graph
            (the message names the original's nodes, and says preprocessing did not help).
    """
    data = Path(onnx_path).read_bytes()
    original = sha256_bytes(data)
    try:
        check_coverage(Path(onnx_path), run_args=run_args)
        return Prepared(path=Path(onnx_path), original_sha256=original, sha256=original)
    except UnsupportedOpsError as refusal:
        first = refusal
    try:
        new, steps = preprocess(data)
    except ModelError:
        raise first from None
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "model.prep.onnx"
    out.write_bytes(new)
    try:
        check_coverage(out, run_args=run_args)
    except UnsupportedOpsError as again:
        raise UnsupportedOpsError(
            first.nodes or again.nodes,
            reason=(first.reason or "ezkl refused it") + " (also after simplification)",
            suggestion=first.suggestion or again.suggestion,
        ) from None
    return Prepared(path=out, original_sha256=original, sha256=sha256_bytes(new), steps=steps, tool=tool(),
                    rescued=first.message)
