"""Attenuation curve of the image model, normalised at λ₀ (Siegel & Melchior, Eq. 5 and 8).

The paper writes A(λ) = A₀ k(λ, δ) with the Calzetti et al. (2000) polynomial times (λ/λ₀)^δ.
Its dust image D is the transmission at λ₀ = 0.4754 µm, so the per-band factor of Eq. 8 is the
curve normalised there::

    K_b(δ) = k(λ_b, δ) / k(λ₀, δ),      A_b = K_b · [-2.5 log₁₀ D]      (A_b in mag)

with k(λ, δ) = [k_Calzetti(λ) + E_b(δ) D_bump(λ)] (λ/5500 Å)^δ, the Noll et al. (2009) /
Kriek & Conroy (2013) form, bump strength E_b = 0.85 - 1.9 δ (Kriek & Conroy 2013), as in
:mod:`sedinfer.sps.dust` whose functions are reused here (the power-law pivot cancels in the
ratio). ``bump=False`` gives the paper's Eq. 5 literally (no 2175 Å bump).

λ_b is the rest-frame wavelength a band samples: its pivot wavelength / (1 + z) (the default,
exact for a band narrow compared with the curve's variation), or the band average of k
weighted by a given SED, ∫ f_λ k R λ dλ / ∫ f_λ R λ dλ, the first-order (small A) attenuation
of that SED in that band (:func:`band_curve_terms_weighted`).
"""

from __future__ import annotations

import numpy as np
import torch

from sedinfer.sps.dust import R_V_CALZETTI, V_BAND_AA, calzetti_k, drude_profile, kriek_conroy_curve

LAMBDA0_AA = 4754.0
"""Reference wavelength λ₀ of the dust image D, Å (0.4754 µm, Siegel & Melchior)."""


def curve_terms(wave_rest_aa: np.ndarray, bump: bool = True) -> np.ndarray:
    """The three wavelength-only terms of the modified Calzetti curve, (3, ...) float64:
    k_Calzetti/4.05, bump profile/4.05 (zero if not ``bump``) and ln(λ/5500 Å)."""
    lam = np.asarray(wave_rest_aa, dtype=np.float64)
    if np.any(~np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"wave_rest_aa must be finite and > 0 Å, got {lam}")
    drude = drude_profile(lam) / R_V_CALZETTI if bump else np.zeros_like(lam)
    return np.stack([calzetti_k(lam) / R_V_CALZETTI, drude, np.log(lam / V_BAND_AA)])


def attenuation_ratio(terms: torch.Tensor, terms0: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """K = k(λ, δ) / k(λ₀, δ) from precomputed :func:`curve_terms`.

    ``terms`` (3, G, B) or (3, B) at the bands, ``terms0`` (3,) at λ₀, ``delta`` (G,).
    Returns (G, B); differentiable in ``delta``.
    """
    k_band = kriek_conroy_curve(terms[0], terms[1], terms[2], delta)
    k_ref = kriek_conroy_curve(terms0[0], terms0[1], terms0[2], delta)
    return k_band / k_ref


def calzetti_k_normalised(wave_rest_aa: np.ndarray, delta: float = 0.0, bump: bool = True) -> np.ndarray:
    """k(λ, δ)/k(λ₀, δ) in numpy, for reference and plots; shape of ``wave_rest_aa``."""
    t = torch.as_tensor(curve_terms(wave_rest_aa, bump))
    t0 = torch.as_tensor(curve_terms(np.array(LAMBDA0_AA), bump))
    d = torch.tensor([float(delta)], dtype=torch.float64)
    flat = t.reshape(3, -1)
    return attenuation_ratio(flat, t0, d)[0].reshape(np.shape(wave_rest_aa)).numpy()


def band_wavelengths_rest(pivot_aa: np.ndarray, redshift: np.ndarray) -> np.ndarray:
    """Rest-frame wavelengths (G, B) that bands of pivot ``pivot_aa`` (B,) see at ``redshift`` (G,)."""
    z = np.atleast_1d(np.asarray(redshift, dtype=np.float64))
    if np.any(~np.isfinite(z)) or np.any(z < 0):
        raise ValueError(f"redshift must be finite and >= 0, got {z}")
    return np.asarray(pivot_aa, dtype=np.float64)[None, :] / (1.0 + z[:, None])


def band_curve_terms_weighted(wave_obs_aa: np.ndarray, flam: np.ndarray, trans: np.ndarray,
                              redshift: np.ndarray, bump: bool = True) -> np.ndarray:
    """SED-weighted band averages of the curve terms, (3, G, B).

    ``wave_obs_aa`` (L,) observed Å, ``flam`` (G, L) the host f_λ (any unit), ``trans`` (B, L)
    the filter curves on that grid, ``redshift`` (G,). The Calzetti and bump terms are averaged
    with weight f_λ R λ dλ. The δ power law cannot be averaged outside δ, so its log term is the
    average of ln λ; k(λ, δ) ≈ [k̄ + E_b D̄] exp(δ ⟨ln λ/5500⟩), exact at δ = 0 and to first
    order in δ times the band's spread in ln λ.
    """
    lam = np.asarray(wave_obs_aa, dtype=np.float64)
    f = np.atleast_2d(np.asarray(flam, dtype=np.float64))
    z = np.atleast_1d(np.asarray(redshift, dtype=np.float64))
    if f.shape[0] != z.shape[0] or f.shape[1] != lam.shape[0]:
        raise ValueError(f"flam must be (G, L) = ({z.shape[0]}, {lam.shape[0]}), got {f.shape}")
    dlam = np.gradient(lam)
    w = f[:, None, :] * (np.asarray(trans)[None] * lam * dlam)              # (G, B, L)
    norm = w.sum(-1)
    if np.any(norm <= 0):
        raise ValueError("an SED gives zero flux in a band: cannot weight the curve by it")
    rest = lam[None, :] / (1.0 + z[:, None])                                  # (G, L)
    t = np.stack([curve_terms(r, bump) for r in rest], 1)                    # (3, G, L)
    return np.einsum("kgl,gbl->kgb", t, w) / norm[None]


__all__ = ["LAMBDA0_AA", "curve_terms", "attenuation_ratio", "calzetti_k_normalised",
           "band_wavelengths_rest", "band_curve_terms_weighted"]
