"""Transposes moved down past the layout ops that read them, until two meet and compose: a Gather, Slice or Unsqueeze
of a Transpose becomes the Transpose of the op on its input, only where the op's one reader is another layout op
(Transpose, Unsqueeze, Slice: ``index.moves_on``); two Transposes in a row become one (or an Identity). Exporters
put the length first and the batch second around one op (torch's GatherND, tf2onnx's ReverseSequence), which the
rows layout cannot hold; once the Transposes meet, the op keeps the batch first.
"""

import numpy as np
from onnx import helper

from ...graph.nodes import attributes
from .index import ints


def gather_before_transpose(node, index):
    """Gather(Transpose(x, p), i, axis=a) -> Transpose(Gather(x, i, axis=p[a]), p), i 1-D."""
    if (node.op_type != "Gather" or node.input[1] not in index.constants
            or np.ndim(index.constants[node.input[1]]) != 1 or not index.moves_on(node.output[0])):
        return None
    transpose = index.producer(node.input[0], "Transpose")
    perm = attributes(transpose).get("perm") if transpose is not None else None
    if perm is None:
        return None
    axis = attributes(node).get("axis", 0) % len(perm)
    inner = f"{node.output[0]}__before_transpose"
    gather = helper.make_node("Gather", [transpose.input[0], node.input[1]], [inner], name=f"{inner}__node",
                              axis=int(perm[axis]))
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=list(perm))
    return [gather, after], []


def slice_before_transpose(node, index):
    """Slice(Transpose(x, p), axes) -> Transpose(Slice(x, p[axes]), p)."""
    if node.op_type != "Slice" or len(node.input) < 3 or not index.moves_on(node.output[0]):
        return None  # (the attribute form of opset < 10 is left as it is)
    transpose = index.producer(node.input[0], "Transpose")
    perm = attributes(transpose).get("perm") if transpose is not None else None
    if perm is None or any(name and name not in index.constants for name in node.input[1:]):
        return None
    if len(node.input) > 3 and node.input[3]:
        axes = np.asarray(index.constants[node.input[3]]).reshape(-1)
    else:
        axes = np.arange(np.size(index.constants[node.input[1]]))
    axes = [int(perm[int(a) % len(perm)]) for a in axes]
    inner = f"{node.output[0]}__before_transpose"
    axes_name = f"{inner}__axes"
    sliced = helper.make_node("Slice", [transpose.input[0], node.input[1], node.input[2], axes_name]
                              + list(node.input[4:]), [inner], name=f"{inner}__node")
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=list(perm))
    return [sliced, after], [ints(axes_name, axes)]


def unsqueeze_before_transpose(node, index):
    """Unsqueeze(Transpose(x, p), axes) -> Transpose(Unsqueeze(x, new axes last), p')."""
    if node.op_type != "Unsqueeze" or not index.moves_on(node.output[0]):
        return None
    transpose = index.producer(node.input[0], "Transpose")
    perm = attributes(transpose).get("perm") if transpose is not None else None
    axes = attributes(node).get("axes")
    if axes is None and len(node.input) > 1:
        axes = index.constants.get(node.input[1])
    if perm is None or axes is None:
        return None
    rank, added = len(perm), len(np.asarray(axes).reshape(-1))
    axes = sorted(int(a) % (rank + added) for a in np.asarray(axes).reshape(-1))
    kept = iter(perm)
    order = [rank + axes.index(o) if o in axes else int(next(kept)) for o in range(rank + added)]
    inner = f"{node.output[0]}__before_transpose"
    new_axes = list(range(rank, rank + added))
    initializers = []
    if "axes" in attributes(node):
        unsqueeze = helper.make_node("Unsqueeze", [transpose.input[0]], [inner], name=f"{inner}__node", axes=new_axes)
    else:
        initializers.append(ints(f"{inner}__axes", new_axes))
        unsqueeze = helper.make_node("Unsqueeze", [transpose.input[0], f"{inner}__axes"], [inner],
                                     name=f"{inner}__node")
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=order)
    return [unsqueeze, after], initializers


def transpose_pair(node, index):
    """Transpose(Transpose(v, p1), p2) -> Transpose(v, p1[p2]), or an Identity where that is no permutation."""
    if node.op_type != "Transpose":
        return None
    first = index.producer(node.input[0], "Transpose")
    if first is None:
        return None
    outer, inner = attributes(node).get("perm"), attributes(first).get("perm")
    if outer is None or inner is None:
        return None
    perm = [int(inner[k]) for k in outer]
    if perm == sorted(perm):
        return [helper.make_node("Identity", [first.input[0]], list(node.output), name=f"{node.output[0]}__merged")], []
    return [helper.make_node("Transpose", [first.input[0]], list(node.output), name=f"{node.output[0]}__merged",
                             perm=perm)], []
