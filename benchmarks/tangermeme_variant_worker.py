"""Times tangermeme 1.6's ``substitution_effect`` (its variant scoring: the model's predictions before and after the
substitutions, two forward passes per variant) on a zoo model's PyTorch build; runs in the tangermeme venv.

Usage: python tangermeme_variant_worker.py NAME LENGTH WINDOWS.npy SUBSTITUTIONS.npy REPEATS BATCH [BATCH ...]

WINDOWS.npy: (N, L, 4) uint8, each variant's reference window (a window per variant: tangermeme takes one
substitution per example and position, so a site's alleles are separate examples); SUBSTITUTIONS.npy: (N, 3) int64
rows (example, position, base), as ``substitution_effect`` takes them. What is timed: ``substitution_effect(model,
X, substitutions, batch_size=B, device="cpu")`` on all N, after an untimed warm-up on 8. One JSON line per batch
size (benchmarks.batch_sweep): {"batch": B, "per_sequence": seconds per variant (median of REPEATS), "seconds":
[...], "threads": T, "error": null}.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.batch_sweep import print_result, sweep  # noqa: E402


def main(name, length, windows_path, substitutions_path, repeats, *batches):
    import numpy as np
    import torch
    from tangermeme.variant_effect import substitution_effect

    # (this venv has no onnxism installed: the converters are read from the repository's folder, on sys.path)
    from converters.zoo.architectures import build_spec
    from converters.zoo.to_torch import build_torch

    model = build_torch(build_spec(name, int(length))).eval()
    X = torch.from_numpy(np.load(windows_path).transpose(0, 2, 1).astype(np.float32).copy())
    substitutions = torch.from_numpy(np.load(substitutions_path))
    substitution_effect(model, X[:8], substitutions[substitutions[:, 0] < 8], batch_size=8, device="cpu")

    def time_batch(batch):
        seconds = []
        for _ in range(int(repeats)):
            began = time.perf_counter()
            substitution_effect(model, X, substitutions, batch_size=batch, device="cpu")
            seconds.append(time.perf_counter() - began)
        return statistics.median(seconds) / len(X), {"seconds": seconds, "threads": torch.get_num_threads()}

    for result in sweep([int(b) for b in batches], time_batch):
        print_result(result)


if __name__ == "__main__":
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    main(*sys.argv[1:])
