"""Global layers that are linear in a windowed tensor, updated incrementally instead of recomputed in full.

Two forms, both exact because the layer is linear in the windowed tensor T (length L_T, window w_T):
  DenseHead   Flatten (or Reshape to (batch, -1)) of T feeding a Gemm/MatMul with a constant weight:
              y' = y + alpha * (T'_win - T_win) @ W[rows of the window]. The weight rows depend on the window's
              start, so the ISM graph takes one start per batch (``start_input``) and the executor batches
              together only substitutions whose T-window starts there (``group``).
  MeanHead    GlobalAveragePool, or ReduceMean/ReduceSum over the length axis alone, of T:
              y' = y + sum over the window of (T'_win - T_win) * scale, scale = 1 / L_T for a mean.
The reference y comes from the reference graph, per sequence.

Invariant: a head is only formed where its output equals the layer applied to the substituted T, and only when
T's window is narrower than its length (otherwise the full layer costs no more).
"""

from dataclasses import dataclass

import numpy as np

from ..graph.nodes import attributes
from .layout import rows_perm


@dataclass
class DenseHead:
    flatten: str  # node key of the Flatten/Reshape (not emitted)
    dense: str  # node key of the Gemm/MatMul (replaced)
    source: str  # the windowed tensor T
    output: str  # the Gemm/MatMul output y
    weight_rows: np.ndarray  # (L_T, row size, out): the weight rows of each position of T, rows-layout order
    scale: float  # Gemm's alpha
    window_input: str = ""  # the ISM graph input of the batch's weight rows: weight_rows[start:start + width]


@dataclass
class MeanHead:
    node: str  # node key of the pooling / reduction (replaced)
    source: str
    output: str
    scale: float


def _consumers(nodes):
    used = {}
    for node in nodes:
        for name in node.input:
            used.setdefault(name, []).append(node)
    return used


def _keys(nodes):
    """{id(node): the analysis's key} for ``nodes``, a list that holds the node objects: a protobuf repeated
    field makes a new Python object for an element each time it is read, so ids of its elements do not last."""
    return {id(node): node.name or f"node{index}" for index, node in enumerate(nodes)}


def find_heads(graph, analysis, shapes, constants, dense=True):
    """{node key: DenseHead or MeanHead} for the linear global layers of ``graph`` (DenseHeads only if ``dense``:
    they need an executor that batches by window start)."""
    windows, modes = analysis.windows, analysis.modes
    nodes = list(graph.node)
    consumers, keys = _consumers(nodes), _keys(nodes)
    outputs = {value.name for value in graph.output}
    heads = {}
    for node in nodes:
        key = keys[id(node)]
        if modes.get(key) != "full" or not node.input or node.input[0] not in windows:
            continue
        source = node.input[0]
        window = windows[source]
        if window.width >= window.length or len(shapes[source]) < 3:
            continue
        if dense and node.op_type in ("Flatten", "Reshape"):
            head = _dense_head(node, key, source, shapes, constants, consumers, outputs, keys, analysis)
            if head is not None:
                heads[head.flatten] = heads[head.dense] = head
        elif node.op_type in ("GlobalAveragePool", "ReduceMean", "ReduceSum"):
            head = _mean_head(node, key, source, shapes, constants, window)
            if head is not None:
                heads[key] = head
    return heads


def _dense_head(node, key, source, shapes, constants, consumers, outputs, keys, analysis):
    in_shape, flat = shapes[source], node.output[0]
    size = int(np.prod(in_shape[1:]))
    if list(shapes[flat]) != [in_shape[0], size] or flat in outputs or len(consumers.get(flat, [])) != 1:
        return None
    if node.op_type == "Flatten" and attributes(node).get("axis", 1) != 1:
        return None
    if any(name in analysis.windows for name in node.input[1:]):
        return None
    dense = consumers[flat][0]
    attrs = attributes(dense)
    if dense.op_type not in ("Gemm", "MatMul") or dense.input[0] != flat or dense.input[1] not in constants:
        return None
    weight = np.asarray(constants[dense.input[1]])
    if weight.ndim != 2 or attrs.get("transA", 0):
        return None
    if attrs.get("transB", 0):
        weight = weight.T
    if dense.op_type == "Gemm" and len(dense.input) > 2 and dense.input[2] and dense.input[2] in analysis.windows:
        return None
    if weight.shape[0] != size:
        return None
    perm = rows_perm(len(in_shape), analysis.windows[source].axis)  # batch, length, the other axes
    scale = float(attrs.get("alpha", 1.0)) if dense.op_type == "Gemm" else 1.0
    return DenseHead(key, keys[id(dense)], source, dense.output[0], _weight_rows(weight, in_shape, perm), scale)


#: Output columns of a dense head's weight moved at once by ``_weight_rows``.
ROWS_BLOCK = 128


def _weight_rows(weight, in_shape, perm):
    """(length, row size, out): ``weight`` (in, out) with its rows, in the order of Flatten(T) for T shaped
    ``in_shape``, put in the rows layout ``perm``. Moved a block of output columns at a time: a (transposed) Gemm
    weight read whole along its output axis is read with a stride of the whole input, which on a large Dense layer
    (Beluga: 67840 x 2003) took seconds."""
    length = in_shape[perm[1]]
    grid = weight.reshape(tuple(in_shape[1:]) + (weight.shape[1],))
    moved = np.transpose(grid, [d - 1 for d in perm[1:]] + [len(in_shape) - 1])
    rows = np.empty((length, weight.shape[0] // length, weight.shape[1]), weight.dtype)
    for first in range(0, weight.shape[1], ROWS_BLOCK):
        block = moved[..., first:first + ROWS_BLOCK]
        rows[:, :, first:first + ROWS_BLOCK] = block.reshape(length, -1, block.shape[-1])
    return rows


def _mean_head(node, key, source, shapes, constants, window):
    in_shape = shapes[source]
    if node.op_type == "GlobalAveragePool":
        if any(in_shape[d] != 1 for d in range(2, len(in_shape)) if d != window.axis):
            return None
        return MeanHead(key, source, node.output[0], 1.0 / window.length)
    attrs = attributes(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = constants.get(node.input[1])
    if axes is None or attrs.get("noop_with_empty_axes", 0):
        return None
    axes = sorted({int(a) % len(in_shape) for a in np.asarray(axes).reshape(-1)})
    if axes != [window.axis]:
        return None
    return MeanHead(key, source, node.output[0], 1.0 / window.length if node.op_type == "ReduceMean" else 1.0)
