"""A genome FASTA read with pysam (htslib's faidx): plain or bgzip-compressed, its .fai index made when missing.

Invariant: ``codes(chrom, start, end)`` returns exactly end - start base codes (``sequences/text.py``) for any
start < end, the bases beyond either end of the chromosome as N; a chromosome the genome lacks is an InputError
that says what the genome calls its chromosomes (and, where the names differ by a "chr" prefix, the option that
maps them).
"""

import os

import numpy as np

from ..errors import InputError, MissingExtraError
from ..io.user_files import GZIP_MAGIC, existing_file
from ..sequences.text import N_CODE, encode

#: The option that maps "1" to "chr1" (and back, and MT to chrM) where the genome names them otherwise.
MATCH_OPTION = "--match-chroms"


def import_pysam():
    """pysam, quietened (htslib's own messages would duplicate ours), or a MissingExtraError naming the extra."""
    try:
        import pysam
    except ImportError as err:
        raise MissingExtraError("reading a genome or a VCF needs pysam: pip install 'onnxism[genome]'") from err
    pysam.set_verbosity(0)
    return pysam


def is_plain_gzip(path):
    """True for a gzip file that is not BGZF (random access needs BGZF's blocks)."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    return head[:2] == GZIP_MAGIC and not (len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC")


class Genome:
    """Random access to the chromosomes of a FASTA file."""

    def __init__(self, path, *, match_chroms=False):
        self.path = existing_file(path, "genome file", "a FASTA file (plain or bgzip-compressed)")
        self.match_chroms = match_chroms
        if is_plain_gzip(self.path):
            raise InputError(f"{self.path} is gzip-compressed, but random access needs bgzip's blocks: recompress it "
                             f"(gunzip, then bgzip) or give it uncompressed")
        if not os.path.exists(self.path + ".fai"):
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.access(folder, os.W_OK):
                raise InputError(f"{self.path} has no .fai index and its folder is not writable to make one: run "
                                 "samtools faidx where it can be written, or copy the genome to a writable folder")
        pysam = import_pysam()
        try:
            self._fasta = pysam.FastaFile(self.path)
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read genome {self.path} as FASTA: {err}") from err
        self.lengths = dict(zip(self._fasta.references, self._fasta.lengths))
        if not self.lengths:
            raise InputError(f"genome {self.path} holds no sequences")

    def close(self):
        self._fasta.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def chromosome(self, name, where):
        """The genome's name for chromosome ``name`` (met at ``where``, for the message)."""
        if name in self.lengths:
            return name
        alternatives = [other for other in _alternative_names(name) if other in self.lengths]
        if alternatives and self.match_chroms:
            return alternatives[0]
        if alternatives:
            raise InputError(f"chromosome {name!r} ({where}) is not in {self.path}, which calls it "
                             f"{alternatives[0]!r}: the files name chromosomes differently; pass {MATCH_OPTION} to "
                             "map one naming to the other")
        names = list(self.lengths)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise InputError(f"chromosome {name!r} ({where}) is not in {self.path} (its chromosomes: {shown})")

    def codes(self, chrom, start, end):
        """Base codes of chrom[start:end] (0-based, half-open), N beyond the chromosome's ends."""
        size = self.lengths[chrom]
        out = np.full(end - start, N_CODE, dtype=np.uint8)
        first, last = max(start, 0), min(end, size)
        if first < last:
            try:
                text = self._fasta.fetch(chrom, first, last)
            except (OSError, ValueError) as err:
                raise InputError(f"cannot read {chrom}:{first}-{last} of {self.path}: {err}") from err
            if len(text) != last - first:
                raise InputError(f"{self.path} gave {len(text)} bases for {chrom}:{first}-{last}; its .fai index "
                                 "may be stale (delete it to have it made again)")
            out[first - start:last - start] = encode(text, f"{self.path} at {chrom}:{first}-{last}", genome=True)
        return out


def _alternative_names(name):
    """The other naming of a chromosome: chr1 <-> 1, chrM <-> MT <-> M."""
    if name.lower().startswith("chr"):
        bare = name[3:]
        return [bare] + (["MT"] if bare in ("M", "m") else [])
    return ["chr" + name] + (["chrM"] if name in ("MT", "M") else [])
