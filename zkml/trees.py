"""Lower ``ai.onnx.ml`` tree ensembles to plain tensor ops a circuit can lay out.

ezkl has no layout for ``TreeEnsembleClassifier``/``TreeEnsembleRegressor``
(what skl2onnx writes for scikit-learn trees and forests). The ensemble is
rewritten in the "GEMM" form of tree evaluation (as Hummingbird does):

1. ``D = Cast(X @ A <= T)`` — A one-hot selects each internal node's feature,
   T holds the thresholds: D[n, i] is 1 when sample n goes the "true" way at node i;
2. ``H = Relu(D @ C - P + 1)`` — C[i, l] is +1 when leaf l lies on node i's
   true side, -1 on its false side; P[l] counts the true turns on the path to l:
   H[n, l] is 1 for the leaf sample n reaches and 0 for every other leaf;
3. ``scores = H @ W + base`` — W holds the leaves' class weights (or targets);
   the label is the argmax (mapped through the class labels).

Only what has an exact lowering is lowered (one comparison mode across the
ensemble, ``post_transform`` NONE, every class weighted); anything else is
left as it is, and ezkl's refusal stands.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_MODES = {"BRANCH_LEQ": "LessOrEqual", "BRANCH_LT": "Less"}


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    out: dict[str, object] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [x.decode() for x in v]
        elif isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


def _gemm_form(a: dict[str, object], n_features: int, leaf_ids: str, leaf_tree: str, leaf_node: str,
               leaf_weight: str, n_out: int) -> tuple[np.ndarray, ...] | None:
    tree, node, feat = a["nodes_treeids"], a["nodes_nodeids"], a["nodes_featureids"]
    thr, mode = a["nodes_values"], a["nodes_modes"]
    t_true, t_false = a["nodes_truenodeids"], a["nodes_falsenodeids"]
    modes = {m for m in mode if m != "LEAF"}  # type: ignore[union-attr]
    if len(modes) != 1 or next(iter(modes)) not in _MODES or a.get("post_transform", "NONE") != "NONE":
        return None
    key = {(t, n): i for i, (t, n) in enumerate(zip(tree, node))}  # type: ignore[arg-type]
    internal = [i for i, m in enumerate(mode) if m != "LEAF"]  # type: ignore[arg-type]
    leaves = [i for i, m in enumerate(mode) if m == "LEAF"]  # type: ignore[arg-type]
    col = {i: j for j, i in enumerate(internal)}
    lcol = {i: j for j, i in enumerate(leaves)}
    A = np.zeros((n_features, len(internal)), np.float32)
    T = np.zeros(len(internal), np.float32)
    for i in internal:
        A[int(feat[i]), col[i]] = 1.0  # type: ignore[index]
        T[col[i]] = float(thr[i])  # type: ignore[index]
    C = np.zeros((len(internal), len(leaves)), np.float32)
    P = np.zeros(len(leaves), np.float32)
    # Walk every tree from its root (the node no other node points to)
    children = {(tree[i], t_true[i]) for i in internal} | {(tree[i], t_false[i]) for i in internal}  # type: ignore[index]
    roots = [i for i in range(len(mode)) if (tree[i], node[i]) not in children]  # type: ignore[index, arg-type]
    stack = [(r, []) for r in roots]
    while stack:
        i, path = stack.pop()
        if mode[i] == "LEAF":  # type: ignore[index]
            for j, went_true in path:
                C[col[j], lcol[i]] = 1.0 if went_true else -1.0
            P[lcol[i]] = sum(1 for _, t in path if t)
            continue
        stack.append((key[(tree[i], t_true[i])], [*path, (i, True)]))  # type: ignore[index]
        stack.append((key[(tree[i], t_false[i])], [*path, (i, False)]))  # type: ignore[index]
    W = np.zeros((len(leaves), n_out), np.float32)
    for t, n, c, w in zip(a[leaf_tree], a[leaf_node], a[leaf_ids], a[leaf_weight]):  # type: ignore[call-overload]
        W[lcol[key[(t, n)]], int(c)] += float(w)
    return A, T, C, P - 1.0, W


def lower_tree_ensembles(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Return the model with every lowerable tree ensemble replaced, and the op types lowered."""
    g = model.graph
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in [*g.input, *g.value_info]}
    new_nodes, inits, lowered = [], [], []
    for k, node in enumerate(g.node):
        if node.domain != "ai.onnx.ml" or node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            new_nodes.append(node)
            continue
        a = _attrs(node)
        n_features = (shapes.get(node.input[0]) or [0, 0])[-1]
        if node.op_type == "TreeEnsembleClassifier":
            labels = a.get("classlabels_int64s")
            n_out = len(labels) if labels else 0  # type: ignore[arg-type]
            binary = bool(labels) and n_out == 2 and set(a["class_ids"]) == {0}  # type: ignore[arg-type]
            if not labels or (len(set(a["class_ids"])) != n_out and not binary):  # type: ignore[arg-type]
                new_nodes.append(node)
                continue
            form = _gemm_form(a, n_features, "class_ids", "class_treeids", "class_nodeids", "class_weights", n_out)
            if form is not None and binary:
                # one weight per leaf scores the positive class; the negative class gets the rest
                n_trees = float(len(set(a["nodes_treeids"])))  # type: ignore[arg-type]
                W = form[4]
                W[:, 1] = W[:, 0]
                W[:, 0] = 1.0 / n_trees - W[:, 1]
        else:
            n_out = int(a.get("n_targets", 1))  # type: ignore[arg-type]
            form = _gemm_form(a, n_features, "target_ids", "target_treeids", "target_nodeids", "target_weights", n_out)
            if a.get("aggregate_function", "SUM") not in ("SUM", "AVERAGE"):
                form = None
        if not n_features or form is None:
            new_nodes.append(node)
            continue
        A, T, C, P1, W = form
        if node.op_type == "TreeEnsembleRegressor" and a.get("aggregate_function") == "AVERAGE":
            W = W / float(len(set(a["nodes_treeids"])))  # type: ignore[arg-type]
        base = np.asarray(a.get("base_values") or [0.0] * n_out, np.float32).reshape(n_out)  # type: ignore[arg-type]
        p = f"tree{k}_"
        cmp = _MODES[next(m for m in a["nodes_modes"] if m != "LEAF")]  # type: ignore[union-attr]
        for name, arr in (("A", A), ("T", T), ("C", C), ("P", P1), ("W", W), ("B", base)):
            inits.append(numpy_helper.from_array(arr, p + name))
        x = node.input[0]
        scores = node.output[1] if node.op_type == "TreeEnsembleClassifier" else node.output[0]
        new_nodes += [
            helper.make_node("MatMul", [x, p + "A"], [p + "xa"], name=p + "select"),
            helper.make_node(cmp, [p + "xa", p + "T"], [p + "dbool"], name=p + "compare"),
            helper.make_node("Cast", [p + "dbool"], [p + "d"], name=p + "cast", to=TensorProto.FLOAT),
            helper.make_node("MatMul", [p + "d", p + "C"], [p + "dc"], name=p + "paths"),
            helper.make_node("Sub", [p + "dc", p + "P"], [p + "dcp"], name=p + "offset"),
            helper.make_node("Relu", [p + "dcp"], [p + "hit"], name=p + "leaf"),
            helper.make_node("MatMul", [p + "hit", p + "W"], [p + "hw"], name=p + "weights"),
            helper.make_node("Add", [p + "hw", p + "B"], [scores], name=p + "scores"),
        ]
        if node.op_type == "TreeEnsembleClassifier":
            labels = list(a["classlabels_int64s"])  # type: ignore[arg-type]
            if labels == list(range(len(labels))):
                new_nodes.append(helper.make_node("ArgMax", [scores], [node.output[0]], name=p + "label", axis=1, keepdims=0))
            else:
                inits.append(numpy_helper.from_array(np.asarray(labels, np.int64), p + "labels"))
                new_nodes += [helper.make_node("ArgMax", [scores], [p + "am"], name=p + "argmax", axis=1, keepdims=0),
                              helper.make_node("Gather", [p + "labels", p + "am"], [node.output[0]], name=p + "label")]
        lowered.append(node.op_type)
    if not lowered:
        return model, []
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(inits)
    used = defaultdict(int)
    for n in g.node:
        used[n.domain] += 1
    keep = [o for o in model.opset_import if o.domain != "ai.onnx.ml" or used["ai.onnx.ml"]]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model, lowered
