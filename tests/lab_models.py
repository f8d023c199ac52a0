"""Small configurations of architectures labs use that the converters once could not take, re-created op for op
from their public definitions: the libraries are not in the test environment (enformer-pytorch 0.8 imports
transformers and einops besides torch; CREsted 1.11 is a training package with its own dependencies), and adding
them for two small test models was not worth new pins. The Enformer block was compared once, outside the suite,
with enformer-pytorch 0.8.12's own ``Attention`` on the same weights (identical outputs); CREsted 1.11.0's own
``legnet`` (reorganised since the definition re-created here, the same layers) converted the same way
(docs/converters.md).

- ``enformer_attention``: a conv stem and one residual block of enformer-pytorch's ``Attention`` (lucidrains/
  enformer-pytorch 0.8.12, ``modeling_enformer.py``, ``use_tf_gamma=False``: the default; gReLU's Enformer uses the
  same attention), with its relative positional features (exponential, central mask, gamma through ``xlogy`` and
  ``lgamma``) and ``relative_shift``; einops' rearranges written as reshape/permute.
- ``legnet``: CREsted's LegNet (aertslab/CREsted, ``tl/zoo/_legnet.py``), Keras 3: a stem, EfficientNet blocks
  whose depthwise convolution is a ``Conv1D`` with ``groups`` = channels, squeeze-excitation, concatenated
  residuals, max pooling, a mapper, a global mean and a softplus head.
"""

import math

import numpy as np
import pytest


