"""A *plan*: every tensor the forward model needs on one rest-frame wavelength grid.

Plans are built lazily (per filter set for photometry, per observed wavelength range for
spectra), on the model's device and dtype, and cached by the model. The expensive part, the
resampling of the raw grids, is cached per wavelength grid for the whole process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from sedinfer.sps import templates
from sedinfer.sps.dust import birth_cloud_fraction, calzetti_k, drude_profile, R_V_CALZETTI, V_BAND_AA
from sedinfer.sps.igm import igm_transmission
from sedinfer.sps.projection import projection_table, redshift_nodes
from sedinfer.sps.wavelength import bin_edges, piecewise_grid

LYMAN_LIMIT_AA = 911.8
DUST_EMISSION_MIN_AA = 1e4


@lru_cache(maxsize=8)
def _stellar(wave_key: tuple, edges_key: tuple):
    return templates.stellar_templates(np.array(wave_key), np.array(edges_key))


@lru_cache(maxsize=8)
def _nebular(wave_key: tuple, centres_key: tuple, n_young: int):
    return templates.nebular_templates(np.array(wave_key), np.array(centres_key), n_young)


@lru_cache(maxsize=8)
def _dust_emission(wave_key: tuple):
    return templates.dust_emission_templates(np.array(wave_key))


@dataclass
class Plan:
    """Torch tensors of one wavelength grid; shapes use Z metallicities, A age bins, Ay young
    bins, U log U values, W pixels, K redshift nodes, B bands."""

    wave_aa: torch.Tensor         # (W,)
    dwave_aa: torch.Tensor        # (W,)
    ssp: torch.Tensor             # (Z*A, W)
    ssp_young: torch.Tensor       # (Z*Ay, W)
    young_frac: torch.Tensor      # (A,)
    live_frac: torch.Tensor       # (Z, A)
    grid_log_z: torch.Tensor      # (Z,)
    calz: torch.Tensor            # (W,) k(λ)/4.05
    drude: torch.Tensor           # (W,) D(λ)/4.05 for E_b = 1
    ln_ratio: torch.Tensor        # (W,) ln(λ/5500)
    n_young: int
    ionizing: torch.Tensor | None = None     # (W,) 0 below 912 Å, else 1
    nebular: torch.Tensor | None = None      # (Z*U*Ay, W)
    grid_log_u: torch.Tensor | None = None   # (U,)
    dust_em: torch.Tensor | None = None      # (2*Q*U, W_ir)
    dust_norm: torch.Tensor | None = None    # (2*Q*U,)
    grid_qpah: torch.Tensor | None = None
    grid_umin: torch.Tensor | None = None
    ir_start: int = 0
    table: torch.Tensor | None = None        # (K-1, 2B, W) projection on redshift intervals
    igm_uv: torch.Tensor | None = None       # (K, W_uv) IGM transmission on redshift nodes
    n_uv: int = 0


def build_plan(wave_aa: np.ndarray, age_centres_yr: np.ndarray, age_edges_yr: np.ndarray, *,
               nebular: bool, dust_emission: bool, dtype: torch.dtype, device,
               curves=None, z_max: float = 10.0) -> Plan:
    """Resample all templates onto ``wave_aa`` (rest frame, Å) and move them to torch."""
    def t(x):
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)

    edges = bin_edges(wave_aa)
    dwave = np.diff(edges)
    st = _stellar(tuple(wave_aa), tuple(age_edges_yr))
    young = birth_cloud_fraction(age_edges_yr)
    n_young = int(np.count_nonzero(young))
    nz, na, nw = st.ssp.shape
    plan = Plan(
        wave_aa=t(wave_aa), dwave_aa=t(dwave), ssp=t(st.ssp.reshape(nz * na, nw)),
        ssp_young=t(st.ssp[:, :n_young].reshape(nz * n_young, nw)), young_frac=t(young),
        live_frac=t(st.live_frac), grid_log_z=t(st.log_z),
        calz=t(calzetti_k(wave_aa) / R_V_CALZETTI), drude=t(drude_profile(wave_aa) / R_V_CALZETTI),
        ln_ratio=t(np.log(wave_aa / V_BAND_AA)), n_young=n_young)
    if nebular:
        nb = _nebular(tuple(wave_aa), tuple(age_centres_yr), n_young)
        plan.ionizing = t((wave_aa >= LYMAN_LIMIT_AA).astype(float))
        plan.nebular = t(nb.lum.reshape(-1, nw))
        plan.grid_log_u = t(nb.log_u)
    if dust_emission:
        de = _dust_emission(tuple(wave_aa))
        plan.ir_start = int(np.searchsorted(wave_aa, DUST_EMISSION_MIN_AA))
        plan.dust_em = t(de.lum[..., plan.ir_start:].reshape(-1, nw - plan.ir_start))
        plan.dust_norm = t(de.norm.reshape(-1))
        plan.grid_qpah, plan.grid_umin = t(de.qpah), t(de.umin)
    nodes = redshift_nodes(z_max)
    plan.n_uv = int(np.searchsorted(wave_aa, 1216.0))
    plan.igm_uv = t(igm_transmission(wave_aa[:plan.n_uv], nodes))
    if curves is not None:
        table = projection_table(curves, wave_aa, dwave, nodes)
        plan.table = t(np.concatenate([table[:-1], table[1:]], axis=-1).transpose(0, 2, 1))
    return plan


def photometry_grid(wave_lo_aa: float, wave_hi_aa: float, z_max: float, dust_emission: bool,
                    dlnl: float = 0.005) -> np.ndarray:
    """Rest grid for filters spanning [wave_lo, wave_hi] (observed) up to ``z_max``: fine where
    the filters see, coarse from 100 Å to 5 µm for the absorbed energy when dust emission is on."""
    lo = wave_lo_aa / (1.0 + z_max) * np.exp(-dlnl)
    hi = wave_hi_aa * np.exp(dlnl)
    if not dust_emission:
        return piecewise_grid(lo, hi, lo, hi, dlnl_fine=dlnl)
    return piecewise_grid(lo, hi, 100.0, max(hi, 5e4), dlnl_fine=dlnl)


def spectrum_grid(wave_lo_aa: float, wave_hi_aa: float, z_max: float, dlnl: float = 2e-4) -> np.ndarray:
    """Rest grid for spectra observed over [wave_lo, wave_hi]: fine there for 0 <= z <= z_max,
    coarse from 100 Å to 1 cm so the energy budget and dust emission are complete."""
    lo = wave_lo_aa / (1.0 + z_max) * np.exp(-dlnl)
    return piecewise_grid(max(lo, 100.0), wave_hi_aa * np.exp(dlnl), 100.0, 1e8, dlnl_fine=dlnl)
