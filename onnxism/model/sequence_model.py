"""The loaded model: an ONNX graph plus what onnxism knows of its sequence input and outputs (``loading.load``
makes it), and the sessions and plans it keeps for reuse.

Invariant: ``proto`` is never modified after loading; everything derived from it is kept in ``cache``, per what it
depends on (device, thread count, length, outputs, targets).
"""

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ModelError, OnnxismError
from ..graph.weightless import weightless
from ..runtime.rows import padded_rows, rows_of
from ..runtime.sessions import make_session, parse_device
from ..runtime.weights import detached_copy
from ..sequences import as_sequences
from .extra_inputs import zero_extra_inputs
from .sequence_input import model_feeds, to_model_layout


@dataclass
class ModelCache:
    """What a loaded model keeps for reuse, each by what it depends on."""

    sessions: dict = field(default_factory=dict)  # (device, threads) -> the model's own onnxruntime session
    output_shapes: dict = field(default_factory=dict)  # length -> {output: shape after the batch}
    fast_plans: dict = field(default_factory=dict)  # (length, outputs, device, threads) -> fast ISM's plan
    gradient_sessions: dict = field(default_factory=dict)  # (output, length, device) -> gradient graph's session
    folded_targets: dict = field(default_factory=dict)  # the targets' key -> (model with them folded, names)
    row_bytes: dict = field(default_factory=dict)  # length -> the memory estimate's bytes per model row


