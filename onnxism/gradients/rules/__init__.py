"""Vector-Jacobian rules: for one forward node, the cotangents of its inputs from those of its outputs.

A rule is ``vjp(ctx, node, gouts) -> {input index: cotangent name}``; ``gouts`` holds one cotangent name (or
None) per node output, each shaped (S, *output shape). A rule returns cotangents only for inputs on the sequence
path (``ctx.needs``) and refuses, naming the node, what it cannot differentiate exactly (weights computed from
the sequence, non-constant modes, ...). Only standard ONNX ops are emitted.

Every rule is registered in ``RULES`` by one of two decorators of ``registry``: ``@rule("Op", ...)`` on a function
of that signature, or ``@unary("Op", ...)`` on ``cotangent(ctx, node, g, x, y)`` for an op whose only input on the
sequence path is its first. The rules are split by op family, one module each:

- ``pointwise``: one-input activations and elementary functions, and Clip;
- ``elementwise``: broadcasting ops of several inputs (Add, Sub, Sum, Mean, Mul, Div, Max, Min, Where), Expand,
  Pow and PRelu;
- ``normalisation``: BatchNormalization, LayerNormalization and InstanceNormalization, Softmax and LogSoftmax,
  LpNormalization;
- ``linear``: Conv, ConvTranspose, MatMul, Gemm, Einsum;
- ``pooling``: MaxPool, AveragePool, LpPool (``windows`` holds the window geometry they share with Conv);
- ``reductions``: the Reduce ops, GlobalAveragePool and GlobalMaxPool;
- ``data_movement``: Identity, Dropout, Cast, the Reshape family, Transpose, Concat, Split, Slice, Pad;
- ``scans``: CumSum and TopK;
- ``resize``: Resize;
- ``recurrent``: GRU and LSTM (two Scans over time per direction);
- the selections (Gather and its kin, Tile, ...: ops whose outputs copy input entries) are one rule, in
  ``onnxism.gradients.selection``, which strided Slices, non-constant Pads and nearest Resizes also take.

``common`` holds the few helpers the families share. ``NON_DIFFERENTIABLE`` and ``carries_derivative`` say where
the sequence path stops.
"""

from onnx import TensorProto

from ...graph.nodes import attr
from .. import selection  # noqa: F401 - registers the selections
from . import (  # noqa: F401
    data_movement,
    elementwise,
    linear,
    normalisation,
    pointwise,
    pooling,
    recurrent,
    reductions,
    resize,
    scans,
)
from .registry import RULES, rule, unary

__all__ = ["NON_DIFFERENTIABLE", "RULES", "carries_derivative", "rule", "unary"]

#: Ops whose outputs carry no derivative (shape arithmetic, comparisons, indices): the path stops there.
NON_DIFFERENTIABLE = {
    "Shape", "Size", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor",
    "ArgMax", "ArgMin", "Sign", "Floor", "Ceil", "Round", "NonZero", "ConstantOfShape", "IsNaN", "IsInf",
    "OneHot", "EyeLike", "RandomNormalLike", "RandomUniformLike", "BitShift",
}

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


def carries_derivative(node, index):
    """Whether output ``index`` of a node whose inputs are on the sequence path is itself on it."""
    if node.op_type in NON_DIFFERENTIABLE:
        return False
    if node.op_type == "Cast":
        return attr(node, "to") in _FLOAT_TYPES
    if node.op_type in ("MaxPool", "TopK", "Dropout", "LayerNormalization", "BatchNormalization", "Split"):
        return index == 0 or node.op_type == "Split"
    return True
