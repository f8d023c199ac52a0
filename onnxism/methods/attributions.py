"""Attribution forms: what a result array holds, with the same names and meaning for ISM and TISM.

For a sequence position i and base b, let s[i, b] be the method's delta: ISM's f(mutant) - f(reference) (exact), or
TISM's g[b] - g[ref] (its first-order estimate, g the gradient). Then, with x the one-hot sequence:

  delta       s[i, b]                          0 at the reference base (TISM's "tism" is its name for it)
  centred     s[i, b] - mean_b' s[i, b']        the hypothetical scores against a uniform baseline (for TISM,
                                               g - mean g, Majdandzic et al. 2023); what TF-MoDISco takes
  projected   centred[i, b] * x[i, b]           the centred score at the observed base, 0 elsewhere (and at N)

TISM also gives ``gradient`` (g) and ``gradient_x_input`` (g * x).

Invariant: every form is computed from the delta of its own chunk, so it streams as the delta does.
"""

import numpy as np

from ..errors import InputError

FORMS = ("delta", "centred", "projected")
#: TISM's forms besides FORMS ("tism" is "delta"'s name there).
GRADIENT_FORMS = ("tism", "gradient", "gradient_x_input")


def check_form(kind, allowed, method):
    if kind not in allowed:
        hint = " (it is a form of --method tism)" if kind in GRADIENT_FORMS and method == "ISM" else ""
        raise InputError(f"unknown attribution {kind!r} for {method}{hint}; available: {', '.join(allowed)}")
    return kind


def from_delta(delta, onehot, kind):
    """``delta`` (n, W, 4, *shape) and the window's one-hot (n, W, 4) -> the form ``kind`` of FORMS."""
    if kind == "delta":
        return delta
    centred = delta - delta.mean(axis=2, keepdims=True)
    if kind == "centred":
        return centred
    return centred * onehot.reshape(onehot.shape + (1,) * (delta.ndim - 3)).astype(delta.dtype)


class AttributedScorer:
    """A scorer whose deltas are given in the form ``kind`` (``from_delta``), the window ``window`` of each chunk's
    sequences read from its one-hot."""

    def __init__(self, scorer, kind, window):
        self.scorer, self.kind, self.window = scorer, kind, window
        self.batch_size = scorer.batch_size

    def rows_per_sequence(self):
        return self.scorer.rows_per_sequence()

    def score(self, onehot, advance=None, extras=None):
        reference, scores = self.scorer.score(onehot, advance, extras)
        window = np.asarray(onehot[:, self.window[0]:self.window[1]], np.float32)
        return reference, {name: from_delta(value, window, self.kind) for name, value in scores.items()}
