"""What a gradient rule needs while it writes backward nodes: fresh names, constants, static shapes, helpers.

Convention: a cotangent ("ct") of a forward tensor x of shape (N, *rest) has shape (S, N, *rest), where S is the
number of seed directions (targets) handled in one backward pass. Forward tensors have no S axis; numpy-style
broadcasting lines them up with cotangents from the right. Static shapes come from one probe run (at batch 1, or
the model's fixed batch), so every dimension but the batch is known; the batch and S stay dynamic. Where a rule
must know which axis holds the batch (``batch_axis``), a second probe at batch 2 tells.
"""

import numpy as np
from onnx import TensorProto

from ..errors import UnsupportedGraphError
from ..graph.constants import graph_constants
from ..graph.emitter import Emitter

_NP_TO_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
               np.dtype(np.float16): TensorProto.FLOAT16}


class GradientContext(Emitter):
    """Emits backward nodes into ``nodes``/``initializers`` (fresh names ``grad__...``) beside a forward graph it
    never edits."""

    def __init__(self, graph, shapes, active, dtype, seed, input_name, *, opset=17, shapes_at_two=None, known=None):
        taken = {name for node in graph.node for name in list(node.input) + list(node.output)}
        taken |= {init.name for init in graph.initializer} | {v.name for v in graph.input}
        super().__init__("grad__", taken=taken)
        self.graph = graph
        self.shapes = shapes
        self.opset = opset
        self._shapes_at_two = shapes_at_two  # () -> shapes at batch 2 (probed on demand); None: a fixed batch
        self.active = active
        self.dtype = np.dtype(dtype)
        self.onnx_dtype = _NP_TO_ONNX[self.dtype]
        self._constants = graph_constants(graph)
        for name, value in (known or {}).items():  # shape arithmetic, constant at this length (``probe``)
            self._constants.setdefault(name, value)
        self._shape_of = {}
        first = self.const(np.array([0], np.int64), "zero"), self.const(np.array([1], np.int64), "one")
        #: int64 (1,) tensors holding S (the seeds of ``seed``, the first output's) and N (the batch of the input)
        self.seed_count = self.op("Slice", [self.op("Shape", [seed], stem="S_shape"), *first], stem="S")
        self.batch_count = self.op("Slice", [self.op("Shape", [input_name], stem="N_shape"), *first], stem="N")
        self.seed_batch = self.op("Concat", [self.seed_count, self.batch_count], axis=0, stem="SN")

    def scalar(self, value):
        return self.const(np.asarray(value, dtype=self.dtype), "scalar")

    # -- what the forward graph knows ----------------------------------------------------------------------
    def value(self, name):
        """The constant value of forward tensor ``name`` (initializer, Constant node, or shape arithmetic known at
        the graph's length), or None."""
        return self._constants.get(name)

    def needs(self, name):
        """Whether forward tensor ``name`` depends on the sequence input (and so takes a cotangent)."""
        return bool(name) and name in self.active

    def shape(self, name):
        """Static shape of a forward tensor as probed (or of a constant); only its non-batch dims are relied on."""
        if name in self.shapes:
            return self.shapes[name]
        value = self.value(name)
        if value is None:
            raise KeyError(name)
        return tuple(value.shape)

    def rank(self, name):
        return len(self.shape(name))

    def batch_axis(self, name):
        """The axis of forward tensor ``name`` that holds the batch (found by comparing shapes at batch 1 and 2),
        None for a model with a fixed batch (the whole tensor is one row), -1 where no single axis does."""
        if self._shapes_at_two is None:
            return None
        if not isinstance(self._shapes_at_two, dict):
            self._shapes_at_two = self._shapes_at_two()
        one, two = self.shapes.get(name), self._shapes_at_two.get(name)
        if one is None or two is None or len(one) != len(two):
            return -1
        changed = [axis for axis, (a, b) in enumerate(zip(one, two)) if a != b]
        return changed[0] if len(changed) == 1 and (one[changed[0]], two[changed[0]]) == (1, 2) else -1

    def refuse(self, node, why):
        raise UnsupportedGraphError(
            f"no gradient rule for {node.op_type} node {node.name or node.output[0]!r}: {why}",
            node_name=node.name, op_type=node.op_type,
        )

    # -- shape helpers ---------------------------------------------------------------------------------------
    def shape_of(self, name):
        if name not in self._shape_of:
            self._shape_of[name] = self.op("Shape", [name], stem=f"shape_{name}")
        return self._shape_of[name]

    def like(self, ct, x):
        """Reshape a cotangent to (S, *shape of forward tensor x)."""
        target = self.op("Concat", [self.seed_count, self.shape_of(x)], axis=0, stem="like_shape")
        return self.op("Reshape", [ct, target], stem="like")

    def flat(self, ct, x):
        """(S, N, *rest) -> (S*N, *rest), rest from x's static shape."""
        return self.op("Reshape", [ct, self.ints([-1] + list(self.shape(x)[1:]))], stem="flat")

    def unflat(self, value, x):
        """(S*N, *rest) -> (S, N, *rest), rest from x's static shape."""
        target = self.op("Concat", [self.seed_batch, self.ints(list(self.shape(x)[1:]))], axis=0, stem="unflat_shape")
        return self.op("Reshape", [value, target], stem="unflat")

    def zeros_like(self, x):
        """A zero cotangent (S, *shape of x)."""
        target = self.op("Concat", [self.seed_count, self.shape_of(x)], axis=0, stem="zeros_shape")
        return self.op("Expand", [self.scalar(0.0), target], stem="zeros")

    def expand_like(self, ct, x):
        """Broadcast a cotangent with size-1 axes to (S, *shape of x)."""
        target = self.op("Concat", [self.seed_count, self.shape_of(x)], axis=0, stem="expand_shape")
        return self.op("Expand", [ct, target], stem="expand")

    def reduce_sum(self, value, axes, keepdims=1):
        if not axes:
            return value
        return self.op("ReduceSum", [value, self.ints(sorted(axes))], keepdims=keepdims, stem="rsum")

    def unbroadcast(self, ct, x, y, out_shape=None):
        """Sum a cotangent of y over the axes along which x was broadcast to y; result (S, *shape of x).

        ``out_shape`` replaces y's static shape where the cotangent is not shaped like y (MatMul operands).
        """
        out, inp = (self.shape(y) if out_shape is None else tuple(out_shape)), self.shape(x)
        lead = len(out) - len(inp)
        axes = []
        for j, size in enumerate(out):
            src = inp[j - lead] if j >= lead else None
            if j == 0 and src is not None:
                continue  # the batch axis of a tensor on the sequence path is never broadcast
            if src is None or (src == 1 and size != 1):
                axes.append(j + 1)
        if not axes and lead == 0:
            return ct
        return self.like(self.reduce_sum(ct, axes), x)

    def cast_mask(self, boolean):
        return self.op("Cast", [boolean], to=self.onnx_dtype, stem="mask")

    def sum(self, names):
        return names[0] if len(names) == 1 else self.op("Sum", names, stem="acc")
