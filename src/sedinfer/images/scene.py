"""The dusty-host scene and the full image model (Siegel & Melchior, Eqs. 6-8).

For G galaxies, B bands and H × W pixels::

    Y = (Fᵀ × S) ⊙ 10^(-0.4 A),   A = Kᵀ × [-2.5 log₁₀ D]   ⇒   Y_b = F_b S D^(K_b)

* ``sed`` F (G, B): the host's unattenuated flux in each band, nJy;
* ``host`` S (G, H, W) >= 0: the host's light distribution; with Σ S = 1 F is the total flux;
* ``transmission`` D (G, H, W) in (0, 1]: the fraction of light transmitted at λ₀ = 0.4754 µm;
* ``ratio`` K (G, B): k(λ_b, δ) / k(λ₀, δ) (:mod:`sedinfer.images.curve`).

The scene (:func:`render_scene`) is instrument-free; :class:`ImageModel` adds the rest-frame
band wavelengths (from the bands and the redshift) and the :class:`Instrument`'s PSFs, so a MAP
fit can call ``model(sed, host, transmission, delta)`` on a batch and back-propagate into all
four. D is floored at ``D_FLOOR`` before the logarithm so that gradients stay finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sedinfer.images.curve import (
    LAMBDA0_AA,
    attenuation_ratio,
    band_wavelengths_rest,
    curve_terms,
)
from sedinfer.images.errors import ImageError
from sedinfer.images.instrument import Instrument, gaussian_log_likelihood

D_FLOOR = 1e-12
"""Smallest transmission used in log D (A(λ₀) = 30 mag)."""


def attenuation_cube(transmission: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """A (G, B, H, W) in mag from D (G, H, W) and K (G, B): Eq. 8."""
    a0 = -2.5 * torch.log10(transmission.clamp_min(D_FLOOR))
    return ratio[..., :, None, None] * a0[..., None, :, :]


def render_scene(sed: torch.Tensor, host: torch.Tensor, transmission: torch.Tensor | None = None,
                 ratio: torch.Tensor | None = None) -> torch.Tensor:
    """Noiseless, PSF-free cube (G, B, H, W) = F_b S D^K_b; without D (or K), Fᵀ × S exactly."""
    if sed.ndim != 2 or host.ndim != 3 or sed.shape[0] != host.shape[0]:
        raise ImageError(f"sed must be (G, B) and host (G, H, W) with the same G, got "
                         f"{tuple(sed.shape)} and {tuple(host.shape)}")
    cube = sed[:, :, None, None] * host[:, None, :, :]
    if transmission is None:
        return cube
    if ratio is None:
        raise ImageError("render_scene with a transmission image needs the curve ratio K (G, B)")
    if transmission.shape != host.shape or ratio.shape != sed.shape:
        raise ImageError(f"transmission {tuple(transmission.shape)} must match host "
                         f"{tuple(host.shape)} and ratio {tuple(ratio.shape)} sed {tuple(sed.shape)}")
    log_d = torch.log(transmission.clamp_min(D_FLOOR))
    return cube * torch.exp(ratio[:, :, None, None] * log_d[:, None, :, :])


class AttenuationCurve(torch.nn.Module):
    """K(δ) (G, B) for bands of pivot ``pivot_aa`` seen at ``redshift`` (G,); curve terms as buffers."""

    def __init__(self, pivot_aa: Sequence[float] | np.ndarray, redshift: Sequence[float] | np.ndarray,
                 bump: bool = True, terms: np.ndarray | None = None):
        super().__init__()
        if terms is None:
            terms = curve_terms(band_wavelengths_rest(np.asarray(pivot_aa), np.asarray(redshift)), bump)
        self.register_buffer("terms", torch.as_tensor(terms, dtype=torch.float32))
        self.register_buffer("terms0", torch.as_tensor(curve_terms(np.array(LAMBDA0_AA), bump),
                                                       dtype=torch.float32))

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        return attenuation_ratio(self.terms, self.terms0, delta.to(self.terms.dtype))


class ImageModel(torch.nn.Module):
    """Scene (F, S, D, δ) of G galaxies at known ``redshift`` (G,) observed by ``instrument``.

    K is evaluated at the bands' rest-frame pivot wavelengths, or from SED-weighted band averages
    ``terms`` (3, G, B) of :func:`~sedinfer.images.curve.band_curve_terms_weighted`.

    ``forward`` returns the PSF-convolved noiseless cube (G, B, H, W) in nJy per pixel;
    ``log_likelihood`` the Gaussian log-likelihood of data cubes given inverse variances.
    """

    def __init__(self, instrument: Instrument, redshift: Sequence[float] | np.ndarray | float,
                 bump: bool = True, terms: np.ndarray | None = None):
        super().__init__()
        self.instrument = instrument
        z = np.atleast_1d(np.asarray(redshift, dtype=np.float64))
        if terms is not None and np.shape(terms) != (3, z.size, len(instrument.filters)):
            raise ImageError(f"terms must be (3, G, B) = (3, {z.size}, {len(instrument.filters)}), "
                             f"got {np.shape(terms)}")
        self.curve = AttenuationCurve(instrument.filters.pivot_wave_aa, z, bump, terms)

    @property
    def n_galaxies(self) -> int:
        return int(self.curve.terms.shape[1])

    def ratio(self, delta: torch.Tensor) -> torch.Tensor:
        """K (G, B) for slopes ``delta`` (G,)."""
        return self.curve(delta)

    def scene(self, sed: torch.Tensor, host: torch.Tensor, transmission: torch.Tensor,
              delta: torch.Tensor) -> torch.Tensor:
        """PSF-free cube (G, B, H, W)."""
        if delta.shape != (self.n_galaxies,):
            raise ImageError(f"delta must be ({self.n_galaxies},), one slope per galaxy, "
                             f"got {tuple(delta.shape)}")
        return render_scene(sed, host, transmission, self.ratio(delta).to(sed.dtype))

    def forward(self, sed: torch.Tensor, host: torch.Tensor, transmission: torch.Tensor,
                delta: torch.Tensor) -> torch.Tensor:
        return self.instrument.convolve(self.scene(sed, host, transmission, delta))

    def log_likelihood(self, data: torch.Tensor, inv_var: torch.Tensor, sed: torch.Tensor,
                       host: torch.Tensor, transmission: torch.Tensor, delta: torch.Tensor
                       ) -> torch.Tensor:
        """Gaussian log-likelihood per galaxy (G,) of ``data`` (G, B, H, W)."""
        return gaussian_log_likelihood(data, self(sed, host, transmission, delta), inv_var)


__all__ = ["D_FLOOR", "attenuation_cube", "render_scene", "AttenuationCurve", "ImageModel"]
