"""onnxruntime sessions for a device: "cpu", "cuda" or "cuda:K".

Invariant: a session for "cuda" really runs on CUDA (checked with ``get_providers()``), never silently on CPU, and
in plain float32 throughout (``CUDA_OPTIONS``: no TF32, one convolution algorithm for every shape).
"""

import contextlib
import io
import re
import threading

from ..errors import DeviceError, MissingExtraError

#: The newest IR version and default-domain opset that the pinned onnxruntime (1.31) runs.
MAX_IR_VERSION = 13
MAX_OPSET = 26

_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")

# The CUDA provider's options for every session (``device_id`` added per device), chosen so that fast ISM's window
# updates and naive ISM's whole mutants are both plain float32 sums (benchmarks/check_cuda_precision.py measures how
# far each setting takes the scores from the CPU's; it needs a GPU, and none has been lent to this project yet):
# - ``use_tf32``: onnxruntime's CUDA provider computes float32 Conv, MatMul and Gemm with TF32 (a 10-bit mantissa:
#   each input rounded by up to 5e-4 of its value) on Ampere and later GPUs unless told not to (its provider info
#   sets ``use_tf32`` true by default), five times fast ISM's 1e-4 criterion.
# - ``cudnn_conv_algo_search``: the default exhaustive search picks, per shape, the fastest cuDNN algorithm, FFT and
#   Winograd ones included, whose rounding differs from shape to shape, so a window and the whole sequence would
#   round differently; it also benchmarks every algorithm for each new shape when a session first runs it.
#   "DEFAULT" is cuDNN's implicit GEMM for every shape.
CUDA_OPTIONS = {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}


def import_onnxruntime():
    """The onnxruntime module, or a MissingExtraError saying which extra installs it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise MissingExtraError(
            "onnxruntime is not installed: pip install 'onnxism[cpu]' (or 'onnxism[gpu]' for CUDA)"
        ) from err
    return onnxruntime


def parse_device(device):
    """Split "cpu" / "cuda" / "cuda:K" into (kind, device_id)."""
    match = _DEVICE.match(str(device).strip().lower()) if device is not None else None
    if match is None:
        raise DeviceError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:K'")
    kind, index = match.groups()
    if kind == "cpu" and index is not None:
        raise DeviceError(f"unknown device {device!r}; the CPU takes no index: use 'cpu'")
    return kind, int(index or 0)


def cuda_available():
    """True when the installed onnxruntime offers the CUDA execution provider."""
    try:
        ort = import_onnxruntime()
    except MissingExtraError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


_PRELOAD = {"lock": threading.Lock(), "done": False}


def preload_cuda_libraries(ort):
    """Load, once per process, the CUDA and cuDNN libraries of the pip packages that ``onnxism[gpu]`` installs
    (``onnxruntime-gpu[cuda,cudnn]``): onnxruntime's CUDA provider does not find them in site-packages by itself
    (unless torch was imported first), and without them it falls back to the CPU. Libraries installed with the
    system are found either way. Quiet: onnxruntime prints what it could not load, and where CUDA then does not
    start, the session's providers say so (``make_session`` raises DeviceError)."""
    with _PRELOAD["lock"]:
        if _PRELOAD["done"] or not hasattr(ort, "preload_dlls"):
            return
        _PRELOAD["done"] = True
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            ort.preload_dlls()


def make_session(model_bytes, device="cpu", *, threads=None, optimize=True, weights=None):
    """An InferenceSession on ``device``; raises DeviceError where CUDA cannot run. ``optimize=False``: no graph
    optimisations and no pre-packed weights (a session run once, to probe shapes, starts faster without them: a
    large Dense layer takes seconds to pack). ``weights``: {name: array} of the graph's weight placeholders
    (``runtime/weights.py``), copied once into the session."""
    ort = import_onnxruntime()
    kind, index = parse_device(device)
    options = ort.SessionOptions()
    if not optimize:
        options.add_session_config_entry("session.disable_prepacking", "1")
    if weights:
        options.add_external_initializers(list(weights), [ort.OrtValue.ortvalue_from_numpy(array)
                                                          for array in weights.values()])
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    if kind == "cpu":
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise DeviceError(
            "device 'cuda' requested, but this onnxruntime build has no CUDA provider: "
            "pip install 'onnxism[gpu]' (it replaces the CPU build), or use device='cpu'"
        )
    preload_cuda_libraries(ort)
    providers = [("CUDAExecutionProvider", {**CUDA_OPTIONS, "device_id": str(index)}), "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(model_bytes, options, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types
        raise DeviceError(f"cannot start onnxruntime on {device}: {err}") from err
    if "CUDAExecutionProvider" not in session.get_providers():
        raise DeviceError(
            f"device {device!r} requested, but onnxruntime could not start CUDA (no GPU or CUDA libraries "
            "found); use device='cpu'"
        )
    return session
