"""Random 200 bp sequences with the AP-1 motif TGACTCA planted, as the bundled example was trained on; numpy only.

    python examples/motif_sequences.py 1000 more_seqs.npy        # 1000 sequences, each with the motif once

Deterministic for a seed (``--seed``); the planted sites go to the .npy's name with .tsv.
"""

import argparse

import numpy as np

MOTIF = "TGACTCA"
LENGTH = 200


def random_sequences(rng, count, plant):
    """(count, LENGTH) base codes; where ``plant`` is true the motif sits at a random position (returned, else -1)."""
    codes = rng.integers(0, 4, size=(count, LENGTH))
    sites = np.full(count, -1)
    motif = np.array(["ACGT".index(base) for base in MOTIF])
    for n in np.flatnonzero(plant):
        sites[n] = rng.integers(10, LENGTH - len(MOTIF) - 10)
        codes[n, sites[n]:sites[n] + len(MOTIF)] = motif
    return codes, sites


def planted_onehot(count, seed=1):
    """(count, LENGTH, 4) float32 one-hot sequences, each with the motif planted once, and the sites."""
    codes, sites = random_sequences(np.random.default_rng(seed), count, np.ones(count, dtype=bool))
    return np.eye(4, dtype=np.float32)[codes], sites


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int)
    parser.add_argument("output", help=".npy file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    onehot, sites = planted_onehot(args.count, args.seed)
    np.save(args.output, onehot)
    with open(args.output.removesuffix(".npy") + ".tsv", "w") as tsv:
        tsv.write("sequence\tmotif\tstart\n")
        tsv.writelines(f"{n}\t{MOTIF}\t{site}\n" for n, site in enumerate(sites))


if __name__ == "__main__":
    main()
