"""Comparing two sets of posterior samples (an amortized posterior against an MCMC reference).

* :func:`marginal_ks`: two-sample Kolmogorov–Smirnov test per parameter.
* :func:`c2st`: classifier two-sample test (Lopez-Paz & Oquab 2017): the cross-validated
  accuracy of a classifier told to separate the two sets; 0.5 means indistinguishable, 1.0
  fully separable.
* :func:`plot_posterior_vs_mcmc`: a corner figure overlaying the two (SEDFLOW Fig. 2).

Samples are arrays (N, D) over the same ``names``. MCMC samples are autocorrelated, so KS
p-values are optimistic about the difference (treat them as a ranking, not a calibrated test).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedinfer.atomic import save_figure
from sedinfer.errors import ParameterError

CONTOUR_MASS = (0.68, 0.95)  # probability mass inside the 2-D contours of the corner plot


def _as_samples(x, name: str, ndim: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ParameterError(f"{name} must have shape (N >= 2, D), got {a.shape}")
    if ndim is not None and a.shape[1] != ndim:
        raise ParameterError(f"{name} has {a.shape[1]} columns, expected {ndim}")
    if not np.isfinite(a).all():
        row = int(np.nonzero(~np.isfinite(a))[0][0])
        raise ParameterError(f"{name} contains non-finite values (row {row}); expected finite samples")
    return a


def marginal_ks(samples_a, samples_b, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per-parameter two-sample KS test: name -> (statistic D, p-value) for samples (N, D), (M, D)."""
    from scipy.stats import ks_2samp

    names = list(names)
    a = _as_samples(samples_a, "samples_a", len(names))
    b = _as_samples(samples_b, "samples_b", len(names))
    out = {}
    for j, n in enumerate(names):
        res = ks_2samp(a[:, j], b[:, j])
        out[n] = (float(res.statistic), float(res.pvalue))
    return out


