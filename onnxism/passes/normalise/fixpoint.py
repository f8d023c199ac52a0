"""Node rewrites run to a fixed point: every rewrite tried on every node, in order, the graph re-indexed after each
one that applies, until none does; then the nodes nothing reads are dropped.

Invariant: every graph output and every value a kept node reads is computed exactly as before (each rewrite is an
identity of tensors); the model is not changed (nor copied) when nothing applies.
"""

import onnx
from onnx import numpy_helper

from ...graph.liveness import drop_unread
from ...graph.nodes import default_opset
from .index import GraphIndex


def rewrite_to_fixpoint(proto, rewrites, shapes=None, uniform=None):
    """``proto`` itself where none of ``rewrites`` (each ``rewrite(node, index) -> (nodes, initializers) | None``)
    applies, else a rewritten copy."""
    opset = default_opset(proto)
    index = GraphIndex(proto.graph, opset, shapes, uniform)
    if not any(rewrite(node, index) is not None for rewrite in rewrites for node in proto.graph.node):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    index = GraphIndex(copy.graph, opset, shapes, uniform)
    graph = copy.graph
    changed = True
    while changed:
        changed = False
        for rewrite in rewrites:
            for position, node in enumerate(graph.node):
                made = rewrite(node, index)
                if made is None:
                    continue
                nodes, initializers = made
                graph.node.remove(node)
                for offset, new in enumerate(nodes):
                    graph.node.insert(position + offset, new)
                graph.initializer.extend(initializers)
                for init in initializers:
                    index.constants[init.name] = numpy_helper.to_array(init)
                    index.tensors[init.name] = init
                    index.dims[init.name] = list(init.dims)
                index.refresh()
                changed = True
                break
    drop_unread(graph)
    return copy
