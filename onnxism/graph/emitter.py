"""One node emitter for every graph onnxism writes (the ISM graph, the standalone fast-ISM graph, the gradient
graph): nodes appended in order, under fresh names, with constants as initializers or Constant nodes.

Invariant: every name it makes is new: not among ``taken`` (the names of the graph it writes beside) nor any name it
made or was given before.
"""

import numpy as np
from onnx import helper, numpy_helper


class Emitter:
    """Appends nodes to ``nodes`` (and constants to ``initializers``, or as Constant nodes with
    ``constant_nodes``); fresh names are ``prefix`` + a stem, numbered where taken."""

    def __init__(self, prefix, *, taken=(), constant_nodes=False, opset=None):
        self.prefix = prefix
        self.opset = opset  # the default-domain opset the nodes are written for (the forms of ``reduce``)
        self.nodes = []
        self.initializers = []
        self.taken = set(taken)
        self.constant_nodes = constant_nodes
        self._next = {}

    def fresh(self, stem):
        base = f"{self.prefix}{stem}"
        number = self._next.get(base, 0)
        name = base if number == 0 else f"{base}_{number}"
        while name in self.taken:
            number += 1
            name = f"{base}_{number}"
        self._next[base] = number + 1
        self.taken.add(name)
        return name

    def op(self, op_type, inputs, *, out=None, outputs=1, stem=None, **attrs):
        """Append a node; it writes ``out`` (a name) if given, else ``outputs`` fresh names from ``stem`` (the op
        type by default). Returns its output name, or the list of them when ``outputs`` > 1."""
        names = [out] if out is not None else [self.fresh(stem or op_type) for _ in range(outputs)]
        self.taken.update(names)
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.fresh(f"node_{op_type}"),
                                           **attrs))
        return names[0] if len(names) == 1 else names

    def const(self, array, stem="const", *, name=None):
        """A constant of value ``array``, named ``name`` or a fresh name from ``stem``; returns its name."""
        name = name or self.fresh(stem)
        self.taken.add(name)
        tensor = numpy_helper.from_array(np.asarray(array))
        if self.constant_nodes:
            self.nodes.append(helper.make_node("Constant", [], [name], name=self.fresh(f"const_{stem}"),
                                               value=tensor))
        else:
            tensor.name = name
            self.initializers.append(tensor)
        return name

    def ints(self, values, stem="ints"):
        """A 1-D int64 constant."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), stem)

    # -- layout helpers ---------------------------------------------------------------------------------------
    def reshape(self, value, shape, output=None):
        shape_name = self.const(np.array(shape, np.int64), "shape")
        return self.op("Reshape", [value, shape_name], out=output, stem="reshaped")

    def transpose(self, value, perm, output=None):
        """``value`` transposed by ``perm``: an Identity (or ``value`` itself, without ``output``) where ``perm``
        moves nothing."""
        if list(perm) == list(range(len(perm))):
            return self.op("Identity", [value], out=output) if output else value
        return self.op("Transpose", [value], out=output, stem="transposed", perm=[int(p) for p in perm])

    def slice(self, value, first, stop, axis, label):
        """value[first:stop] along ``axis``; ``first`` and ``stop`` are ints or the names of (1,) int64 tensors."""
        def bound(end, name):
            return end if isinstance(end, str) else self.const(np.array([end], np.int64), name)
        axes = self.const(np.array([axis], np.int64), "axes")
        return self.op("Slice", [value, bound(first, "first"), bound(stop, "stop"), axes], stem=label)

    def reduce(self, op, value, axes, output, keepdims=0):
        """A reduction over ``axes`` in the form of ``self.opset`` (axes an input from opset 18, 13 for ReduceSum)."""
        if self.opset >= 18 or (op == "ReduceSum" and self.opset >= 13):
            axes_name = self.const(np.array(axes, np.int64), "axes")
            return self.op(op, [value, axes_name], out=output, keepdims=keepdims)
        return self.op(op, [value], out=output, axes=list(axes), keepdims=keepdims)
