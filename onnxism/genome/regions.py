"""Regions of a genome as the model's input: BED or narrowPeak lines, each placed on a window of the model's length.

Placement: a window of length L is centred on the region's middle ((start + end) // 2), or on its summit (start +
column 10) for narrowPeak lines that give one; it starts at centre - L // 2. Bases of the window beyond either end
of its chromosome are N. With ``strand``, a region on the "-" strand is read reverse-complemented (the model sees
the minus strand 5' to 3'). BED coordinates are 0-based and half-open; so are the windows written out.

Invariant: sequence i of :class:`RegionSequences` is genome[chrom_i][start_i:end_i] (reverse-complemented where
strand_i is "-"), its one-hot rows read from the genome only when a chunk asks for them: memory grows with the
number of regions (a few numbers each), never with their bases.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.user_files import existing_file, open_maybe_gzipped
from ..sequences.onehot import Sequences
from ..sequences.text import ONEHOT_ROWS, onehot_from_strings, reverse_complement
from .fasta import Genome

SKIPPED_PREFIXES = ("#", "track", "browser")


@dataclass
class Regions:
    """Regions as read from a BED file: 0-based half-open intervals, their names, strands and summits."""

    chrom: list
    start: np.ndarray
    end: np.ndarray
    name: list
    strand: list
    summit: np.ndarray  # offset from start, -1 where none
    lines: np.ndarray  # the line number of each region, for messages

    def __len__(self):
        return len(self.chrom)


def read_bed(path):
    """The regions of a BED (3 to 12 columns) or narrowPeak (10 columns, .narrowPeak) file, gzipped or not."""
    path = existing_file(path, "regions file", "a BED or narrowPeak file")
    peaks = ".narrowpeak" in path.lower()
    chrom, start, end, name, strand, summit, lines = [], [], [], [], [], [], []
    try:
        with open_maybe_gzipped(path, "rt") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip() or line.startswith(SKIPPED_PREFIXES):
                    continue
                fields = line.rstrip("\n\r").split("\t")
                if len(fields) < 3:
                    fields = line.split()
                where = f"{path} line {number}"
                if len(fields) < 3:
                    raise InputError(f"{where} has {len(fields)} column(s); a BED line has chrom, start and end")
                first, last = _integer(fields[1], "start", where), _integer(fields[2], "end", where)
                if first < 0 or last < first:
                    raise InputError(f"{where}: start {first} and end {last} are not an interval (0 <= start <= end)")
                offset = -1
                if peaks:
                    if len(fields) < 10:
                        raise InputError(f"{where} has {len(fields)} columns; a narrowPeak line has 10")
                    offset = _integer(fields[9], "summit offset", where)
                    if offset >= last - first or offset < -1:
                        raise InputError(f"{where}: summit offset {offset} is outside the peak (0 to "
                                         f"{last - first - 1}, or -1 for none)")
                label = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else f"{fields[0]}:{first}-{last}"
                sign = fields[5] if len(fields) > 5 else "."
                if sign not in ("+", "-", "."):
                    raise InputError(f"{where}: strand {sign!r} is not +, - or .")
                chrom.append(fields[0])
                start.append(first)
                end.append(last)
                name.append(label)
                strand.append(sign)
                summit.append(offset)
                lines.append(number)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read regions file {path}: {err}") from err
    if not chrom:
        raise InputError(f"{path} holds no regions")
    return Regions(chrom, np.array(start, np.int64), np.array(end, np.int64), name, strand,
                   np.array(summit, np.int64), np.array(lines, np.int64))


def _integer(text, what, where):
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{where}: {what} {text!r} is not an integer") from None


class RegionSequences(Sequences):
    """Windows of a genome, one per region, read chunk by chunk; ``columns`` holds each window's coordinates."""

    def __init__(self, genome, regions, length, *, strand=False, source="regions"):
        starts, chroms = [], []
        for index in range(len(regions)):
            where = f"{source} line {regions.lines[index]}"
            chrom = genome.chromosome(regions.chrom[index], where)
            if regions.end[index] > genome.lengths[chrom]:
                raise InputError(f"{where}: {regions.chrom[index]}:{regions.start[index]}-{regions.end[index]} ends "
                                 f"past the end of {chrom} ({genome.lengths[chrom]} bases in {genome.path})")
            summit = regions.summit[index]
            centre = regions.start[index] + summit if summit >= 0 else (regions.start[index] + regions.end[index]) // 2
            starts.append(int(centre) - length // 2)
            chroms.append(chrom)
        self.genome, self.strand = genome, strand
        self.starts = np.array(starts, np.int64)
        self.minus = np.array([strand and sign == "-" for sign in regions.strand], bool)
        self.chroms = chroms
        self.count, self.length, self.source = len(regions), int(length), source
        self.ids = np.array(regions.name)
        self.columns = {
            "region/chrom": np.array(chroms),
            "region/start": self.starts,
            "region/end": self.starts + length,
            "region/strand": np.where(self.minus, "-", "+"),
        }

    def codes(self, start=0, stop=None):
        """Base codes (n, L) of sequences ``start:stop``, read from the genome."""
        stop = self.count if stop is None else stop
        rows = np.empty((stop - start, self.length), np.uint8)
        for row, index in enumerate(range(start, stop)):
            start_at = int(self.starts[index])
            bases = self.genome.codes(self.chroms[index], start_at, start_at + self.length)
            rows[row] = reverse_complement(bases) if self.minus[index] else bases
        return rows

    def onehot(self, start=0, stop=None):
        return ONEHOT_ROWS[self.codes(start, stop)]


def regions_onehot(regions, genome, length, *, strand=False, match_chroms=False):
    """(N, L, 4) float32 one-hot windows of ``genome`` (a FASTA path or a Genome) for ``regions`` (a BED or
    narrowPeak path, or Regions), placed as this module says. For more regions than memory holds, use
    ``RegionSequences`` (what ``onnxism run --bed`` does), which reads them chunk by chunk."""
    if not isinstance(regions, Regions):
        regions = read_bed(regions)
    if isinstance(genome, Genome):
        return RegionSequences(genome, regions, length, strand=strand).onehot()
    with Genome(genome, match_chroms=match_chroms) as opened:
        return RegionSequences(opened, regions, length, strand=strand).onehot()


__all__ = ["Regions", "RegionSequences", "onehot_from_strings", "read_bed", "regions_onehot"]
