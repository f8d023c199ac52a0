"""The one place that decides whether fast ISM runs a model or falls back to exact naive ISM: on a declared
UnsupportedGraphError only (a fixed batch loading could not free, a tensor without the batch first, ...), with a
notice saying why. Any other exception is a bug and propagates."""

import warnings

from ..errors import OnnxismWarning, UnsupportedGraphError
from ..fast.executor import FastISM, compiled_plan, fast_workers
from ..runtime.sessions import parse_device
from .naive import NaiveISM


def fast_or_reason(build, model, length, outputs):
    """(``build(model, length, outputs)``, None), or (None, why fast ISM cannot run ``model``)."""
    try:
        return build(model, length, outputs), None
    except UnsupportedGraphError as err:
        return None, str(err)


def fast_scorer(model, outputs, shapes, window, *, length, device, batch_size, default_batch, workers):
    """FastISM on the model's compiled plan, or NaiveISM with a notice where fast ISM cannot run it.
    ``default_batch``: ``batch_size`` is the generic default, which fast replaces with its own on the CPU."""
    threads = fast_workers(workers, device)[1]
    compiled, why = fast_or_reason(lambda *args: compiled_plan(*args, device, threads), model, length, outputs)
    if compiled is None:
        warnings.warn(f"fast ISM cannot analyse {model.source} ({why}); using exact naive ISM", OnnxismWarning,
                      stacklevel=6)
        return NaiveISM(model, outputs, shapes, window, device=device, batch_size=batch_size, workers=workers)
    own = default_batch and parse_device(device)[0] == "cpu"
    return FastISM(model, compiled, outputs, shapes, window, device=device,
                   batch_size=None if own else batch_size, workers=workers)
