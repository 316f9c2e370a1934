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
def _stellar(wave_key: tuple, edges_key: tuple):
    return templates.stellar_templates(np.array(wave_key), np.array(edges_key))


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
    ssp: torch.Tensor             # (Z*A, W)
    ssp_young: torch.Tensor       # (Z*Ay, W)
    young_frac: torch.Tensor      # (A,)
    live_frac: torch.Tensor       # (Z, A)
    grid_log_z: torch.Tensor      # (Z,)
    curve_terms: torch.Tensor     # (3, V): k(λ)/4.05, D(λ)/4.05 for E_b = 1, ln(λ/5500); V pixels
                                  # bluewards of 3.115 µm (no attenuation beyond)
    n_young: int
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


    def window(self, lo: int, hi: int) -> Plan:
        """The same plan restricted to pixels [lo, hi) (lines kept). Used for photometry of a
        chunk of galaxies whose redshifts let the filters see only part of the grid; not valid
        with dust emission, whose energy balance needs every pixel."""
        w = self.wave_aa.shape[0]

        def cols(x):
            return x[..., lo:hi] if not self.n_lines else torch.cat([x[..., lo:hi], x[..., w:]], -1)

        v = self.curve_terms.shape[-1]
        return replace(self, wave_aa=self.wave_aa[lo:hi], dwave_aa=self.dwave_aa[lo:hi],
                       ssp=self.ssp[:, lo:hi], ssp_young=self.ssp_young[:, lo:hi],
                       curve_terms=self.curve_terms[:, min(lo, v):min(hi, v)],
                       nebular=None if self.nebular is None else cols(self.nebular), table=None,
                       igm_uv=None, n_uv=0)


def _curve_terms(wave_aa: np.ndarray) -> np.ndarray:
    return np.stack([calzetti_k(wave_aa) / R_V_CALZETTI, drude_profile(wave_aa) / R_V_CALZETTI,
                     np.log(wave_aa / V_BAND_AA)])


def build_plan(wave_aa: np.ndarray, age_centres_yr: np.ndarray, age_edges_yr: np.ndarray, *,
               nebular: bool, dust_emission: bool, dtype: torch.dtype, device,
               curves=None, z_max: float = 10.0) -> Plan:
    """Resample all templates onto ``wave_aa`` (rest frame, Å) and move them to torch.

    With ``curves`` (filter transmission curves) the plan is a photometry plan: it holds the
    redshift projection table and keeps nebular lines apart from the pixels.
    """
    def t(x):
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)

    edges = bin_edges(wave_aa)
    dwave = np.diff(edges)
    st = _stellar(tuple(wave_aa), tuple(age_edges_yr))
    young = birth_cloud_fraction(age_edges_yr)
    n_young = int(np.count_nonzero(young))
    nz, na, nw = st.ssp.shape
    ssp_young = st.ssp[:, :n_young].copy()
    if nebular:  # the gas absorbs the ionising photons of young stars and re-emits them (Cloudy)
        ssp_young[..., wave_aa < LYMAN_LIMIT_AA] = 0.0
    n_att = int(np.searchsorted(wave_aa, ATTENUATION_MAX_AA))
    plan = Plan(wave_aa=t(wave_aa), dwave_aa=t(dwave), ssp=t(st.ssp.reshape(nz * na, nw)),
                ssp_young=t(ssp_young.reshape(nz * n_young, nw)), young_frac=t(young),
                live_frac=t(st.live_frac), grid_log_z=t(st.log_z),
                curve_terms=t(_curve_terms(wave_aa[:n_att])), n_young=n_young)
    line_wave = np.zeros(0)
    if nebular:
        separate = curves is not None
        nb = _nebular(tuple(wave_aa), tuple(age_centres_yr), n_young, not separate)
        grid = np.concatenate([nb.lum, nb.lines], -1) if separate else nb.lum     # (Z, U, Ay, W')
        cells = corner_cells(grid)                                                # (Z-1, U-1, 4, Ay, W')
        plan.nebular = t(cells.reshape(cells.shape[0] * cells.shape[1], 4 * n_young, -1))
        plan.grid_log_u = t(nb.log_u)
        if separate:
            line_wave = nb.line_wave_aa
            plan.n_lines = len(line_wave)
            plan.line_terms = t(_curve_terms(line_wave))
    if dust_emission:
        de = _dust_emission(tuple(wave_aa))
        plan.ir_start = int(np.searchsorted(wave_aa, DUST_EMISSION_MIN_AA))
        lum = np.concatenate([de.lum[..., plan.ir_start:], de.norm[..., None]], -1)  # (2, Q, U, W_ir+1)
        lum = lum / np.median(de.norm)             # O(1) numbers: only the ratio to the norm matters
        cells = corner_cells(np.moveaxis(lum, 0, 2))                                # (Q-1, U-1, 4, 2, .)
        cells = np.swapaxes(cells, 2, 3)                                            # kind-major rows
        plan.dust_em = t(cells.reshape(cells.shape[0] * cells.shape[1], 8, -1))
        plan.grid_qpah, plan.grid_umin = t(de.qpah), t(de.umin)
    nodes = redshift_nodes(z_max)
    plan.n_uv = int(np.searchsorted(wave_aa, LYMAN_ALPHA_AA * 1.01))
    uv = wave_aa[:plan.n_uv].copy()
    lya = (edges[:plan.n_uv] <= LYMAN_ALPHA_AA) & (edges[1:plan.n_uv + 1] > LYMAN_ALPHA_AA)
    uv[lya] = LYMAN_ALPHA_AA * (1 - 1e-4)        # the pixel holding Lyα is always IGM-attenuated
    plan.igm_uv = t(igm_transmission(uv, nodes))
    if curves is not None:
        wave_all = np.concatenate([wave_aa, line_wave * (1 - 1e-4)])  # lines: just bluewards of centre
        width_all = np.concatenate([dwave, np.ones_like(line_wave)])  # line luminosities are in L_sun
        table = projection_table(curves, wave_all, width_all, nodes)
        plan.table = t(np.concatenate([table[:-1], table[1:]], axis=-1).transpose(0, 2, 1))
        plan.filter_lo_aa = min(float(w[0]) for w, _ in curves)
        plan.filter_hi_aa = max(float(w[-1]) for w, _ in curves)
    return plan


