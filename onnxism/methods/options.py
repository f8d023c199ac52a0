"""Checks and defaults shared by every method: positions window, batch size, sequence chunking."""

import math

import numpy as np

from ..errors import InputError

_RESULT_BYTES_PER_CHUNK = 256 << 20


def resolve_window(positions, length):
    """``positions`` None or (start, end) -> a checked (start, end) with 0 <= start < end <= length."""
    if positions is None:
        return 0, length
    try:
        start, end = positions
    except (TypeError, ValueError) as err:
        raise InputError(f"positions must be (start, end); got {positions!r}") from err
    start = 0 if start is None else start
    end = length if end is None else end
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, end)):
        raise InputError(f"positions must be two integers (start, end); got {positions!r}")
    if not 0 <= start < end <= length:
        raise InputError(
            f"invalid positions window [{start}, {end}) for sequences of length {length}: "
            f"need 0 <= start < end <= {length}"
        )
    return int(start), int(end)


def resolve_batch_size(batch_size, length, device="cpu"):
    """Rows per onnxruntime call: ``batch_size`` if given (checked), else a default scaled to the length."""
    if batch_size is None:
        default = max(8, min(256, 131072 // max(1, length)))
        return default * 8 if str(device).startswith("cuda") else default
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
    return int(batch_size)


def sequences_per_chunk(batch_size, rows_per_sequence, result_values_per_sequence):
    """Sequences handled together: enough for ~8 full batches, few enough that results stay under 256 MiB."""
    wanted = math.ceil(8 * batch_size / max(1, rows_per_sequence))
    cap = max(1, _RESULT_BYTES_PER_CHUNK // max(1, 4 * result_values_per_sequence))
    return max(1, min(wanted, cap))
