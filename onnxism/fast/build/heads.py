"""Linear global layers (``fast/heads.py`` finds them) updated incrementally on the window of their input: the
reference output plus the layer applied to the window's change.

Invariant: the output equals the layer on the substituted input, since the layer is linear in it.
"""

import numpy as np

from ..heads import DenseHead


def linear_head(s, key, head):
    """A linear global layer as reference + the change on the window (``fast/heads.py``)."""
    if isinstance(head, DenseHead):
        if key == head.dense:
            dense_head(s, head)
        return  # the Flatten is folded into the dense weight rows
    change = s.change(head.source)
    summed = s.reduce("ReduceSum", change, [1], s.fresh("summed"))
    if head.scale != 1.0:
        scale = s.const(np.array(head.scale, np.float32), "scale")
        summed = s.node("Mul", [summed, scale], [s.fresh("scaled")])
    summed = s.reshape(summed, [-1] + list(s.shapes[head.output][1:]))
    s.node("Add", [s.per_sequence(head.output), summed], [head.output])


def dense_head(s, head):
    """y = y_ref + alpha * change @ W[window rows]; W[window rows] is the input ``window_input``, which the
    executor binds to the batch's rows of ``head.weight_rows`` in place (no copy)."""
    window = s.analysis.windows[head.source]
    head.window_input = f"weight_window__{len(s.dense_heads)}"
    s.dense_heads.append(head)
    width, row, out = window.width, head.weight_rows.shape[1], head.weight_rows.shape[2]
    change = s.reshape(s.change(head.source), [-1, width * row])
    rows = s.reshape(head.window_input, [width * row, out])
    product = s.node("MatMul", [change, rows], [s.fresh("dense_change")])
    if head.scale != 1.0:
        scale = s.const(np.array(head.scale, head.weight_rows.dtype), "alpha")
        product = s.node("Mul", [product, scale], [s.fresh("scaled")])
    s.node("Add", [s.per_sequence(head.output), product], [head.output])