class SequenceModel:
    """An ONNX model whose single input takes one-hot DNA.

    Attributes
    ----------
    proto : onnx.ModelProto
        The (repaired) graph; never modified after loading.
    input_name, layout : str
        The sequence input and its layout, "NLC" (N, L, 4) or "NCL" (N, 4, L).
    length : int or None
        The fixed sequence length, or None when the graph accepts any length.
    fixed_batch : int or None
        The batch size the graph is fixed to, or None when the batch axis is dynamic.
    exported_batch : int or None
        The fixed batch size the model was exported with where loading freed it (``free_batch.py``): ``proto`` is
        then the rewritten graph, which takes any batch.
    dilated : int
        How many dilated convolutions written as space-to-batch (TensorFlow's form for an input of any length, as
        tf2onnx writes it) loading read as the dilated Convs they are (``space_to_batch.py``); ``proto`` is then the
        rewritten graph.
    unrolled : int
        How many concatenations of the sequences along the batch (with their reverse complement, run through the
        layers once) loading unrolled into one copy of the layers per part (``batch_unroll.py``); ``proto`` is then
        the unrolled graph.
    tokens : Tokens or None
        For a model that takes bases as integer ids: which id each base has. ``proto`` is then the graph with its
        token lookup folded (``passes/fold_tokens.py``): it takes one-hot (N, L, 4) under the token input's name.
    output_names : list of str
        The graph outputs, in graph order.
    cache : ModelCache
        Sessions, output shapes and plans, kept for reuse.
    """

    def __init__(self, proto, found, *, source="model", fixed_batch=None, exported_batch=None, tokens=None,
                 dilated=0, unrolled=0):
        self.proto = proto
        self.source = source
        self.found = found  # the SequenceInput (``sequence_input.py``)
        self.input_name = found.name
        self.layout = found.layout
        self.length = found.length
        self.fixed_batch = fixed_batch
        self.input_dtype = found.dtype
        self.extra_inputs = found.others  # ExtraInput per input besides the sequences (``extra_inputs.py``)
        self.exported_batch = exported_batch
        self.tokens = tokens
        self.dilated = dilated
        self.unrolled = unrolled
        self.output_names = [value.name for value in proto.graph.output]
        self.cache = ModelCache()

    def with_proto(self, proto):
        """The same model (input, batch, the rewrites loading made) with the graph ``proto`` (which keeps its
        inputs: e.g. with targets folded in), and caches of its own."""
        return SequenceModel(proto, self.found, source=self.source, fixed_batch=self.fixed_batch,
                             exported_batch=self.exported_batch, tokens=self.tokens, dilated=self.dilated,
                             unrolled=self.unrolled)

    def __repr__(self):
        return (
            f"SequenceModel({self.source!r}, input={self.input_name!r}, layout={self.layout!r}, "
            f"length={self.length}, outputs={self.output_names}"
            + (f", tokens={self.tokens.describe()!r}" if self.tokens else "") + ")"
        )

    def sequences(self, seqs):
        """``seqs`` checked for this model (``as_sequences``): its length, and no N where a token model has no id
        for N."""
        sequences = as_sequences(seqs, length=self.length)
        if self.tokens is not None and self.tokens.n is None:
            for start, stop in sequences.chunks(max(1, (1 << 22) // (4 * sequences.length))):
                unknown = sequences.onehot(start, stop).sum(axis=2) == 0
                if unknown.any():
                    n, i = np.argwhere(unknown)[0]
                    raise InputError(f"{sequences.source} has an N at sequence {start + n}, position {i}, and the "
                                     f"model's tokens ({self.tokens.describe()}) have no id for N")
        return sequences

    def session(self, device="cpu", threads=None):
        """The reusable onnxruntime session on ``device`` (``threads``: its intra-op threads, onnxruntime's default
        when None)."""
        key = (parse_device(device), threads)
        if key not in self.cache.sessions:
            self.cache.sessions[key] = self._new_session(device, threads)
        return self.cache.sessions[key]

    def _new_session(self, device, threads=None, *, shapes_only=False):
        """A session of the model on ``device``; ``shapes_only``: of its weightless stand-in, unoptimised (shapes
        only: ``weightless.py``)."""
        try:
            if shapes_only:
                return make_session(weightless(self.proto)[0].SerializeToString(), device, optimize=False)
            graph, weights = detached_copy(self.proto)  # (its large weights beside it: ``runtime/weights.py``)
            return make_session(graph.SerializeToString(), device, threads=threads, weights=weights)
        except OnnxismError:
            raise
        except Exception as err:  # onnxruntime's own exception types
            raise ModelError(f"onnxruntime cannot load {self.source}: {_first_line(err)}") from err

    def select_outputs(self, outputs=None):
        """The output names to compute: all by default, else the named ones (checked)."""
        if outputs is None:
            return list(self.output_names)
        if isinstance(outputs, str):
            outputs = [outputs]
        outputs = list(outputs)
        if not outputs:
            raise InputError("outputs= is empty; name at least one output or pass None for all")
        unknown = [name for name in outputs if name not in self.output_names]
        if unknown:
            raise InputError(
                f"unknown output name {unknown[0]!r}; the model's outputs are: {', '.join(self.output_names)}"
            )
        return outputs

    def sequence_length(self, length=None):
        """The length to run at: the model's fixed one, or ``length`` for a length-agnostic model."""
        if self.length is not None:
            return self.length
        if length is None:
            raise InputError("the model accepts any sequence length; give sequences to fix one")
        return int(length)

    def output_shapes(self, length=None, device="cpu"):
        """Per output name, its shape without the batch axis, found by running zero sequences once.

        The run uses a session already held for ``device`` if there is one, else a session of the model's weightless
        stand-in made for it and let go after it: fast ISM and TISM run graphs of their own, so no copy of the
        model's weights is made for the probe.
        """
        length = self.sequence_length(length)
        if length not in self.cache.output_shapes:
            batch = self.fixed_batch or 2
            probe = np.zeros((batch, length, 4), dtype=np.float32)
            placed = parse_device(device)
            held = [session for (where, _), session in self.cache.sessions.items() if where == placed]
            session = held[0] if held else self._new_session(device, shapes_only=True)
            try:
                results = session.run(self.output_names, self.feeds(probe, zero_extra_inputs(self, batch, length)))
            except Exception as err:  # onnxruntime's own exception types
                raise ModelError(
                    f"onnxruntime cannot run {self.source} on ({batch}, {length}, 4) input: {_first_line(err)}"
                ) from err
            shapes = {}
            for name, value in zip(self.output_names, results):
                if value.ndim == 0 or value.shape[0] != batch:
                    raise ModelError(
                        f"output {name!r} has shape {value.shape} for a batch of {batch}; onnxism needs every "
                        "output to have the batch as its first axis"
                    )
                shapes[name] = tuple(value.shape[1:])
            self.cache.output_shapes[length] = shapes
        return dict(self.cache.output_shapes[length])

    def to_model_layout(self, seqs):
        """(n, L, 4) one-hot -> the array the graph's input takes (layout and dtype)."""
        return to_model_layout(self.found, seqs)

    def feeds(self, seqs, extras=None):
        """The inputs of one run: (n, L, 4) sequences in the model's layout, and the extra inputs' rows (``extras``:
        name -> (n, ...) array, checked by ``extra_inputs.check_extra_inputs``)."""
        return model_feeds(self.found, seqs, extras)

    def run(self, seqs, outputs, device="cpu", threads=None, extras=None):
        """Run (n, L, 4) sequences through the graph, with their rows of the extra inputs (``extras``: name ->
        (n, ...) array); returns float32 arrays (n, *shape) for ``outputs``.

        A graph with a fixed batch size gets batches of exactly that size (the last one zero-padded). Safe to call
        from several threads at once (onnxruntime sessions are).
        """
        session = self.session(device, threads)
        count = len(seqs)
        step = self.fixed_batch or count
        parts = []
        for start in range(0, count, step):
            batch = seqs[start:start + step]
            rows = rows_of(extras or {}, slice(start, start + step))
            batch, rows = padded_rows(batch, step), padded_rows(rows, step)  # a fixed batch's last one
            try:
                values = session.run(outputs, self.feeds(batch, rows))
            except Exception as err:  # onnxruntime's own exception types
                raise ModelError(f"onnxruntime failed to run {self.source}: {_first_line(err)}") from err
            parts.append([np.asarray(value[: min(step, count - start)], dtype=np.float32) for value in values])
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(outputs))]


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
