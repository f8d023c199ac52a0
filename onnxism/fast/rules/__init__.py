"""How each ONNX op maps positions along the length axis, decided by what the op does, not by its name alone.

A rule for a node whose sequence-dependent input carries the length on axis ``axis`` is a PointwiseRule (output
position j depends on input position j only: ``pointwise.py``, ``reshape.py``), a LocalRule (a bounded input range:
``local.py``, ``reshape.py``), or None: the op is treated as global along the length, computed on full tensors.
``global_along`` and ``mixes_positions`` say whether an op without a rule is global by what it does (or for want of
a rule).
``RULES`` maps each op type to its rule; ``rule_for`` checks what every rule needs, then asks it.
"""

import numpy as np

from ...graph.nodes import attributes
from ...graph.ops import ELEMENTWISE, RECURRENT_OPS, REDUCTIONS, UNARY_POINTWISE, einsum_terms, normalised_axes
from . import local, pointwise
from .reshape import reshape
from .types import LocalRule, PointwiseRule, RuleFacts

__all__ = ["GLOBAL_BY_NAME", "LocalRule", "PointwiseRule", "RULES", "RuleFacts", "global_along", "mixes_positions",
           "rule_for"]

#: op type -> rule(node, axis, facts) -> PointwiseRule, LocalRule or None
RULES = {
    **{op: pointwise.unary for op in UNARY_POINTWISE},
    **{op: pointwise.elementwise for op in ELEMENTWISE | {"BatchNormalization"}},
    **{op: pointwise.reduction for op in REDUCTIONS},
    "Transpose": pointwise.transpose,
    "Unsqueeze": pointwise.squeeze,
    "Squeeze": pointwise.squeeze,
    "Reshape": reshape,
    "Tile": pointwise.tile,
    "Expand": pointwise.expand,
    "CumSum": pointwise.cumsum,
    "Softmax": pointwise.softmax,
    "LogSoftmax": pointwise.softmax,
    "Hardmax": pointwise.softmax,
    "LpNormalization": pointwise.lp_normalization,
    "LayerNormalization": pointwise.layer_normalization,
    "GlobalAveragePool": pointwise.global_pool,
    "GlobalMaxPool": pointwise.global_pool,
    "GlobalLpPool": pointwise.global_pool,
    "MatMul": pointwise.matmul,
    "Einsum": pointwise.einsum,
    "Concat": pointwise.concat,
    "Conv": local.conv,
    "MaxPool": local.conv,
    "AveragePool": local.conv,
    "LpPool": local.conv,
    "ConvTranspose": local.conv_transpose,
    "Gather": local.gather,
    "Resize": local.resize,
    "Upsample": local.resize,
    "Pad": local.pad,
    "Slice": local.slice_,
}


def rule_for(node, axis, shapes, constants, dependent, opset=18):
    """The rule of ``node`` given the length axis of its dependent input(s), or None (global).

    ``shapes``: tensor name -> shape; ``constants``: name -> ndarray for initializers/Constant outputs;
    ``dependent``: names of tensors that depend on the sequence input; ``opset``: the model's (ai.onnx).
    """
    rule = RULES.get(node.op_type)
    if rule is None or shapes.get(node.output[0]) is None:
        return None
    dep_inputs = [name for name in node.input[:1 if node.op_type == "Reshape" else None] if name in dependent]
    if any(len(shapes.get(name, ())) != len(shapes[dep_inputs[0]]) for name in dep_inputs):
        return None
    return rule(node, axis, RuleFacts(shapes, constants, dependent, opset))


#: Ops that mix every position along the length whenever they have no rule: a Flatten or Reshape that merges the
#: length with other axes, a Dense over it (Gemm, MatMul), global pooling, a tensor's shape, a recurrent layer (its
#: output at every step depends on every step before it, or on all of them).
GLOBAL_BY_NAME = {"Flatten", "Reshape", "Gemm", "MatMul", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
                  "Shape", "Size", *RECURRENT_OPS}


def global_along(node, axis, shapes, constants, opset=18):
    """Whether ``node``, which has no rule, is global along the length (on ``axis`` of its windowed input) by what
    it does: a reduction, softmax, normalisation (instance normalisation too), running sum or top-k whose own axes
    cover the length, or an op of ``GLOBAL_BY_NAME``. False where its axes leave the length alone (it then wants a
    point-wise rule it does not have) or are not known; computing such a node in full is exact either way, only the
    notice differs."""
    op = node.op_type
    if op in GLOBAL_BY_NAME:
        return True
    shape = shapes.get(node.input[0]) if node.input else None
    if shape is None:
        return False
    rank, attrs = len(shape), attributes(node)
    if op in REDUCTIONS:
        covered = pointwise.reduced_axes(node, constants, rank)
    elif op in ("Softmax", "LogSoftmax", "Hardmax"):
        covered = normalised_axes(node, rank, opset)
    elif op in ("LpNormalization", "TopK"):
        covered = [attrs.get("axis", -1) % rank]
    elif op == "InstanceNormalization":  # over every axis after the channels
        covered = list(range(2, rank))
    elif op == "CumSum":
        along = constants.get(node.input[1]) if len(node.input) > 1 else None
        covered = None if along is None else [int(np.asarray(along).reshape(-1)[0]) % rank]
    else:
        return False
    return covered is not None and axis in covered


def mixes_positions(node, length_axes):
    """Whether an Einsum multiplies entries of different positions along the length, given ``length_axes``
    ({input index: its length axis} of the operands that carry it): one operand's length index is summed over (a
    weighted sum over positions, a Dense over the length) or two carry it as different indices (the scores of every
    pair of positions: attention's query-key product). Such a product is global by nature; an Einsum that keeps
    the length as one output index is point-wise and has its rule."""
    parsed = einsum_terms(node) if node.op_type == "Einsum" else None
    if parsed is None or not length_axes:
        return False
    terms, output = parsed
    if any(axis >= len(terms[index]) for index, axis in length_axes.items()):
        return False
    letters = {terms[index][axis] for index, axis in length_axes.items()}
    return len(letters) > 1 or any(letter not in output for letter in letters)
