"""Local rules: ops whose output position j along the length depends on a bounded input range (Conv,
ConvTranspose, MaxPool, AveragePool, LpPool, Pad, Slice), each a LocalRule that can build the op on a window once
its padding along the length is taken out (``windowed_node``); a Resize, a Gather, a strided or reversed Slice and a
reflect / edge / wrap Pad along the length are LocalRules with a ``column_map`` (output j is input column map[j],
or for a linear Resize a weighted sum of a few such columns, read off onnxruntime running the node)."""

import math

import numpy as np
from onnx import helper

from ...graph.length_map import probe_length_map
from ...graph.nodes import attributes, int64_constant, replace_attributes, rewired
from .types import LocalRule, PointwiseRule


def _spatial(node, axis, shapes, constants):
    """Dilated kernel span, stride, pads (begin, end) along ``axis``, the explicit pads of all axes, and the
    number of spatial axes; None where the kernel size is unknown."""
    attrs = attributes(node)
    in_shape = shapes[node.input[0]]
    spatial = len(in_shape) - 2
    j = axis - 2
    if j < 0:
        return None
    if "kernel_shape" in attrs:
        kernel = list(attrs["kernel_shape"])
    elif node.op_type in ("Conv", "ConvTranspose") and (node.input[1] in shapes or node.input[1] in constants):
        kernel = list(shapes.get(node.input[1], np.shape(constants.get(node.input[1], ())))[2:])
    else:
        return None
    strides = list(attrs.get("strides", [1] * spatial))
    dilations = list(attrs.get("dilations", [1] * spatial))
    pads = list(attrs.get("pads", [0] * (2 * spatial)))
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if node.op_type == "ConvTranspose":
            return None
        for d in range(spatial):
            size = in_shape[2 + d]
            total = max(0, (math.ceil(size / strides[d]) - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - size)
            small, large = total // 2, total - total // 2
            pads[d], pads[d + spatial] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * spatial)
    span = (kernel[j] - 1) * dilations[j] + 1
    return span, strides[j], pads[j], pads[j + spatial], pads, spatial


def conv(node, axis, f):
    """A Conv or pooling along the length (its padding taken out of the windowed node)."""
    shapes, constants = f.shapes, f.constants
    found = _spatial(node, axis, shapes, constants)
    if found is None:
        return None
    span, stride, begin, end, pads, spatial = found
    attrs = attributes(node)
    if node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
        return None
    in_shape, out_shape = shapes[node.input[0]], shapes[node.output[0]]
    in_length, out_length = in_shape[axis], out_shape[axis]
    floor_length = (in_length + begin + end - span) // stride + 1
    overhang = out_length == floor_length + 1  # ceil_mode's one more window
    if out_length != floor_length and not (
            overhang and node.op_type in ("MaxPool", "AveragePool") and attrs.get("ceil_mode", 0)):
        return None  # another length rule
    alone = all(in_shape[d] == 1 and out_shape[d] == 1 for d in range(2, len(in_shape)) if d != axis)
    include_pad = bool(attrs.get("count_include_pad", 0))
    exclude_pad = node.op_type == "AveragePool" and (bool(begin or end) and not include_pad or overhang)
    counted = (begin, end) if include_pad else (0, 0)  # the pads counted in an AveragePool's divisor
    if (exclude_pad or overhang) and not alone:
        return None  # the mean over in-range columns and the overhang are built for a pool along the length alone
    if overhang and include_pad and span != list(attrs["kernel_shape"])[axis - 2]:
        return None  # a dilated AveragePool whose divisor counts pads
    new_pads = list(pads)
    new_pads[axis - 2] = new_pads[axis - 2 + spatial] = 0
    updates = {"pads": new_pads}
    if node.op_type in ("MaxPool", "AveragePool") or "ceil_mode" in attrs:
        updates["ceil_mode"] = 0
    new = replace_attributes(node, updates, remove=("auto_pad",))
    pad_value = -np.inf if node.op_type == "MaxPool" else 0.0
    return LocalRule(span, stride, begin, False, pad_value, _renamer(new), exclude_pad=exclude_pad,
                     counted=counted)


