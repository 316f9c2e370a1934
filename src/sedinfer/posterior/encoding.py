"""Photometry -> flow context: asinh magnitudes, their errors, band masks and redshift.

Per band b the context holds the asinh magnitude (Lupton, Gunn & Szalay 1999)

    μ = -2.5/ln10 · [asinh(f / 2β) + ln β],     σ_μ = 2.5/ln10 · σ / sqrt(f² + 4β²)

(f, σ, β in maggies; β the softening), log10 σ_μ, and a flag that the band was observed. Asinh
magnitudes stay finite for zero and negative fluxes, so faint galaxies keep their information.
A missing band (NaN flux, or dropped during training) has μ and log10 σ_μ set to fixed fill
values and its flag 0; the flow learns to marginalise over it (band dropout). The redshift comes
last in spectroscopic-redshift mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

_POGSON = 2.5 / math.log(10.0)
FILL_MAG = 30.0       # asinh magnitude written for a missing band
FILL_LOG_ERR = 0.0    # log10 σ_μ written for a missing band


def asinh_mag(flux: Tensor, sigma: Tensor, softening: Tensor) -> tuple[Tensor, Tensor]:
    """Asinh magnitude and its 1σ error from flux and σ (maggies, (..., B)); softening β (B,)."""
    mag = -_POGSON * (torch.asinh(flux / (2 * softening)) + torch.log(softening))
    err = _POGSON * sigma / torch.sqrt(flux**2 + 4 * softening**2)
    return mag, err


def context_names(bands: Sequence[str], with_redshift: bool) -> tuple[str, ...]:
    names = [f"{kind}_{b}" for b in bands for kind in ("amag", "log_amag_err", "observed")]
    return tuple(names + (["redshift"] if with_redshift else []))


def encode(flux: Tensor, sigma: Tensor, softening: Tensor, redshift: Tensor | None = None,
           observed: Tensor | None = None) -> Tensor:
    """Context (N, 3B [+1]) from fluxes and errors (N, B) in maggies.

    ``observed`` (N, B) bool marks the bands to use (default: where flux and σ are finite);
    others get the fill values. ``redshift`` (N,) is appended when given.
    """
    if observed is None:
        observed = torch.isfinite(flux) & torch.isfinite(sigma)
    f = torch.where(observed, flux, torch.zeros_like(flux))
    s = torch.where(observed, sigma, torch.ones_like(sigma))
    mag, err = asinh_mag(f, s, softening)
    mag = torch.where(observed, mag, torch.full_like(mag, FILL_MAG))
    log_err = torch.where(observed, torch.log10(err), torch.full_like(err, FILL_LOG_ERR))
    parts = torch.stack([mag, log_err, observed.to(mag.dtype)], dim=-1).flatten(-2)
    if redshift is not None:
        parts = torch.cat([parts, redshift.reshape(-1, 1).to(parts.dtype)], dim=-1)
    return parts


def dropout_mask(n: int, n_bands: int, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Observed-band mask (n, B) for band-dropout training.

    A fraction ``rate`` of rows lose a random non-empty proper subset of bands (each band of
    such a row is dropped with probability 1/2, redrawn until at least one band stays and one
    goes), so the flow sees every pattern of missing bands.
    """
    mask = torch.ones(n, n_bands, dtype=torch.bool)
    if rate <= 0 or n_bands < 2:
        return mask
    rows = torch.nonzero(torch.rand(n, generator=generator) < rate)[:, 0]
    pattern = torch.rand(rows.numel(), n_bands, generator=generator) < 0.5
    while True:
        kept = pattern.sum(-1)
        redo = (kept == 0) | (kept == n_bands)
        if not bool(redo.any()):
            break
        pattern[redo] = torch.rand(int(redo.sum()), n_bands, generator=generator) < 0.5
    mask[rows] = pattern
    return mask


__all__ = ["asinh_mag", "encode", "context_names", "dropout_mask", "FILL_MAG", "FILL_LOG_ERR"]
