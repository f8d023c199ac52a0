"""Op tables and what an op computes where its attributes or opset decide: shared by the rewrites, fast ISM's window
rules and the gradient rules."""

from onnx import helper

from .nodes import attributes

#: Ops of one input whose output element j is a function of input element j alone.
UNARY_POINTWISE = {
    "Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Exp", "Log", "Elu", "Selu", "LeakyRelu", "Gelu", "Erf",
    "Abs", "Neg", "Sqrt", "Reciprocal", "Identity", "Dropout", "Cast", "Clip", "HardSigmoid", "HardSwish",
    "Mish", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign", "ThresholdedRelu", "Celu", "Swish",
    "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Shrink",
    "Not", "IsNaN", "IsInf", "BitwiseNot",
}
#: Ops that combine their inputs element by element, with numpy broadcasting.
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Where", "BitShift", "Mod",
               "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor",
               "BitwiseAnd", "BitwiseOr", "BitwiseXor"}
REDUCTIONS = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin"}
#: Ops that take the time axis first (exporters move it there with a Transpose before them).
RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def normalised_axes(node, rank, opset):
    """The axes a Softmax, LogSoftmax or Hardmax normalises over (of a rank-``rank`` input): its axis (default -1)
    from opset 13 on; before 13 the input is flattened to 2-D at its axis (default 1), so every axis from there on."""
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), None)
    if opset >= 13:
        return [(-1 if axis is None else axis) % rank]
    return list(range((1 if axis is None else axis) % rank, rank))


def einsum_terms(node):
    """(each operand's indices, the output's) of an Einsum with an explicit output, one term per input and no
    ellipsis; None otherwise."""
    equation = attributes(node).get("equation", "").replace(" ", "")
    lhs, arrow, output = equation.partition("->")
    terms = lhs.split(",")
    if not arrow or "..." in equation or len(terms) != len(node.input):
        return None
    return terms, output
