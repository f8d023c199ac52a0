"""TF-MoDISco's inputs from a result archive: the one-hot sequences and the hypothetical scores of one output (or
one element of it), over a window of the positions scored, as the two files modisco-lite's ``modisco motifs -s
ohe.npz -a shap.npz`` reads: each an .npz whose array ``arr_0`` is (N, 4, W), channels first.

The hypothetical scores are the centred form of the archive's scores (``methods/attributions.py``): delta (ISM's
f(mutant) - f(reference), TISM's g[b] - g[ref]) and gradient centred over the 4 bases, centred as they are. The
projected forms (a score at the observed base only) hold too little to give them back, and are refused.

Invariant: shap.npz's arr_0[n, :, j] is the centred score of sequence n at position window[0] + j, and ohe.npz's
arr_0[n, :, j] the one-hot base there, for every sequence of the archive.
"""

import os

import numpy as np

from ..errors import InputError
from .npz_writer import NpzWriter
from .user_files import existing_file

#: The archive's forms and what makes them hypothetical scores.
CENTRED_FROM = {"delta": "centre", "tism": "centre", "gradient": "centre", "centred": "as is"}
#: Keys of the archive that are not scores.
NOT_SCORES = ("positions", "ids", "onehot", "attribution")


def open_archive(path):
    """The result archive at ``path``, checked to be one onnxism wrote (with its one-hot sequences)."""
    path = existing_file(path, "scores file", "an .npz archive of onnxism run")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"{path} is not a readable .npz archive: {err}") from err
    missing = [key for key in ("positions", "onehot", "attribution") if key not in archive.files]
    if missing:
        raise InputError(f"{path} has no {missing[0]!r}: it is not an archive of this onnxism's run (rerun it)")
    return archive


def score_names(archive):
    return [key for key in archive.files if key not in NOT_SCORES and not key.startswith(("reference/", "region/"))]


def pick_output(archive, path, output=None):
    """The name of the scores to read: ``output`` (checked), or the archive's only one."""
    names = score_names(archive)
    if output is None:
        if len(names) != 1:
            raise InputError(f"{path} scores {len(names)} outputs ({', '.join(names)}): name one with --output")
        return names[0]
    if output not in names:
        raise InputError(f"{path} has no scores named {output!r}; it has: {', '.join(names)}")
    return output


def hypothetical_scores(archive, path, output=None, index=None, window=None):
    """(one-hot (N, W, 4), hypothetical scores (N, W, 4), the positions) of one output of the archive."""
    output = pick_output(archive, path, output)
    form = str(archive["attribution"])
    if form not in CENTRED_FROM:
        raise InputError(f"{path} holds {form} scores, from which hypothetical scores cannot be recovered; rerun "
                         "with --attribution delta (or centred)")
    positions = archive["positions"]
    first, stop = _window(window, positions, path)
    scores = archive[output][:, first:stop]
    scores = _element(scores, index, output)
    if CENTRED_FROM[form] == "centre":
        scores = scores - scores.mean(axis=2, keepdims=True)
    onehot = archive["onehot"][:, positions[first]:positions[first] + (stop - first)]
    return onehot, scores.astype(np.float32), positions[first:stop]


def _window(window, positions, path):
    """(first, stop) indices into the archive's positions of ``window`` ((start, end) sequence positions)."""
    if window is None:
        return 0, len(positions)
    start, end = window
    if not (positions[0] <= start < end <= positions[-1] + 1):
        raise InputError(f"window [{start}, {end}) is not inside the positions {path} scored, "
                         f"[{positions[0]}, {positions[-1] + 1})")
    return int(start - positions[0]), int(end - positions[0])


def _element(scores, index, output):
    """The (N, W, 4) scores of one element of the output's trailing shape (``index``: a tuple, or None where the
    output has one element)."""
    trailing = scores.shape[3:]
    if index is None:
        if int(np.prod(trailing)) != 1:
            raise InputError(f"output {output!r} has shape {trailing} per position and base: pick one element with "
                             "--index (e.g. --index 0)")
        return scores.reshape(scores.shape[:3])
    if len(index) != len(trailing) or not all(-n <= i < n for i, n in zip(index, trailing)):
        raise InputError(f"--index {','.join(map(str, index))} does not fit output {output!r} of shape {trailing}")
    return scores[(slice(None),) * 3 + tuple(index)]


def write_modisco(scores_path, folder, *, output=None, index=None, window=None, force=False):
    """Write ``folder``/ohe.npz and ``folder``/shap.npz, modisco-lite's inputs, from the archive ``scores_path``;
    returns their paths."""
    archive = open_archive(scores_path)
    with archive:
        onehot, scores, _ = hypothetical_scores(archive, scores_path, output, index, window)
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder)
        except OSError as err:
            raise InputError(f"cannot make folder {folder}: {err.strerror or err}") from err
    written = []
    for name, array in (("ohe.npz", onehot.astype(np.float32)), ("shap.npz", scores)):
        path = os.path.join(folder, name)
        with NpzWriter(path, force=force) as target:
            target.put("arr_0", np.ascontiguousarray(array.transpose(0, 2, 1)))
        written.append(path)
    return written
