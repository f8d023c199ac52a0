"""Find the sequence input of a graph and its layout.

The sequence input is a rank-3 floating-point input with an axis of size 4 (the alphabet): (N, L, 4) is the
channels-last layout Keras/tf2onnx produce ("NLC"), (N, 4, L) the channels-first layout PyTorch produces ("NCL").
"""

from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import InputError, ModelError

LAYOUTS = ("NLC", "NCL")
_LAYOUT_ALIASES = {
    "nlc": "NLC", "channels_last": "NLC", "nwc": "NLC",
    "ncl": "NCL", "channels_first": "NCL", "ncw": "NCL",
}


@dataclass(frozen=True)
class ExtraInput:
    """An input besides the sequences (a control track, a bias profile, a cell type): the caller gives its values
    per sequence and substitutions leave them as they are. ``shape``: its axes after the batch, None where an axis
    is as long as the sequences (dynamic, named like the sequence input's length)."""

    name: str
    shape: tuple
    dtype: np.dtype

    def shape_at(self, length):
        """Its axes after the batch for sequences of ``length``."""
        return tuple(length if size is None else size for size in self.shape)


@dataclass(frozen=True)
class SequenceInput:
    """Where the one-hot sequences go: input name, layout, fixed length (None if dynamic), fixed batch, dtype; and
    the model's other inputs."""

    name: str
    layout: str
    length: object
    batch: object
    dtype: np.dtype
    others: tuple = ()


#: The lengths at which a rewrite of a model of any length (freeing its batch, reading space-to-batch convolutions,
#: unrolling a batch stack) is checked: it is kept only if it computes the model's outputs at every one of them
#: where the model runs, two at least.
CHECK_LENGTHS = (256, 1000, 2048)


def to_model_layout(found, seqs):
    """(n, L, 4) one-hot -> the array the sequence input ``found`` takes (layout and dtype)."""
    if found.layout == "NCL":
        seqs = seqs.transpose(0, 2, 1)
    return np.ascontiguousarray(seqs, dtype=found.dtype)


def model_feeds(found, seqs, extras=None):
    """The inputs of one run: (n, L, 4) sequences in the model's layout, and the extra inputs' rows (``extras``:
    name -> (n, ...) array, checked by ``extra_inputs.check_extra_inputs``)."""
    feeds = {found.name: to_model_layout(found, seqs)}
    for extra in found.others:
        if extra.name not in (extras or {}):
            raise InputError(f"the model's extra input {extra.name!r} needs its values (extras=)")
        feeds[extra.name] = np.ascontiguousarray(extras[extra.name], dtype=extra.dtype)
    return feeds


def random_feeds(found, count, rng):
    """Random values for every input, ``count`` rows, for checks of graph rewrites: one set of feeds at the
    model's length, or one at each of CHECK_LENGTHS for a model of any length."""
    cases = []
    for length in (found.length,) if found.length is not None else CHECK_LENGTHS:
        seqs = rng.random((count, length, 4)).astype(np.float32)
        extras = {}
        for extra in found.others:
            shape = (count,) + extra.shape_at(length)
            if np.issubdtype(extra.dtype, np.floating):
                extras[extra.name] = rng.random(shape).astype(extra.dtype)
            else:
                extras[extra.name] = rng.integers(0, 2, shape).astype(extra.dtype)
        cases.append(model_feeds(found, seqs, extras))
    return cases


def graph_inputs(graph):
    """The real inputs of a graph (old exports also list initializers as inputs)."""
    initializers = {init.name for init in graph.initializer}
    return [value for value in graph.input if value.name not in initializers]


