"""Runs fast ISM's two graphs with onnxruntime IO binding, on the CPU and on CUDA alike.

Per chunk of sequences, the reference graph writes its tables on the session's device and they stay there: every
batch of the (``sliced``) ISM graph reads them in place, selecting its own sequences in the graph. A batch sends
only its small inputs (substituted columns, gather indices, window starts, which sequences) and gets back only the
change of each output (the ISM graph is built with ``deltas``): the outputs are reduced on the device.

Invariant: ``batch`` returns, for each row, f(mutant) - f(reference) of each selected output, as host arrays. It
may be called from several threads at once: each thread binds its own inputs, over the same device tables.
"""

import threading

import numpy as np

from ..runtime.sessions import parse_device
from .graphs import SEQ_FIRST, SEQ_STOP


class BoundRunner:
    """IO-bound runs of one plan's reference session and ISM session on one device."""

    def __init__(self, plan, reference, ism, input_name, device):
        self.device = parse_device(device)  # (kind, index), as bind_output takes them
        self.plan, self.reference, self.ism, self.input_name = plan, reference, ism, input_name
        self.tables = None  # the chunk's reference tables (device OrtValues), by ISM input name
        self.chunk = 0  # counts chunks, so that a thread's binding of an earlier chunk is not reused
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
        self.tables = {f"{name}__ref_all": value for name, value in zip(plan.tables, values[count:])}
        self.chunk += 1
        return reference

    def _binding(self):
        """This thread's IO binding of the ISM session, with the current chunk's tables bound."""
        local = self.local
        if getattr(local, "chunk", None) != self.chunk:
            local.binding = self.ism.io_binding()
            for name, value in self.tables.items():
                local.binding.bind_ortvalue_input(name, value)
            local.chunk = self.chunk
        return local.binding

    def batch(self, first_seq, stop_seq, feeds):
        """The ISM graph on one batch whose sequences are chunk sequences [first_seq, stop_seq); ``feeds`` holds the
        per-batch inputs (host arrays). Returns one host array per output."""
        binding = self._binding()
        binding.bind_cpu_input(SEQ_FIRST, np.array([first_seq], np.int64))
        binding.bind_cpu_input(SEQ_STOP, np.array([stop_seq], np.int64))
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.clear_binding_outputs()  # the batch's own output shapes, allocated by onnxruntime
        for name in self.plan.ism_outputs:
            binding.bind_output(name, "cpu")
        self.ism.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def end_chunk(self):
        """Release the chunk's device tables (a thread's binding of them goes with the next chunk or the runner)."""
        self.tables = None
