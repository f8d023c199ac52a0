"""bigWig tracks of region archives, read back with pyBigWig and checked against per-chromosome arrays filled here
from the archive's deltas: each window's scores centred over the 4 bases and taken at the observed base (or the 3
substitutions' mean), placed at genome coordinates by hand and averaged where windows overlap."""

import numpy as np
import pytest

from cli_helpers import MODEL, SEQS, assert_clean_failure, onnxism_cli

pytest.importorskip("pysam", reason="the [genome] extra (pysam) is not installed")
pyBigWig = pytest.importorskip("pyBigWig", reason="the [genome] extra (pyBigWig) is not installed")

SIZES = {"chr1": 1500, "chr2": 700}
REGIONS = [  # overlapping windows, a "-" strand one among them, one past chr1's start, one on chr2
    ("chr1", 600, 700, "+"), ("chr1", 640, 660, "-"), ("chr1", 720, 760, "+"), ("chr1", 0, 50, "+"),
    ("chr2", 300, 400, "-"),
]


@pytest.fixture(scope="module")
def region_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bigwig")
    rng = np.random.default_rng(5)
    with open(folder / "genome.fa", "w") as fasta:
        for chrom, size in SIZES.items():
            letters = rng.choice(list("ACGT"), size)
            letters[320:330] = "N"
            fasta.write(f">{chrom}\n" + "".join(letters) + "\n")
    (folder / "peaks.bed").write_text("".join(f"{c}\t{s}\t{e}\tr{i}\t0\t{t}\n"
                                              for i, (c, s, e, t) in enumerate(REGIONS)))
    for name, extra in (("delta", []), ("centred", ["--attribution", "centred"]), ("window", ["--positions", "50:150"]),
                        ("compressed", ["--compress"])):
        result = onnxism_cli("run", MODEL, "--bed", folder / "peaks.bed", "--genome", folder / "genome.fa",
                             "--strand", "-o", folder / f"{name}.npz", *extra)
        assert result.returncode == 0, result.stderr
    return folder


def expected_track(archive_path, value):
    """{chrom: (size,) float64, NaN where no window scored the base} from the archive's delta scores."""
    total = {chrom: np.zeros(size) for chrom, size in SIZES.items()}
    count = {chrom: np.zeros(size) for chrom, size in SIZES.items()}
    with np.load(archive_path) as archive:
        delta, onehot, positions = archive["logit"][..., 0].astype(np.float64), archive["onehot"], archive["positions"]
        for n in range(len(delta)):
            chrom, start, end = str(archive["region/chrom"][n]), archive["region/start"][n], archive["region/end"][n]
            minus = archive["region/strand"][n] == "-"
            for j, p in enumerate(positions):
                base = onehot[n, p]
                if base.sum() == 0:
                    continue
                observed = int(np.argmax(base))
                if value == "projected":
                    number = (delta[n, j] - delta[n, j].mean())[observed]
                else:
                    number = np.mean([delta[n, j, b] for b in range(4) if b != observed])
                where = end - 1 - p if minus else start + p
                if 0 <= where < SIZES[chrom]:
                    total[chrom][where] += number
                    count[chrom][where] += 1
    return {chrom: np.where(count[chrom] > 0, total[chrom] / np.maximum(count[chrom], 1), np.nan) for chrom in SIZES}


def read_track(path):
    with pyBigWig.open(str(path)) as bigwig:
        assert bigwig.isBigWig() and bigwig.chroms() == SIZES
        return {chrom: np.array(bigwig.values(chrom, 0, size), np.float64) for chrom, size in SIZES.items()}


@pytest.mark.parametrize("value", ["projected", "mean"])
def test_track_matches_the_archive_placed_by_hand(region_run, value):
    out = region_run / f"{value}.bw"
    result = onnxism_cli("bigwig", region_run / "delta.npz", "--genome", region_run / "genome.fa", "-o", out,
                         "--value", value)
    assert result.returncode == 0, result.stderr
    track, expected = read_track(out), expected_track(region_run / "delta.npz", value)
    for chrom in SIZES:
        np.testing.assert_array_equal(np.isnan(track[chrom]), np.isnan(expected[chrom]))
        np.testing.assert_allclose(track[chrom], expected[chrom], rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(track["chr1"][320:330]).all()  # N bases have no value
    assert not np.isnan(track["chr1"][550:800]).any()  # the overlapping windows' bases all have one


def test_centred_compressed_and_windowed_archives(region_run):
    tracks = {}
    for name in ("delta", "centred", "compressed", "window"):
        result = onnxism_cli("bigwig", region_run / f"{name}.npz", "--genome", region_run / "genome.fa", "-o",
                             region_run / f"{name}_archive.bw")
        assert result.returncode == 0, result.stderr
        tracks[name] = read_track(region_run / f"{name}_archive.bw")
    for chrom in SIZES:
        np.testing.assert_allclose(tracks["centred"][chrom], tracks["delta"][chrom], rtol=1e-5, atol=1e-6,
                                   equal_nan=True)
        np.testing.assert_array_equal(tracks["compressed"][chrom], tracks["delta"][chrom])
    expected = expected_track(region_run / "window.npz", "projected")
    got = tracks["window"]
    for chrom in SIZES:
        np.testing.assert_allclose(got[chrom], expected[chrom], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_bad_bigwig_requests_fail_cleanly(region_run, tmp_path):
    genome = region_run / "genome.fa"
    plain = tmp_path / "plain.npz"
    assert onnxism_cli("run", MODEL, SEQS, "-o", plain).returncode == 0
    assert_clean_failure(onnxism_cli("bigwig", plain, "--genome", genome, "-o", tmp_path / "x.bw"),
                         "holds no genome coordinates")
    assert_clean_failure(onnxism_cli("bigwig", region_run / "delta.npz", "--genome", genome, "-o",
                                     tmp_path / "x.wig"), "must end in .bw")
    tism = tmp_path / "grad.npz"
    assert onnxism_cli("run", MODEL, "--bed", region_run / "peaks.bed", "--genome", genome, "--method", "tism",
                       "--attribution", "gradient", "-o", tism).returncode == 0
    assert_clean_failure(onnxism_cli("bigwig", tism, "--genome", genome, "-o", tmp_path / "x.bw"),
                         "holds gradient scores, which give no per-base effect")
    other = tmp_path / "other.fa"
    other.write_text(">chrX\nACGT\n")
    assert_clean_failure(onnxism_cli("bigwig", region_run / "delta.npz", "--genome", other, "-o",
                                     tmp_path / "x.bw"), "chromosome 'chr1'")
    assert not list(tmp_path.glob("*.bw")) and not list(tmp_path.glob(".onnxism-*"))
