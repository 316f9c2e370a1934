"""The spectrograph, kept apart from the galaxy model (STYLE principle 12).

An :class:`Instrument` holds what turns a model spectrum into data of one survey: the observed
wavelength grid, the line-spread function (LSF) and the sky mask. For SDSS (legacy
spectrographs; Smee et al. 2013, AJ 146, 32) the grid of the ``spec-PLATE-MJD-FIBER`` files is

    λ_i = 10^(3.578 + 10⁻⁴ i) Å (vacuum),  i = 0 … 3920  (3784.4 – 9332.5 Å, 3921 pixels),

log-uniform with Δlog10 λ = 10⁻⁴, i.e. c ln(10) 10⁻⁴ = 69.0 km/s per pixel. The LSF is a
Gaussian of constant velocity width at resolving power R: FWHM = c / R, σ_LSF = c / (2√(2 ln 2) R)
= 63.7 km/s for R = 2000 (0.92 pixel). The files record it per pixel (``wdisp``, σ in pixels);
the two DR18 spectra shipped with ``ppxf`` have median ``wdisp`` 0.84 and 0.89 pixel (58 and
62 km/s, R ≈ 2200 and 2100).

Because the grid is log-uniform, a constant-velocity Gaussian LSF is a Gaussian of fixed width
in pixels, applied by :meth:`Instrument.apply_lsf` with the SPS model's own FFT kernel
(:func:`sedinfer.sps.spectra.broaden`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from sedinfer.spectra.skylines import C_KMS, SKY_LINES, SkyLine, sky_mask
from sedinfer.sps.spectra import broaden

SDSS_LOGLAM0: float = 3.578
"""log10 of the first SDSS grid wavelength (Å)."""
SDSS_DLOGLAM: float = 1e-4
"""SDSS pixel size in log10 λ."""
SDSS_NPIX: int = 3921
"""Number of pixels of the SDSS grid."""
SDSS_RESOLUTION: float = 2000.0
"""Nominal resolving power λ/Δλ (FWHM) of the SDSS spectrographs."""
FWHM_PER_SIGMA: float = 2.0 * math.sqrt(2.0 * math.log(2.0))


def sdss_loglam(n_pix: int = SDSS_NPIX) -> np.ndarray:
    """log10 λ (Å) of the SDSS grid pixels, (n_pix,), float64: 3.578 + 10⁻⁴ i."""
    return SDSS_LOGLAM0 + SDSS_DLOGLAM * np.arange(n_pix, dtype=np.float64)


def sdss_wave_aa(n_pix: int = SDSS_NPIX) -> np.ndarray:
    """Vacuum wavelengths (Å) of the SDSS grid, (n_pix,): 10^(3.578 + 10⁻⁴ i)."""
    return 10.0 ** sdss_loglam(n_pix)


def lsf_sigma_kms(resolution: float) -> float:
    """Gaussian σ (km/s) of an LSF of resolving power ``resolution`` (FWHM = c / R)."""
    if not (math.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution must be finite and > 0, got {resolution}")
    return C_KMS / (FWHM_PER_SIGMA * resolution)


def _frozen(a: np.ndarray, dtype) -> np.ndarray:
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Instrument:
    """A spectrograph: a log-uniform observed grid, a Gaussian LSF and a sky mask.

    ``loglam0`` and ``dloglam`` define the grid λ_i = 10^(loglam0 + dloglam · i) Å, i < ``n_pix``;
    ``lsf_sigma_kms`` is the Gaussian LSF σ in km/s (0 for none); ``sky_lines`` are masked.
    """

    name: str
    loglam0: float
    dloglam: float
    n_pix: int
    lsf_sigma_kms: float
    sky_lines: tuple[SkyLine, ...] = SKY_LINES
    wave_obs_aa: np.ndarray = field(init=False, repr=False)
    sky_mask: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.dloglam > 0 and self.n_pix >= 2 and math.isfinite(self.loglam0)):
            raise ValueError(f"instrument {self.name!r}: need dloglam > 0 and n_pix >= 2, got "
                             f"dloglam={self.dloglam}, n_pix={self.n_pix}")
        if not (math.isfinite(self.lsf_sigma_kms) and self.lsf_sigma_kms >= 0):
            raise ValueError(f"instrument {self.name!r}: lsf_sigma_kms must be finite and >= 0, got "
                             f"{self.lsf_sigma_kms}")
        loglam = self.loglam0 + self.dloglam * np.arange(self.n_pix, dtype=np.float64)
        object.__setattr__(self, "wave_obs_aa", _frozen(10.0**loglam, np.float64))
        object.__setattr__(self, "sky_mask", _frozen(sky_mask(self.wave_obs_aa, self.sky_lines), bool))

    @property
    def loglam(self) -> np.ndarray:
        """log10 λ of the pixels, (M,)."""
        return np.log10(self.wave_obs_aa)

    @property
    def pixel_kms(self) -> float:
        """Pixel width in velocity, c ln(10) dloglam (km/s)."""
        return C_KMS * math.log(10.0) * self.dloglam

    @property
    def lsf_sigma_pix(self) -> float:
        """LSF σ in pixels."""
        return self.lsf_sigma_kms / self.pixel_kms

    def pixel_index(self, loglam: np.ndarray, tolerance_pix: float = 0.05,
                    what: str = "spectrum") -> np.ndarray:
        """Grid index (L,) of each log10 λ in ``loglam`` (L,); raises ``ValueError`` naming
        ``what`` when a wavelength is more than ``tolerance_pix`` pixels off the grid or the
        pixels are not consecutive (step ``dloglam``); indices outside [0, n_pix) are returned
        as they are."""
        loglam = np.asarray(loglam, dtype=np.float64)
        if loglam.ndim != 1 or loglam.size == 0 or not np.isfinite(loglam).all():
            raise ValueError(f"{what}: loglam must be a non-empty 1-D array of finite log10 wavelengths")
        u = (loglam - self.loglam0) / self.dloglam
        idx = np.rint(u).astype(np.int64)
        off = np.abs(u - idx)
        if off.max() > tolerance_pix or (idx.size > 1 and np.any(np.diff(idx) != 1)):
            worst = int(np.argmax(off))
            step = float(np.median(np.diff(loglam))) if loglam.size > 1 else float("nan")
            raise ValueError(
                f"{what}: wavelength grid is not the {self.name} grid 10^({self.loglam0} + "
                f"{self.dloglam:g} i) Å: pixel {worst} (log10 λ = {loglam[worst]:.6f}) is "
                f"{off[worst]:.3f} pixels off it (tolerance {tolerance_pix}); median step "
                f"{step:.3g} in log10 λ (expected {self.dloglam:g}, increasing)")
        return idx

    def apply_lsf(self, flux: torch.Tensor, extra_sigma_kms: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Convolve spectra ``flux`` (N, M) on this grid with the Gaussian LSF, optionally
        widened in quadrature by ``extra_sigma_kms`` (scalar or (N,), e.g. a velocity
        dispersion). Conserves Σ flux away from the edges (the ends are padded by replication)."""
        if flux.ndim != 2 or flux.shape[-1] != self.n_pix:
            raise ValueError(f"flux has shape {tuple(flux.shape)}; expected (N, {self.n_pix}) on the "
                             f"{self.name} grid")
        extra = torch.as_tensor(extra_sigma_kms, dtype=flux.dtype, device=flux.device).expand(flux.shape[0])
        sigma_pix = torch.sqrt(self.lsf_sigma_kms**2 + extra**2) / self.pixel_kms
        if not bool((sigma_pix > 0).any()):
            return flux
        return broaden(flux, sigma_pix)


    def fine_wave_aa(self, oversample: int) -> np.ndarray:
        """Centres (M · oversample,) of a log-uniform grid whose consecutive groups of
        ``oversample`` pixels tile each instrument pixel exactly (edges at the half-steps)."""
        if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
            raise ValueError(f"oversample must be a positive integer, got {oversample!r}")
        step = self.dloglam / oversample
        j = np.arange(self.n_pix * oversample, dtype=np.float64)
        return 10.0 ** (self.loglam0 - 0.5 * self.dloglam + (j + 0.5) * step)

    def observe(self, flux_fine: torch.Tensor, oversample: int,
                extra_sigma_kms: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Instrument pixels (N, M) from spectra ``flux_fine`` (N, M · oversample) on
        :meth:`fine_wave_aa`: convolved with the LSF widened in quadrature by
        ``extra_sigma_kms`` (scalar or (N,), e.g. the velocity dispersion), then averaged over
        each pixel with weights ∝ Δλ of the sub-pixels (flux conserving)."""
        k = int(oversample)
        if flux_fine.ndim != 2 or flux_fine.shape[-1] != self.n_pix * k:
            raise ValueError(f"flux_fine has shape {tuple(flux_fine.shape)}; expected (N, {self.n_pix * k}) "
                             f"on the {self.name} grid oversampled {k} times")
        extra = torch.as_tensor(extra_sigma_kms, dtype=flux_fine.dtype, device=flux_fine.device)
        sigma_kms = torch.sqrt(self.lsf_sigma_kms**2 + extra.expand(flux_fine.shape[0]) ** 2)
        sigma_pix = sigma_kms / (self.pixel_kms / k)
        out = broaden(flux_fine, sigma_pix) if bool((sigma_pix > 0).any()) else flux_fine
        w = 10.0 ** (np.arange(k) * self.dloglam / k)
        w = torch.as_tensor(w / w.sum(), dtype=flux_fine.dtype, device=flux_fine.device)
        return (out.reshape(out.shape[0], self.n_pix, k) * w).sum(-1)


def sdss_instrument(resolution: float = SDSS_RESOLUTION,
                    sky_lines: tuple[SkyLine, ...] = SKY_LINES) -> Instrument:
    """The SDSS legacy spectrograph: 3921 pixels from 10^3.578 Å, LSF of resolving power
    ``resolution`` (default 2000: σ = 63.7 km/s), the sky lines of :data:`SKY_LINES` masked."""
    return Instrument("SDSS", SDSS_LOGLAM0, SDSS_DLOGLAM, SDSS_NPIX, lsf_sigma_kms(resolution), sky_lines)


__all__ = ["FWHM_PER_SIGMA", "Instrument", "SDSS_DLOGLAM", "SDSS_LOGLAM0", "SDSS_NPIX", "SDSS_RESOLUTION",
           "lsf_sigma_kms", "sdss_instrument", "sdss_loglam", "sdss_wave_aa"]
