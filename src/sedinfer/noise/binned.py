"""Noise models binned in magnitude: a per-band quantity q ~ N(median(m), scatter(m)).

q is the SNR for PopSED's model (Li et al. 2024, §2.2) and log10 σ for SEDFLOW's (Hahn &
Melchior 2022, eq. 5). Its median and standard deviation are measured in bins of the AB
magnitude m = -2.5 log10(f / maggie) of a catalog and interpolated linearly in m between the
bin centres. Beyond the first and last usable bin centre both curves are held flat (constant
extrapolation): a model fitted on a catalog says nothing about brighter or fainter objects, and
flat curves keep draws bounded there.

Bins holding fewer than ``min_count`` usable objects are skipped: their knots are filled by
linear interpolation between (or flat extrapolation from) the usable ones, which leaves the
interpolated curve unchanged and keeps one (B, K) knot array for all bands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.stats import binned_statistic
from torch import Tensor

from sedinfer.errors import CatalogError, ParameterError
from sedinfer.noise.base import NoiseModel

#: Number of equal-width magnitude bins per band when ``mag_bins`` is None.
DEFAULT_N_BINS = 20
#: Magnitude range of the automatic bins: these percentiles of each band's usable magnitudes.
AUTO_BIN_PERCENTILES = (0.5, 99.5)

ArrayLike = np.ndarray | Tensor | list


def flux_to_mag(flux: Tensor) -> Tensor:
    """AB magnitude of a flux in maggies; zero fluxes map to a very faint, finite magnitude."""
    return -2.5 * torch.log10(flux.clamp_min(torch.finfo(flux.dtype).tiny))


def interp_flat(x: Tensor, xp: Tensor, *fp: Tensor) -> tuple[Tensor, ...]:
    """Per-band linear interpolation with flat extrapolation.

    ``x`` (M, B) points, ``xp`` (B, K) strictly increasing knots (K >= 2), each ``fp`` (B, K)
    values. Returns one (M, B) tensor per ``fp``, differentiable with respect to ``x`` and ``fp``.
    """
    xt = x.T.contiguous()
    idx = torch.searchsorted(xp, xt.detach()).clamp(1, xp.shape[1] - 1)
    x0, x1 = xp.gather(1, idx - 1), xp.gather(1, idx)
    t = ((xt - x0) / (x1 - x0)).clamp(0.0, 1.0)
    out = []
    for values in fp:
        y0, y1 = values.gather(1, idx - 1), values.gather(1, idx)
        out.append((y0 + t * (y1 - y0)).T)
    return tuple(out)


class BinnedNoiseModel(NoiseModel):
    """Shared machinery of :class:`SNRNoiseModel` and :class:`SigmaNoiseModel`.

    ``mag_knots``, ``median`` and ``scatter`` have shape (B, K): AB magnitudes of the bin
    centres, and the median and standard deviation of the model's quantity in each bin.
    ``fit_info`` is a per-band summary of the fit (counts, fitted magnitude range).
    """

    def __init__(self, bands: list[str] | tuple[str, ...], mag_knots: ArrayLike, median: ArrayLike,
                 scatter: ArrayLike, fit_info: dict[str, Any] | None = None) -> None:
        super().__init__(bands)
        knots, median, scatter = (self._table(name, value) for name, value in
                                  (("mag_knots", mag_knots), ("median", median), ("scatter", scatter)))
        if not knots.shape == median.shape == scatter.shape:
            raise ParameterError(f"mag_knots, median and scatter have shapes {knots.shape}, {median.shape}, "
                                 f"{scatter.shape}; expected one (B, K) shape")
        self._check_rows((np.diff(knots, axis=1) <= 0).any(axis=1), "mag_knots", "is not strictly increasing")
        self._check_rows((scatter < 0).any(axis=1), "scatter", "holds negative values")
        self.mag_knots = torch.from_numpy(knots)
        self.median = torch.from_numpy(median)
        self.scatter = torch.from_numpy(scatter)
        self.fit_info = dict(fit_info or {})

    def _table(self, name: str, value: ArrayLike) -> np.ndarray:
        """A (B, K) float64 table with K >= 2 and finite entries."""
        table = np.array(value, dtype=np.float64)
        if table.ndim != 2 or table.shape[0] != len(self.bands) or table.shape[1] < 2:
            raise ParameterError(f"{name} has shape {table.shape}; expected ({len(self.bands)}, K) with "
                                 f"K >= 2, one row per band {list(self.bands)}")
        self._check_rows(~np.isfinite(table).all(axis=1), name, "holds non-finite values")
        return table

    def _check_rows(self, bad: np.ndarray, name: str, problem: str) -> None:
        if bad.any():
            raise ParameterError(f"{name} of band {self.bands[int(np.argmax(bad))]!r} {problem}")

    def _moments(self, flux: Tensor) -> tuple[Tensor, Tensor]:
        knots, median, scatter = (t.to(flux) for t in (self.mag_knots, self.median, self.scatter))
        return interp_flat(flux_to_mag(flux), knots, median, scatter)

    def _params(self) -> dict[str, Any]:
        return {"mag_knots": self.mag_knots.tolist(), "median": self.median.tolist(),
                "scatter": self.scatter.tolist(), "fit_info": self.fit_info}

    def _repr_extra(self) -> str:
        lo, hi = self.mag_knots[:, 0].min().item(), self.mag_knots[:, -1].max().item()
        return f", n_knots={self.mag_knots.shape[1]}, mag_range=[{lo:.2f}, {hi:.2f}]"


def fit_binned(flux: ArrayLike, flux_err: ArrayLike, bands: list[str] | tuple[str, ...],
               quantity: Callable[[np.ndarray, np.ndarray], np.ndarray],
               mag_bins: int | ArrayLike | None = None, min_count: int = 20, strict: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Median and standard deviation of ``quantity(f, σ)`` in magnitude bins, per band.

    ``flux`` and ``flux_err`` (N, B) in maggies. Rows with a NaN/infinite or non-positive flux
    or error are excluded band by band (counted in the returned info), or raise with
    ``strict``. ``mag_bins``: None (``DEFAULT_N_BINS`` bins per band), a number of bins (both
    spanning ``AUTO_BIN_PERCENTILES`` of the band's magnitudes), shared edges (K+1,) or per-band
    edges (B, K+1). Returns knots, median, scatter (each (B, K)) and a per-band info dict.
    """
    bands = tuple(bands)
    f, e = _catalog_arrays(flux, flux_err, bands)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ParameterError(f"min_count must be an integer >= 1, got {min_count!r}")
    knots, medians, scatters, info = [], [], [], {}
    for b, band in enumerate(bands):
        usable = np.isfinite(f[:, b]) & np.isfinite(e[:, b]) & (f[:, b] > 0) & (e[:, b] > 0)
        n_excluded = int(f.shape[0] - usable.sum())
        if strict and n_excluded:
            row = int(np.flatnonzero(~usable)[0])
            raise CatalogError(f"band {band!r}: {n_excluded} rows have a NaN, infinite or non-positive "
                               f"flux or flux error (first: row {row}); expected finite positive values")
        mag = -2.5 * np.log10(f[usable, b])
        q = quantity(f[usable, b], e[usable, b])
        edges = _band_edges(mag_bins, mag, bands, b)
        counts = binned_statistic(mag, q, "count", bins=edges).statistic
        median = binned_statistic(mag, q, "median", bins=edges).statistic
        scatter = binned_statistic(mag, q, "std", bins=edges).statistic
        centres = 0.5 * (edges[1:] + edges[:-1])
        good = counts >= min_count
        if not good.any():
            raise CatalogError(f"band {band!r}: no magnitude bin holds min_count={min_count} usable objects "
                               f"({int(usable.sum())} usable of {f.shape[0]} rows); expected more "
                               "positive fluxes with positive errors, or lower min_count / wider mag_bins")
        knots.append(centres)
        medians.append(np.interp(centres, centres[good], median[good]))
        scatters.append(np.interp(centres, centres[good], scatter[good]))
        info[band] = {"n_rows": int(f.shape[0]), "n_excluded": n_excluded,
                      "n_in_used_bins": int(counts[good].sum()), "n_bins_used": int(good.sum()),
                      "mag_range": [float(centres[good][0]), float(centres[good][-1])]}
    return np.stack(knots), np.stack(medians), np.stack(scatters), info


