"""How well a population fit recovers a known population (PopSED §4.1 mock test).

Per parameter (and derived quantity): the 1-D Wasserstein distance W1 and the two-sample
Kolmogorov–Smirnov statistic between the true values and samples of the fitted population, for
the ensemble and for each flow (W1 also in units of the truth's standard deviation so that
parameters compare); and whether the ensemble's stated spread is right: at the quantile levels
5 %, 10 %, ..., 95 % of each marginal, is the true quantile inside the central 68 % band of the
members' quantiles? Over independent fits (mock realisations) the share of hits is compared with
the share a calibrated ensemble of the same size gets, simulated with the same function
(:func:`calibrated_band_rate`: exchangeable truth and members).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats

from sedinfer.errors import ParameterError


def _columns(x: Any, n_cols: int, what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != n_cols:
        raise ParameterError(f"{what} must have shape (N, {n_cols}), got {a.shape}")
    return a


def marginal_distances(truth: Any, samples: Any, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """{name: {"w1", "w1_over_sd", "ks"}} between the columns of ``truth`` and ``samples``."""
    t = _columns(truth, len(names), "truth")
    s = _columns(samples, len(names), "samples")
    out = {}
    for j, name in enumerate(names):
        a, b = t[:, j][np.isfinite(t[:, j])], s[:, j][np.isfinite(s[:, j])]
        w1 = float(stats.wasserstein_distance(a, b))
        sd = float(np.std(a))
        out[name] = {
            "w1": w1,
            "w1_over_sd": w1 / sd if sd > 0 else float("nan"),
            "ks": float(stats.ks_2samp(a, b).statistic),
        }
    return out


#: quantile levels at which a member's marginal is compared with the true one
QUANTILE_LEVELS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2).tolist())
#: the ensemble's stated band: the central 68 % of the members' values
BAND = (16.0, 84.0)


def marginal_quantiles(samples: Any, names: Sequence[str],
                       levels: Sequence[float] = QUANTILE_LEVELS) -> np.ndarray:
    """Quantiles (L, D) of each column of ``samples`` (N, D) at ``levels``."""
    x = _columns(samples, len(names), "samples")
    return np.stack([np.nanquantile(x[:, j], levels) for j in range(len(names))], axis=1)


def band_hits(true_quantiles: np.ndarray, member_quantiles: np.ndarray) -> np.ndarray:
    """Whether each true quantile (L, D) lies inside the central 68 % band (16th–84th percentile,
    linear interpolation) of the K members' quantiles (K, L, D): a boolean (L, D) array."""
    if member_quantiles.ndim != 3 or member_quantiles.shape[0] < 2:
        raise ParameterError("the quantile band needs at least two ensemble members, (K >= 2, L, D)")
    lo, hi = np.percentile(member_quantiles, BAND, axis=0)
    return (true_quantiles >= lo) & (true_quantiles <= hi)


def calibrated_band_rate(n_members: int, n_trials: int = 200_000, seed: int = 0) -> float:
    """The rate at which :func:`band_hits` holds for a calibrated ensemble of ``n_members``: the
    truth and the members exchangeable (i.i.d. draws), simulated with the same function. It tends
    to 0.68 for many members and is lower for few (the band of K draws is itself noisy)."""
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n_members + 1, n_trials, 1))
    return float(band_hits(draws[0], draws[1:]).mean())


def calibration_summary(hits: Sequence[np.ndarray], names: Sequence[str], n_members: int) -> dict[str, Any]:
    """Per name: the share of true quantiles inside the ensemble's 68 % band over R independent
    fits (``hits``: R boolean (L, D) arrays from :func:`band_hits`), its standard error over the
    fits (quantile levels of one fit are correlated, so the fits are the independent unit), and
    the calibrated reference :func:`calibrated_band_rate` for ``n_members``."""
    h = np.stack([np.asarray(x, dtype=np.float64) for x in hits])        # (R, L, D)
    if h.shape[0] < 2:
        raise ParameterError("calibration needs at least two independent fits")
    per_fit = h.mean(1)                                                 # (R, D)
    ref = calibrated_band_rate(n_members)
    out = {"n_fits": int(h.shape[0]), "n_members": n_members, "calibrated_rate": ref, "per_name": {}}
    for j, name in enumerate(names):
        rate = float(per_fit[:, j].mean())
        se = float(per_fit[:, j].std(ddof=1) / math.sqrt(h.shape[0]))
        out["per_name"][name] = {"rate": rate, "stderr": se, "per_fit": per_fit[:, j].tolist()}
    return out


