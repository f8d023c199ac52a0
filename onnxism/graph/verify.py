"""Whether a rewrite kept a model's outputs: the check every loading rewrite passes before it is kept.

A rewritten model is kept only where, on random inputs at every length the model runs at (two at least for a model
of any length), each of its outputs equals the model's own: exactly where an output is not floating point, and to
TOLERANCE of its largest magnitude where it is (onnxruntime may block a larger batch's products differently).
"""

import numpy as np
import onnx

from ..runtime.rows import padded_rows
from ..runtime.sessions import import_onnxruntime, make_session
from .weightless import expose_node_outputs

#: Outputs of a rewritten model must equal the model's own to this relative tolerance (of each output's largest
#: magnitude).
TOLERANCE = 1e-4


def enough_lengths(checked, cases):
    """Whether a rewrite checked at ``len(checked)`` of the lengths of ``cases`` (those where the model runs) was
    checked at enough of them: the one of a model of fixed length, two at least for a model of any length, since a
    shape the rewrite read at one length and wrote into the graph is wrong at any other."""
    return len(checked) >= min(2, len(cases))


def same_model_outputs(proto, rewritten, cases, fixed_batch=None):
    """Whether ``rewritten`` computes ``proto``'s outputs (``same_outputs``) on each set of feeds in ``cases`` (one
    per length) where ``proto`` runs, and those are enough (``enough_lengths``); ``proto`` is run in batches of
    ``fixed_batch`` rows (padded) where it has one. One session at a time is held."""
    quiet = import_onnxruntime().RunOptions()
    quiet.log_severity_level = 4  # a failed run is an answer here, not an error to log
    try:
        session = make_session(proto.SerializeToString(), "cpu", optimize=False)
    except Exception:  # noqa: BLE001 - onnxruntime's own types
        return False
    names = [output.name for output in session.get_outputs()]
    wanted = []
    for feeds in cases:
        try:
            wanted.append((feeds, _outputs(session, names, feeds, quiet, fixed_batch)))
        except Exception:  # noqa: BLE001 - the model does not run at this length: not a case to check
            continue
    del session
    if not enough_lengths(wanted, cases):
        return False
    try:
        session = make_session(rewritten.SerializeToString(), "cpu", optimize=False)
        return all(same_outputs(session.run(names, feeds, quiet), want) for feeds, want in wanted)
    except Exception:  # noqa: BLE001 - onnxruntime's own types: the rewritten graph does not run
        return False


def tensor_values(proto, feeds, names=None):
    """{name: value} of the tensors ``names`` of ``proto`` on ``feeds``, from one run without graph optimisations;
    with ``names`` None, of every node output, and the feeds. onnxruntime's errors pass through (a model that does
    not run on these feeds)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    if names is None:
        expose_node_outputs(copy.graph)
    else:
        declared = {output.name for output in copy.graph.output}
        copy.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names if name not in declared)
    session = make_session(copy.SerializeToString(), "cpu", optimize=False)
    wanted = [output.name for output in session.get_outputs()] if names is None else list(names)
    values = dict(zip(wanted, session.run(wanted, feeds)))
    if names is None:
        values.update(feeds)
    return values


def _outputs(session, names, feeds, quiet, batch):
    """The outputs ``names`` on ``feeds``: in one run, or in runs of ``batch`` rows (the last padded)."""
    if batch is None:
        return session.run(names, feeds, quiet)
    rows = len(next(iter(feeds.values())))
    parts = [[] for _ in names]
    for first in range(0, rows, batch):
        chunk = padded_rows({name: value[first:first + batch] for name, value in feeds.items()}, batch)
        for k, value in enumerate(session.run(names, chunk, quiet)):
            parts[k].append(np.asarray(value)[: min(batch, rows - first)])
    return [np.concatenate(part) for part in parts]


def same_outputs(got, want):
    """Whether each output in ``got`` has the shape and type of the one in ``want`` and equals it: within
    TOLERANCE of its largest magnitude (at least 1) where floating point, exactly otherwise."""
    for value, expected in zip(got, want):
        value, expected = np.asarray(value), np.asarray(expected)
        if value.shape != expected.shape or value.dtype != expected.dtype:
            return False
        if np.issubdtype(expected.dtype, np.floating):
            scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
            if not np.allclose(value, expected, rtol=0, atol=TOLERANCE * scale, equal_nan=True):
                return False
        elif not np.array_equal(value, expected):
            return False
    return True
