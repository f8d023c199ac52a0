"""Variant effects against two forward passes built by hand: the reference and alternative windows cut from the
genome's text with string operations and run through the ONNX model in plain onnxruntime, compared with the table
``onnxism variants`` writes (read with the csv module)."""

import csv
import gzip

import numpy as np
import onnxruntime
import pytest

from cli_helpers import MODEL, assert_clean_failure, onnxism_cli

pysam = pytest.importorskip("pysam", reason="the [genome] extra (pysam) is not installed")

LENGTH = 200
ONEHOT = {"A": [1, 0, 0, 0], "C": [0, 1, 0, 0], "G": [0, 0, 1, 0], "T": [0, 0, 0, 1]}
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
HEADER = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=3000>\n##contig=<ID=chr2,length=900>\n" \
         "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    rng = np.random.default_rng(11)
    chroms = {"chr1": "".join(rng.choice(list("ACGT"), 3000)), "chr2": "".join(rng.choice(list("ACGT"), 900))}
    chroms["chr1"] = chroms["chr1"][:1000] + "TGACTCA" + chroms["chr1"][1007:]
    with open(folder / "genome.fa", "w") as fasta:
        for chrom, text in chroms.items():
            fasta.write(f">{chrom}\n" + "\n".join(text[i:i + 70] for i in range(0, len(text), 70)) + "\n")
    return folder, chroms


def _records(chroms):
    """SNVs (a multi-allelic one, two near the same place, one near a chromosome's start), an MNV, indels."""
    c1, c2 = chroms["chr1"], chroms["chr2"]

    def other(base, step=1):
        return "ACGT"[("ACGT".index(base) + step) % 4]

    return [
        ("chr1", 30, "near_start", c1[29], other(c1[29])),
        ("chr1", 1004, "in_motif", c1[1003], f"{other(c1[1003])},{other(c1[1003], 2)}"),
        ("chr1", 1009, "beside", c1[1008], other(c1[1008], 3)),
        ("chr1", 1500, "mnv", c1[1499:1502], "".join(other(b) for b in c1[1499:1502])),
        ("chr1", 2000, "insertion", c1[1999], c1[1999] + "TGACTCA"),
        ("chr1", 2500, "deletion", c1[2499:2509], c1[2499]),
        ("chr2", 880, "near_end", c2[879], other(c2[879])),
    ]