def find_sequence_input(graph, *, input=None, layout=None):
    """Return the :class:`SequenceInput` of ``graph``; ``input`` names it, ``layout`` overrides detection."""
    inputs = graph_inputs(graph)
    names = [value.name for value in inputs]
    if input is not None:
        chosen = [value for value in inputs if value.name == input]
        if not chosen:
            raise ModelError(f"the model has no input named {input!r}; its inputs are: {', '.join(names)}")
        value = chosen[0]
        if not _plausible(value):
            raise ModelError(
                f"input {input!r} has shape {_shape_text(value)}; a sequence input needs shape "
                "(N, L, 4) or (N, 4, L) and a floating-point type"
            )
    else:
        candidates = [value for value in inputs if _plausible(value)]
        if not candidates:
            shapes = "; ".join(f"{v.name} {_shape_text(v)}" for v in inputs) or "none"
            if any(len(_dims(v)) == 2 for v in inputs):
                raise ModelError(
                    f"the model takes no one-hot sequences but has an input of shape (N, L) ({shapes}): if it "
                    "takes bases as integer ids, say which id each base has: onnxism.load(model, tokens='ACGTN') "
                    "or --tokens ACGTN for A=0, C=1, G=2, T=3, N=4"
                )
            raise ModelError(
                "the model has no plausible sequence input: expected a floating-point input of shape (N, L, 4) "
                f"or (N, 4, L), found: {shapes}"
            )
        if len(candidates) > 1:
            raise ModelError(
                "the model has several possible sequence inputs "
                f"({', '.join(v.name for v in candidates)}); name one with input="
            )
        value = candidates[0]
    dims = _dims(value)
    resolved = _resolve_layout(value.name, dims, layout)
    length_axis = 2 if resolved == "NCL" else 1
    length = dims[length_axis]
    length_name = value.type.tensor_type.shape.dim[length_axis].dim_param or None
    others = tuple(_extra_input(other, length_name) for other in inputs if other.name != value.name)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
    return SequenceInput(value.name, resolved, length, dims[0], np.dtype(dtype), others)


def _extra_input(value, length_name):
    """The ExtraInput of graph input ``value``: a batch axis first, every other axis fixed or the sequence length."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape") or len(tensor.shape.dim) == 0:
        raise ModelError(f"the model's input {value.name!r} has no declared shape; onnxism needs its axes after the "
                         "batch fixed (or as long as the sequences)")
    shape = []
    for axis, dim in enumerate(tensor.shape.dim[1:], start=1):
        if dim.HasField("dim_value"):
            shape.append(dim.dim_value)
        elif length_name is not None and dim.dim_param == length_name:
            shape.append(None)
        else:
            raise ModelError(f"the model's input {value.name!r} has shape {_shape_text(value)}: its axis {axis} is "
                             "dynamic and not the sequence length; onnxism needs it fixed")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    return ExtraInput(value.name, tuple(shape), np.dtype(dtype))


def normalise_layout(layout):
    """Map user spellings of a layout to "NLC" or "NCL"; None stays None."""
    if layout is None:
        return None
    resolved = _LAYOUT_ALIASES.get(str(layout).lower())
    if resolved is None:
        raise ModelError(f"unknown layout {layout!r}; use 'NLC' (channels last) or 'NCL' (channels first)")
    return resolved


def _resolve_layout(name, dims, layout):
    layout = normalise_layout(layout)
    if layout is not None:
        axis = 2 if layout == "NLC" else 1
        if dims[axis] not in (4, None):
            raise ModelError(
                f"layout {layout} puts the alphabet on axis {axis} of {name!r}, but that axis has size {dims[axis]}"
            )
        return layout
    last, middle = dims[2] == 4, dims[1] == 4
    if last and middle:
        raise ModelError(
            f"cannot tell the layout of {name!r} (shape {tuple(dims)}): pass layout='NLC' or layout='NCL'"
        )
    return "NLC" if last else "NCL"


def _plausible(value):
    tensor = value.type.tensor_type
    if tensor.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        return False
    if not tensor.HasField("shape") or len(tensor.shape.dim) != 3:
        return False
    dims = _dims(value)
    return 4 in (dims[1], dims[2])


def _dims(value):
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]


def _shape_text(value):
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return "(unknown shape)"
    names = [str(dim.dim_value) if dim.HasField("dim_value") else (dim.dim_param or "?") for dim in tensor.shape.dim]
    return "(" + ", ".join(names) + ")"
