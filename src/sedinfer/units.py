"""Photometric unit conversions and physical constants.

Every function is elementwise and accepts numpy arrays, Python scalars or torch tensors,
and returns the same kind it was given (a torch tensor for a tensor, a numpy array or
numpy scalar otherwise), so it can sit inside a differentiable torch graph.

Flux unit conventions:

* maggies: linear AB flux, ``f_nu / 3631 Jy`` (1 maggy = AB magnitude 0);
* nanomaggies (nmgy): 1e-9 maggies = 3.631 µJy (AB magnitude 22.5);
* nJy, µJy: flux density in nano- and microjansky (1 Jy = 1e-23 erg/s/cm^2/Hz).

Constants:

* ``AB_ZEROPOINT_JY = 3631.0``: the AB reference flux density (Oke & Gunn 1983), Jy.
* ``C_AA_PER_S``, ``C_KM_PER_S``: speed of light, Å/s and km/s (exact SI value).
* ``L_SUN_ERG_S = 3.828e33``: nominal solar luminosity, erg/s (IAU 2015 Resolution B3).
* ``PC_CM``, ``MPC_CM``: parsec and megaparsec in cm (IAU 2015 B2: 1 pc = 648000/π au exactly).
* ``YR_PER_GYR = 1e9``: years per gigayear (ages are kept in yr on grids, Gyr in parameters).

These are the package's only definitions of them; the SPS kernels import them from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

import numpy as np
import torch

from sedinfer.errors import FilterError

AB_ZEROPOINT_JY: float = 3631.0
JY_CGS: float = 1e-23  # erg/s/cm^2/Hz per Jy
AB_ZEROPOINT_FNU_CGS: float = AB_ZEROPOINT_JY * JY_CGS  # erg/s/cm^2/Hz
C_AA_PER_S: float = 2.99792458e18
C_KM_PER_S: float = 299792.458
L_SUN_ERG_S: float = 3.828e33
PC_CM: float = 3.0856775814913673e18
MPC_CM: float = 3.0856775814913673e24
POGSON: float = 2.5 / math.log(10.0)  # 1.0857..., mag per unit fractional flux

NJY_PER_MAGGY: float = AB_ZEROPOINT_JY * 1e9
UJY_PER_MAGGY: float = AB_ZEROPOINT_JY * 1e6
MAGGIES_PER_NMGY: float = 1e-9
NMGY_PER_MAGGY: float = 1e9
YR_PER_GYR: float = 1e9

SDSS_ASINH_B: dict[str, float] = {
    "sdss_u0": 1.4e-10,
    "sdss_g0": 0.9e-10,
    "sdss_r0": 1.2e-10,
    "sdss_i0": 1.8e-10,
    "sdss_z0": 7.4e-10,
}
"""Asinh-magnitude softening ``b`` of the SDSS bands (Lupton et al. 1999), in maggies."""

WISE_ZEROPOINT_JY: dict[str, float] = {
    "wise_w1": 306.682,
    "wise_w2": 170.663,
    "wise_w3": 29.045,
    "wise_w4": 8.284,
}
"""Flux density (Jy) of a WISE Vega magnitude 0 (F_nu ∝ nu^-2 spectrum, no colour correction):
F_nu = F_nu0 10^(-0.4 m_Vega) (Wright et al. 2010, AJ 140, 1868; Jarrett et al. 2011, ApJ 735,
112; WISE All-Sky Explanatory Supplement IV.4.h). The Vega-AB offsets of the same bands are
``sedinfer.filters.VEGA_TO_AB`` (2.699, 3.339, 5.174, 6.620; Jarrett et al. 2011); they differ
from 2.5 log10(3631 Jy / F_nu0) by 0.016, 0.019, -0.068, 0.016 mag (band-shape and W3/W4
calibration terms)."""

WISE_LIMIT_5SIGMA_VEGA: dict[str, float] = {
    "wise_w1": 16.9,
    "wise_w2": 16.0,
    "wise_w3": 11.5,
    "wise_w4": 8.0,
}
"""AllWISE 5-sigma point-source limits (Vega mag) where the coverage is typical: 0.054, 0.071,
0.73, 5.0 mJy (Cutri et al. 2013, AllWISE Explanatory Supplement); the same depths in AB are
``sedinfer.noise.DEFAULT_DEPTHS``. Deeper near the ecliptic poles, shallower elsewhere."""

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor, float)


def _lib(x):
    """Return the array module (torch or numpy) matching ``x``."""
    return torch if isinstance(x, torch.Tensor) else np


def _as_array(x):
    """Leave tensors alone; turn anything else into a float64 numpy array."""
    return x if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _like(value, ref):
    """Convert ``value`` to the array type, dtype and device of ``ref``."""
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
    return np.asarray(value, dtype=np.float64)


def _out(x):
    """Return numpy 0-d arrays as numpy scalars; leave everything else alone."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


