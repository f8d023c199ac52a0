"""Convolutions along the length on a window, in the form that is fastest for their shape (measured; the figures are
in docs/fast_ism.md):

  delta_conv          stride 1, many taps, an input window narrower than the columns the output window reads: only
                      the changed input columns are multiplied (the conv is linear), the change added to the
                      reference output by a col2im gather
  conv_native         onnxruntime's own 2-D Conv on the gathered columns, viewed as NHWC (its blocked kernel)
  narrow_whole_conv   few output channels on the whole length (a profile head): one Gemm and a diagonal sum
  strided_transpose   a ConvTranspose with stride > 1: the product on the input range, the window picked out

Invariant: each writes the model's convolution output on its window, ``__win`` in the rows layout.
"""

import numpy as np

from ...graph.nodes import attributes
from ..layout import rows_constant, rows_shape
from .tables import GatherSpec

#: A stride-1 Conv with at least this many taps runs as a delta convolution; with fewer, its col2im gather costs
#: more than the multiplications it saves (measured on BPNet's 3-tap dilated layers), so it runs as onnxruntime's
#: blocked Conv on the gathered window (``_conv_native``).
DELTA_MIN_TAPS = 5
#: A Conv with fewer output channels than this runs as the model's own op on the gathered window, in the model's
#: layout: neither the MatMul forms nor onnxruntime's blocked (NCHWc) kernel pay for a few output channels
#: (measured on BPNet's 2-channel, 25-tap profile head).
NATIVE_MIN_OUT_CHANNELS = 16


def strided_transpose(s, node, source, rule, first, width):
    """A ConvTranspose with stride s > 1 on the window of its output: the ConvTranspose without padding or bias
    (``rules._conv_transpose_rule``) on the input range the window needs gives R = (w_in - 1) * s + span
    columns, starting at output column start_in * s - begin; a per-row gather (col2im kind, one tap) picks the
    window out of them, where it starts depends on the window start modulo s. Columns it reaches no input of
    read a zero row, and the bias is added after. ``first``, ``width``: the input range (``rule.needed``)."""
    out = node.output[0]
    target = s.analysis.windows[out]
    gathered = s.to_model(s.gather(source, first, np.arange(width), rule.pad_value), source)
    product = s.windowed_nodes(rule, [gathered] + list(node.input[1:2]), s.fresh("transposed"))
    reach = (width - 1) * rule.stride + rule.span
    rest = s.rest(out)
    rows = s.reshape(s.to_rows(product, out), [-1, int(np.prod(rest))])
    zero = s.const(np.zeros((1, int(np.prod(rest))), np.float32), "zero")
    rows = s.node("Concat", [rows, zero], [s.fresh("reach_zero")], axis=0)
    k = len(s.gathers)
    spec = GatherSpec(f"idx__{k}", source, target.start - first * rule.stride + rule.begin,
                      np.arange(target.width), kind="col2im", tap=np.zeros(target.width, np.int64), taps=1,
                      block=reach)
    s.gathers.append(spec)
    window = s.node("Gather", [rows, spec.index_name], [s.fresh("window")], axis=0)
    window = s.reshape(window, rows_shape(s.shapes[out], target.axis, target.width))
    if len(node.input) > 2 and node.input[2]:
        rank = len(s.shapes[out])
        bias = s.constants[node.input[2]].astype(np.float32).reshape([1, -1] + [1] * (rank - 2))
        bias = s.const(rows_constant(bias, rank, s.perm(out)), "bias")
        window = s.node("Add", [window, bias], [s.fresh("biased")])
    s.node("Identity", [window], [s.win(out)])


def length_kernel(s, node, source, out):
    """(kernel size, dilation) along the length of a Conv/MaxPool/AveragePool that acts on the length alone
    (every other spatial axis of size 1 with a kernel of 1, no groups, constant weights); None otherwise."""
    attrs = attributes(node)
    axis = s.analysis.windows[source].axis
    in_shape, out_shape = s.shapes[source], s.shapes[out]
    spatial = len(in_shape) - 2
    if node.op_type in ("Conv", "ConvTranspose"):
        weight = s.constants.get(node.input[1])
        if weight is None or attrs.get("group", 1) != 1:
            return None
        if len(node.input) > 2 and node.input[2] and node.input[2] not in s.constants:
            return None
        kernel = list(weight.shape[2:])
    elif node.op_type in ("MaxPool", "AveragePool"):
        kernel = list(attrs["kernel_shape"])
        if len([o for o in node.output if o]) > 1:
            return None
    else:
        return None
    for d in range(2, len(in_shape)):
        if d != axis and (in_shape[d] != 1 or out_shape[d] != 1 or kernel[d - 2] != 1):
            return None
    dilations = list(attrs.get("dilations", [1] * spatial))
    return kernel[axis - 2], dilations[axis - 2]


