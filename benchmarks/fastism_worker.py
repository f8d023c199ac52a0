"""Times the fastISM package (Keras 2) on a zoo model over a sweep of batch sizes; runs in the fastISM venv.

Usage: python fastism_worker.py NAME LENGTH START END SEQS.npy MIN_SEQS REPEATS BATCH [BATCH ...]

Builds the zoo model with the same weights as onnxism's Keras build (converters.zoo is NumPy only). fastISM batches
over sequences only, so batch B is timed on max(B, MIN_SEQS) sequences (the first of SEQS.npy), positions
START <= i < END, all 3 alternatives (the four one-hot calls). Batch sizes are swept as benchmarks.batch_sweep
does; one JSON line per size: {"batch": B, "per_sequence": S, "seqs": N, "seconds": [...], "error": null}, S being
the median of the runs over N (seconds per sequence for the window).
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.batch_sweep import print_result, sweep  # noqa: E402


def main(name, length, start, end, seqs_path, min_seqs, repeats, *batches):
    import numpy as np

    # (this venv has no onnxism installed: the converters are read from the repository's folder, on sys.path)
    from converters.zoo.architectures import build_spec
    from converters.zoo.to_keras import build_keras

    spec = build_spec(name) if name.endswith("_small") else build_spec(name, int(length))
    model = build_keras(spec)
    import fastism

    seqs = np.load(seqs_path)
    ranges = [(i, i + 1) for i in range(int(start), int(end))]
    try:
        engine = fastism.FastISM(model, change_ranges=ranges, test_correctness=False)
    except Exception as err:  # fastISM refuses layers it does not know
        message = (str(err).splitlines() or [repr(err)])[0][:200]
        print_result({"batch": int(batches[0]), "error": f"{type(err).__name__}: {message}"})
        return

    engine(seqs[:2], replace_with=[1, 0, 0, 0])  # warm-up: first-call allocations

    def time_batch(batch):
        count = max(batch, int(min_seqs))
        if count > len(seqs):
            raise ValueError(f"batch {batch} needs {count} sequences, {len(seqs)} given")
        times = []
        for _ in range(int(repeats)):
            began = time.perf_counter()
            for first in range(0, count, batch):
                chunk = seqs[first:min(first + batch, count)]
                for base in range(4):
                    engine(chunk, replace_with=[int(b == base) for b in range(4)])
            times.append(time.perf_counter() - began)
        return statistics.median(times) / count, {"seqs": count, "seconds": times}

    for result in sweep([int(b) for b in batches], time_batch):
        print_result(result)


if __name__ == "__main__":
    if len(sys.argv) < 9:
        sys.exit(__doc__)
    main(*sys.argv[1:])