# --- Pogson magnitudes -------------------------------------------------------------------


def maggies_to_mag(maggies: ArrayT) -> ArrayT:
    """AB magnitude ``-2.5 log10(maggies)``; zero flux gives inf, negative flux nan."""
    m = _as_array(maggies)
    return _out(-2.5 * _lib(m).log10(m))


def mag_to_maggies(mag: ArrayT) -> ArrayT:
    """Linear flux in maggies from an AB magnitude: ``10**(-0.4 mag)``."""
    m = _as_array(mag)
    return _out(10.0 ** (-0.4 * m))


def mag_err_from_flux(flux: ArrayT, flux_err: ArrayT) -> ArrayT:
    """Magnitude error ``1.0857 σ_f / f`` (first order); flux and error in the same unit."""
    f, e = _as_array(flux), _as_array(flux_err)
    return _out(POGSON * e / _lib(f).abs(f))


def flux_err_from_mag_err(flux: ArrayT, mag_err: ArrayT) -> ArrayT:
    """Flux error ``f σ_m / 1.0857`` (first order), in the unit of ``flux``."""
    f, e = _as_array(flux), _as_array(mag_err)
    return _out(_lib(f).abs(f) * e / POGSON)


# --- linear flux units -------------------------------------------------------------------


def maggies_to_njy(maggies: ArrayT) -> ArrayT:
    """Flux density in nJy from maggies (1 maggy = 3631e9 nJy)."""
    return _out(_as_array(maggies) * NJY_PER_MAGGY)


def njy_to_maggies(njy: ArrayT) -> ArrayT:
    """Flux in maggies from a flux density in nJy."""
    return _out(_as_array(njy) / NJY_PER_MAGGY)


def maggies_to_ujy(maggies: ArrayT) -> ArrayT:
    """Flux density in µJy from maggies (1 maggy = 3631e6 µJy)."""
    return _out(_as_array(maggies) * UJY_PER_MAGGY)


def ujy_to_maggies(ujy: ArrayT) -> ArrayT:
    """Flux in maggies from a flux density in µJy."""
    return _out(_as_array(ujy) / UJY_PER_MAGGY)


def maggies_to_nmgy(maggies: ArrayT) -> ArrayT:
    """Flux in nanomaggies from maggies (1 nmgy = 1e-9 maggies)."""
    return _out(_as_array(maggies) * NMGY_PER_MAGGY)


def nmgy_to_maggies(nmgy: ArrayT) -> ArrayT:
    """Flux in maggies from nanomaggies."""
    return _out(_as_array(nmgy) * MAGGIES_PER_NMGY)


def nmgy_to_ujy(nmgy: ArrayT) -> ArrayT:
    """Flux density in µJy from nanomaggies (1 nmgy = 3.631 µJy)."""
    return _out(_as_array(nmgy) * (MAGGIES_PER_NMGY * UJY_PER_MAGGY))