def conv_weight(s, node):
    """A Conv's weight (C_out, C_in, k...); a stride-1 ConvTranspose's as the Conv it equals (in and out
    channels swapped, taps reversed, on the input range ``LocalRule.needed`` gives)."""
    weight = s.constants[node.input[1]]
    if node.op_type == "ConvTranspose":
        spatial = tuple(range(2, weight.ndim))
        weight = np.ascontiguousarray(np.flip(weight, spatial).swapaxes(0, 1))
    return weight


def conv_native(s, node, source, rule, start, width, dilation):
    """A Conv (or stride-1 ConvTranspose, as its Conv) along the length on its gathered input columns
    [start, start + width), as onnxruntime's own 2-D Conv without padding. The gathered rows (rows, width, C)
    are viewed as NHWC (rows, 1, width, C), so that onnxruntime's NCHWc layout pass folds both Transposes into
    its reorders and runs its blocked convolution kernel with the bias (measured on BPNet's 64-channel dilated
    layers: 2x the im2col MatMul)."""
    out = node.output[0]
    target = s.analysis.windows[out]
    weight = conv_weight(s, node)
    c_out, c_in = weight.shape[:2]
    left = right = 0
    if rule.pad_value == 0 and np.all(start == start[0]):
        # every row reads the same columns (a whole output): the Conv pads those outside the input itself
        length = s.analysis.windows[source].length
        left, right = max(0, -int(start[0])), max(0, int(start[0]) + width - length)
        if left + right >= width:
            left = right = 0
        start, width = start + left, width - left - right
    gathered = s.reshape(s.gather(source, start, np.arange(width), rule.pad_value), [-1, 1, width, c_in])
    inputs = [s.transpose(gathered, [0, 3, 1, 2]),
              s.const(weight.reshape(c_out, c_in, 1, -1), "weight")]
    if len(node.input) > 2 and node.input[2]:
        inputs.append(s.const(s.constants[node.input[2]], "bias"))
    conv = s.node("Conv", inputs, [s.fresh("conv")], dilations=[1, int(dilation)],
                  strides=[1, int(rule.stride)], pads=[0, left, 0, right])
    s.native_convs.append(conv)
    conv = s.transpose(conv, [0, 2, 3, 1])  # (rows, 1, w, C_out)
    s.reshape(conv, rows_shape(s.shapes[out], target.axis, target.width), s.win(out))


def narrow_whole_conv(s, node, source, rule, kernel):
    """A 'same' stride-1 Conv (or ConvTranspose, as its Conv) with few output channels on the whole length
    (a profile head), in the rows layout without a transpose: one Gemm gives every column's product with
    every tap, (C_out * K, R) for the R = rows * L columns of the batch, and a diagonal sum adds tap k' of
    column o + a - k' into output o. Viewing each channel's K * R products from offset a with a row stride
    of R - 1 puts those K terms in one column, so the sum is a Slice and a ReduceSum; it mixes neighbouring
    rows only within K - 1 columns of a row's ends, which a small exact MatMul recomputes. Returns False
    (nothing built) where the form does not apply. Measured on BPNet's 64 -> 1, 25-tap head: about two thirds
    of the time of onnxruntime's ConvTranspose with the Transpose before it (README)."""
    windows = s.analysis.windows
    out = node.output[0]
    target, length = windows[out], windows[source].length
    size, dilation = kernel
    weight = conv_weight(s, node)  # (C_out, C_in, ..., K, ...) as a Conv
    c_out, c_in = weight.shape[:2]
    first, width = rule.needed(target.start, target.width)
    edge = size - 1  # output columns at each end recomputed exactly
    if (rule.stride != 1 or dilation != 1 or rule.pad_value != 0 or size < 2 or target.width != target.length
            or length != target.length or width != length + size - 1 or np.any(first != first[0])
            or not -(size - 1) <= int(first[0]) <= 0 or length < 2 * (edge + size) + 1
            or int(np.prod(s.rest(source))) != c_in or s.opset < 11):
        return False
    offset = int(first[0]) + size - 1  # output o sums tap k' of column o + offset - k'
    taps = np.flip(weight.reshape(c_out, c_in, size), 2)  # tap k' = K - 1 - k of the Conv form
    columns = s.reshape(s.window_of(source, target), [-1, c_in])  # (R, C_in)
    products = s.node("Gemm", [s.const(np.ascontiguousarray(
        taps.transpose(0, 2, 1).reshape(c_out * size, c_in)), "taps"), columns], [s.fresh("products")], transB=1)
    flat = s.reshape(products, [c_out, -1])  # channel c: tap k' of column j at k' * R + j
    shifted = s.slice(flat, offset, offset - size, 1, "shifted")  # (C_out, K * (R - 1))
    diagonal = s.reshape(shifted, [c_out, size, -1])  # [c, k', j]: tap k' of column j + offset - k'
    summed = s.reduce("ReduceSum", diagonal, [1], s.fresh("summed"))  # (C_out, R - 1)
    # the bias is added here, along the long axis, and to the edge columns: onnxruntime's Add broadcasting a
    # bias over a last axis of 1 or 2 channels costs about 20 ns per value (0.7 against 0.017 ms for
    # (32, 1000, 1) + (1,)), 3% of BPNet 1 kb's fast ISM
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = s.constants[node.input[2]].astype(np.float32).reshape(-1)
        summed = s.node("Add", [summed, s.const(bias.reshape(c_out, 1), "bias")],
                        [s.fresh("biased")])
    summed = s.node("Pad", [summed, s.const(np.array([0, 0, 0, 1], np.int64), "pads")],
                    [s.fresh("padded")])  # the last column is an edge column, recomputed below
    by_column = s.transpose(summed, [1, 0]) if c_out > 1 else summed
    middle = s.reshape(by_column, [-1, length, c_out])
    middle = s.slice(middle, edge, length - edge, 1, "middle")
    rows_in = s.reshape(columns, [-1, length, c_in])
    per_tap = s.const(np.ascontiguousarray(taps.transpose(1, 0, 2).reshape(c_in, -1)), "taps")
    ends = []
    for base, outputs in ((0, range(edge)), (length - edge - size, range(length - edge, length))):
        span = edge + size  # the input columns [base, base + span) every edge output reads
        part = s.slice(rows_in, base, base + span, 1, "edge_columns")
        product = s.reshape(s.node("MatMul", [part, per_tap], [s.fresh("edge_products")]),
                            [-1, span * c_out * size])  # [row, (i * C_out + c) * K + k']
        select = np.zeros((span, c_out, size, len(outputs), c_out), np.float32)
        for number, o in enumerate(outputs):
            for tap in range(size):
                column = o + offset - tap
                if 0 <= column < length:
                    select[column - base, np.arange(c_out), tap, number, np.arange(c_out)] = 1.0
        select = s.const(select.reshape(span * c_out * size, -1), "diagonal")
        end = s.reshape(s.node("MatMul", [product, select], [s.fresh("edge")]), [-1, edge, c_out])
        if bias is not None:
            end = s.node("Add", [end, s.const(bias.reshape(1, 1, c_out), "bias")],
                         [s.fresh("biased")])
        ends.append(end)
    result = s.node("Concat", [ends[0], middle, ends[1]], [s.fresh("narrow_conv")], axis=1)
    s.reshape(result, rows_shape(s.shapes[out], target.axis, target.width), s.win(out))
    return True


