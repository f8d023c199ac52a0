"""Shapes of every tensor of a graph, and the shape arithmetic that does not depend on the batch, found by
onnxruntime runs on zero sequences.

Invariant: the model is not changed; a copy exposes every node output as a graph output. The copy is the model's
weightless stand-in where it has one (``weightless.py``): shapes are the model's, and values that depend on its
large weights or on the values of its extra inputs (fed as zeros) are never reported as known.
"""

import numpy as np
import onnx

from ..runtime.sessions import make_session
from .weightless import LARGE_VALUES, expose_node_outputs, weight_dependent, weightless

#: Numeric tensors up to this many values are compared across batch sizes: shape arithmetic, and what is computed
#: from constants once the length is folded (a Range of the length, a positional table looked up at it); as large as
#: the weights the stand-in keeps (``weightless``), so a lookup in a kept table is known.
FOLD_MAX_VALUES = LARGE_VALUES


def probe_shapes(proto, input_name, input_shape, dtype=np.float32, extras=None):
    """Return {tensor name: shape} for every node output and the graph input, at batch size input_shape[0]."""
    return probe_graph(proto, input_name, input_shape, dtype, fold=False, extras=extras)[0]


def probe_graph(proto, input_name, input_shape, dtype=np.float32, fold=True, extras=None):
    """({tensor name: shape} at batch size input_shape[0], ``fixed``, ``uniform``, {tensor name: numpy dtype}).

    ``extras``: {name: (axes after the batch, dtype)} of the model's extra inputs, fed zeros at each batch size.

    ``fixed``: {name: value} of the small numeric tensors whose values are the same at batch sizes 1,
    input_shape[0] and one more. ``analysis.analyse`` folds them into constants where only shape arithmetic
    computes them (tf2onnx's Shape -> Slice -> Pad chains), and otherwise uses only those of static nodes
    (computed from constants alone, the same at every batch size). ``uniform``: {name: v} of the small tensors
    whose entries are all v at each of those batch sizes, whatever their shape (tf2onnx's ReverseSequence lengths,
    one per sequence: ``passes/pipeline.py``, PROBED_FORMS). A graph with no Shape or Size node has no shape
    arithmetic: the runs at other batch sizes are skipped there, and ``uniform`` is empty."""
    copy, replaced = weightless(proto)
    if copy is proto:
        copy = onnx.ModelProto()
        copy.CopyFrom(proto)
    extras = extras or {}
    unknown = weight_dependent(copy.graph, replaced | set(extras)) if replaced or extras else set()
    expose_node_outputs(copy.graph, replaced)  # (the stand-in's zero weights: not probed)
    session = make_session(copy.SerializeToString(), "cpu", optimize=False)
    names = [output.name for output in session.get_outputs()]

    def feeds(batch):
        zeros = {input_name: np.zeros((batch,) + tuple(input_shape[1:]), dtype=dtype)}
        zeros.update((name, np.zeros((batch,) + tuple(shape), kind)) for name, (shape, kind) in extras.items())
        return zeros

    values = session.run(names, feeds(input_shape[0]))
    shapes = {name: tuple(np.shape(value)) for name, value in zip(names, values)}
    shapes[input_name] = tuple(input_shape)
    shapes.update((name, (input_shape[0],) + tuple(shape)) for name, (shape, _) in extras.items())
    dtypes = {name: np.asarray(value).dtype for name, value in zip(names, values)}
    dtypes[input_name] = np.dtype(dtype)
    dtypes.update((name, np.dtype(kind)) for name, (_, kind) in extras.items())
    small = {names[k]: np.asarray(value) for k, value in enumerate(values)
             if fold and names[k] not in unknown and np.issubdtype(np.asarray(value).dtype, np.number)
             and np.size(value) <= FOLD_MAX_VALUES}
    if not any(node.op_type in ("Shape", "Size") for node in copy.graph.node):
        return shapes, small, {}, dtypes
    uniform = {name: value.reshape(-1)[0].item() for name, value in small.items()
               if value.size and np.all(value == value.reshape(-1)[0])}
    for batch in sorted({1, input_shape[0] + 1} - {input_shape[0]}):
        watched = list(set(small) | set(uniform))
        if not watched:
            break
        try:
            other = session.run(watched, feeds(batch))
        except Exception:  # noqa: BLE001 - e.g. a fixed batch size: nothing is known not to depend on the batch
            return shapes, {}, {}, dtypes
        again = dict(zip(watched, other))
        small = {name: value for name, value in small.items()
                 if np.shape(again[name]) == value.shape and np.array_equal(again[name], value)}
        uniform = {name: value for name, value in uniform.items()
                   if np.size(again[name]) and np.all(np.asarray(again[name]) == value)}
    return shapes, small, uniform, dtypes


def shape_arithmetic(graph, input_name, fixed, extras=()):
    """(known, dependent, from_shapes, unchanged) of ``graph`` in topological order, from ``fixed``
    (``probe_graph``: values the same at every batch size probed, so constants of the graph at its length):

    - ``known``: {tensor: value} of the outputs of nodes "folded" (Shape or Size of a tensor that depends on the
      sequence input, and what follows from those alone, or shape arithmetic of an extra input, where every output is
      in ``fixed``: tf2onnx's pads and bounds computed from a tensor's shape) or static (computed from constants
      alone: those in ``fixed``);
    - ``dependent``: the tensors that depend on the sequence input and are not folded;
    - ``from_shapes``: those of them that shape arithmetic computes;
    - ``unchanged``: the extra inputs and what is computed from them (and constants) alone, not folded.
    """
    known, from_shapes = {}, set()
    dependent, unchanged = {input_name}, set(extras)
    for node in graph.node:
        deps = [name for name in node.input if name in dependent]
        outputs = [name for name in node.output if name]
        if not deps:
            if any(name in unchanged for name in node.input):
                if outputs and all(name in fixed for name in outputs):
                    known.update((name, fixed[name]) for name in outputs)
                else:
                    unchanged.update(outputs)
            else:
                known.update((name, fixed[name]) for name in outputs if name in fixed)
            continue
        if node.op_type in ("Shape", "Size") or all(name in from_shapes for name in deps):
            if all(name in fixed for name in outputs):
                known.update((name, fixed[name]) for name in outputs)
                continue
            from_shapes.update(outputs)
        dependent.update(outputs)
    return known, dependent, from_shapes, unchanged
