"""One line naming the machine a benchmark ran on: the CPU model and vector extension, cores, and the device.

It goes into every results file, so that figures from different machines are never compared unawares.
"""

import os
import platform
import shutil
import subprocess


def cpu_name():
    """The CPU model from /proc/cpuinfo (with AVX-512 or AVX2 when present), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            info = handle.read()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    model = fields.get("model name") or platform.processor() or "unknown CPU"
    return f"{platform.machine()} CPU ({model}{', ' + vector if vector else ''})"


def gpu_name():
    """The first GPU's name as nvidia-smi reports it, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    names = found.stdout.strip().splitlines()
    return names[0].strip() if found.returncode == 0 and names else None


def describe_machine(device):
    """E.g. "x86_64 CPU (AMD EPYC, AVX-512), 2 cores, onnxruntime CPU provider"."""
    line = f"{cpu_name()}, {os.cpu_count()} cores"
    if str(device).startswith("cuda"):
        return f"{line}, GPU {gpu_name() or 'unknown'}, onnxruntime CUDA provider"
    return f"{line}, onnxruntime CPU provider"
