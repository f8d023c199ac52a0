"""The model zoo's architectures as :class:`Spec` builders: Basset, Factorized Basset, BPNet, DeepSEA, Beluga and
small variants for tests. Architectures follow the published models (and fastISM's zoo for the first three);
weights are random with fixed seeds."""

from .spec import Spec


def basset(length=1000, outputs=164, widths=(300, 200, 200), kernels=(19, 11, 7), pools=(3, 4, 4), dense=1000,
           name="basset", seed=1):
    s = Spec(name, length, seed=seed)
    x = 0
    for width, kernel, pool in zip(widths, kernels, pools):
        x = s.max_pool(s.batch_norm(s.relu(s.conv(x, width, kernel))), pool)
    x = s.relu(s.dense(s.flatten(x), dense))
    x = s.relu(s.dense(x, dense))
    s.output("logits", s.dense(x, outputs))
    return s


def factorized_basset(length=1000, outputs=164, scale=1.0, dense=1000, name="factorized_basset", seed=2):
    def w(n):
        return max(2, int(round(n * scale)))

    s = Spec(name, length, seed=seed)
    x = 0
    for filters, kernel in ((48, 3), (64, 3), (100, 3), (150, 7), (300, 7)):
        x = s.relu(s.batch_norm(s.conv(x, w(filters), kernel)))
    x = s.max_pool(x, 3)
    for filters, kernel in ((200, 7), (200, 3), (200, 3)):
        x = s.relu(s.batch_norm(s.conv(x, w(filters), kernel)))
    x = s.max_pool(x, 4)
    x = s.relu(s.batch_norm(s.conv(x, w(200), 7)))
    x = s.max_pool(x, 4)
    x = s.relu(s.dense(s.flatten(x), dense))
    x = s.relu(s.dense(x, dense))
    s.output("logits", s.dense(x, outputs))
    return s


def bpnet(length=1000, dilated=9, filters=64, first_kernel=25, profile_kernel=25, name="bpnet", seed=3):
    s = Spec(name, length, seed=seed)
    x = s.relu(s.conv(0, filters, first_kernel))
    for i in range(dilated):
        x = s.add(s.relu(s.conv(x, filters, 3, dilation=2 ** i)), x)
    s.output("profile", s.squeeze_channels(s.conv_transpose(x, 1, profile_kernel)))
    s.output("counts", s.dense(s.global_avg_pool(x), 1))
    return s


def deepsea(length=1000, widths=(320, 480, 960), dense=925, outputs=919, name="deepsea", seed=4):
    s = Spec(name, length, seed=seed)
    x = s.max_pool(s.relu(s.conv(0, widths[0], 8, padding="valid")), 4)
    x = s.max_pool(s.relu(s.conv(x, widths[1], 8, padding="valid")), 4)
    x = s.relu(s.conv(x, widths[2], 8, padding="valid"))
    x = s.relu(s.dense(s.flatten(x), dense))
    s.output("probabilities", s.activation(s.dense(x, outputs), "sigmoid"))
    return s


def beluga(length=2000, widths=(320, 480, 640), dense=2003, outputs=2002, name="beluga", seed=5):
    s = Spec(name, length, seed=seed)
    x = 0
    for stage, width in enumerate(widths):
        x = s.relu(s.conv(s.relu(s.conv(x, width, 8, padding="valid")), width, 8, padding="valid"))
        if stage < 2:
            x = s.max_pool(x, 4)
    x = s.relu(s.dense(s.flatten(x), dense))
    s.output("probabilities", s.activation(s.dense(x, outputs), "sigmoid"))
    return s


#: name -> builder; the "_small" variants keep each architecture's shape at a size tests run in seconds.
ZOO = {
    "basset": basset,
    "factorized_basset": factorized_basset,
    "bpnet": bpnet,
    "deepsea": deepsea,
    "beluga": beluga,
    "basset_small": lambda: basset(length=120, outputs=5, widths=(16, 12, 12), dense=24, name="basset_small"),
    "factorized_basset_small": lambda: factorized_basset(
        length=120, outputs=5, scale=0.08, dense=24, name="factorized_basset_small"),
    "bpnet_small": lambda: bpnet(length=100, dilated=4, filters=8, first_kernel=9, profile_kernel=7,
                                 name="bpnet_small"),
    "deepsea_small": lambda: deepsea(length=200, widths=(8, 12, 16), dense=16, outputs=6, name="deepsea_small"),
    "beluga_small": lambda: beluga(length=340, widths=(8, 12, 16), dense=16, outputs=6, name="beluga_small"),
}


def build_spec(name, length=None):
    """The :class:`Spec` of zoo model ``name``, at its default length or (full-size models) at ``length``."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}")
    if length is None:
        return ZOO[name]()
    if name.endswith("_small"):
        raise ValueError(f"{name} has a fixed length; choose the length of full-size models only")
    return ZOO[name](length=length)
