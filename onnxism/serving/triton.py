"""A Triton model repository of served graphs (``onnxism export triton``): one model folder per method,
``NAME_METHOD/config.pbtxt`` and ``NAME_METHOD/1/model.onnx`` (plus ``1/model.py`` for the python backend).

The onnxruntime backend's config (``platform: "onnxruntime_onnx"``) asks for what onnxism's precision needs on a
GPU: the CUDA provider with ``use_tf32 "0"`` and ``cudnn_conv_algo_search`` DEFAULT (Triton's backend otherwise
searches exhaustively, and TF32 changes the scores). The python backend's twin runs the same ONNX file with
onnxruntime inside the server and checks each request first (``python_model.py``): it is what the Triton that
``nvidia-pytriton`` bundles (python backend only, CPU) can serve.

Invariant: a model folder appears whole or not at all: it is written beside the repository and renamed into it.
"""

import os
import shutil

import onnx

from ..errors import InputError
from ..io.scratch import clear_abandoned, make_scratch
from .contract import batch_first_dims

BACKENDS = ("onnxruntime", "python")
KINDS = ("gpu", "cpu")
_TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64",
          onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.INT32: "TYPE_INT32",
          onnx.TensorProto.FLOAT16: "TYPE_FP16", onnx.TensorProto.DOUBLE: "TYPE_FP64",
          onnx.TensorProto.BOOL: "TYPE_BOOL", onnx.TensorProto.INT8: "TYPE_INT8"}
_PYTHON_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_model.py")


def model_config(name, proto, *, backend="onnxruntime", kind="gpu", instances=1, max_batch_size=32,
                 queue_delay_us=100, dynamic_batching=True, parameters=None):
    """The config.pbtxt text of served graph ``proto`` (every input and output batch-first) as model ``name``."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if kind not in KINDS:
        raise InputError(f"unknown instance kind {kind!r}; use one of {', '.join(KINDS)}")
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise InputError(f"--max-batch-size must be a positive integer; got {max_batch_size}")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise InputError(f"--instances must be a positive integer; got {instances}")
    lines = [f'name: "{name}"']
    lines.append('platform: "onnxruntime_onnx"' if backend == "onnxruntime" else 'backend: "python"')
    lines.append(f"max_batch_size: {max_batch_size}")
    lines += _tensors("input", proto.graph.input)
    lines += _tensors("output", proto.graph.output)
    if dynamic_batching:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {int(queue_delay_us)} }}")
    lines.append(f"instance_group [ {{ kind: KIND_{kind.upper()} count: {instances} }} ]")
    if backend == "onnxruntime" and kind == "gpu":
        lines += ['optimization { execution_accelerators { gpu_execution_accelerator: [ {',
                  '  name: "cuda"',
                  '  parameters { key: "use_tf32" value: "0" }',
                  '  parameters { key: "cudnn_conv_algo_search" value: "DEFAULT" }',
                  '} ] } }']
    for key, value in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def _tensors(field, values):
    """The ``input [...]`` or ``output [...]`` block; dims leave out the batch axis."""
    entries = []
    for value in values:
        elem, dims = batch_first_dims(value)
        if elem not in _TYPES:
            raise InputError(f"{field} {value.name!r} has ONNX type {onnx.TensorProto.DataType.Name(elem)}, which the "
                             "repository writer does not map to a Triton type")
        shown = ", ".join(str(dim) for dim in dims) if dims else "1"
        reshape = " reshape: { shape: [ ] }" if not dims else ""
        entries.append(f'  {{ name: "{value.name}" data_type: {_TYPES[elem]} dims: [ {shown} ]{reshape} }}')
    return [f"{field} ["] + [",\n".join(entries)] + ["]"]


def write_model(repository, name, proto, config, *, backend="onnxruntime", force=False):
    """Write model folder ``repository/name`` (config.pbtxt, 1/model.onnx, 1/model.py for the python backend),
    whole or not at all; an existing folder is replaced only with ``force``. Returns its path."""
    final = os.path.join(repository, name)
    if os.path.exists(final) and not force:
        raise InputError(f"{final} exists; pass --force to replace it")
    parent = os.path.dirname(os.path.abspath(repository))
    os.makedirs(repository, exist_ok=True)
    clear_abandoned(parent)
    scratch = make_scratch(parent)
    try:
        os.makedirs(os.path.join(scratch, "1"))
        with open(os.path.join(scratch, "config.pbtxt"), "w") as handle:
            handle.write(config)
        onnx.save(proto, os.path.join(scratch, "1", "model.onnx"))
        if backend == "python":
            shutil.copyfile(_PYTHON_MODEL, os.path.join(scratch, "1", "model.py"))
        if os.path.exists(final):
            old = make_scratch(parent)
            os.rename(final, os.path.join(old, name))
            os.rename(scratch, final)
            shutil.rmtree(old)
        else:
            os.rename(scratch, final)
    finally:
        if os.path.exists(scratch):
            shutil.rmtree(scratch)
    return final
