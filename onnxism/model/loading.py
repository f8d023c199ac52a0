"""``load``: a model file or graph read, repaired and rewritten by the LOAD pipeline (``passes/pipeline.py``) into
the SequenceModel every method scores."""

import os

import onnx

from ..errors import InputError
from ..passes.base import run_pipeline
from ..passes.pipeline import LOAD, LoadContext
from .reading import read_model, repair
from .sequence_model import SequenceModel
from .tokens import parse_tokens


def load(model, *, input=None, layout=None, tokens=None):
    """Load an ONNX model for onnxism.

    Parameters
    ----------
    model : str, os.PathLike, onnx.ModelProto or SequenceModel
        The model file, an in-memory graph, or an already loaded model (returned as is).
    input : str, optional
        The name of the sequence input; by default the one input with an axis of size 4.
    layout : {"NLC", "NCL"}, optional
        (N, L, 4) channels-last or (N, 4, L) channels-first; detected from the input shape by default.
    tokens : str or dict, optional
        For a model whose sequence input is integer ids (N, L): the id of each base, "ACGTN" (A=0, ..., N=4; any
        other character skips an id), "A=7,C=8,G=9,T=10,N=11" or a dict. The model is then read as taking one-hot
        sequences like any other (``passes/fold_tokens.py``); without an id for N, sequences with N are refused.

    Returns
    -------
    SequenceModel
    """
    if isinstance(model, SequenceModel):
        if input is not None and input != model.input_name:
            raise InputError(f"the loaded model's sequence input is {model.input_name!r}, not {input!r}")
        if tokens is not None and (model.tokens is None or parse_tokens(tokens) != model.tokens):
            raise InputError("the model is already loaded; give tokens= to load() when loading it")
        return model
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        proto, source = repair(copy), "model"
    elif isinstance(model, (str, os.PathLike)):
        proto, source = read_model(model), os.fspath(model)
    else:
        raise InputError(f"model must be a path, an onnx.ModelProto or a loaded model, not {type(model).__name__}")
    if tokens is not None:
        tokens = parse_tokens(tokens)
        if layout is not None:
            raise InputError("layout= does not apply to a token input (tokens=): it is read as (N, L, 4)")
    run = run_pipeline(LOAD, proto, LoadContext(source=source, owned=True, input=input, layout=layout, tokens=tokens))
    found = run.ctx
    return SequenceModel(run.proto, found.found, source=source, fixed_batch=found.fixed_batch,
                         exported_batch=found.exported_batch, tokens=tokens, dilated=found.dilated,
                         unrolled=found.unrolled)
