"""Per-pixel noise of SDSS-like fibre spectra.

The variance of a pixel is photon noise from the galaxy plus a constant (sky and read-out)
term, both scaled to one reference galaxy:

    σ²(λ) = σ_ref² [ (1 − β) max(f(λ), 0) / f_ref + β ],   σ_ref = f_ref / (S/N)_ref,

with f in 10⁻¹⁷ erg/s/cm²/Å through the fibre. f_ref is the f_λ at 6166 Å (r band) of a flat-f_ν
source of fibre magnitude ``fiber_mag_ref``; at that flux the S/N per pixel is ``snr_ref`` and a
fraction β of the variance is sky. Faint galaxies are sky-limited (S/N ∝ f), bright ones
photon-limited (S/N ∝ √f). Defaults: (S/N)_ref = 10 per 69 km/s pixel at r_fibre = 18.7 AB, the
fibre magnitude of a Main-Galaxy-Sample galaxy of r_Petro ≈ 17.5 with a third of its light in
the 3″ fibre; β = 0.5, as the dark sky (r ≈ 20.8 mag arcsec⁻², 7.1 arcsec² of fibre: ≈ 18.7 mag)
is as bright as such a galaxy. For comparison the SDSS plate requirement is (S/N)² ≥ 15 per
pixel at g_fibre = 20.2 (Stoughton et al. 2002), and the two DR18 spectra in ``ppxf``
(r_fibre ≈ 15) have median S/N 48 and 53, where these defaults give ≈ 75. Each spectrum's σ is
scaled by 10^(s·N(0,1)) (``depth_scatter_dex``), for plate-to-plate depth.

Limits: no wavelength dependence of throughput or sky continuum (SDSS S/N falls at both ends
of the grid); sky-line residuals are masked, not simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sedinfer.units import AB_ZEROPOINT_FNU_CGS, C_AA_PER_S

R_PIVOT_AA: float = 6166.0
"""Pivot wavelength (Å) of the SDSS r band, where f_ref is evaluated."""


def flam_1e17_of_ab(mag_ab: float, wave_aa: float = R_PIVOT_AA) -> float:
    """f_λ (10⁻¹⁷ erg/s/cm²/Å) at ``wave_aa`` of a flat-f_ν source of AB magnitude ``mag_ab``."""
    return AB_ZEROPOINT_FNU_CGS * 10 ** (-0.4 * mag_ab) * C_AA_PER_S / wave_aa**2 * 1e17


@dataclass(frozen=True)
class SpectralNoise:
    """The per-pixel noise model above (parameters documented in the module)."""

    snr_ref: float = 10.0
    fiber_mag_ref: float = 18.7
    sky_fraction: float = 0.5
    depth_scatter_dex: float = 0.1

    def __post_init__(self) -> None:
        if not (self.snr_ref > 0 and math.isfinite(self.fiber_mag_ref)):
            raise ValueError(f"SpectralNoise needs snr_ref > 0 and a finite fiber_mag_ref, got "
                             f"{self.snr_ref}, {self.fiber_mag_ref}")
        if not 0.0 < self.sky_fraction <= 1.0:
            raise ValueError(f"sky_fraction must be in (0, 1], got {self.sky_fraction}")
        if not self.depth_scatter_dex >= 0:
            raise ValueError(f"depth_scatter_dex must be >= 0, got {self.depth_scatter_dex}")

    @property
    def flux_ref_1e17(self) -> float:
        """f_ref in 10⁻¹⁷ erg/s/cm²/Å."""
        return flam_1e17_of_ab(self.fiber_mag_ref)

    def sigma(self, flux_1e17: torch.Tensor, depth_factor: torch.Tensor | None = None) -> torch.Tensor:
        """σ (N, M) in 10⁻¹⁷ erg/s/cm²/Å of noiseless fibre spectra ``flux_1e17`` (N, M), times
        ``depth_factor`` (N,) if given."""
        f_ref = self.flux_ref_1e17
        sig_ref = f_ref / self.snr_ref
        var = sig_ref**2 * ((1 - self.sky_fraction) * flux_1e17.clamp_min(0) / f_ref + self.sky_fraction)
        sig = var.sqrt()
        return sig if depth_factor is None else sig * depth_factor.unsqueeze(-1)

    def draw_depth(self, n: int, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Per-spectrum σ factors 10^(s·N(0,1)), (n,)."""
        return 10 ** (self.depth_scatter_dex * torch.randn(n, generator=generator, dtype=dtype))

    def add_noise(self, flux_1e17: torch.Tensor, generator: torch.Generator | None = None,
                  depth_factor: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noisy spectra f + σ ε, their inverse variance 1/σ² and the depth factors, from
        noiseless ``flux_1e17`` (N, M); returns ((N, M), (N, M), (N,))."""
        if depth_factor is None:
            depth_factor = self.draw_depth(flux_1e17.shape[0], generator, flux_1e17.dtype)
        sig = self.sigma(flux_1e17, depth_factor)
        eps = torch.randn(flux_1e17.shape, generator=generator, dtype=flux_1e17.dtype)
        return flux_1e17 + sig * eps, sig.pow(-2), depth_factor


__all__ = ["R_PIVOT_AA", "SpectralNoise", "flam_1e17_of_ab"]
