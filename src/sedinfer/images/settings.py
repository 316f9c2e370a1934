"""The settings of a ``sedinfer dustmap fit`` run besides its priors (:class:`FitSettings`), and
the key and hash a galaxy's outputs are compared by on resume (issue 18 §7).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from sedinfer.digest import json_digest
from sedinfer.images.errors import ImageError
from sedinfer.images.fit import FitConfig

if TYPE_CHECKING:
    from sedinfer.images.prior_choice import PriorSpec


@dataclass(frozen=True)
class FitSettings:
    """What a run does besides its priors. ``bands`` None: each file's ``BANDn`` keys;
    ``redshift`` None: each file's ``REDSHIFT`` (or ``Z``) key, else that value for every file;
    ``psf_fwhm`` (one per band or one for all, arcsec; Moffat β = 3) and ``pixel_scale`` (arcsec)
    for files without a ``PSF`` HDU whose bands are not all HSC (HSC: the package's Moffat PSFs
    at median Wide seeing). ``batch`` galaxies per ``fit_map`` call."""

    bands: tuple[str, ...] | None = None
    size: int = 64
    redshift: float | None = None
    psf_fwhm: tuple[float, ...] | None = None
    pixel_scale: float | None = None
    config: FitConfig = field(default_factory=FitConfig)
    batch: int = 8
    figures: bool = True
    device: str = "cpu"
    min_snr: float = 5.0

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 4:
            raise ImageError(f"stamp size must be >= 8 and divisible by 4 (the U-Net), got {self.size}")
        if self.batch < 1:
            raise ImageError(f"batch must be >= 1, got {self.batch}")
        if self.redshift is not None and not (math.isfinite(self.redshift) and self.redshift >= 0):
            raise ImageError(f"redshift must be finite and >= 0, got {self.redshift}")
        if self.pixel_scale is not None and not self.pixel_scale > 0:
            raise ImageError(f"pixel scale must be > 0 arcsec, got {self.pixel_scale}")
        if self.psf_fwhm is not None and not all(f > 0 for f in self.psf_fwhm):
            raise ImageError(f"PSF FWHM must be > 0 arcsec, got {self.psf_fwhm}")
        n_fwhm = None if self.psf_fwhm is None else len(self.psf_fwhm)
        if n_fwhm is not None and self.bands is not None and n_fwhm not in (1, len(self.bands)):
            raise ImageError(f"give one PSF FWHM or one per band ({len(self.bands)}), got {n_fwhm}")

    def key(self, priors: PriorSpec) -> dict:
        """Everything the fitted numbers depend on (compared on resume)."""
        return {"bands": list(self.bands) if self.bands else None, "size": self.size,
                "redshift": self.redshift, "psf_fwhm": list(self.psf_fwhm) if self.psf_fwhm else None,
                "pixel_scale": self.pixel_scale, "min_snr": self.min_snr,
                "fit_config": {k: (list(v) if isinstance(v, tuple) else v)
                               for k, v in asdict(self.config).items()},
                "priors": priors.describe()}


def settings_hash(key: dict) -> str:
    """16 hex digits of the SHA-256 of ``key`` (:meth:`FitSettings.key`) as sorted JSON."""
    return json_digest(key)


__all__ = ["FitSettings", "settings_hash"]
