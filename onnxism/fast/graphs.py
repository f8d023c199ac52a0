"""Build the two graphs fast ISM runs: the reference graph and the ISM graph.

Reference graph: the model plus, for each windowed tensor that some node gathers from, its "table": the tensor
with the length axis moved next to the batch and flattened to rows (n * L_T, K).

ISM graph: takes the substituted input columns (one per row), the tables and per-gather row indices, and returns
the model outputs for every row. Every windowed tensor is held in the rows layout (``layout.py``): (rows, window,
other axes). A convolution along the length is one Gather of the input columns it reads (straight from the table
of [reference rows | window rows | padding rows]) and onnxruntime's Conv without padding on them, viewed as NHWC so
that its blocked kernel takes them without a separate transpose; a pooling is a Gather of every window (im2col)
and a reduction. A stride-1 convolution
whose input changed on fewer columns than it reads is a delta convolution instead: only the changed columns are
multiplied, and the change is added to the cached reference output (on the one-hot input this is a lookup of
weight differences). A point-wise op runs on the window with its constants moved to the rows layout; an op with
no rows-layout form runs in the model's layout between two Transposes; an op without a local rule runs on the
full tensor, gathered the same way. A tensor computed from the model's extra inputs alone ("unchanged") is never
computed here: a windowed node reads it from its table of reference rows at each row's window, a node computed in
full per sequence (``per_sequence``). A tensor that only reshapes another in the rows layout shares its table
(``root``), identical gathers are built once, and each native Conv's bias Add and activation are folded into it
(``epilogues.py``).

Invariant: for every row (sequence n, position p, base b), the outputs equal the model's outputs on sequence n
with position p set to base b.
"""

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper

from ..graph.nodes import attributes, default_opset, names_used, rewired
from ..graph.ops import ELEMENTWISE, REDUCTIONS, UNARY_POINTWISE
from ..runtime.weights import add_initializer, copy_model
from .epilogues import fold_epilogues
from .layout import inverse, rows_constant, rows_perm, rows_shape
from .linear import DenseHead, find_heads
from .rules import LocalRule


@dataclass
class GatherSpec:
    """One gather of the ISM graph: rows for target columns start[p] + offsets (see ``indices.py``)."""

    index_name: str
    source: str
    start: np.ndarray
    offsets: np.ndarray  # 1-D int64: column offsets from start[p], in the order the gather returns them
    pad_row: int = 0
    kind: str = "table"  # "table", "reference", "col2im", "sequence" or "position"
    tap: np.ndarray = None  # col2im: the tap of each offset (static taps)
    column: np.ndarray = None  # col2im: the source column of each offset (static columns)
    taps: int = 1  # col2im: taps per source column
    block: int = 1  # col2im: source columns per row
    dilation: int = 1  # col2im: tap spacing
    column_map: np.ndarray = None  # "table": target columns column_map[start[p] + offsets] (a nearest Resize)

    @property
    def width(self):
        return len(self.offsets)


@dataclass
class Table:
    """How a tensor is laid out as rows: transpose ``perm`` (batch, length, then the other axes) and reshape to
    (-1, K), so row n * L_T + c holds position c of sequence n; ``rest`` are the other dims."""

    tensor: str
    perm: list
    rest: list
    pad_values: list
    gathered: bool = False  # some gather reads its [reference | window | padding] table, not just the reference
    dtype: object = np.float32  # the tensor's own type; tables hold float32 (``IsmGraphBuilder.typed``)

    @property
    def row_size(self):
        return int(np.prod(self.rest)) if self.rest else 1


#: A stride-1 Conv with at least this many taps runs as a delta convolution; with fewer, its col2im gather costs
#: more than the multiplications it saves (measured on BPNet's 3-tap dilated layers), so it runs as onnxruntime's
#: blocked Conv on the gathered window (``_conv_native``).
DELTA_MIN_TAPS = 5
#: A Conv with fewer output channels than this runs as the model's own op on the gathered window, in the model's
#: layout: neither the MatMul forms nor onnxruntime's blocked (NCHWc) kernel pay for a few output channels
#: (measured on BPNet's 2-channel, 25-tap profile head).
NATIVE_MIN_OUT_CHANNELS = 16


