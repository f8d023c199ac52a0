"""Standalone graphs that plain onnxruntime runs: ``compile_fast`` (fast ISM at given positions,
``fast/standalone.py``) and ``compile_tism`` (the gradient graph, ``gradients/reverse.py``)."""

from ..errors import InputError
from ..fast.standalone import build_standalone_fast_model
from ..gradients import GRADIENT, TISM, build_gradient_model
from ..model.loading import load
from .targets import outputs_and_targets


def compiled_length(model, length):
    """The length a graph is compiled at: the model's, or ``length`` (checked) for a model of any length."""
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise InputError(f"--length must be a positive integer; got {length}")
    if length is not None and model.length is not None and length != model.length:
        raise InputError(f"--length {length} differs from the model's fixed length {model.length}")
    return model.sequence_length(length)


def compile_fast(model, *, length=None, outputs=None, targets=None, positions_per_sequence=False):
    """The fast-ISM graph as one ONNX model: inputs the model's sequence input (n sequences), its extra inputs and
    ``positions`` (P,) int64 (with ``positions_per_sequence``: (n, P), each sequence's own, every input batch-first
    as an inference server's batcher wants them); outputs the model's outputs and, per output NAME, ``NAME__ism``
    (n, P, 4, *shape): f(mutant) - f(reference), 0 at the reference base. ``targets`` as for :func:`onnxism.ism`
    (NAME is then the target on the sequences and NAME__ism (n, P, 4, *target_shape))."""
    model = load(model)
    length = compiled_length(model, length)
    names, _, folded = outputs_and_targets(model, outputs, targets, length, "cpu", skip_whole=True)
    return build_standalone_fast_model(model, names, length, folded, per_sequence=positions_per_sequence)


def compile_tism(model, *, length=None, outputs=None):
    """The gradient graph as one ONNX model: inputs the sequence input (any batch N) and, per output NAME,
    ``seed__NAME`` (S, *NAME's shape): S targets, each the scalar sum(seed * NAME); outputs the model's outputs,
    ``gradient`` (S, N, *input shape) and ``tism``, the gradient minus its value at each position's reference
    base."""
    model = load(model)
    length = compiled_length(model, length)
    names = model.select_outputs(outputs)
    clash = {GRADIENT, TISM} & set(model.output_names)
    if clash:
        raise InputError(f"the model has an output named {sorted(clash)[0]!r}, a name the compiled graph writes")
    return build_gradient_model(model, names, length)
