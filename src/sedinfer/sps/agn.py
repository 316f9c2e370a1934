"""Hot-dust (torus) emission of an active nucleus, analytic.

The torus is a superposition of blackbodies with its luminosity spread uniformly in ln T between
the sublimation temperature of graphite grains, T_sub = 1500 K (Barvainis 1987; the inner edge
of the clumpy tori of Nenkova et al. 2008), and T_min = 150 K:

    L_λ^AGN(λ) = L_AGN · 1/ln(T_sub/T_min) ∫ b_λ(λ, T) d ln T,
    b_λ(λ, T) = π B_λ(T) / (σ T⁴) = (15/π⁴) x⁴ / [λ (eˣ − 1)],  x = hc / (λ k T),

each b_λ integrating to 1 over λ, so the template integrates to L_AGN exactly. Each blackbody's
νL_ν peaks at λT = 3670 µm K (2.4 µm at T_sub, 24 µm at T_min), so the sum is a broad bump in
νL_ν: a Wien cut-off e^(−9.6 µm / λ) bluewards of ~2 µm (no dust hotter than sublimation; 1.3 %
of the maximum at 1 µm, 12 % at 1.5 µm), half the maximum at 2.7 µm, 68 % and 84 % at the WISE
W1 and W2 wavelengths (3.4, 4.6 µm), the maximum near 10 µm, half of it at 30 µm and 3 % at
100 µm. This is the shape of the near-IR hot-dust emission of quasars (1200–1500 K: Barvainis
1987, Glikman et al. 2006) joined to a mid-IR plateau that turns over at a few tens of µm, like
the mean intrinsic AGN SED of Mullaney et al. (2011), which breaks at ≈ 19 µm and falls steeply
beyond 40 µm. νL_ν rising from W1 to W2 makes W1 − W2 redder than the 0.97 Vega mag of a flat
νL_ν at z = 0, so an AGN-dominated galaxy meets the Stern et al. (2012) criterion W1 − W2 ≥ 0.8.

The luminosity is set by ``f_agn``, the torus luminosity in units of the bolometric luminosity
of the galaxy's intrinsic (unattenuated) stellar populations, L_AGN = f_agn · L_bol,* (the
definition of Prospector's ``fagn``, Leja et al. 2018). The torus is not attenuated by the
galaxy's dust (its light is emitted mostly redwards of 2 µm, where the Calzetti curve is < 0.1
A_V, and the Kriek & Conroy curves vanish beyond 3.1 µm) and does not enter the dust energy balance; the
accretion disc and broad lines are not modelled (an obscured, type-2 view).
"""

from __future__ import annotations

import numpy as np
import torch
from astropy import constants

#: Sublimation temperature of graphite grains (K), the hottest dust of the torus.
T_SUBLIMATION_K = 1500.0
#: Temperature of the coolest torus dust (K); νL_ν turns over near 3670 µm K / T_min = 24 µm.
T_MIN_K = 150.0
#: hc / k (second radiation constant) in Å K.
_HC_OVER_K_AA_K = float((constants.h * constants.c / constants.k_B).to("Angstrom K").value)


def blackbody_per_unit_luminosity(wave_aa: np.ndarray, temp_k: np.ndarray) -> np.ndarray:
    """π B_λ(T) / (σ T⁴) in 1/Å: a blackbody spectrum of unit luminosity, (W,) × (T,) -> (T, W)."""
    lam = np.asarray(wave_aa, dtype=np.float64)[None, :]
    x = _HC_OVER_K_AA_K / (lam * np.asarray(temp_k, dtype=np.float64)[:, None])
    with np.errstate(over="ignore", under="ignore"):
        # x⁴ / (eˣ − 1) written with e^-x so that large x underflows to 0 instead of inf/inf
        return 15.0 / np.pi**4 * x**4 * np.exp(-x) / (-np.expm1(-x)) / lam


def torus_template(wave_aa: np.ndarray, t_sub_k: float = T_SUBLIMATION_K, t_min_k: float = T_MIN_K,
                   n_temp: int = 400) -> np.ndarray:
    """Torus L_λ per unit torus luminosity (1/Å) at rest wavelengths ``wave_aa`` (W,) -> (W,).

    Luminosity uniform in ln T on [``t_min_k``, ``t_sub_k``], integrated by the midpoint rule on
    ``n_temp`` temperatures (the result is smooth; 400 nodes reach 1e-6 relative accuracy).
    """
    if not 0.0 < t_min_k < t_sub_k:
        raise ValueError(f"need 0 < t_min_k < t_sub_k, got t_min_k={t_min_k}, t_sub_k={t_sub_k}")
    edges = np.linspace(np.log(t_min_k), np.log(t_sub_k), n_temp + 1)
    temps = np.exp(0.5 * (edges[1:] + edges[:-1]))
    return blackbody_per_unit_luminosity(wave_aa, temps).mean(0)


def torus_luminosity(f_agn: torch.Tensor, lbol_star: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Torus L_λ (N, W) = f_agn (N,) · L_bol,* (N,) · template (W,), in the units of L_bol,* per Å."""
    return (f_agn * lbol_star).unsqueeze(-1) * template


__all__ = ["T_SUBLIMATION_K", "T_MIN_K", "blackbody_per_unit_luminosity", "torus_template",
           "torus_luminosity"]
