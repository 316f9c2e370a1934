"""Dust attenuation curves.

* Calzetti et al. (2000) starburst curve k(λ) with R_V = 4.05, continued below 1200 Å by
  the power law (λ/1200 Å)^-0.77 that keeps it continuous, and clipped at zero redwards of
  ~3.1 µm where the polynomial crosses zero.
* The Noll et al. (2009) / Kriek & Conroy (2013) modification used by PROVABGS/PopSED:
  A(λ)/A_V = [k(λ) + D(λ)] / 4.05 · (λ / 5500 Å)^δ with a Drude UV bump
  D(λ) = E_b (λ Δλ)² / [(λ² - λ₀²)² + (λ Δλ)²], λ₀ = 2175 Å, Δλ = 350 Å and
  E_b = 0.85 - 1.9 δ (Kriek & Conroy 2013).
* Charlot & Fall (2000) two components: birth clouds (optical depth ``tau_bc`` at 5500 Å)
  on stars younger than 10 Myr, diffuse ISM (``tau_ism``) on all stars. As in FSPS
  (``dust_type=4``, Conroy et al. 2009) and hence PROVABGS/PopSED, the birth clouds follow a
  power law, T_bc(λ) = exp[-τ_bc (λ / 5500 Å)^n_bc] with n_bc = ``dust1_index`` = -1 by
  default, and the diffuse ISM the Kriek & Conroy curve, T_ism(λ) = exp[-τ_ism A(λ; δ)/A_V].
  The older choice, the Kriek & Conroy curve for both, is :func:`charlot_fall` without
  ``bc_curve``; power laws for both (the original Charlot & Fall 2000 model, FSPS
  ``dust_type=0``, bagpipes' ``CF00``) are :func:`charlot_fall_curves`.

The Kriek & Conroy curve is set to zero redwards of 3.115 µm, where the Calzetti polynomial
reaches zero; the Drude term, a UV feature, is cut there too, so the diffuse ISM does not
attenuate in the mid-IR. The birth-cloud power law has no cut (FSPS applies it at every λ).
"""

from __future__ import annotations

import numpy as np
import torch

R_V_CALZETTI = 4.05
BUMP_CENTRE_AA = 2175.0
BUMP_WIDTH_AA = 350.0
V_BAND_AA = 5500.0
BIRTH_CLOUD_AGE_YR = 1e7
#: k(λ) of Calzetti et al. (2000) reaches zero here: 1.040 / (1.857 - 4.05 / 2.659) µm.
ATTENUATION_MAX_AA = 1.040 / (1.857 - R_V_CALZETTI / 2.659) * 1e4


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
    return np.where(lam < ATTENUATION_MAX_AA, lw / ((lam**2 - BUMP_CENTRE_AA**2) ** 2 + lw), 0.0)


def kriek_conroy_curve(calz_over_rv: torch.Tensor, drude: torch.Tensor, ln_ratio: torch.Tensor,
                       delta: torch.Tensor) -> torch.Tensor:  # noqa: D417
    """A(λ)/A_V of the modified Calzetti curve for slopes ``delta`` (N,) -> (N, W).

    ``calz_over_rv`` = k(λ)/4.05, ``drude`` = D(λ)/4.05 for E_b = 1 and
    ``ln_ratio`` = ln(λ/5500 Å), all (W,) buffers.
    """
    d = delta.unsqueeze(-1)
    e_bump = 0.85 - 1.9 * d
    return (calz_over_rv + e_bump * drude) * torch.exp(d * ln_ratio)


def power_law_curve(ln_ratio: torch.Tensor, index) -> torch.Tensor:
    """Birth-cloud curve A(λ)/A_V = (λ / 5500 Å)^index from ``ln_ratio`` = ln(λ/5500 Å).

    ``ln_ratio`` (W,); ``index`` a float (-> (W,)) or an (N,) tensor (-> (N, W)).
    """
    if isinstance(index, torch.Tensor) and index.ndim:
        return torch.exp(index.unsqueeze(-1) * ln_ratio)
    return torch.exp(index * ln_ratio)


