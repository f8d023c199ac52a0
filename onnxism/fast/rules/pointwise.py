"""Point-wise rules: ops whose output position j along the length depends on input position j only (elementwise
ops, activations, normalisations and reductions over other axes, layout ops, a MatMul or an Einsum over the
channels, a channel Concat). Each returns a PointwiseRule (where the length goes) or None (global)."""

import numpy as np

from ...graph.nodes import attributes
from ...graph.ops import einsum_terms, normalised_axes
from .types import PointwiseRule, outputs_of


def unary(node, axis, f):
    if len(outputs_of(node)) > 1 or node.input[0] not in f.dependent:
        return None
    if any(name in f.dependent for name in node.input[1:]):
        return None
    return PointwiseRule(axis) if len(f.out_shape(node)) == len(f.shapes[node.input[0]]) else None


def elementwise(node, axis, f):
    """An elementwise op (or BatchNormalization, per channel): point-wise where no operand that is not the sequence's
    varies along the length, or is a constant whose values along it are known."""
    op, out_shape = node.op_type, f.out_shape(node)
    if op == "BatchNormalization" and (axis == 1 or len(outputs_of(node)) > 1):
        return None
    rank = len(out_shape)
    for name in node.input:
        if not name or name in f.dependent or op == "BatchNormalization":  # BN parameters are per channel
            continue
        shape = f.shape_of(name)
        aligned = axis - (rank - len(shape))
        if 0 <= aligned < len(shape) and shape[aligned] != 1 and (
                op == "BatchNormalization" or name not in f.constants or shape[aligned] != out_shape[axis]):
            return None  # a fixed tensor that varies along the length, its values unknown here
    if any(len(f.shapes[name]) != rank for name in node.input if name in f.dependent):
        return None
    return PointwiseRule(axis)


def transpose(node, axis, f):
    """One that moves the batch off the first axis (time-major, for an LSTM) is global."""
    perm = attributes(node).get("perm") or list(reversed(range(len(f.out_shape(node)))))
    return PointwiseRule(list(perm).index(axis)) if perm[0] == 0 else None


def axes_of(node, constants, rank):
    """A node's ``axes`` (attribute or constant input), normalised and sorted; [] where it has none; None where
    they are not a constant."""
    attrs = attributes(node)
    if "axes" in attrs:
        axes = attrs["axes"]
    elif len(node.input) > 1 and node.input[1]:
        if node.input[1] not in constants:
            return None
        axes = constants[node.input[1]].tolist()
    else:
        return []
    return sorted(int(a) % rank for a in axes)


def squeeze(node, axis, f):
    out_rank, in_rank = len(f.out_shape(node)), len(f.shapes[node.input[0]])
    if node.op_type == "Unsqueeze":
        axes = axes_of(node, f.constants, out_rank)
        if axes is None:
            return None
        remaining = [d for d in range(out_rank) if d not in axes]
        return PointwiseRule(remaining[axis]) if 0 not in axes else None  # the batch stays first
    axes = axes_of(node, f.constants, in_rank)
    if axes is None or axes == [] or axis in axes or 0 in axes:
        return None
    return PointwiseRule(axis - sum(a < axis for a in axes))


def tile(node, axis, f):
    repeats = f.constants.get(node.input[1])
    if repeats is None or node.input[1] in f.dependent:
        return None
    repeats = np.asarray(repeats).reshape(-1)
    return PointwiseRule(axis) if repeats[0] == 1 and repeats[axis] == 1 else None


def expand(node, axis, f):
    """Broadcasts other axes (torch's repeat_interleave: Unsqueeze, Expand, a merging Reshape)."""
    in_shape, out_shape = f.shapes[node.input[0]], f.out_shape(node)
    if node.input[1] in f.dependent or len(out_shape) != len(in_shape):
        return None  # (one that adds leading axes would move the batch)
    target = f.constants.get(node.input[1])
    if target is None:  # shape arithmetic of the batch (analysis.py; torch's expand_as): the probed shapes tell
        keeps = in_shape[0] == out_shape[0] and in_shape[axis] == out_shape[axis]  # what it broadcasts
        return PointwiseRule(axis) if keeps else None
    target = [1] * (len(out_shape) - len(target)) + [int(v) for v in np.asarray(target).reshape(-1)]
    return PointwiseRule(axis) if target[0] == 1 and target[axis] in (1, out_shape[axis]) else None


