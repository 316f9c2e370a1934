"""Dust attenuation curves.

* Calzetti et al. (2000) starburst curve k(λ) with R_V = 4.05, continued below 1200 Å by
  the power law (λ/1200 Å)^-0.77 that keeps it continuous, and clipped at zero redwards of
  ~3.1 µm where the polynomial crosses zero.
* The Noll et al. (2009) / Kriek & Conroy (2013) modification used by PROVABGS/PopSED:
  A(λ)/A_V = [k(λ) + D(λ)] / 4.05 · (λ / 5500 Å)^δ with a Drude UV bump
  D(λ) = E_b (λ Δλ)² / [(λ² - λ₀²)² + (λ Δλ)²], λ₀ = 2175 Å, Δλ = 350 Å and
  E_b = 0.85 - 1.9 δ (Kriek & Conroy 2013).
* Charlot & Fall (2000) two components: birth clouds (optical depth ``tau_bc`` at 5500 Å)
  on stars younger than 10 Myr, diffuse ISM (``tau_ism``) on all stars; transmission
  exp(-τ A(λ)/A_V).
"""

from __future__ import annotations

import numpy as np
import torch

R_V_CALZETTI = 4.05
BUMP_CENTRE_AA = 2175.0
BUMP_WIDTH_AA = 350.0
V_BAND_AA = 5500.0
BIRTH_CLOUD_AGE_YR = 1e7


def calzetti_k(wave_aa: np.ndarray) -> np.ndarray:
    """Calzetti et al. (2000) k(λ) = A(λ)/E(B-V) (numpy, (W,))."""
    lam = np.asarray(wave_aa, dtype=np.float64) / 1e4
    blue = R_V_CALZETTI + 2.659 * (-2.156 + 1.509 / lam - 0.198 / lam**2 + 0.011 / lam**3)
    red = R_V_CALZETTI + 2.659 * (-1.857 + 1.040 / lam)
    l12 = 0.12
    k12 = R_V_CALZETTI + 2.659 * (-2.156 + 1.509 / l12 - 0.198 / l12**2 + 0.011 / l12**3)
    uv = k12 * (lam / l12) ** -0.77
    k = np.where(lam < l12, uv, np.where(lam < 0.63, blue, red))
    return np.clip(k, 0.0, None)


def drude_profile(wave_aa: np.ndarray) -> np.ndarray:
    """Shape of the 2175 Å bump for unit E_b, (W,)."""
    lam = np.asarray(wave_aa, dtype=np.float64)
    lw = (lam * BUMP_WIDTH_AA) ** 2
    return lw / ((lam**2 - BUMP_CENTRE_AA**2) ** 2 + lw)


def kriek_conroy_curve(calz_over_rv: torch.Tensor, drude: torch.Tensor, ln_ratio: torch.Tensor,
                       delta: torch.Tensor) -> torch.Tensor:  # noqa: D417
    """A(λ)/A_V of the modified Calzetti curve for slopes ``delta`` (N,) -> (N, W).

    ``calz_over_rv`` = k(λ)/4.05, ``drude`` = D(λ)/4.05 for E_b = 1 and
    ``ln_ratio`` = ln(λ/5500 Å), all (W,) buffers.
    """
    d = delta.unsqueeze(-1)
    e_bump = 0.85 - 1.9 * d
    return (calz_over_rv + e_bump * drude) * torch.exp(d * ln_ratio)


def birth_cloud_fraction(edges_yr: np.ndarray, t_bc_yr: float = BIRTH_CLOUD_AGE_YR) -> np.ndarray:
    """Fraction of each age bin [e_k, e_k+1] younger than ``t_bc_yr`` (mass uniform in time)."""
    lo, hi = edges_yr[:-1], edges_yr[1:]
    return np.clip((t_bc_yr - lo) / (hi - lo), 0.0, 1.0)
