"""The values of a model's extra inputs (inputs besides the sequences: control tracks, bias profiles), checked.

Every method feeds each sequence's own rows of them, to the reference and to every one of its substitutions.
Invariant: ``check_extra_inputs`` returns, for every extra input of the model and nothing else, an array of
(number of sequences, *its shape at the sequences' length) in the input's type, finite; anything else is an
InputError naming the input.
"""

import numpy as np

from ..errors import InputError


def check_extra_inputs(model, values, count, length):
    """{name: array} for ``model``'s extra inputs from the caller's ``values`` (a mapping, or None) for ``count``
    sequences of ``length``."""
    values = dict(values or {})
    expected = {extra.name: extra for extra in model.extra_inputs}
    unknown = [name for name in values if name not in expected]
    if unknown:
        listed = ", ".join(expected) if expected else "none: it takes only the sequences"
        raise InputError(f"unknown extra input {unknown[0]!r}; the model's inputs besides the sequences: {listed}")
    missing = [name for name in expected if name not in values]
    if missing:
        name = missing[0]
        shape = (count,) + expected[name].shape_at(length)
        raise InputError(
            f"the model has inputs besides the sequences ({', '.join(expected)}); give each its values per "
            f"sequence: extra_inputs={{{name!r}: array of shape {shape}}} (CLI: --extra-inputs {name}=FILE.npy)"
        )
    checked = {}
    for name, extra in expected.items():
        value = np.asarray(values[name])
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise InputError(f"extra input {name!r} is not numeric (dtype {value.dtype})")
        shape = (count,) + extra.shape_at(length)
        if value.ndim == 0 or len(value) != count:
            rows = "a scalar" if value.ndim == 0 else f"{len(value)} rows"
            raise InputError(f"extra input {name!r} has {rows} for {count} sequences")
        if value.shape != shape:
            raise InputError(f"extra input {name!r} has shape {value.shape}; the model takes {shape}")
        if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            raise InputError(f"extra input {name!r} contains NaN or infinite values")
        _check_cast(name, value, np.dtype(extra.dtype))
        checked[name] = np.ascontiguousarray(value, dtype=extra.dtype)
    return checked


def _check_cast(name, value, dtype):
    """Refuse values that the cast to the model's ``dtype`` would change: complex values for a real input, fractions
    for an integer one, and values beyond the range of ``dtype`` (an integer cast would wrap them, a float one make
    them infinite)."""
    if np.issubdtype(value.dtype, np.complexfloating) and not np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"extra input {name!r} holds complex values (dtype {value.dtype}); the model takes {dtype}")
    if (np.issubdtype(dtype, np.integer) and np.issubdtype(value.dtype, np.floating)
            and not (value == np.round(value)).all()):
        raise InputError(f"extra input {name!r} has values that are not whole numbers; the model takes {dtype}")
    limits = _limits(dtype)
    if limits and value.size and np.issubdtype(value.dtype, np.number) and not np.iscomplexobj(value):
        lowest, highest = limits
        low, high = value.min().item(), value.max().item()  # Python numbers: int and float compare exactly
        if low < lowest or high > highest:
            bad = low if low < lowest else high
            shown = [f"{int(v)}" if np.issubdtype(dtype, np.integer) else f"{v:g}" for v in (bad, lowest, highest)]
            raise InputError(f"extra input {name!r} has values outside the range of {dtype} ({shown[0]} outside "
                             f"[{shown[1]}, {shown[2]}]); the model takes {dtype}")


def _limits(dtype):
    """(lowest, highest) value of a numpy integer or float ``dtype``, as Python numbers; None for other types."""
    if np.issubdtype(dtype, np.integer):
        return int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    if np.issubdtype(dtype, np.floating):
        return -float(np.finfo(dtype).max), float(np.finfo(dtype).max)
    return None


def zero_extra_inputs(model, count, length):
    """Zeros for every extra input of ``model``, for probing shapes."""
    return {extra.name: np.zeros((count,) + extra.shape_at(length), extra.dtype) for extra in model.extra_inputs}
