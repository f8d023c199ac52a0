"""The state the ISM graph is built in: an Emitter (fresh names, Constant nodes, layout helpers) plus the windows'
tables and gathers, the tensors materialised in full, and the rows-layout aliases (``root``).

A windowed tensor T of the model is held in the ISM graph as ``T__win`` in the rows layout (``layout.py``); its
"table" is the reference run's T as rows (``T__ref``) concatenated with every row's window and padding rows
(``T__table``), and a gather reads any column of the substituted T from it. Invariant: ``gather(T, start,
offsets)`` gives, for each row, the substituted T at columns start[p] + offsets (the pad value outside T).
"""

import numpy as np
from onnx import helper

from ...graph.emitter import Emitter
from ...graph.nodes import default_opset
from ..heads import find_heads
from ..layout import inverse, rows_perm
from .tables import GatherSpec, Table


class BuildState(Emitter):
    """Turns a graph and its window analysis into the ISM graph's nodes; the lowerings (``lower.py`` and the modules
    it dispatches to) call it."""

    def __init__(self, proto, analysis, shapes, input_name, outputs, dense_heads=True, *, deltas=False,
                 dtypes=None):
        taken = {name for node in proto.graph.node for name in list(node.input) + list(node.output)}
        taken |= {value.name for value in list(proto.graph.input) + list(proto.graph.initializer)}
        super().__init__("ism__", taken=taken, constant_nodes=True, opset=default_opset(proto))
        self.proto = proto
        self.deltas = deltas  # the ISM graph returns f(mutant) - f(reference) (``result_names``)
        self.graph = proto.graph
        self.analysis = analysis
        self.shapes = shapes
        self.dtypes = dtypes or {}  # tensor name -> numpy dtype (probed); float32 where absent
        self.input_name = input_name
        self.outputs = outputs
        self.constants = analysis.constants
        self.tables = {}
        self.gathers = []
        self.materialised = {}
        self.gathered = {}  # (source, pad value, starts, offsets) -> the gather's rows
        self.aliases = {}  # windowed tensor -> the tensor it reshapes in the rows layout (``root``)
        self.heads = find_heads(proto.graph, analysis, shapes, self.constants, dense=dense_heads)
        self.dense_heads = []
        self.native_convs = []  # outputs of the Convs _conv_native writes (their epilogues are folded in)
        self.weights = {}  # {name: array} of the graphs' weight placeholders (``runtime/weights.py``)

    def win(self, name):
        """The ISM graph's name of windowed tensor ``name``'s window (rows layout)."""
        return f"{name}__win"

    def node(self, op, inputs, outputs, **attrs):
        """Append a node writing ``outputs`` (one name); returns it."""
        (output,) = outputs
        return self.op(op, inputs, out=output, **attrs)

    def constant(self, name, array):
        """A Constant node writing ``array`` as ``name``."""
        return self.const(array, name=name)

    def perm(self, name):
        return rows_perm(len(self.shapes[name]), self.analysis.table_window(name).axis)

    def to_model(self, value, name, output=None):
        """A rows-layout value of tensor ``name`` moved to the model's layout."""
        return self.transpose(value, inverse(self.perm(name)), output)

    def to_rows(self, value, name, output=None):
        """A model-layout value of tensor ``name`` moved to the rows layout."""
        return self.transpose(value, self.perm(name), output)

    def gather(self, source, start, offsets, pad_value=0.0, column_map=None):
        """``source`` (substituted) at columns start[p] + offsets of its length axis (or at column_map[start[p] +
        offsets]), in the rows layout: (rows, *offsets.shape, *rest)."""
        rest, source = self.rest(source), self.root(source)
        offsets = np.asarray(offsets, np.int64)
        key = (source, float(pad_value), np.asarray(start, np.int64).tobytes(), offsets.shape, offsets.tobytes(),
               None if column_map is None else np.asarray(column_map, np.int64).tobytes())
        if key not in self.gathered:  # else the same columns were gathered before (e.g. a residual in a Conv's input)
            table = self.table(source)
            table.gathered = True
            if pad_value not in table.pad_values:
                table.pad_values.append(pad_value)
            k = len(self.gathers)
            spec = GatherSpec(f"idx__{k}", source, np.asarray(start, np.int64), offsets.reshape(-1),
                              pad_row=table.pad_values.index(pad_value),
                              column_map=None if column_map is None else np.asarray(column_map, np.int64))
            self.gathers.append(spec)
            self.gathered[key] = self.typed(self.node("Gather", [f"{source}__table", spec.index_name],
                                                      [f"{source}__g{k}_rows"], axis=0), source)
        return self.reshape(self.gathered[key], [-1] + list(offsets.shape) + rest)

    def reference(self, source, start, width):
        """``source``'s reference values (no substitution) at columns start[p] + [0, width), in the rows layout;
        every column must lie inside the tensor."""
        rest, source = self.rest(source), self.root(source)
        self.table(source)
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", source, np.asarray(start, np.int64), np.arange(width, dtype=np.int64),
                          kind="reference")
        self.gathers.append(spec)
        rows = self.node("Gather", [f"{source}__ref", spec.index_name], [f"{source}__r{k}_rows"], axis=0)
        return self.reshape(self.typed(rows, source), [-1, width] + rest, f"{source}__r{k}")

    def root(self, name):
        """The windowed tensor whose rows table holds ``name``'s rows: ``name`` itself, or the tensor it is a
        rows-layout reshape of (same window, same values per column in the same order; tf2onnx's Unsqueeze,
        Transpose and Squeeze around each Conv), so that both share one table."""
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def rest(self, name):
        """The dims after (rows, column) of windowed tensor ``name`` in the rows layout."""
        return [self.shapes[name][d] for d in self.perm(name)[2:]]

    def change(self, name):
        """The substituted minus the reference values of windowed tensor ``name`` on its own window (rows layout)."""
        window = self.analysis.windows[name]
        return self.node("Sub", [self.win(name), self.reference(name, window.start, window.width)],
                         [self.fresh("change")])

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
        rows = self.node("Gather", [f"{key}__ref", spec.index_name], [f"{key}__s{k}_rows"], axis=0)
        return self.reshape(self.typed(rows, name), [-1] + list(self.shapes[name][1:]), f"{name}__s{k}")

    def dtype(self, name):
        return np.dtype(self.dtypes.get(name, np.float32))

    def typed(self, rows, name):
        """Rows gathered from a table (float32) in tensor ``name``'s own type (a mask's bool, ...)."""
        if self.dtype(name) == np.float32:
            return rows
        to = helper.np_dtype_to_tensor_dtype(self.dtype(name))
        return self.node("Cast", [rows], [self.fresh("typed")], to=to)

    def table(self, source):
        if source not in self.tables:
            perm = self.perm(source)
            self.tables[source] = Table(source, perm, self.rest(source), [], dtype=self.dtype(source))
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

    def by_column(self, out, values):
        """A constant with one entry per column of windowed tensor ``out`` (``values``: (L_out, *dims)) on each row's
        window, (rows, w, *dims): a "position" gather of it by output column."""
        target = self.analysis.windows[out]
        k = len(self.gathers)
        spec = GatherSpec(f"idx__{k}", out, target.start, np.arange(target.width), kind="position")
        self.gathers.append(spec)
        dims = list(values.shape[1:])
        table = self.const(values.reshape(len(values), -1), "by_column")
        rows = self.node("Gather", [table, spec.index_name], [self.fresh("columns")], axis=0)
        return self.reshape(rows, [-1, target.width] + dims)

    def windowed_nodes(self, rule, inputs, output):
        """Appends the nodes ``rule.windowed_node`` makes to compute ``output`` from ``inputs``; returns ``output``."""
        for made in rule.windowed_node(inputs, output):
            made.name = made.name or self.fresh(f"node_{made.op_type}")
            self.nodes.append(made)
        return output

    def table_rows(self, name):
        """Rows of table ``name`` per sequence: the length of a windowed (or unchanged) tensor's rows table, else
        1."""
        window = self.analysis.table_window(name)
        return self.shapes[name][window.axis] if window is not None else 1
