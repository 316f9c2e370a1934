"""Figures of the calibration checks in :mod:`sedinfer.posterior.validation`: p-p, SBC, TARP."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from sedinfer.atomic import save_figure
from sedinfer.posterior.validation import TARP_TOLERANCE, _rank_histogram


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pp(levels, coverage, names: Sequence[str], path: str | os.PathLike,
            n_simulations: int | None = None) -> Path:
    """p-p plot: empirical coverage (D, L) against credibility level; 99% binomial band if M given."""
    plt = _pyplot()
    lv, cov = np.asarray(levels), np.atleast_2d(coverage)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    if n_simulations:
        lo, hi = (stats.binom.ppf(q, n_simulations, lv) / n_simulations for q in (0.005, 0.995))
        ax.fill_between(lv, lo, hi, color="0.85", label="pointwise 99% band (calibrated)")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    for j, name in enumerate(names):
        ax.plot(lv, cov[j], lw=1.2, label=name)
    ax.set(xlabel="credibility level", ylabel="fraction of truths inside", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_sbc_histograms(ranks, n_samples: int, names: Sequence[str], path: str | os.PathLike,
                        n_bins: int | None = None) -> Path:
    """Grid of rank histograms, one per parameter, with the 99% band of a uniform (binomial) count."""
    plt = _pyplot()
    counts, prob, edges = _rank_histogram(ranks, n_samples, n_bins)
    m = int(counts[0].sum())
    lo, hi = stats.binom.ppf(0.005, m, prob), stats.binom.ppf(0.995, m, prob)
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= len(names):
            ax.axis("off")
            continue
        ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="0.85")
        ax.stairs(m * prob, edges, color="k", ls="--", lw=0.8)
        ax.stairs(counts[j], edges, color="C0", lw=1.2)
        ax.set_title(names[j], fontsize=9)
        ax.set_xlim(0, n_samples + 1)
        ax.set_yticks([])
        ax.set_xlabel("rank", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_tarp(levels, ecp, path: str | os.PathLike, ecp_std=None, tolerance: float = TARP_TOLERANCE) -> Path:
    """TARP expected coverage against credibility level, with ±1σ/±2σ bootstrap bands if given."""
    plt = _pyplot()
    lv, e = np.asarray(levels), np.asarray(ecp)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    if ecp_std is not None:
        sd = np.asarray(ecp_std)
        for k, shade in ((2, 0.88), (1, 0.75)):
            ax.fill_between(lv, e - k * sd, e + k * sd, color=str(shade), label=f"±{k}σ bootstrap")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    for sign in (-1, 1):
        ax.plot([0, 1], [sign * tolerance, 1 + sign * tolerance], ":", color="C3", lw=0.8,
                label=f"±{tolerance} target" if sign > 0 else None)
    ax.plot(lv, e, color="C0", lw=1.4, label="TARP")
    ax.set(xlabel="credibility level", ylabel="expected coverage", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["plot_pp", "plot_sbc_histograms", "plot_tarp"]
