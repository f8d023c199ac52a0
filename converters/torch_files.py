"""Saved PyTorch models -> ONNX: a ``torch.export`` program (``.pt2``, from ``torch.export.save``) through the dynamo
exporter, a TorchScript file (``torch.jit.save``) through the legacy exporter (the one that takes script modules).
Both go through ``torch_to_onnx``: the same op translations, the same check against the model's own predictions.
"""

import os

from onnxism.errors import InputError, ModelError

from ._extras import require
from .torch_export import _first_line, _quiet_exporters, torch_to_onnx

PROGRAM_SUFFIXES = (".pt2",)
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".pth", ".jit")
EXAMPLE_BATCH = 2
ANY_LENGTH_EXAMPLE = 64  # the length a model for any length is exported (and first checked) at


def torch_file_to_onnx(source, path, *, opset=18, length=None, batch_size=None, layout="NCL"):
    """Convert a saved torch model at ``source`` to ONNX at ``path`` (written only once the check passed).

    Parameters
    ----------
    source : str
        A ``.pt2`` file of ``torch.export.save``, or a TorchScript file (``.pt``, ``.ts``, ...) of ``torch.jit.save``.
    length : int or "any", optional
        The sequence length to export for, or "any" for a dynamic length where the model allows it (checked at two
        lengths). None: a program's own length (any, where its length is dynamic); required for TorchScript.
    batch_size : int, optional
        A fixed batch size; None (default) exports a dynamic batch axis.
    layout : {"NCL", "NLC"}
        The input layout of a TorchScript model, (N, 4, L) or (N, L, 4); a program's is read from its input.

    Returns
    -------
    onnx.ModelProto
    """
    source = os.fspath(source)
    if not os.path.isfile(source):
        raise InputError(f"PyTorch model not found: {source}")
    if layout not in ("NCL", "NLC"):
        raise InputError(f"layout must be NCL or NLC, not {layout!r}")
    torch = require("torch", "torch")
    name = os.path.basename(source)
    if source.endswith(PROGRAM_SUFFIXES):
        module, shape, channel_axis, dynamic = _load_program(torch, source, name)
        length_axis = 3 - channel_axis
        if length is None:
            length = "any" if dynamic else shape[length_axis]
        elif length == "any" and not dynamic:
            raise InputError(f"{name} was exported for length {shape[length_axis]} only: export it with a dynamic "
                             "length (torch.export.Dim) to convert it for any length, or leave --length out")
        elif length != "any" and not dynamic and length != shape[length_axis]:
            raise InputError(f"{name} was exported for length {shape[length_axis]}, not {length}: leave --length out")
        if isinstance(shape[0], int) and batch_size is None:
            raise InputError(f"{name} was exported for batch size {shape[0]} only: pass --batch {shape[0]}, or "
                             "export it with a dynamic batch (dynamic_shapes={0: torch.export.Dim('batch')}) for "
                             "a dynamic batch")
        if isinstance(shape[0], int) and batch_size != shape[0]:
            raise InputError(f"{name} was exported for batch size {shape[0]}, not {batch_size}: pass --batch "
                             f"{shape[0]}")
        dynamo = True
    elif source.endswith(TORCHSCRIPT_SUFFIXES):
        if length is None:
            raise InputError(f"a TorchScript file does not say its sequence length: give --length for {name} (a "
                             "number, or 'any')")
        try:
            with _quiet_exporters():
                module = torch.jit.load(source, map_location="cpu")
        except Exception as err:  # torch raises RuntimeError and others for files it cannot read
            raise ModelError(f"cannot load {name} as TorchScript ({_first_line(err)}); a state dict needs its "
                             "module's code: save the model with torch.jit.save or torch.export.save") from err
        channel_axis = 1 if layout == "NCL" else 2
        dynamo = False
    else:
        raise InputError(f"cannot convert {name}: expected a .pt2 file (torch.export.save) or a TorchScript file "
                         f"({', '.join(TORCHSCRIPT_SUFFIXES)}, torch.jit.save)")
    fixed = ANY_LENGTH_EXAMPLE if length == "any" else int(length)
    example = [batch_size or EXAMPLE_BATCH, 4, fixed] if channel_axis == 1 else [batch_size or EXAMPLE_BATCH, fixed, 4]
    return torch_to_onnx(module, torch.zeros(example), path, dynamo=dynamo, opset=opset,
                         dynamic_batch=batch_size is None, dynamic_length=length == "any", source=name)


def _load_program(torch, source, name):
    """(module, input shape, channel axis, whether the length is dynamic) of a saved torch.export program."""
    try:
        with _quiet_exporters():
            program = torch.export.load(source)
    except Exception as err:  # torch raises many types for files it cannot read
        raise ModelError(f"cannot load {name} as a torch.export program: {_first_line(err)}") from err
    inputs = list(program.graph_signature.user_inputs)
    if len(inputs) != 1:
        raise InputError(f"{name} takes {len(inputs)} inputs; onnxism convert takes a model of the sequences only "
                         "(convert one with more inputs with onnxism_converters.torch_to_onnx(extra_inputs=...))")
    node = next(node for node in program.graph.nodes if node.op == "placeholder" and node.name == inputs[0])
    shape = list(node.meta["val"].shape)
    static = [isinstance(size, int) for size in shape]
    if len(shape) != 3 or not any(static[axis] and shape[axis] == 4 for axis in (1, 2)):
        raise InputError(f"{name} takes an input of shape {tuple(shape)}; expected one-hot sequences, (N, 4, L) or "
                         "(N, L, 4)")
    channel_axis = 1 if static[1] and shape[1] == 4 else 2
    return program.module(), shape, channel_axis, not static[3 - channel_axis]
