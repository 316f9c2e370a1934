"""Night-sky emission lines masked in SDSS spectra.

The strongest atomic lines of the night sky above Apache Point (airglow and street lamps),
at their air wavelengths from the high-resolution night-sky atlas of Osterbrock et al. (1996,
PASP 108, 277): Hg I 4046.56, 4358.34, 5460.74 Å (mercury street lamps), [O I] 5577.34 Å
(the strongest airglow line), Na I D 5889.95, 5895.92 Å (sodium lamps and airglow), and [O I]
6300.30, 6363.78 Å. SDSS wavelengths are vacuum, so they are converted with the refractive
index of standard air of Morton (2000, ApJS 130, 403, eq. 8).

Each line is masked over ± ``half_width_kms`` around its centre: 300 km/s by default, two
SDSS line-spread FWHM (c / R = 150 km/s at R = 2000) on either side, where sky-subtraction
residuals are largest; 400 km/s for [O I] 5577, whose residual wings reach further. The dense
OH forest redwards of ~6800 Å is not listed: the SDSS pipeline flags the pixels it cannot
subtract in ``and_mask`` (bit 23, BRIGHTSKY), which :func:`sedinfer.spectra.read_sdss` masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sedinfer.units import C_AA_PER_S

C_KMS = C_AA_PER_S / 1e13


@dataclass(frozen=True)
class SkyLine:
    """One sky line: air wavelength (Å), mask half-width (km/s) and what emits it."""

    name: str
    wave_air_aa: float
    half_width_kms: float = 300.0

    @property
    def wave_vac_aa(self) -> float:
        """Vacuum wavelength in Å (Morton 2000)."""
        return float(air_to_vacuum(self.wave_air_aa))


SKY_LINES: tuple[SkyLine, ...] = (
    SkyLine("Hg I 4047", 4046.56),
    SkyLine("Hg I 4358", 4358.34),
    SkyLine("Hg I 5461", 5460.74),
    SkyLine("[O I] 5577", 5577.34, 400.0),
    SkyLine("Na I D2 5890", 5889.95),
    SkyLine("Na I D1 5896", 5895.92),
    SkyLine("[O I] 6300", 6300.30),
    SkyLine("[O I] 6364", 6363.78),
)
"""The masked lines (Osterbrock et al. 1996), in air."""


def air_to_vacuum(wave_air_aa: np.ndarray | float) -> np.ndarray:
    """Vacuum wavelength (Å) of air wavelengths ``wave_air_aa`` (Å) above 2000 Å.

    n - 1 = 8.34254e-5 + 2.406147e-2 / (130 - s²) + 1.5998e-4 / (38.9 - s²), s = 10⁴ / λ in µm⁻¹
    (Morton 2000, eq. 8, standard air); evaluated at the vacuum wavelength by two fixed-point
    steps (the error after them is below 1e-6 Å).
    """
    air = np.asarray(wave_air_aa, dtype=np.float64)
    vac = air.copy()
    for _ in range(3):
        s2 = (1e4 / vac) ** 2
        n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)
        vac = air * n
    return vac


def sky_mask(wave_obs_aa: np.ndarray, lines: tuple[SkyLine, ...] = SKY_LINES) -> np.ndarray:
    """Boolean mask (M,) of the observed (vacuum) pixels ``wave_obs_aa`` (M,) within each line's
    half-width; True means masked."""
    wave = np.asarray(wave_obs_aa, dtype=np.float64)
    mask = np.zeros(wave.shape, dtype=bool)
    for line in lines:
        centre = line.wave_vac_aa
        mask |= np.abs(wave / centre - 1.0) * C_KMS <= line.half_width_kms
    return mask


__all__ = ["SKY_LINES", "SkyLine", "air_to_vacuum", "sky_mask"]