def charlot_fall(terms: torch.Tensor, delta: torch.Tensor, tau_ism: torch.Tensor, tau_bc: torch.Tensor,
                 old: torch.Tensor, young: torch.Tensor, rows: int = 512,
                 bc_curve: torch.Tensor | None = None) -> torch.Tensor:
    """Charlot & Fall (2000) attenuation T_ism · [old + T_bc · young] with the Kriek & Conroy
    curve A(λ; δ) for the diffuse ISM, T_ism = exp(-τ_ism A).

    ``terms`` (3, V) are the curve terms of :func:`kriek_conroy_curve` on the first V <= W
    pixels (the curve is zero beyond); ``delta``, ``tau_ism``, ``tau_bc`` (N,); ``old``,
    ``young`` (N, W). ``bc_curve``: the birth-cloud A(λ)/A_V on all W pixels, (W,) or (N, W)
    (e.g. :func:`power_law_curve`), T_bc = exp(-τ_bc bc_curve); ``None``: the Kriek & Conroy
    curve for the birth clouds too. Without autograd it runs in place on blocks of ``rows``
    galaxies so the temporaries stay in cache (about 2x faster on a CPU).
    """
    if bc_curve is not None:
        return _charlot_fall_bc(terms, delta, tau_ism, tau_bc, old, young, bc_curve, rows)
    tism, tbc = tau_ism.unsqueeze(-1), tau_bc.unsqueeze(-1)
    v = terms.shape[-1]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (delta, tau_ism, tau_bc, old, young)):
        curve = kriek_conroy_curve(*terms, delta)
        att = torch.exp(-tism * curve) * (old[:, :v] + torch.exp(-tbc * curve) * young[:, :v])
        return torch.cat([att, old[:, v:] + young[:, v:]], -1)
    out = torch.add(old, young)
    c, d, r = terms
    for s in range(0, old.shape[0], rows):
        sl = slice(s, s + rows)
        dl = delta[sl].unsqueeze(-1)
        curve = torch.mul(dl, r).exp_().mul_(torch.addcmul(c, 0.85 - 1.9 * dl, d))
        t_ism = torch.mul(curve, -tism[sl]).exp_()
        curve.mul_(-tbc[sl]).exp_()
        out[sl, :v] = torch.addcmul(old[sl, :v], curve, young[sl, :v]).mul_(t_ism)
    return out


def charlot_fall_curves(ism_curve: torch.Tensor, bc_curve: torch.Tensor, tau_ism: torch.Tensor,
                        tau_bc: torch.Tensor, old: torch.Tensor, young: torch.Tensor) -> torch.Tensor:
    """Charlot & Fall attenuation exp(-τ_ism A_ism) [old + exp(-τ_bc A_bc) young] with both curves
    A/A_V given on all W pixels, (W,) or (N, W) (e.g. the power laws of the original model,
    Charlot & Fall 2000, FSPS ``dust_type=0``); ``tau_ism``, ``tau_bc`` (N,); ``old``, ``young``
    (N, W)."""
    t_ism = torch.exp(-tau_ism.unsqueeze(-1) * ism_curve)
    return t_ism * (old + torch.exp(-tau_bc.unsqueeze(-1) * bc_curve) * young)


def _charlot_fall_bc(terms, delta, tau_ism, tau_bc, old, young, bc_curve, rows):
    """:func:`charlot_fall` with a separate birth-cloud curve ``bc_curve`` (W,) or (N, W)."""
    tism, tbc = tau_ism.unsqueeze(-1), tau_bc.unsqueeze(-1)
    v = terms.shape[-1]
    tensors = (delta, tau_ism, tau_bc, old, young, bc_curve)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        t_ism = torch.exp(-tism * kriek_conroy_curve(*terms, delta))
        seen = old + torch.exp(-tbc * bc_curve) * young
        return torch.cat([t_ism * seen[:, :v], seen[:, v:]], -1)
    out = torch.empty_like(old)
    c, d, r = terms
    per_row = bc_curve.ndim == 2
    for s in range(0, old.shape[0], rows):
        sl = slice(s, s + rows)
        dl = delta[sl].unsqueeze(-1)
        t_bc = torch.mul(bc_curve[sl] if per_row else bc_curve, -tbc[sl]).exp_()
        out[sl] = torch.addcmul(old[sl], t_bc, young[sl])
        curve = torch.mul(dl, r).exp_().mul_(torch.addcmul(c, 0.85 - 1.9 * dl, d))
        out[sl, :v] *= curve.mul_(-tism[sl]).exp_()
    return out


def birth_cloud_fraction(edges_yr: np.ndarray, t_bc_yr: float = BIRTH_CLOUD_AGE_YR) -> np.ndarray:
    """Fraction of each age bin [e_k, e_k+1] younger than ``t_bc_yr`` (mass uniform in time)."""
    lo, hi = edges_yr[:-1], edges_yr[1:]
    return np.clip((t_bc_yr - lo) / (hi - lo), 0.0, 1.0)
