"""Rest-frame wavelength grids and flux-conserving resampling.

A model grid is log-uniform by pieces: fine (``dlnl_fine``, default Δlnλ = 0.005, i.e.
R = 100 sampled twice per resolution element) where filters or a requested spectrum need
it, coarse (Δlnλ = 0.025) elsewhere, where only the energy budget matters.
"""

from __future__ import annotations

import numpy as np


def log_grid(lo_aa: float, hi_aa: float, dlnl: float) -> np.ndarray:
    """Log-uniform wavelength centres from ``lo_aa`` up to at least ``hi_aa``."""
    n = int(np.ceil(np.log(hi_aa / lo_aa) / dlnl)) + 1
    return lo_aa * np.exp(dlnl * np.arange(n))


def piecewise_grid(fine_lo_aa: float, fine_hi_aa: float, full_lo_aa: float, full_hi_aa: float,
                   dlnl_fine: float = 0.005, dlnl_coarse: float = 0.025) -> np.ndarray:
    """Coarse grid on ``[full_lo, fine_lo)``, fine on ``[fine_lo, fine_hi]``, coarse above.

    Returns wavelength centres in Å, strictly increasing, shape (W,).
    """
    fine = log_grid(fine_lo_aa, fine_hi_aa, dlnl_fine)
    parts = []
    if full_lo_aa < fine[0] * np.exp(-dlnl_coarse):
        below = fine[0] * np.exp(-dlnl_coarse * np.arange(1, 10_000))
        parts.append(below[below >= full_lo_aa][::-1])
    parts.append(fine)
    if full_hi_aa > fine[-1] * np.exp(dlnl_coarse):
        above = fine[-1] * np.exp(dlnl_coarse * np.arange(1, 10_000))
        parts.append(above[above <= full_hi_aa * np.exp(dlnl_coarse)])
    return np.concatenate(parts)


def bin_edges(centres: np.ndarray) -> np.ndarray:
    """Pixel edges at the geometric mid-points of the centres, shape (W+1,)."""
    mid = np.sqrt(centres[1:] * centres[:-1])
    first = centres[0] ** 2 / mid[0]
    last = centres[-1] ** 2 / mid[-1]
    return np.concatenate([[first], mid, [last]])


def _cumulative_at(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Exact integral of the piecewise-linear ``y(x)`` from ``x[0]`` to each ``at`` (clamped)."""
    at = np.clip(at, x[0], x[-1])
    dx = np.diff(x)
    seg = 0.5 * (y[..., 1:] + y[..., :-1]) * dx
    cum = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(seg, axis=-1)], axis=-1)
    i = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 2)
    u = at - x[i]
    slope = (y[..., i + 1] - y[..., i]) / dx[i]
    return cum[..., i] + y[..., i] * u + 0.5 * slope * u**2


def rebin(wave_aa: np.ndarray, flux: np.ndarray, edges_aa: np.ndarray,
          above_aa: float | None = None) -> np.ndarray:
    """Flux-conserving resampling of a piecewise-linear spectrum onto pixels.

    ``flux`` (..., L) is a flux density per Å sampled at ``wave_aa`` (L,); the result
    (..., W) is its mean over each pixel ``[edges[k], edges[k+1]]`` (zero outside the input
    coverage), so ``sum(out * diff(edges))`` equals the integral of the input. With
    ``above_aa`` the input is taken as zero bluewards of that wavelength, exactly, also inside
    the pixel that straddles it.
    """
    upper = edges_aa if above_aa is None else np.maximum(edges_aa, above_aa)
    cum = _cumulative_at(wave_aa, flux, upper)
    return np.diff(cum, axis=-1) / np.diff(edges_aa)
