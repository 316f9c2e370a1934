"""Intergalactic-medium transmission of Inoue et al. (2014, MNRAS 442, 1805).

Lyman-series (LAF + DLA components, their eqs. 21–22) and Lyman-continuum (eqs. 25–28)
optical depths from the coefficient table (their Table 2) that bagpipes ships.
"""

from __future__ import annotations

import numpy as np

from sedinfer.sps.grids import load_igm_coefficients

_LYMAN_LIMIT_AA = 911.8


def _lyman_series(lam_obs: np.ndarray, zs: np.ndarray) -> np.ndarray:
    coef = load_igm_coefficients()
    lam_j = coef[:, 1][:, None, None]
    a_laf = coef[:, 2:5][:, :, None, None]
    a_dla = coef[:, 5:7][:, :, None, None]
    x = lam_obs[None] / lam_j
    inside = (lam_obs[None] > lam_j) & (lam_obs[None] < lam_j * (1.0 + zs[None]))
    laf = np.where(x < 2.2, a_laf[:, 0] * x**1.2,
                   np.where(x < 5.7, a_laf[:, 1] * x**3.7, a_laf[:, 2] * x**5.5))
    dla = np.where(x < 3.0, a_dla[:, 0] * x**2.0, a_dla[:, 1] * x**3.0)
    return np.sum(np.where(inside, laf + dla, 0.0), axis=0)


def _lyman_continuum(lam_obs: np.ndarray, zs: np.ndarray) -> np.ndarray:
    x = lam_obs / _LYMAN_LIMIT_AA
    zp = 1.0 + zs
    inside = (x > 1.0) & (x < zp)
    with np.errstate(divide="ignore", invalid="ignore"):
        laf_low = 0.325 * (x**1.2 - zp**-0.9 * x**2.1)
        laf_mid = np.where(
            x < 2.2,
            2.55e-2 * zp**1.6 * x**2.1 + 0.325 * x**1.2 - 0.25 * x**2.1,
            2.55e-2 * (zp**1.6 * x**2.1 - x**3.7))
        laf_high = np.where(
            x < 2.2,
            5.22e-4 * zp**3.4 * x**2.1 + 0.325 * x**1.2 - 3.14e-2 * x**2.1,
            np.where(x < 5.7,
                     5.22e-4 * zp**3.4 * x**2.1 + 0.218 * x**2.1 - 2.55e-2 * x**3.7,
                     5.22e-4 * (zp**3.4 * x**2.1 - x**5.5)))
        laf = np.where(zs < 1.2, laf_low, np.where(zs < 4.7, laf_mid, laf_high))
        dla_low = 0.211 * zp**2 - 7.66e-2 * zp**2.3 * x**-0.3 - 0.135 * x**2.0
        dla_high = np.where(
            x < 3.0,
            0.634 + 4.7e-2 * zp**3 - 1.78e-2 * zp**3.3 * x**-0.3 - 0.135 * x**2.0 - 0.291 * x**-0.3,
            4.7e-2 * zp**3 - 1.78e-2 * zp**3.3 * x**-0.3 - 2.92e-2 * x**3.0)
        dla = np.where(zs < 2.0, dla_low, dla_high)
    return np.where(inside, laf + dla, 0.0)


def igm_transmission(wave_rest_aa: np.ndarray, redshift: np.ndarray) -> np.ndarray:
    """Mean IGM transmission exp(-τ) for rest wavelengths (W,) at source redshifts (Z,).

    Returns (Z, W) in [0, 1]; 1 redwards of Lyα.
    """
    zs = np.atleast_1d(np.asarray(redshift, dtype=np.float64))[:, None]
    lam_obs = np.asarray(wave_rest_aa, dtype=np.float64)[None, :] * (1.0 + zs)
    tau = _lyman_series(lam_obs, zs) + _lyman_continuum(lam_obs, zs)
    return np.exp(-np.clip(tau, 0.0, None))