class IsmGraphBuilder:
    """Turns a graph and its window analysis into the reference graph and the ISM graph."""

    def __init__(self, proto, analysis, shapes, input_name, outputs, dense_heads=True, *, deltas=False,
                 dtypes=None):
        self.proto = proto
        self.deltas = deltas  # the ISM graph returns f(mutant) - f(reference) (``result_names``)
        self.graph = proto.graph
        self.analysis = analysis
        self.shapes = shapes
        self.dtypes = dtypes or {}  # tensor name -> numpy dtype (probed); float32 where absent
        self.input_name = input_name
        self.outputs = outputs
        self.constants = analysis.constants
        self.opset = default_opset(proto)
        self.nodes = []
        self.tables = {}
        self.gathers = []
        self.materialised = {}
        self.gathered = {}  # (source, pad value, starts, offsets) -> the gather's rows
        self.aliases = {}  # windowed tensor -> the tensor it reshapes in the rows layout (``root``)
        self.heads = find_heads(proto.graph, analysis, shapes, self.constants, dense=dense_heads)
        self.dense_heads = []
        self.native_convs = []  # outputs of the Convs _conv_native writes (their epilogues are folded in)
        self.weights = {}  # {name: array} of the graphs' weight placeholders (``runtime/weights.py``)

    # -- naming and small helpers ---------------------------------------------------------------------------
    def win(self, name):
        return f"{name}__win"

    def _node(self, op, inputs, outputs, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"ism_{len(self.nodes)}_{op}", **attrs))
        return outputs[0]

    def _fresh(self, label):
        return f"ism__{len(self.nodes)}_{label}"

    def _const(self, name, array):
        self.nodes.append(helper.make_node("Constant", [], [name], name=f"const_{name}",
                                           value=numpy_helper.from_array(np.asarray(array))))
        return name

    def _slice(self, value, first, stop, axis, label):
        """value[first:stop] along ``axis``; ``first`` and ``stop`` are ints or the names of (1,) int64 tensors."""
        def bound(end, name):
            return end if isinstance(end, str) else self._const(self._fresh(name), np.array([end], np.int64))
        axes = self._const(self._fresh("axes"), np.array([axis], np.int64))
        return self._node("Slice", [value, bound(first, "first"), bound(stop, "stop"), axes], [self._fresh(label)])

    def _reshape(self, value, shape, output=None):
        shape_name = self._const(self._fresh("shape"), np.array(shape, np.int64))
        return self._node("Reshape", [value, shape_name], [output or self._fresh("reshaped")])

    def _transpose(self, value, perm, output=None):
        if list(perm) == list(range(len(perm))):
            return self._node("Identity", [value], [output]) if output else value
        return self._node("Transpose", [value], [output or self._fresh("transposed")], perm=[int(p) for p in perm])

    def _reduce(self, op, value, axes, output, keepdims=0):
        new_style = self.opset >= 18 or (op == "ReduceSum" and self.opset >= 13)
        if new_style:
            axes_name = self._const(self._fresh("axes"), np.array(axes, np.int64))
            return self._node(op, [value, axes_name], [output], keepdims=keepdims)
        return self._node(op, [value], [output], axes=list(axes), keepdims=keepdims)

    def perm(self, name):
        return rows_perm(len(self.shapes[name]), self.analysis.table_window(name).axis)

    def to_model(self, value, name, output=None):
        """A rows-layout value of tensor ``name`` moved to the model's layout."""
        return self._transpose(value, inverse(self.perm(name)), output)

    def to_rows(self, value, name, output=None):
        """A model-layout value of tensor ``name`` moved to the rows layout."""
        return self._transpose(value, self.perm(name), output)

    # -- gathers --------------------------------------------------------------------------------------------
    def gather(self, source, start, offsets, pad_value=0.0, column_map=None):
        """``source`` (substituted) at columns start[p] + offsets of its length axis (or at column_map[start[p] +
        offsets]), in the rows layout: (rows, *offsets.shape, *rest)."""
        rest, source = self._rest(source), self.root(source)
        offsets = np.asarray(offsets, np.int64)
        key = (source, float(pad_value), np.asarray(start, np.int64).tobytes(), offsets.shape, offsets.tobytes(),
               None if column_map is None else np.asarray(column_map, np.int64).tobytes())
        if key not in self.gathered:  # else the same columns were gathered before (e.g. a residual in a Conv's input)
            table = self._table(source)
            table.gathered = True
            if pad_value not in table.pad_values:
                table.pad_values.append(pad_value)
            k = len(self.gathers)
            spec = GatherSpec(f"idx__{k}", source, np.asarray(start, np.int64), offsets.reshape(-1),
                              pad_row=table.pad_values.index(pad_value),
                              column_map=None if column_map is None else np.asarray(column_map, np.int64))
            self.gathers.append(spec)
            self.gathered[key] = self.typed(self._node("Gather", [f"{source}__table", spec.index_name],
                                                       [f"{source}__g{k}_rows"], axis=0), source)
        return self._reshape(self.gathered[key], [-1] + list(offsets.shape) + rest)

    def reference(self, source, start, width):
        """``source``'s reference values (no substitution) at columns start[p] + [0, width), in the rows layout;
        every column must lie inside the tensor."""
        rest, source = self._rest(source), self.root(source)
        self._table(source)
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", source, np.asarray(start, np.int64), np.arange(width, dtype=np.int64),
                          kind="reference")
        self.gathers.append(spec)
        rows = self._node("Gather", [f"{source}__ref", spec.index_name], [f"{source}__r{k}_rows"], axis=0)
        return self._reshape(self.typed(rows, source), [-1, width] + rest, f"{source}__r{k}")

    def root(self, name):
        """The windowed tensor whose rows table holds ``name``'s rows: ``name`` itself, or the tensor it is a
        rows-layout reshape of (same window, same values per column in the same order; tf2onnx's Unsqueeze,
        Transpose and Squeeze around each Conv), so that both share one table."""
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def _rest(self, name):
        """The dims after (rows, column) of windowed tensor ``name`` in the rows layout."""
        return [self.shapes[name][d] for d in self.perm(name)[2:]]

    def change(self, name):
        """The substituted minus the reference values of windowed tensor ``name`` on its own window (rows layout)."""
        window = self.analysis.windows[name]
        return self._node("Sub", [self.win(name), self.reference(name, window.start, window.width)],
                          [self._fresh("change")])

    def per_sequence(self, name):
        """Reference value of the whole tensor ``name`` for each row's sequence: (rows, *shape[1:])."""
        # a windowed or unchanged tensor read along the length has a table by rows under its own name
        key = f"{name}__whole" if self.analysis.table_window(name) is not None else name
        if key not in self.tables:
            shape = self.shapes[name]
            self.tables[key] = Table(name, list(range(len(shape))), list(shape[1:]), [], dtype=self.dtype(name))
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", key, np.zeros(1, np.int64), np.zeros(1, np.int64), kind="sequence")
        self.gathers.append(spec)
        rows = self._node("Gather", [f"{key}__ref", spec.index_name], [f"{key}__s{k}_rows"], axis=0)
        return self._reshape(self.typed(rows, name), [-1] + list(self.shapes[name][1:]), f"{name}__s{k}")

    def dtype(self, name):
        return np.dtype(self.dtypes.get(name, np.float32))

    def typed(self, rows, name):
        """Rows gathered from a table (float32) in tensor ``name``'s own type (a mask's bool, ...)."""
        if self.dtype(name) == np.float32:
            return rows
        to = helper.np_dtype_to_tensor_dtype(self.dtype(name))
        return self._node("Cast", [rows], [self._fresh("typed")], to=to)

    def _table(self, source):
        if source not in self.tables:
            perm = self.perm(source)
            self.tables[source] = Table(source, perm, self._rest(source), [], dtype=self.dtype(source))
        return self.tables[source]

    def unchanged_on(self, name, target):
        """Unchanged tensor ``name`` (the same for every substitution of a sequence) on ``target``'s window, in the
        rows layout: its reference rows there, or its one column where it broadcasts along the length."""
        if self.analysis.unchanged_windows[name].length == target.length:
            return self.reference(name, target.start, target.width)
        return self.reference(name, np.zeros_like(target.start), 1)

    def window_of(self, name, target):
        """``name``'s values on ``target``'s window, in the rows layout (an unchanged tensor's too)."""
        if name in self.analysis.unchanged:
            return self.unchanged_on(name, target)
        window = self.analysis.windows[name]
        if window.width == target.width and np.array_equal(window.start, target.start):
            return self.win(name)
        return self.gather(name, target.start, np.arange(target.width))

    def materialise(self, name):
        """The full tensor ``name`` for every row, in the model's layout (computed once)."""
        if name in self.analysis.unchanged:
            if name not in self.materialised:
                self.materialised[name] = self.per_sequence(name)
            return self.materialised[name]
        if name not in self.analysis.windows:
            return name
        if name not in self.materialised:
            window = self.analysis.windows[name]
            if window.width == window.length:  # the window is the whole tensor
                full = self.win(name)
            else:
                full = self.gather(name, np.zeros_like(window.start), np.arange(window.length))
            self.materialised[name] = self.to_model(full, name, f"{name}__full")
        return self.materialised[name]

    def output_names(self):
        """The ISM graph's name for each model output (a windowed output is materialised under a new name)."""
        return [f"{name}__out" if name in self.analysis.windows or name in self.analysis.unchanged else name
                for name in self.outputs]

    def result_names(self):
        """The ISM graph's outputs: the model outputs, or with ``deltas`` their change from the reference."""
        return [f"{name}__delta" for name in self.outputs] if self.deltas else self.output_names()

    # -- nodes ----------------------------------------------------------------------------------------------
    def build(self):
        windows = self.analysis.windows
        for index, node in enumerate(self.graph.node):
            key = node.name or f"node{index}"
            mode = self.analysis.modes[key]
            if key in self.heads:
                self._head(key, self.heads[key])
            elif mode == "unchanged":  # read from the reference run where needed
                continue
            elif mode == "static":
                self.nodes.append(node)
            elif mode == "folded":  # shape arithmetic that does not depend on the batch: its values
                for name in node.output:
                    if name:
                        self._const(name, self.analysis.folded[name])
            elif mode == "shape":
                source = node.input[0]
                window = windows[source]
                correction = np.zeros(len(self.shapes[source]), np.int64)
                correction[window.axis] = window.length - window.width
                shape = self._node("Shape", [self.win(source)], [f"{node.output[0]}__win_shape"])
                order = self._const(self._fresh("order"), np.array(inverse(self.perm(source)), np.int64))
                shape = self._node("Gather", [shape, order], [f"{node.output[0]}__model_shape"], axis=0)
                attrs = attributes(node)
                ranged = "start" in attrs or "end" in attrs  # Shape-15's range of axes: a Slice of the whole shape
                whole = self._node("Add", [shape, self._const(f"{node.output[0]}__correction", correction)],
                                   [f"{node.output[0]}__whole" if ranged else node.output[0]])
                if ranged:
                    bounds = [self._const(self._fresh(label), np.array([value], np.int64)) for label, value in
                              (("start", attrs.get("start", 0)), ("end", attrs.get("end", 2 ** 62)))]
                    self._node("Slice", [whole] + bounds, [node.output[0]])
            elif mode == "full":
                copy = onnx.NodeProto()
                copy.CopyFrom(node)
                del copy.input[:]
                copy.input.extend(self.materialise(name) for name in node.input)
                self.nodes.append(copy)
            elif isinstance(self.analysis.rules[key], LocalRule):
                self._local(node, self.analysis.rules[key])
            else:
                self._pointwise(node)
        for name, final in zip(self.outputs, self.output_names()):
            if final != name:
                self._node("Identity", [self.materialise(name)], [final])
        if self.deltas:  # reduced on the device: only the change leaves the ISM graph
            for name, final, result in zip(self.outputs, self.output_names(), self.result_names()):
                self._node("Sub", [final, self.per_sequence(name)], [result])
        return self._ism_model(), self._reference_model()

    def _head(self, key, head):
        """A linear global layer as reference + the change on the window (``linear.py``)."""
        if isinstance(head, DenseHead):
            if key == head.dense:
                self._dense_head(head)
            return  # the Flatten is folded into the dense weight rows
        change = self.change(head.source)
        summed = self._reduce("ReduceSum", change, [1], self._fresh("summed"))
        if head.scale != 1.0:
            scale = self._const(self._fresh("scale"), np.array(head.scale, np.float32))
            summed = self._node("Mul", [summed, scale], [self._fresh("scaled")])
        summed = self._reshape(summed, [-1] + list(self.shapes[head.output][1:]))
        self._node("Add", [self.per_sequence(head.output), summed], [head.output])

    def _dense_head(self, head):
        """y = y_ref + alpha * change @ W[window rows]; W[window rows] is the input ``window_input``, which the
        executor binds to the batch's rows of ``head.weight_rows`` in place (no copy)."""
        window = self.analysis.windows[head.source]
        head.window_input = f"weight_window__{len(self.dense_heads)}"
        self.dense_heads.append(head)
        width, row, out = window.width, head.weight_rows.shape[1], head.weight_rows.shape[2]
        change = self._reshape(self.change(head.source), [-1, width * row])
        rows = self._reshape(head.window_input, [width * row, out])
        product = self._node("MatMul", [change, rows], [self._fresh("dense_change")])
        if head.scale != 1.0:
            scale = self._const(self._fresh("alpha"), np.array(head.scale, head.weight_rows.dtype))
            product = self._node("Mul", [product, scale], [self._fresh("scaled")])
        self._node("Add", [self.per_sequence(head.output), product], [head.output])

    def _local(self, node, rule):
        windows = self.analysis.windows
        out = node.output[0]
        target = windows[out]
        source = next(name for name in node.input if name in windows)
        if rule.merged:
            self._merged_reshape(source, out, rule)
            return
        if rule.split and target.width < target.length:
            self._split_reshape(source, out, rule)
            return
        if rule.column_map is not None and target.width < target.length:
            self._mapped_columns(source, out, rule)
            return
        start, width = rule.needed(target.start, target.width)
        strided_transpose = rule.transposed and rule.stride > 1
        if strided_transpose and target.width < target.length:
            self._strided_transpose(node, source, rule, start, width)
            return
        kernel = self._length_kernel(node, source, out)
        conv = (kernel is not None and node.op_type in ("Conv", "ConvTranspose") and not strided_transpose
                and self.conv_weight(node).shape[0] >= NATIVE_MIN_OUT_CHANNELS)
        if (conv and rule.stride == 1 and kernel[0] >= DELTA_MIN_TAPS and windows[source].width < width
                and target.width < target.length):
            self._delta_conv(node, source, rule, *kernel)
            return
        if conv:
            self._conv_native(node, source, rule, start, width, kernel[1])
            return
        if kernel is not None and node.op_type in ("Conv", "ConvTranspose") and self._narrow_whole_conv(
                node, source, rule, kernel):
            return
        if target.width == target.length:
            # a whole output: the op itself on the whole input, its own padding included (nothing gathered where
            # the input window is whole too)
            inputs = [self.materialise(name) if name == source else name for name in node.input]
            self.nodes.append(rewired(node, inputs, self._fresh("whole")))
            self.to_rows(self.nodes[-1].output[0], out, self.win(out))
            return
        if kernel is not None and node.op_type in ("MaxPool", "AveragePool"):  # along the length alone
            size, dilation = kernel
            offsets = (np.arange(target.width)[:, None] * rule.stride + np.arange(size)[None, :] * dilation)
            columns = self.gather(source, start, offsets, rule.pad_value)  # (rows, w, k, *rest)
            if rule.exclude_pad:  # the sum over the window, times 1 / (its columns inside the input) per column
                summed = self._reduce("ReduceSum", columns, [2], self._fresh("pool_sum"))
                inverse = self._inverse_counts(out, rule, size, dilation, windows[source].length)
                self._node("Mul", [summed, inverse], [self.win(out)])
                return
            reduce = "ReduceMax" if node.op_type == "MaxPool" else "ReduceMean"
            self._reduce(reduce, columns, [2], self.win(out))
            return
        gathered = self.gather(source, start, np.arange(width), rule.pad_value)
        if rule.length_only:
            self._node("Identity", [gathered], [self.win(out)])
            return
        inputs = [self.to_model(gathered, source) if name == source else name for name in node.input]
        self.to_rows(self._windowed_nodes(rule, inputs, self._fresh("local")), out, self.win(out))

    def _windowed_nodes(self, rule, inputs, output):
        """Appends the nodes ``rule.windowed_node`` makes to compute ``output`` from ``inputs``; returns ``output``."""
        for made in rule.windowed_node(inputs, output):
            made.name = made.name or f"ism_{len(self.nodes)}_{made.op_type}"
            self.nodes.append(made)
        return output

    def _mapped_columns(self, source, out, rule):
        """Output column j copies input column map[j] (a nearest Resize, a Gather, a strided or reversed Slice, a
        reflect Pad): one gather, then the Slice along other axes where there is one; or
        (a linear or cubic Resize) sums weights[t, j] * input column map[t, j] over the taps t: a gather per tap
        times its weights by output column."""
        target = self.analysis.windows[out]
        columns = np.arange(target.width)
        if rule.column_weights is None:
            gathered = self.gather(source, target.start, columns, column_map=rule.column_map)
            if rule.length_only:
                self._node("Identity", [gathered], [self.win(out)])
                return
            # a Slice along other axes too (a reverse complement's channels)
            result = self._windowed_nodes(rule, [self.to_model(gathered, source)], self._fresh("mapped"))
            self.to_rows(result, out, self.win(out))
            return
        dims = [1] * len(self._rest(out))
        total = None
        for column_map, weights in zip(rule.column_map, rule.column_weights):
            term = self._node("Mul", [self.gather(source, target.start, columns, column_map=column_map),
                                      self.by_column(out, weights.reshape([-1] + dims))], [self._fresh("tap")])
            total = term if total is None else self._node("Add", [total, term], [self._fresh("taps")])
        self._node("Identity", [total], [self.win(out)])

    def _merged_reshape(self, source, out, rule):
        """A Reshape merging the length with the ``rule.merged`` axes after it: ``source``'s window, those axes moved
        next to its columns, reshaped (the analysis checked that ``out``'s window is ``source``'s scaled)."""
        axis = self.analysis.windows[source].axis
        rest = self.perm(source)[2:]
        merged = list(range(axis + 1, axis + 1 + rule.merged))
        order = [0, 1] + [2 + rest.index(a) for a in merged] + [2 + k for k, a in enumerate(rest) if a not in merged]
        value = self.win(source)
        if order != sorted(order):
            value = self._transpose(value, order)
        target = self.analysis.windows[out]
        self._reshape(value, rows_shape(self.shapes[out], target.axis, target.width), self.win(out))

    def _split_reshape(self, source, out, rule):
        """A Reshape splitting the length into (L / k, the ``rule.split`` axes after it): ``source``'s columns
        [start * k, (start + width) * k) gathered, split, and the new axes moved after the other axes that precede
        the length in the model (the rows layout's order)."""
        target = self.analysis.windows[out]
        axis, split = self.analysis.windows[source].axis, rule.split
        rest = self._rest(source)
        new = [int(d) for d in self.shapes[out][axis + 1:axis + 1 + split]]
        gathered = self.gather(source, target.start * rule.stride, np.arange(target.width * rule.stride))
        value = self._reshape(gathered, [-1, target.width] + new + rest)  # (rows, w, new, before, after)
        before = axis - 1  # the model's axes between the batch and the length
        order = ([0, 1] + [2 + split + i for i in range(before)] + [2 + i for i in range(split)]
                 + list(range(2 + split + before, 2 + split + len(rest))))
        self._transpose(value, order, self.win(out))

    def _inverse_counts(self, out, rule, size, dilation, source_length):
        """1 / (counted input columns: inside the input or in its counted pads) of each pooling window of ``out``'s
        window, per row, shaped to broadcast against ``out`` in the rows layout: a "position" gather of a constant
        by output column."""
        target = self.analysis.windows[out]
        first = np.arange(target.length)[:, None] * rule.stride - rule.begin + np.arange(size)[None, :] * dilation
        before, after = rule.counted
        counts = ((first >= -before) & (first < source_length + after)).sum(1)
        inverse = (1.0 / np.maximum(counts, 1)).astype(np.float32)
        return self.by_column(out, inverse.reshape([-1] + [1] * len(self._rest(out))))

    def by_column(self, out, values):
        """A constant with one entry per column of windowed tensor ``out`` (``values``: (L_out, *dims)) on each row's
        window, (rows, w, *dims): a "position" gather of it by output column."""
        target = self.analysis.windows[out]
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", out, target.start, np.arange(target.width), kind="position")
        self.gathers.append(spec)
        dims = list(values.shape[1:])
        table = self._const(self._fresh("by_column"), values.reshape(len(values), -1))
        rows = self._node("Gather", [table, spec.index_name], [self._fresh("columns")], axis=0)
        return self._reshape(rows, [-1, target.width] + dims)

    def _strided_transpose(self, node, source, rule, first, width):
        """A ConvTranspose with stride s > 1 on the window of its output: the ConvTranspose without padding or bias
        (``rules._conv_transpose_rule``) on the input range the window needs gives R = (w_in - 1) * s + span
        columns, starting at output column start_in * s - begin; a per-row gather (col2im kind, one tap) picks the
        window out of them, where it starts depends on the window start modulo s. Columns it reaches no input of
        read a zero row, and the bias is added after. ``first``, ``width``: the input range (``rule.needed``)."""
        out = node.output[0]
        target = self.analysis.windows[out]
        gathered = self.to_model(self.gather(source, first, np.arange(width), rule.pad_value), source)
        product = self._windowed_nodes(rule, [gathered] + list(node.input[1:2]), self._fresh("transposed"))
        reach = (width - 1) * rule.stride + rule.span
        rest = self._rest(out)
        rows = self._reshape(self.to_rows(product, out), [-1, int(np.prod(rest))])
        zero = self._const(self._fresh("zero"), np.zeros((1, int(np.prod(rest))), np.float32))
        rows = self._node("Concat", [rows, zero], [self._fresh("reach_zero")], axis=0)
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", source, target.start - first * rule.stride + rule.begin,
                          np.arange(target.width), kind="col2im", tap=np.zeros(target.width, np.int64), taps=1,
                          block=reach)
        self.gathers.append(spec)
        window = self._node("Gather", [rows, spec.index_name], [self._fresh("window")], axis=0)
        window = self._reshape(window, rows_shape(self.shapes[out], target.axis, target.width))
        if len(node.input) > 2 and node.input[2]:
            rank = len(self.shapes[out])
            bias = self.constants[node.input[2]].astype(np.float32).reshape([1, -1] + [1] * (rank - 2))
            bias = self._const(self._fresh("bias"), rows_constant(bias, rank, self.perm(out)))
            window = self._node("Add", [window, bias], [self._fresh("biased")])
        self._node("Identity", [window], [self.win(out)])

    def _length_kernel(self, node, source, out):
        """(kernel size, dilation) along the length of a Conv/MaxPool/AveragePool that acts on the length alone
        (every other spatial axis of size 1 with a kernel of 1, no groups, constant weights); None otherwise."""
        attrs = attributes(node)
        axis = self.analysis.windows[source].axis
        in_shape, out_shape = self.shapes[source], self.shapes[out]
        spatial = len(in_shape) - 2
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = self.constants.get(node.input[1])
            if weight is None or attrs.get("group", 1) != 1:
                return None
            if len(node.input) > 2 and node.input[2] and node.input[2] not in self.constants:
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

    def conv_weight(self, node):
        """A Conv's weight (C_out, C_in, k...); a stride-1 ConvTranspose's as the Conv it equals (in and out
        channels swapped, taps reversed, on the input range ``LocalRule.needed`` gives)."""
        weight = self.constants[node.input[1]]
        if node.op_type == "ConvTranspose":
            spatial = tuple(range(2, weight.ndim))
            weight = np.ascontiguousarray(np.flip(weight, spatial).swapaxes(0, 1))
        return weight

    def _conv_native(self, node, source, rule, start, width, dilation):
        """A Conv (or stride-1 ConvTranspose, as its Conv) along the length on its gathered input columns
        [start, start + width), as onnxruntime's own 2-D Conv without padding. The gathered rows (rows, width, C)
        are viewed as NHWC (rows, 1, width, C), so that onnxruntime's NCHWc layout pass folds both Transposes into
        its reorders and runs its blocked convolution kernel with the bias (measured on BPNet's 64-channel dilated
        layers: 2x the im2col MatMul)."""
        out = node.output[0]
        target = self.analysis.windows[out]
        weight = self.conv_weight(node)
        c_out, c_in = weight.shape[:2]
        left = right = 0
        if rule.pad_value == 0 and np.all(start == start[0]):
            # every row reads the same columns (a whole output): the Conv pads those outside the input itself
            length = self.analysis.windows[source].length
            left, right = max(0, -int(start[0])), max(0, int(start[0]) + width - length)
            if left + right >= width:
                left = right = 0
            start, width = start + left, width - left - right
        gathered = self._reshape(self.gather(source, start, np.arange(width), rule.pad_value), [-1, 1, width, c_in])
        inputs = [self._transpose(gathered, [0, 3, 1, 2]),
                  self._const(self._fresh("weight"), weight.reshape(c_out, c_in, 1, -1))]
        if len(node.input) > 2 and node.input[2]:
            inputs.append(self._const(self._fresh("bias"), self.constants[node.input[2]]))
        conv = self._node("Conv", inputs, [self._fresh("conv")], dilations=[1, int(dilation)],
                          strides=[1, int(rule.stride)], pads=[0, left, 0, right])
        self.native_convs.append(conv)
        conv = self._transpose(conv, [0, 2, 3, 1])  # (rows, 1, w, C_out)
        self._reshape(conv, rows_shape(self.shapes[out], target.axis, target.width), self.win(out))

    def _narrow_whole_conv(self, node, source, rule, kernel):
        """A 'same' stride-1 Conv (or ConvTranspose, as its Conv) with few output channels on the whole length
        (a profile head), in the rows layout without a transpose: one Gemm gives every column's product with
        every tap, (C_out * K, R) for the R = rows * L columns of the batch, and a diagonal sum adds tap k' of
        column o + a - k' into output o. Viewing each channel's K * R products from offset a with a row stride
        of R - 1 puts those K terms in one column, so the sum is a Slice and a ReduceSum; it mixes neighbouring
        rows only within K - 1 columns of a row's ends, which a small exact MatMul recomputes. Returns False
        (nothing built) where the form does not apply. Measured on BPNet's 64 -> 1, 25-tap head: about two thirds
        of the time of onnxruntime's ConvTranspose with the Transpose before it (README)."""
        windows = self.analysis.windows
        out = node.output[0]
        target, length = windows[out], windows[source].length
        size, dilation = kernel
        weight = self.conv_weight(node)  # (C_out, C_in, ..., K, ...) as a Conv
        c_out, c_in = weight.shape[:2]
        first, width = rule.needed(target.start, target.width)
        edge = size - 1  # output columns at each end recomputed exactly
        if (rule.stride != 1 or dilation != 1 or rule.pad_value != 0 or size < 2 or target.width != target.length
                or length != target.length or width != length + size - 1 or np.any(first != first[0])
                or not -(size - 1) <= int(first[0]) <= 0 or length < 2 * (edge + size) + 1
                or int(np.prod(self._rest(source))) != c_in or self.opset < 11):
            return False
        offset = int(first[0]) + size - 1  # output o sums tap k' of column o + offset - k'
        taps = np.flip(weight.reshape(c_out, c_in, size), 2)  # tap k' = K - 1 - k of the Conv form
        columns = self._reshape(self.window_of(source, target), [-1, c_in])  # (R, C_in)
        products = self._node("Gemm", [self._const(self._fresh("taps"), np.ascontiguousarray(
            taps.transpose(0, 2, 1).reshape(c_out * size, c_in))), columns], [self._fresh("products")], transB=1)
        flat = self._reshape(products, [c_out, -1])  # channel c: tap k' of column j at k' * R + j
        shifted = self._slice(flat, offset, offset - size, 1, "shifted")  # (C_out, K * (R - 1))
        diagonal = self._reshape(shifted, [c_out, size, -1])  # [c, k', j]: tap k' of column j + offset - k'
        summed = self._reduce("ReduceSum", diagonal, [1], self._fresh("summed"))  # (C_out, R - 1)
        # the bias is added here, along the long axis, and to the edge columns: onnxruntime's Add broadcasting a
        # bias over a last axis of 1 or 2 channels costs about 20 ns per value (0.7 against 0.017 ms for
        # (32, 1000, 1) + (1,)), 3% of BPNet 1 kb's fast ISM
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.constants[node.input[2]].astype(np.float32).reshape(-1)
            summed = self._node("Add", [summed, self._const(self._fresh("bias"), bias.reshape(c_out, 1))],
                                [self._fresh("biased")])
        summed = self._node("Pad", [summed, self._const(self._fresh("pads"), np.array([0, 0, 0, 1], np.int64))],
                            [self._fresh("padded")])  # the last column is an edge column, recomputed below
        by_column = self._transpose(summed, [1, 0]) if c_out > 1 else summed
        middle = self._reshape(by_column, [-1, length, c_out])
        middle = self._slice(middle, edge, length - edge, 1, "middle")
        rows_in = self._reshape(columns, [-1, length, c_in])
        per_tap = self._const(self._fresh("taps"), np.ascontiguousarray(taps.transpose(1, 0, 2).reshape(c_in, -1)))
        ends = []
        for base, outputs in ((0, range(edge)), (length - edge - size, range(length - edge, length))):
            span = edge + size  # the input columns [base, base + span) every edge output reads
            part = self._slice(rows_in, base, base + span, 1, "edge_columns")
            product = self._reshape(self._node("MatMul", [part, per_tap], [self._fresh("edge_products")]),
                                    [-1, span * c_out * size])  # [row, (i * C_out + c) * K + k']
            select = np.zeros((span, c_out, size, len(outputs), c_out), np.float32)
            for number, o in enumerate(outputs):
                for tap in range(size):
                    column = o + offset - tap
                    if 0 <= column < length:
                        select[column - base, np.arange(c_out), tap, number, np.arange(c_out)] = 1.0
            select = self._const(self._fresh("diagonal"), select.reshape(span * c_out * size, -1))
            end = self._reshape(self._node("MatMul", [product, select], [self._fresh("edge")]), [-1, edge, c_out])
            if bias is not None:
                end = self._node("Add", [end, self._const(self._fresh("bias"), bias.reshape(1, 1, c_out))],
                                 [self._fresh("biased")])
            ends.append(end)
        result = self._node("Concat", [ends[0], middle, ends[1]], [self._fresh("narrow_conv")], axis=1)
        self._reshape(result, rows_shape(self.shapes[out], target.axis, target.width), self.win(out))
        return True

    def _delta_conv(self, node, source, rule, size, dilation):
        """A stride-1 Conv whose input changes on fewer columns than its output window reads: the change of the
        output is the convolution of the input's change (the conv is linear), added to the reference output.
        The change (rows, w_s, C_in) times the (C_in, k * C_out) weight gives every column's contribution to
        every tap; a col2im gather sums them into the output window."""
        windows = self.analysis.windows
        out = node.output[0]
        target, window = windows[out], windows[source]
        weight = self.conv_weight(node)
        c_out, c_in = weight.shape[:2]
        # one zero row after the rows' changed columns: its products are the zero rows invalid entries read
        # (appended to the change, C_in wide, rather than to the product, taps * C_out wide)
        change = self._reshape(self.change(source), [-1, c_in])
        zero = self._const(self._fresh("zero"), np.zeros((1, c_in), weight.dtype))
        change = self._node("Concat", [change, zero], [self._fresh("change_zero")], axis=0)
        matrix = weight.reshape(c_out, c_in, size).transpose(1, 2, 0).reshape(c_in, size * c_out)
        product = self._node("MatMul", [change, self._const(self._fresh("weight"), matrix.astype(weight.dtype))],
                             [self._fresh("contributions")])
        product = self._reshape(product, [-1, c_out])  # row (m * w_s + c) * k + t; then k zero rows
        k = len(self.gathers)
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
        self.gathers.append(spec)
        terms = spec.width // target.width
        summed = self._node("Gather", [product, spec.index_name], [self._fresh("col2im")], axis=0)
        if terms == 1:
            summed = self._reshape(summed, [-1, target.width, c_out])
        else:
            summed = self._reshape(summed, [-1, target.width, terms, c_out])
            summed = self._reduce("ReduceSum", summed, [2], self._fresh("delta"))
        after = self._reshape(self.reference(out, target.start, target.width), [-1, target.width, c_out])
        result = self._node("Add", [after, summed], [self._fresh("conv")])
        self._reshape(result, rows_shape(self.shapes[out], target.axis, target.width), self.win(out))

    def _pointwise(self, node):
        """A node whose output position j depends on its inputs at j only, on the window of its output."""
        windows = self.analysis.windows
        out = node.output[0]
        target = windows[out]
        translated = self._rows_form(node, target)
        if (translated is not None and len(translated) == 1 and translated[0].op_type in ("Reshape", "Identity")
                and translated[0].input[0] == self.win(node.input[0])):
            self.aliases[out] = self.root(node.input[0])
        if translated is None:  # run the op in the model's layout
            inputs = [self.to_model(self.window_of(name, target), name)
                      if name in windows or name in self.analysis.unchanged else name
                      for name in node.input]
            translated = [rewired(node, inputs, self._fresh("pointwise"))]
            self.nodes.extend(translated)
            self.to_rows(translated[0].output[0], out, self.win(out))
            return
        self.nodes.extend(translated)

    def _rows_form(self, node, target):
        """Nodes computing ``node`` directly in the rows layout, or None where there is no such form."""
        windows, shapes = self.analysis.windows, self.shapes
        op, out = node.op_type, node.output[0]
        rank = len(shapes[out])
        perm = self.perm(out)
        result = self.win(out)
        windowed = [name for name in node.input if name in windows]
        same_rank = all(len(shapes[name]) == rank for name in windowed)
        if not same_rank and op not in ("Transpose", "Squeeze", "Unsqueeze", "Reshape", "MatMul") + tuple(REDUCTIONS):
            return None
        attrs = attributes(node)
        if op in UNARY_POINTWISE:
            return [rewired(node, [self.window_of(node.input[0], target)] + list(node.input[1:]), result)]
        if op in ELEMENTWISE:
            inputs = []
            for name in node.input:
                if not name:
                    inputs.append(name)
                elif name in windows or name in self.analysis.unchanged:
                    inputs.append(self.window_of(name, target))
                elif name in self.constants and np.ndim(self.constants[name]) <= rank:
                    moved = rows_constant(self.constants[name], rank, perm)
                    if moved.shape[1] == 1:
                        inputs.append(self._const(self._fresh("operand"), moved))
                    else:  # varies along the length (rules.py): its values on each row's window
                        inputs.append(self.by_column(out, moved[0]))
                else:
                    return None
            return [rewired(node, inputs, result)]
        if op == "BatchNormalization":
            params = [self.constants.get(name) for name in node.input[1:5]]
            if any(value is None for value in params):
                return None
            gamma, beta, mean, var = (np.asarray(v, np.float64) for v in params)
            scale = gamma / np.sqrt(var + attrs.get("epsilon", 1e-5))
            shift = beta - mean * scale
            shape = [1] * rank
            shape[1] = -1
            scale_name = self._const(self._fresh("scale"), rows_constant(scale.reshape(shape).astype(np.float32),
                                                                        rank, perm))
            shift_name = self._const(self._fresh("shift"), rows_constant(shift.reshape(shape).astype(np.float32),
                                                                        rank, perm))
            scaled = self._fresh("scaled")
            return [helper.make_node("Mul", [self.window_of(node.input[0], target), scale_name], [scaled],
                                     name=scaled),
                    helper.make_node("Add", [scaled, shift_name], [result], name=result)]
        source = node.input[0]
        if op == "Transpose":
            model_perm = attrs.get("perm") or list(reversed(range(rank)))
            in_perm = self.perm(source)
            order = [in_perm.index(model_perm[axis]) for axis in perm]
            if order == sorted(order):  # e.g. NCL <-> NLC: both are (rows, window, channels) here
                return [helper.make_node("Identity", [self.window_of(source, target)], [result], name=result)]
            moved = [axis for axis in order if self.shapes[source][in_perm[axis]] != 1]
            if moved == sorted(moved):  # only axes of size 1 move: a Reshape
                shape_name = self._const(self._fresh("shape"), np.array(rows_shape(shapes[out], target.axis,
                                                                                  target.width), np.int64))
                return [helper.make_node("Reshape", [self.window_of(source, target), shape_name], [result],
                                         name=result)]
            return [helper.make_node("Transpose", [self.window_of(source, target)], [result], perm=order,
                                     name=result)]
        if op in ("Squeeze", "Unsqueeze", "Reshape"):  # Reshape: only ever a unit-axis one (rules.py)
            if op != "Reshape" and not self._keeps_batch(node, source, out):
                return None
            shape_name = self._const(self._fresh("shape"), np.array(rows_shape(shapes[out], target.axis,
                                                                              target.width), np.int64))
            return [helper.make_node("Reshape", [self.window_of(source, target), shape_name], [result], name=result)]
        if op == "Tile" and node.input[1] in self.constants:  # repeats 1 along the batch and the length (rules.py)
            repeats = self._const(self._fresh("repeats"),
                                  np.asarray(self.constants[node.input[1]], np.int64).reshape(-1)[perm])
            return [helper.make_node("Tile", [self.window_of(source, target), repeats], [result], name=result)]
        if op == "Expand":  # 1 along the batch and the length: kept as they are (the other axes, where the shape is
            # computed from the batch, as probed: rules.py)
            shape = np.asarray(self.constants.get(node.input[1], shapes[out]), np.int64).reshape(-1)
            shape = np.concatenate([np.ones(rank - len(shape), np.int64), shape])
            shape[0] = shape[self.analysis.windows[out].axis] = 1
            shape = self._const(self._fresh("expand_shape"), shape[perm])
            return [helper.make_node("Expand", [self.window_of(source, target), shape], [result], name=result)]
        if op in ("Softmax", "LogSoftmax", "Hardmax") and self.opset >= 13:
            axis = perm.index(attrs.get("axis", -1) % rank)
            return [rewired(node, [self.window_of(source, target)], result, {"axis": axis})]
        if op == "LpNormalization":  # over one axis, neither the batch nor the length (rules.py)
            return [rewired(node, [self.window_of(source, target)], result,
                            {"axis": perm.index(attrs.get("axis", -1) % rank)})]
        if op == "LayerNormalization":  # normalised axes lie after the length: same index in the rows layout
            return [rewired(node, [self.window_of(source, target)] + list(node.input[1:]), result)]
        if op == "MatMul" and node.input[1] not in windows:  # contracts the last axis, last in both layouts
            return [rewired(node, [self.window_of(source, target), node.input[1]], result)]
        if op == "Concat":
            return [rewired(node, [self.window_of(name, target) for name in node.input], result,
                            {"axis": perm.index(attrs["axis"] % rank)})]
        return None

    def _keeps_batch(self, node, source, out):
        """Squeeze/Unsqueeze that leaves the batch axis first and moves no other axis past another."""
        axes = attributes(node).get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.constants.get(node.input[1])
        if axes is None:
            return False
        rank = len(self.shapes[out]) if node.op_type == "Unsqueeze" else len(self.shapes[source])
        return 0 not in [int(a) % rank for a in np.asarray(axes).reshape(-1)]

    # -- models ---------------------------------------------------------------------------------------------
    def _table_nodes(self):
        for name, table in self.tables.items():
            if not table.gathered:
                continue
            shape = self._const(f"{name}__rows_shape", np.array([-1, table.row_size], np.int64))
            window_rows = self._node("Reshape", [self.win(name), shape], [f"{name}__win_rows"])
            if table.dtype != np.float32:
                window_rows = self._node("Cast", [window_rows], [self._fresh("float_rows")], to=onnx.TensorProto.FLOAT)
            pads = np.array([[value] * table.row_size for value in table.pad_values], np.float32)
            pad_rows = self._const(f"{name}__pad_rows", pads)
            self._node("Concat", [f"{name}__ref", window_rows, pad_rows], [f"{name}__table"], axis=0)

    def table_rows(self, name):
        """Rows of table ``name`` per sequence: the length of a windowed (or unchanged) tensor's rows table, else
        1."""
        window = self.analysis.table_window(name)
        return self.shapes[name][window.axis] if window is not None else 1

    def _ism_model(self):
        self._table_nodes()
        self.nodes = fold_epilogues(self.nodes, self.native_convs, set(self.result_names()))
        graph = self.graph
        window = self.analysis.windows[self.input_name]
        input_shape = ["rows"] + rows_shape(self.shapes[self.input_name], window.axis, 1)[1:]
        inputs = [helper.make_tensor_value_info(self.win(self.input_name), onnx.TensorProto.FLOAT, input_shape)]
        for name, table in self.tables.items():
            inputs.append(helper.make_tensor_value_info(f"{name}__ref", onnx.TensorProto.FLOAT,
                                                        ["ref_rows_" + str(len(inputs)), table.row_size]))
        for spec in self.gathers:
            inputs.append(helper.make_tensor_value_info(spec.index_name, onnx.TensorProto.INT64, ["rows", spec.width]))
        for head in self.dense_heads:
            width = self.analysis.windows[head.source].width
            inputs.append(helper.make_tensor_value_info(
                head.window_input, helper.np_dtype_to_tensor_dtype(head.weight_rows.dtype),
                [width] + list(head.weight_rows.shape[1:])))
        outputs = []
        for final in self.result_names():
            outputs.append(helper.make_tensor_value_info(final, onnx.TensorProto.FLOAT, None))
        # onnx-graphsurgeon sorts the nodes and drops those no output needs, on a skeleton whose weights are only
        # declared (as inputs): the weights, attached after, are copied once, and only those the graph still uses
        weights = {init.name: init for init in graph.initializer}
        declared = [helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
                    for init in weights.values()]
        skeleton = helper.make_graph(self.nodes, "onnxism_fast_ism", inputs + declared, outputs)
        skeleton = helper.make_model(skeleton, opset_imports=list(self.proto.opset_import))
        cleaned = gs.import_onnx(skeleton)
        cleaned.toposort().cleanup()
        model = gs.export_onnx(cleaned)
        model.ir_version = self.proto.ir_version
        used = names_used(model.graph)
        kept = [value for value in model.graph.input if value.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        for name, init in weights.items():
            if name in used:
                add_initializer(model.graph, init, self.constants, self.weights)
        return model

    def _reference_model(self):
        model = copy_model(self.proto, self.constants, self.weights)
        graph = model.graph
        for name, table in self.tables.items():
            shape_name = f"{name}__ref_shape"
            tensor = table.tensor
            if table.dtype != np.float32:  # tables hold float32
                tensor = f"{name}__ref_float"
                graph.node.append(helper.make_node("Cast", [table.tensor], [tensor], to=onnx.TensorProto.FLOAT,
                                                   name=tensor))
            graph.node.extend([
                helper.make_node("Transpose", [tensor], [f"{name}__ref_t"], perm=table.perm,
                                 name=f"{name}__ref_t"),
                helper.make_node("Constant", [], [shape_name], name=shape_name,
                                 value=numpy_helper.from_array(np.array([-1, table.row_size], np.int64))),
                helper.make_node("Reshape", [f"{name}__ref_t", shape_name], [f"{name}__ref"], name=f"{name}__ref"),
            ])
            graph.output.append(onnx.ValueInfoProto(name=f"{name}__ref"))
        return model
