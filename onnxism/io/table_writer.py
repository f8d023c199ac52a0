"""A table written as it goes: tab-separated text (.tsv, or .tsv.gz gzipped) or Parquet (.parquet, the
``[parquet]`` extra: pyarrow), one block of rows at a time.

Invariant: the output path holds a complete table or nothing: rows go to a scratch file beside it
(``.onnxism-PID-NAME``, removed by the next run if this process is killed), renamed over the path on success and
removed on any failure.
"""

import gzip
import os

import numpy as np

from ..errors import InputError, MissingExtraError
from .npz_writer import check_output_path
from .scratch import clear_abandoned, scratch_file

SUFFIXES = (".tsv", ".tsv.gz", ".parquet")


def check_table_path(path, force=False):
    """The path, checked to be writable and to end in a suffix this writer knows."""
    path = os.fspath(path)
    suffix = next((suffix for suffix in SUFFIXES if path.endswith(suffix)), None)
    if suffix is None:
        raise InputError(f"output file {path} must end in {', '.join(SUFFIXES)}")
    return check_output_path(path, force=force, suffix=suffix)


class TableWriter:
    """Context manager: ``write({column: (n,) array or list})`` appends n rows, columns in the first block's
    order; the file is published on a clean exit."""

    def __init__(self, path, *, force=False):
        self.path = check_table_path(path, force)
        self.parquet = self.path.endswith(".parquet")
        if self.parquet:
            try:
                import pyarrow  # noqa: F401 - checked before any work
            except ImportError as err:
                raise MissingExtraError("Parquet output needs pyarrow: pip install 'onnxism[parquet]'") from err
        clear_abandoned(os.path.dirname(os.path.abspath(self.path)))
        self.scratch = scratch_file(self.path)
        self.columns, self._handle, self._parquet = None, None, None
        self.rows = 0

    def __enter__(self):
        if not self.parquet:
            opener = gzip.open if self.path.endswith(".gz") else open
            self._handle = opener(self.scratch, "wt", newline="")
        return self

    def write(self, block):
        if self.columns is None:
            self.columns = list(block)
            if not self.parquet:
                self._handle.write("\t".join(self.columns) + "\n")
        if self.parquet:
            self._write_parquet(block)
        else:
            texts = [_texts(block[column]) for column in self.columns]
            self._handle.writelines("\t".join(row) + "\n" for row in zip(*texts))
        self.rows += len(block[self.columns[0]])

    def _write_parquet(self, block):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({column: block[column] for column in self.columns})
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.scratch, table.schema)
        self._parquet.write_table(table)

    def __exit__(self, kind, value, traceback):
        try:
            if self._handle is not None:
                self._handle.close()
            if self._parquet is not None:
                self._parquet.close()
            if kind is None:
                os.replace(self.scratch, self.path)
        except OSError as err:
            raise InputError(f"cannot write {self.path}: {err.strerror or err}") from err
        finally:
            if os.path.exists(self.scratch):
                os.remove(self.scratch)
        return False


def _texts(values):
    """Column values as text: floats with 7 significant digits (float32's), NaN as "nan", the rest as str."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.floating):
        return [f"{value:.7g}" for value in values.tolist()]
    return [str(value) for value in values]
