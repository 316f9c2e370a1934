"""A *plan*: every tensor the forward model needs on one rest-frame wavelength grid.

Plans are built lazily (per filter set for photometry, per observed wavelength range for
spectra), on the model's device and dtype, and cached by the model. The expensive part, the
resampling of the raw grids, is cached per wavelength grid for the whole process.

Nebular and dust-emission templates are stored per interpolation *cell* (the 4 corners of a
(Z, log U) or (q_PAH, U_min) square), so each galaxy needs one small matrix product with its
own cell (:func:`~sedinfer.sps.batching.grouped_matmul`) instead of a product with the whole
grid. For photometry the nebular lines are kept apart from the pixels and projected as exact
delta functions at their wavelengths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch

from sedinfer.sps import templates
from sedinfer.sps.agn import torus_template
from sedinfer.sps.dust import (
    ATTENUATION_MAX_AA,
    R_V_CALZETTI,
    V_BAND_AA,
    birth_cloud_fraction,
    calzetti_k,
    drude_profile,
)
from sedinfer.sps.igm import igm_transmission
from sedinfer.sps.projection import projection_table, redshift_nodes
from sedinfer.sps.wavelength import bin_edges, log_grid, piecewise_grid

LYMAN_LIMIT_AA = 911.8
LYMAN_ALPHA_AA = 1215.67
DUST_EMISSION_MIN_AA = 1e4


@lru_cache(maxsize=8)
def _stellar(wave_key: tuple, edges_key: tuple, above_aa: float | None = None):
    return templates.stellar_templates(np.array(wave_key), np.array(edges_key), above_aa)


@lru_cache(maxsize=8)
def _nebular(wave_key: tuple, centres_key: tuple, n_young: int, lines_in_pixels: bool):
    return templates.nebular_templates(np.array(wave_key), np.array(centres_key), n_young, lines_in_pixels)


@lru_cache(maxsize=8)
def _dust_emission(wave_key: tuple):
    return templates.dust_emission_templates(np.array(wave_key))


def corner_cells(grid: np.ndarray) -> np.ndarray:
    """(I-1, J-1, 4, ...) corners [(i,j), (i,j+1), (i+1,j), (i+1,j+1)] of a grid (I, J, ...)."""
    return np.stack([grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]], axis=2)


@dataclass
class Plan:
    """Torch tensors of one wavelength grid; shapes use Z metallicities, A age bins, Ay young
    bins, W pixels, L nebular lines, C cells, K redshift nodes, B bands."""

    wave_aa: torch.Tensor         # (W,)
    dwave_aa: torch.Tensor        # (W,)
    ssp: torch.Tensor             # (Z-1, 2A, W): the two metallicities of each interval, stacked
    ssp_young: torch.Tensor       # (Z-1, 2Ay, W)
    young_frac: torch.Tensor      # (A,)
    live_frac: torch.Tensor       # (Z, A)
    grid_log_z: torch.Tensor      # (Z,)
    curve_terms: torch.Tensor     # (3, V): k(λ)/4.05, D(λ)/4.05 for E_b = 1, ln(λ/5500); V pixels
                                  # bluewards of 3.115 µm (no attenuation beyond)
    n_young: int
    n_energy: int = 0                        # leading coarse pixels used only for the absorbed energy
    nebular: torch.Tensor | None = None      # (C, 4*Ay, W [+ L]) per (Z, log U) cell
    grid_log_u: torch.Tensor | None = None   # (U,)
    line_terms: torch.Tensor | None = None   # (3, L) attenuation-curve terms at the lines
    n_lines: int = 0                         # lines kept apart (photometry plans), else 0
    dust_em: torch.Tensor | None = None      # (C, 8, W_ir + 1) per (q_PAH, U_min) cell; last col = norm
    grid_qpah: torch.Tensor | None = None
    grid_umin: torch.Tensor | None = None
    ir_start: int = 0
    table: torch.Tensor | None = None        # (K-1, 2B, W [+ L]) projection on redshift intervals
    filter_lo_aa: float = 0.0                # observed-frame span of the filters
    filter_hi_aa: float = 0.0
    igm_uv: torch.Tensor | None = None       # (K, W_uv) IGM transmission on redshift nodes
    n_uv: int = 0
    agn: torch.Tensor | None = None          # (W,) torus L_λ per unit torus luminosity, 1/Å
    lbol: torch.Tensor | None = None         # (Z, A) bolometric L_sun per M_sun formed of the SSPs


    def window(self, lo: int, hi: int) -> Plan:
        """The plan restricted to fine pixels [lo, hi) (energy pixels and lines kept), for a chunk
        of galaxies whose redshifts let the filters see only part of the grid."""
        e, w, v = self.n_energy, self.wave_aa.shape[0], self.curve_terms.shape[-1]

        def pixels(x, stop=w):   # energy pixels + window (+ columns after ``stop``: the lines)
            parts = [x[..., :e], x[..., e + lo:min(e + hi, stop)], x[..., w:]]
            return torch.cat([q for q in parts if q.shape[-1]], -1) if e or x.shape[-1] > w else parts[1]

        dust_em, ir_start = self.dust_em, self.ir_start
        if dust_em is not None:
            first = max(self.ir_start, e + lo)
            dust_em = torch.cat([dust_em[..., first - self.ir_start:max(e + hi, first) - self.ir_start],
                                 dust_em[..., -1:]], -1)
            ir_start = first - lo
        return replace(self, wave_aa=pixels(self.wave_aa), dwave_aa=pixels(self.dwave_aa),
                       ssp=pixels(self.ssp), ssp_young=pixels(self.ssp_young),
                       curve_terms=pixels(self.curve_terms, v),
                       nebular=None if self.nebular is None else pixels(self.nebular),
                       agn=None if self.agn is None else pixels(self.agn),
                       dust_em=dust_em, ir_start=ir_start, table=None, igm_uv=None, n_uv=0)


def _metallicity_cells(ssp: np.ndarray) -> np.ndarray:
    """(Z, A, W) -> (Z-1, 2A, W): each metallicity interval's lower and upper SSPs, so a galaxy
    needs a product with 2A rows (its interval) instead of Z*A."""
    return np.concatenate([ssp[:-1], ssp[1:]], axis=1)


def _curve_terms(wave_aa: np.ndarray) -> np.ndarray:
    return np.stack([calzetti_k(wave_aa) / R_V_CALZETTI, drude_profile(wave_aa) / R_V_CALZETTI,
                     np.log(wave_aa / V_BAND_AA)])


def build_plan(wave_aa: np.ndarray, age_centres_yr: np.ndarray, age_edges_yr: np.ndarray, *,
               nebular: bool, dust_emission: bool, dtype: torch.dtype, device,
               curves=None, z_max: float = 10.0, energy_wave_aa: np.ndarray | None = None,
               agn: bool = False) -> Plan:
    """Resample all templates onto ``wave_aa`` (rest frame, Å) and move them to torch.

    With ``agn`` the plan holds the torus template (:mod:`sedinfer.sps.agn`) and the SSPs'
    bolometric luminosities that normalise it.

    With ``curves`` (filter transmission curves) the plan is a photometry plan: it holds the
    redshift projection table and keeps nebular lines apart from the pixels. With
    ``energy_wave_aa`` a coarse grid is prepended to the pixels, on which the luminosity absorbed
    by dust is integrated, so the fine pixels can be restricted to what the filters see.
    """
    def t(x):
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)

    segments = [energy_wave_aa, wave_aa] if energy_wave_aa is not None else [wave_aa]
    n_energy = 0 if energy_wave_aa is None else len(energy_wave_aa)
    wave_all = np.concatenate(segments)
    dwave = np.concatenate([np.diff(bin_edges(w)) for w in segments])
    st = [_stellar(tuple(w), tuple(age_edges_yr)) for w in segments]
    ssp = np.concatenate([x.ssp for x in st], -1)
    young = birth_cloud_fraction(age_edges_yr)
    n_young = int(np.count_nonzero(young))
    nz, na, nw = ssp.shape
    ssp_young = ssp[:, :n_young]
    if nebular:  # the gas absorbs the ionising photons of young stars and re-emits them (Cloudy)
        cut = [_stellar(tuple(w), tuple(age_edges_yr), LYMAN_LIMIT_AA) for w in segments]
        ssp_young = np.concatenate([x.ssp[:, :n_young] for x in cut], -1)
    n_att = n_energy + int(np.searchsorted(wave_aa, ATTENUATION_MAX_AA))
    plan = Plan(wave_aa=t(wave_all), dwave_aa=t(dwave), ssp=t(_metallicity_cells(ssp)),
                ssp_young=t(_metallicity_cells(ssp_young)), young_frac=t(young),
                live_frac=t(st[0].live_frac), grid_log_z=t(st[0].log_z),
                curve_terms=t(_curve_terms(wave_all[:n_att])), n_young=n_young, n_energy=n_energy)
    if agn:
        plan.agn = t(torus_template(wave_all))
        plan.lbol = t(st[0].lbol)
    line_wave = np.zeros(0)
    if nebular:
        separate = curves is not None
        nbs = [_nebular(tuple(w), tuple(age_centres_yr), n_young, not separate) for w in segments]
        grid = np.concatenate([x.lum for x in nbs] + ([nbs[0].lines] if separate else []), -1)
        cells = corner_cells(grid)                                                # (Z-1, U-1, 4, Ay, W')
        plan.nebular = t(cells.reshape(cells.shape[0] * cells.shape[1], 4 * n_young, -1))
        plan.grid_log_u = t(nbs[0].log_u)
        if separate:
            line_wave = nbs[0].line_wave_aa
            plan.n_lines = len(line_wave)
            plan.line_terms = t(_curve_terms(line_wave))
    if dust_emission:
        de = _dust_emission(tuple(wave_aa))
        ir = int(np.searchsorted(wave_aa, DUST_EMISSION_MIN_AA))
        plan.ir_start = n_energy + ir
        lum = np.concatenate([de.lum[..., ir:], de.norm[..., None]], -1)          # (2, Q, U, W_ir+1)
        lum = lum / np.median(de.norm)             # O(1) numbers: only the ratio to the norm matters
        cells = corner_cells(np.moveaxis(lum, 0, 2))                                # (Q-1, U-1, 4, 2, .)
        cells = np.swapaxes(cells, 2, 3)                                            # kind-major rows
        plan.dust_em = t(cells.reshape(cells.shape[0] * cells.shape[1], 8, -1))
        plan.grid_qpah, plan.grid_umin = t(de.qpah), t(de.umin)
    nodes = redshift_nodes(z_max)
    if curves is None:
        edges = bin_edges(wave_aa)
        plan.n_uv = int(np.searchsorted(wave_aa, LYMAN_ALPHA_AA * 1.01))
        uv = wave_aa[:plan.n_uv].copy()
        lya = (edges[:plan.n_uv] <= LYMAN_ALPHA_AA) & (edges[1:plan.n_uv + 1] > LYMAN_ALPHA_AA)
        uv[lya] = LYMAN_ALPHA_AA * (1 - 1e-4)        # the pixel holding Lyα is always IGM-attenuated
        plan.igm_uv = t(igm_transmission(uv, nodes))
    else:
        waves = np.concatenate([wave_aa, line_wave * (1 - 1e-4)])   # lines: just bluewards of centre
        widths = np.concatenate([dwave[n_energy:], np.ones_like(line_wave)])  # line luminosities: L_sun
        table = projection_table(curves, waves, widths, nodes)
        table = np.concatenate([np.zeros((len(nodes), n_energy, len(curves))), table], 1)
        plan.table = t(np.concatenate([table[:-1], table[1:]], axis=-1).transpose(0, 2, 1))
        plan.filter_lo_aa = min(float(w[0]) for w, _ in curves)
        plan.filter_hi_aa = max(float(w[-1]) for w, _ in curves)
    return plan


#: upper end of the energy grid when the birth clouds follow a power law, which has no cut:
#: (100 µm / 5500 Å)^-1 = 0.0055 and stars emit < 1e-5 of their light beyond
ENERGY_MAX_POWER_LAW_AA = 1e6


def energy_grid(dlnl: float = 0.05, wave_hi_aa: float = ATTENUATION_MAX_AA) -> np.ndarray:
    """Coarse rest grid (100 Å to ``wave_hi_aa``, by default 3.1 µm where the Kriek & Conroy
    curve vanishes) for the absorbed energy.

    The templates are flux-conserving pixel means, so only the variation of the attenuation
    across a pixel is approximated: W3/W4 magnitudes of the full model change by < 2e-4 mag
    (99th percentile) between Δlnλ = 0.05 and 0.005.
    """
    return log_grid(100.0, wave_hi_aa, dlnl)[:-1]


def photometry_grid(wave_lo_aa: float, wave_hi_aa: float, z_max: float, dlnl: float = 0.005) -> np.ndarray:
    """Rest grid for filters spanning [wave_lo, wave_hi] (observed) up to ``z_max``.

    Δlnλ = ``dlnl`` up to 1 µm (absorption features, Balmer break) and 2·dlnl beyond (smooth
    stellar continua; the DL07 templates are themselves sampled at Δlnλ ≈ 0.009).
    """
    lo = wave_lo_aa / (1.0 + z_max) * np.exp(-dlnl)
    hi = wave_hi_aa * np.exp(dlnl)
    parts, start = [], lo
    for stop, step in ((1e4, dlnl), (np.inf, 2 * dlnl)):
        if start < min(stop, hi):
            seg = log_grid(start, min(stop, hi), step)
            parts.append(seg)
            start = seg[-1] * np.exp(step)
    return np.concatenate(parts)


def spectrum_grid(wave_lo_aa: float, wave_hi_aa: float, z_max: float, dlnl: float = 2e-4) -> np.ndarray:
    """Rest grid for spectra observed over [wave_lo, wave_hi]: fine there for 0 <= z <= z_max,
    coarse from 100 Å to 1 cm so the energy budget and dust emission are complete."""
    lo = wave_lo_aa / (1.0 + z_max) * np.exp(-dlnl)
    return piecewise_grid(max(lo, 100.0), wave_hi_aa * np.exp(dlnl), 100.0, 1e8, dlnl_fine=dlnl)
