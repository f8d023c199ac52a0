"""Runs fast ISM's two graphs with onnxruntime IO binding, on the CPU and on CUDA alike.

Per chunk of sequences, the reference graph writes its tables on the session's device and they stay there. Each
batch of the ISM graph reads its own sequences' rows of them in place: the runner binds each table input to those
rows of the chunk's table (consecutive rows, so a pointer and a shape, no copy), and each dense head's weight
window to the batch's rows of the head's weight rows, kept on the device once per plan. A batch sends only its small
inputs (substituted columns, gather indices) and gets back only the change of each output (the ISM graph is built
with ``deltas``): the outputs are reduced on the device.

Invariant: ``batch`` returns, for each row, f(mutant) - f(reference) of each selected output, as host arrays. It
may be called from several threads at once: each thread binds its own inputs, over the same device tables.
"""

import threading

import numpy as np

from ..runtime.sessions import parse_device


class BoundRunner:
    """IO-bound runs of one plan's reference session and ISM session on one device."""

    def __init__(self, plan, reference, ism, weight_rows, input_name, device):
        self.device = parse_device(device)  # (kind, index), as bind_output takes them
        self.plan, self.reference, self.ism, self.input_name = plan, reference, ism, input_name
        self.tables = None  # the chunk's reference tables (device OrtValues), by table name
        self.weight_rows = weight_rows  # per dense head, its weight rows as an OrtValue on the device
        self.local = threading.local()

    def start_chunk(self, inputs, extras=None):
        """Run the reference graph on a chunk (model layout) and its rows of the model's extra inputs (``extras``:
        name -> array); keep its tables on the device for the chunk's batches. Returns the chunk's reference
        outputs as host arrays."""
        plan = self.plan
        binding = self.reference.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(inputs, dtype=np.float32))
        for name, value in (extras or {}).items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in plan.outputs:
            binding.bind_output(name, "cpu")
        for name in plan.tables:
            binding.bind_output(f"{name}__ref", *self.device)
        self.reference.run_with_iobinding(binding)
        values = binding.get_outputs()
        count = len(plan.outputs)
        reference = {name: np.asarray(value.numpy(), np.float32) for name, value in zip(plan.outputs, values)}
        self.tables = dict(zip(plan.tables, values[count:]))
        return reference

    def batch(self, first_seq, stop_seq, feeds, starts=()):
        """The ISM graph on one batch whose sequences are chunk sequences [first_seq, stop_seq), whose dense heads'
        windows start at ``starts`` (one per ``plan.dense_heads``); ``feeds`` holds the per-batch inputs (host
        arrays). Returns one host array per output."""
        plan = self.plan
        binding = getattr(self.local, "binding", None)
        if binding is None:  # this thread's binding, kept across the runner's batches: each binds every input
            binding = self.local.binding = self.ism.io_binding()
        for name, value in self.tables.items():
            rows = plan.table_rows[name]
            self._bind_rows(binding, f"{name}__ref", value, first_seq * rows, (stop_seq - first_seq) * rows)
        for head, rows, start in zip(plan.dense_heads, self.weight_rows, starts):
            self._bind_rows(binding, head.window_input, rows, start, plan.analysis.windows[head.source].width)
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.clear_binding_outputs()  # the batch's own output shapes, allocated by onnxruntime
        for name in plan.ism_outputs:
            binding.bind_output(name, "cpu")
        self.ism.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def _bind_rows(self, binding, name, value, first, count):
        """Binds input ``name`` to rows [first, first + count) (axis 0) of the device OrtValue ``value``, in place."""
        shape = value.shape()
        if first < 0 or first + count > shape[0]:  # a pointer past the array would read other memory
            raise IndexError(f"rows [{first}, {first + count}) of {name!r} are outside its {shape[0]} rows")
        dtype = _DTYPES[value.element_type()]
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        binding.bind_input(name, *self.device, dtype, [count] + list(shape[1:]), value.data_ptr() + first * row_bytes)

    def end_chunk(self):
        """Release the chunk's device tables (every batch binds its rows of the next chunk's anew)."""
        self.tables = None


#: OrtValue.element_type() (ONNX TensorProto data types) -> numpy dtype, for the types tables and weights take
_DTYPES = {1: np.dtype(np.float32), 10: np.dtype(np.float16), 11: np.dtype(np.float64)}
