"""Einsum(x, W), W a weight whose indices are all x's ("ncl,cl->nl") -> [Transpose(] ReduceSum(Mul(x, W'),
contracted) [)], W' = W moved to x's axes (1 where W has no index): a weight varying along the length is then an
operand of an element-wise op, which the window analysis windows.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...graph.ops import einsum_terms
from .index import ints


def einsum_as_product(node, index):
    """An Einsum of a tensor and a weight (an initializer) whose indices are all the tensor's, each once, with an
    explicit output: the product broadcast in the tensor's axes, summed over the indices the output drops, then
    ordered as the output (the same numbers: where an index has size 1 on one operand, onnxruntime's Einsum
    broadcasts it as Mul does). A weight that is also a graph input (a default the caller may override) stays."""
    if node.op_type != "Einsum" or len(node.input) != 2 or index.opset is None or index.opset < 12:
        return None
    weights = [position for position, name in enumerate(node.input) if name in index.tensors]
    parsed = einsum_terms(node)
    if len(weights) != 1 or parsed is None:
        return None
    terms, output = parsed
    if node.input[weights[0]] in {value.name for value in index.graph.input}:
        return None
    own, tensor = terms[weights[0]], terms[1 - weights[0]]
    if any(len(set(term)) != len(term) for term in (own, tensor, output)) or not set(own + output) <= set(tensor):
        return None
    init = index.tensors[node.input[weights[0]]]
    if init.data_type != onnx.TensorProto.FLOAT or len(init.dims) != len(own):
        return None
    order = "".join(letter for letter in tensor if letter in own)
    weight = np.einsum(f"{own}->{order}", numpy_helper.to_array(init))
    weight = weight.reshape([weight.shape[order.index(letter)] if letter in own else 1 for letter in tensor])
    out = node.output[0]
    product, weight_name = f"{out}__product", f"{out}__weight"
    nodes = [helper.make_node("Mul", [node.input[1 - weights[0]], weight_name], [product], name=product)]
    initializers = [numpy_helper.from_array(weight.astype(np.float32), weight_name)]
    contracted = [axis for axis, letter in enumerate(tensor) if letter not in output]
    kept = "".join(letter for letter in tensor if letter in output)
    result = product
    if contracted:
        result = f"{out}__summed"
        if index.opset >= 13:
            initializers.append(ints(f"{result}__axes", contracted))
            nodes.append(helper.make_node("ReduceSum", [product, f"{result}__axes"], [result], name=result,
                                          keepdims=0))
        else:
            nodes.append(helper.make_node("ReduceSum", [product], [result], name=result, axes=contracted,
                                          keepdims=0))
    perm = [kept.index(letter) for letter in output]
    if perm == sorted(perm):
        nodes.append(helper.make_node("Identity", [result], [out], name=f"{out}__identity"))
    else:
        nodes.append(helper.make_node("Transpose", [result], [out], name=f"{out}__ordered", perm=perm))
    return nodes, initializers