def _write_vcf(path, records, bgzipped=False):
    text = HEADER + "".join(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t.\n" for c, p, i, r, a in records)
    if not bgzipped:
        path.write_text(text)
        return path
    plain = path.with_suffix("")
    plain.write_text(text)
    pysam.tabix_compress(str(plain), str(path), force=True)
    return path


def _window(text, first):
    return "".join(text[i] if 0 <= i < len(text) else "N" for i in range(first, first + LENGTH))


def _hand_windows(chroms, chrom, pos, ref, alt, bin_size=1):
    """The reference and alternative windows as text: SNVs centred (or on their bin's middle), others
    left-anchored with REF's first base at L // 2."""
    start, text = pos - 1, chroms[chrom]
    if len(ref) == 1 and len(alt) == 1:
        centre = start if bin_size == 1 else start // bin_size * bin_size + bin_size // 2
        first = centre - LENGTH // 2
        reference = _window(text, first)
        offset = start - first
        return reference, reference[:offset] + alt + reference[offset + 1:]
    first = start - LENGTH // 2
    reference = _window(text, first)
    alternative = reference[:LENGTH // 2] + alt + _window(text, start + len(ref))
    return reference, alternative[:LENGTH]


def _logits(windows):
    session = onnxruntime.InferenceSession(MODEL)
    onehot = np.array([[ONEHOT.get(base, [0, 0, 0, 0]) for base in window] for window in windows], np.float32)
    return session.run(None, {"seqs": onehot.transpose(0, 2, 1)})[0][:, 0].astype(np.float64)


def _expected(chroms, records, bin_size=1, rc=False):
    rows = []
    for chrom, pos, name, ref, alts in records:
        for alt in alts.split(","):
            rows.append((chrom, pos, name, ref, alt) + _hand_windows(chroms, chrom, pos, ref, alt, bin_size))
    windows = [window for row in rows for window in row[5:]]
    logits = _logits(windows)
    if rc:
        logits = (logits + _logits([w.translate(COMPLEMENT)[::-1] for w in windows])) / 2
    return [(row[:5], logits[2 * i], logits[2 * i + 1]) for i, row in enumerate(rows)]


def _read(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _check(table, expected):
    assert len(table) == len(expected)
    for row, (columns, ref, alt) in zip(table, expected):
        assert (row["chrom"], int(row["pos"]), row["id"], row["ref"], row["alt"]) == columns
        scale = max(1.0, abs(ref), abs(alt))
        assert abs(float(row["logit/ref"]) - ref) <= 1e-4 * scale, (columns, row)
        assert abs(float(row["logit/alt"]) - alt) <= 1e-4 * scale, (columns, row)
        assert abs(float(row["logit/diff"]) - (alt - ref)) <= 1e-4 * scale, (columns, row)


@pytest.mark.parametrize("method, options, bin_size, rc", [
    ("fast", [], 1, False),
    ("naive", [], 1, False),
    ("fast", ["--bin", "50"], 50, False),
    ("fast", ["--rc"], 1, True),
])
def test_effects_equal_two_forward_passes_by_hand(genome, tmp_path, method, options, bin_size, rc):
    folder, chroms = genome
    records = _records(chroms)
    vcf = _write_vcf(tmp_path / "calls.vcf.gz", records, bgzipped=True)
    out = tmp_path / "effects.tsv"
    result = onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out,
                         "--method", method, *options)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("onnxism: scored 8 variants")
    _check(_read(out), _expected(chroms, records, bin_size, rc))


def test_log_ratio_gzip_output_and_targets(genome, tmp_path):
    folder, chroms = genome
    records = _records(chroms)
    vcf = _write_vcf(tmp_path / "calls.vcf", records)
    out = tmp_path / "effects.tsv.gz"
    result = onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out,
                         "--log-ratio", "--targets", "sum")
    assert result.returncode == 0, result.stderr
    table = _read(out)
    _check(table, _expected(chroms, records))
    for row in table:
        ref, alt = float(row["logit/ref"]), float(row["logit/alt"])
        ratio = float(row["logit/log2_ratio"])
        if ref > 0 and alt > 0:
            assert abs(ratio - np.log2(alt / ref)) < 1e-5
        else:
            assert np.isnan(ratio)


def test_ref_mismatches_are_refused_or_skipped_and_counted(genome, tmp_path):
    folder, chroms = genome
    wrong = "A" if chroms["chr1"][99] != "A" else "C"
    records = _records(chroms)[:2] + [("chr1", 100, "wrong_ref", wrong, "G" if wrong != "G" else "T")]
    vcf = _write_vcf(tmp_path / "calls.vcf", records)
    out = tmp_path / "effects.tsv"
    refused = onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out)
    assert_clean_failure(refused, f"line 7 (chr1:100): REF '{wrong}' does not match the genome's "
                                  f"'{chroms['chr1'][99]}'")
    assert not out.exists()
    skipped = onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out,
                          "--check-ref", "skip")
    assert skipped.returncode == 0, skipped.stderr
    assert "onnxism: notice: scored 3 variants; skipped 1 record(s) whose REF does not match" in skipped.stderr
    _check(_read(out), _expected(chroms, _records(chroms)[:2]))


