"""PyTorch modules for the architecture suites of fast ISM and of the gradient graph, and their export.

Every module takes (N, 4, L) and is exported with the dynamo exporter at L = ``LENGTH``. ``ARCHITECTURES``: the
suite broader than fastISM's own tests (fast ISM windows every node of them). ``MODERN``: layers of newer models
that are global or mix channels and length (attention, group and instance normalisation, running sums, sorting,
squeeze-excitation, DanQ's bidirectional LSTM or GRU), where fast ISM computes in full what it must, and comparison
ops on windowed tensors.
"""

import numpy as np
import pytest

LENGTH = 40


def export_architecture(name, folder, seed=None):
    """(path, module): the seeded module ``name`` with its parameters moved off their initial values (non-zero
    biases, lively activations), exported with outputs out0, out1, ..."""
    torch = pytest.importorskip("torch")
    from onnxism_converters import torch_to_onnx

    order = ARCHITECTURES if name in ARCHITECTURES else MODERN
    module = (architectures() if name in ARCHITECTURES else modern())[name].eval()
    torch.manual_seed(order.index(name) if seed is None else seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        example = torch.zeros(2, 4, LENGTH)
        outputs = module(example)
    count = len(outputs) if isinstance(outputs, tuple) else 1
    path = folder / f"{name}.onnx"
    torch_to_onnx(module, example, path, output_names=[f"out{k}" for k in range(count)])
    return path, module


def _net_class():
    """A module whose forward is ``forward(body, x)`` over a dict of layers."""
    from torch import nn

    class Net(nn.Module):
        def __init__(self, body, forward):
            super().__init__()
            self.body = nn.ModuleDict(body)
            self._forward = forward

        def forward(self, x):
            return self._forward(self.body, x)

    return Net


def architectures():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch import nn

    Net = _net_class()

    conv = nn.Conv1d
    return {
        "valid_even_kernel": Net({"c": conv(4, 6, 4), "d": nn.Linear(6 * 37, 3)},
                                 lambda b, x: b["d"](torch.relu(b["c"](x)).flatten(1))),
        "same_even_dilated": Net({"c": conv(4, 6, 4, padding="same", dilation=2), "e": conv(6, 5, 3, padding=2)},
                                 lambda b, x: b["e"](torch.relu(b["c"](x))).mean(dim=2)),
        "strided_conv_overlapping_padded_pools": Net(
            {"c": conv(4, 6, 5, stride=2, padding=2), "p": nn.MaxPool1d(3, 2, padding=1),
             "q": nn.AvgPool1d(3, 1, padding=1), "d": nn.Linear(6 * 10, 2)},
            lambda b, x: b["d"](b["q"](b["p"](torch.tanh(b["c"](x)))).flatten(1))),
        "avgpool_excluding_pads": Net({"c": conv(4, 6, 3), "p": nn.AvgPool1d(4, 2, padding=2, count_include_pad=False)},
                                      lambda b, x: b["p"](b["c"](x)).flatten(1)),
        "pre_activation": Net({"c": conv(4, 6, 5, padding=2)},
                              lambda b, x: b["c"](torch.relu(x * 1.5 - 0.2)).amax(dim=2)),
        "residual_joins": Net(
            {"a": conv(4, 6, 3, padding=1), "b": conv(6, 6, 3, padding=2, dilation=2), "c": conv(6, 6, 5, padding=2)},
            lambda b, x: _residual(b, x)),
        "outputs_at_different_depths": Net(
            {"a": conv(4, 5, 7, padding=3), "b": conv(5, 5, 5, padding=2), "d": nn.Linear(5 * 20, 2)},
            lambda b, x: _two_outputs(b, x)),
        "cropping": Net({"a": conv(4, 6, 5, padding=2), "d": nn.Linear(6 * 33, 1)},
                        lambda b, x: b["d"](torch.relu(b["a"](x))[:, :, 4:-3].flatten(1))),
        "global_avg_and_max_heads": Net({"a": conv(4, 8, 9, padding=4), "d": nn.Linear(16, 3)},
                                        lambda b, x: _global_heads(b, x)),
        "dense_on_3d_and_softmax": Net({"a": conv(4, 8, 5, padding=2), "l": nn.Linear(8, 4)},
                                       lambda b, x: torch.softmax(b["l"](torch.relu(b["a"](x)).transpose(1, 2)),
                                                                  dim=2)),
        "channel_concat_layernorm": Net(
            {"a": conv(4, 5, 3, padding=1), "b": conv(4, 3, 7, padding=3), "n": nn.LayerNorm(8), "d": nn.Linear(8, 2)},
            lambda b, x: b["d"](b["n"](torch.cat([b["a"](x), torch.relu(b["b"](x))], dim=1).transpose(1, 2)).amax(1))),
        "causal_conv": Net({"a": conv(4, 6, 5), "b": conv(6, 4, 3)},
                           lambda b, x: b["b"](F.pad(torch.relu(b["a"](F.pad(x, (4, 0)))), (2, 0)))),
        "conv_transpose_heads": Net(
            {"a": conv(4, 6, 5, padding=2), "t": nn.ConvTranspose1d(6, 2, 7, padding=3),
             "s": nn.ConvTranspose1d(6, 1, 4, stride=2, padding=1)},
            lambda b, x: (b["t"](torch.relu(b["a"](x))), b["s"](torch.relu(b["a"](x))))),
        "delta_convs_dilated_stacked": Net(  # delta convolutions (16 channels, 5 taps dilated): by source column
            # (its input changes on 3 columns, fewer than its taps), then by tap
            {"a": conv(4, 16, 3, padding=1), "b": conv(16, 16, 5, padding=4, dilation=2),
             "c": conv(16, 16, 5, padding=4, dilation=2), "d": nn.Linear(16 * 20, 2)},
            lambda b, x: b["d"](F.max_pool1d(b["c"](torch.relu(b["b"](torch.relu(b["a"](x))))), 2).flatten(1))),
        "conv_transpose_as_conv": Net(  # 16 output channels: delta (5 taps), then the Conv form (3 taps, dilated)
            {"a": conv(4, 6, 3, padding=1), "t": nn.ConvTranspose1d(6, 16, 5, padding=2),
             "u": nn.ConvTranspose1d(16, 16, 3, padding=2, dilation=2)},
            lambda b, x: b["u"](torch.relu(b["t"](torch.relu(b["a"](x))))).sum(1)),
        "strided_conv_transposes": Net(  # output padding; 16 channels, stride 3, dilated; kernel shorter than stride
            {"a": conv(4, 6, 3, padding=1), "t": nn.ConvTranspose1d(6, 5, 5, stride=2, padding=2, output_padding=1),
             "u": nn.ConvTranspose1d(5, 16, 3, stride=3, padding=1, dilation=2),
             "v": nn.ConvTranspose1d(16, 3, 2, stride=3), "d": nn.Linear(3 * 719, 2)},
            lambda b, x: b["d"](torch.tanh(b["v"](torch.relu(b["u"](torch.relu(b["t"](torch.relu(b["a"](x))))))))
                                .flatten(1))),
        "nearest_upsampling": Net(  # Resize, nearest: by 2 into a conv, by 3 into a pool
            {"a": conv(4, 6, 5, padding=2), "b": conv(6, 3, 3, padding=1)},
            lambda b, x: F.max_pool1d(F.interpolate(b["b"](F.interpolate(torch.relu(b["a"](x)), scale_factor=2.0)),
                                                    scale_factor=3.0), 4).flatten(1)),
        "padding_modes": Net(  # Pad reflect, edge and wrap (circular: windows are the whole length after it)
            {"a": conv(4, 6, 5, padding=2, padding_mode="reflect"), "b": conv(6, 5, 3, padding=1,
                                                                            padding_mode="replicate"),
             "c": conv(5, 4, 3, padding=1, padding_mode="circular"), "d": nn.Linear(4 * 20, 2)},
            lambda b, x: b["d"](F.max_pool1d(b["c"](torch.relu(b["b"](torch.relu(b["a"](x))))), 2).flatten(1))),
        "reverse_complement_average": Net(  # flip(dims=(1, 2)) is a Slice with steps -1 along channels and length
            {"a": conv(4, 6, 5, padding=2), "d": nn.Linear(6 * 20, 2)}, lambda b, x: _reverse_complement(b, x)),
        "linear_upsampling_and_gathers": Net(  # torch writes these as GatherND between Transposes (normalise.py)
            {"a": conv(4, 6, 5, padding=2), "b": conv(6, 5, 3, padding=1)},
            lambda b, x: _interpolations(b, x)),
        "grouped_and_depthwise_convs": Net(  # Conv with group: depthwise (ConvNeXt-style), and 2 groups dilated
            {"a": conv(4, 8, 5, padding=2), "w": conv(8, 8, 7, padding=3, groups=8),
             "g": conv(8, 16, 3, padding=2, dilation=2, groups=2), "d": nn.Linear(16 * 40, 2)},
            lambda b, x: b["d"](torch.relu(b["g"](F.gelu(b["w"](torch.relu(b["a"](x)))))).flatten(1))),
        "softmax_pooling_and_channel_groups": Net(  # Reshapes that split the length, or the channels alone
            {"a": conv(4, 8, 5, padding=2), "w": conv(8, 8, 1, bias=False), "d": nn.Linear(4 * 5, 2)},
            lambda b, x: _softmax_pooling(b, x)),
        "gated_activations_and_length_split": Net(  # Splits: over the channels, along the length
            {"a": conv(4, 16, 5, padding=2), "b": conv(8, 12, 3, padding=2, dilation=2), "d": nn.Linear(6 * 25, 2)},
            lambda b, x: _gated(b, x)),
        "constant_flanks_and_position_channels": Net(  # Concats of constants broadcast along the batch
            {"k": nn.ParameterDict({"left": nn.Parameter(torch.rand(1, 4, 6)),
                                    "right": nn.Parameter(torch.rand(1, 4, 9)),
                                    "position": nn.Parameter(torch.rand(1, 2, 55)),
                                    "offset": nn.Parameter(torch.rand(1, 5, 55))}),
             "a": conv(4, 6, 5, padding=2), "b": conv(8, 5, 3, padding=1), "d": nn.Linear(5 * 27, 2)},
            lambda b, x: _constant_parts(b, x)),
    }


def _softmax_pooling(b, x):
    """Enformer's softmax pooling by 2 (a Reshape splits the length into (L/2, 2); softmax-weighted sum over the
    pairs), maxout over channel pairs (a Reshape of the channels alone), then a mean over groups of 4 columns split
    into two new axes (L/4, 2, 2)."""
    import torch

    n, _, length = x.shape
    h = torch.relu(b["a"](x))
    weights = torch.softmax(b["w"](h).view(n, 8, length // 2, 2), dim=-1)
    h = (h.view(n, 8, length // 2, 2) * weights).sum(-1)
    h = h.view(n, 4, 2, length // 2).amax(2)
    h = h.view(n, 4, length // 8, 2, 2).mean((3, 4))
    return b["d"](h.flatten(1))


def _reverse_complement(b, x):
    """A model averaged over the sequence and its reverse complement (as many genomics models are at inference):
    a profile flipped back to forward coordinates and taken every other column, and a Dense head on each strand."""
    import torch.nn.functional as F

    def strand(v):
        return F.relu(b["a"](v))

    forward, reverse = strand(x), strand(x.flip(dims=(1, 2)))
    profile = (forward + reverse.flip(dims=(2,)))[:, :, ::2].sum(1)
    counts = b["d"](F.max_pool1d(forward, 2).flatten(1)) + b["d"](F.max_pool1d(reverse, 2).flatten(1))
    return profile, counts / 2


def _interpolations(b, x):
    """linear by 2, a weight per column, a Gather of channels, 'nearest-exact' by 1.5, repeat_interleave by 2
    (Unsqueeze, Expand, a Reshape merging the length), channels repeated (Tile), linear down to 60 with aligned
    corners (its windows are wider than one column), then a pool."""
    import torch
    import torch.nn.functional as F

    h = F.interpolate(torch.relu(b["a"](x)), scale_factor=2.0, mode="linear")
    h = h * torch.linspace(0.5, 1.5, h.shape[2])  # a constant that varies along the length
    h = torch.relu(b["b"](h))[:, [0, 2, 4], :]
    h = F.interpolate(h, scale_factor=1.5, mode="nearest-exact")
    h = h.repeat_interleave(2, dim=2).repeat(1, 2, 1)
    h = F.interpolate(h, size=60, mode="linear", align_corners=True)
    return F.max_pool1d(h, 4).flatten(1)


def _residual(b, x):
    import torch

    h = torch.relu(b["a"](x))
    h = h + torch.relu(b["b"](h))          # residual
    h = h + h                               # Add(x, x)
    g = torch.relu(b["c"](h))
    h = h + g + torch.sigmoid(g)            # three-way add
    return torch.maximum(h, g) * torch.tanh(g)  # Maximum, Multiply


def _two_outputs(b, x):
    import torch

    h = torch.relu(b["a"](x))
    early = h.sum(dim=1)
    h = torch.nn.functional.max_pool1d(torch.relu(b["b"](h)), 2)
    return early, b["d"](h.flatten(1))


def _global_heads(b, x):
    import torch

    h = torch.relu(b["a"](x))
    return b["d"](torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


def _gated(b, x):
    """A GLU (Split over the channels, sigmoid gate), WaveNet's gate tanh(a) * sigmoid(b) over the two halves of
    the channels (``chunk``), then the length split in two unequal parts, one for each output."""
    import torch
    import torch.nn.functional as F

    h = F.glu(b["a"](x), dim=1)
    tanh_half, gate_half = b["b"](h).chunk(2, dim=1)
    h = torch.tanh(tanh_half) * torch.sigmoid(gate_half)
    left, right = h.split([15, 25], dim=2)
    return b["d"](torch.relu(right).flatten(1)), left.amax(dim=2)


def _constant_parts(b, x):
    """An MPRA model's fixed flanks: constants concatenated on both sides of the sequence along the length
    (``expand`` to the batch on the left, ``repeat`` on the right), then positional channels concatenated to a
    convolution's output and a positional offset added to the next (``expand``)."""
    import torch
    import torch.nn.functional as F

    n, k = x.shape[0], b["k"]
    h = torch.cat([k["left"].expand(n, -1, -1), x, k["right"].repeat(n, 1, 1)], dim=2)
    h = torch.cat([torch.relu(b["a"](h)), k["position"].expand(n, -1, -1)], dim=1)
    return b["d"](F.max_pool1d(torch.relu(b["b"](h) + k["offset"].expand(n, -1, -1)), 2).flatten(1))


ARCHITECTURES = [
    "valid_even_kernel", "same_even_dilated", "strided_conv_overlapping_padded_pools", "avgpool_excluding_pads",
    "pre_activation", "residual_joins", "outputs_at_different_depths", "cropping", "global_avg_and_max_heads",
    "dense_on_3d_and_softmax", "channel_concat_layernorm", "causal_conv", "conv_transpose_heads",
    "delta_convs_dilated_stacked", "conv_transpose_as_conv", "strided_conv_transposes", "nearest_upsampling",
    "linear_upsampling_and_gathers", "padding_modes", "reverse_complement_average",
    "softmax_pooling_and_channel_groups", "grouped_and_depthwise_convs", "gated_activations_and_length_split",
    "constant_flanks_and_position_channels",
]


def modern():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch import nn

    Net = _net_class()

    conv, length = nn.Conv1d, LENGTH

    def attention(b, x):  # nn.MultiheadAttention: Gathers of the packed projections, a transposed batch
        h = F.gelu(b["a"](x)).transpose(1, 2)
        out, _ = b["m"](h, h, h)
        return b["d"]((h + out).mean(1))

    def einsum_attention(b, x):  # hand-written attention in Einsums, as enformer-pytorch writes it
        h = b["a"](x)
        q, k = torch.einsum("ncl,cd->nld", h, b["q"].weight), torch.einsum("ncl,cd->nld", h, b["k"].weight)
        weights = torch.softmax(torch.einsum("nld,nmd->nlm", q, k) / 2.0, dim=-1)
        return torch.einsum("nlm,ncm->ncl", weights, h).flatten(1) @ b["d"].weight.T

    def squeeze_excitation(b, x):
        h = F.relu(b["a"](x))
        return b["d"]((h * torch.sigmoid(b["s"](h.mean(-1)))[:, :, None]).flatten(1))

    def sorted_and_normalised(b, x):  # CumSum, TopK (sort), L2 normalisation over the channels
        h = b["a"](x)
        top = h.cumsum(-1).topk(3, dim=-1).values.flatten(1)
        return b["d"](torch.cat([top, F.normalize(h, dim=1).flatten(1)], dim=1))

    def danq(b, x):  # DanQ: a convolution, max-pooling, a bidirectional recurrent layer over the pooled length
        h = F.max_pool1d(F.relu(b["a"](x)), 4).transpose(1, 2)
        return b["d"](b["r"](h)[0].flatten(1))

    def softplus_where_head(b, x):  # Softplus exported with its threshold (Greater, Where), masks of two depths
        h1 = b["a"](x)
        h2 = b["b"](F.mish(h1))
        mask = (h1 > 0.05) & ~(h2 < -0.3)
        return F.softplus(torch.where(mask, h2, -0.5 * h2))

    return {
        "attention": Net({"a": conv(4, 8, 5, padding=2), "m": nn.MultiheadAttention(8, 2, batch_first=True),
                          "d": nn.Linear(8, 2)}, attention),
        "einsum_attention": Net({"a": conv(4, 6, 5, padding=2), "q": nn.Linear(3, 6, bias=False),
                                 "k": nn.Linear(3, 6, bias=False), "d": nn.Linear(6 * length, 2)}, einsum_attention),
        "group_and_instance_norm": Net({"a": conv(4, 6, 5, padding=2), "g": nn.GroupNorm(2, 6),
                                        "i": nn.InstanceNorm1d(6, affine=True), "d": nn.Linear(6 * length, 2)},
                                       lambda b, x: b["d"](b["i"](F.relu(b["g"](b["a"](x)))).flatten(1))),
        "squeeze_excitation": Net({"a": conv(4, 6, 5, padding=2), "s": nn.Linear(6, 6),
                                   "d": nn.Linear(6 * length, 2)}, squeeze_excitation),
        "sorted_and_normalised": Net({"a": conv(4, 6, 5, padding=2), "d": nn.Linear(18 + 6 * length, 2)},
                                     sorted_and_normalised),
        "softplus_where_head": Net({"a": conv(4, 6, 5, padding=2), "b": conv(6, 6, 5, padding=2)},
                                   softplus_where_head),
        "danq_lstm": Net({"a": conv(4, 6, 9, padding=4), "r": nn.LSTM(6, 4, batch_first=True, bidirectional=True),
                          "d": nn.Linear(8 * (length // 4), 2)}, danq),
        "danq_gru": Net({"a": conv(4, 6, 9, padding=4), "r": nn.GRU(6, 4, batch_first=True, bidirectional=True),
                         "d": nn.Linear(8 * (length // 4), 2)}, danq),
        "danq_rnn": Net({"a": conv(4, 6, 9, padding=4), "r": nn.RNN(6, 4, batch_first=True, bidirectional=True),
                         "d": nn.Linear(8 * (length // 4), 2)}, danq),  # (not in MODERN: tests/gradients only)
        "instance_norm": Net({"a": conv(4, 6, 5, padding=2), "i": nn.InstanceNorm1d(6, affine=True),
                              "d": nn.Linear(6 * length, 2)},
                             lambda b, x: b["d"](b["i"](F.relu(b["a"](x))).flatten(1))),
    }


MODERN = ["attention", "einsum_attention", "group_and_instance_norm", "squeeze_excitation", "sorted_and_normalised",
          "softplus_where_head", "instance_norm", "danq_lstm", "danq_gru"]


def keras_modern(name):
    """A Keras model (N, LENGTH, 4) whose first Conv1D has Keras's exact GELU (tf2onnx writes it with Erfc, which
    loading rewrites), then: multi-head attention (Einsums), GroupNormalization, UpSampling1D -> Cropping1D ->
    ZeroPadding1D, a reverse-complement average through ops.flip (tf2onnx's ReverseSequence), or ChromBPNet's
    two BPNets (``_chrombpnet``, without the GELU), or constant flanks around the sequence (``_flanked``, without
    it)."""
    keras = pytest.importorskip("keras")
    from keras import layers

    x = keras.Input((LENGTH, 4))
    h = layers.Conv1D(8, 5, padding="same", activation="gelu")(x)
    if name == "attention":
        h = layers.LayerNormalization()(h + layers.MultiHeadAttention(2, 4)(h, h))
        out = layers.Dense(2)(layers.GlobalAveragePooling1D()(h))
    elif name == "group_norm":
        out = layers.Dense(2)(layers.Flatten()(layers.GroupNormalization(2)(h)))
    elif name == "upsample_crop_pad":
        h = layers.ZeroPadding1D((1, 2))(layers.Cropping1D((3, 5))(layers.UpSampling1D(2)(h)))
        out = layers.Dense(2)(layers.Flatten()(h))
    elif name == "chrombpnet":
        return _chrombpnet(keras, layers, x)
    elif name == "constant_flanks":
        h = layers.Conv1D(6, 3, padding="same", activation="relu")(_flanked(keras, x))
        out = layers.Dense(2)(layers.Flatten()(layers.MaxPooling1D(2)(h)))
    else:  # "reverse_complement"
        conv, dense = layers.Conv1D(8, 5, padding="same", activation="relu"), layers.Dense(2)
        flipped = layers.Lambda(lambda t: keras.ops.flip(t, axis=(1, 2)))(x)
        out = layers.Average()([dense(layers.GlobalMaxPooling1D()(conv(v))) for v in (x, flipped)])
        out = layers.Add()([out, layers.Dense(2)(layers.Flatten()(h))])
    return keras.Model(x, out)


def _flanked(keras, x):
    """``x`` between two constant flanks along the length, tiled to the batch on the left and broadcast to it on
    the right (``ops.tile``, ``ops.broadcast_to``: tf2onnx's Tile and Expand), as an MPRA model adds its fixed
    vector sequence."""
    ops = keras.ops
    rng = np.random.default_rng(8)
    left, right = rng.random((1, 5, 4)).astype("float32"), rng.random((1, 7, 4)).astype("float32")

    class Flanks(keras.layers.Layer):
        def call(self, inputs):
            n = ops.shape(inputs)[0]
            return ops.concatenate([ops.tile(left, [n, 1, 1]), inputs, ops.broadcast_to(right, (n, 7, 4))], axis=1)

    return Flanks()(x)


def _chrombpnet(keras, layers, x):
    """ChromBPNet's shape: two BPNets on the same input (a small "bias" model and the accessibility model), each of
    valid dilated convolutions whose residual is cropped to the conv's output, a valid profile conv cropped to the
    output length and counts from a global average pooling; the profiles are added, the counts joined by logsumexp."""
    def bpnet(filters, dilations, prefix):
        h = layers.Conv1D(filters, 5, activation="relu", name=f"{prefix}_first")(x)
        for rate in dilations:
            c = layers.Conv1D(filters, 3, activation="relu", dilation_rate=rate, name=f"{prefix}_dil{rate}")(h)
            h = layers.add([c, layers.Cropping1D(rate)(h)])
        profile = layers.Conv1D(1, 3, name=f"{prefix}_profile")(h)
        crop = (profile.shape[1] - 4) // 2
        profile = layers.Flatten()(layers.Cropping1D((crop, profile.shape[1] - 4 - crop))(profile))
        return profile, layers.Dense(1, name=f"{prefix}_counts")(layers.GlobalAveragePooling1D()(h))

    bias_profile, bias_counts = bpnet(4, [2], "bias")
    profile, counts = bpnet(8, [2, 4, 8], "acc")
    logsumexp = layers.Lambda(lambda t: keras.ops.logsumexp(t, axis=-1, keepdims=True))
    return keras.Model(x, [layers.add([profile, bias_profile]), logsumexp(layers.concatenate([counts, bias_counts]))])


KERAS_MODERN = ["attention", "group_norm", "upsample_crop_pad", "reverse_complement", "chrombpnet", "constant_flanks"]
