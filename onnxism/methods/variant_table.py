"""``variants_to_table``: the effects of a VCF's variants, read, scored and written chunk by chunk.

Columns: chrom, pos, id, ref, alt as the VCF names them (one row per alternative allele), then per output or target
NAME (an element's index in brackets where it has several: ``profile[3,0]``) its ``NAME/ref``, ``NAME/alt`` and
``NAME/diff`` (alt - ref), and with ``log_ratio`` ``NAME/log2_ratio`` (log2(alt / ref), NaN unless both are > 0).

Invariant: rows are in the VCF's order; memory holds one chunk of variants, whatever the VCF's size; the table
is complete or absent (``io/table_writer.py``).
"""

import itertools
import warnings

import numpy as np

from ..errors import InputError, OnnxismWarning
from ..genome.fasta import Genome
from ..genome.vcf import VariantReader
from ..io.table_writer import TableWriter, check_table_path
from .variants import plan_variants, score_variants

#: Variants read, scored and written together.
CHUNK = 4096


def variants_to_table(model, vcf, genome, path, *, method="fast", outputs=None, targets=None, device="cpu",
                      batch_size=None, workers=None, length=None, bin_size=1, rc=False, log_ratio=False,
                      check_ref="error", match_chroms=False, force=False):
    """Score every alternative allele of ``vcf`` on windows of ``genome`` (a FASTA path) and write the table at
    ``path`` (.tsv, .tsv.gz or .parquet); returns the number of rows written. Options as for :func:`onnxism.ism`,
    and ``bin_size``, ``rc`` (``methods/variants.py``), ``log_ratio``, ``check_ref`` ("error" or "skip")."""
    check_table_path(path, force)
    plan = plan_variants(model, method=method, outputs=outputs, targets=targets, device=device,
                         batch_size=batch_size, workers=workers, length=length, bin_size=bin_size, rc=rc)
    with Genome(genome, match_chroms=match_chroms) as opened, \
            VariantReader(vcf, opened, check_ref=check_ref) as reader, TableWriter(path, force=force) as table:
        variants = iter(reader)
        while True:
            chunk = list(itertools.islice(variants, CHUNK))
            if not chunk:
                break
            table.write(_block(chunk, score_variants(plan, opened, chunk), log_ratio))
        if not table.rows:
            raise InputError(f"{reader.path} holds no variant to score" + _skipped(reader))
        if reader.mismatched or reader.no_alt:
            warnings.warn(f"scored {table.rows} variants;{_skipped(reader)}", OnnxismWarning, stacklevel=2)
    return table.rows


def _skipped(reader):
    parts = []
    if reader.mismatched:
        parts.append(f" skipped {reader.mismatched} record(s) whose REF does not match the genome")
    if reader.no_alt:
        parts.append(f" skipped {reader.no_alt} record(s) with no alternative allele")
    return ";".join(parts)


def _block(variants, results, log_ratio):
    """The table's columns for a chunk."""
    block = {
        "chrom": [v.chrom for v in variants], "pos": [v.pos for v in variants], "id": [v.id for v in variants],
        "ref": [v.ref for v in variants], "alt": [v.alt for v in variants],
    }
    for name, (ref, alt, diff) in results.items():
        shape = ref.shape[1:]
        for index in np.ndindex(*shape):
            label = name if int(np.prod(shape)) == 1 else f"{name}[{','.join(map(str, index))}]"
            before, after = ref[(slice(None),) + index], alt[(slice(None),) + index]
            block[f"{label}/ref"], block[f"{label}/alt"] = before, after
            block[f"{label}/diff"] = diff[(slice(None),) + index]
            if log_ratio:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where((before > 0) & (after > 0), np.log2(after / before), np.nan)
                block[f"{label}/log2_ratio"] = ratio.astype(np.float32)
    return block