def test_chromosome_names_are_matched_only_when_asked(genome, tmp_path):
    folder, chroms = genome
    ref = chroms["chr1"][1003]
    alts = ",".join(base for base in "ACGT" if base != ref)
    vcf = tmp_path / "ensembl.vcf"
    vcf.write_text(HEADER.replace("ID=chr", "ID=") + f"1\t1004\tx\t{ref}\t{alts}\t.\tPASS\t.\n")
    out = tmp_path / "effects.tsv"
    assert_clean_failure(onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out),
                         "which calls it 'chr1'")
    matched = onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out,
                          "--match-chroms")
    assert matched.returncode == 0, matched.stderr
    expected = _expected(chroms, [("chr1", 1004, "x", ref, alts)])
    _check(_read(out), [(("1",) + columns[1:], before, after) for columns, before, after in expected])


@pytest.mark.parametrize("line, message", [
    ("chr1\t1004\tx\tT\t<DEL>\t.\tPASS\t.", "symbolic allele '<DEL>'"),
    ("chr1\t1004\tx\tT\t*\t.\tPASS\t.", "symbolic allele '*'"),
    ("chr1\t2999\tx\tACGT\tA\t.\tPASS\t.", "ends past the end of chr1"),
    ("chr9\t10\tx\tA\tC\t.\tPASS\t.", "chromosome 'chr9'"),
    ("chr1\tten\tx\tA\tC\t.\tPASS\t.", "line 5: malformed VCF record"),
    ("chr1\t1004\tx\tT\tR\t.\tPASS\t.", "allele 'R'"),
])
def test_bad_records_fail_cleanly(genome, tmp_path, line, message):
    folder, _ = genome
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(HEADER + line + "\n")
    out = tmp_path / "effects.tsv"
    assert_clean_failure(onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out),
                         message)
    assert not out.exists() and not list(tmp_path.glob(".onnxism-*"))


def test_bad_requests_fail_cleanly(genome, tmp_path):
    folder, chroms = genome
    vcf = _write_vcf(tmp_path / "calls.vcf", _records(chroms))
    fasta = folder / "genome.fa"
    assert_clean_failure(onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", fasta, "-o", tmp_path / "x.csv"),
                         "must end in .tsv, .tsv.gz, .parquet")
    assert_clean_failure(onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", fasta, "-o", tmp_path / "x.tsv",
                                     "--bin", "0"), "--bin must be an integer from 1 to the window length 200")
    zipped = tmp_path / "plain.vcf.gz"
    with gzip.open(zipped, "wt") as handle:
        handle.write(vcf.read_text())
    assert_clean_failure(onnxism_cli("variants", MODEL, "--vcf", zipped, "--genome", fasta, "-o", tmp_path / "x.tsv"),
                         "not with bgzip")
    empty = tmp_path / "empty.vcf"
    empty.write_text(HEADER)
    assert_clean_failure(onnxism_cli("variants", MODEL, "--vcf", empty, "--genome", fasta, "-o", tmp_path / "x.tsv"),
                         "holds no variant to score")
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".onnxism-*"))


def test_parquet_holds_the_same_table(genome, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="the [parquet] extra (pyarrow) is not installed")
    folder, chroms = genome
    vcf = _write_vcf(tmp_path / "calls.vcf", _records(chroms))
    tsv, parquet = tmp_path / "effects.tsv", tmp_path / "effects.parquet"
    for out in (tsv, parquet):
        result = onnxism_cli("variants", MODEL, "--vcf", vcf, "--genome", folder / "genome.fa", "-o", out)
        assert result.returncode == 0, result.stderr
    table = pq.read_table(parquet).to_pydict()
    rows = _read(tsv)
    assert list(table) == list(rows[0])
    for name in ("chrom", "id", "ref", "alt"):
        assert table[name] == [row[name] for row in rows]
    assert table["pos"] == [int(row["pos"]) for row in rows]
    for name in ("logit/ref", "logit/alt", "logit/diff"):
        np.testing.assert_allclose(table[name], [float(row[name]) for row in rows], rtol=1e-6)
