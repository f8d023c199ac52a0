"""Variants from a VCF or BCF file (plain or bgzip-compressed), read with pysam one record at a time: one Variant per
alternative allele, checked against the genome.

Invariant: a Variant's REF matches the genome at its position (or the variant is skipped and counted, with
``check_ref="skip"``); its alleles are A, C, G, T and N (any case) only: a symbolic allele (``<DEL>``, ``*``, a
breakend) is an InputError naming the record's line, as is a malformed record or a position past its chromosome's
end. A record with no alternative allele (ALT ".") gives no variant and is counted.
"""

from dataclasses import dataclass

from ..errors import InputError
from ..io.user_files import existing_file, open_maybe_gzipped
from ..sequences.text import encode
from .fasta import import_pysam, is_plain_gzip

CHECK_REF = ("error", "skip")


@dataclass(frozen=True)
class Variant:
    """One alternative allele of a VCF record: the VCF's chromosome name and 1-based position, the genome's name
    for the chromosome, and the record's line (for messages)."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    contig: str
    line: int

    @property
    def start(self):
        """The 0-based position of REF's first base."""
        return self.pos - 1

    @property
    def is_snv(self):
        return len(self.ref) == 1 and len(self.alt) == 1


class VariantReader:
    """Iterates over the Variants of ``path`` checked against ``genome`` (an open Genome); counts what it skips."""

    def __init__(self, path, genome, *, check_ref="error"):
        if check_ref not in CHECK_REF:
            raise InputError(f"--check-ref must be one of {', '.join(CHECK_REF)}; got {check_ref!r}")
        self.path = existing_file(path, "variants file", "a VCF or BCF file (plain or bgzip-compressed)")
        self.genome, self.check_ref = genome, check_ref
        self.mismatched = self.no_alt = 0
        if is_plain_gzip(self.path):
            raise InputError(f"{self.path} is gzip-compressed but not with bgzip, which htslib reads: recompress it "
                             "(gunzip, then bgzip) or give it uncompressed")
        pysam = import_pysam()
        try:
            self._file = pysam.VariantFile(self.path)
        except (OSError, ValueError, NotImplementedError) as err:
            raise InputError(f"cannot read {self.path} as VCF: {err}") from err
        self._header_lines = _header_lines(self.path)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __iter__(self):
        line = self._header_lines or 0
        records = iter(self._file)
        while True:
            line += 1
            try:
                record = next(records)
            except StopIteration:
                return
            except (OSError, ValueError) as err:
                raise InputError(f"{self.path} {self._place(line)}: malformed VCF record ({err})") from err
            yield from self._variants(record, line)

    def _place(self, line):
        """How a message names the record: its line in a VCF, its number in a BCF."""
        return f"line {line}" if self._header_lines is not None else f"record {line}"

    def _variants(self, record, line):
        where = f"{self.path} {self._place(line)} ({record.chrom}:{record.pos})"
        if not record.alts:
            self.no_alt += 1
            return
        contig = self.genome.chromosome(record.chrom, f"{self.path} {self._place(line)}")
        ref = record.ref.upper()
        for allele in (ref, *record.alts):
            if allele.startswith("<") or allele == "*" or "[" in allele or "]" in allele or allele == ".":
                raise InputError(f"{where}: symbolic allele {allele!r} cannot be scored as a sequence; remove such "
                                 "records (bcftools view --exclude-types other) or spell the alleles out")
            encode(allele, f"{where}: allele {allele!r}")
        end = record.pos - 1 + len(ref)
        if end > self.genome.lengths[contig]:
            raise InputError(f"{where}: REF {ref!r} ends past the end of {contig} ({self.genome.lengths[contig]} "
                             f"bases in {self.genome.path})")
        genome_ref = "".join("ACGTN"[code] for code in self.genome.codes(contig, record.pos - 1, end))
        if genome_ref != ref:
            if self.check_ref == "error":
                raise InputError(f"{where}: REF {ref!r} does not match the genome's {genome_ref!r} (another genome "
                                 "build?); pass --check-ref skip to skip and count such variants")
            self.mismatched += 1
            return
        for alt in record.alts:
            yield Variant(record.chrom, record.pos, record.id or ".", ref, alt.upper(), contig, line)


def _header_lines(path):
    """The number of header lines of a text VCF (plain or bgzip), or None for a BCF (binary)."""
    count = 0
    try:
        with open_maybe_gzipped(path, "rt") as handle:
            for line in handle:
                if not line.startswith("#"):
                    break
                count += 1
    except (UnicodeDecodeError, OSError, EOFError):
        return None
    return count if count else None
