"""The check every converter ends with: the converted ONNX model, run by onnxruntime on random one-hot sequences
(token ids for a model of tokens), gives the framework's own predictions.

Tolerance: each output within ``ATOL`` x max(1, largest magnitude of the framework's output), no relative part;
NaN only where the framework has NaN. A failed check raises ModelError (the converter then writes no file).
"""

import numpy as np

from onnxism.errors import ModelError

ATOL = 1e-4
CHECK_BATCH = 2


def random_onehot_like(shape, channel_axis, seed=0):
    """float32 one-hot of ``shape`` along ``channel_axis`` (whose size is 4), the same random bases each call."""
    shape = tuple(int(size) for size in shape)
    rng = np.random.default_rng(seed)
    moved = shape[:channel_axis] + shape[channel_axis + 1:] + (shape[channel_axis],)
    onehot = np.eye(shape[channel_axis], dtype=np.float32)[rng.integers(0, shape[channel_axis], size=moved[:-1])]
    return np.moveaxis(onehot, -1, channel_axis)


def random_sequences(shape, dtype, seed=0):
    """Random sequences for an input of ``shape`` and numpy ``dtype``: one-hot along the channels where it is a float
    input (N, 4, L) or (N, L, 4), else token ids 0-3 (an embedding's input, (N, L))."""
    shape = tuple(int(size) for size in shape)
    if np.issubdtype(dtype, np.floating) and len(shape) == 3 and 4 in shape[1:]:
        return random_onehot_like(shape, 1 if shape[1] == 4 else 2, seed).astype(dtype)
    return np.random.default_rng(seed).integers(0, 4, size=shape).astype(dtype)


def check_against_framework(proto, feeds, expected, *, source):
    """Run ``proto`` on ``feeds`` ({input name: array}) and compare with ``expected`` (the framework's outputs, a list
    in the model's output order); returns the largest scaled difference, raises ModelError over ``ATOL``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        got = session.run(None, {name: np.ascontiguousarray(value) for name, value in feeds.items()})
    except Exception as err:  # onnxruntime raises its own types for graphs it cannot load or run
        raise ModelError(f"the ONNX model converted from {source} does not run in onnxruntime: "
                         f"{str(err).splitlines()[0]}") from err
    names = [output.name for output in proto.graph.output]
    if len(got) != len(expected):
        raise ModelError(f"the ONNX model converted from {source} has {len(got)} outputs, the framework gave "
                         f"{len(expected)}")
    worst = 0.0
    for name, value, reference in zip(names, got, expected):
        reference = np.asarray(reference, dtype=np.float64)
        value = np.asarray(value, dtype=np.float64)
        if value.size != reference.size:
            raise ModelError(f"the ONNX model converted from {source} gives output {name} of shape {value.shape}, "
                             f"the framework {reference.shape}")
        value = value.reshape(reference.shape)
        if not np.array_equal(np.isnan(value), np.isnan(reference)):
            raise ModelError(f"the ONNX model converted from {source} gives NaN in output {name} where the framework "
                             "does not (or the reverse)")
        finite = ~np.isnan(reference)
        if not finite.any():
            continue
        scale = max(1.0, float(np.abs(reference[finite]).max()))
        error = float(np.abs(value[finite] - reference[finite]).max()) / scale
        if not error <= ATOL:
            raise ModelError(f"the ONNX model converted from {source} disagrees with the framework on output {name}: "
                             f"off by {error:.2g} of its scale (tolerance {ATOL:g}); the file was not written")
        worst = max(worst, error)
    return worst