def conv_transpose(node, axis, f):
    shapes, constants = f.shapes, f.constants
    found = _spatial(node, axis, shapes, constants)
    if found is None:
        return None
    span, stride, begin, end, pads, spatial = found
    attrs = attributes(node)
    j = axis - 2
    extra = list(attrs.get("output_padding", [0] * spatial))[j]
    in_length, out_length = shapes[node.input[0]][axis], shapes[node.output[0]][axis]
    if "output_shape" in attrs or (in_length - 1) * stride + extra + span - begin - end != out_length:
        return None
    if stride == 1:  # its window is the ConvTranspose padded by span - 1: a valid convolution
        if extra:
            return None
        new_pads = list(pads)
        new_pads[j] = new_pads[j + spatial] = span - 1
        new = replace_attributes(node, {"pads": new_pads}, remove=("auto_pad",))
        return LocalRule(span, 1, begin, True, 0.0, _renamer(new))
    if len(node.input) > 2 and node.input[2] and node.input[2] not in constants:
        return None
    # strided: the ConvTranspose without padding or bias on the input range gives every output the range reaches
    # (``graphs.IsmGraphBuilder._strided_transpose`` picks the window out of it and adds the bias)
    new_pads = list(pads)
    new_pads[j] = new_pads[j + spatial] = 0
    updates = {"pads": new_pads}
    if "output_padding" in attrs:
        padding = list(attrs["output_padding"])
        padding[j] = 0
        updates["output_padding"] = padding
    new = replace_attributes(node, updates, remove=("auto_pad",))
    del new.input[2:]
    return LocalRule(span, stride, begin, True, 0.0, _renamer(new))


def gather(node, axis, f):
    """A Gather with constant indices. Along another axis than the batch and the length, the length keeps its place
    (moved down by one where a scalar index removes an axis before it). Along the length with 1-D indices (torch's
    'nearest-exact' and 'linear' upsampling, once ``normalise`` has turned their GatherND into this), output column
    j is input column indices[j]: a LocalRule with that column map."""
    shapes, constants, dependent = f.shapes, f.constants, f.dependent
    if node.input[0] not in dependent or node.input[1] in dependent or node.input[1] not in constants:
        return None
    rank = len(shapes[node.input[0]])
    chosen = attributes(node).get("axis", 0) % rank
    indices = np.asarray(constants[node.input[1]]).astype(np.int64)
    if chosen == 0 or indices.ndim > 1:
        return None
    if chosen != axis:
        return PointwiseRule(axis - 1 if indices.ndim == 0 and chosen < axis else axis)
    length = shapes[node.input[0]][axis]
    column_map = np.where(indices < 0, indices + length, indices)
    if indices.ndim != 1 or len(column_map) == 0 or column_map.min() < 0 or column_map.max() >= length:
        return None
    return LocalRule(1, 1, 0, False, 0.0, None, length_only=True, column_map=column_map)


def resize(node, axis, f):
    """A Resize (or Upsample) along the length alone, in any mode but tf_crop_and_resize (which may extrapolate):
    linear in its input, so a ``length_map``."""
    if attributes(node).get("coordinate_transformation_mode", "") == "tf_crop_and_resize":
        return None
    return length_map(node, axis, f)


def length_map(node, axis, f):
    """A node that is one linear map along the length, the same for every slot of the other axes, which keep their
    size (a Resize, a reflect / edge / wrap Pad): read off onnxruntime itself by running the node on comb vectors
    along the length (every mode, coordinate transformation and rounding is onnxruntime's own) and checked on
    random values, as output column j = sum over taps t of weights[t, j] * input column maps[t, j]. One tap of
    weight 1 (nearest, a Pad) is a plain column map."""
    shapes, constants, opset = f.shapes, f.constants, f.opset
    if any(name and name not in constants for name in node.input[1:]):
        return None
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    if len(in_shape) != len(out_shape) or any(in_shape[d] != out_shape[d] for d in range(len(in_shape)) if d != axis):
        return None
    read = probe_length_map(node, axis, in_shape, constants, opset)
    if read is None or read[0].shape[1] != out_shape[axis]:
        return None
    maps, weights = read
    if maps.shape[0] == 1 and np.all(weights == 1):
        return LocalRule(1, 1, 0, False, 0.0, None, length_only=True, column_map=maps[0])
    return LocalRule(1, 1, 0, False, 0.0, None, length_only=True, column_map=maps, column_weights=weights)


