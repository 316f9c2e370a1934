"""Is the catalog inside what the fit can model? Selection-limit and photometric-support checks.

* :func:`check_selection_limit`: with a magnitude-limit selection, the share of catalog galaxies
  fainter than the limit (by more than ``3 × width`` and 0.1 mag); a catalog that is not cut at the
  limit given cannot be a sample of the selected population, so that share is reported.
* :func:`unexplained_fraction`: the share of catalog galaxies whose photometry the fitted
  population does not produce. Catalog and synthetic magnitudes (equal numbers) are pooled and
  whitened by the catalog's covariance; a catalog galaxy counts as unexplained when at least
  ``UNEXPLAINED_SHARE`` (90 %) of its k = 20 nearest neighbours are catalog galaxies. Where the two
  distributions agree the count of catalog neighbours is Binomial(20, ½), which reaches 18 with
  probability 2·10⁻⁴, so the fraction is ≈ 0 for a good fit and ≈ the share of the catalog outside
  the population's support when part of it (e.g. galaxies beyond the box's redshift bound) cannot
  be reproduced.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from sedinfer.population.forward import SoftMagnitudeLimit

NEIGHBOURS = 20
UNEXPLAINED_SHARE = 0.9
#: warn when more than this share of the catalog is beyond the selection limit or unexplained
WARN_FRACTION = 0.05


def check_selection_limit(mags: np.ndarray, bands: Sequence[str], selection: Any,
                          category: type[Warning] = UserWarning) -> float:
    """Share of catalog rows (N, B AB mags) fainter than a magnitude-limit ``selection``; warns
    (``category``) when above ``WARN_FRACTION``. Returns 0 for other or no selections."""
    if not isinstance(selection, SoftMagnitudeLimit):
        return 0.0
    j = selection.column(tuple(bands))
    margin = max(3 * selection.width, 0.1)
    beyond = float(np.mean(mags[:, j] > selection.limit + margin))
    if beyond > WARN_FRACTION:
        warnings.warn(
            f"{beyond:.1%} of the catalog ({int(round(beyond * len(mags)))} of {len(mags)} galaxies) is "
            f"fainter than the selection limit {bands[j]} < {selection.limit:g} (by more than {margin:g} "
            "mag); the fit models a catalog cut at that limit: cut the catalog or give its real limit",
            category, stacklevel=3)
    return beyond


def unexplained_fraction(catalog_mags: Any, synthetic_mags: Any, seed: int = 0,
                         max_rows: int = 5000) -> float:
    """Share of catalog rows (N, B) whose photometry the synthetic rows (M, B) do not produce
    (see the module docstring); at most ``max_rows`` of each, drawn with ``seed``."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    obs, syn = np.asarray(catalog_mags, np.float64), np.asarray(synthetic_mags, np.float64)
    n = min(len(obs), len(syn), max_rows)
    if n < 2 * NEIGHBOURS:
        return float("nan")
    obs = obs[rng.choice(len(obs), n, replace=False)]
    syn = syn[rng.choice(len(syn), n, replace=False)]
    cov = np.cov(obs, rowvar=False) + 1e-9 * np.eye(obs.shape[1])
    w = np.linalg.cholesky(np.linalg.inv(cov))
    pooled = np.concatenate([obs, syn]) @ w
    _, idx = cKDTree(pooled).query(pooled[:n], k=NEIGHBOURS + 1)
    share = (idx[:, 1:] < n).mean(1)                   # neighbours that are catalog rows, self excluded
    return float(np.mean(share >= UNEXPLAINED_SHARE))


def warn_if_unexplained(fraction: float, box: str, category: type[Warning] = UserWarning) -> None:
    """Warn when more than ``WARN_FRACTION`` of the catalog is unexplained; ``box`` describes the bounds."""
    if fraction > WARN_FRACTION:
        warnings.warn(
            f"{fraction:.1%} of the catalog has photometry the fitted population does not produce (a "
            f"catalog galaxy whose {NEIGHBOURS} nearest neighbours are >= {UNEXPLAINED_SHARE:.0%} catalog "
            f"galaxies); the prior box ({box}) may exclude them: widen it (--bound NAME=LOW,HIGH) or cut "
            "the catalog",
            category, stacklevel=3)


__all__ = ["NEIGHBOURS", "UNEXPLAINED_SHARE", "WARN_FRACTION", "check_selection_limit",
           "unexplained_fraction", "warn_if_unexplained"]
