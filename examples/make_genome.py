"""The bundled example genome and peaks: two random chromosomes with the AP-1 motif TGACTCA planted at the summit
of each peak (on the peak's strand), as a FASTA file and a narrowPeak file; numpy only.

    python examples/make_genome.py examples/genome.fa examples/peaks.narrowPeak

Deterministic for a seed (``--seed``). Peaks on the "-" strand carry the motif's reverse complement (TGAGTCA) on
the genome's + strand, so that ``onnxism run --strand`` shows the model TGACTCA in every window. A stretch of
chr1 is lowercase (soft-masked), as in genomes from UCSC.
"""

import argparse

import numpy as np

MOTIF = "TGACTCA"
CHROMOSOMES = (("chr1", 6000), ("chr2", 4000))
PEAKS_PER_CHROMOSOME = 5
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def make(seed):
    """({chrom: text}, [narrowPeak lines])."""
    rng = np.random.default_rng(seed)
    chroms, lines = {}, []
    for chrom, size in CHROMOSOMES:
        letters = list(rng.choice(list("ACGT"), size))
        spacing = size // PEAKS_PER_CHROMOSOME
        for index in range(PEAKS_PER_CHROMOSOME):
            summit = index * spacing + spacing // 2 + int(rng.integers(-100, 100))
            strand = "+-"[index % 2]
            site = MOTIF if strand == "+" else MOTIF.translate(COMPLEMENT)[::-1]
            letters[summit - 3:summit + 4] = site
            start, end = summit - int(rng.integers(60, 240)), summit + int(rng.integers(60, 240))
            name = f"{chrom}_peak{index + 1}"
            lines.append(f"{chrom}\t{start}\t{end}\t{name}\t1000\t{strand}\t50.0\t-1\t-1\t{summit - start}\n")
        text = "".join(letters)
        chroms[chrom] = text if chrom != "chr1" else text[:300] + text[300:900].lower() + text[900:]
    return chroms, lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta")
    parser.add_argument("peaks", help=".narrowPeak file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    chroms, lines = make(args.seed)
    with open(args.fasta, "w") as fasta:
        for chrom, text in chroms.items():
            fasta.write(f">{chrom}\n")
            fasta.writelines(text[i:i + 60] + "\n" for i in range(0, len(text), 60))
    with open(args.peaks, "w") as peaks:
        peaks.writelines(lines)


if __name__ == "__main__":
    main()
