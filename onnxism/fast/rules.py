"""How each ONNX op maps positions along the length axis, decided by what the op does, not by its name alone.

A rule for a node whose sequence-dependent input carries the length on axis ``axis`` says one of:
  PointwiseRule   output position j depends on input position j only (elementwise ops, with constant operands
                  that may vary along the length, activations, BatchNormalization, MatMul over channels,
                  Softmax/LayerNorm/LpNormalization/reductions over other axes, channel Concat, Gather along other
                  axes, layout ops, an Einsum contracting other axes with constants); ``out_axis`` is where the
                  length goes.
  LocalRule       output position j depends on a bounded input range (Conv, ConvTranspose, MaxPool, AveragePool,
                  LpPool, Pad, Slice); it can compute an output window from an input range once the node's padding
                  along the length is taken out (``windowed_node``). A Resize, a Gather, a strided or reversed
                  Slice and a reflect / edge / wrap Pad along the length are LocalRules with a ``column_map``:
                  output j is input column map[j] (any order), or for a linear Resize a weighted sum of a few
                  such columns (read off onnxruntime running the node).
  None            anything else: the op is treated as global along the length, computed on full tensors.
"""

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper

from ..graph.length_map import probe_length_map
from ..graph.nodes import attributes, int64_constant, replace_attributes, rewired
from ..graph.ops import ELEMENTWISE, REDUCTIONS, UNARY_POINTWISE, einsum_terms, normalised_axes

@dataclass
class PointwiseRule:
    out_axis: int


