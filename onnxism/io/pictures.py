"""Pictures of a result archive's scores for one sequence (the ``[plot]`` extra: logomaker and matplotlib).

  logo      the centred scores at the observed bases (the projected form, ``methods/attributions.py``): one letter
            per position, as tall as its score, above the axis where the base helps the output and below where it
            hurts it (logomaker)
  heatmap   the 4 x W scores as they are in the archive (for ISM: f(mutant) - f(reference), 0 at the reference base),
            on a colour scale centred at 0, the observed base of each position marked (matplotlib)

Invariant: a picture is written whole (to a scratch file, then renamed), or not at all.
"""

import os

import numpy as np

from ..errors import InputError, MissingExtraError
from .modisco import _element, _window, open_archive, pick_output
from .npz_writer import check_output_path
from .scratch import published

KINDS = ("logo", "heatmap")
FORMATS = (".png", ".svg", ".pdf")


def _pyplot():
    try:
        import logomaker  # noqa: F401 - checked here, used by ``logo``
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MissingExtraError("pictures need the [plot] extra: pip install -e '.[plot]'") from err
    return plt


def picture_data(scores_path, sequence, output=None, index=None, window=None):
    """(the archive's form, its positions, the scores (W, 4) of one sequence, its one-hot (W, 4), the output's
    name) for a picture."""
    with open_archive(scores_path) as archive:
        output = pick_output(archive, scores_path, output)
        count = len(archive["onehot"])
        if not -count <= sequence < count:
            raise InputError(f"--seq {sequence} is not a sequence of {scores_path}, which holds {count}")
        positions = archive["positions"]
        first, stop = _window(window, positions, scores_path)
        scores = _element(archive[output][sequence:sequence + 1 or None, first:stop], index, output)[0]
        onehot = archive["onehot"][sequence, positions[first]:positions[first] + (stop - first)].astype(np.float32)
        return str(archive["attribution"]), positions[first:stop], scores, onehot, output


def draw(scores_path, path, *, sequence=0, kind="logo", output=None, index=None, window=None, force=False):
    """Draw one sequence's scores from the archive ``scores_path`` as a logo or heatmap at ``path`` (.png, .svg or
    .pdf); returns the matplotlib figure's artist that holds the scores (the logomaker Logo, or the image)."""
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not str(path).lower().endswith(FORMATS):
        raise InputError(f"picture file {path} must end in {', '.join(FORMATS)}")
    path = check_output_path(path, force=force, suffix=os.path.splitext(str(path))[1])
    form, positions, scores, onehot, output = picture_data(scores_path, sequence, output, index, window)
    plt = _pyplot()
    width = max(6.0, min(24.0, 0.12 * len(positions) + 2))
    figure, axes = plt.subplots(figsize=(width, 2.4 if kind == "logo" else 2.8))
    try:
        if kind == "logo":
            drawn = _logo(axes, form, positions, scores, onehot)
        else:
            drawn = _heatmap(figure, axes, form, positions, scores, onehot)
        axes.set_title(f"{output}: sequence {sequence}, positions {positions[0]}-{positions[-1]} ({form} scores)")
        figure.tight_layout()
        with published(path) as scratch:  # (its name keeps the suffix, which picks the format)
            figure.savefig(scratch, dpi=150)
    finally:
        plt.close(figure)
    return drawn


def logo_heights(form, scores, onehot):
    """(W, 4) letter heights of the logo: the centred scores at the observed bases (0 elsewhere)."""
    if form in ("delta", "tism", "gradient"):
        scores = scores - scores.mean(axis=1, keepdims=True)
    elif form not in ("centred", "projected"):
        raise InputError(f"a logo draws centred scores, which {form} scores do not give: rerun with --attribution "
                         "delta, or draw a heatmap")
    return scores * onehot


def _logo(axes, form, positions, scores, onehot):
    import logomaker
    import pandas as pd

    heights = pd.DataFrame(logo_heights(form, scores, onehot), columns=list("ACGT"), index=positions)
    logo = logomaker.Logo(heights, ax=axes, color_scheme="classic")
    logo.style_spines(visible=False)
    logo.style_spines(spines=["left", "bottom"], visible=True)
    axes.axhline(0, color="0.3", linewidth=0.6)
    axes.set_xlabel("position in the sequence")
    axes.set_ylabel("centred score")
    return logo


def _heatmap(figure, axes, form, positions, scores, onehot):
    limit = float(np.abs(scores).max()) or 1.0
    image = axes.imshow(scores.T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest",
                        extent=(positions[0] - 0.5, positions[-1] + 0.5, 3.5, -0.5))
    observed = np.flatnonzero(onehot.sum(1))
    axes.scatter(positions[observed], onehot[observed].argmax(1), marker=".", s=6, color="black",
                 label="observed base")
    axes.set_yticks(range(4), list("ACGT"))
    axes.set_xlabel("position in the sequence")
    axes.set_ylabel("base")
    label = "f(mutant) - f(reference)" if form == "delta" else f"{form} score"
    figure.colorbar(image, ax=axes, label=label, fraction=0.04, pad=0.01)
    return image
