"""Sessions on a device (``onnxism/runtime/sessions.py``) with a stand-in for onnxruntime-gpu, so that what a CUDA
session is started with is tested on machines without a GPU: the pip CUDA libraries are preloaded once, quietly,
before the first CUDA session and never for the CPU, and a session that fell back to the CPU is refused."""

import types

import pytest

import onnxism
from onnxism.runtime import sessions


class _FakeOrt(types.SimpleNamespace):
    """onnxruntime-gpu as far as ``make_session`` uses it; ``started``: the providers its sessions end up with."""

    def __init__(self, started):
        super().__init__(calls=[], started=started, options=[])
        self.GraphOptimizationLevel = types.SimpleNamespace(ORT_ENABLE_ALL=99, ORT_DISABLE_ALL=0)

    def SessionOptions(self):  # noqa: N802 - onnxruntime's name
        return types.SimpleNamespace(add_session_config_entry=lambda key, value: None)

    def get_available_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def preload_dlls(self):
        self.calls.append("preload")
        print("Failed to load libcudnn.so.9")  # what onnxruntime prints where a library is missing

    def InferenceSession(self, model, options, providers):  # noqa: N802 - onnxruntime's name
        self.calls.append(("session", [p if isinstance(p, str) else p[0] for p in providers]))
        self.options.append([p[1] for p in providers if not isinstance(p, str)])
        started = self.started
        return types.SimpleNamespace(get_providers=lambda: list(started))


@pytest.fixture
def fake_ort(monkeypatch):
    def install(started):
        ort = _FakeOrt(started)
        monkeypatch.setattr(sessions, "import_onnxruntime", lambda: ort)
        monkeypatch.setattr(sessions, "_PRELOAD", {"lock": sessions._PRELOAD["lock"], "done": False})
        return ort
    return install


def test_cuda_libraries_are_preloaded_once_and_quietly(fake_ort, capsys):
    ort = fake_ort(["CUDAExecutionProvider", "CPUExecutionProvider"])
    sessions.make_session(b"model", "cpu")
    assert ort.calls == [("session", ["CPUExecutionProvider"])]  # the CPU never loads CUDA
    sessions.make_session(b"model", "cuda")
    sessions.make_session(b"model", "cuda:1")
    assert ort.calls[1:] == ["preload", ("session", ["CUDAExecutionProvider", "CPUExecutionProvider"]),
                             ("session", ["CUDAExecutionProvider", "CPUExecutionProvider"])]
    assert capsys.readouterr().out == ""


def test_a_cuda_session_that_fell_back_to_the_cpu_is_refused(fake_ort):
    ort = fake_ort(["CPUExecutionProvider"])
    with pytest.raises(onnxism.DeviceError, match="could not start CUDA"):
        sessions.make_session(b"model", "cuda")
    assert ort.calls[0] == "preload"


def test_cuda_sessions_keep_float32_on_the_chosen_gpu(fake_ort):
    """TF32 (onnxruntime's default on Ampere and later) and the exhaustive convolution search (FFT and Winograd
    algorithms included) are turned off for every CUDA session; "cuda:K" picks GPU K."""
    ort = fake_ort(["CUDAExecutionProvider", "CPUExecutionProvider"])
    sessions.make_session(b"model", "cpu")
    sessions.make_session(b"model", "cuda")
    sessions.make_session(b"model", "cuda:1", optimize=False)
    plain = {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}
    assert ort.options == [[], [{**plain, "device_id": "0"}], [{**plain, "device_id": "1"}]]
