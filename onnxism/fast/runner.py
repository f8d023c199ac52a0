"""Runs fast ISM's two graphs with onnxruntime IO binding, on the CPU and on CUDA alike.

Per chunk of sequences, the reference graph writes its tables on the session's device and they stay there: every
batch of the (``sliced``) ISM graph reads them in place, selecting its own sequences in the graph. A batch sends
only its small inputs (substituted columns, gather indices, window starts, which sequences) and gets back only the
change of each output (the ISM graph is built with ``deltas``): the outputs are reduced on the device.

Invariant: ``batch`` returns, for each row, f(mutant) - f(reference) of each selected output, as host arrays.
"""

import numpy as np

from ..runtime.sessions import parse_device
from .graphs import SEQ_FIRST, SEQ_STOP


class BoundRunner:
    """IO-bound runs of one plan's reference session and ISM session on one device."""

    def __init__(self, plan, reference, ism, input_name, device):
        self.device = parse_device(device)  # (kind, index), as bind_output takes them
        self.plan, self.reference, self.ism, self.input_name = plan, reference, ism, input_name
        self.binding = None

    def start_chunk(self, inputs):
        """Run the reference graph on a chunk (model layout); keep its tables on the device for the chunk's batches.
        Returns the chunk's reference outputs as host arrays."""
        plan = self.plan
        binding = self.reference.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(inputs, dtype=np.float32))
        for name in plan.outputs:
            binding.bind_output(name, "cpu")
        for name in plan.tables:
            binding.bind_output(f"{name}__ref", *self.device)
        self.reference.run_with_iobinding(binding)
        values = binding.get_outputs()
        count = len(plan.outputs)
        reference = {name: np.asarray(value.numpy(), np.float32) for name, value in zip(plan.outputs, values)}
        self.binding = self.ism.io_binding()
        for name, value in zip(plan.tables, values[count:]):
            self.binding.bind_ortvalue_input(f"{name}__ref_all", value)
        return reference

    def batch(self, first_seq, stop_seq, feeds):
        """The ISM graph on one batch whose sequences are chunk sequences [first_seq, stop_seq); ``feeds`` holds the
        per-batch inputs (host arrays). Returns one host array per output."""
        self.binding.bind_cpu_input(SEQ_FIRST, np.array([first_seq], np.int64))
        self.binding.bind_cpu_input(SEQ_STOP, np.array([stop_seq], np.int64))
        for name, value in feeds.items():
            self.binding.bind_cpu_input(name, np.ascontiguousarray(value))
        self.binding.clear_binding_outputs()  # the batch's own output shapes, allocated by onnxruntime
        for name in self.plan.ism_outputs:
            self.binding.bind_output(name, "cpu")
        self.ism.run_with_iobinding(self.binding)
        return self.binding.copy_outputs_to_cpu()

    def end_chunk(self):
        """Release the chunk's device tables."""
        self.binding = None
