"""Every pipeline of graph rewrites, as a list of named passes, and the contexts they run with.

  REPAIR          what every model gets when it is read: the header, and forms onnxruntime refuses
  LOAD            a read model made one onnxism scores: tokens folded, the sequence input found, a fixed batch freed,
                  TensorFlow's space-to-batch convolutions read as dilated ones, a batch stack unrolled
  FAST_NORMALISE  exporter forms rewritten into ones fast ISM's window analysis reads, and the probe it reads
  GRADIENT_PREP   what the gradient graph's reverse pass needs of the model

Run one with ``base.run_pipeline(PIPELINE, proto, context)``.
"""

from dataclasses import dataclass

from . import (
    batch_unroll,
    erfc_as_erf,
    explicit_same_pads,
    find_sequence_input,
    fold_tokens,
    free_batch,
    probe,
    repair_header,
    scatter_opset,
    space_to_batch,
)
from .base import Pass
from .normalise import node_rewrites, probed_rewrites
from .normalise.constant_parts import broadcast_operand, concat_of_constants
from .normalise.dense_per_position import dense_per_position
from .normalise.einsum_as_product import einsum_as_product
from .normalise.gather_nd import gather_nd_as_gather
from .normalise.reverse_sequence import full_reverse_sequence, whole_reverse_sequences
from .normalise.split_as_slices import split_as_slices
from .normalise.transpose_sinking import (
    gather_before_transpose,
    slice_before_transpose,
    transpose_pair,
    unsqueeze_before_transpose,
)


@dataclass(frozen=True)
class LoadContext:
    """What loading knows: the caller's options, then the facts passes find (``found``: the SequenceInput)."""

    source: str = "model"
    owned: bool = False  # the pipeline's model is its own (read from a file, or copied): passes may edit it
    input: str = None
    layout: str = None
    tokens: object = None  # Tokens
    found: object = None  # SequenceInput
    fixed_batch: int = None
    exported_batch: int = None
    dilated: int = 0
    unrolled: int = 0


@dataclass(frozen=True)
class ProbeContext:
    """The sequence input to probe with, then the probe's facts (``graph.probe.probe_graph``)."""

    input_name: str
    input_shape: tuple
    dtype: object
    extras: dict = None
    owned: bool = False
    shapes: dict = None
    fixed: dict = None
    uniform: dict = None
    dtypes: dict = None


REPAIR = (
    Pass("repair_header", repair_header.run),
    Pass("explicit_same_pads", explicit_same_pads.run),
    Pass("erfc_as_erf", erfc_as_erf.run),
)

LOAD = (
    Pass("fold_tokens", fold_tokens.run),
    Pass("find_sequence_input", find_sequence_input.run),
    Pass("free_batch", free_batch.run),
    Pass("space_to_batch", space_to_batch.run),
    Pass("batch_unroll", batch_unroll.run),
)

#: The node rewrites that need no probe, in the order they are tried.
EXPORTER_FORMS = (gather_nd_as_gather, gather_before_transpose, slice_before_transpose, unsqueeze_before_transpose,
                  transpose_pair, einsum_as_product)
#: The node rewrites that read the probe's shapes, then the others.
PROBED_FORMS = (full_reverse_sequence, dense_per_position, split_as_slices, concat_of_constants,
                broadcast_operand) + EXPORTER_FORMS

FAST_NORMALISE = (
    Pass("exporter_forms", node_rewrites(EXPORTER_FORMS, "exporter forms rewritten")),
    Pass("probe", probe.run),
    Pass("probed_forms", probed_rewrites(PROBED_FORMS, "probed exporter forms rewritten")),
)

GRADIENT_PREP = (
    Pass("whole_reverse_sequences", whole_reverse_sequences),
    Pass("scatter_opset", scatter_opset.run),
)
