"""The bundled example genome, peaks and variants: two random chromosomes with the AP-1 motif TGACTCA planted at
the summit of each peak (on the peak's strand), as a FASTA file and a narrowPeak file, and a VCF of variants in
and around the motifs (SNVs, a multi-allelic site, an MNV, an insertion and a deletion); numpy only.

    python examples/make_genome.py examples/genome.fa examples/peaks.narrowPeak examples/variants.vcf

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


def variant_lines(chroms, lines, rng):
    """VCF records: at each peak an SNV in its motif, and one 30 bases away; then a few other kinds of variant."""
    records = []
    for line in lines:
        chrom, start, _, name, _, _, _, _, _, summit = line.split("\t")
        site = int(start) + int(summit)  # 0-based summit: the motif is site - 3 .. site + 3
        for offset, label in ((1, "motif"), (30, "flank")):
            ref = chroms[chrom][site + offset].upper()
            alt = "ACGT"[("ACGT".index(ref) + 1 + int(rng.integers(3))) % 4]
            records.append((chrom, site + offset + 1, f"{name}_{label}", ref, alt))
    text = chroms["chr2"].upper()
    records += [
        ("chr2", 2001, "multi", text[2000], ",".join(b for b in "ACGT" if b != text[2000])),
        ("chr2", 2501, "mnv", text[2500:2502], "".join("ACGT"[("ACGT".index(b) + 2) % 4] for b in text[2500:2502])),
        ("chr2", 3001, "insertion", text[3000], text[3000] + "TGACTCA"),
        ("chr2", 3501, "deletion", text[3500:3506], text[3500]),
    ]
    order = {chrom: i for i, chrom in enumerate(chroms)}
    return sorted(records, key=lambda record: (order[record[0]], record[1]))


def write_vcf(path, chroms, records):
    with open(path, "w") as vcf:
        vcf.write("##fileformat=VCFv4.2\n")
        vcf.writelines(f"##contig=<ID={chrom},length={len(text)}>\n" for chrom, text in chroms.items())
        vcf.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        vcf.writelines(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t.\n" for c, p, i, r, a in records)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta")
    parser.add_argument("peaks", help=".narrowPeak file")
    parser.add_argument("vcf", help=".vcf file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    chroms, lines = make(args.seed)
    with open(args.fasta, "w") as fasta:
        for chrom, text in chroms.items():
            fasta.write(f">{chrom}\n")
            fasta.writelines(text[i:i + 60] + "\n" for i in range(0, len(text), 60))
    with open(args.peaks, "w") as peaks:
        peaks.writelines(lines)
    write_vcf(args.vcf, chroms, variant_lines(chroms, lines, np.random.default_rng(args.seed + 1)))


if __name__ == "__main__":
    main()
