"""The observation side of the image model: bands, pixel scale, PSFs and noise (STYLE.md §12).

An :class:`Instrument` knows nothing of galaxies: it holds the filter set, the pixel scale, one
PSF per band (with its FFT as a buffer) and a default sky noise per band, and turns a noiseless
scene cube (G, B, H, W) in nJy per pixel into what the camera records: PSF-convolved, and with
Gaussian noise drawn from a variance image.

Sky noise from a 5σ point-source depth m₅ in an aperture of diameter d (sky-limited, noise
uncorrelated between pixels)::

    σ_pix = f₅ / 5 / √(π (d/2)² / p²),     f₅ = 10^(-0.4 (m₅ - 31.4)) nJy

HSC-SSP Wide defaults (:func:`hsc_instrument`): p = 0.168″ (Aihara et al. 2018a, PASJ 70, S4),
5σ depths in 2″ apertures g, r, i, z, y = 26.5, 26.1, 25.9, 25.1, 24.4 mag (the survey design
depths of Aihara et al. 2018a) and seeing FWHM 0.77, 0.76, 0.58, 0.68, 0.68″ (rounded medians
of the Wide layer quoted from the HSC data-release papers, Aihara et al. 2018b, PASJ 70, S8;
check them against the release you model). Coadd noise is in reality correlated by resampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from sedinfer.filters import Filters
from sedinfer.images.errors import ImageError
from sedinfer.images.psf import convolve_fft, gaussian_psf, moffat_psf, psf_cube, psf_transfer
from sedinfer.units import NJY_PER_MAGGY

NJY_AB_ZEROPOINT_MAG = 2.5 * math.log10(NJY_PER_MAGGY)
"""AB magnitude of 1 nJy: -2.5 log10(1e-9 / 3631) = 31.40 mag."""

HSC_PIXEL_SCALE_ARCSEC = 0.168
HSC_BANDS = ("hsc_g", "hsc_r", "hsc_i", "hsc_z", "hsc_y")
HSC_SEEING_FWHM_ARCSEC = (0.77, 0.76, 0.58, 0.68, 0.68)
HSC_DEPTH_5SIGMA_MAG = (26.5, 26.1, 25.9, 25.1, 24.4)
HSC_DEPTH_APERTURE_ARCSEC = 2.0


def sky_sigma_from_depth(depth_5sigma_mag: Sequence[float] | np.ndarray, pixel_scale_arcsec: float,
                         aperture_diameter_arcsec: float = 2.0) -> np.ndarray:
    """Per-pixel sky σ in nJy (B,) from 5σ depths (AB mag) in an aperture of that diameter."""
    m5 = np.asarray(depth_5sigma_mag, dtype=np.float64)
    if not np.all(np.isfinite(m5)):
        raise ImageError(f"depth_5sigma_mag must be finite, got {m5}")
    n_pix = math.pi * (aperture_diameter_arcsec / 2.0) ** 2 / pixel_scale_arcsec**2
    f5_njy = 10.0 ** (-0.4 * (m5 - NJY_AB_ZEROPOINT_MAG))
    return f5_njy / 5.0 / math.sqrt(n_pix)


def add_noise(cube: torch.Tensor, variance: torch.Tensor, generator: torch.Generator | None = None
              ) -> torch.Tensor:
    """``cube`` plus Gaussian noise of per-pixel ``variance`` (broadcastable to the cube)."""
    if (variance < 0).any() or not torch.isfinite(variance).all():
        raise ImageError("variance must be finite and >= 0")
    eps = torch.randn(cube.shape, generator=generator, dtype=cube.dtype, device=cube.device)
    return cube + eps * variance.to(cube.dtype).sqrt()


def gaussian_log_likelihood(data: torch.Tensor, model: torch.Tensor, inv_var: torch.Tensor
                            ) -> torch.Tensor:
    """-½ Σ (data - model)² / σ² over (B, H, W) per galaxy; ``inv_var`` 0 masks a pixel. (G,)"""
    return -0.5 * ((data - model) ** 2 * inv_var).flatten(-3).sum(-1)


class Instrument(torch.nn.Module):
    """Bands, pixel scale, per-band PSFs (B, h, w) and default per-band sky σ (B,) in nJy.

    ``image_shape`` (H, W) fixes the FFT size of the stored PSF transfer function.
    """

    def __init__(self, filters: Filters | str | Sequence[str], psf: np.ndarray | torch.Tensor,
                 pixel_scale_arcsec: float, sky_sigma_njy: Sequence[float] | np.ndarray,
                 image_shape: tuple[int, int] = (64, 64)):
        super().__init__()
        self.filters = filters if isinstance(filters, Filters) else Filters(filters)
        n_band = len(self.filters)
        psf_t = psf_cube(np.asarray(psf))
        if psf_t.shape[0] != n_band:
            raise ImageError(f"{psf_t.shape[0]} PSF images for {n_band} bands {self.filters.names}")
        sigma = torch.as_tensor(np.asarray(sky_sigma_njy, dtype=np.float64))
        if sigma.shape != (n_band,) or not torch.isfinite(sigma).all() or (sigma <= 0).any():
            raise ImageError(f"sky_sigma_njy must be {n_band} finite values > 0, got {sigma.tolist()}")
        if not (np.isfinite(pixel_scale_arcsec) and pixel_scale_arcsec > 0):
            raise ImageError(f"pixel_scale_arcsec must be > 0, got {pixel_scale_arcsec}")
        self.pixel_scale_arcsec = float(pixel_scale_arcsec)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.register_buffer("psf", psf_t.float())
        self.register_buffer("transfer", psf_transfer(psf_t, self.image_shape).to(torch.complex64))
        self.register_buffer("sky_sigma_njy", sigma.float())

    @property
    def bands(self) -> tuple[str, ...]:
        return self.filters.names

    def _apply(self, fn, *args, **kwargs):
        # .double()/.float() cast the real PSF but not its complex FFT: recompute it to match
        out = super()._apply(fn, *args, **kwargs)
        want = torch.complex128 if self.psf.dtype == torch.float64 else torch.complex64
        if self.transfer.dtype != want:
            psf = self.psf.double() / self.psf.double().sum((-1, -2), keepdim=True)
            self.transfer = psf_transfer(psf, self.image_shape).to(want)
        return out

    def convolve(self, cube: torch.Tensor) -> torch.Tensor:
        """PSF-convolve a scene cube (..., B, H, W) with each band's PSF."""
        if tuple(cube.shape[-3:]) != (len(self.filters), *self.image_shape):
            raise ImageError(f"cube shape {tuple(cube.shape)} does not end in (B, H, W) = "
                             f"({len(self.filters)}, {self.image_shape[0]}, {self.image_shape[1]})")
        return convolve_fft(cube, transfer=self.transfer, psf_shape=tuple(self.psf.shape[-2:]))

    def sky_variance(self) -> torch.Tensor:
        """Default variance image (B, H, W) in nJy²: the sky σ² of each band."""
        v = self.sky_sigma_njy**2
        return v[:, None, None].expand(-1, *self.image_shape)


