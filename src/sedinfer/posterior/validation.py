"""Calibration checks of posterior samples against known truths: p-p coverage, SBC and TARP.

Given posterior draws ``samples`` of shape (M, S, D) for M held-out simulations whose true
parameters ``truth`` (M, D) are known, a calibrated posterior makes

- the rank of each true value among its S draws uniform on {0, ..., S} (SBC; Talts et al. 2018,
  arXiv:1804.06788), tested per parameter with a chi-square test and Holm's correction;
- the fraction of truths inside the central credible interval of level c equal to c (marginal
  p-p plot, as in SEDflow, Hahn & Melchior 2022);
- the expected coverage probability of random-reference balls equal to the credibility level
  (TARP; Lemos et al. 2023, arXiv:2302.03026), a joint test in all D dimensions.

Pure numpy (torch tensors are accepted and converted); independent of how samples were drawn.
Randomness (tie-breaking, TARP references, bootstrap) is seeded. The figures are in
:mod:`sedinfer.posterior.validation_plots`, the report that runs all checks and writes the figures
and JSON in :mod:`sedinfer.posterior.calibration` (both import this module, never the reverse).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from sedinfer.errors import ParameterError

SBC_ALPHA = 0.01  # family-wise error rate of the SBC uniformity tests
TARP_TOLERANCE = 0.03  # target: |ECP - credibility| at every level
MIN_EXPECTED_PER_BIN = 20  # SBC default binning: expected count per bin at least this
MAX_SBC_BINS = 50

SeedLike = int | np.random.Generator | None


def _array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ParameterError(f"{name} contains non-finite values (first at index {idx}); expected finite")
    return a


def check_samples(samples, truth) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` (M, S, D) and ``truth`` (M, D) as float64 arrays with matching M and D."""
    s, t = _array(samples, "samples"), _array(truth, "truth")
    if s.ndim != 3 or s.shape[1] < 1:
        raise ParameterError(f"samples must have shape (M simulations, S draws, D parameters), got {s.shape}")
    if t.shape != (s.shape[0], s.shape[2]):
        raise ParameterError(f"truth must have shape (M, D) = {(s.shape[0], s.shape[2])} to match samples "
                             f"{s.shape}, got {t.shape}")
    return s, t


def _levels(levels) -> np.ndarray:
    lv = np.linspace(0.0, 1.0, 101) if levels is None else _array(levels, "levels").ravel()
    if lv.size == 0 or lv.min() < 0 or lv.max() > 1:
        raise ParameterError(f"levels must be credibility levels in [0, 1], got range "
                             f"[{lv.min() if lv.size else None}, {lv.max() if lv.size else None}]")
    return lv


# ---------------------------------------------------------------- SBC


def sbc_ranks(samples, truth, seed: SeedLike = 0) -> np.ndarray:
    """Rank of each true value among its draws: number of draws below it, ties split at random.

    ``samples`` (M, S, D), ``truth`` (M, D) -> int array (M, D) with values in [0, S].
    """
    s, t = check_samples(samples, truth)
    rng = np.random.default_rng(seed)
    below = (s < t[:, None, :]).sum(axis=1)
    ties = (s == t[:, None, :]).sum(axis=1)
    return (below + rng.integers(0, ties + 1)).astype(np.int64)


