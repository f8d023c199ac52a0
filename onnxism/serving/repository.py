"""``export_triton``: a loaded model's served graphs written as a Triton model repository, one model per method."""

import os

from ..errors import InputError
from ..model.loading import load
from .contract import METHODS, serving_graph
from .triton import model_config, write_model


def default_name(model):
    """The models' stem: the model file's name without its suffix, as Triton accepts it."""
    stem = os.path.splitext(os.path.basename(str(model.source)))[0] or "model"
    return "".join(char if char.isalnum() or char in "-_" else "_" for char in stem)


def export_triton(model, repository, *, methods=("fast",), backend="onnxruntime", kind=None, instances=1,
                  max_batch_size=32, queue_delay_us=100, dynamic_batching=True, codes=False, targets=None,
                  outputs=None, length=None, name=None, force=False):
    """Write ``repository/NAME_METHOD`` for each of ``methods`` ("fast", "tism", "predict"): the served graph
    (``serving/contract.py``) and its config.pbtxt. ``kind``: "gpu" or "cpu" instances (default: gpu for the
    onnxruntime backend, cpu for the python backend, which runs onnxruntime on the CPU). Returns the folders."""
    model = load(model)
    methods = list(dict.fromkeys(methods))
    unknown = [method for method in methods if method not in METHODS]
    if unknown or not methods:
        raise InputError(f"unknown method {unknown[0] if unknown else '(none)'}; use {', '.join(METHODS)}")
    kind = kind or ("gpu" if backend == "onnxruntime" else "cpu")
    if backend == "python" and kind != "cpu":
        raise InputError("the python backend's twin runs onnxruntime on the CPU: use --kind cpu")
    stem = name or default_name(model)
    names = [f"{stem}_{method}" for method in methods]
    taken = [os.path.join(repository, folder) for folder in names if os.path.exists(os.path.join(repository, folder))]
    if taken and not force:
        raise InputError(f"{taken[0]} exists; pass --force to replace it")
    built = []  # every graph and config first, so that a refused method writes nothing
    for method, folder in zip(methods, names):
        proto = serving_graph(model, method, length=length, outputs=outputs, targets=targets, codes=codes)
        parameters = {"sequence_length": model.sequence_length(length)} if backend == "python" else None
        built.append((folder, proto, model_config(
            folder, proto, backend=backend, kind=kind, instances=instances, max_batch_size=max_batch_size,
            queue_delay_us=queue_delay_us, dynamic_batching=dynamic_batching, parameters=parameters)))
    return [write_model(repository, folder, proto, config, backend=backend, force=force)
            for folder, proto, config in built]
