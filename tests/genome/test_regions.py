"""Regions in: windows read from a FASTA genome for BED and narrowPeak lines, checked against windows cut from the
genome's text by hand (string slicing, N padding, str.translate for the reverse complement), and scored by
``onnxism run --bed`` exactly as the same windows given as a .npy file."""

import gzip

import numpy as np
import pytest

from cli_helpers import MODEL, assert_clean_failure, onnxism_cli

pysam = pytest.importorskip("pysam", reason="the [genome] extra (pysam) is not installed")

from onnxism.errors import InputError  # noqa: E402
from onnxism.genome import read_bed, regions_onehot  # noqa: E402

LENGTH = 200  # the example model's
ROWS = {"A": [1, 0, 0, 0], "C": [0, 1, 0, 0], "G": [0, 0, 1, 0], "T": [0, 0, 0, 1]}
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def _genome_text(seed=3):
    rng = np.random.default_rng(seed)
    chroms = {}
    for name, size in (("chr1", 1500), ("chr2", 700), ("chrM", 300)):
        letters = list(rng.choice(list("ACGTacgt"), size))
        letters[50:60] = "N" * 10
        letters[min(400, size - 1)] = "R"  # an IUPAC code, read as N
        chroms[name] = "".join(letters)
    return chroms


def _write_fasta(path, chroms, width=60):
    with open(path, "w") as handle:
        for name, text in chroms.items():
            handle.write(f">{name} some description\n")
            handle.writelines(text[i:i + width] + "\n" for i in range(0, len(text), width))
    return str(path)


def _window_by_hand(chroms, chrom, centre, minus=False):
    """The window's one-hot rows, from the genome's text."""
    text = chroms[chrom].upper().replace("R", "N")
    start = centre - LENGTH // 2
    bases = "".join(text[i] if 0 <= i < len(text) else "N" for i in range(start, start + LENGTH))
    if minus:
        bases = bases.translate(COMPLEMENT)[::-1]
    return np.array([ROWS.get(base, [0, 0, 0, 0]) for base in bases], np.float32)


BED_LINES = [
    "track name=peaks",
    "chr1\t600\t700\tpeak_a\t0\t+",
    "chr1\t0\t40\tnear_start\t0\t-",  # window reaches before the chromosome: N
    "chr2\t650\t700\tnear_end\t0\t.",  # and past its end
    "chr1\t380\t420\tminus\t0\t-",
    "chrM\t100\t160",  # three columns, no name
]
CENTRES = [("chr1", 650, False), ("chr1", 20, True), ("chr2", 675, False), ("chr1", 400, True), ("chrM", 130, False)]


@pytest.fixture
def genome(tmp_path):
    chroms = _genome_text()
    return chroms, _write_fasta(tmp_path / "genome.fa", chroms)


@pytest.fixture
def bed(tmp_path):
    path = tmp_path / "peaks.bed"
    path.write_text("\n".join(BED_LINES) + "\n")
    return str(path)


def test_windows_match_the_genome_text(genome, bed):
    chroms, fasta = genome
    windows = regions_onehot(bed, fasta, LENGTH, strand=True)
    expected = np.stack([_window_by_hand(chroms, chrom, centre, minus) for chrom, centre, minus in CENTRES])
    np.testing.assert_array_equal(windows, expected)
    unstranded = regions_onehot(bed, fasta, LENGTH)
    expected = np.stack([_window_by_hand(chroms, chrom, centre) for chrom, centre, _ in CENTRES])
    np.testing.assert_array_equal(unstranded, expected)
    assert read_bed(bed).name == ["peak_a", "near_start", "near_end", "minus", "chrM:100-160"]


def test_bgzip_genome_and_gzipped_narrowpeak_summits(genome, tmp_path):
    chroms, fasta = genome
    bgzipped = str(tmp_path / "genome.fa.gz")
    pysam.tabix_compress(fasta, bgzipped)
    peaks = tmp_path / "peaks.narrowPeak.gz"
    with gzip.open(peaks, "wt") as handle:  # summit offsets in column 10, -1 for none
        handle.write("chr1\t500\t900\tp1\t0\t.\t5.0\t-1\t-1\t37\n")
        handle.write("chr2\t100\t300\tp2\t0\t.\t5.0\t-1\t-1\t-1\n")
    windows = regions_onehot(str(peaks), bgzipped, LENGTH)
    expected = np.stack([_window_by_hand(chroms, "chr1", 537), _window_by_hand(chroms, "chr2", 200)])
    np.testing.assert_array_equal(windows, expected)


