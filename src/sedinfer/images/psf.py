"""Point-spread functions and their differentiable FFT convolution with image cubes.

PSF images are pixel-integrated, odd-sized and centred on the middle pixel ``(n // 2, n // 2)``,
normalised to unit sum (flux conserving). :func:`convolve_fft` does a linear (zero-padded, not
circular) convolution with ``torch.fft`` and crops the result to the input's size, so the
image centre stays at the same pixel; flux that the PSF carries beyond the stamp is lost, as on
a cutout.

* Gaussian: exact pixel integrals from the error function; σ = FWHM / (2 √(2 ln 2)).
* Moffat (1969): I(r) ∝ [1 + (r/α)²]^-β with α = FWHM / (2 √(2^(1/β) - 1)), integrated over
  each pixel on an ``oversample`` × ``oversample`` sub-grid.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import erf

from sedinfer.images.errors import ImageError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _check_psf_args(fwhm_arcsec: float, pixel_scale_arcsec: float, size: int) -> None:
    if not (np.isfinite(fwhm_arcsec) and fwhm_arcsec > 0):
        raise ImageError(f"fwhm_arcsec must be finite and > 0, got {fwhm_arcsec}")
    if not (np.isfinite(pixel_scale_arcsec) and pixel_scale_arcsec > 0):
        raise ImageError(f"pixel_scale_arcsec must be finite and > 0, got {pixel_scale_arcsec}")
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ImageError(f"PSF size must be an odd number of pixels >= 1, got {size}")


def gaussian_psf(fwhm_arcsec: float, pixel_scale_arcsec: float, size: int = 25) -> np.ndarray:
    """Pixel-integrated circular Gaussian PSF, (size, size), unit sum."""
    _check_psf_args(fwhm_arcsec, pixel_scale_arcsec, size)
    sigma_pix = fwhm_arcsec / FWHM_PER_SIGMA / pixel_scale_arcsec
    edges = np.arange(size + 1, dtype=np.float64) - size / 2.0
    g = np.diff(erf(edges / (math.sqrt(2.0) * sigma_pix))) / 2.0
    psf = np.outer(g, g)
    return psf / psf.sum()


def moffat_psf(fwhm_arcsec: float, pixel_scale_arcsec: float, beta: float = 3.0, size: int = 25,
               oversample: int = 5) -> np.ndarray:
    """Pixel-integrated circular Moffat PSF of index ``beta`` (> 1), (size, size), unit sum."""
    _check_psf_args(fwhm_arcsec, pixel_scale_arcsec, size)
    if not beta > 1.0:
        raise ImageError(f"Moffat beta must be > 1 (finite flux), got {beta}")
    alpha_pix = fwhm_arcsec / pixel_scale_arcsec / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    n = size * oversample
    x = (np.arange(n) + 0.5) / oversample - size / 2.0
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    fine = (1.0 + r2 / alpha_pix**2) ** (-beta)
    psf = fine.reshape(size, oversample, size, oversample).sum((1, 3))
    return psf / psf.sum()


def psf_cube(psfs: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """Stack per-band PSFs (B, h, w) into a float64 tensor after checking them."""
    cube = torch.as_tensor(np.asarray(psfs, dtype=np.float64))
    if cube.ndim != 3 or cube.shape[-1] % 2 == 0 or cube.shape[-2] % 2 == 0:
        raise ImageError(f"PSF cube must be (B, h, w) with odd h and w, got {tuple(cube.shape)}")
    if not torch.isfinite(cube).all() or (cube < 0).any():
        raise ImageError("PSF images must be finite and >= 0")
    sums = cube.sum((-1, -2), keepdim=True)
    if (sums <= 0).any():
        raise ImageError("a PSF image has zero total: cannot normalise it")
    return cube / sums


def psf_transfer(psf: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """rFFT of the PSFs (..., h, w) zero-padded for a linear convolution with images of
    ``image_shape`` (H, W): shape (..., H + h - 1, (W + w - 1) // 2 + 1), complex."""
    h, w = psf.shape[-2:]
    ph, pw = image_shape[0] + h - 1, image_shape[1] + w - 1
    return torch.fft.rfft2(psf, s=(ph, pw))


def convolve_fft(images: torch.Tensor, psf: torch.Tensor | None = None,
                 transfer: torch.Tensor | None = None, psf_shape: tuple[int, int] | None = None
                 ) -> torch.Tensor:
    """Linear convolution of ``images`` (..., B, H, W) with per-band PSFs (B, h, w) (odd h, w,
    centred), cropped to (..., B, H, W). Give either ``psf`` or its precomputed ``transfer``
    (:func:`psf_transfer`) with ``psf_shape`` (h, w). Differentiable in ``images`` and ``psf``."""
    if transfer is None:
        if psf is None:
            raise ImageError("convolve_fft needs psf or transfer")
        psf_shape = tuple(psf.shape[-2:])
        transfer = psf_transfer(psf.to(images.dtype), tuple(images.shape[-2:]))
    elif psf_shape is None:
        raise ImageError("convolve_fft with a precomputed transfer needs psf_shape (h, w)")
    h, w = psf_shape
    big_h, big_w = images.shape[-2] + h - 1, images.shape[-1] + w - 1
    full = torch.fft.irfft2(torch.fft.rfft2(images, s=(big_h, big_w)) * transfer, s=(big_h, big_w))
    top, left = h // 2, w // 2
    return full[..., top:top + images.shape[-2], left:left + images.shape[-1]]


__all__ = ["FWHM_PER_SIGMA", "gaussian_psf", "moffat_psf", "psf_cube", "psf_transfer", "convolve_fft"]
