"""What the node rewrites read of a graph: its integer constants, producers and readers, and (for the rewrites
that need a probe run) its probed shapes and uniform tensors."""

import numpy as np
from onnx import numpy_helper

from ...graph.constants import graph_constants

#: Readers that let a Transpose move below the node they read (it moves on, toward another Transpose).
LAYOUT_OPS = ("Transpose", "Unsqueeze", "Slice")


def ints(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


class GraphIndex:
    """The graph with its integer constants, producers and readers, rebuilt after every rewrite; ``shapes`` and
    ``uniform`` are the probe's (``graph.probe.probe_graph``), for the rewrites that need them."""

    def __init__(self, graph, opset, shapes=None, uniform=None):
        self.graph = graph
        self.opset = opset
        self.shapes = shapes or {}
        self.uniform = uniform or {}
        self.constants = graph_constants(graph, integers_only=True)
        self.tensors = {init.name: init for init in graph.initializer}
        self.dims = {init.name: list(init.dims) for init in graph.initializer}
        self.refresh()

    def refresh(self):
        self.producers = {name: node for node in self.graph.node for name in node.output}
        self.readers = {}
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.outputs = {output.name for output in self.graph.output}

    def producer(self, name, op):
        node = self.producers.get(name)
        return node if node is not None and node.op_type == op else None

    def from_shapes(self, name, seen=None):
        """Whether ``name`` is computed from constants and tensor shapes (Shape, Size) alone, not from values."""
        seen = set() if seen is None else seen
        if name in self.tensors or name in seen:
            return True
        seen.add(name)
        node = self.producers.get(name)
        if node is None:
            return False  # a graph input
        return node.op_type in ("Shape", "Size", "Constant") or all(
            self.from_shapes(source, seen) for source in node.input if source)

    def read_once(self, name):
        """Whether ``name`` is read by one node only and is not a graph output."""
        return len(self.readers.get(name, [])) == 1 and name not in self.outputs

    def moves_on(self, name):
        """Whether ``name`` is read once, by a layout op, and is not a graph output."""
        readers = self.readers.get(name, [])
        return len(readers) == 1 and readers[0].op_type in LAYOUT_OPS and name not in self.outputs
