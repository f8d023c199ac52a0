"""tf2onnx writes a Keras Dense on a (N, L, C) tensor with the batch and the length merged into one axis:
Reshape(MatMul(Reshape(x, (-1, C)), W) [+ b], target) -> Reshape(MatMul(x, W) [+ b], target), an Identity where
that is (N, ..., C'): a MatMul over the channels, point-wise.
"""

import numpy as np
import onnx
from onnx import helper


def dense_per_position(node, index):
    """tf2onnx's form of a Keras Dense on a (N, ..., C) tensor: Reshape to (N * ..., C), MatMul by a (C, C')
    weight, [Add a bias over C',] Reshape back: the MatMul [and Add] on the tensor itself, which keeps the batch
    first, then the last Reshape (an Identity where it gives back (N, ..., C'))."""
    shapes = index.shapes
    if node.op_type != "Reshape" or node.input[0] in index.outputs:
        return None
    data, bias = node.input[0], None
    add = index.producer(data, "Add")
    if add is not None:
        bias = next((name for name in add.input if name in index.dims and len(index.dims[name]) <= 1), None)
        data = next((name for name in add.input if name != bias), None) if bias is not None else None
    matmul = index.producer(data, "MatMul") if data is not None else None
    flatten = index.producer(matmul.input[0], "Reshape") if matmul is not None else None
    if flatten is None or not all(index.read_once(name) for name in (flatten.output[0], matmul.output[0])
                                  + ((add.output[0],) if add is not None else ())):
        return None
    source, weight = flatten.input[0], index.dims.get(matmul.input[1])
    shape = shapes.get(source)
    if shape is None or len(shape) < 3 or weight is None or len(weight) != 2 or weight[0] != shape[-1]:
        return None
    if shapes.get(flatten.output[0]) != (int(np.prod(shape[:-1])), shape[-1]):
        return None
    if bias is not None and index.dims[bias] not in ([], [1], [weight[1]]):
        return None
    out = node.output[0]
    nodes = [helper.make_node("MatMul", [source, matmul.input[1]], [f"{out}__per_position"],
                              name=f"{out}__per_position")]
    if bias is not None:
        nodes.append(helper.make_node("Add", [nodes[-1].output[0], bias], [f"{out}__per_position_biased"],
                                      name=f"{out}__per_position_biased"))
    if shapes.get(out) == tuple(shape[:-1]) + (weight[1],):
        nodes.append(helper.make_node("Identity", [nodes[-1].output[0]], [out], name=f"{out}__identity"))
    else:
        reshape = onnx.NodeProto()
        reshape.CopyFrom(node)
        reshape.input[0] = nodes[-1].output[0]
        nodes.append(reshape)
    return nodes, []