def test_chromosome_names_are_matched_only_when_asked(genome, tmp_path):
    chroms, fasta = genome
    bed = tmp_path / "ensembl.bed"
    bed.write_text("1\t600\t700\nMT\t100\t160\n")
    with pytest.raises(InputError, match=r"calls it 'chr1'.*--match-chroms"):
        regions_onehot(str(bed), fasta, LENGTH)
    windows = regions_onehot(str(bed), fasta, LENGTH, match_chroms=True)
    np.testing.assert_array_equal(windows[0], _window_by_hand(chroms, "chr1", 650))
    np.testing.assert_array_equal(windows[1], _window_by_hand(chroms, "chrM", 130))


def test_run_bed_scores_as_the_same_windows_given_as_npy(genome, bed, tmp_path):
    chroms, fasta = genome
    windows = np.stack([_window_by_hand(chroms, chrom, centre, minus) for chrom, centre, minus in CENTRES])
    np.save(tmp_path / "windows.npy", windows)
    from_bed = tmp_path / "bed.npz"
    result = onnxism_cli("run", MODEL, "--bed", bed, "--genome", fasta, "--strand", "-o", from_bed)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("onnxism: scored 5 sequences x 200 positions")
    from_npy = tmp_path / "npy.npz"
    assert onnxism_cli("run", MODEL, tmp_path / "windows.npy", "-o", from_npy).returncode == 0
    with np.load(from_bed) as a, np.load(from_npy) as b:
        np.testing.assert_array_equal(a["logit"], b["logit"])
        np.testing.assert_array_equal(a["onehot"], windows.astype(np.uint8))
        assert a["ids"].tolist() == ["peak_a", "near_start", "near_end", "minus", "chrM:100-160"]
        assert a["region/chrom"].tolist() == [chrom for chrom, _, _ in CENTRES]
        np.testing.assert_array_equal(a["region/start"], [centre - 100 for _, centre, _ in CENTRES])
        np.testing.assert_array_equal(a["region/end"], [centre + 100 for _, centre, _ in CENTRES])
        assert a["region/strand"].tolist() == ["+", "-", "+", "-", "+"]


def test_default_output_is_named_after_the_bed(genome, bed, tmp_path):
    _, fasta = genome
    result = onnxism_cli("run", MODEL, "--bed", bed, "--genome", fasta, "--positions", "90:110", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "peaks.ism.npz").exists()


@pytest.mark.parametrize("lines, message", [
    (["chr1\t600"], "line 1 has 2 column(s)"),
    (["chr1\tsix\t700"], "line 1: start 'six' is not an integer"),
    (["chr1\t700\t600"], "are not an interval"),
    (["chr9\t600\t700"], "chromosome 'chr9' (peaks.bed line 1) is not in"),
    (["chr2\t600\t800"], "ends past the end of chr2 (700 bases"),
    (["chr1\t600\t700\tx\t0\t?"], "strand '?' is not +, - or ."),
    (["# nothing but a comment"], "holds no regions"),
])
def test_bad_regions_fail_cleanly(genome, tmp_path, lines, message):
    _, fasta = genome
    bed = tmp_path / "peaks.bed"
    bed.write_text("\n".join(lines) + "\n")
    result = onnxism_cli("run", MODEL, "--bed", bed, "--genome", fasta, cwd=tmp_path)
    assert_clean_failure(result, message)
    assert not (tmp_path / "peaks.ism.npz").exists()


def test_bad_genomes_and_options_fail_cleanly(genome, bed, tmp_path):
    chroms, fasta = genome
    zipped = tmp_path / "plain.fa.gz"
    with open(fasta, "rb") as source, gzip.open(zipped, "wb") as target:
        target.write(source.read())
    assert_clean_failure(onnxism_cli("run", MODEL, "--bed", bed, "--genome", zipped), "recompress it")
    assert_clean_failure(onnxism_cli("run", MODEL, "--bed", bed), "--bed needs --genome")
    assert_clean_failure(onnxism_cli("run", MODEL, "--genome", fasta), "--genome needs --bed")
    assert_clean_failure(onnxism_cli("run", MODEL, tmp_path / "x.npy", "--bed", bed, "--genome", fasta),
                         "give sequences or --bed, not both")
    assert_clean_failure(onnxism_cli("run", MODEL), "give the sequences")
    assert_clean_failure(onnxism_cli("run", MODEL, "--bed", bed, "--genome", tmp_path / "none.fa"),
                         "genome file")
    assert_clean_failure(onnxism_cli("run", MODEL, "--bed", bed, "--genome", fasta, "--length", "100"),
                         "--length 100 differs from the model's fixed length 200")


def test_a_genome_without_index_in_a_folder_that_cannot_be_written(genome, monkeypatch):
    from onnxism.genome import Genome
    from onnxism.genome import fasta as fasta_module

    _, path = genome
    monkeypatch.setattr(fasta_module.os, "access", lambda *args: False)  # root may write anywhere: ask os.access
    with pytest.raises(InputError, match="has no .fai index and its folder is not writable to make one: run "
                                         "samtools faidx"):
        Genome(path)
