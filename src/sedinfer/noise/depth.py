"""Survey-depth noise model: sky-limited noise plus a fractional calibration floor.

For a band with 5σ limiting flux f_lim (maggies), the nominal uncertainty of a flux f is

    σ0(f) = sqrt((f_lim / 5)^2 + (floor · f)^2),

and a draw scatters the SNR around f / σ0 by ``snr_scatter`` (relative):
σ = σ0 / (1 + snr_scatter · z), z ~ N(0, 1), with 1 + snr_scatter · z truncated from below at
``MIN_SNR_FACTOR`` so that σ stays positive (σ <= σ0 / MIN_SNR_FACTOR).

:func:`default_noise_model` builds one from published survey depths (:data:`DEFAULT_DEPTHS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError
from sedinfer.noise.base import NoiseModel

#: Lower truncation of the SNR factor 1 + snr_scatter · z.
MIN_SNR_FACTOR = 0.1


class DepthNoiseModel(NoiseModel):
    """σ(f) from 5σ depths ``mag_lim_5sigma`` (AB mag, a {band: mag} dict or one per band).

    ``floor`` is the fractional calibration floor (0.01 = 1 %) and ``snr_scatter`` the relative
    scatter of the SNR. See :class:`~sedinfer.noise.base.NoiseModel` for ``sample_sigma`` /
    ``add_noise``.
    """

    kind = "depth"

    def __init__(self, bands: list[str] | tuple[str, ...],
                 mag_lim_5sigma: Mapping[str, float] | Sequence[float], floor: float = 0.01,
                 snr_scatter: float = 0.1) -> None:
        super().__init__(bands)
        if isinstance(mag_lim_5sigma, Mapping):
            missing = [b for b in self.bands if b not in mag_lim_5sigma]
            if missing:
                raise ParameterError(f"mag_lim_5sigma has no depth for bands {missing}; expected one "
                                     f"5-sigma AB magnitude per band {list(self.bands)}")
            mag_lim_5sigma = [mag_lim_5sigma[b] for b in self.bands]
        mags = np.asarray(mag_lim_5sigma, dtype=np.float64)
        if mags.shape != (len(self.bands),):
            raise ParameterError(f"mag_lim_5sigma has shape {mags.shape}; expected one 5-sigma AB "
                                 f"magnitude per band {list(self.bands)}")
        if not np.isfinite(mags).all():
            b = int(np.argmax(~np.isfinite(mags)))
            raise ParameterError(f"mag_lim_5sigma of band {self.bands[b]!r} is {mags[b]}; expected a "
                                 "finite AB magnitude")
        for name, value in (("floor", floor), ("snr_scatter", snr_scatter)):
            if not (np.isfinite(value) and value >= 0):
                raise ParameterError(f"{name} must be finite and >= 0, got {value}")
        self.mag_lim_5sigma = torch.from_numpy(mags)
        self.floor = float(floor)
        self.snr_scatter = float(snr_scatter)

    def nominal_sigma(self, flux: Tensor) -> Tensor:
        """σ0(f) = sqrt((f_lim/5)^2 + (floor f)^2) in maggies, flux (..., B) in maggies."""
        sky = 10.0 ** (-0.4 * self.mag_lim_5sigma.to(flux)) / 5.0
        return torch.hypot(sky.expand_as(flux), self.floor * flux)

    def _moments(self, flux: Tensor) -> tuple[Tensor]:
        return (self.nominal_sigma(flux),)

    def _sigma_given(self, flux: Tensor, moments: tuple[Tensor, ...], z: Tensor) -> Tensor:
        return moments[0] / (1.0 + self.snr_scatter * z).clamp_min(MIN_SNR_FACTOR)

    def _params(self) -> dict[str, Any]:
        return {"mag_lim_5sigma": self.mag_lim_5sigma.tolist(), "floor": self.floor,
                "snr_scatter": self.snr_scatter}

    def _repr_extra(self) -> str:
        mags = ", ".join(f"{m:.2f}" for m in self.mag_lim_5sigma.tolist())
        return f", mag_lim_5sigma=[{mags}], floor={self.floor}, snr_scatter={self.snr_scatter}"


@dataclass(frozen=True)
class SurveyDepth:
    """A published 5σ depth: AB magnitude and where it comes from."""

    mag_ab: float
    source: str


_SDSS = ("SDSS DR7 95% completeness limits for point sources (Abazajian et al. 2009, ApJS 182, 543), "
         "taken as 5-sigma depths; SDSS magnitudes are within ~0.04 mag of AB")
_WISE = ("AllWISE 5-sigma point-source sensitivities 0.054, 0.071, 0.73, 5.0 mJy = 16.9, 16.0, 11.5, "
         "8.0 Vega mag (Cutri et al. 2013, AllWISE Explanatory Supplement), in AB with the Vega-AB "
         "offsets 2.699, 3.339, 5.174, 6.620 of Jarrett et al. 2011 (ApJ 735, 112)")
_2MASS = ("2MASS PSC 10-sigma limits J 15.8, H 15.1, Ks 14.3 Vega mag (Skrutskie et al. 2006, AJ 131, "
          "1163), +0.75 mag to 5 sigma (sky-limited) and to AB with the offsets 0.91, 1.39, 1.85 of "
          "Blanton & Roweis 2007 (AJ 133, 734)")
_GALEX = ("GALEX All-sky Imaging Survey 5-sigma depths (Bianchi et al. 2011, Ap&SS 335, 161; "
          "VizieR II/312)")
_HSC = "HSC-SSP Wide layer 5-sigma point-source depths (Aihara et al. 2018, PASJ 70, S4)"
_LSST = "Rubin LSST 10-year coadded 5-sigma point-source depths (Ivezic et al. 2019, ApJ 873, 111, Table 1)"
_DECAM = ("DECaLS (Legacy Surveys, used through DR9) required 5-sigma depths for an ELG-like galaxy of "
          "half-light radius 0.45 arcsec (Dey et al. 2019, AJ 157, 168); achieved depths are deeper")

#: 5σ depths (AB mag) by filter name (sedpy's names; looked up case-insensitively).
DEFAULT_DEPTHS: Mapping[str, SurveyDepth] = MappingProxyType({
    **{f"sdss_{b}0": SurveyDepth(m, _SDSS) for b, m in zip("ugriz", (22.0, 22.2, 22.2, 21.3, 20.5),
                                                           strict=True)},
    **{f"wise_w{i}": SurveyDepth(m, _WISE) for i, m in zip((1, 2, 3, 4), (19.6, 19.3, 16.7, 14.6),
                                                           strict=True)},
    **{f"twomass_{b}": SurveyDepth(m, _2MASS) for b, m in zip(("J", "H", "Ks"), (17.5, 17.2, 16.9),
                                                              strict=True)},
    "galex_FUV": SurveyDepth(19.9, _GALEX),
    "galex_NUV": SurveyDepth(20.8, _GALEX),
    **{f"hsc_{b}": SurveyDepth(m, _HSC) for b, m in zip("grizy", (26.5, 26.1, 25.9, 25.1, 24.4),
                                                        strict=True)},
    **{f"lsst_baseline_{b}": SurveyDepth(m, _LSST)
       for b, m in zip("ugrizy", (26.1, 27.4, 27.5, 26.8, 26.1, 24.9), strict=True)},
    **{f"decam_{b}": SurveyDepth(m, _DECAM) for b, m in zip("grz", (24.0, 23.4, 22.5), strict=True)},
})

_LOOKUP = {name.lower(): name for name in DEFAULT_DEPTHS}
_LOOKUP |= {f"sdss_{b}": f"sdss_{b}0" for b in "ugriz"}
_LOOKUP |= {f"lsst_{b}": f"lsst_baseline_{b}" for b in "ugrizy"}


def default_depth(band: str) -> SurveyDepth:
    """Published 5σ depth of a filter name (case-insensitive; 'sdss_r' and 'lsst_r' also work)."""
    name = _LOOKUP.get(band.lower())
    if name is None:
        raise _no_default([band])
    return DEFAULT_DEPTHS[name]


def default_noise_model(bands: Sequence[str], floor: float = 0.01, snr_scatter: float = 0.1
                        ) -> DepthNoiseModel:
    """:class:`DepthNoiseModel` with the published depths of :data:`DEFAULT_DEPTHS`."""
    unknown = [b for b in bands if b.lower() not in _LOOKUP]
    if unknown:
        raise _no_default(unknown)
    return DepthNoiseModel(bands, [default_depth(b).mag_ab for b in bands], floor, snr_scatter)


def _no_default(bands: list[str]) -> ParameterError:
    return ParameterError(f"no default depth for bands {bands}; bands with defaults: "
                          f"{sorted(DEFAULT_DEPTHS)}. Use DepthNoiseModel(bands, mag_lim_5sigma=...) "
                          "with explicit 5-sigma depths instead")