def cumsum(node, axis, f):
    """A running sum along another axis than the length (along it: global)."""
    along = f.constants.get(node.input[1])
    if along is None or node.input[1] in f.dependent or attributes(node).get("reverse", 0) not in (0, 1):
        return None
    along = int(np.asarray(along).reshape(-1)[0]) % len(f.out_shape(node))
    return PointwiseRule(axis) if along not in (0, axis) else None


def softmax(node, axis, f):
    covered = normalised_axes(node, len(f.out_shape(node)), f.opset)
    return PointwiseRule(axis) if axis not in covered and 0 not in covered else None


def lp_normalization(node, axis, f):
    """Over one axis: point-wise where that is neither the batch nor the length."""
    along = attributes(node).get("axis", -1) % len(f.out_shape(node))
    return PointwiseRule(axis) if along not in (0, axis) else None


def layer_normalization(node, axis, f):
    first = attributes(node).get("axis", -1) % len(f.out_shape(node))
    return PointwiseRule(axis) if axis < first and len(outputs_of(node)) == 1 else None


def reduced_axes(node, constants, rank):
    """The axes a reduction (or ArgMax / ArgMin) of a rank-``rank`` input reduces over, every axis where its axes
    are empty (unless ``noop_with_empty_axes``); None where they are not known."""
    attrs = attributes(node)
    if node.op_type in ("ArgMax", "ArgMin"):
        return [attrs.get("axis", 0) % rank]
    axes = axes_of(node, constants, rank)
    if axes == [] and not attrs.get("noop_with_empty_axes", 0):
        return list(range(rank))
    return axes


def reduction(node, axis, f):
    axes = reduced_axes(node, f.constants, len(f.shapes[node.input[0]]))
    if axes is None or axis in axes:
        return None
    keep = attributes(node).get("keepdims", 1)
    return PointwiseRule(axis if keep else axis - sum(a < axis for a in axes))


def global_pool(node, axis, f):
    """Pools every axis after the second: a reduction over the channels where the length is the second (tf2onnx's
    Keras LayerNormalization)."""
    return PointwiseRule(axis) if axis == 1 and len(outputs_of(node)) == 1 else None


def matmul(node, axis, f):
    left, right = node.input
    if left in f.dependent and right not in f.dependent and axis < len(f.out_shape(node)) - 1:
        if len(f.shape_of(right)) <= 2:
            return PointwiseRule(axis)
    return None


def einsum(node, axis, f):
    """An Einsum whose sequence-dependent operands all carry the length and the batch as the same two indices, which
    no other operand has and the output keeps, the batch first (a Dense over the channels at each position:
    "ncl,cd->nld"; a product or dot product of two such tensors: "ncl,ncl->nl"): point-wise. An implicit output, an
    ellipsis or a repeated index is left global."""
    parsed = einsum_terms(node)
    operands = [index for index, name in enumerate(node.input) if name in f.dependent]
    if parsed is None or not operands or axis == 0:
        return None
    terms, output = parsed
    for index in operands:
        term = terms[index]
        if len(term) != len(f.shapes[node.input[index]]) or len(set(term)) != len(term):
            return None
    letter, batch = terms[operands[0]][axis], terms[operands[0]][0]
    if any(terms[index][axis] != letter or terms[index][0] != batch for index in operands):
        return None
    if any(letter in term or batch in term for index, term in enumerate(terms) if index not in operands):
        return None
    return PointwiseRule(output.index(letter)) if letter in output and output.startswith(batch) else None


def concat(node, axis, f):
    """Along the channels, of sequence-dependent tensors only."""
    rank = len(f.out_shape(node))
    if attributes(node)["axis"] % rank in (0, axis) or any(name not in f.dependent for name in node.input):
        return None
    return PointwiseRule(axis)
