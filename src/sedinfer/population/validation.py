"""How well a population fit recovers a known population (PopSED §4.1 mock test).

Per parameter (and derived quantity): the 1-D Wasserstein distance W1 and the two-sample
Kolmogorov–Smirnov statistic between the true values and samples of the fitted population, for
the ensemble and for each flow; and the *coverage* of the truth by the ensemble: on histogram
bins spanning the truth's 1–99 % range, the fraction of bins where the true density lies within
the spread of the flows (their min–max envelope widened by the truth's Poisson error in the bin).
W1 is also given in units of the truth's standard deviation so that parameters compare.
"""

from __future__ import annotations

import itertools
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


def ensemble_coverage(
    truth: Any, member_samples: Sequence[Any], names: Sequence[str], bins: int = 20
) -> dict[str, float]:
    """{name: fraction of bins where the true density lies inside the flows' envelope}."""
    t = _columns(truth, len(names), "truth")
    members = [_columns(m, len(names), "member samples") for m in member_samples]
    if len(members) < 2:
        raise ParameterError("coverage needs at least two ensemble members")
    out = {}
    for j, name in enumerate(names):
        col = t[:, j][np.isfinite(t[:, j])]
        lo, hi = np.percentile(col, [1, 99])
        if not hi > lo:
            out[name] = float("nan")
            continue
        edges = np.linspace(lo, hi, bins + 1)
        width = edges[1] - edges[0]
        counts, _ = np.histogram(col, edges)
        dens = counts / (col.size * width)
        err = np.sqrt(np.maximum(counts, 1)) / (col.size * width)
        flows = np.array([np.histogram(m[:, j], edges)[0] / (m.shape[0] * width) for m in members])
        inside = (dens + err >= flows.min(0)) & (dens - err <= flows.max(0))
        out[name] = float(inside.mean())
    return out


def coverage_by_ensemble_size(
    truth: Any,
    member_samples: Sequence[Any],
    names: Sequence[str],
    n_subsets: int = 20,
    seed: int = 0,
    bins: int = 20,
) -> dict[int, dict[str, float]]:
    """{m: {name: mean coverage of random m-member subsets}} for m = 2 ... K.

    How the coverage of an ensemble grows with its size: the min–max envelope of more members is
    wider, so coverage rises with K towards the fraction of bins the method can reach at all.
    Up to ``n_subsets`` distinct subsets per size (all of them where there are fewer), seeded.
    """
    k = len(member_samples)
    if k < 2:
        raise ParameterError("coverage needs at least two ensemble members")
    rng = np.random.default_rng(seed)
    out = {}
    for m in range(2, k + 1):
        if math.comb(k, m) <= n_subsets:
            subsets = list(itertools.combinations(range(k), m))
        else:  # distinct random subsets, in the order drawn
            draws = (tuple(sorted(rng.choice(k, m, replace=False).tolist())) for _ in range(10 * n_subsets))
            subsets = list(dict.fromkeys(draws))[:n_subsets]
        cov = [ensemble_coverage(truth, [member_samples[i] for i in sub], names, bins) for sub in subsets]
        out[m] = {name: float(np.mean([c[name] for c in cov])) for name in names}
    return out


def recovery_report(
    truth: Mapping[str, np.ndarray],
    ensemble: Mapping[str, np.ndarray],
    members: Sequence[Mapping[str, np.ndarray]],
    bins: int = 20,
) -> dict[str, Any]:
    """Distances for the ensemble and each member, and the ensemble coverage, per column name.

    Each argument maps column names (parameters and derived quantities) to 1-D arrays.
    """
    names = list(truth)
    stack = lambda d: np.column_stack([np.asarray(d[k], dtype=np.float64) for k in names])  # noqa: E731
    t = stack(truth)
    per_member = [marginal_distances(t, stack(m), names) for m in members]
    return {
        "names": names,
        "ensemble": marginal_distances(t, stack(ensemble), names),
        "members": per_member,
        "coverage": ensemble_coverage(t, [stack(m) for m in members], names, bins)
        if len(members) > 1
        else None,
    }


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


__all__ = ["coverage_by_ensemble_size", "ensemble_coverage", "keep_with_probability", "marginal_distances",
           "photometry_c2st", "recovery_report"]