def ujy_to_nmgy(ujy: ArrayT) -> ArrayT:
    """Flux in nanomaggies from a flux density in µJy."""
    return _out(_as_array(ujy) / (MAGGIES_PER_NMGY * UJY_PER_MAGGY))


def fnu_to_flam(wave_aa: ArrayT, fnu_cgs: ArrayT) -> ArrayT:
    """f_λ in erg/s/cm^2/Å from f_ν in erg/s/cm^2/Hz at wavelength ``wave_aa`` (Å)."""
    w, f = _as_array(wave_aa), _as_array(fnu_cgs)
    return _out(f * C_AA_PER_S / w**2)


def flam_to_fnu(wave_aa: ArrayT, flam_cgs: ArrayT) -> ArrayT:
    """f_ν in erg/s/cm^2/Hz from f_λ in erg/s/cm^2/Å at wavelength ``wave_aa`` (Å)."""
    w, f = _as_array(wave_aa), _as_array(flam_cgs)
    return _out(f * w**2 / C_AA_PER_S)


# --- asinh magnitudes (Lupton, Gunn & Szalay 1999) ---------------------------------------


def asinh_mag(flux_maggies: ArrayT, b: ArrayT) -> ArrayT:
    """Asinh magnitude ``-1.0857 [asinh(f / 2b) + ln b]``.

    ``flux_maggies`` (..., B) and softening ``b`` (maggies; scalar or (B,)) broadcast.
    Equals the Pogson magnitude for ``f >> b`` and stays finite for ``f <= 0``.
    """
    f = _as_array(flux_maggies)
    bb = _like(b, f)
    xp = _lib(f)
    return _out(-POGSON * (xp.arcsinh(f / (2.0 * bb)) + xp.log(bb)))


def asinh_mag_to_maggies(mu: ArrayT, b: ArrayT) -> ArrayT:
    """Flux in maggies from an asinh magnitude: ``2b sinh(-mu / 1.0857 - ln b)``."""
    m = _as_array(mu)
    bb = _like(b, m)
    xp = _lib(m)
    return _out(2.0 * bb * xp.sinh(-m / POGSON - xp.log(bb)))


def asinh_mag_err(flux_maggies: ArrayT, flux_err_maggies: ArrayT, b: ArrayT) -> ArrayT:
    """Asinh-magnitude error ``1.0857 σ / sqrt(f^2 + 4 b^2)`` (first order; all in maggies)."""
    f, e = _as_array(flux_maggies), _as_array(flux_err_maggies)
    bb = _like(b, f)
    return _out(POGSON * e / _lib(f).sqrt(f**2 + 4.0 * bb**2))


def flux_err_from_asinh_mag_err(flux_maggies: ArrayT, asinh_mag_err: ArrayT, b: ArrayT) -> ArrayT:
    """Flux error (maggies) ``sqrt(f^2 + 4 b^2) σ_μ / 1.0857`` from an asinh-magnitude error
    (first order, the inverse of :func:`asinh_mag_err`); ``f`` and ``b`` in maggies."""
    f, e = _as_array(flux_maggies), _as_array(asinh_mag_err)
    bb = _like(b, f)
    return _out(_lib(f).sqrt(f**2 + 4.0 * bb**2) * e / POGSON)


def asinh_softening(names: Iterable[str], default: float | None = None) -> np.ndarray:
    """Softening ``b`` (maggies) per band name, shape (B,), from :data:`SDSS_ASINH_B`.

    Bands without a known value get ``default``; with ``default=None`` they raise
    :class:`~sedinfer.errors.FilterError`.
    """
    out = []
    for name in names:
        if name in SDSS_ASINH_B:
            out.append(SDSS_ASINH_B[name])
        elif default is not None:
            out.append(float(default))
        else:
            raise FilterError(
                f"no asinh softening known for filter {name!r}; known: {sorted(SDSS_ASINH_B)}. "
                "Pass default=... (e.g. the 1-sigma sky noise in maggies) for other bands."
            )
    return np.asarray(out, dtype=np.float64)
