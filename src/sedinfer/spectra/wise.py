"""WISE W1–W4 photometry of mock galaxies as the AllWISE catalog reports it.

True fluxes (AB maggies, from :meth:`sedinfer.SPSModel.photometry`) get the package's survey-depth
noise (:func:`sedinfer.noise.default_noise_model`: the AllWISE 5σ limits 16.9, 16.0, 11.5, 8.0
Vega mag, a 1 % calibration floor and 10 % scatter of the S/N). Negative measured fluxes are
kept, as a catalog would measure them. Magnitudes are Vega: m_Vega = m_AB − Δ with the offsets
Δ = 2.699, 3.339, 5.174, 6.620 of Jarrett et al. (2011) (:data:`sedinfer.filters.VEGA_TO_AB`).

As in AllWISE (Cutri et al. 2013, §II.1.a ``wNmpro``, ``wNsigmpro``), a band whose measured
S/N is below 2 is a non-detection: ``wNmpro`` holds the 95 % confidence upper limit, here the
magnitude of max(f, 0) + 2σ, and ``wNsigmpro`` is null (NaN). ``wNsnr`` is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sedinfer.filters import VEGA_TO_AB
from sedinfer.noise import NoiseModel, default_noise_model
from sedinfer.units import AB_ZEROPOINT_JY, POGSON, WISE_ZEROPOINT_JY

WISE_BANDS: tuple[str, ...] = ("wise_w1", "wise_w2", "wise_w3", "wise_w4")
"""sedpy names of the WISE filters, in band order."""
DETECTION_SNR: float = 2.0
"""Measured S/N below which AllWISE reports an upper limit."""


def wise_columns(prefix: str = "w") -> dict[str, list[str]]:
    """AllWISE column names: ``{"mpro": ["w1mpro", …], "sigmpro": […], "snr": […]}``."""
    return {kind: [f"{prefix}{i}{kind}" for i in range(1, 5)] for kind in ("mpro", "sigmpro", "snr")}


def _offsets(bands) -> np.ndarray:
    return np.array([VEGA_TO_AB[b] for b in bands], dtype=np.float64)


def vega_to_jy(mag_vega: np.ndarray, bands=WISE_BANDS) -> np.ndarray:
    """Flux density (Jy) of WISE Vega magnitudes (..., B): F_nu0 10^(-0.4 m) (Wright et al. 2010)."""
    f0 = np.array([WISE_ZEROPOINT_JY[b] for b in bands])
    return f0 * 10.0 ** (-0.4 * np.asarray(mag_vega, dtype=np.float64))


def jy_to_vega(flux_jy: np.ndarray, bands=WISE_BANDS) -> np.ndarray:
    """WISE Vega magnitudes of flux densities (..., B) in Jy (inverse of :func:`vega_to_jy`)."""
    f0 = np.array([WISE_ZEROPOINT_JY[b] for b in bands])
    return -2.5 * np.log10(np.asarray(flux_jy, dtype=np.float64) / f0)


def ab_to_vega(mag_ab: np.ndarray, bands=WISE_BANDS) -> np.ndarray:
    """Vega magnitudes from AB magnitudes (..., B): m_AB − Δ (Jarrett et al. 2011)."""
    return np.asarray(mag_ab, dtype=np.float64) - _offsets(bands)


def vega_to_ab(mag_vega: np.ndarray, bands=WISE_BANDS) -> np.ndarray:
    """AB magnitudes from Vega magnitudes (..., B): m_Vega + Δ."""
    return np.asarray(mag_vega, dtype=np.float64) + _offsets(bands)


def maggies_to_vega(maggies: np.ndarray, bands=WISE_BANDS) -> np.ndarray:
    """Vega magnitudes of AB fluxes in maggies (..., B); NaN for f ≤ 0."""
    f = np.asarray(maggies, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = -2.5 * np.log10(np.where(f > 0, f, np.nan))
    return ab_to_vega(mag, bands)


@dataclass
class WisePhotometry:
    """AllWISE-like photometry of N galaxies, each array (N, 4) in band order W1–W4.

    ``mpro_vega``: magnitude, or the 95 % upper limit for non-detections; ``sigmpro_vega``:
    1σ error (NaN for non-detections); ``snr``: measured S/N; ``detected``: S/N ≥ 2;
    ``flux_maggies``, ``sigma_maggies``: measured AB flux and its σ; ``true_vega``: noiseless
    magnitude.
    """

    mpro_vega: np.ndarray
    sigmpro_vega: np.ndarray
    snr: np.ndarray
    detected: np.ndarray
    flux_maggies: np.ndarray
    sigma_maggies: np.ndarray
    true_vega: np.ndarray

    @property
    def jy(self) -> np.ndarray:
        """Measured flux densities in Jy, (N, 4)."""
        return self.flux_maggies * AB_ZEROPOINT_JY


def catalog_entries(flux_maggies: np.ndarray, sigma_maggies: np.ndarray, bands=WISE_BANDS,
                    detection_snr: float = DETECTION_SNR
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mpro, sigmpro, snr, detected), each (N, B), from measured AB fluxes and σ (maggies):
    Vega magnitudes and POGSON σ/f for S/N ≥ ``detection_snr``; otherwise the magnitude of
    max(f, 0) + 2σ and a NaN error."""
    f = np.asarray(flux_maggies, dtype=np.float64)
    s = np.asarray(sigma_maggies, dtype=np.float64)
    if f.shape != s.shape or f.shape[-1] != len(bands):
        raise ValueError(f"flux and sigma must both be (N, {len(bands)}), got {f.shape} and {s.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError("sigma_maggies must be finite and > 0 in every band")
    snr = f / s
    detected = snr >= detection_snr
    limit = np.maximum(f, 0.0) + 2.0 * s
    mpro = maggies_to_vega(np.where(detected, f, limit), bands)
    sigmpro = np.where(detected, POGSON * s / np.where(detected, f, 1.0), np.nan)
    return mpro, sigmpro, snr, detected


def observe_wise(flux_true_maggies: torch.Tensor | np.ndarray, generator: torch.Generator | None = None,
                 noise: NoiseModel | None = None, detection_snr: float = DETECTION_SNR) -> WisePhotometry:
    """Noisy AllWISE-like photometry of true fluxes (N, 4) in AB maggies (W1–W4).

    ``noise`` defaults to :func:`sedinfer.noise.default_noise_model` of :data:`WISE_BANDS`.
    """
    noise = noise or default_noise_model(list(WISE_BANDS))
    if tuple(noise.bands) != WISE_BANDS:
        raise ValueError(f"noise model bands {list(noise.bands)}; expected {list(WISE_BANDS)}")
    f = torch.as_tensor(flux_true_maggies, dtype=torch.float64)
    noisy, sigma = noise.add_noise(f, generator=generator, redraw_negative=False)
    noisy, sigma = noisy.numpy(), sigma.numpy()
    mpro, sigmpro, snr, detected = catalog_entries(noisy, sigma, WISE_BANDS, detection_snr)
    return WisePhotometry(mpro, sigmpro, snr, detected, noisy, sigma, maggies_to_vega(f.numpy()))


__all__ = ["DETECTION_SNR", "WISE_BANDS", "WisePhotometry", "ab_to_vega", "catalog_entries", "jy_to_vega",
           "maggies_to_vega", "observe_wise", "vega_to_ab", "vega_to_jy", "wise_columns"]
