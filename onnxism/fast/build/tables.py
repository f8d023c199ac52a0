"""What the ISM graph gathers from: the tables of cached tensors (one per windowed tensor some node reads across
its window, in the rows layout) and the gathers that read them (their row indices computed per batch by
``indices.py``, or in-graph by ``standalone.py``)."""

from dataclasses import dataclass

import numpy as np


@dataclass
class GatherSpec:
    """One gather of the ISM graph: rows for target columns start[p] + offsets (see ``indices.py``)."""

    index_name: str
    source: str
    start: np.ndarray
    offsets: np.ndarray  # 1-D int64: column offsets from start[p], in the order the gather returns them
    pad_row: int = 0
    kind: str = "table"  # "table", "reference", "col2im", "sequence" or "position"
    tap: np.ndarray = None  # col2im: the tap of each offset (static taps)
    column: np.ndarray = None  # col2im: the source column of each offset (static columns)
    taps: int = 1  # col2im: taps per source column
    block: int = 1  # col2im: source columns per row
    dilation: int = 1  # col2im: tap spacing
    column_map: np.ndarray = None  # "table": target columns column_map[start[p] + offsets] (a nearest Resize)

    @property
    def width(self):
        return len(self.offsets)


@dataclass
class Table:
    """How a tensor is laid out as rows: transpose ``perm`` (batch, length, then the other axes) and reshape to
    (-1, K), so row n * L_T + c holds position c of sequence n; ``rest`` are the other dims."""

    tensor: str
    perm: list
    rest: list
    pad_values: list
    gathered: bool = False  # some gather reads its [reference | window | padding] table, not just the reference
    dtype: object = np.float32  # the tensor's own type; tables hold float32 (``IsmGraphBuilder.typed``)

    @property
    def row_size(self):
        return int(np.prod(self.rest)) if self.rest else 1