def sbc_bin_edges(n_samples: int, n_simulations: int, n_bins: int | None = None) -> np.ndarray:
    """Integer edges (n_bins + 1,) grouping the S + 1 possible ranks into contiguous bins.

    Default ``n_bins``: at most min(S + 1, 50, M // 20) so that the expected count is >= 20; a divisor
    of S + 1 in [n_max / 2, n_max] is preferred (equal bins), else bin widths differ by one rank and
    the expected counts of the chi-square test account for the exact widths.
    """
    n_ranks = int(n_samples) + 1
    if n_bins is None:
        n_max = max(2, min(n_ranks, MAX_SBC_BINS, int(n_simulations) // MIN_EXPECTED_PER_BIN))
        divisors = [d for d in range(max(2, (n_max + 1) // 2), n_max + 1) if n_ranks % d == 0]
        n_bins = divisors[-1] if divisors else n_max
    if not 2 <= n_bins <= n_ranks:
        raise ParameterError(f"n_bins must be in [2, S + 1 = {n_ranks}], got {n_bins}")
    return np.round(np.linspace(0, n_ranks, int(n_bins) + 1)).astype(np.int64)


def _rank_histogram(ranks: np.ndarray, n_samples: int, n_bins: int | None):
    """Counts (D, B), expected probability per bin (B,), edges (B + 1,)."""
    r = np.asarray(ranks)
    if r.ndim != 2 or r.min() < 0 or r.max() > n_samples:
        raise ParameterError(f"ranks must be an (M, D) array with values in [0, n_samples = {n_samples}], "
                             f"got shape {r.shape} and range [{r.min()}, {r.max()}]")
    edges = sbc_bin_edges(n_samples, r.shape[0], n_bins)
    idx = np.searchsorted(edges, r, side="right") - 1
    counts = np.stack([np.bincount(idx[:, j], minlength=edges.size - 1) for j in range(r.shape[1])])
    return counts, np.diff(edges) / (n_samples + 1), edges


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control, more powerful than Bonferroni)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    scaled = np.minimum(1.0, (p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.maximum.accumulate(scaled)
    return out


def sbc_uniformity(ranks, n_samples: int, n_bins: int | None = None, alpha: float = SBC_ALPHA) -> dict:
    """Chi-square test per parameter that the rank histogram is uniform, Holm-corrected at ``alpha``.

    Returns {"p_values", "p_corrected", "rejected", "chi2", "n_bins", "alpha", "correction"} with one
    list entry per parameter (binning: :func:`sbc_bin_edges`).
    """
    counts, prob, _ = _rank_histogram(ranks, n_samples, n_bins)
    expected = counts.sum(axis=1, keepdims=True) * prob[None, :]
    chi2 = ((counts - expected) ** 2 / expected).sum(axis=1)
    p = stats.chi2.sf(chi2, df=prob.size - 1)
    p_corr = holm(p)
    return {"p_values": p.tolist(), "p_corrected": p_corr.tolist(),
            "rejected": [bool(v) for v in p_corr < alpha], "chi2": chi2.tolist(),
            "n_bins": int(prob.size), "alpha": float(alpha), "correction": "holm"}


# ---------------------------------------------------------------- p-p


def pp_coverage(samples, truth, levels=None, seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of truths inside the central credible interval of each level, per parameter.

    The percentile of a truth is its randomised rank (r + U) / (S + 1), exactly U(0, 1) for a
    calibrated posterior whatever S; it lies in the central interval of level c iff
    |percentile - 1/2| <= c / 2. Returns levels (L,) and coverage (D, L).
    """
    lv = _levels(levels)
    rng = np.random.default_rng(seed)
    s, t = check_samples(samples, truth)
    ranks = sbc_ranks(s, t, seed=rng)
    q = (ranks + rng.random(ranks.shape)) / (s.shape[1] + 1)
    inside = np.abs(q - 0.5)[:, :, None] <= lv[None, None, :] / 2
    return lv, inside.mean(axis=0)


def max_pp_deviation(levels, coverage) -> np.ndarray:
    """max over levels of |coverage - level|, per parameter: (D,)."""
    return np.abs(np.asarray(coverage) - np.asarray(levels)[None, :]).max(axis=1)


# ---------------------------------------------------------------- TARP


def tarp_fractions(samples, truth, bounds, n_refs: int = 1, seed: SeedLike = 0) -> np.ndarray:
    """TARP statistic f (M, n_refs): share of draws closer than the truth to a random reference.

    Samples and truth are mapped to [0, 1]^D with ``bounds`` = (low (D,), high (D,)); references are
    uniform in that box, ``n_refs`` per simulation. f is the randomised count (k + U) / (S + 1) of the
    k draws strictly closer, exactly U(0, 1) for a calibrated posterior (it differs from k / S by
    less than 1 / (S + 1)).
    """
    s, t = check_samples(samples, truth)
    m, n, d = s.shape
    low, high = (_array(b, name).reshape(-1) for b, name in zip(bounds, ("bounds low", "bounds high"),
                                                                 strict=True))
    if low.shape != (d,) or high.shape != (d,) or not (high > low).all():
        raise ParameterError(f"bounds must be (low, high) with D = {d} values each and high > low, got "
                             f"shapes {low.shape}, {high.shape}")
    if n_refs < 1:
        raise ParameterError(f"n_refs must be >= 1, got {n_refs}")
    rng = np.random.default_rng(seed)
    scale = 1.0 / (high - low)
    refs = rng.random((m, n_refs, d))
    k = np.empty((m, n_refs), dtype=np.int64)
    chunk = max(1, int(2e7 // (n_refs * n * d)))
    for a in range(0, m, chunk):
        sl = slice(a, a + chunk)
        s_u, t_u, r = (s[sl] - low) * scale, (t[sl] - low) * scale, refs[sl]
        d_truth = ((t_u[:, None, :] - r) ** 2).sum(axis=-1)  # (c, R)
        d_samp = ((s_u[:, None, :, :] - r[:, :, None, :]) ** 2).sum(axis=-1)  # (c, R, S)
        k[sl] = (d_samp < d_truth[:, :, None]).sum(axis=-1)
    return (k + rng.random(k.shape)) / (n + 1)


def ecp_per_simulation(f: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(M, L): share of a simulation's references with f < level."""
    return (f[:, :, None] < levels[None, None, :]).mean(axis=1)


def tarp_coverage(samples, truth, bounds, n_refs: int = 1, seed: SeedLike = 0,
                  levels=None) -> tuple[np.ndarray, np.ndarray]:
    """TARP expected coverage probability ECP(level) = mean over simulations of 1[f < level]: (L,), (L,)."""
    lv = _levels(levels)
    f = tarp_fractions(samples, truth, bounds, n_refs=n_refs, seed=seed)
    return lv, ecp_per_simulation(f, lv).mean(axis=0)


def tarp_bootstrap(samples, truth, bounds, n_refs: int = 1, seed: SeedLike = 0, levels=None,
                   n_boot: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TARP ECP with bootstrap over simulations (references kept): levels, mean (L,), std (L,)."""
    lv = _levels(levels)
    rng = np.random.default_rng(seed)
    per_sim = ecp_per_simulation(tarp_fractions(samples, truth, bounds, n_refs=n_refs, seed=rng), lv)
    ecps = bootstrap_ecps(per_sim, n_boot, rng)
    return lv, ecps.mean(axis=0), ecps.std(axis=0, ddof=1)


def bootstrap_ecps(per_sim: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, L) ECP curves of simulations resampled with replacement."""
    if n_boot < 2:
        raise ParameterError(f"n_boot must be >= 2, got {n_boot}")
    m = per_sim.shape[0]
    weights = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot) / m  # (n_boot, M)
    return weights @ per_sim


def tarp_max_deviation(levels, ecp) -> float:
    """max over levels of |ECP - credibility level|."""
    return float(np.abs(np.asarray(ecp) - np.asarray(levels)).max())


__all__ = ["sbc_ranks", "sbc_bin_edges", "sbc_uniformity", "holm", "pp_coverage", "max_pp_deviation",
           "tarp_fractions", "tarp_coverage", "tarp_bootstrap", "tarp_max_deviation",
           "ecp_per_simulation", "bootstrap_ecps", "SBC_ALPHA", "TARP_TOLERANCE"]
