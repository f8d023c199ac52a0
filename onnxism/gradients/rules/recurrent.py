"""Vector-Jacobian rules of the recurrent layers RNN, GRU and LSTM, with respect to the sequence X alone.

Each direction is two Scans over time: a forward Scan recomputes the cell (from X, the weights and the initial
state) and keeps, per step, what the derivative reads (gates, previous state); a backward Scan runs the reverse
recurrence from the last step to the first, carrying the cotangent of the hidden state (and of the cell state) with
the seed axis S in front, and writes per step the cotangent of the gates' input pre-activations; their product with
W is X's cotangent. A Scan rather than an unrolled graph: the node count does not grow with the length, and the
Scans run only the time axis first (onnx's reference evaluator supports no other), reversals being explicit Slices.

Supported: the forms torch (both exporters) and tf2onnx write: time first (``layout`` 0), forward, reverse and
bidirectional, GRU's ``linear_before_reset`` 0 or 1, bias and initial states given or not, the default activations
(named or not). Refused by name: ``layout`` 1 (which onnxruntime does not run), ``sequence_lens``, ``clip``, other
activations, LSTM's ``input_forget`` and peepholes, and weights or initial states computed from the sequence.

Invariant: the cotangent of X is d/dX of sum(<ct_Y, Y> + <ct_Y_h, Y_h> (+ <ct_Y_c, Y_c>)) for the node as
onnxruntime computes it.
"""

import numpy as np
from onnx import helper

from ...graph.emitter import Emitter
from ...graph.nodes import attributes
from .common import optional_input
from .registry import rule

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_STATES = {"RNN": 1, "GRU": 1, "LSTM": 2}
_DEFAULT_ACTIVATIONS = {"RNN": ["tanh"], "GRU": ["sigmoid", "tanh"], "LSTM": ["sigmoid", "tanh", "tanh"]}


@rule("RNN", "GRU", "LSTM")
def _recurrent(ctx, node, gouts):
    """Cotangent of X (input 0) through an RNN, GRU or LSTM: per direction, a forward Scan re-running the cell, then
    a backward Scan running the reverse recurrence."""
    if not ctx.needs(node.input[0]) or all(g is None for g in gouts):
        return {}
    attrs = _checked(ctx, node)
    op, x = node.op_type, node.input[0]  # x: (T, N, I)
    steps, hidden = ctx.shape(x)[0], attrs["hidden_size"]
    rows = ctx.op("Slice", [ctx.shape_of(x), ctx.ints([1]), ctx.ints([2])], stem="rnn_N")
    state_shape = ctx.op("Concat", [rows, ctx.ints([hidden])], axis=0, stem="rnn_state_shape")
    ct_state_shape = ctx.op("Concat", [ctx.seed_count, state_shape], axis=0, stem="rnn_ct_state_shape")
    count = 2 if attrs.get("direction", "forward") == "bidirectional" else 1
    total = []
    for d in range(count):
        reverse = attrs.get("direction") == "reverse" or d == 1
        weights = _Weights(ctx, node, d, state_shape)
        projected = weights.input_projection(x)
        processed = _reversed(ctx, projected) if reverse else projected
        saved = _forward_scan(ctx, op, attrs, weights, processed)  # per step, in processing order
        ct_steps = _ct_of_steps(ctx, gouts[0], d, steps, ct_state_shape)  # (T, S, N, H), time order
        last = (list(gouts[1:]) + [None, None])[:_STATES[op]]  # Y_h (and Y_c): absent outputs have none
        ct_last = [_ct_of_state(ctx, g, d, ct_state_shape) for g in last]
        # the backward Scan walks the processing order backwards: time order for the reverse direction
        ct_pre = _backward_scan(ctx, op, attrs, weights, [_reversed(ctx, s) for s in saved],
                                ct_steps if reverse else _reversed(ctx, ct_steps), ct_last)
        ct_pre = ct_pre if reverse else _reversed(ctx, ct_pre)  # (T, S, N, G*H), time order
        total.append(ctx.op("MatMul", [ct_pre, weights.w], stem="rnn_ct_x"))  # (T, S, N, I)
    return {0: ctx.transpose(ctx.sum(total), [1, 0, 2, 3])}


