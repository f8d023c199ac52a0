"""Exporter forms rewritten into ones the window analysis reads, before it runs (fast ISM only).

torch's dynamo exporter writes a gather along the length (``F.interpolate`` with 'linear' or 'nearest-exact',
``x[..., index]``) as Transpose (length first) -> GatherND (indices (K, 1)) -> Transpose back. The middle tensors
have the batch off the first axis, which the rows layout cannot hold. Rewritten:

  GatherND(data, idx (K, 1), batch_dims=0)   ->  Gather(data, idx[:, 0], axis=0)
  Gather(Transpose(x, p), i, axis=a)          ->  Transpose(Gather(x, i, axis=p[a]), p)   (i 1-D, the Gather's one
                                                  consumer a Transpose, so that the two Transposes meet)
  Transpose(Transpose(v, p1), p2)             ->  Transpose(v, p1[p2]), or Identity where that is no permutation

and nodes whose outputs nothing reads are dropped. Invariant: every graph output and every value a kept node reads
is computed exactly as before (each rewrite is an identity of tensors); the model is not changed when nothing
applies (no copy is made then).
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .rules import attributes, names_used


def normalise(proto):
    """``proto`` itself when no rewrite applies, else a rewritten copy."""
    if not _candidates(proto.graph):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    graph = copy.graph
    constants = _small_constants(graph)
    changed = True
    while changed:
        changed = False
        for rewrite in (_gather_nd_as_gather, _gather_before_transpose, _transpose_pair):
            for index, node in enumerate(graph.node):
                made = rewrite(node, graph, constants)
                if made is not None:
                    nodes, initializers = made
                    graph.node.remove(node)
                    for offset, new in enumerate(nodes):
                        graph.node.insert(index + offset, new)
                    graph.initializer.extend(initializers)
                    for init in initializers:
                        constants[init.name] = numpy_helper.to_array(init)
                    changed = True
                    break
    _drop_unread(graph)
    return copy


def _candidates(graph):
    """Whether some node has a form rewritten here (checked before the model is copied)."""
    producers = {name: node for node in graph.node for name in node.output}
    for node in graph.node:
        if node.op_type == "GatherND":
            return True
        if node.op_type == "Transpose" and getattr(producers.get(node.input[0]), "op_type", None) == "Transpose":
            return True
    return False


def _small_constants(graph):
    """Integer initializers and Constant outputs (the index tensors the rewrites read), by name."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer
              if init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            value = numpy_helper.to_array(node.attribute[0].t)
            if np.issubdtype(value.dtype, np.integer):
                values[node.output[0]] = value
    return values


def _consumers(graph, name):
    return [node for node in graph.node if name in node.input]


def _producer(graph, name):
    return next((node for node in graph.node if name in node.output), None)


def _is_graph_output(graph, name):
    return any(output.name == name for output in graph.output)


def _gather_nd_as_gather(node, graph, constants):
    if node.op_type != "GatherND" or attributes(node).get("batch_dims", 0) != 0:
        return None
    indices = constants.get(node.input[1])
    if indices is None or indices.ndim != 2 or indices.shape[1] != 1:
        return None
    name = f"{node.output[0]}__gather_indices"
    gather = helper.make_node("Gather", [node.input[0], name], list(node.output), name=f"{node.output[0]}__gather",
                              axis=0)
    return [gather], [numpy_helper.from_array(indices[:, 0].astype(np.int64), name)]


def _gather_before_transpose(node, graph, constants):
    if node.op_type != "Gather" or node.input[1] not in constants or np.ndim(constants[node.input[1]]) != 1:
        return None
    transpose = _producer(graph, node.input[0])
    readers = _consumers(graph, node.output[0])
    if (transpose is None or transpose.op_type != "Transpose" or len(readers) != 1
            or readers[0].op_type != "Transpose" or _is_graph_output(graph, node.output[0])):
        return None
    perm = attributes(transpose).get("perm")
    if perm is None:
        return None
    axis = attributes(node).get("axis", 0) % len(perm)
    inner = f"{node.output[0]}__before_transpose"
    gather = helper.make_node("Gather", [transpose.input[0], node.input[1]], [inner], name=f"{inner}__node",
                              axis=int(perm[axis]))
    after = helper.make_node("Transpose", [inner], list(node.output), name=f"{node.output[0]}__transposed",
                             perm=list(perm))
    return [gather, after], []


def _transpose_pair(node, graph, constants):
    if node.op_type != "Transpose":
        return None
    first = _producer(graph, node.input[0])
    if first is None or first.op_type != "Transpose":
        return None
    outer, inner = attributes(node).get("perm"), attributes(first).get("perm")
    if outer is None or inner is None:
        return None
    perm = [int(inner[k]) for k in outer]
    if perm == sorted(perm):
        return [helper.make_node("Identity", [first.input[0]], list(node.output), name=f"{node.output[0]}__merged")], []
    return [helper.make_node("Transpose", [first.input[0]], list(node.output), name=f"{node.output[0]}__merged",
                             perm=perm)], []


def _drop_unread(graph):
    """Remove, until none is left, the nodes none of whose outputs is read or a graph output."""
    while True:
        read = names_used(graph) | {output.name for output in graph.output}
        unread = [node for node in graph.node if not any(name in read for name in node.output if name)]
        if not unread:
            return
        for node in unread:
            graph.node.remove(node)
