"""Times tangermeme 1.6's saturation_mutagenesis, its fast path forced, on a zoo model's PyTorch build over a sweep
of batch sizes; runs in the tangermeme venv.

Usage: python tangermeme_worker.py NAME LENGTH SEQS.npy COUNT REPEATS CHECK.npz BATCH [BATCH ...]

The fast path forced: tangermeme tries ``fast=True`` only when the job would take more than ``_FAST_MIN_SECONDS``
(30 s) plain, and keeps it only when its check batch is not slower than plain (``_FAST_MAX_RELATIVE_TIME``): both
are attributes of the module tangermeme.saturation_mutagenesis, set here to 0 and infinity. Its TangermemeWarning
(the notice that it fell back to ``fast=False``: a model it cannot capture, or outputs that disagree) is made an
error, so that a fallback is recorded as a failure, never timed as the fast path.

What is timed: ``saturation_mutagenesis(model, X, batch_size=B, raw_outputs=True, device="cpu")`` on the first
COUNT sequences of SEQS.npy, whole: the model's outputs for all 3 alternatives at every position (its identity
edits are filled from the reference, not run), from which its attribution forms (the default centred delta on the
observed base, ``hypothetical=True``) are derived at no real cost. Each call also captures the model
(torch.export), checks the fast path against ``fast=False`` on a batch of edits, and runs its first batch of edits
plain: that per-call set-up (its ``_fast_path``, timed by wrapping it) is left out of the seconds per sequence, as
onnxism's plan building is, and the rest is scaled to all the edits. The median over REPEATS calls is compared.

One JSON line per batch size (benchmarks.batch_sweep): {"batch": B, "per_sequence": S, "seconds": [...],
"setup_seconds": [...], "first_edits": F, "threads": T, "error": null}: S the median over the calls of
(seconds - setup_seconds) x edits / (edits - F) / COUNT, F the edits its first batch ran plain. The first size that
succeeds also writes CHECK.npz: sequence 0's deltas (mutant - reference), one array per output name, shape
(L, 4, *output_shape), as onnxism.ism returns them.
"""

import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.batch_sweep import print_result, sweep  # noqa: E402


def forced_fast_path():
    """tangermeme's saturation_mutagenesis with its fast path forced, and a list that gets (seconds, first edits)
    of each call's set-up."""
    import tangermeme.saturation_mutagenesis as module
    from tangermeme.utils import TangermemeWarning

    module._FAST_MIN_SECONDS = 0.0
    module._FAST_MAX_RELATIVE_TIME = float("inf")
    warnings.simplefilter("error", TangermemeWarning)
    decide = module._fast_path
    setups = []

    def timed_fast_path(*args, **kwargs):
        began = time.perf_counter()
        fast, first, count = decide(*args, **kwargs)
        if fast is None:
            raise RuntimeError("tangermeme did not take its fast path")
        setups.append((time.perf_counter() - began, count))
        return fast, first, count

    module._fast_path = timed_fast_path
    return module.saturation_mutagenesis, setups


def deltas_of_first(y0, y_hat, names):
    """Sequence 0's mutant - reference per output, (L, 4, *output_shape), keyed by output name."""
    if not isinstance(y0, (list, tuple)):
        y0, y_hat = [y0], [y_hat]
    return {name: (hat[0] - ref[0][None, None]).transpose(0, 1).numpy()
            for name, ref, hat in zip(names, y0, y_hat)}


def main(name, length, seqs_path, count, repeats, check_path, *batches):
    import numpy as np
    import torch

    # (this venv has no onnxism installed: the converters are read from the repository's folder, on sys.path)
    from converters.zoo.architectures import build_spec
    from converters.zoo.to_torch import build_torch

    spec = build_spec(name) if name.endswith("_small") else build_spec(name, int(length))
    model = build_torch(spec)
    count, repeats = int(count), int(repeats)
    X = torch.from_numpy(np.load(seqs_path)[:count].transpose(0, 2, 1).copy())
    edits = count * X.shape[2] * 3
    ism, setups = forced_fast_path()
    # untimed warm-up (imports, first-call allocations)
    ism(model, X[:1], end=min(8, X.shape[2]), batch_size=8, raw_outputs=True, device="cpu")
    setups.clear()

    def time_batch(batch):
        calls, setup, per_sequence = [], [], []
        for _ in range(repeats):
            began = time.perf_counter()
            y0, y_hat = ism(model, X, batch_size=batch, raw_outputs=True, device="cpu")
            calls.append(time.perf_counter() - began)
            setup_seconds, first = setups.pop()
            if first >= edits:
                raise ValueError(f"batch {batch} holds all {edits} edits: time more sequences")
            per_sequence.append((calls[-1] - setup_seconds) * edits / (edits - first) / count)
            setup.append(setup_seconds)
        if not os.path.exists(check_path):
            np.savez(check_path, **deltas_of_first(y0, y_hat, list(spec.outputs)))
        return statistics.median(per_sequence), {"seconds": calls, "setup_seconds": setup, "first_edits": first,
                                                 "threads": torch.get_num_threads()}

    for result in sweep([int(b) for b in batches], time_batch):
        print_result(result)


if __name__ == "__main__":
    if len(sys.argv) < 8:
        sys.exit(__doc__)
    main(*sys.argv[1:])
