"""The observed catalog of a population fit: validation, fluxes, asinh softening, noise model.

Input magnitudes are AB magnitudes (N, B) with 1σ errors (N, B) in magnitudes. Fluxes are
f = 10^(-0.4 m) maggies and σ_f = f · σ_m / 1.0857 (first order). Observed and simulated
photometry are compared as asinh magnitudes with the same softening b (see
:mod:`sedinfer.population.forward`); by default b is each band's median σ_f, the typical noise,
so b is ~ the 1σ noise level recommended by Lupton et al. (1999).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import CatalogError, ParameterError
from sedinfer.units import POGSON, asinh_mag

#: Objects per magnitude bin aimed at when fitting the catalog noise model (PopSED p(SNR | f)).
NOISE_OBJECTS_PER_BIN = 50


def _array(values: Any, name: str) -> np.ndarray:
    a = values.detach().cpu().numpy() if isinstance(values, Tensor) else values
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{name} must be a numeric (N, B) array: {exc}") from None
    if a.ndim != 2:
        raise CatalogError(f"{name} must be a 2-D array (N galaxies, B bands), got shape {a.shape}")
    return a


def check_catalog(mags: Any, mag_errs: Any, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 copies of ``mags`` and ``mag_errs`` (N, B), B = ``len(bands)``.

    Raises :class:`~sedinfer.errors.CatalogError` naming the band for NaN/inf magnitudes or
    NaN/inf/negative errors (drop or fill those rows first: nothing is masked silently), and when
    the number of columns differs from the number of bands.
    """
    bands = tuple(bands)
    m, e = _array(mags, "mags"), _array(mag_errs, "mag_errs")
    if m.shape[1] != len(bands):
        raise CatalogError(f"the catalog has {m.shape[1]} magnitude columns but the filters have "
                           f"{len(bands)} bands {list(bands)}; expected one column per band, in that order")
    if e.shape != m.shape:
        raise CatalogError(f"mag_errs has shape {e.shape} but mags has shape {m.shape}; expected one error "
                           "per magnitude")
    if m.shape[0] < 2:
        raise CatalogError(f"the catalog has {m.shape[0]} rows; a population fit needs at least 2 galaxies")
    checks = (("magnitudes", m, ~np.isfinite(m)), ("magnitude errors", e, ~np.isfinite(e) | (e < 0)))
    for what, a, bad in checks:
        if bad.any():
            col = int(np.flatnonzero(bad.any(0))[0])
            rows = np.flatnonzero(bad[:, col])
            kind = "NaN, infinite or negative" if what == "magnitude errors" else "NaN or infinite"
            raise CatalogError(f"band {bands[col]!r} (column {col}) has {rows.size} {kind} {what} (first in "
                               f"row {int(rows[0])}: {a[rows[0], col]}); expected finite values: drop or "
                               "fill those rows before fitting a population")
    return m, e


def catalog_fluxes(mags: np.ndarray, mag_errs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fluxes and 1σ flux errors (N, B) in maggies from AB magnitudes and their errors."""
    flux = 10.0 ** (-0.4 * mags)
    return flux, flux * mag_errs / POGSON


def default_softening(flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    """Asinh softening b (B,) in maggies: the median flux error of each band (1e-3 of the median
    flux where a band has no positive error)."""
    b = np.median(flux_err, axis=0)
    fallback = 1e-3 * np.median(flux, axis=0)
    return np.where(b > 0, b, fallback)


def observed_magnitudes(mags: np.ndarray, softening: np.ndarray) -> Tensor:
    """The catalog as asinh magnitudes (N, B), float32."""
    return torch.as_tensor(asinh_mag(10.0 ** (-0.4 * mags), softening), dtype=torch.float32)


def build_noise_model(noise: Any, flux: np.ndarray, flux_err: np.ndarray, bands: Sequence[str]) -> Any:
    """The noise model of a fit.

    ``"catalog"``: PopSED's p(SNR | f) (:class:`~sedinfer.noise.SNRNoiseModel`) fitted on the
    catalog, with about ``NOISE_OBJECTS_PER_BIN`` objects per magnitude bin (2 to 20 bins);
    ``"depth"``: :func:`~sedinfer.noise.default_noise_model` from published survey depths;
    a :class:`~sedinfer.noise.NoiseModel` over ``bands``; or None for noiseless simulations.
    """
    from sedinfer.noise import NoiseModel, SNRNoiseModel, default_noise_model

    bands = tuple(bands)
    if noise is None or isinstance(noise, NoiseModel):
        if noise is not None and tuple(noise.bands) != bands:
            raise ParameterError(f"the noise model covers bands {list(noise.bands)}; expected {list(bands)}")
        return noise
    if noise == "depth":
        return default_noise_model(bands)
    if noise == "catalog":
        n_bins = int(np.clip(flux.shape[0] // NOISE_OBJECTS_PER_BIN, 2, 20))
        min_count = int(np.clip(flux.shape[0] // (4 * n_bins), 1, 20))
        return SNRNoiseModel.fit(flux, flux_err, bands, mag_bins=n_bins, min_count=min_count)
    raise ParameterError(f"noise must be 'catalog', 'depth', a NoiseModel or None, got {noise!r}")


__all__ = ["NOISE_OBJECTS_PER_BIN", "build_noise_model", "catalog_fluxes", "check_catalog",
           "default_softening", "observed_magnitudes"]
