"""Random ONNX sequence models for the fuzz tests: a seed -> a convolutional graph of the layers fast ISM windows.

The graphs are written with onnx.helper directly (no exporter), so they reach forms the exporters do not: asymmetric
and auto pads, strided and dilated convolutions, overlapping and padded pools with ceil_mode, pads in every mode,
crops, upsampling, transposed convolutions, residual joins of earlier tensors, channel concats, per-position dense
layers and normalisations over the channels, and heads at several depths. Every op keeps the batch on axis 0 and
mixes no sequences, so ISM is well defined; the fuzz tests compare fast ISM with naive ISM on them.

``opset`` (18 by default) picks the op forms older exporters write: axes as attributes of the reductions (before 18;
ReduceSum before 13) and of Squeeze / Unsqueeze (before 13), Resize's required roi (before 13), and
LayerNormalization as its decomposition into ReduceMean, Sub, Mul, Sqrt and Div (before 17). The random draws do not
depend on it, so one seed is the same network at every opset.

``idioms`` also draws the forms exporters write for common torch and Keras code (``IDIOMS``: Einsums, expand_as,
F.normalize and LpNormalization, repeat and repeat_interleave, LpPool, constants broadcast along the batch): a
different network for the same seed, so the graphs without it, and every figure quoted for them, stay as they were.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ACTIVATIONS = ["Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Softplus", "Selu", "HardSigmoid", "Softsign"]


class RandomGraph:
    """Builds one graph: ``h`` is the current tensor (N, C, L), its channels ``c`` and length ``length`` known."""

    def __init__(self, seed, length, opset=18):
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes, self.initializers, self.outputs = [], [], []
        self.count = 0
        self.length = length
        self.layout = "NLC" if self.rng.random() < 0.5 else "NCL"
        shape = ["N", length, 4] if self.layout == "NLC" else ["N", 4, length]
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
        self.h, self.c = "x", 4
        if self.layout == "NLC":
            self.h = self.op("Transpose", [self.h], perm=[0, 2, 1])
        self.saved = []  # (name, channels, length) of earlier tensors, for residual joins

    # -- plumbing -------------------------------------------------------------------------------------------
    def name(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name("n"), **attrs))
        return out

    def const(self, array, dtype=np.float32):
        name = self.name("w")
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def weight(self, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) or 1
        scale = scale if scale is not None else 1.2 / np.sqrt(fan_in)
        return self.const(scale * self.rng.standard_normal(shape))

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    # -- op forms that changed between opsets -----------------------------------------------------------------
    def reduce(self, op_type, x, axes, keepdims):
        if self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13):
            return self.op(op_type, [x, self.const(axes, np.int64)], keepdims=keepdims)
        return self.op(op_type, [x], axes=axes, keepdims=keepdims)

    def squeeze(self, op_type, x, axes):
        if self.opset >= 13:
            return self.op(op_type, [x, self.const(axes, np.int64)])
        return self.op(op_type, [x], axes=axes)

    def layer_norm(self, x, scale, bias):
        """LayerNormalization over the last axis (epsilon 1e-5), or its decomposition before opset 17."""
        if self.opset >= 17:
            return self.op("LayerNormalization", [x, scale, bias], axis=-1)
        centred = self.op("Sub", [x, self.reduce("ReduceMean", x, [-1], 1)])
        variance = self.reduce("ReduceMean", self.op("Mul", [centred, centred]), [-1], 1)
        normalised = self.op("Div", [centred, self.op("Sqrt", [self.op("Add", [variance, self.const(1e-5)])])])
        return self.op("Add", [self.op("Mul", [normalised, scale]), bias])

    # -- layers (each updates h, c, length) ------------------------------------------------------------------
    def conv(self, out=None):
        rng = self.rng
        out = out or int(rng.integers(3, 9))
        kernel, dilation = int(rng.integers(1, 8)), int(self.pick([1, 1, 2, 3]))
        stride = int(self.pick([1, 1, 1, 2])) if self.length > 24 else 1
        span = (kernel - 1) * dilation + 1
        group = 1
        if out == self.c and self.c > 1 and rng.random() < 0.25:
            group = self.c  # depthwise
        attrs = {"kernel_shape": [kernel], "dilations": [dilation], "strides": [stride], "group": group}
        style = self.pick(["pads", "pads", "same", "valid"])
        if style == "same" and stride == 1:
            attrs["auto_pad"] = self.pick(["SAME_UPPER", "SAME_LOWER"])
            new = self.length
        elif style == "valid" and self.length - span >= 12:
            attrs["auto_pad"] = "VALID"
            new = (self.length - span) // stride + 1
        else:
            lo, hi = (int(v) for v in rng.integers(0, span, 2))
            attrs["pads"] = [lo, hi]
            new = (self.length + lo + hi - span) // stride + 1
        if new < 8:
            return
        inputs = [self.h, self.weight(out, self.c // group, kernel)]
        if rng.random() < 0.8:
            inputs.append(self.const(0.3 * rng.standard_normal(out)))
        self.h, self.c, self.length = self.op("Conv", inputs, **attrs), out, new

    def activation(self):
        kind = self.pick(ACTIVATIONS + ["Clip"])
        if kind == "Clip":
            self.h = self.op("Clip", [self.h, self.const(-1.0), self.const(1.5)])
        else:
            self.h = self.op(kind, [self.h])

    def batch_norm(self):
        c, rng = self.c, self.rng
        inputs = [self.h, self.const(1 + 0.2 * rng.standard_normal(c)), self.const(0.2 * rng.standard_normal(c)),
                  self.const(0.2 * rng.standard_normal(c)), self.const(0.5 + rng.random(c))]
        self.h = self.op("BatchNormalization", inputs)

    def pool(self):
        rng = self.rng
        kernel = int(self.pick([2, 3]))
        stride = int(self.pick([1, 2, kernel]))
        lo, hi = (int(v) for v in rng.integers(0, kernel, 2))
        ceil = int(rng.random() < 0.3)
        kind = self.pick(["MaxPool", "AveragePool"])
        attrs = {"kernel_shape": [kernel], "strides": [stride], "pads": [lo, hi], "ceil_mode": ceil}
        if kind == "AveragePool":
            attrs["count_include_pad"] = int(rng.random() < 0.5)
        span = self.length + lo + hi - kernel
        new = (-(-span // stride) if ceil else span // stride) + 1
        if ceil and (new - 1) * stride >= self.length + lo:
            return  # a last window starting in the right pad: onnx's shape inference and onnxruntime's kernel differ
        if new < 8:
            return
        self.h, self.length = self.op(kind, [self.h], **attrs), new

    def pad(self):
        rng = self.rng
        mode = self.pick(["constant", "reflect", "edge"])
        lo, hi = (int(v) for v in rng.integers(0, 4, 2))
        pads = self.const([0, 0, lo, 0, 0, hi], np.int64)
        inputs = [self.h, pads] + ([self.const(0.25)] if mode == "constant" else [])
        self.h, self.length = self.op("Pad", inputs, mode=mode), self.length + lo + hi

    def crop(self):
        lo, hi = (int(v) for v in self.rng.integers(0, 4, 2))
        if self.length - lo - hi < 8:
            return
        ends = self.length - hi if hi else 2 ** 62
        inputs = [self.h, self.const([lo], np.int64), self.const([ends], np.int64), self.const([2], np.int64)]
        self.h, self.length = self.op("Slice", inputs), self.length - lo - hi

    def upsample(self):
        if self.length > 40:
            return
        mode = self.pick(["nearest", "linear"])
        attrs = {"mode": mode}
        if mode != "nearest":
            attrs["coordinate_transformation_mode"] = self.pick(["half_pixel", "align_corners", "asymmetric"])
        scales = self.const([1.0, 1.0, 2.0])
        roi = "" if self.opset >= 13 else self.const(np.zeros(0))
        self.h, self.length = self.op("Resize", [self.h, roi, scales], **attrs), 2 * self.length

    def conv_transpose(self):
        rng = self.rng
        out, kernel, stride = int(rng.integers(3, 8)), int(rng.integers(2, 5)), int(self.pick([1, 2]))
        if self.length * stride > 80:
            stride = 1
        lo, hi = (int(v) for v in rng.integers(0, kernel, 2))
        new = (self.length - 1) * stride + kernel - lo - hi
        if new < 8:
            return
        inputs = [self.h, self.weight(self.c, out, kernel, scale=1.0 / np.sqrt(self.c * kernel)),
                  self.const(0.2 * rng.standard_normal(out))]
        self.h = self.op("ConvTranspose", inputs, kernel_shape=[kernel], strides=[stride], pads=[lo, hi])
        self.c, self.length = out, new

    def residual(self):
        same = [entry for entry in self.saved if entry[1:] == (self.c, self.length) and entry[0] != self.h]
        if not same:
            return
        other = self.pick(same)[0]
        kind = self.pick(["Add", "Add", "Mul", "Max", "Sub"])
        self.h = self.op(kind, [self.h, other])

    def branch_concat(self):
        source = self.h
        self.conv(out=int(self.rng.integers(2, 6)))
        if self.h == source or self.length != self.saved_length(source):
            return
        branch = self.op("Relu", [self.h])
        self.h = self.op("Concat", [source, branch], axis=1)
        self.c += self.c_of(source)

    def per_position(self):
        """A Dense over the channels at each position, or a normalisation over the channels (NLC inside)."""
        nlc = self.op("Transpose", [self.h], perm=[0, 2, 1])
        kind = self.pick(["MatMul", "LayerNormalization", "Softmax"])
        if kind == "MatMul":
            out = int(self.rng.integers(3, 8))
            nlc = self.op("Add", [self.op("MatMul", [nlc, self.weight(self.c, out)]),
                                  self.const(0.2 * self.rng.standard_normal(out))])
            self.c = out
        elif kind == "LayerNormalization":
            nlc = self.layer_norm(nlc, self.const(1 + 0.2 * self.rng.standard_normal(self.c)),
                                  self.const(0.2 * self.rng.standard_normal(self.c)))
        else:
            nlc = self.op("Softmax", [nlc], axis=-1)
        self.h = self.op("Transpose", [nlc], perm=[0, 2, 1])

    def four_d(self):
        """tf2onnx's 2-D form of a 1-D convolution: Unsqueeze to (N, C, 1, L), a (1, k) Conv, Squeeze back."""
        kernel, dilation = int(self.rng.integers(1, 6)), int(self.pick([1, 2]))
        span = (kernel - 1) * dilation + 1
        if self.length - span + 1 < 8:
            return
        out = int(self.rng.integers(3, 8))
        wide = self.squeeze("Unsqueeze", self.h, [2])
        weight = self.weight(out, self.c, 1, kernel)  # (drawn before the bias, as the graph's seed fixes)
        conv = self.op("Conv", [wide, weight, self.const(0.2 * self.rng.standard_normal(out))],
                       kernel_shape=[1, kernel], dilations=[1, dilation])
        self.h = self.squeeze("Squeeze", conv, [2])
        self.c, self.length = out, self.length - span + 1

    def positional(self):
        """A constant that varies along the length, added or multiplied (a positional bias or mask)."""
        shape = self.pick([(1, self.c, self.length), (1, 1, self.length), (self.c, 1)])
        value = self.const(0.5 * self.rng.standard_normal(shape) + (1.0 if self.rng.random() < 0.5 else 0.0))
        self.h = self.op(self.pick(["Add", "Mul"]), [self.h, value])

    def gate(self):
        """A squeeze-excitation gate (global mean, a Dense, Sigmoid, times the tensor) or a mask by comparison."""
        if self.rng.random() < 0.5:
            pooled = self.reduce("ReduceMean", self.h, [2], 1)  # (N, C, 1)
            squeezed = self.op("Transpose", [pooled], perm=[0, 2, 1])
            dense = self.op("Sigmoid", [self.op("MatMul", [squeezed, self.weight(self.c, self.c)])])
            self.h = self.op("Mul", [self.h, self.op("Transpose", [dense], perm=[0, 2, 1])])
        else:
            mask = self.op("Greater", [self.h, self.const(0.1)])
            self.h = self.op("Where", [mask, self.h, self.op("Mul", [self.h, self.const(0.3)])])

    def channel_slice(self):
        if self.c < 4:
            return
        keep = int(self.rng.integers(2, self.c))
        begin = int(self.rng.integers(0, self.c - keep + 1))
        inputs = [self.h, self.const([begin], np.int64), self.const([begin + keep], np.int64),
                  self.const([1], np.int64)]
        self.h, self.c = self.op("Slice", inputs), keep

    def strided_slice(self):
        """Every other column, or the length reversed (a reverse complement's flip)."""
        if self.rng.random() < 0.5 and self.length >= 16:
            inputs = [self.h, self.const([int(self.rng.integers(0, 2))], np.int64), self.const([2 ** 62], np.int64),
                      self.const([2], np.int64), self.const([2], np.int64)]
            first = int(self.model_value(inputs[1]))
            self.h, self.length = self.op("Slice", inputs), (self.length - first + 1) // 2
        else:
            inputs = [self.h, self.const([-1], np.int64), self.const([-2 ** 62], np.int64), self.const([2], np.int64),
                      self.const([-1], np.int64)]
            self.h = self.op("Slice", inputs)

    def gather_columns(self):
        """Constant column indices along the length: a shift by a few columns with the ends repeated."""
        shift = int(self.rng.integers(-3, 4))
        indices = np.clip(np.arange(self.length) + shift, 0, self.length - 1)
        self.h = self.op("Gather", [self.h, self.const(indices, np.int64)], axis=2)

    def global_mix(self):
        """An op global along the length, after which the trunk goes on: a running sum, a softmax over the length,
        or attention of every position to every other."""
        kind = self.pick(["CumSum", "Softmax", "attention"])
        if kind == "CumSum":
            self.h = self.op("CumSum", [self.h, self.const(np.array(2, np.int64), np.int64)])
        elif kind == "Softmax":
            self.h = self.op("Softmax", [self.h], axis=2)
        else:
            nlc = self.op("Transpose", [self.h], perm=[0, 2, 1])
            scores = self.op("Softmax", [self.op("MatMul", [nlc, self.op("Mul", [self.h, self.const(0.3)])])], axis=-1)
            self.h = self.op("Transpose", [self.op("MatMul", [scores, nlc])], perm=[0, 2, 1])

    # -- exporters' idioms (drawn only with ``idioms``) -------------------------------------------------------
    def einsum_dense(self):
        """torch.einsum as a Dense over the channels at each position: "ncl,cd->ndl", or "ncl,dc->nld" and back."""
        out = int(self.rng.integers(3, 8))
        scale = 1.2 / np.sqrt(self.c)
        if self.rng.random() < 0.5:
            self.h = self.op("Einsum", [self.h, self.weight(self.c, out, scale=scale)], equation="ncl,cd->ndl")
        else:
            nld = self.op("Einsum", [self.h, self.weight(out, self.c, scale=scale)], equation="ncl,dc->nld")
            self.h = self.op("Transpose", [nld], perm=[0, 2, 1])
        self.c = out

    def einsum_along(self):
        """A weight along the length in an Einsum: each channel and position scaled ("ncl,cl->ncl"), or one more
        channel: a weighted sum over the channels ("ncl,lc->nl") or a dot product with a gate ("ncl,ncl->nl")."""
        kind = self.pick(["scale", "sum", "dot"])
        if kind == "scale":
            weight = self.const(1 + 0.3 * self.rng.standard_normal((self.c, self.length)))
            self.h = self.op("Einsum", [self.h, weight], equation="ncl,cl->ncl")
            return
        if kind == "sum":
            row = self.op("Einsum", [self.h, self.weight(self.length, self.c, scale=1.0 / np.sqrt(self.c))],
                          equation="ncl,lc->nl")
        else:
            row = self.op("Einsum", [self.h, self.op("Sigmoid", [self.h])], equation="ncl,ncl->nl")
        self.h = self.op("Concat", [self.h, self.squeeze("Unsqueeze", row, [1])], axis=1)
        self.c += 1

    def expand_as(self):
        """torch's ``gate.expand_as(h)``: an Expand to shape arithmetic of the batch, the tensor's whole Shape or
        (the dynamo exporter's) its first axis by a Shape-15 range, concatenated with the other sizes."""
        gate = self.op("Sigmoid", [self.reduce("ReduceMean", self.h, [1], 1)])  # (N, 1, L)
        if self.rng.random() < 0.5:
            target = self.op("Shape", [self.h])
        else:
            batch = self.op("Shape", [self.h], start=0, end=1)
            target = self.op("Concat", [batch, self.const([self.c, self.length], np.int64)], axis=0)
        self.h = self.op("Mul", [self.h, self.op("Expand", [gate, target])])

    def l2_normalise(self):
        """torch's F.normalize(h, dim=1): h / Expand(Clip(ReduceL2 over the channels, 1e-12), Shape(h)); or the
        LpNormalization op over the channels (p = 2: onnx's reference computes p = 1 otherwise than onnxruntime)."""
        if self.rng.random() < 0.5:
            self.h = self.op("LpNormalization", [self.h], axis=1, p=2)
            return
        norm = self.op("Clip", [self.reduce("ReduceL2", self.h, [1], 1), self.const(1e-12)])
        self.h = self.op("Div", [self.h, self.op("Expand", [norm, self.op("Shape", [self.h])])])

    def repeat_channels(self):
        """The channels tiled (torch's ``repeat``) or each repeated twice in place (``repeat_interleave``:
        Unsqueeze, Expand, a Reshape merging the channels)."""
        if self.c > 8:
            return
        if self.rng.random() < 0.5:
            self.h = self.op("Tile", [self.h, self.const([1, 2, 1], np.int64)])
        else:
            wide = self.op("Expand", [self.squeeze("Unsqueeze", self.h, [2]), self.const([1, 1, 2, 1], np.int64)])
            self.h = self.op("Reshape", [wide, self.const([0, 2 * self.c, self.length], np.int64)])
        self.c *= 2

    def constant_parts(self):
        """Constants broadcast along the batch (an Expand to the batch's shape arithmetic, or a Tile by the batch):
        fixed flanks concatenated on both sides along the length (an MPRA model's vector sequence), constant
        channels concatenated, or a constant added or multiplied (torch's ``pos.expand(n, -1, -1)``)."""
        batch = self.op("Shape", [self.h], start=0, end=1)
        kind = self.pick(["flanks", "channels", "elementwise"])

        def broadcast(value):
            if self.rng.random() < 0.5:
                ones = self.const([1] * (value.ndim - 1), np.int64)
                return self.op("Tile", [self.const(value), self.op("Concat", [batch, ones], axis=0)])
            sizes = self.const(value.shape[1:], np.int64)  # the constant at a lower rank half the time
            constant = self.const(value[0] if self.rng.random() < 0.5 else value)
            return self.op("Expand", [constant, self.op("Concat", [batch, sizes], axis=0)])

        if kind == "flanks":
            lo, hi = (int(v) for v in self.rng.integers(1, 5, 2))
            parts = [broadcast(self.rng.random((1, self.c, size))) for size in (lo, hi)]
            self.h = self.op("Concat", [parts[0], self.h, parts[1]], axis=2)
            self.length += lo + hi
        elif kind == "channels":
            extra = int(self.rng.integers(1, 3))
            self.h = self.op("Concat", [self.h, broadcast(self.rng.random((1, extra, self.length)))], axis=1)
            self.c += extra
        else:
            value = 0.5 * self.rng.standard_normal((1, self.c, self.length)) + 1.0
            self.h = self.op(self.pick(["Add", "Mul"]), [self.h, broadcast(value)])

    def lp_pool(self):
        """An LpPool (p of 1 to 3; padded, strided, dilated; no ceil_mode)."""
        rng = self.rng
        kernel, stride, dilation = int(self.pick([2, 3])), int(self.pick([1, 2])), int(self.pick([1, 1, 2]))
        span = (kernel - 1) * dilation + 1
        lo, hi = (int(v) for v in rng.integers(0, kernel, 2))  # onnxruntime takes pads smaller than the kernel
        new = (self.length + lo + hi - span) // stride + 1
        if new < 8:
            return
        attrs = {"kernel_shape": [kernel], "strides": [stride], "pads": [lo, hi], "p": int(rng.integers(1, 4))}
        if dilation > 1:
            attrs["dilations"] = [dilation]
        self.h, self.length = self.op("LpPool", [self.h], **attrs), new

    def model_value(self, name):
        return next(numpy_helper.to_array(init) for init in self.initializers if init.name == name).reshape(-1)[0]

    # -- heads ----------------------------------------------------------------------------------------------
    def head(self):
        kind = self.pick(["dense", "global_average", "global_max", "profile", "reduce"])
        name = f"out{len(self.outputs)}"
        if kind == "dense":
            source = self.op("Transpose", [self.h], perm=[0, 2, 1]) if self.rng.random() < 0.5 else self.h
            flat = self.op("Flatten", [source], axis=1)
            scale = 0.5 / np.sqrt(self.c * self.length)
            out = self.op("Gemm", [flat, self.weight(2, self.c * self.length, scale=scale),
                                   self.const(self.rng.standard_normal(2))], transB=1)
            shape = ["N", 2]
        elif kind in ("global_average", "global_max"):
            pooled = self.op("GlobalAveragePool" if kind == "global_average" else "GlobalMaxPool", [self.h])
            out = self.op("Flatten", [pooled], axis=1)
            shape = ["N", self.c]
        elif kind == "reduce":
            out = self.reduce(self.pick(["ReduceMean", "ReduceMax", "ReduceSum"]), self.h, [2], 0)
            shape = ["N", self.c]
        else:
            out = self.h
            shape = ["N", self.c, self.length]
        self.nodes.append(helper.make_node("Identity", [out], [name], name=self.name("n")))
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))

    # -- helpers for joins ----------------------------------------------------------------------------------
    def remember(self):
        self.saved.append((self.h, self.c, self.length))

    def saved_length(self, name):
        return next((length for entry, _, length in self.saved if entry == name), None)

    def c_of(self, name):
        return next(c for entry, c, _ in self.saved if entry == name)

    def model(self):
        graph = helper.make_graph(self.nodes, "random", [self.input], self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 10
        return model


LAYERS = ["conv", "conv", "conv", "activation", "activation", "batch_norm", "pool", "pad", "crop", "upsample",
          "conv_transpose", "residual", "residual", "branch_concat", "per_position", "four_d", "positional", "gate",
          "channel_slice", "strided_slice", "gather_columns", "global_mix"]


#: Exporters' idioms, drawn besides LAYERS with ``idioms`` (each twice as often as a layer of LAYERS).
IDIOMS = ["einsum_dense", "einsum_along", "expand_as", "l2_normalise", "repeat_channels", "lp_pool", "constant_parts"]


def random_model(seed, length=40, depth=None, opset=18, idioms=False):
    """A random graph (onnx.ModelProto) of ``depth`` layers (4 to 9 by default) after a first Conv, with one or two
    heads, the first possibly in the middle; its input is (N, L, 4) or (N, 4, L); op forms of ``opset``. With
    ``idioms`` (opset 18 only), layers are also drawn from IDIOMS: another network for the same seed."""
    assert not idioms or opset >= 18, "the idioms use opset 18's forms"
    layers = LAYERS + 2 * IDIOMS if idioms else LAYERS
    g = RandomGraph(seed, length, opset)
    g.conv()
    g.activation()
    g.remember()
    depth = depth if depth is not None else int(g.rng.integers(4, 10))
    early_head = int(g.rng.integers(1, depth + 1)) if g.rng.random() < 0.4 else None
    for step in range(depth):
        layer = g.pick(layers)
        if layer == "branch_concat":
            g.remember()
        getattr(g, layer)()
        g.remember()
        if early_head == step:
            g.head()
    g.head()
    return g.model()