def _checked(ctx, node):
    """The node's attributes (``hidden_size`` read off R where not given), after refusing what the rule does not
    compute."""
    attrs = attributes(node)
    attrs.setdefault("hidden_size", ctx.shape(node.input[2])[2])  # R: (D, G*H, H)
    op = node.op_type
    if attrs.get("layout", 0):
        ctx.refuse(node, "layout=1 (batch first) is not supported; onnxruntime runs recurrent ops time first only")
    if optional_input(node, 4) is not None:
        ctx.refuse(node, "sequence_lens (sequences of several lengths in a batch) is not supported")
    if attrs.get("clip") is not None:
        ctx.refuse(node, "a clipped cell (clip) is not supported")
    count = 2 if attrs.get("direction", "forward") == "bidirectional" else 1
    given = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    if given and [a.lower() for a in given] != _DEFAULT_ACTIVATIONS[op] * count:
        ctx.refuse(node, f"activations {given} are not supported (only the defaults, "
                         f"{'/'.join(a.capitalize() for a in _DEFAULT_ACTIVATIONS[op])})")
    if op == "LSTM" and attrs.get("input_forget", 0):
        ctx.refuse(node, "input_forget=1 (coupled input and forget gates) is not supported")
    if op == "LSTM" and optional_input(node, 7) is not None:
        ctx.refuse(node, "peephole weights (input P) are not supported")
    for index, what in ((1, "W"), (2, "R"), (3, "B"), (5, "initial_h"), (6, "initial_c")):
        name = optional_input(node, index)
        if name is not None and ctx.needs(name):
            ctx.refuse(node, f"its {what} depends on the sequence (only the gradient along X is computed)")
    return attrs


class _Weights:
    """Direction ``d``'s weights as tensors of the graph: W (G*H, I), R (G*H, H), R transposed, the biases
    (G*H,) each (absent: None) and the initial states (N, H)."""

    def __init__(self, ctx, node, d, state_shape):
        self.ctx = ctx
        index = ctx.const(np.int64(d), "rnn_direction")

        def pick(name):
            return ctx.op("Gather", [name, index], axis=0, stem="rnn_weight")

        self.w, self.r = pick(node.input[1]), pick(node.input[2])
        self.r_t = ctx.transpose(self.r, [1, 0])
        gates = _GATES[node.op_type] * ctx.shape(node.input[2])[2]
        bias = optional_input(node, 3)
        self.w_bias = self.r_bias = None
        if bias is not None:
            both = pick(bias)
            self.w_bias = ctx.slice(both, 0, gates, 0, "rnn_w_bias")
            self.r_bias = ctx.slice(both, gates, 2 * gates, 0, "rnn_r_bias")
        self.initial = []
        for slot in (5, 6)[:_STATES[node.op_type]]:
            name = optional_input(node, slot)
            self.initial.append(ctx.op("Expand", [ctx.scalar(0.0), state_shape], stem="rnn_zero_state")
                                if name is None else pick(name))

    def input_projection(self, time_major):
        """X W^T (+ W's bias): (T, N, G*H)."""
        ctx = self.ctx
        projected = ctx.op("MatMul", [time_major, ctx.transpose(self.w, [1, 0])], stem="rnn_xw")
        return projected if self.w_bias is None else ctx.op("Add", [projected, self.w_bias], stem="rnn_xw")


def _reversed(ctx, value):
    """``value`` with its first (time) axis reversed."""
    return ctx.op("Slice", [value, ctx.ints([-1]), ctx.ints([np.iinfo(np.int64).min]), ctx.ints([0]),
                            ctx.ints([-1])], stem="rnn_reversed")


def _ct_of_steps(ctx, g, d, steps, ct_state_shape):
    """Y's cotangent for direction ``d`` as (T, S, N, H) in time order (zeros where Y has none)."""
    if g is None:
        shape = ctx.op("Concat", [ctx.ints([steps]), ct_state_shape], axis=0, stem="rnn_ct_steps_shape")
        return ctx.op("Expand", [ctx.scalar(0.0), shape], stem="rnn_ct_steps")
    picked = ctx.op("Gather", [g, ctx.const(np.int64(d), "rnn_direction")], axis=2, stem="rnn_ct_y")  # (S, T, N, H)
    return ctx.transpose(picked, [1, 0, 2, 3])


