"""Projection of rest-frame spectra onto observed-frame filter fluxes.

For a galaxy at redshift z with rest-frame luminosity density L_λ (pixel means, L_sun/Å)
the photon-counting AB flux in band b is

    f_b [maggies] = (1 + z) / (4π d_L²) · Σ_j L_j R_b(λ_j (1+z)) T_IGM(z, λ_j) λ_j Δλ_j
                    / ∫ f_λ^AB R_b(λ) λ dλ,

with f_λ^AB the 3631 Jy reference spectrum. Everything except L and d_L depends only on
(z, λ_j), so it is tabulated once per filter set on a grid of redshift nodes (Δz = 0.005)
and interpolated linearly in z. Galaxies are grouped by redshift interval so that each group
is one small matrix product: no per-galaxy gather, no Python loop over galaxies.
"""

from __future__ import annotations

import numpy as np
import torch

from sedinfer.sps.batching import grouped_matmul
from sedinfer.sps.igm import igm_transmission
from sedinfer.units import AB_ZEROPOINT_FNU_CGS, C_AA_PER_S, L_SUN_ERG_S, MPC_CM

DZ_NODE = 0.005


def redshift_nodes(z_max: float) -> np.ndarray:
    return np.arange(0.0, z_max + 2 * DZ_NODE - 1e-12, DZ_NODE)


def projection_table(curves, wave_aa: np.ndarray, dwave_aa: np.ndarray, z_nodes: np.ndarray) -> np.ndarray:
    """(K, W, B) table; multiply by L_j [L_sun/Å] and divide by d_L² [Mpc²] to get maggies.

    ``curves`` is a sequence of ``(wave_aa, trans)`` filter transmission curves.
    """
    zp1 = 1.0 + z_nodes[:, None]
    igm = igm_transmission(wave_aa, z_nodes)                      # (K, W)
    base = igm * wave_aa * dwave_aa * zp1 * L_SUN_ERG_S / (4 * np.pi * MPC_CM**2)
    table = np.empty((len(z_nodes), len(wave_aa), len(curves)))
    for b, (fw, ft) in enumerate(curves):
        norm = AB_ZEROPOINT_FNU_CGS * C_AA_PER_S * np.trapezoid(ft / fw, fw)
        resp = np.interp(wave_aa[None, :] * zp1, fw, ft, left=0.0, right=0.0)
        table[:, :, b] = base * resp / norm
    return table


def project(lum: torch.Tensor, redshift: torch.Tensor, table: torch.Tensor, first: int = 0) -> torch.Tensor:
    """Fluxes (N, B) at d_L = 1 Mpc from rest-frame spectra ``lum`` (N, W) [L_sun/Å].

    ``table`` (K-1, 2B, W) holds, for each redshift interval [z_k, z_k+1], the projection
    tables of both nodes stacked (see :func:`projection_table`); galaxies are grouped by
    interval (:func:`~sedinfer.sps.batching.grouped_matmul`) and the two nodes interpolated
    linearly in z. ``table`` may start at interval ``first`` (a slice of the full table).
    """
    n_int, nb = table.shape[0], table.shape[1] // 2
    u = (redshift / DZ_NODE).to(lum.dtype)
    k = u.detach().floor().long().clamp(first, first + n_int - 1)
    frac = (u - k.to(u.dtype)).unsqueeze(-1)
    both = grouped_matmul(lum, k - first, table, transposed=True)
    return both[:, :nb] * (1 - frac) + both[:, nb:] * frac