def _catalog_arrays(flux: ArrayLike, flux_err: ArrayLike, bands: tuple[str, ...]
                    ) -> tuple[np.ndarray, np.ndarray]:
    f, e = (np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
            for x in (flux, flux_err))
    for name, a in (("flux", f), ("flux_err", e)):
        if a.ndim != 2 or a.shape[1] != len(bands):
            raise CatalogError(f"{name} has shape {a.shape}; expected (N, {len(bands)}), one column per "
                               f"band {list(bands)}")
    if f.shape != e.shape:
        raise CatalogError(f"flux has shape {f.shape} but flux_err has shape {e.shape}; expected equal "
                           f"shapes, one column per band {list(bands)}")
    return f, e


def _band_edges(mag_bins: int | ArrayLike | None, mag: np.ndarray, bands: tuple[str, ...], b: int
                ) -> np.ndarray:
    """Bin edges (K+1,) of band ``b``; see :func:`fit_binned` for the forms of ``mag_bins``."""
    band = bands[b]
    if mag_bins is None or isinstance(mag_bins, int | np.integer):
        n_bins = DEFAULT_N_BINS if mag_bins is None else int(mag_bins)
        if n_bins < 2:
            raise ParameterError(f"mag_bins must ask for at least 2 bins, got {n_bins}")
        if mag.size == 0:
            raise CatalogError(f"band {band!r}: no positive, finite flux with a positive, finite error")
        lo, hi = np.percentile(mag, AUTO_BIN_PERCENTILES)
        if not hi > lo:
            raise CatalogError(f"band {band!r}: all usable magnitudes equal {lo:.3f}; cannot bin them")
        return np.linspace(lo, hi, n_bins + 1)
    edges = np.asarray(mag_bins, dtype=np.float64)
    if edges.ndim == 2:
        if edges.shape[0] != len(bands):
            raise ParameterError(f"mag_bins has shape {edges.shape}; expected one row of edges per band "
                                 f"{list(bands)}")
        edges = edges[b]
    if edges.ndim != 1 or edges.size < 3 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ParameterError(f"mag_bins for band {band!r}: expected strictly increasing finite edges "
                             f"(K+1,) with K >= 2, or (B, K+1), got {np.asarray(mag_bins).shape}")
    return edges