def _ct_of_state(ctx, g, d, ct_state_shape):
    """Y_h's (or Y_c's) cotangent for direction ``d`` as (S, N, H) (zeros where it has none)."""
    if g is None:
        return ctx.op("Expand", [ctx.scalar(0.0), ct_state_shape], stem="rnn_ct_state")
    return ctx.op("Gather", [g, ctx.const(np.int64(d), "rnn_direction")], axis=1, stem="rnn_ct_state")


def _scan(ctx, states, scanned, body, stem):
    """A Scan over the first axis of ``scanned`` with loop ``states``; ``body(e, states, steps)`` emits the step
    with Emitter ``e`` and returns (new states, per-step outputs). Returns the per-step outputs, stacked."""
    e = Emitter(ctx.prefix, constant_nodes=True, opset=ctx.opset)
    e.taken = ctx.taken  # one name space with the outer graph, whose tensors the body reads
    state_in = [e.fresh(f"{stem}_state") for _ in states]
    step_in = [e.fresh(f"{stem}_step") for _ in scanned]
    new_states, step_out = body(e, state_in, step_in)
    outputs = [e.op("Identity", [name], stem=f"{stem}_out") for name in list(new_states) + list(step_out)]

    def info(name):
        return helper.make_tensor_value_info(name, ctx.onnx_dtype, None)

    graph = helper.make_graph(e.nodes, ctx.fresh(f"{stem}_body"), [info(n) for n in state_in + step_in],
                              [info(n) for n in outputs])
    results = ctx.op("Scan", list(states) + list(scanned), outputs=len(outputs), stem=stem, body=graph,
                     num_scan_inputs=len(scanned))
    return results[len(states):]


def _gates(e, value, count, size):
    return [e.slice(value, k * size, (k + 1) * size, -1, "rnn_gate") for k in range(count)]


def _forward_scan(ctx, op, attrs, weights, processed):
    """Per step (processing order): RNN (h), GRU (z, r, n, h_prev[, R_h h_prev + Rb_h]), LSTM (i, o, f, g, c_prev,
    tanh c)."""
    hidden, reset_after = attrs["hidden_size"], attrs.get("linear_before_reset", 0)

    def rnn(e, states, steps):
        (h_prev,), (xw,) = states, steps
        a = e.op("Add", [xw, e.op("MatMul", [h_prev, weights.r_t])])
        h = e.op("Tanh", [a if weights.r_bias is None else e.op("Add", [a, weights.r_bias])])
        return [h], [h]

    def gru(e, states, steps):
        (h_prev,), (xw,) = states, steps
        hr = e.op("MatMul", [h_prev, weights.r_t])
        hr = hr if weights.r_bias is None else e.op("Add", [hr, weights.r_bias])
        xz, xr, xh = _gates(e, xw, 3, hidden)
        hz, hr_, hh = _gates(e, hr, 3, hidden)
        z = e.op("Sigmoid", [e.op("Add", [xz, hz])])
        r = e.op("Sigmoid", [e.op("Add", [xr, hr_])])
        if reset_after:
            inner = e.op("Mul", [r, hh])
        else:  # R_h (r * h_prev) + Rb_h: hh minus its R_h h_prev part
            r_h = e.slice(weights.r_t, 2 * hidden, 3 * hidden, 1, "rnn_r_h")
            inner = e.op("MatMul", [e.op("Mul", [r, h_prev]), r_h])
            if weights.r_bias is not None:
                inner = e.op("Add", [inner, e.slice(weights.r_bias, 2 * hidden, 3 * hidden, 0, "rnn_rb_h")])
        n = e.op("Tanh", [e.op("Add", [xh, inner])])
        h = e.op("Add", [n, e.op("Mul", [z, e.op("Sub", [h_prev, n])])])
        return [h], [z, r, n, h_prev] + ([hh] if reset_after else [])

    def lstm(e, states, steps):
        (h_prev, c_prev), (xw,) = states, steps
        a = e.op("Add", [xw, e.op("MatMul", [h_prev, weights.r_t])])
        a = a if weights.r_bias is None else e.op("Add", [a, weights.r_bias])
        i, o, f, g = _gates(e, a, 4, hidden)
        i, o, f, g = (e.op("Sigmoid", [i]), e.op("Sigmoid", [o]), e.op("Sigmoid", [f]), e.op("Tanh", [g]))
        c = e.op("Add", [e.op("Mul", [f, c_prev]), e.op("Mul", [i, g])])
        tanh_c = e.op("Tanh", [c])
        return [e.op("Mul", [o, tanh_c]), c], [i, o, f, g, c_prev, tanh_c]

    return _scan(ctx, weights.initial, [processed], {"RNN": rnn, "GRU": gru, "LSTM": lstm}[op], "rnn_forward")


