"""The lowering dispatch: each node of the model, by its Mode and rule, to the ISM graph's nodes.

Static nodes are copied, folded shape arithmetic becomes constants, a windowed tensor's Shape is its full shape,
nodes computed in full read their inputs materialised in full, linear heads are updated incrementally
(``heads.py``), and windowed nodes are lowered on their output's window: local ops by ``lower_local`` (convolutions
``convs.py``, pooling ``pooling.py``, column maps and length reshapes ``columns.py``, Pad and Slice and the rest
here), point-wise ops by ``pointwise.py``.

Invariant: for every row (sequence n, position p, base b), each windowed tensor's ``__win`` holds the model's tensor
on sequence n with position p set to base b, on the tensor's window for p.
"""

import numpy as np
import onnx

from ...graph.nodes import attributes, rewired
from ..layout import inverse
from ..rules import LocalRule
from ..windows import Mode
from .columns import mapped_columns, merged_reshape, split_reshape
from .convs import (
    DELTA_MIN_TAPS,
    NATIVE_MIN_OUT_CHANNELS,
    conv_native,
    conv_weight,
    delta_conv,
    length_kernel,
    narrow_whole_conv,
    strided_transpose,
)
from .heads import linear_head
from .pointwise import pointwise
from .pooling import pool


def lower_graph(s):
    """Lower every node of the model (``s``: the BuildState), then the ISM graph's outputs."""
    for index, node in enumerate(s.graph.node):
        key = node.name or f"node{index}"
        mode = s.analysis.modes[key]
        if key in s.heads:
            linear_head(s, key, s.heads[key])
        elif mode == Mode.UNCHANGED:  # read from the reference run where needed
            continue
        elif mode == Mode.STATIC:
            s.nodes.append(node)
        elif mode == Mode.FOLDED:  # shape arithmetic that does not depend on the batch: its values
            for name in node.output:
                if name:
                    s.constant(name, s.analysis.folded[name])
        elif mode == Mode.SHAPE:
            whole_shape(s, node)
        elif mode == Mode.FULL:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            del copy.input[:]
            copy.input.extend(s.materialise(name) for name in node.input)
            s.nodes.append(copy)
        elif isinstance(s.analysis.rules[key], LocalRule):
            lower_local(s, node, s.analysis.rules[key])
        else:
            pointwise(s, node)
    for name, final in zip(s.outputs, s.output_names()):
        if final != name:
            s.node("Identity", [s.materialise(name)], [final])
    if s.deltas:  # reduced on the device: only the change leaves the ISM graph
        for name, final, result in zip(s.outputs, s.output_names(), s.result_names()):
            s.node("Sub", [final, s.per_sequence(name)], [result])


def whole_shape(s, node):
    """The Shape of a windowed tensor: its window's shape in the model's order, the window's width corrected to the
    tensor's length (a Slice of it for Shape-15's range of axes)."""
    source = node.input[0]
    window = s.analysis.windows[source]
    correction = np.zeros(len(s.shapes[source]), np.int64)
    correction[window.axis] = window.length - window.width
    shape = s.node("Shape", [s.win(source)], [f"{node.output[0]}__win_shape"])
    order = s.constant(s.fresh("order"), np.array(inverse(s.perm(source)), np.int64))
    shape = s.node("Gather", [shape, order], [f"{node.output[0]}__model_shape"], axis=0)
    attrs = attributes(node)
    ranged = "start" in attrs or "end" in attrs  # Shape-15's range of axes: a Slice of the whole shape
    whole = s.node("Add", [shape, s.constant(f"{node.output[0]}__correction", correction)],
                   [f"{node.output[0]}__whole" if ranged else node.output[0]])
    if ranged:
        bounds = [s.constant(s.fresh(label), np.array([value], np.int64)) for label, value in
                  (("start", attrs.get("start", 0)), ("end", attrs.get("end", 2 ** 62)))]
        s.node("Slice", [whole] + bounds, [node.output[0]])


def lower_local(s, node, rule):
    """A node with a LocalRule on its output's window: the lowering its op and shapes call for."""
    windows = s.analysis.windows
    out = node.output[0]
    target = windows[out]
    source = next(name for name in node.input if name in windows)
    partial = target.width < target.length
    if rule.merged:
        return merged_reshape(s, source, out, rule)
    if rule.split and partial:
        return split_reshape(s, source, out, rule)
    if rule.column_map is not None and partial:
        return mapped_columns(s, source, out, rule)
    start, width = rule.needed(target.start, target.width)
    transposed_strided = rule.transposed and rule.stride > 1
    if transposed_strided and partial:
        return strided_transpose(s, node, source, rule, start, width)
    kernel = length_kernel(s, node, source, out)
    conv = (kernel is not None and node.op_type in ("Conv", "ConvTranspose") and not transposed_strided
            and conv_weight(s, node).shape[0] >= NATIVE_MIN_OUT_CHANNELS)
    if conv and rule.stride == 1 and kernel[0] >= DELTA_MIN_TAPS and windows[source].width < width and partial:
        return delta_conv(s, node, source, rule, *kernel)
    if conv:
        return conv_native(s, node, source, rule, start, width, kernel[1])
    if (kernel is not None and node.op_type in ("Conv", "ConvTranspose")
            and narrow_whole_conv(s, node, source, rule, kernel)):
        return None
    if not partial:
        # a whole output: the op itself on the whole input, its own padding included (nothing gathered where
        # the input window is whole too)
        inputs = [s.materialise(name) if name == source else name for name in node.input]
        s.nodes.append(rewired(node, inputs, s.fresh("whole")))
        return s.to_rows(s.nodes[-1].output[0], out, s.win(out))
    if kernel is not None and node.op_type in ("MaxPool", "AveragePool"):  # along the length alone
        return pool(s, node, source, rule, start, kernel)
    gathered = s.gather(source, start, np.arange(width), rule.pad_value)
    if rule.length_only:
        return s.node("Identity", [gathered], [s.win(out)])
    inputs = [s.to_model(gathered, source) if name == source else name for name in node.input]
    return s.to_rows(s.windowed_nodes(rule, inputs, s.fresh("local")), out, s.win(out))