def hsc_instrument(bands: Sequence[str] = HSC_BANDS, psf: str = "moffat", beta: float = 3.0,
                   psf_size: int = 25, image_shape: tuple[int, int] = (64, 64)) -> Instrument:
    """HSC-SSP Wide grizy (or a subset of those bands) with Moffat (default) or Gaussian PSFs."""
    unknown = [b for b in bands if b not in HSC_BANDS]
    if unknown:
        raise ImageError(f"hsc_instrument knows {HSC_BANDS}, not {unknown}; build an Instrument "
                         "with your own PSFs and depths for other bands")
    idx = [HSC_BANDS.index(b) for b in bands]
    fwhm = [HSC_SEEING_FWHM_ARCSEC[i] for i in idx]
    if psf == "moffat":
        psfs = [moffat_psf(f, HSC_PIXEL_SCALE_ARCSEC, beta, psf_size) for f in fwhm]
    elif psf == "gaussian":
        psfs = [gaussian_psf(f, HSC_PIXEL_SCALE_ARCSEC, psf_size) for f in fwhm]
    else:
        raise ImageError(f"psf must be 'moffat' or 'gaussian', got {psf!r}")
    sigma = sky_sigma_from_depth([HSC_DEPTH_5SIGMA_MAG[i] for i in idx], HSC_PIXEL_SCALE_ARCSEC,
                                 HSC_DEPTH_APERTURE_ARCSEC)
    return Instrument(list(bands), np.stack(psfs), HSC_PIXEL_SCALE_ARCSEC, sigma, image_shape)


__all__ = ["NJY_AB_ZEROPOINT_MAG", "HSC_PIXEL_SCALE_ARCSEC", "HSC_BANDS", "HSC_SEEING_FWHM_ARCSEC",
           "HSC_DEPTH_5SIGMA_MAG", "sky_sigma_from_depth", "add_noise", "gaussian_log_likelihood",
           "Instrument", "hsc_instrument"]