def enformer_attention(length=24, seed=0):
    """(module, example): the eval-mode module taking (N, 4, length), its outputs (N, length, 2), its parameters
    moved off their initial values (enformer-pytorch zero-initialises the attention's output projection)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    def exponential(positions, features, seq_len, min_half_life=3.0):
        max_range = math.log(seq_len) / math.log(2.0)
        half_life = 2 ** torch.linspace(min_half_life, max_range, features)
        return torch.exp(-math.log(2.0) / half_life[None, ...] * positions.abs()[..., None])

    def central_mask(positions, features, seq_len):
        center_widths = 2 ** torch.arange(1, features + 1).float() - 1
        return (center_widths[None, ...] > positions.abs()[..., None]).float()

    def gamma_pdf(x, concentration, rate):
        log_unnormalized_prob = torch.xlogy(concentration - 1.0, x) - rate * x
        log_normalization = torch.lgamma(concentration) - concentration * torch.log(rate)
        return torch.exp(log_unnormalized_prob - log_normalization)

    def gamma(positions, features, seq_len, eps=1e-8):
        stddev, start_mean = seq_len / (2 * features), seq_len / features
        mean = torch.linspace(start_mean, seq_len, features)[None, ...]
        concentration, rate = (mean / stddev) ** 2, mean / stddev ** 2
        probabilities = gamma_pdf(positions.float().abs()[..., None], concentration, rate) + eps
        return probabilities / torch.amax(probabilities, dim=-1, keepdim=True)

    def positional_embed(seq_len, feature_size):
        distances = torch.arange(-seq_len + 1, seq_len)
        per_class = feature_size // 6
        embeddings = torch.cat([fn(distances, per_class, seq_len) for fn in (exponential, central_mask, gamma)],
                               dim=-1)
        return torch.cat((embeddings, torch.sign(distances)[..., None] * embeddings), dim=-1)

    def relative_shift(x):
        x = torch.cat((torch.zeros_like(x[..., :1]), x), dim=-1)
        _, h, t1, t2 = x.shape
        x = x.reshape(-1, h, t2, t1)[:, :, 1:, :].reshape(-1, h, t1, t2 - 1)
        return x[..., :((t2 + 1) // 2)]

    class Attention(nn.Module):
        def __init__(self, dim, heads, dim_key, dim_value, num_rel_pos_features):
            super().__init__()
            self.scale, self.heads, self.num_rel_pos_features = dim_key ** -0.5, heads, num_rel_pos_features
            self.to_q = nn.Linear(dim, dim_key * heads, bias=False)
            self.to_k = nn.Linear(dim, dim_key * heads, bias=False)
            self.to_v = nn.Linear(dim, dim_value * heads, bias=False)
            self.to_out = nn.Linear(dim_value * heads, dim)
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)
            self.to_rel_k = nn.Linear(num_rel_pos_features, dim_key * heads, bias=False)
            self.rel_content_bias = nn.Parameter(torch.randn(1, heads, 1, dim_key))
            self.rel_pos_bias = nn.Parameter(torch.randn(1, heads, 1, dim_key))

        def forward(self, x):
            b, n, h = x.shape[0], x.shape[-2], self.heads

            def split(t):  # 'b n (h d) -> b h n d'
                return t.reshape(b, n, h, -1).permute(0, 2, 1, 3)

            q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
            q = q * self.scale
            content_logits = torch.einsum("bhid,bhjd->bhij", q + self.rel_content_bias, k)
            rel_k = self.to_rel_k(positional_embed(n, self.num_rel_pos_features))
            rel_k = rel_k.reshape(rel_k.shape[0], h, -1).permute(1, 0, 2)  # 'n (h d) -> h n d'
            rel_logits = relative_shift(torch.einsum("bhid,hjd->bhij", q + self.rel_pos_bias, rel_k))
            attn = (content_logits + rel_logits).softmax(dim=-1)
            out = torch.einsum("bhij,bhjd->bhid", attn, v)
            return self.to_out(out.permute(0, 2, 1, 3).reshape(b, n, -1))  # 'b h n d -> b n (h d)'

    class EnformerAttention(nn.Module):
        def __init__(self, dim=12, heads=2):
            super().__init__()
            self.stem = nn.Conv1d(4, dim, 5, padding=2)
            self.norm = nn.LayerNorm(dim)
            self.attention = Attention(dim, heads, dim_key=4, dim_value=dim // heads, num_rel_pos_features=12)
            self.head = nn.Linear(dim, 2)

        def forward(self, x):
            h = self.stem(x)
            h = (torch.sigmoid(1.702 * h) * h).permute(0, 2, 1)  # enformer-pytorch's GELU, 'b d n -> b n d'
            h = h + self.attention(self.norm(h))
            return self.head(h)

    torch.manual_seed(seed)
    module = EnformerAttention().eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return module, torch.zeros(2, 4, length)


def legnet(length=32, seed=0):
    """CREsted's ``legnet`` at a small size (stem 8 channels, two stages of 8 and 12, resize factor 2), its
    batch-normalisation statistics and weights random: a Keras 3 model taking (N, length, 4), output (N, 3)."""
    keras = pytest.importorskip("keras")
    layers = keras.layers
    activation = "swish"

    def se_layer(x, inp, reduction, name):
        y = keras.ops.mean(x, axis=1)
        y = layers.Dense(inp // reduction, name=f"{name}_fc1")(y)
        y = layers.Activation("swish")(y)
        y = layers.Dense(inp, name=f"{name}_fc2")(y)
        y = layers.Activation("sigmoid")(y)
        return layers.Multiply(name=f"{name}_multiply")([x, y])

    def eff_block(x, out_ch, ks, resize_factor, name):
        inner_dim = out_ch * resize_factor
        y = layers.Conv1D(inner_dim, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
        y = layers.Activation(activation)(layers.BatchNormalization(name=f"{name}_expand_bn")(y))
        y = layers.Conv1D(inner_dim, ks, groups=inner_dim, padding="same", use_bias=False, name=f"{name}_dw_conv")(y)
        y = layers.Activation(activation)(layers.BatchNormalization(name=f"{name}_dw_bn")(y))
        y = se_layer(y, inner_dim, resize_factor, f"{name}_se")
        y = layers.Conv1D(out_ch, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(y)
        return layers.Activation(activation)(layers.BatchNormalization(name=f"{name}_project_bn")(y))

    def local_block(x, out_ch, ks, name):
        y = layers.Conv1D(out_ch, ks, padding="same", use_bias=False, name=f"{name}_conv")(x)
        return layers.Activation(activation)(layers.BatchNormalization(name=f"{name}_bn")(y))

    inputs = layers.Input(shape=(length, 4), name="input")
    x = local_block(inputs, 8, 5, "stem")
    prev = 8
    for idx, out_filters in enumerate((8, 12)):
        y = eff_block(x, prev, 3, 2, f"stage{idx}_eff")
        x = layers.Concatenate(axis=-1, name=f"stage{idx}_rescat")([y, x])
        x = local_block(x, out_filters, 3, f"stage{idx}_local")
        x = layers.MaxPooling1D(pool_size=2, name=f"stage{idx}_pool")(x)
        prev = out_filters
    x = layers.BatchNormalization(name="mapper_bn")(x)
    x = layers.Conv1D(out_filters * 2, 1, name="mapper_conv")(x)
    x = keras.ops.mean(x, axis=1)
    x = layers.Dense(out_filters * 2, name="final_dense")(x)
    x = layers.Activation(activation)(layers.BatchNormalization(name="final_bn")(x))
    outputs = layers.Dense(3, name="head", activation="softplus")(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="LegNet")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, layers.BatchNormalization):  # gamma, beta, moving mean, moving variance
            gamma, beta, mean, var = weights
            weights = [1 + 0.2 * rng.standard_normal(gamma.shape), 0.2 * rng.standard_normal(beta.shape),
                       0.2 * rng.standard_normal(mean.shape), 0.5 + rng.random(var.shape)]
        else:
            weights = [w + 0.2 * rng.standard_normal(w.shape) for w in weights]
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return model