def photometry_grid(wave_lo_aa: float, wave_hi_aa: float, z_max: float, dust_emission: bool,
                    dlnl: float = 0.005) -> np.ndarray:
    """Rest grid for filters spanning [wave_lo, wave_hi] (observed) up to ``z_max``.

    Δlnλ = ``dlnl`` up to 1 µm (absorption features, Balmer break) and 2·dlnl beyond (smooth
    stellar continua; the DL07 templates are themselves sampled at Δlnλ ≈ 0.009); coarse from
    100 Å to 5 µm outside the filters for the absorbed energy when dust emission is on.
    """
    lo = wave_lo_aa / (1.0 + z_max) * np.exp(-dlnl)
    hi = wave_hi_aa * np.exp(dlnl)
    parts, start = [], lo
    for stop, step in ((1e4, dlnl), (np.inf, 2 * dlnl)):
        if start < min(stop, hi):
            seg = log_grid(start, min(stop, hi), step)
            parts.append(seg)
            start = seg[-1] * np.exp(step)
    fine = np.concatenate(parts)
    if not dust_emission:
        return fine
    below = piecewise_grid(fine[0], fine[0], 100.0, fine[0])[:-1]
    above = piecewise_grid(fine[-1], fine[-1], fine[-1], 5e4)[1:] if fine[-1] < 5e4 else np.zeros(0)
    return np.concatenate([below, fine, above])


def spectrum_grid(wave_lo_aa: float, wave_hi_aa: float, z_max: float, dlnl: float = 2e-4) -> np.ndarray:
    """Rest grid for spectra observed over [wave_lo, wave_hi]: fine there for 0 <= z <= z_max,
    coarse from 100 Å to 1 cm so the energy budget and dust emission are complete."""
    lo = wave_lo_aa / (1.0 + z_max) * np.exp(-dlnl)
    return piecewise_grid(max(lo, 100.0), wave_hi_aa * np.exp(dlnl), 100.0, 1e8, dlnl_fine=dlnl)
