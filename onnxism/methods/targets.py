"""Scalar targets: which linear combinations of an output's elements a method scores (TISM differentiates them,
ISM takes their change).

Invariant: a resolved target is a seed matrix (T, *output_shape) plus the result shape its T rows fold into;
target t is the scalar sum(seeds[t] * output) of each sequence's output.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass
class Target:
    seeds: np.ndarray   # (T, *output_shape) float32
    shape: tuple        # result shape, prod(shape) == T


def resolve_target(spec, name, shape):
    """One output's target spec -> Target. Specs: None/"all", "sum", "mean", an index, or a weight array."""
    size = math.prod(shape)
    if is_whole(spec):
        return Target(np.eye(size, dtype=np.float32).reshape((size,) + shape), shape)
    if isinstance(spec, str):
        if spec == "sum":
            return Target(np.ones((1,) + shape, dtype=np.float32), ())
        if spec == "mean":
            return Target(np.full((1,) + shape, 1.0 / size, dtype=np.float32), ())
        raise InputError(f"unknown target {spec!r} for output {name!r}; use 'all', 'sum', 'mean', an index "
                         "or a weight array")
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        spec = (int(spec),)
    if isinstance(spec, tuple) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in spec):
        if len(spec) != len(shape) or not all(-n <= v < n for v, n in zip(spec, shape)):
            raise InputError(f"target index {spec} does not fit output {name!r} of shape {shape} per sequence")
        seeds = np.zeros((1,) + shape, dtype=np.float32)
        seeds[(0,) + tuple(int(v) for v in spec)] = 1.0
        return Target(seeds, ())
    try:
        weights = np.asarray(spec, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"target for output {name!r} is not 'all', 'sum', 'mean', an index or weights") from err
    if weights.ndim < len(shape) or weights.shape[weights.ndim - len(shape):] != shape:
        raise InputError(
            f"target weights for output {name!r} have shape {weights.shape}; need {shape} (one target) or "
            f"(K, *{shape}) (K targets)"
        )
    if not np.isfinite(weights).all():
        raise InputError(f"target weights for output {name!r} contain NaN or infinity")
    lead = weights.shape[: weights.ndim - len(shape)]
    if math.prod(lead) == 0:
        raise InputError(f"target weights for output {name!r} have shape {weights.shape}: no targets")
    return Target(weights.reshape((math.prod(lead),) + shape), lead)


def is_whole(spec):
    """Whether ``spec`` asks for every element (the default)."""
    return spec is None or (isinstance(spec, str) and spec == "all")


def resolve_targets(targets, names, shapes, *, skip_whole=False):
    """``targets`` (one spec for every output, or a dict name -> spec) -> {name: Target} for ``names``;
    ``skip_whole``: leave out the outputs whose spec is every element (no identity seeds are made for them)."""
    if isinstance(targets, dict):
        unknown = [key for key in targets if key not in names]
        if unknown:
            raise InputError(f"targets name output {unknown[0]!r}, which is not among {', '.join(names)}")
        specs = {name: targets[name] for name in names if name in targets}
    else:
        specs = {name: targets for name in names}
    return {name: resolve_target(spec, name, shapes[name]) for name, spec in specs.items()
            if not (skip_whole and is_whole(spec))}


def outputs_and_targets(model, outputs, targets, length, device, *, skip_whole=False):
    """(output names, every output's shape, {name: Target}) for a loaded model at ``length``: a dict of targets
    picks the outputs when ``outputs`` is None; ``skip_whole`` as for :func:`resolve_targets`."""
    if isinstance(targets, dict) and outputs is None:
        outputs = list(targets)
    names = model.select_outputs(outputs)
    shapes = model.output_shapes(length, device)
    return names, shapes, resolve_targets(targets, names, shapes, skip_whole=skip_whole)
