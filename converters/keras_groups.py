"""Grouped Keras convolutions rewritten before tf2onnx into ops it converts.

Keras 3 computes a ``Conv1D`` with ``groups`` > 1 (CREsted's LegNet writes its depthwise convolutions so) through an
XLA-compiled function, which tf2onnx 1.17 leaves in its output as a ``StatefulPartitionedCall``. ``ungroup`` clones
the model with each such layer replaced by ``UngroupedConv1D``, which computes the same function from the layer's
own weights with ``keras.ops``: a depthwise convolution where every group is one input channel (tf2onnx's Conv with
``group``), else one convolution per group, concatenated. Invariant: the clone computes what the model computes
(the converter's check compares the ONNX model with the original model).
"""

import numpy as np


def grouped_convolutions(model):
    """The names of the layers of ``model`` (nested models included) that are Conv1D with groups > 1."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += grouped_convolutions(layer)
        elif _is_grouped(layer, keras):
            found.append(layer.name)
    return found


def ungroup(model):
    """``model`` itself where it has no grouped Conv1D, else a clone with each one replaced by ``UngroupedConv1D``
    (same name, same function)."""
    import keras

    if not grouped_convolutions(model):
        return model
    layer_class = _layer_class(keras)

    def replace(layer):
        if _is_grouped(layer, keras):
            return layer_class.from_grouped(layer)
        return layer

    return keras.models.clone_model(model, clone_function=replace, recursive=True)


def _is_grouped(layer, keras):
    return type(layer) is keras.layers.Conv1D and layer.groups > 1


def _layer_class(keras):
    """The replacement layer class, made on first use (it needs Keras)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    ops = keras.ops

    class UngroupedConv1D(keras.layers.Layer):
        """A grouped channels-last Conv1D's function from its weights (kernel (k, in / groups, filters), bias)."""

        def __init__(self, kernel, bias, *, groups, strides, padding, dilation_rate, activation, **kwargs):
            super().__init__(**kwargs)
            self.kernel_value = np.asarray(kernel, np.float32)
            self.bias_value = None if bias is None else np.asarray(bias, np.float32)
            self.groups, self.strides, self.padding = groups, strides, padding
            self.dilation_rate, self.activation = dilation_rate, keras.activations.get(activation)

        @classmethod
        def from_grouped(cls, layer):
            if layer.data_format != "channels_last":
                raise ValueError(f"grouped Conv1D {layer.name!r} is channels-first; only channels-last is rewritten")
            weights = layer.get_weights()
            return cls(weights[0], weights[1] if layer.use_bias else None, groups=layer.groups,
                       strides=layer.strides[0], padding=layer.padding, dilation_rate=layer.dilation_rate[0],
                       activation=layer.activation, name=layer.name)

        def call(self, x):
            k, per_group, filters = self.kernel_value.shape
            padding = self.padding
            if padding == "causal":  # left padding, then a valid convolution
                x = ops.pad(x, [[0, 0], [(k - 1) * self.dilation_rate, 0], [0, 0]])
                padding = "valid"
            options = dict(strides=self.strides, padding=padding, dilation_rate=self.dilation_rate)
            if per_group == 1:  # depthwise: output channel c * multiplier + m reads input channel c
                kernel = self.kernel_value.reshape(k, self.groups, filters // self.groups)
                y = ops.depthwise_conv(x, ops.convert_to_tensor(kernel), **options)
            else:
                step = filters // self.groups
                parts = [ops.conv(x[..., g * per_group:(g + 1) * per_group],
                                  ops.convert_to_tensor(self.kernel_value[..., g * step:(g + 1) * step]), **options)
                         for g in range(self.groups)]
                y = ops.concatenate(parts, axis=-1)
            if self.bias_value is not None:
                y = y + ops.convert_to_tensor(self.bias_value)
            return self.activation(y)

    _CLASS = UngroupedConv1D
    return _CLASS


_CLASS = None