def delta_conv(s, node, source, rule, size, dilation):
    """A stride-1 Conv whose input changes on fewer columns than its output window reads: the change of the
    output is the convolution of the input's change (the conv is linear), added to the reference output.
    The change (rows, w_s, C_in) times the (C_in, k * C_out) weight gives every column's contribution to
    every tap; a col2im gather sums them into the output window."""
    windows = s.analysis.windows
    out = node.output[0]
    target, window = windows[out], windows[source]
    weight = conv_weight(s, node)
    c_out, c_in = weight.shape[:2]
    # one zero row after the rows' changed columns: its products are the zero rows invalid entries read
    # (appended to the change, C_in wide, rather than to the product, taps * C_out wide)
    change = s.reshape(s.change(source), [-1, c_in])
    zero = s.const(np.zeros((1, c_in), weight.dtype), "zero")
    change = s.node("Concat", [change, zero], [s.fresh("change_zero")], axis=0)
    matrix = weight.reshape(c_out, c_in, size).transpose(1, 2, 0).reshape(c_in, size * c_out)
    product = s.node("MatMul", [change, s.const(matrix.astype(weight.dtype), "weight")],
                     [s.fresh("contributions")])
    product = s.reshape(product, [-1, c_out])  # row (m * w_s + c) * k + t; then k zero rows
    k = len(s.gathers)
    shift = rule.needed(target.start, target.width)[0] - window.start  # output j, tap t: source shift + j + t*d
    outputs = np.arange(target.width)[:, None]
    if window.width < size:  # enumerate (j, source column): fewer terms per output column than taps
        columns = np.arange(window.width)[None, :]
        spec = GatherSpec(f"idx__{k}", source, -shift, (columns - outputs).reshape(-1), kind="col2im",
                          column=np.tile(columns[0], target.width), taps=size, block=window.width,
                          dilation=dilation)
    else:
        taps = np.arange(size)[None, :]
        spec = GatherSpec(f"idx__{k}", source, shift, (outputs + taps * dilation).reshape(-1), kind="col2im",
                          tap=np.tile(taps[0], target.width), taps=size, block=window.width, dilation=dilation)
    s.gathers.append(spec)
    terms = spec.width // target.width
    summed = s.node("Gather", [product, spec.index_name], [s.fresh("col2im")], axis=0)
    if terms == 1:
        summed = s.reshape(summed, [-1, target.width, c_out])
    else:
        summed = s.reshape(summed, [-1, target.width, terms, c_out])
        summed = s.reduce("ReduceSum", summed, [2], s.fresh("delta"))
    after = s.reshape(s.reference(out, target.start, target.width), [-1, target.width, c_out])
    result = s.node("Add", [after, summed], [s.fresh("conv")])
    s.reshape(result, rows_shape(s.shapes[out], target.axis, target.width), s.win(out))
