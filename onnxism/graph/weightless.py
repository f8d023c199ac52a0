"""A model's stand-in for finding shapes: its large floating-point weights become zeros made at run time.

Serialising a model and starting an onnxruntime session on it costs time in proportion to its weights (seconds for
a model with a 0.5 GB Dense layer); the probes that find its tensors' shapes do not need the weights' values. In
``weightless(proto)`` each large float initializer is a ConstantOfShape node of zeros instead, so the stand-in is a
few kilobytes whatever the model's size.

Invariant: a stand-in is made only where every tensor has the shape it has in the model: no replaced weight reaches
an input that sets an output's shape by its values (a Reshape's target, a Slice's bounds, a subgraph, ...). Values
that depend on a replaced weight are not the model's; ``weight_dependent`` names them (Shape and Size cut the
dependence: their outputs are shapes).
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .nodes import default_opset, reads

#: Initializers with at least this many values are replaced (smaller ones stay: they cost nothing to copy and may
#: be index tensors or shape arithmetic).
LARGE_VALUES = 1 << 16
#: The floating-point types ConstantOfShape makes (opset 9 on).
_FLOATS = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
           onnx.TensorProto.FLOAT16: np.float16}
#: Inputs whose values set an output's shape (by op type, input slots; ``None``: all of them).
_SHAPE_SETTING = {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "ConstantOfShape": {0}, "Slice": {1, 2, 3, 4}, "Pad": {1, 3},
    "Resize": {1, 2, 3}, "Upsample": {1}, "Range": None, "TopK": {1}, "OneHot": {1}, "Squeeze": {1},
    "Unsqueeze": {1}, "Split": {1}, "NonZero": None, "Compress": None, "Unique": None, "CenterCropPad": {1},
    "Col2Im": {1, 2}, "MaxUnpool": {2}, "DFT": {1}, "STFT": {1, 2, 3}, "ReduceSum": {1}, "ReduceMean": {1},
    "ReduceMax": {1}, "ReduceMin": {1}, "ReduceProd": {1}, "ReduceL1": {1}, "ReduceL2": {1},
    "ReduceLogSumExp": {1}, "ReduceSumSquare": {1}, "RandomNormalLike": None, "RandomUniformLike": None,
    "Bernoulli": None, "Multinomial": None,
}


def weight_dependent(graph, names):
    """Names of the tensors of ``graph`` whose values depend on the tensors ``names`` (those included)."""
    dependent = set(names)
    for node in graph.node:
        if node.op_type in ("Shape", "Size"):
            continue
        if any(name in dependent for name in reads(node)):
            dependent.update(name for name in node.output if name)
    return dependent


def expose_node_outputs(graph, existing=()):
    """Add every node output of ``graph`` (a copy: it is changed) to its graph outputs, once, except the names in
    ``existing`` (and those already outputs), so that one onnxruntime run returns every tensor."""
    existing = {output.name for output in graph.output} | set(existing)
    for node in graph.node:
        for name in node.output:
            if name and name not in existing:
                graph.output.append(onnx.ValueInfoProto(name=name))
                existing.add(name)


def weightless(proto, large=LARGE_VALUES):
    """(stand-in, names of the replaced initializers), or (``proto``, empty set) where no stand-in can be made
    (nothing large, an opset before ConstantOfShape, or a large weight that sets a shape). ``proto`` is not
    changed and its weights are not copied."""
    graph = proto.graph
    inputs = {value.name for value in graph.input}
    large_ones = [init for init in graph.initializer
                  if init.data_type in _FLOATS and init.name not in inputs and int(np.prod(init.dims)) >= large]
    if not large_ones or (default_opset(proto) or 0) < 9:
        return proto, set()
    replaced = {init.name for init in large_ones}
    dependent = weight_dependent(graph, replaced)
    if any(_sets_shape(node, dependent) for node in graph.node):
        return proto, set()
    stand_in = _copy_without(proto, "graph")
    body = stand_in.graph
    _copy_fields(graph, body, skip=("initializer", "node"))
    body.initializer.extend(init for init in graph.initializer if init.name not in replaced)
    for init in large_ones:
        shape = f"{init.name}__weightless_shape"
        body.initializer.append(numpy_helper.from_array(np.array(init.dims, np.int64), shape))
        zero = numpy_helper.from_array(np.zeros(1, _FLOATS[init.data_type]))
        body.node.append(helper.make_node("ConstantOfShape", [shape], [init.name], value=zero,
                                          name=f"{init.name}__weightless"))
    body.node.extend(graph.node)
    return stand_in, replaced


def _sets_shape(node, dependent):
    if any(attr.HasField("g") or len(attr.graphs) for attr in node.attribute):
        return any(name in dependent for name in reads(node))
    if node.op_type not in _SHAPE_SETTING:
        return False
    slots = _SHAPE_SETTING[node.op_type]
    return any(name in dependent for slot, name in enumerate(node.input) if slots is None or slot in slots)


def _copy_fields(source, target, skip=()):
    for field, value in source.ListFields():
        if field.name in skip:
            continue
        if hasattr(value, "extend"):  # a repeated field
            getattr(target, field.name).extend(value)
        elif hasattr(value, "CopyFrom"):  # a message
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _copy_without(proto, skip):
    copy = type(proto)()
    _copy_fields(proto, copy, skip=(skip,))
    return copy
