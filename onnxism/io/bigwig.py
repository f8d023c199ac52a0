"""A bigWig track of a result archive made from regions of a genome (``onnxism run --bed``): one value per base at
genome coordinates, written with pyBigWig (the ``[genome]`` extra).

The value of a base is one number from the 4 scores of its position (``methods/attributions.py``'s forms):

  projected  the centred score at the observed base, -(sum of the 3 deltas) / 4: what the base contributes against
             a uniform baseline (the logo's letter height); the default
  mean       the mean effect of the 3 substitutions, (sum of the 3 deltas) / 3 = -4/3 x projected

Both are read from delta (TISM: tism), centred or projected archives (the delta at the observed base is 0, so each
form gives the other); the gradient forms are refused. A position whose base is N has no observed base and no value.

Invariant: where windows overlap, a base's value is the mean of its values in every window that scored it; bases no
window scored have no entry (bigWig's gaps). Windows are taken in genome order and a base is written once no later
window can reach it, so memory holds a window's worth of bases, not a chromosome's; the scores are read from the
archive a sequence at a time (memory-mapped where the archive is uncompressed). The file is written whole (to a
scratch name, then renamed), or not at all.
"""

import zipfile

import numpy as np

from ..errors import InputError, MissingExtraError
from .modisco import _element, open_archive, pick_output
from .npz_writer import check_output_path
from .scratch import published
from .user_files import read_npy_header

VALUES = ("projected", "mean")
REGION_KEYS = ("region/chrom", "region/start", "region/end", "region/strand")


def _pybigwig():
    try:
        import pyBigWig
    except ImportError as err:
        raise MissingExtraError("bigWig tracks need pyBigWig: pip install 'onnxism[genome]'") from err
    return pyBigWig


def base_values(form, scores, onehot):
    """(W,) values at the projected form, NaN at N positions, from (W, 4) scores of ``form`` and (W, 4) one-hot."""
    scores = scores.astype(np.float64)
    if form in ("delta", "tism"):
        value = -scores.sum(axis=1) / 4
    elif form == "centred":
        value = (scores * onehot).sum(axis=1)
    elif form == "projected":
        value = scores.sum(axis=1)
    else:
        raise InputError(f"the archive holds {form} scores, which give no per-base effect; rerun with --attribution "
                         "delta, centred or projected")
    value[onehot.sum(axis=1) == 0] = np.nan
    return value


def stored_rows(path, key):
    """The archive member ``key`` as an array: memory-mapped where it is stored uncompressed, else read whole."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(key + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path, allow_pickle=False) as loaded:
            return loaded[key]
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        shape, fortran, dtype = read_npy_header(handle)
        offset = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class _Track:
    """Sums and counts of the bases from ``start`` on, for windows met in genome order; writes what is final."""

    def __init__(self, bigwig):
        self.bigwig, self.chrom, self.start = bigwig, None, 0
        self.total, self.count = np.zeros(0), np.zeros(0, np.int64)

    def add(self, chrom, first, values):
        """Values of bases first, first + 1, ... of ``chrom`` (NaN: no value)."""
        if chrom != self.chrom:
            self.flush(None)
            self.chrom, self.start = chrom, first
        self.flush(first)
        end = first + len(values)
        if end > self.start + len(self.total):
            grow = end - self.start - len(self.total)
            self.total = np.concatenate([self.total, np.zeros(grow)])
            self.count = np.concatenate([self.count, np.zeros(grow, np.int64)])
        known = ~np.isnan(values)
        span = slice(first - self.start, end - self.start)
        self.total[span][known] += values[known]
        self.count[span][known] += 1

    def flush(self, before):
        """Write the bases before ``before`` (all with None): no window met later reaches them."""
        if self.chrom is None:
            return
        stop = len(self.total) if before is None else max(0, min(before - self.start, len(self.total)))
        counted = np.flatnonzero(self.count[:stop] > 0)
        if counted.size:
            runs = np.split(counted, np.flatnonzero(np.diff(counted) > 1) + 1)
            for run in runs:
                means = self.total[run] / self.count[run]
                self.bigwig.addEntries(self.chrom, int(self.start + run[0]), values=means.tolist(), span=1, step=1)
        self.total, self.count = self.total[stop:], self.count[stop:]
        self.start += stop


def write_bigwig(scores_path, genome, path, *, output=None, index=None, value="projected", force=False):
    """Write the bigWig track of one output's scores in the archive ``scores_path`` (made by ``run --bed``) at
    ``path``; ``genome`` (a FASTA path or an open Genome) gives the chromosomes' sizes. Returns ``path``."""
    from ..genome.fasta import Genome

    if value not in VALUES:
        raise InputError(f"unknown value {value!r}; available: {', '.join(VALUES)}")
    path = check_output_path(path, force=force, suffix=".bw")
    pybigwig = _pybigwig()
    with open_archive(scores_path) as archive:
        missing = [key for key in REGION_KEYS if key not in archive.files]
        if missing:
            raise InputError(f"{scores_path} holds no genome coordinates ({missing[0]}): a bigWig needs an archive of "
                             "onnxism run --bed FILE --genome FASTA")
        output = pick_output(archive, scores_path, output)
        form, positions = str(archive["attribution"]), archive["positions"]
        chroms, starts = archive["region/chrom"], archive["region/start"]
        ends, strands = archive["region/end"], archive["region/strand"]
    opened = genome if isinstance(genome, Genome) else Genome(genome)
    try:
        sizes = dict(opened.lengths)
    finally:
        if opened is not genome:
            opened.close()
    unknown = sorted(set(chroms.tolist()) - set(sizes))
    if unknown:
        raise InputError(f"chromosome {unknown[0]!r} of {scores_path} is not in the genome {opened.path}: give the "
                         "genome the regions were read from")
    scores, onehot = stored_rows(scores_path, output), stored_rows(scores_path, "onehot")
    order = _genome_order(chroms, starts, ends, strands, positions, list(sizes))
    with published(path) as scratch:
        bigwig = pybigwig.open(scratch, "w")
        try:
            bigwig.addHeader(list(sizes.items()), maxZooms=10)
            track = _Track(bigwig)
            for n in order:
                values = base_values(form, _element(np.asarray(scores[n:n + 1, :]), index, output)[0],
                                     np.asarray(onehot[n, positions], np.float64))
                if value == "mean":
                    values = values * (-4 / 3)
                if strands[n] == "-":  # window position j is genome base end - 1 - j
                    first = int(ends[n]) - 1 - int(positions[-1])
                    values = values[::-1]
                else:
                    first = int(starts[n]) + int(positions[0])
                inside = max(0, -first), max(0, first + len(values) - sizes[str(chroms[n])])
                track.add(str(chroms[n]), first + inside[0], values[inside[0]:len(values) - inside[1]])
            track.flush(None)
        finally:
            bigwig.close()
    return path


def _genome_order(chroms, starts, ends, strands, positions, names):
    """Sequence indices sorted by the genome's chromosome order, then by the first base each scored."""
    rank = {name: i for i, name in enumerate(names)}
    first = np.where(strands == "-", ends - 1 - positions[-1], starts + positions[0])
    return sorted(range(len(chroms)), key=lambda n: (rank[str(chroms[n])], int(first[n])))
