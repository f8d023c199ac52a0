"""Build a :class:`~onnxism_converters.zoo.spec.Spec` as a PyTorch module taking (N, 4, L), with the spec's weights."""

import numpy as np


def build_torch(spec):
    """An eval-mode ``torch.nn.Module``; its forward returns a tensor, or a tuple in ``spec.outputs`` order."""
    import torch
    from torch import nn

    def tensor(array):
        return torch.from_numpy(np.ascontiguousarray(array))

    class SpecModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.kinds = [layer.kind for layer in spec.layers]
            self.inputs = [layer.inputs for layer in spec.layers]
            self.output_nodes = list(spec.outputs.values())
            self.body = nn.ModuleList([_module(spec, layer) for layer in spec.layers])

        def forward(self, x):
            values = [x]
            for index in range(1, len(self.body)):
                args = [values[i] for i in self.inputs[index]]
                if self.kinds[index] == "add":
                    out = args[0]
                    for other in args[1:]:
                        out = out + other
                    values.append(out)
                else:
                    values.append(self.body[index](args[0]))
            outs = tuple(values[i] for i in self.output_nodes)
            return outs[0] if len(outs) == 1 else outs

    def _module(spec, layer):
        p, w = layer.params, layer.weights
        kind = layer.kind
        if kind in ("input", "add"):
            return nn.Identity()
        if kind == "conv":
            pad = "same" if p["padding"] == "same" else 0
            if p["padding"] == "same" and p["stride"] > 1:
                raise ValueError("strided 'same' convolutions are not in the zoo")
            module = nn.Conv1d(w["w"].shape[1], p["filters"], p["kernel"], stride=p["stride"], padding=pad,
                               dilation=p["dilation"])
            module.weight.data = tensor(w["w"])
            module.bias.data = tensor(w["b"])
            return module
        if kind == "conv_transpose":
            k = p["kernel"]
            module = nn.ConvTranspose1d(w["w"].shape[0], p["filters"], k, padding=(k - 1) // 2)
            if k % 2 == 0:
                raise ValueError("even-kernel transposed convolutions are not in the zoo")
            module.weight.data = tensor(w["w"])
            module.bias.data = tensor(w["b"])
            return module
        if kind == "batch_norm":
            module = nn.BatchNorm1d(len(w["gamma"]), eps=p["eps"])
            module.weight.data, module.bias.data = tensor(w["gamma"]), tensor(w["beta"])
            module.running_mean.data, module.running_var.data = tensor(w["mean"]), tensor(w["var"])
            return module
        if kind == "dense":
            module = nn.Linear(w["w"].shape[1], p["units"])
            weight = w["w"]
            source = spec.flatten_source(layer)
            if source is not None:  # neutral flatten is position-major; torch flattens channel-major
                channels, length = source
                weight = weight.reshape(-1, length, channels).transpose(0, 2, 1).reshape(weight.shape[0], -1)
            module.weight.data = tensor(weight)
            module.bias.data = tensor(w["b"])
            return module
        simple = {
            "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softplus": nn.Softplus,
            "flatten": nn.Flatten,
        }
        if kind in simple:
            return simple[kind]()
        if kind == "exp":
            return _Lambda(torch.exp)
        if kind == "max_pool":
            return nn.MaxPool1d(p["size"])
        if kind == "avg_pool":
            return nn.AvgPool1d(p["size"])
        if kind == "global_avg_pool":
            return _Lambda(lambda t: t.mean(dim=2))
        raise ValueError(f"layer kind {kind!r} has no PyTorch builder")

    class _Lambda(nn.Module):
        def __init__(self, function):
            super().__init__()
            self.function = function

        def forward(self, x):
            return self.function(x)

    return SpecModule().eval()