def recovery_report(
    truth: Mapping[str, np.ndarray],
    ensemble: Mapping[str, np.ndarray],
    members: Sequence[Mapping[str, np.ndarray]],
) -> dict[str, Any]:
    """Distances for the ensemble and each member, per column name, and with two or more members
    whether each quantile of the truth lies in the members' 68 % band (``band_hits``, L × D).

    Each argument maps column names (parameters and derived quantities) to 1-D arrays.
    """
    names = list(truth)
    stack = lambda d: np.column_stack([np.asarray(d[k], dtype=np.float64) for k in names])  # noqa: E731
    t = stack(truth)
    report = {
        "names": names,
        "ensemble": marginal_distances(t, stack(ensemble), names),
        "members": [marginal_distances(t, stack(m), names) for m in members],
        "quantile_levels": list(QUANTILE_LEVELS),
        "band_hits": None,
    }
    if len(members) > 1:
        member_q = np.stack([marginal_quantiles(stack(m), names) for m in members])
        report["band_hits"] = band_hits(marginal_quantiles(t, names), member_q).astype(int).tolist()
    return report


def keep_with_probability(rows: np.ndarray, probability: Any, seed: int) -> np.ndarray:
    """The rows (M, ...) kept, each independently with its probability (M,) in [0, 1], seeded."""
    p = np.asarray(probability, dtype=np.float64)
    if p.shape != (len(rows),) or not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ParameterError(f"keep_probability must be ({len(rows)},) values in [0, 1], got shape {p.shape}")
    return rows[np.random.default_rng(seed).random(len(rows)) < p]


def photometry_c2st(
    catalog_mags: Any,
    synthetic_mags: Any,
    keep_probability: Any = None,
    seed: int = 0,
    max_samples: int = 5000,
) -> dict[str, float | int]:
    """Classifier two-sample test of a catalog's magnitudes (N, B) against synthetic ones (M, B).

    The check the Wasserstein losses cannot make themselves: a classifier
    (:func:`sedinfer.posterior.compare.c2st`) is trained to tell catalog rows from synthetic
    rows; cross-validated accuracy 0.5 means the fitted population's photometry is
    indistinguishable from the catalog's at this sample size, larger values measure a mismatch
    the loss did not remove. ``keep_probability`` (M,): the selection probability of each
    synthetic row (a fit with a selection function models the parent population); rows are
    kept with that probability, seeded. Rows with non-finite magnitudes are refused.
    Returns {"accuracy", "n_per_class"}.
    """
    from sedinfer.posterior.compare import c2st

    obs = _columns(catalog_mags, np.shape(catalog_mags)[-1], "catalog_mags")
    syn = _columns(synthetic_mags, obs.shape[1], "synthetic_mags")
    for what, a in (("catalog_mags", obs), ("synthetic_mags", syn)):
        if not np.isfinite(a).all():
            raise ParameterError(f"{what} has {int((~np.isfinite(a)).any(1).sum())} row(s) with NaN/inf")
    if keep_probability is not None:
        syn = keep_with_probability(syn, keep_probability, seed + 1)
    n = min(len(obs), len(syn), max_samples)
    acc = c2st(obs, syn, seed=seed, max_samples=max_samples)
    return {"accuracy": float(acc), "n_per_class": int(n)}


__all__ = ["BAND", "QUANTILE_LEVELS", "band_hits", "calibrated_band_rate", "calibration_summary",
           "keep_with_probability", "marginal_distances", "marginal_quantiles", "photometry_c2st",
           "recovery_report"]
