"""PyTorch module -> ONNX through ``torch.onnx.export``, batch axis dynamic, weights embedded, then checked against
the module's own predictions (``checking.py``)."""

import contextlib
import logging
import os
import re
import tempfile
import warnings

import onnx

from onnxism.errors import ModelError
from onnxism.model.reading import repair

from ._extras import require
from .checking import CHECK_BATCH, check_against_framework, random_sequences


def torch_to_onnx(module, example_input, path=None, *, dynamo=True, opset=18, input_name="seqs",
                  output_names=None, extra_inputs=None, dynamic_batch=True, dynamic_length=False, check=True,
                  source="the PyTorch module"):
    """Export ``module`` (taking (N, 4, L) or whatever ``example_input`` shows) to ONNX.

    ``lgamma`` and ``xlogy``, which neither exporter translates, are given to both (``torch_ops.py``). Values that
    depend on the length only (Enformer's positional features) are folded into constants when the length is fixed.

    Parameters
    ----------
    module : torch.nn.Module
        Put in eval mode before export.
    example_input : torch.Tensor
        One example batch, (N, 4, L) or (N, L, 4) (the axis of size 4 after the batch is the channels).
    path : str, optional
        Where to write the .onnx file (single file, no external data); written only once the check passed.
    dynamo : bool
        True for the torch.export-based exporter (the default in torch >= 2.9), False for the legacy one.
    output_names : list of str, optional
        Names of the module's outputs, in order.
    extra_inputs : dict of str to torch.Tensor, optional
        The module's inputs after the sequences (a control track, ...), by ONNX input name, in the order
        ``forward`` takes them, each an example batch of the same size; their batch axis is dynamic too.
    dynamic_batch, dynamic_length : bool
        Export the batch axis (default) and the sequence's length axis as dynamic; otherwise fixed to the example's.
    check : bool
        Compare the ONNX model's predictions on random one-hot sequences with the module's; ModelError if they
        differ by more than ``checking.ATOL`` of the output's scale. With ``dynamic_length``, at the example's
        length and at twice it: an exporter that folded the length into a constant is caught there.

    Returns
    -------
    onnx.ModelProto, with an IR version onnxruntime reads.
    """
    torch = require("torch", "torch")
    from .torch_ops import register_legacy_symbolics, translation_table

    try:
        module = module.eval()
    except (NotImplementedError, RuntimeError):  # a torch.export program's module() has no train mode to leave
        pass
    extra_inputs = dict(extra_inputs or {})
    examples = (example_input,) + tuple(extra_inputs.values())
    names = [input_name] + list(extra_inputs)
    length_axis = 2 if example_input.ndim == 3 and example_input.shape[1] == 4 else 1  # else (N, L, 4) or tokens
    axes = [{} for _ in names]
    if dynamic_batch:
        for named in axes:
            named[0] = "batch"
    if dynamic_length:
        axes[0][length_axis] = "length"
    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "model.onnx")
        with torch.no_grad(), _quiet_exporters():
            try:
                if dynamo:
                    require("onnxscript", "torch")
                    dims = {"batch": torch.export.Dim("batch", min=1), "length": torch.export.Dim("length", min=2)}
                    shapes = tuple({axis: dims[name] for axis, name in named.items()} or None for named in axes)
                    torch.onnx.export(
                        module, examples, target, dynamo=True, external_data=False, opset_version=opset,
                        input_names=names, output_names=output_names, dynamic_shapes=shapes, verbose=False,
                        custom_translation_table=translation_table(),
                    )
                else:
                    register_legacy_symbolics(min(opset, 20))
                    dynamic = {name: named for name, named in zip(names, axes) if named}
                    if dynamic_batch:
                        dynamic.update({name: {0: "batch"} for name in output_names or []})
                    torch.onnx.export(
                        module, examples, target, dynamo=False, opset_version=min(opset, 20),
                        input_names=names, output_names=output_names, dynamic_axes=dynamic or None,
                    )
            except Exception as err:  # the exporters raise many types; their first line names the op or shape
                raise ModelError(f"torch could not export {source}: {_first_line(err)}") from err
        proto = onnx.load(target)
    proto = repair(proto, source="exported model")
    if check:
        shape = list(example_input.shape)
        if dynamic_batch:
            shape[0] = CHECK_BATCH
        lengths = [shape[length_axis]] + ([2 * shape[length_axis]] if dynamic_length else [])
        for length in lengths:  # at a second length too: a length folded in where it should not be is caught
            shape[length_axis] = length
            seqs = random_sequences(shape, example_input.numpy().dtype)
            extras = {name: _batch_like(value, shape[0], torch) for name, value in extra_inputs.items()}
            try:
                with torch.no_grad():
                    out = module(torch.from_numpy(seqs), *extras.values())
            except Exception as err:  # the module's own refusal of this length
                raise ModelError(f"{source} does not run at length {length}: {_first_line(err)}; export it for "
                                 "a fixed length") from err
            out = out if isinstance(out, (tuple, list)) else (out,)
            feeds = {input_name: seqs, **{name: value.numpy() for name, value in extras.items()}}
            check_against_framework(proto, feeds, [o.detach().numpy() for o in out],
                                    source=f"{source} (length {length})")
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _batch_like(value, batch, torch):
    """The example ``value`` repeated (or cut) to ``batch`` rows."""
    reps = -(-batch // value.shape[0])
    return torch.cat([value] * reps)[:batch]


def _first_line(err):
    """The first line of the innermost cause of ``err`` (the exporters wrap the error that names the op or shape in
    errors of their own that say which step failed), without terminal colours."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[0] if len(lines[0]) <= 160 else lines[0].split(". ")[0]


@contextlib.contextmanager
def _quiet_exporters():
    """The exporters' and loaders' warnings and log lines (skipped torchvision ops, training-mode notices, the
    traceback torch.export.load logs before raising) kept off stderr: what matters is whether the export fails, and
    the check that follows it."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
