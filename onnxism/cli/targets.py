"""``--targets SPEC`` of ``run`` and ``compile``: the command line's spelling of a target spec
(``methods/targets.py``)."""

import numpy as np

from ..errors import InputError
from ..io.user_files import read_npy

TARGET_HELP = ("what f is, for every output scored: all (every output element; the default), sum, mean, an index "
               "such as 5 or 500,0 (one element), or a .npy file of weights of the output's shape (one target) or "
               "(K, *shape) (K targets)")


def parse_target(text):
    """"all" / "sum" / "mean" / "I" / "I,J,..." / "FILE.npy" (weights) -> a target spec for onnxism.ism and
    onnxism.tism."""
    text = text.strip()
    if text in ("all", "sum", "mean"):
        return text
    if text.endswith(".npy"):
        try:
            weights = read_npy(text)
        except InputError as err:
            raise InputError(f"--targets: cannot read the weights: {err}") from err
        if not np.issubdtype(weights.dtype, np.number) or np.issubdtype(weights.dtype, np.complexfloating):
            raise InputError(f"--targets {text}: weights must be real numbers; got dtype {weights.dtype}")
        return weights
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as err:
        raise InputError(f"--targets must be all, sum, mean, an index such as 5 or 500,0, or a .npy file of "
                         f"weights; got {text!r}") from err
