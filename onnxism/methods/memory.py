"""How much memory a batch of model rows takes, estimated before a run, so that a batch size that cannot fit is
refused with the estimate and a size that fits, instead of ending in the OOM killer.

The estimate is per model row: the widest tensor of the model (each tensor's values per batch row, probed once on
its weightless stand-in) times ``LIVE_TENSORS``, the tensors of that size an onnxruntime call holds at once at most
(its input, its output and the buffers it reuses between them), plus the input row the method builds. It is an
upper bound for fast ISM, whose windowed tensors are narrower than the model's. It is checked on the CPU only, where
the machine's memory is what a batch takes (a GPU's memory is onnxruntime's to manage), against ``MEMORY_SHARE`` of
the memory available when the run starts.

Invariant: a batch size is refused only where its estimate exceeds that share; the defaults are never refused.
"""

import math

import numpy as np

from ..errors import InputError
from ..graph.probe import probe_shapes
from ..io.scratch import describe_bytes
from ..runtime.sessions import parse_device

LIVE_TENSORS = 4
MEMORY_SHARE = 0.5


def available_memory():
    """Bytes of memory available now (/proc/meminfo's MemAvailable), or None where that is not known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def bytes_per_row(model, length):
    """The estimate's bytes per model row of ``model`` at ``length`` (kept in the model's cache)."""
    if length not in model.cache.row_bytes:
        batch = model.fixed_batch or 2
        shape = (batch, length, 4) if model.layout == "NLC" else (batch, 4, length)
        extras = {extra.name: (extra.shape_at(length), extra.dtype) for extra in model.extra_inputs}
        shapes = probe_shapes(model.proto, model.input_name, shape, model.input_dtype, extras=extras)
        widest = max((math.prod(dims[1:]) for dims in shapes.values() if len(dims) and dims[0] == batch), default=0)
        model.cache.row_bytes[length] = 4 * (LIVE_TENSORS * widest + 4 * length)
    return model.cache.row_bytes[length]


def check_batch_memory(model, length, rows, device, asked=None, what="--batch-size"):
    """Refuse ``rows`` model rows per onnxruntime call (what the batch size ``asked`` gives here) where their estimate
    exceeds MEMORY_SHARE of the memory available, naming the estimate and a batch size that fits."""
    if parse_device(device)[0] != "cpu" or rows <= 256:  # (the default batches are at most 256 rows)
        return
    available = available_memory()
    if available is None:
        return
    per_row = bytes_per_row(model, length)
    if rows * per_row <= MEMORY_SHARE * available:
        return
    fits = max(1, int(MEMORY_SHARE * available // per_row))
    suggested = 2 ** int(np.log2(fits))
    raise InputError(f"{what} {rows if asked is None else asked} would take about {describe_bytes(rows * per_row)} "
                     f"of memory ({rows} rows a batch here, {describe_bytes(per_row)} a row), more than half of the "
                     f"{describe_bytes(available)} available; use {what} {suggested} or less")