@dataclass
class LocalRule:
    """Output j depends on inputs [j*stride - begin, j*stride - begin + span) (Conv-like), or, for a transposed
    convolution (``transposed``), input i reaches outputs [i*stride - begin, i*stride - begin + span); with a
    ``column_map``, output j is input map[j], or a weighted sum over taps t of input map[t, j]."""

    span: int
    stride: int
    begin: int
    transposed: bool
    pad_value: float
    windowed_node: object  # callable(inputs, output) -> list of NodeProto computing the window
    length_only: bool = False  # a Pad or Slice along the length alone: the gathered window is the output
    column_map: np.ndarray = None  # output column j is input column column_map[j] (a nearest Resize, a Gather);
    # 2-D (taps, L_out) with ``column_weights``: output j = sum_t column_weights[t, j] * input column_map[t, j]
    column_weights: np.ndarray = None
    exclude_pad: bool = False  # an AveragePool that divides by the counted columns of each window only: those
    # in the input, and ``counted`` (columns before it, after it) of its pads where count_include_pad says so (a
    # ceil_mode window reaching past the end pad does not count the columns past it)
    counted: tuple = (0, 0)
    merged: int = 0  # a Reshape merging the length with this many axes after it (input column i -> ``stride``
    # output columns from i * stride): its window is the input's window reshaped (``analysis`` checks they align)
    split: int = 0  # a Reshape splitting the length into (L / stride, this many axes of product ``stride``)

    def affected(self, lo, hi, out_length):
        """Output range [lo', hi') that input range [lo, hi) can change (arrays over positions), clipped."""
        if self.column_map is not None:  # from the first to the last output that reads a column of the range
            maps = np.atleast_2d(self.column_map)
            size = int(max(maps.max() + 1, np.max(hi, initial=0)))
            first, end = np.full(size, out_length, np.int64), np.zeros(size, np.int64)
            outputs = np.broadcast_to(np.arange(maps.shape[1]), maps.shape).ravel()
            np.minimum.at(first, maps.ravel(), outputs)
            np.maximum.at(end, maps.ravel(), outputs + 1)
            new_lo = np.array([first[a:b].min() if b > a else 0 for a, b in zip(lo, hi)], np.int64)
            new_hi = np.array([end[a:b].max() if b > a else 0 for a, b in zip(lo, hi)], np.int64)
        elif self.transposed:
            new_lo, new_hi = lo * self.stride - self.begin, (hi - 1) * self.stride - self.begin + self.span
        else:
            new_lo = -((-(lo + self.begin - self.span + 1)) // self.stride)  # ceil division
            new_hi = (hi - 1 + self.begin) // self.stride + 1
        new_lo, new_hi = np.clip(new_lo, 0, out_length), np.clip(new_hi, 0, out_length)
        return new_lo, np.maximum(new_hi, new_lo)

    def needed(self, start, width):
        """Input range (start, width) that computes output window [start, start + width)."""
        if self.column_map is not None:
            maps = np.atleast_2d(self.column_map)
            first = np.array([maps[:, a:a + width].min() for a in start], np.int64)
            last = np.array([maps[:, a:a + width].max() for a in start], np.int64)
            return first, int((last - first).max()) + 1
        if self.transposed:  # the inputs i with i * stride in [start + begin - span + 1, start + begin + width)
            first = -((-(start + self.begin - self.span + 1)) // self.stride)
            return first, -(-(width + self.span - 1) // self.stride)
        return start * self.stride - self.begin, (width - 1) * self.stride + self.span


def rule_for(node, axis, shapes, constants, dependent, opset=18):
    """The rule of ``node`` given the length axis of its dependent input(s), or None (global).

    ``shapes``: tensor name -> shape; ``constants``: name -> ndarray for initializers/Constant outputs;
    ``dependent``: names of tensors that depend on the sequence input; ``opset``: the model's (ai.onnx).
    """
    op = node.op_type
    out_shape = shapes.get(node.output[0])
    if out_shape is None:
        return None
    dep_inputs = [name for name in node.input[:1 if op == "Reshape" else None] if name in dependent]
    if any(len(shapes.get(name, ())) != len(shapes[dep_inputs[0]]) for name in dep_inputs):
        return None
    if op in UNARY_POINTWISE:
        if len([o for o in node.output if o]) > 1 or node.input[0] not in dependent:
            return None
        if any(name in dependent for name in node.input[1:]):
            return None
        return PointwiseRule(axis) if len(out_shape) == len(shapes[node.input[0]]) else None
    if op in ELEMENTWISE or op == "BatchNormalization":
        if op == "BatchNormalization" and (axis == 1 or len([o for o in node.output if o]) > 1):
            return None
        rank = len(out_shape)
        for name in node.input:
            if not name or name in dependent or op == "BatchNormalization":  # BN parameters are per channel
                continue
            shape = shapes.get(name, np.shape(constants.get(name, 0)))
            aligned = axis - (rank - len(shape))
            if 0 <= aligned < len(shape) and shape[aligned] != 1 and (
                    op == "BatchNormalization" or name not in constants or shape[aligned] != out_shape[axis]):
                return None  # a fixed tensor that varies along the length, its values unknown here
        if any(len(shapes[name]) != rank for name in dep_inputs):
            return None
        return PointwiseRule(axis)
    if op == "Transpose":  # one that moves the batch off the first axis (time-major, for an LSTM) is global
        perm = attributes(node).get("perm") or list(reversed(range(len(out_shape))))
        return PointwiseRule(list(perm).index(axis)) if perm[0] == 0 else None
    if op in ("Unsqueeze", "Squeeze"):
        return _squeeze_rule(node, axis, shapes, constants)
    if op == "Reshape":
        return (_pointwise_reshape_rule(node, axis, shapes) or _merging_reshape_rule(node, axis, shapes)
                or _splitting_reshape_rule(node, axis, shapes))
    if op == "Tile":
        repeats = constants.get(node.input[1])
        if repeats is None or node.input[1] in dependent:
            return None
        repeats = np.asarray(repeats).reshape(-1)
        return PointwiseRule(axis) if repeats[0] == 1 and repeats[axis] == 1 else None
    if op == "Expand":  # broadcasts other axes (torch's repeat_interleave: Unsqueeze, Expand, a merging Reshape)
        in_shape = shapes[node.input[0]]
        if node.input[1] in dependent or len(out_shape) != len(in_shape):
            return None  # (one that adds leading axes would move the batch)
        target = constants.get(node.input[1])
        if target is None:  # shape arithmetic of the batch (analysis.py; torch's expand_as): the probed shapes tell
            keeps = in_shape[0] == out_shape[0] and in_shape[axis] == out_shape[axis]  # what it broadcasts
            return PointwiseRule(axis) if keeps else None
        target = [1] * (len(out_shape) - len(target)) + [int(v) for v in np.asarray(target).reshape(-1)]
        return PointwiseRule(axis) if target[0] == 1 and target[axis] in (1, out_shape[axis]) else None
    if op == "CumSum":  # a running sum along another axis than the length (along it: global)
        along = constants.get(node.input[1])
        if along is None or node.input[1] in dependent or attributes(node).get("reverse", 0) not in (0, 1):
            return None
        along = int(np.asarray(along).reshape(-1)[0]) % len(out_shape)
        return PointwiseRule(axis) if along not in (0, axis) else None
    if op in ("Softmax", "LogSoftmax", "Hardmax"):
        covered = normalised_axes(node, len(out_shape), opset)
        return PointwiseRule(axis) if axis not in covered and 0 not in covered else None
    if op == "LpNormalization":  # over one axis: point-wise where that is neither the batch nor the length
        along = attributes(node).get("axis", -1) % len(out_shape)
        return PointwiseRule(axis) if along not in (0, axis) else None
    if op == "LayerNormalization":
        rank = len(out_shape)
        first = attributes(node).get("axis", -1) % rank
        return PointwiseRule(axis) if axis < first and len([o for o in node.output if o]) == 1 else None
    if op in REDUCTIONS:
        return _reduce_rule(node, axis, shapes, constants)
    if op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"):  # pools every axis after the second: a
        # reduction over the channels where the length is the second (tf2onnx's Keras LayerNormalization)
        return PointwiseRule(axis) if axis == 1 and len([o for o in node.output if o]) == 1 else None
    if op == "MatMul":
        left, right = node.input
        rank = len(out_shape)
        if left in dependent and right not in dependent and axis < rank - 1:
            weight = shapes.get(right, np.shape(constants.get(right, 0)))
            if len(weight) <= 2:
                return PointwiseRule(axis)
        return None
    if op == "Einsum":
        return _einsum_rule(node, axis, shapes, dependent)
    if op == "Concat":
        rank = len(out_shape)
        if attributes(node)["axis"] % rank in (0, axis) or any(name not in dependent for name in node.input):
            return None
        return PointwiseRule(axis)
    if op in ("Conv", "MaxPool", "AveragePool", "LpPool"):
        return _conv_rule(node, axis, shapes, constants)
    if op == "ConvTranspose":
        return _conv_transpose_rule(node, axis, shapes, constants)
    if op == "Gather":
        return _gather_rule(node, axis, shapes, constants, dependent)
    if op in ("Resize", "Upsample"):
        return _resize_rule(node, axis, shapes, constants, opset)
    if op == "Pad":
        return _pad_rule(node, axis, shapes, constants, opset)
    if op == "Slice":
        return _slice_rule(node, axis, shapes, constants)
    return None


#: Ops that mix every position along the length whenever they have no rule: a Flatten or Reshape that merges the
#: length with other axes, a Dense over it (Gemm, MatMul), global pooling, a tensor's shape.
GLOBAL_BY_NAME = {"Flatten", "Reshape", "Gemm", "MatMul", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
                  "Shape", "Size"}


def global_along(node, axis, shapes, constants, opset=18):
    """Whether ``node``, which has no rule, is global along the length (on ``axis`` of its windowed input) by what
    it does: a reduction, softmax, normalisation (instance normalisation too), running sum or top-k whose own axes
    cover the length, or an op of ``GLOBAL_BY_NAME``. False where its axes leave the length alone (it then wants a
    point-wise rule it does not have) or are not known; computing such a node in full is exact either way, only the
    notice differs."""
    op = node.op_type
    if op in GLOBAL_BY_NAME:
        return True
    shape = shapes.get(node.input[0]) if node.input else None
    if shape is None:
        return False
    rank, attrs = len(shape), attributes(node)
    if op in REDUCTIONS:
        covered = _reduced_axes(node, constants, rank)
    elif op in ("Softmax", "LogSoftmax", "Hardmax"):
        covered = normalised_axes(node, rank, opset)
    elif op in ("LpNormalization", "TopK"):
        covered = [attrs.get("axis", -1) % rank]
    elif op == "InstanceNormalization":  # over every axis after the channels
        covered = list(range(2, rank))
    elif op == "CumSum":
        along = constants.get(node.input[1]) if len(node.input) > 1 else None
        covered = None if along is None else [int(np.asarray(along).reshape(-1)[0]) % rank]
    else:
        return False
    return covered is not None and axis in covered


def _einsum_rule(node, axis, shapes, dependent):
    """An Einsum whose sequence-dependent operands all carry the length and the batch as the same two indices, which
    no other operand has and the output keeps, the batch first (a Dense over the channels at each position:
    "ncl,cd->nld"; a product or dot product of two such tensors: "ncl,ncl->nl"): point-wise. An implicit output, an
    ellipsis or a repeated index is left global."""
    parsed = einsum_terms(node)
    operands = [index for index, name in enumerate(node.input) if name in dependent]
    if parsed is None or not operands or axis == 0:
        return None
    terms, output = parsed
    for index in operands:
        term = terms[index]
        if len(term) != len(shapes[node.input[index]]) or len(set(term)) != len(term):
            return None
    letter, batch = terms[operands[0]][axis], terms[operands[0]][0]
    if any(terms[index][axis] != letter or terms[index][0] != batch for index in operands):
        return None
    if any(letter in term or batch in term for index, term in enumerate(terms) if index not in operands):
        return None
    return PointwiseRule(output.index(letter)) if letter in output and output.startswith(batch) else None


def _axes(node, constants, rank):
    attrs = attributes(node)
    if "axes" in attrs:
        axes = attrs["axes"]
    elif len(node.input) > 1 and node.input[1]:
        if node.input[1] not in constants:
            return None
        axes = constants[node.input[1]].tolist()
    else:
        return []
    return sorted(int(a) % rank for a in axes)


def _squeeze_rule(node, axis, shapes, constants):
    out_rank = len(shapes[node.output[0]])
    in_rank = len(shapes[node.input[0]])
    if node.op_type == "Unsqueeze":
        axes = _axes(node, constants, out_rank)
        if axes is None:
            return None
        remaining = [d for d in range(out_rank) if d not in axes]
        return PointwiseRule(remaining[axis]) if 0 not in axes else None  # the batch stays first
    axes = _axes(node, constants, in_rank)
    if axes is None or axes == [] or axis in axes or 0 in axes:
        return None
    return PointwiseRule(axis - sum(a < axis for a in axes))


def _pointwise_reshape_rule(node, axis, shapes):
    """A Reshape that keeps the batch first and the length as an axis of its own, reshaping only the axes before it
    among themselves and those after it among themselves (inserting or removing axes of size 1, as exporters do
    around 2-D convolutions; splitting or merging channels): each position's values keep their order, so in the
    rows layout it is a Reshape of the other axes."""
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    if in_shape[axis] == 1 or in_shape[0] == 1 or out_shape[0] != in_shape[0]:
        return None
    before, after = math.prod(in_shape[1:axis]), math.prod(in_shape[axis + 1:])
    for out_axis in range(1, len(out_shape)):
        if (out_shape[out_axis] == in_shape[axis] and math.prod(out_shape[1:out_axis]) == before
                and math.prod(out_shape[out_axis + 1:]) == after):
            return PointwiseRule(out_axis)
    return None


def _splitting_reshape_rule(node, axis, shapes):
    """A Reshape splitting the length into (L / k, axes of product k) right after it, all else kept: (N, L, C) ->
    (N, L / k, k, C), as Enformer-style softmax pooling does before weighting each group of k columns. Output column
    j is input columns [j*k, j*k + k), so it is local, like a convolution with kernel and stride k."""
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    added = len(out_shape) - len(in_shape)
    if axis == 0 or added < 1 or in_shape[:axis] != out_shape[:axis]:
        return None
    factor = math.prod(out_shape[axis + 1:axis + 1 + added])
    if factor < 2 or out_shape[axis] * factor != in_shape[axis] or out_shape[axis + 1 + added:] != in_shape[axis + 1:]:
        return None
    return LocalRule(factor, factor, 0, False, 0.0, None, split=added)


def _merging_reshape_rule(node, axis, shapes):
    """A Reshape merging the length with the axes right after it, all else kept: (N, L, k, C) -> (N, L*k, C), as
    tf2onnx writes Keras's UpSampling1D (Unsqueeze, Tile by k, then this). Input column i becomes output columns
    [i*k, i*k + k), so it is local, like a transposed convolution with kernel and stride k."""
    in_shape, out_shape = list(shapes[node.input[0]]), list(shapes[node.output[0]])
    if axis == 0 or in_shape[:axis] != out_shape[:axis] or len(out_shape) < 3:
        return None  # (N, L, C) -> (N, L*C) is a Flatten: global, a dense head's (``linear.py``)
    factor = 1
    for last in range(axis + 1, len(in_shape)):
        factor *= in_shape[last]
        if in_shape[axis] * factor == out_shape[axis] and in_shape[last + 1:] == out_shape[axis + 1:]:
            if factor == 1:
                return None
            return LocalRule(factor, factor, 0, True, 0.0, None, merged=last - axis)
    return None


def _reduced_axes(node, constants, rank):
    """The axes a reduction (or ArgMax / ArgMin) of a rank-``rank`` input reduces over, every axis where its axes
    are empty (unless ``noop_with_empty_axes``); None where they are not known."""
    attrs = attributes(node)
    if node.op_type in ("ArgMax", "ArgMin"):
        return [attrs.get("axis", 0) % rank]
    axes = _axes(node, constants, rank)
    if axes == [] and not attrs.get("noop_with_empty_axes", 0):
        return list(range(rank))
    return axes


def _reduce_rule(node, axis, shapes, constants):
    axes = _reduced_axes(node, constants, len(shapes[node.input[0]]))
    if axes is None or axis in axes:
        return None
    keep = attributes(node).get("keepdims", 1)
    return PointwiseRule(axis if keep else axis - sum(a < axis for a in axes))


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


def _conv_rule(node, axis, shapes, constants):
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


def _conv_transpose_rule(node, axis, shapes, constants):
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


def _gather_rule(node, axis, shapes, constants, dependent):
    """A Gather with constant indices. Along another axis than the batch and the length, the length keeps its place
    (moved down by one where a scalar index removes an axis before it). Along the length with 1-D indices (torch's
    'nearest-exact' and 'linear' upsampling, once ``normalise`` has turned their GatherND into this), output column
    j is input column indices[j]: a LocalRule with that column map."""
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


def _resize_rule(node, axis, shapes, constants, opset):
    """A Resize (or Upsample) along the length alone, in any mode but tf_crop_and_resize (which may extrapolate):
    linear in its input, so a ``_length_map_rule``."""
    if attributes(node).get("coordinate_transformation_mode", "") == "tf_crop_and_resize":
        return None
    return _length_map_rule(node, axis, shapes, constants, opset)


def _length_map_rule(node, axis, shapes, constants, opset):
    """A node that is one linear map along the length, the same for every slot of the other axes, which keep their
    size (a Resize, a reflect / edge / wrap Pad): read off onnxruntime itself by running the node on comb vectors
    along the length (every mode, coordinate transformation and rounding is onnxruntime's own) and checked on
    random values, as output column j = sum over taps t of weights[t, j] * input column maps[t, j]. One tap of
    weight 1 (nearest, a Pad) is a plain column map."""
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


def _pad_rule(node, axis, shapes, constants, opset):
    attrs = attributes(node)
    if attrs.get("mode", "constant") != "constant":  # reflect, edge, wrap: each output copies an input
        return _length_map_rule(node, axis, shapes, constants, opset)
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


def _slice_rule(node, axis, shapes, constants):
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
