"""Dilated convolutions written as space-to-batch: TensorFlow runs a dilated Conv1D on an input of unknown length as
SpaceToBatchND (pad the length to a multiple of the dilation d, move every d-th position into a batch of its own),
an undilated convolution, and BatchToSpaceND (interleave the batches back, crop), and tf2onnx writes that, for a
length it cannot see, as Pads, Reshapes and Transposes of the batch around the Conv with shape arithmetic of their
own. Read as it is, that Conv mixes positions and batch rows as far as the graph shows, so fast ISM computes it on
the full length and TISM refuses the Reshapes; it is the dilated convolution it computes.

The rewrite: for a Conv (undilated, strides 1, no pads) whose input is reached from a tensor X through Reshapes,
Transposes, Unsqueezes and Pads, and whose output reaches a tensor Y through Squeezes, Transposes, Reshapes and
Slices, where a probe run shows its input has d times the rows of X (d > 1), Y is replaced by Conv(X, the weights,
dilation d, pads chosen so that its length is Y's), X and Y each kept in its layout (NLC, NCL, or TensorFlow's
(N, 1, L, C) and (N, C, 1, L) of a 1-D convolution run as 2-D): the pads are the one split of their total (the
left half rounded down, TensorFlow's "same"; none on the left; all on the left) under which the Conv equals Y on
the probe. The nodes no output reads any more are dropped. The rewritten model is kept only if, on random inputs,
its outputs equal the model's (``free_batch.same_outputs``) at every check length (``free_batch.enough_lengths``).

Invariant: ``dilate_space_to_batch`` returns None, or a model that agreed with ``proto`` on that check, in which each
rewritten Conv is a dilated Conv on X.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..graph.liveness import drop_unread
from ..graph.nodes import attr
from ..graph.verify import same_model_outputs, same_outputs, tensor_values
from ..model.sequence_input import random_feeds
from .base import PassResult, unchanged

_ABOVE = {"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Pad", "Identity"}
_BELOW = {"Squeeze", "Transpose", "Reshape", "Slice", "Identity", "Unsqueeze"}


def run(proto, ctx):
    """Where the batch is dynamic, each space-to-batch Conv read as the dilated Conv it is
    (``dilate_space_to_batch``)."""
    if ctx.fixed_batch is not None:
        return unchanged(proto)
    dilated = dilate_space_to_batch(proto, lambda count, rng: random_feeds(ctx.found, count, rng))
    if dilated is None:
        return unchanged(proto)
    proto, count = dilated
    return PassResult(proto, True, f"{count} dilated convolution(s) written as space-to-batch read as dilated Convs",
                      {"dilated": count})


def dilate_space_to_batch(proto, feeds_at):
    """(the model with each space-to-batch Conv written as a dilated Conv, how many were), or None where there is
    none or the rewrite does not compute the same outputs. ``feeds_at(n, rng)``: random feeds for a batch of n,
    one set per length to check at (the model's batch is dynamic)."""
    graph = proto.graph
    producer = {name: node for node in graph.node for name in node.output}
    readers = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    candidates = [found for found in (_around(node, index, producer, readers)
                                      for index, node in enumerate(graph.node) if node.op_type == "Conv")
                  if found is not None]
    if not candidates:
        return None
    names = sorted({name for x, conv, ys in candidates for name in (x, graph.node[conv].input[0], *ys)})
    probe = None
    for feeds in feeds_at(2, np.random.default_rng(0)):
        try:
            probe = tensor_values(proto, feeds, names)
            break
        except Exception:  # noqa: BLE001 - onnxruntime's own types: the model does not run at this length
            continue
    if probe is None:
        return None
    weights = {init.name: init for init in graph.initializer}
    replacements = {}  # Y -> (X, the Conv, what ``_dilated`` found)
    for x, conv_index, ys in candidates:
        conv = graph.node[conv_index]
        for y in reversed(ys):  # the last Slice first: BatchToSpaceND's crop
            found = _dilated(conv, weights, probe[x], probe[conv.input[0]], probe[y])
            if found is not None:
                replacements[y] = (x, conv, found)
                break
    if not replacements:
        return None
    rewritten = _rewritten(proto, replacements)
    if not same_model_outputs(proto, rewritten, feeds_at(3, np.random.default_rng(1))):
        return None
    return rewritten, len(replacements)


def _around(conv, conv_index, producer, readers):
    """(X, ``conv_index``, [the Slice outputs that may be Y, in order]) where ``conv`` reads X through a chain of
    data-movement ops with a Pad of X at its top and a Reshape in it, and its output runs through one such chain
    (each tensor read once, besides Shape and Size nodes) with a Reshape and then Slices; else None. ``producer``:
    tensor -> the node writing it; ``readers``: tensor -> the nodes reading it."""
    name, reshaped = conv.input[0], False
    for _ in range(8):
        node = producer.get(name)
        if node is None or node.op_type not in _ABOVE:
            return None
        if node.op_type == "Pad":
            if not reshaped:
                return None
            x = node.input[0]
            break
        reshaped |= node.op_type == "Reshape"
        name = node.input[0]
    else:
        return None
    name, reshaped, ys = conv.output[0], False, []
    for _ in range(8):
        following = [node for node in readers.get(name, []) if node.op_type not in ("Shape", "Size")]
        if len(following) != 1 or following[0].op_type not in _BELOW or following[0].input[0] != name:
            break
        node = following[0]
        reshaped |= node.op_type == "Reshape"
        name = node.output[0]
        if node.op_type == "Slice" and reshaped:
            ys.append(name)
    return (x, conv_index, ys) if ys else None


def _dilated(conv, weights, x, inside, y):
    """(layout of X, layout of Y (``_as_ncl``), weights (O, I, k), dilation, left pad, right pad, group) of the
    dilated Conv of X that equals Y, from the probe's values of X, the Conv's input (``inside``) and Y; or None.
    The dilation is the ratio of the Conv's rows to X's."""
    if conv.input[1] not in weights or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in weights):
        return None
    if any(value != 1 for value in attr(conv, "dilations", []) + attr(conv, "strides", [])):
        return None
    if any(attr(conv, "pads", [])) or attr(conv, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return None
    kernel = numpy_helper.to_array(weights[conv.input[1]])
    if kernel.ndim == 4 and kernel.shape[2] == 1:
        kernel = kernel[:, :, 0]
    if kernel.ndim != 3 or np.ndim(inside) < 3:
        return None
    group = attr(conv, "group", 1)
    channels, outputs, width = kernel.shape[1] * group, kernel.shape[0], kernel.shape[2]
    rows = x.shape[0]  # (the batch, or a stack of it)
    if not rows or np.shape(inside)[0] % rows or np.shape(inside)[0] // rows < 2 or y.shape[0] != rows:
        return None
    dilation = np.shape(inside)[0] // rows
    x, y = _as_ncl(x, channels), _as_ncl(y, outputs)
    if x is None or y is None:
        return None
    (x, x_layout), (y, y_layout) = x, y
    bias = None
    if len(conv.input) > 2 and conv.input[2]:
        bias = numpy_helper.to_array(weights[conv.input[2]])
    total = y.shape[2] - x.shape[2] + dilation * (width - 1)
    if total < 0:
        return None
    for left in dict.fromkeys((total // 2, total - total // 2, 0, total)):
        value = _conv(x, kernel, dilation, left, total - left, group, bias).astype(y.dtype)
        if same_outputs([value], [y]):
            return x_layout, y_layout, kernel, dilation, left, total - left, group
    return None


def _as_ncl(value, channels):
    """(``value`` as (n, C, L), its layout: NLC, NCL, or NHWC or NCHW with H = 1 (TensorFlow's 1-D convolutions run
    as 2-D), read from where its ``channels`` are), or None."""
    if value.ndim == 4 and value.shape[1] == 1 and value.shape[3] == channels != value.shape[2]:
        return value[:, 0].transpose(0, 2, 1), "NHWC"
    if value.ndim == 4 and value.shape[2] == 1 and value.shape[1] == channels != value.shape[3]:
        return value[:, :, 0], "NCHW"
    if value.ndim == 3 and value.shape[2] == channels != value.shape[1]:
        return value.transpose(0, 2, 1), "NLC"
    if value.ndim == 3 and value.shape[1] == channels != value.shape[2]:
        return value, "NCL"
    return None


def _conv(x, kernel, dilation, left, right, group, bias):
    """The dilated convolution of x (n, C, L) in float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (left, right)))
    n, channels, length = x.shape
    outputs, per_group, width = kernel.shape
    out_length = length - dilation * (width - 1)
    grouped = x.reshape(n, group, per_group, length)
    weights = kernel.astype(np.float64).reshape(group, outputs // group, per_group, width)
    result = np.zeros((n, group, outputs // group, out_length))
    for tap in range(width):
        window = grouped[..., tap * dilation: tap * dilation + out_length]
        result += np.einsum("ngcl,goc->ngol", window, weights[..., tap])
    result = result.reshape(n, outputs, out_length)
    return result if bias is None else result + bias.astype(np.float64)[None, :, None]


def _rewritten(proto, replacements):
    """A copy of ``proto`` in which the node writing each Y of ``replacements`` is replaced by the dilated Conv of
    its X, and the nodes left unread are dropped."""
    result = onnx.ModelProto()
    result.CopyFrom(proto)
    graph = result.graph
    opset = next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), 1)
    nodes = []
    for node in graph.node:
        if node.output[0] not in replacements:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            nodes.append(copy)
            continue
        y = node.output[0]
        x, conv, (x_layout, y_layout, kernel, dilation, left, right, group) = replacements[y]
        weight, base = f"{conv.input[1]}__dilated", conv.output[0]  # (names of the Conv's, which is dropped)
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(kernel), weight))
        source, target = f"{base}__ncl_input", f"{base}__ncl_output"
        nodes += _layout_nodes(x, source, x_layout, "to", opset, graph, base)
        nodes.append(helper.make_node(
            "Conv", [source, weight] + [name for name in conv.input[2:3] if name], [target], name=f"{base}__dilated",
            dilations=[dilation], pads=[left, right], kernel_shape=[kernel.shape[2]], group=group))
        nodes += _layout_nodes(target, y, y_layout, "from", opset, graph, base)
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unread(graph)
    del graph.value_info[:]
    return result


#: The ops that take a tensor in each layout to (N, C, L), and back
_TO_NCL = {"NLC": [("Transpose", [0, 2, 1])], "NCL": [], "NCHW": [("Squeeze", 2)],
           "NHWC": [("Transpose", [0, 3, 1, 2]), ("Squeeze", 2)]}
_FROM_NCL = {"NLC": [("Transpose", [0, 2, 1])], "NCL": [], "NCHW": [("Unsqueeze", 2)],
             "NHWC": [("Unsqueeze", 2), ("Transpose", [0, 2, 3, 1])]}


def _layout_nodes(source, target, layout, direction, opset, graph, base):
    """The nodes that turn ``source`` in ``layout`` into ``target`` in NCL (``direction`` "to"), or back ("from");
    the axes of a Squeeze or Unsqueeze are an initializer added to ``graph`` from opset 13 on."""
    name = f"{base}__{direction}_{layout}"
    steps = (_TO_NCL if direction == "to" else _FROM_NCL)[layout]
    if not steps:
        return [helper.make_node("Identity", [source], [target], name=name)]
    nodes = []
    for k, (op, argument) in enumerate(steps):
        output = target if k == len(steps) - 1 else f"{name}_{k}"
        if op == "Transpose":
            nodes.append(helper.make_node(op, [source], [output], perm=argument, name=f"{name}_{k}_node"))
        elif opset >= 13:
            axes = f"{name}_{k}_axes"
            graph.initializer.append(numpy_helper.from_array(np.array([argument], np.int64), axes))
            nodes.append(helper.make_node(op, [source, axes], [output], name=f"{name}_{k}_node"))
        else:
            nodes.append(helper.make_node(op, [source], [output], axes=[argument], name=f"{name}_{k}_node"))
        source = output
    return nodes
