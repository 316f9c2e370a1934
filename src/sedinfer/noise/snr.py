"""PopSED's noise model p(SNR | f) (Li et al. 2024, §2.2).

Per band, SNR = f/σ ~ N(μ_SNR(m), σ_SNR(m)), where μ_SNR is the median and σ_SNR the standard
deviation of the catalog SNR in magnitude bins, interpolated linearly in magnitude and held
flat beyond the fitted range (see :mod:`sedinfer.noise.binned`). A draw gives σ = f / SNR.
Flat extrapolation of the SNR means σ ∝ f for objects fainter than the faintest fitted bin.

Drawn SNRs are truncated from below at ``snr_min`` (default 0.1) so that σ stays positive and
bounded, σ <= f / snr_min; Gaussian draws below it are set to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from sedinfer.errors import ParameterError
from sedinfer.noise.binned import ArrayLike, BinnedNoiseModel, fit_binned

#: Default lower truncation of drawn SNRs.
DEFAULT_SNR_MIN = 0.1


class SNRNoiseModel(BinnedNoiseModel):
    """p(SNR | f) per band; ``median`` and ``scatter`` (B, K) are the SNR's median and std.

    Build it from a catalog with :meth:`fit`. See :class:`~sedinfer.noise.base.NoiseModel` for
    ``sample_sigma`` / ``add_noise``.
    """

    kind = "snr"

    def __init__(self, bands: list[str] | tuple[str, ...], mag_knots: ArrayLike, median: ArrayLike,
                 scatter: ArrayLike, snr_min: float = DEFAULT_SNR_MIN,
                 fit_info: dict[str, Any] | None = None) -> None:
        super().__init__(bands, mag_knots, median, scatter, fit_info)
        if not (np.isfinite(snr_min) and snr_min > 0):
            raise ParameterError(f"snr_min must be finite and > 0, got {snr_min}")
        self.snr_min = float(snr_min)

    @classmethod
    def fit(cls, flux: ArrayLike, flux_err: ArrayLike, bands: list[str] | tuple[str, ...],
            mag_bins: int | ArrayLike | None = None, min_count: int = 20,
            snr_min: float = DEFAULT_SNR_MIN, strict: bool = False) -> SNRNoiseModel:
        """Fit from catalog fluxes and errors (N, B) in maggies.

        NaN/infinite or non-positive fluxes or errors are excluded per band and counted in
        ``fit_info[band]["n_excluded"]`` (``strict=True`` raises instead). See
        :func:`~sedinfer.noise.binned.fit_binned` for ``mag_bins`` and ``min_count``.
        """
        knots, median, scatter, info = fit_binned(flux, flux_err, bands, _snr, mag_bins, min_count, strict)
        return cls(bands, knots, median, scatter, snr_min=snr_min, fit_info=info)

    def _sigma_given(self, flux: Tensor, moments: tuple[Tensor, ...], z: Tensor) -> Tensor:
        median, scatter = moments
        return flux / (median + scatter * z).clamp_min(self.snr_min)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "snr_min": self.snr_min}


def _snr(flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    return flux / flux_err
