"""Point-estimate and interval metrics of posteriors against known truths (mocks), photo-z included.

Photometric-redshift metrics (the standard ones, e.g. Hildebrandt et al. 2010, Dahlen et al. 2013),
on Δ = (z_est − z_true) / (1 + z_true) with z_est a point estimate (the posterior median here):

* bias: median Δ;
* NMAD: 1.4826 · median |Δ − median Δ| (the normalised median absolute deviation; ≈ σ for a
  Gaussian);
* outlier fraction: share of galaxies with |Δ| > 0.15 (:data:`OUTLIER_CUT`).

:func:`photoz_metrics` computes them for one sample, :func:`photoz_metrics_by_bin` per bin of a
magnitude (default r-band edges :data:`R_MAG_EDGES`) with the counts.

For any quantity with a posterior summary (16/50/84 % quantiles) and a truth,
:func:`recovery_stats` gives the bias (median of p50 − truth), the scatter (NMAD and standard
deviation of p50 − truth) and the 68 % coverage (share of truths inside [p16, p84]) with its
binomial standard error; :func:`interval_agreement` compares two posteriors of the same galaxies
(e.g. a flow against MCMC) by their medians and 68 % intervals.

Plain numpy, no sedinfer imports: a leaf module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NMAD_FACTOR = 1.4826
"""1 / Φ⁻¹(3/4): makes the median absolute deviation of a Gaussian equal to its σ."""
OUTLIER_CUT = 0.15
"""|Δz| / (1 + z) above which a photometric redshift counts as an outlier."""
R_MAG_EDGES = (-math.inf, 17.0, 18.0, 19.0, 19.8, math.inf)
"""Default r-band magnitude bins of :func:`photoz_metrics_by_bin` (the last bin holds what lies
beyond a 19.8 selection, e.g. noise-scattered galaxies, and is reported only when it is not empty)."""


def _finite_pairs(*arrays) -> tuple[np.ndarray, ...]:
    arrs = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    n = arrs[0].size
    if any(a.size != n for a in arrs):
        raise ValueError(f"arrays of different lengths: {[a.size for a in arrs]}")
    keep = np.all([np.isfinite(a) for a in arrs], axis=0) if arrs else np.zeros(0, bool)
    return tuple(a[keep] for a in arrs)


def nmad(x) -> float:
    """1.4826 · median |x − median x| of the finite values of ``x`` (NaN if there are none)."""
    (x,) = _finite_pairs(x)
    if x.size == 0:
        return float("nan")
    return float(NMAD_FACTOR * np.median(np.abs(x - np.median(x))))


def photoz_delta(z_true, z_est) -> np.ndarray:
    """Δ = (z_est − z_true) / (1 + z_true), elementwise."""
    z_true, z_est = np.asarray(z_true, dtype=np.float64), np.asarray(z_est, dtype=np.float64)
    return (z_est - z_true) / (1.0 + z_true)


def photoz_metrics(z_true, z_est, outlier_cut: float = OUTLIER_CUT) -> dict:
    """``{"n", "bias", "nmad", "outlier_fraction", "outlier_fraction_err", "n_outliers"}`` of
    Δ = (z_est − z_true)/(1 + z_true) over the pairs where both are finite (metrics None if none).

    ``outlier_fraction_err`` is the binomial standard error sqrt(f (1 − f) / n)."""
    z_true, z_est = _finite_pairs(z_true, z_est)
    n = int(z_true.size)
    if n == 0:
        return {"n": 0, "bias": None, "nmad": None, "outlier_fraction": None, "outlier_fraction_err": None,
                "n_outliers": 0}
    d = photoz_delta(z_true, z_est)
    out = np.abs(d) > outlier_cut
    f = float(out.mean())
    return {"n": n, "bias": float(np.median(d)), "nmad": nmad(d), "outlier_fraction": f,
            "outlier_fraction_err": math.sqrt(f * (1 - f) / n), "n_outliers": int(out.sum())}


def bin_label(lo: float, hi: float) -> str:
    """'<17', '17-18', '>=19.8' style labels of a magnitude bin [lo, hi)."""
    if not math.isfinite(lo):
        return f"<{hi:g}"
    if not math.isfinite(hi):
        return f">={lo:g}"
    return f"{lo:g}-{hi:g}"


def photoz_metrics_by_bin(z_true, z_est, mag, edges: Sequence[float] = R_MAG_EDGES,
                          outlier_cut: float = OUTLIER_CUT, keep_empty_last: bool = False) -> dict:
    """:func:`photoz_metrics` per bin [edges[i], edges[i+1]) of ``mag`` and overall.

    Returns ``{"edges": [...], "bins": [{"label", "lo", "hi", **metrics}], "overall": metrics}``;
    rows with a non-finite ``mag`` count only in ``overall``. A last bin that is open-ended and
    empty is dropped unless ``keep_empty_last``."""
    z_true = np.asarray(z_true, dtype=np.float64).reshape(-1)
    z_est = np.asarray(z_est, dtype=np.float64).reshape(-1)
    mag = np.asarray(mag, dtype=np.float64).reshape(-1)
    if not (z_true.size == z_est.size == mag.size):
        raise ValueError(f"z_true, z_est and mag differ in length: {z_true.size}, {z_est.size}, {mag.size}")
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError(f"edges must be increasing with at least two entries, got {edges}")
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (mag >= lo) & (mag < hi)
        m = photoz_metrics(z_true[sel], z_est[sel], outlier_cut)
        bins.append({"label": bin_label(lo, hi), "lo": lo if math.isfinite(lo) else None,
                     "hi": hi if math.isfinite(hi) else None, **m})
    if bins and not keep_empty_last and bins[-1]["n"] == 0 and not math.isfinite(edges[-1]):
        bins.pop()
    return {"edges": [e if math.isfinite(e) else None for e in edges], "bins": bins,
            "overall": photoz_metrics(z_true, z_est, outlier_cut)}


def recovery_stats(truth, p16, p50, p84) -> dict:
    """Bias, scatter and 68 % coverage of posterior summaries against the truth.

    ``{"n", "bias" (median of p50 − truth), "nmad", "std" (of p50 − truth), "coverage_68" (share of
    rows with p16 ≤ truth ≤ p84), "coverage_68_err" (binomial standard error), "median_width_68"
    (median of p84 − p16)}`` over the rows where all four are finite (None if there are none)."""
    t, lo, med, hi = _finite_pairs(truth, p16, p50, p84)
    n = int(t.size)
    if n == 0:
        return {"n": 0, "bias": None, "nmad": None, "std": None, "coverage_68": None,
                "coverage_68_err": None, "median_width_68": None}
    d = med - t
    cov = float(np.mean((lo <= t) & (t <= hi)))
    return {"n": n, "bias": float(np.median(d)), "nmad": nmad(d),
            "std": float(np.std(d, ddof=1)) if n > 1 else 0.0, "coverage_68": cov,
            "coverage_68_err": math.sqrt(cov * (1 - cov) / n), "median_width_68": float(np.median(hi - lo))}


def interval_agreement(a16, a50, a84, b16, b50, b84) -> dict:
    """How posterior A (e.g. the flow) agrees with a reference posterior B (e.g. MCMC), per galaxy.

    σ_B = (b84 − b16)/2. Returns ``{"n", "median_abs_dmed_over_sigma" (median |a50 − b50| / σ_B),
    "max_abs_dmed_over_sigma", "frac_dmed_within_0.5_sigma", "frac_b_median_in_a_68" (share with
    a16 ≤ b50 ≤ a84), "median_width_ratio" (median of (a84 − a16)/(b84 − b16)), "per_galaxy":
    {"dmed_over_sigma": [...], "width_ratio": [...]}}`` over the finite rows."""
    a16, a50, a84, b16, b50, b84 = _finite_pairs(a16, a50, a84, b16, b50, b84)
    n = int(a50.size)
    if n == 0:
        return {"n": 0}
    sigma = np.maximum(0.5 * (b84 - b16), 1e-12)
    z = (a50 - b50) / sigma
    ratio = (a84 - a16) / np.maximum(b84 - b16, 1e-12)
    return {"n": n, "median_abs_dmed_over_sigma": float(np.median(np.abs(z))),
            "max_abs_dmed_over_sigma": float(np.max(np.abs(z))),
            "frac_dmed_within_0.5_sigma": float(np.mean(np.abs(z) <= 0.5)),
            "frac_b_median_in_a_68": float(np.mean((a16 <= b50) & (b50 <= a84))),
            "median_width_ratio": float(np.median(ratio)),
            "per_galaxy": {"dmed_over_sigma": [float(v) for v in z],
                           "width_ratio": [float(v) for v in ratio]}}


__all__ = ["NMAD_FACTOR", "OUTLIER_CUT", "R_MAG_EDGES", "nmad", "photoz_delta", "photoz_metrics",
           "photoz_metrics_by_bin", "recovery_stats", "interval_agreement", "bin_label"]
