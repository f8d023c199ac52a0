"""Times the fastISM package (Keras 2) on a zoo model; run inside the fastISM virtual environment.

Usage: python fastism_worker.py NAME LENGTH START END SEQS.npy BATCH REPEATS
Builds the zoo model with the same weights as onnxism's Keras build (converters.zoo is NumPy only) and prints one
JSON line: {"seconds": [...], "error": null}.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(name, length, start, end, seqs_path, batch, repeats):
    import numpy as np

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
        first_line = (str(err).splitlines() or [repr(err)])[0][:200]
        print(json.dumps({"seconds": [], "error": f"{type(err).__name__}: {first_line}"}))
        return
    times = []
    for _ in range(int(repeats)):
        began = time.perf_counter()
        for first in range(0, len(seqs), int(batch)):
            chunk = seqs[first:first + int(batch)]
            for base in range(4):
                engine(chunk, replace_with=[int(b == base) for b in range(4)])
        times.append(time.perf_counter() - began)
    print(json.dumps({"seconds": times, "error": None}))


if __name__ == "__main__":
    main(*sys.argv[1:])
