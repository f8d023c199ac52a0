"""Show that ISM recovers the planted motif: for each example sequence, where the ISM scores are strongest.

Usage: python examples/show_motif.py scores.npz  (scores from `onnxism run examples/motif_model.onnx ...`)
Needs only NumPy.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main(path):
    archive = np.load(path)
    scores = archive["logit"][..., 0]  # (N, L, 4): logit change per substitution
    seqs = np.load(os.path.join(HERE, "seqs.npy"))
    sites = np.genfromtxt(os.path.join(HERE, "motif_sites.tsv"), dtype=None, names=True, encoding="utf-8")
    # importance of a position: how much the logit drops, on average, when its base is replaced
    importance = -scores.sum(axis=2) / 3.0
    hits = 0
    for n, site in enumerate(sites):
        start, width = int(site["start"]), len(site["motif"])
        sums = np.convolve(importance[n], np.ones(width), mode="valid")
        best = int(np.argmax(sums))
        hit = abs(best - start) <= 2
        hits += hit
        bases = "".join("ACGT"[b] for b in seqs[n, best:best + width].argmax(axis=1))
        print(f"seq{n}: planted {site['motif']} at {start:3d}; strongest ISM window at {best:3d} ({bases}) "
              f"reference logit {archive['reference/logit'][n, 0]:+.2f}  {'found' if hit else 'MISSED'}")
    print(f"ISM located the planted motif in {hits} of {len(sites)} sequences")
    return 0 if hits == len(sites) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "demo_scores.npz"))
