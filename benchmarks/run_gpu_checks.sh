#!/usr/bin/env bash
# Everything that needs a GPU, in one go, on a machine with an NVIDIA GPU and onnxism installed with [gpu] and
# [torch] (the zoo comes through the PyTorch export, which needs no TensorFlow):
#   1. the CUDA tests, which fail (not skip) where CUDA does not start; the full-size zoo with FULL=1;
#   2. the precision check: how far onnxism's CUDA options and onnxruntime's defaults take ISM scores from the CPU's
#      (benchmarks/results/cuda_precision.md);
#   3. the ISM benchmark on CUDA, naive and fast side by side (benchmarks/results/ism_cuda.md).
# Commit the results files it writes, with the GPU named in them (they name it).
#
#     bash benchmarks/run_gpu_checks.sh                 # PYTHON=... picks the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

"$PY" -c "import onnxism, sys; sys.exit(0 if onnxism.cuda_available() else 'onnxruntime has no CUDA provider here')"
ONNXISM_REQUIRE_CUDA=1 "$PY" -m pytest tests/test_cuda.py tests/test_sessions.py -q $([ "${FULL:-0}" = 1 ] || echo -m "not slow")
"$PY" benchmarks/check_cuda_precision.py
"$PY" benchmarks/run_ism_benchmark.py --device cuda --framework torch --workers 1 --repeats 3 --pairs 3 \
    --naive-batch 64 256 1024 --fast-batch 256 1024 4096 --out benchmarks/results/ism_cuda