def c2st(samples_a, samples_b, seed: int = 0, n_folds: int = 5, max_samples: int | None = 5000) -> float:
    """Classifier two-sample test accuracy of samples (N, D) against (M, D).

    Both sets are subsampled (without replacement) to the same size, at most ``max_samples``
    each, standardised (statistics fitted inside each training fold) and classified by a
    two-hidden-layer MLP (10·D units per layer, early stopping); returns the mean accuracy over
    ``n_folds`` stratified folds. 0.5: indistinguishable; 1.0: disjoint. The samples should be
    (nearly) independent: thin MCMC chains by their autocorrelation time first, or near-duplicate
    neighbours in the training and test folds inflate the accuracy.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a = _as_samples(samples_a, "samples_a")
    b = _as_samples(samples_b, "samples_b", a.shape[1])
    if n_folds < 2:
        raise ParameterError(f"n_folds must be >= 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b), max_samples or max(len(a), len(b)))
    if n < n_folds:
        raise ParameterError(f"need at least n_folds={n_folds} samples in each set, got {n}")
    x = np.concatenate([a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]])
    y = np.repeat([0, 1], n)
    width = 10 * x.shape[1]
    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(width, width), max_iter=1000,
                                                        early_stopping=True, random_state=seed))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, y, cv=folds, scoring="accuracy")))


def _levels(h: np.ndarray, masses: Sequence[float]) -> list[float]:
    """Density thresholds enclosing ``masses`` of a 2-D histogram (highest-density regions), ascending."""
    flat = np.sort(h.ravel())[::-1]
    cum = np.cumsum(flat) / flat.sum()
    floor = 1e-3 * flat[0]        # a level at zero density would enclose the whole panel
    levels = sorted({max(float(flat[min(np.searchsorted(cum, m), len(flat) - 1)]), floor) for m in masses})
    return levels if len(levels) > 1 else [levels[0] * 0.999, levels[0]]


def _contour(ax, x, y, rng2, color: str, bins: int = 40) -> None:
    from scipy.ndimage import gaussian_filter

    h, xe, ye = np.histogram2d(x, y, bins=bins, range=rng2)
    h = gaussian_filter(h, 1.0)
    if h.max() <= 0:
        return
    xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
    ax.contourf(xc, yc, h.T, levels=[*_levels(h, CONTOUR_MASS), h.max() * 1.01], colors=[color], alpha=0.15)
    ax.contour(xc, yc, h.T, levels=_levels(h, CONTOUR_MASS), colors=[color], linewidths=1.0)


def lower_triangle(axes):
    """Yield (i, j, ax) for the diagonal and lower panels of a corner grid; hide the upper ones."""
    d = axes.shape[0]
    for i in range(d):
        for j in range(d):
            if j > i:
                axes[i, j].set_visible(False)
            else:
                yield i, j, axes[i, j]


def plot_posterior_vs_mcmc(flow_samples, mcmc_samples, names: Sequence[str], truth, path: str | Path,
                           labels: tuple[str, str] = ("flow", "MCMC"), bins: int = 40,
                           colors: tuple[str, str] = ("C0", "k")) -> Path:
    """Corner figure of two sample sets (N, D), (M, D) over ``names``: 1-D histograms on the
    diagonal, 68%/95% highest-density contours below, ``truth`` (D,) lines if not None.

    Axis ranges cover the central 99.5% of both sets (and the truth). Written atomically to
    ``path`` (format from its suffix); returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = list(names)
    d = len(names)
    sets = [_as_samples(flow_samples, "flow_samples", d), _as_samples(mcmc_samples, "mcmc_samples", d)]
    t = None if truth is None else np.asarray(truth, dtype=np.float64).reshape(-1)
    if t is not None and t.shape != (d,):
        raise ParameterError(f"truth must have {d} values ({', '.join(names)}), got shape {t.shape}")
    both = np.concatenate(sets)
    lo, hi = np.percentile(both, 0.25, axis=0), np.percentile(both, 99.75, axis=0)
    if t is not None:
        lo, hi = np.minimum(lo, t), np.maximum(hi, t)
    pad = np.where(hi > lo, 0.05 * (hi - lo), 0.5 * np.maximum(np.abs(lo), 1e-3))
    lo, hi = lo - pad, hi + pad

    size = max(1.6 * d, 4.0)
    fig, axes = plt.subplots(d, d, figsize=(size, size), squeeze=False)
    for i, j, ax in lower_triangle(axes):
        if i == j:
            for s, c in zip(sets, colors, strict=True):
                ax.hist(s[:, i], bins=bins, range=(lo[i], hi[i]), density=True, histtype="step", color=c)
            ax.set_yticks([])
            if t is not None:
                ax.axvline(t[i], color="C3", lw=1)
        else:
            for s, c in zip(sets, colors, strict=True):
                _contour(ax, s[:, j], s[:, i], [[lo[j], hi[j]], [lo[i], hi[i]]], c, bins)
            if t is not None:
                ax.axvline(t[j], color="C3", lw=0.8)
                ax.axhline(t[i], color="C3", lw=0.8)
                ax.plot(t[j], t[i], "s", color="C3", ms=3)
            ax.set_ylim(lo[i], hi[i])
            if j == 0:
                ax.set_ylabel(names[i], fontsize=8)
        ax.set_xlim(lo[j], hi[j])
        ax.tick_params(labelsize=6)
        if i == d - 1:
            ax.set_xlabel(names[j], fontsize=8)
        else:
            ax.set_xticklabels([])
        if j > 0:
            ax.set_yticklabels([])
    handles = [Line2D([], [], color=c, label=lab) for c, lab in zip(colors, labels, strict=True)]
    if t is not None:
        handles.append(Line2D([], [], color="C3", label="truth"))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.98, wspace=0.05, hspace=0.05)
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.95, 0.95), fontsize=12, frameon=False)

    return save_figure(fig, path, dpi=120)


__all__ = ["marginal_ks", "c2st", "plot_posterior_vs_mcmc", "CONTOUR_MASS"]
