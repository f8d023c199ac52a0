"""The linear map a node applies along one axis (a Resize, a reflect / edge / wrap Pad), read off onnxruntime
running the node, so that every mode, coordinate transformation and rounding is onnxruntime's own."""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..runtime.sessions import MAX_IR_VERSION, make_session
from .nodes import rewired

#: A map whose outputs each read more input columns than this (antialiased downsampling by a large factor) is not
#: read: such a Resize is treated as global.
MAX_RESIZE_TAPS = 8


def probe_length_map(node, axis, in_shape, constants, opset):
    """(maps, weights), each (taps, L_out): the linear map ``node`` applies along the length, output j = sum over t
    of weights[t, j] * input column maps[t, j], at most MAX_RESIZE_TAPS consecutive input columns per output.

    Read by onnxruntime running the node on 2 x MAX_RESIZE_TAPS comb vectors, whatever the length: comb k has a
    tooth at every input column i = k (mod MAX_RESIZE_TAPS), of value 1 in one vector and i + 1 in the other. An
    output reading at most that many consecutive columns meets one tooth of each comb, so the first gives the
    tooth's weight and the ratio of the two which column it is. Checked on random values (a map with wider reads
    fails there); None where onnxruntime will not run the node alone or it is not such a map."""
    length = in_shape[axis]
    others = [in_shape[d] for d in range(len(in_shape)) if d != axis]
    slots = int(np.prod(others))
    inputs = [helper.make_tensor_value_info("probe", onnx.TensorProto.FLOAT, in_shape)]
    initializers = [numpy_helper.from_array(np.asarray(constants[name]), name) for name in node.input[1:] if name]
    probe = rewired(node, ["probe"] + list(node.input[1:]), "mapped")
    graph = helper.make_graph([probe], "probe", inputs, [onnx.ValueInfoProto(name="mapped")], initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=min(MAX_IR_VERSION, helper.find_min_ir_version_for(opsets)))

    def along_length(rows):  # (slots, L) -> the node's input layout
        return np.ascontiguousarray(np.moveaxis(rows.reshape(others + [length]), -1, axis), dtype=np.float32)

    def rows_of(value):  # the node's output -> (slots, L_out)
        return np.moveaxis(value, axis, -1).reshape(slots, -1).astype(np.float64)

    spacing = MAX_RESIZE_TAPS
    combs = np.zeros((2 * spacing, length), np.float32)
    for k in range(spacing):
        combs[2 * k, k::spacing] = 1.0
        combs[2 * k + 1, k::spacing] = np.arange(k, length, spacing) + 1.0
    try:
        session = make_session(model.SerializeToString(), "cpu")
        parts = []
        for begin in range(0, len(combs), slots):
            rows = np.zeros((slots, length), np.float32)
            count = min(slots, len(combs) - begin)
            rows[:count] = combs[begin:begin + count]
            parts.append(rows_of(session.run(None, {"probe": along_length(rows)})[0])[:count])
        responses = np.concatenate(parts)
        values = np.random.default_rng(0).standard_normal((slots, length))
        want = rows_of(session.run(None, {"probe": along_length(values)})[0])
    except Exception:  # noqa: BLE001 - an op form onnxruntime will not run alone: no local rule, computed in full
        return None
    outputs = responses.shape[1]
    entries = []  # (output j, input column i, weight)
    for k in range(spacing):
        weight, labelled = responses[2 * k], responses[2 * k + 1]
        read = np.flatnonzero(weight)
        ratio = labelled[read] / weight[read]
        column = np.rint(ratio).astype(np.int64) - 1
        if np.any(np.abs(ratio - np.rint(ratio)) > 0.25) or np.any(column % spacing != k) or np.any(
                (column < 0) | (column >= length)):
            return None  # an output met two teeth of one comb: it reads wider than MAX_RESIZE_TAPS columns
        entries.append((read, column, weight[read]))
    reads, columns, weights = (np.concatenate(part) for part in zip(*entries))
    if len(np.unique(reads)) != outputs:
        return None  # an output column that reads no input
    first = np.full(outputs, length, np.int64)
    last = np.full(outputs, -1, np.int64)
    np.minimum.at(first, reads, columns)
    np.maximum.at(last, reads, columns)
    taps = int((last - first).max()) + 1
    if taps > MAX_RESIZE_TAPS:
        return None
    maps = first[None, :] + np.arange(taps)[:, None]  # (taps, L_out); taps past a column's last read its first
    table = np.zeros((taps, outputs))
    table[columns - first[reads], reads] = weights
    maps = np.where(maps <= last[None, :], maps, first[None, :])
    got = sum(table[t] * values[:, maps[t]] for t in range(taps))
    if want.shape != got.shape or not np.allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max())):
        return None  # not one linear map along the length shared by every slot
    return maps, table.astype(np.float32)
