"""ONNX translations of the ATen ops that torch's exporters lack and that sequence models use: ``lgamma`` and
``xlogy`` (enformer-pytorch's gamma positional features, which gReLU's Enformer shares), and for the dynamo exporter
``amax`` over all axes (``torch.amax(t)``, which onnxscript's translation refuses without ``dim``).

ONNX has no log-gamma op: ``lgamma`` is computed in float64 with the Lanczos approximation (g = 7, 9 terms) for
x >= 1/2 and the reflection formula below, then cast back to the input's type; it is +inf at the poles (0, -1, -2,
...) as torch's is. Against ``torch.lgamma`` on [1e-3, 1e6] and negative non-integers it is within 2.2e-15 of
max(1, |lgamma(x)|) in float64 and 7e-8 in float32, i.e. float32 rounding (tests/zoo/test_torch_ops.py).
``xlogy(x, y)`` is ``x * log(y)``, 0 where x == 0, NaN where y is NaN, as torch defines it.

One algorithm serves both exporters through a small adapter: onnxscript ops for the dynamo exporter's
``custom_translation_table``, ``g.op`` for the legacy exporter's ``register_custom_op_symbolic``.
"""

import math

import numpy as np

_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)


def lgamma_graph(ops, x):
    """log|Gamma(x)| built with ``ops`` (an adapter, below) on the value ``x``; float64 inside."""
    z = ops.cast64(x)
    reflect = ops.less(z, ops.const(0.5))
    w = ops.where(reflect, ops.sub(ops.const(1.0), z), z)  # >= 1/2
    w = ops.sub(w, ops.const(1.0))
    series = ops.const(_LANCZOS[0])
    for index, coefficient in enumerate(_LANCZOS[1:], start=1):
        series = ops.add(series, ops.div(ops.const(coefficient), ops.add(w, ops.const(float(index)))))
    t = ops.add(w, ops.const(_G + 0.5))
    direct = ops.add(ops.add(ops.const(0.5 * math.log(2 * math.pi)), ops.mul(ops.add(w, ops.const(0.5)), ops.log(t))),
                     ops.sub(ops.log(series), t))
    # Gamma(z) Gamma(1 - z) = pi / sin(pi z)
    sine = ops.abs(ops.sin(ops.mul(ops.const(math.pi), z)))
    reflected = ops.sub(ops.log(ops.div(ops.const(math.pi), sine)), direct)
    value = ops.where(reflect, reflected, direct)
    pole = ops.and_(ops.less(z, ops.const(0.5)), ops.equal(z, ops.floor(z)))
    return ops.cast_like(ops.where(pole, ops.const(math.inf), value), x)


def xlogy_graph(ops, x, y):
    """x * log(y), 0 where x == 0 (y not NaN), NaN where y is NaN: torch.xlogy."""
    zero = ops.cast_like(ops.const32(0.0), y)
    product = ops.mul(x, ops.log(y))
    return ops.where(ops.isnan(y), y, ops.where(ops.equal(x, ops.cast_like(ops.const32(0.0), x)), zero, product))


# the adapters' element-wise ops: method name -> ONNX op
_OPS = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "log": "Log", "sin": "Sin", "abs": "Abs",
        "less": "Less", "equal": "Equal", "floor": "Floor", "where": "Where", "and_": "And", "isnan": "IsNaN"}


class _ScriptOps:
    """The adapter over onnxscript's opset 18 (traced by the dynamo exporter)."""

    def __init__(self):
        from onnxscript import opset18

        self.op = opset18

    def const(self, value):
        return self.op.Constant(value=_tensor(np.float64(value)))

    def const32(self, value):
        return self.op.Constant(value=_tensor(np.float32(value)))

    def cast64(self, x):
        return self.op.Cast(x, to=11)

    def cast_like(self, x, like):
        return self.op.CastLike(x, like)

    def __getattr__(self, name):
        if name not in _OPS:
            raise AttributeError(name)
        return getattr(self.op, _OPS[name])


class _LegacyOps:
    """The adapter over the legacy exporter's graph context ``g``."""

    def __init__(self, g):
        self.g = g

    def const(self, value):
        import torch

        return self.g.op("Constant", value_t=torch.tensor(value, dtype=torch.float64))

    def const32(self, value):
        import torch

        return self.g.op("Constant", value_t=torch.tensor(value, dtype=torch.float32))

    def cast64(self, x):
        return self.g.op("Cast", x, to_i=11)

    def cast_like(self, x, like):
        return self.g.op("CastLike", x, like)

    def __getattr__(self, name):
        if name not in _OPS:
            raise AttributeError(name)
        return lambda *args: self.g.op(_OPS[name], *args)


def _tensor(array):
    import onnx.numpy_helper

    return onnx.numpy_helper.from_array(np.asarray(array))


def translation_table():
    """The dynamo exporter's ``custom_translation_table`` entries: {OpOverload: onnxscript function}."""
    import torch

    def lgamma(self):
        return lgamma_graph(_ScriptOps(), self)

    def xlogy(self, other):
        return xlogy_graph(_ScriptOps(), self, other)

    def amax(self, dim=(), keepdim=False):  # onnxscript's aten_amax requires ``dim``; torch's default () is all axes
        from onnxscript import opset18

        if not dim:
            return opset18.ReduceMax(self, keepdims=int(keepdim))
        return opset18.ReduceMax(self, opset18.Constant(value_ints=list(dim)), keepdims=int(keepdim))

    aten = torch.ops.aten
    table = {aten.lgamma.default: lgamma, aten.xlogy.Tensor: xlogy, aten.amax.default: amax}
    prims = getattr(torch.ops, "prims", None)
    if prims is not None and hasattr(prims, "lgamma"):  # what aten.lgamma decomposes to
        table[prims.lgamma.default] = lgamma
    return table


_REGISTERED = set()


def register_legacy_symbolics(opset):
    """Register ``aten::lgamma`` and ``aten::xlogy`` with the legacy exporter for ``opset`` (once per opset)."""
    if opset in _REGISTERED:
        return
    import torch

    def lgamma(g, self):
        return lgamma_graph(_LegacyOps(g), self)

    def xlogy(g, self, other):
        return xlogy_graph(_LegacyOps(g), self, other)

    torch.onnx.register_custom_op_symbolic("aten::lgamma", lgamma, opset)
    torch.onnx.register_custom_op_symbolic("aten::xlogy", xlogy, opset)
    _REGISTERED.add(opset)
