"""SEDFLOW's noise model p(σ | f) (Hahn & Melchior 2022, §4.2, eq. 5).

Per band, log10 σ ~ N(μ(m), s(m)), where μ is the median and s the standard deviation of the
catalog's log10 σ (σ in maggies) in magnitude bins, interpolated linearly in magnitude and held
flat beyond the fitted range (see :mod:`sedinfer.noise.binned`). Modelling log10 σ rather than σ
keeps every draw positive, where SEDFLOW discards training rows with a negative σ. As SEDFLOW
stresses, this model only needs its draws to span the observed errors when σ is an input of
the posterior estimator.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from sedinfer.noise.binned import ArrayLike, BinnedNoiseModel, fit_binned


class SigmaNoiseModel(BinnedNoiseModel):
    """p(log10 σ | f) per band; ``median`` and ``scatter`` (B, K) are those of log10(σ / maggie).

    Build it from a catalog with :meth:`fit`. See :class:`~sedinfer.noise.base.NoiseModel` for
    ``sample_sigma`` / ``add_noise``.
    """

    kind = "sigma"

    @classmethod
    def fit(cls, flux: ArrayLike, flux_err: ArrayLike, bands: list[str] | tuple[str, ...],
            mag_bins: int | ArrayLike | None = None, min_count: int = 20,
            strict: bool = False) -> SigmaNoiseModel:
        """Fit from catalog fluxes and errors (N, B) in maggies.

        NaN/infinite or non-positive fluxes or errors are excluded per band and counted in
        ``fit_info[band]["n_excluded"]`` (``strict=True`` raises instead). See
        :func:`~sedinfer.noise.binned.fit_binned` for ``mag_bins`` and ``min_count``.
        """
        knots, median, scatter, info = fit_binned(flux, flux_err, bands, _log_sigma, mag_bins,
                                                  min_count, strict)
        return cls(bands, knots, median, scatter, fit_info=info)

    def _sigma_given(self, flux: Tensor, moments: tuple[Tensor, ...], z: Tensor) -> Tensor:
        median, scatter = moments
        return 10.0 ** (median + scatter * z)


def _log_sigma(flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    return np.log10(flux_err)