def _backward_scan(ctx, op, attrs, weights, saved, ct_steps, ct_last):
    """Per step (backwards): the cotangent of the gates' pre-activations (S, N, G*H), from the cotangents of the
    step's output ``ct_steps`` and, as the initial carried state, of the last state(s) ``ct_last``."""
    hidden, reset_after = attrs["hidden_size"], attrs.get("linear_before_reset", 0)
    one = ctx.scalar(1.0)

    def sigmoid_grad(e, g, s):  # g * s * (1 - s)
        return e.op("Mul", [g, e.op("Mul", [s, e.op("Sub", [one, s])])])

    def tanh_grad(e, g, t):  # g * (1 - t^2)
        return e.op("Mul", [g, e.op("Sub", [one, e.op("Mul", [t, t])])])

    def rnn(e, states, steps):
        (carried,), (ct_y, h) = states, steps
        da = tanh_grad(e, e.op("Add", [ct_y, carried]), h)
        return [e.op("MatMul", [da, weights.r])], [da]

    def gru(e, states, steps):
        (carried,), (ct_y, z, r, n, h_prev, *hh) = states, steps
        dh = e.op("Add", [ct_y, carried])
        dn = tanh_grad(e, e.op("Sub", [dh, e.op("Mul", [dh, z])]), n)
        dz = sigmoid_grad(e, e.op("Mul", [dh, e.op("Sub", [h_prev, n])]), z)
        dh_prev = e.op("Mul", [dh, z])
        if reset_after:
            dr = sigmoid_grad(e, e.op("Mul", [dn, hh[0]]), r)
            through_r = e.op("MatMul", [e.op("Concat", [dz, dr, e.op("Mul", [dn, r])], axis=-1), weights.r])
        else:
            r_h = e.slice(weights.r, 2 * hidden, 3 * hidden, 0, "rnn_r_h")
            d_rh = e.op("MatMul", [dn, r_h])  # cotangent of r * h_prev
            dr = sigmoid_grad(e, e.op("Mul", [d_rh, h_prev]), r)
            dh_prev = e.op("Add", [dh_prev, e.op("Mul", [d_rh, r])])
            r_zr = e.slice(weights.r, 0, 2 * hidden, 0, "rnn_r_zr")
            through_r = e.op("MatMul", [e.op("Concat", [dz, dr], axis=-1), r_zr])
        return [e.op("Add", [dh_prev, through_r])], [e.op("Concat", [dz, dr, dn], axis=-1)]

    def lstm(e, states, steps):
        (carried_h, carried_c), (ct_y, i, o, f, g, c_prev, tanh_c) = states, steps
        dh = e.op("Add", [ct_y, carried_h])
        dc = e.op("Add", [carried_c, tanh_grad(e, e.op("Mul", [dh, o]), tanh_c)])
        da = e.op("Concat", [sigmoid_grad(e, e.op("Mul", [dc, g]), i), sigmoid_grad(e, e.op("Mul", [dh, tanh_c]), o),
                             sigmoid_grad(e, e.op("Mul", [dc, c_prev]), f), tanh_grad(e, e.op("Mul", [dc, i]), g)],
                  axis=-1)
        return [e.op("MatMul", [da, weights.r]), e.op("Mul", [dc, f])], [da]

    body = {"RNN": rnn, "GRU": gru, "LSTM": lstm}[op]
    return _scan(ctx, ct_last, [ct_steps] + list(saved), body, "rnn_backward")[0]
