"""A framework-neutral description of a sequence model, with its weights.

A :class:`Spec` is a small DAG of layers over tensors of shape (channels, length). Weights are drawn once from a
seeded NumPy generator in neutral layouts, so the PyTorch and Keras builds of one spec compute the same function:
conv (out, in, k); conv_transpose (in, out, k); dense (out, in) with a flattened input ordered position-major
(index = l * C + c, the Keras order); batch norm (gamma, beta, mean, var). Biases are non-zero.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Layer:
    """One node: ``kind``, the indices of its input nodes, hyper-parameters and neutral weights."""

    kind: str
    inputs: list
    params: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    shape: tuple = ()  # (channels, length), or (units,) after flatten/dense/global pooling


class Spec:
    """Build a model layer by layer; every method returns the index of the new node."""

    def __init__(self, name, length, *, seed=0):
        self.name = name
        self.length = length
        self.layers = [Layer("input", [], shape=(4, length))]
        self.outputs = {}
        self._rng = np.random.default_rng(seed)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _add(self, kind, inputs, shape, params=None, weights=None):
        self.layers.append(Layer(kind, list(inputs), params or {}, weights or {}, tuple(shape)))
        return len(self.layers) - 1

    def _normal(self, shape, scale):
        return (self._rng.standard_normal(shape) * scale).astype(np.float32)

    def shape(self, x):
        return self.layers[x].shape

    # -- layers ------------------------------------------------------------------------------------------------
    def conv(self, x, filters, kernel, *, dilation=1, stride=1, padding="same"):
        channels, length = self.shape(x)
        span = (kernel - 1) * dilation + 1
        if padding == "same":
            out_length = -(-length // stride)
        else:
            out_length = (length - span) // stride + 1
        weights = {
            "w": self._normal((filters, channels, kernel), np.sqrt(2.0 / (channels * kernel))),
            "b": self._normal((filters,), 0.1),
        }
        params = {"filters": filters, "kernel": kernel, "dilation": dilation, "stride": stride, "padding": padding}
        return self._add("conv", [x], (filters, out_length), params, weights)

    def conv_transpose(self, x, filters, kernel):
        """Stride-1 transposed convolution keeping the length ('same')."""
        channels, length = self.shape(x)
        weights = {
            "w": self._normal((channels, filters, kernel), np.sqrt(1.0 / (channels * kernel))),
            "b": self._normal((filters,), 0.1),
        }
        return self._add("conv_transpose", [x], (filters, length), {"filters": filters, "kernel": kernel}, weights)

    def batch_norm(self, x):
        channels = self.shape(x)[0]
        weights = {
            "gamma": (1.0 + self._normal((channels,), 0.1)),
            "beta": self._normal((channels,), 0.1),
            "mean": self._normal((channels,), 0.1),
            "var": (1.0 + np.abs(self._normal((channels,), 0.2))),
        }
        return self._add("batch_norm", [x], self.shape(x), {"eps": 1e-3}, weights)

    def activation(self, x, function):
        assert function in ("relu", "sigmoid", "exp", "softplus", "tanh")
        return self._add(function, [x], self.shape(x))

    def relu(self, x):
        return self.activation(x, "relu")

    def max_pool(self, x, size):
        channels, length = self.shape(x)
        return self._add("max_pool", [x], (channels, length // size), {"size": size})

    def avg_pool(self, x, size):
        channels, length = self.shape(x)
        return self._add("avg_pool", [x], (channels, length // size), {"size": size})

    def global_avg_pool(self, x):
        return self._add("global_avg_pool", [x], (self.shape(x)[0],))

    def flatten(self, x):
        channels, length = self.shape(x)
        return self._add("flatten", [x], (channels * length,), {"channels": channels, "length": length})

    def dense(self, x, units):
        (features,) = self.shape(x)
        weights = {"w": self._normal((units, features), np.sqrt(2.0 / features)), "b": self._normal((units,), 0.1)}
        return self._add("dense", [x], (units,), {"units": units}, weights)

    def add(self, *xs):
        return self._add("add", list(xs), self.shape(xs[0]))

    def squeeze_channels(self, x):
        """(1, L) -> (L,): a single-track profile as a flat vector (Keras Flatten of (L, 1))."""
        channels, length = self.shape(x)
        assert channels == 1
        return self._add("flatten", [x], (length,), {"channels": 1, "length": length})

    def output(self, name, x):
        self.outputs[name] = x
        return x

    def flatten_source(self, layer):
        """For a dense layer fed by flatten: (channels, length) of the flattened tensor, else None."""
        source = self.layers[layer.inputs[0]]
        return (source.params["channels"], source.params["length"]) if source.kind == "flatten" else None
