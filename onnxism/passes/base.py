"""The pass protocol: a pass is ``run(proto, ctx) -> PassResult``, a pipeline a tuple of named passes.

A pass returns the model it leaves (``proto`` itself where it changed nothing; a rewritten copy otherwise: the model
it was given is never changed), whether it changed it, a note saying what it did, and the facts it found for the
passes after it (``updates``: fields of the pipeline's context, a frozen dataclass). ``run_pipeline`` threads the
model and the context through the passes in order. A pass refuses what it cannot handle with an OnnxismError (an
UnsupportedGraphError naming the node and op, or a ModelError), which passes through with the pass's name attached
(``err.pass_name``); any other exception is a bug and is raised as a PassError naming the pass, the original
chained.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from ..errors import OnnxismError


@dataclass(frozen=True)
class PassResult:
    proto: object  # onnx.ModelProto
    changed: bool = False
    note: str = ""
    updates: dict = field(default_factory=dict)


def unchanged(proto, note=""):
    return PassResult(proto, False, note)


def editable(proto, ctx):
    """The model a pass may rewrite: ``proto`` itself where the pipeline owns it (``ctx.owned``: a model just read
    from a file, or the copy ``load`` made), else a copy."""
    if getattr(ctx, "owned", False):
        return proto
    copy = type(proto)()
    copy.CopyFrom(proto)
    return copy


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable  # (proto, ctx) -> PassResult


class PassError(RuntimeError):
    """A pass failed unexpectedly (a bug, not a graph it declares it cannot handle)."""

    def __init__(self, pass_name, error):
        super().__init__(f"pass {pass_name!r} failed: {type(error).__name__}: {error}")
        self.pass_name = pass_name


@dataclass(frozen=True)
class PipelineRun:
    proto: object
    ctx: object
    results: tuple  # ((pass name, PassResult), ...)

    def changed(self, name):
        return any(result.changed for step, result in self.results if step == name)


def run_pipeline(passes, proto, ctx):
    """Run ``passes`` in order on ``proto`` with context ``ctx``; returns the PipelineRun."""
    results = []
    for step in passes:
        try:
            result = step.run(proto, ctx)
        except MemoryError:
            raise
        except OnnxismError as err:
            err.pass_name = step.name
            raise
        except Exception as err:
            raise PassError(step.name, err) from err
        if result.updates:
            ctx = dataclasses.replace(ctx, **result.updates)
        proto = result.proto
        results.append((step.name, result))
    return PipelineRun(proto, ctx, tuple(results))
