"""Reference predictions: the model's outputs on the sequences as given."""

import numpy as np

from ..model.extra_inputs import check_extra_inputs
from ..model.loading import load
from ..runtime.rows import rows_of
from .options import resolve_batch_size


def predict(model, seqs, *, outputs=None, device="cpu", batch_size=None, extra_inputs=None):
    """Run the model on one-hot sequences.

    Parameters
    ----------
    model : path, onnx.ModelProto or SequenceModel
    seqs : ndarray, shape (N, L, 4)
        One-hot in A, C, G, T order, whatever the model's layout; all-zero positions are N.
    outputs : list of str, optional
        Output names to return; all by default.
    device : {"cpu", "cuda", "cuda:K"}
    batch_size : int, optional
        Sequences per onnxruntime call.
    extra_inputs : dict of str to ndarray, optional
        The values of the model's inputs besides the sequences, one row per sequence (see :func:`onnxism.ism`).

    Returns
    -------
    dict of str to ndarray, each float32 of shape (N, *output_shape)
    """
    model = load(model)
    sequences = model.sequences(seqs)
    extras = check_extra_inputs(model, extra_inputs, len(sequences), sequences.length)
    names = model.select_outputs(outputs)
    shapes = model.output_shapes(sequences.length, device)
    results = {name: np.empty((len(sequences),) + shapes[name], dtype=np.float32) for name in names}
    step = resolve_batch_size(batch_size, sequences.length, device)
    for start, stop in sequences.chunks(step):
        values = model.run(sequences.onehot(start, stop), names, device, extras=rows_of(extras, slice(start, stop)))
        for name, value in zip(names, values):
            results[name][start:stop] = value
    return results