def pad(node, axis, f):
    shapes, constants = f.shapes, f.constants
    attrs = attributes(node)
    if attrs.get("mode", "constant") != "constant":  # reflect, edge, wrap: each output copies an input
        return length_map(node, axis, f)
    rank = len(shapes[node.input[0]])
    if "pads" in attrs:
        pads = list(attrs["pads"])
        value = float(attrs.get("value", 0.0))
    else:
        if node.input[1] not in constants:
            return None
        pads = constants[node.input[1]].tolist()
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in constants:
                return None
            value = float(np.asarray(constants[node.input[2]]).reshape(-1)[0])
        if len(node.input) > 3 and node.input[3]:
            if node.input[3] not in constants:
                return None
            axes = [int(a) % rank for a in constants[node.input[3]].tolist()]
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[a + rank] = pads[k], pads[k + len(axes)]
            pads = full
    begin = pads[axis]
    others = list(pads)
    others[axis] = others[axis + rank] = 0

    def build(inputs, output):
        if not any(others):
            return [helper.make_node("Identity", [inputs[0]], [output])]
        const = output + "__pads"
        return [
            int64_constant(const, others),
            helper.make_node("Pad", [inputs[0], const] + ([inputs[2]] if len(inputs) > 2 and inputs[2] else []),
                             [output], mode="constant"),
        ]

    return LocalRule(1, 1, begin, False, value, build, length_only=not any(others))


def slice_(node, axis, f):
    shapes, constants = f.shapes, f.constants
    names = list(node.input) + [""] * (5 - len(node.input))
    if any(name and name not in constants for name in names[1:]):
        return None
    rank = len(shapes[node.input[0]])
    starts, ends = constants[names[1]].tolist(), constants[names[2]].tolist()
    axes = [int(a) % rank for a in constants[names[3]].tolist()] if names[3] else list(range(len(starts)))
    steps = constants[names[4]].tolist() if names[4] else [1] * len(starts)
    whole = [i for i in range(len(axes)) if starts[i] == 0 and ends[i] >= 2 ** 31 - 1 and steps[i] == 1]
    if whole:  # tf2onnx's crop slices every axis, the batch from 0 to the end: no slice there
        starts, ends, axes, steps = ([values[i] for i in range(len(axes)) if i not in whole]
                                     for values in (starts, ends, axes, steps))
    if 0 in axes:
        return None  # slices the batch: the rows are substitutions, not the model's batch
    if axis not in axes:
        return PointwiseRule(axis)
    k = axes.index(axis)
    length = shapes[node.input[0]][axis]
    keep = [i for i in range(len(axes)) if i != k]

    def build(inputs, output):
        if not keep:
            return [helper.make_node("Identity", [inputs[0]], [output])]
        made, new_inputs = [], [inputs[0]]
        for label, values in (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps)):
            const = f"{output}__{label}"
            made.append(int64_constant(const, [values[i] for i in keep]))
            new_inputs.append(const)
        return made + [helper.make_node("Slice", new_inputs, [output])]

    if steps[k] != 1:  # strided, or reversed (torch's flip, a reverse complement): column j is input map[j]
        column_map = np.arange(length)[slice(int(starts[k]), int(ends[k]), int(steps[k]))]
        if len(column_map) == 0 or len(column_map) != shapes[node.output[0]][axis]:
            return None
        return LocalRule(1, 1, 0, False, 0.0, build, length_only=not keep, column_map=column_map)
    start = starts[k] + length if starts[k] < 0 else starts[k]
    start = int(min(max(start, 0), length))
    return LocalRule(1, 1, -start, False, 0.0, build, length_only=not keep)


def _renamer(template):
    def build(inputs, output):
        return [rewired(template, inputs, output)]

    return build
