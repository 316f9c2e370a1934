"""W1–W4 predicted by the SED-model baseline: posterior draws pushed through the SPS model.

For each galaxy, K draws θ_k ~ q(θ | spectrum) (:class:`~sedinfer.spectra.sed_baseline.SEDBaseline`)
with the known redshift put back are pushed through exactly the path the mocks' WISE truth takes
(:func:`sedinfer.spectra.simulate.simulate_chunk`): ``SPSModel.photometry(θ, Filters(WISE_BANDS),
units="maggies")`` in float64, then :func:`~sedinfer.spectra.wise.maggies_to_vega` (Vega =
AB − Jarrett et al. 2011 offsets). The draws m'_k (N, K, 4) are noiseless model magnitudes: the
predictive of the *true* magnitude given the optical, as the empirical predictor's N(m̂, s²).

**WISE noise** enters once, through the data: p̂ = (1/K) Σ_k exp(−(m'_k − m)² / 2σ²) with the
catalogue's m = ``wNmpro`` and σ = ``wNsigmpro`` (Jespersen et al. eqs. 2–3 with p_data the
data's Gaussian scaled to peak 1, :mod:`sedinfer.spectra.metrics`), and χ = (m − m̂)/σ with m̂ the
mean of the draws. No noise is added to the draws (that would count σ twice). Non-detections
(σ NaN) are left out of every metric, as for the empirical model.

Memory: at most ``max_rows`` θ rows go through the SPS model at a time (galaxies × K); only the
per-galaxy mean, spread and p̂ are kept unless ``keep_draws``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.spectra.metrics import chi, detected, phat_data_baseline
from sedinfer.spectra.wise import WISE_BANDS, maggies_to_vega


def model_wise_vega(model, theta: torch.Tensor, filters=None) -> np.ndarray:
    """Noiseless W1–W4 Vega magnitudes (M, 4) of θ (M, D_model) in the SPS model's order, by the
    mocks' own path (module docstring). ``filters``: a cached ``Filters(WISE_BANDS)``."""
    from sedinfer.filters import Filters

    filters = filters if filters is not None else Filters(list(WISE_BANDS))
    with torch.no_grad():
        f = model.photometry(theta, filters, units="maggies").to(torch.float64)
    return maggies_to_vega(f.numpy())


def phat_draws(mag, sigma, draws) -> np.ndarray:
    """Monte Carlo p̂ (N, 4) of draws m'_k (N, K, 4) from a predictive: the mean over k of
    exp(−(m'_k − m)² / 2σ²); NaN for non-detections; non-finite draws are left out."""
    mag, sigma, draws = (np.asarray(a, dtype=np.float64) for a in (mag, sigma, draws))
    if draws.ndim != 3 or draws.shape[0] != mag.shape[0] or draws.shape[2] != mag.shape[1]:
        raise ParameterError(f"draws must be (N, K, {mag.shape[1]}) for {mag.shape[0]} galaxies, "
                             f"got {draws.shape}")
    ok = detected(sigma, mag)
    sig = np.where(ok, sigma, 1.0)
    with np.errstate(invalid="ignore"):
        score = np.exp(-0.5 * ((draws - mag[:, None]) / sig[:, None]) ** 2)
        return np.where(ok, np.nanmean(np.where(np.isfinite(draws), score, np.nan), axis=1), np.nan)


@dataclass
class SEDWisePrediction:
    """The baseline's W1–W4 (Vega) per galaxy: ``mean``, ``std`` (N, 4) over the finite draws,
    ``phat`` (N, 4) when the data were given, ``draws`` (N, K, 4) float32 if kept, ``n_draws`` K,
    ``n_nonfinite`` draws with a non-finite magnitude (flux ≤ 0)."""

    mean: np.ndarray
    std: np.ndarray
    phat: np.ndarray | None
    draws: np.ndarray | None
    n_draws: int
    n_nonfinite: int


def predict_wise_sed(baseline, model, latents, norm, z, n_draws: int = 100, mag=None, sigma=None,
                     seed: int = 0, max_rows: int = 8192, keep_draws: bool = False) -> SEDWisePrediction:
    """Push ``n_draws`` posterior draws per galaxy through the SPS ``model`` to W1–W4 (module
    docstring). latents (N, S), norm (N,) (10⁻¹⁷ erg/s/cm²/Å), z (N,); ``mag``, ``sigma`` (N, 4)
    (``wNmpro``, ``wNsigmpro``) give p̂ too. Draws of galaxy i depend only on (seed, i)."""
    from sedinfer.filters import Filters

    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ParameterError(f"n_draws must be a positive integer, got {n_draws!r}")
    if tuple(model.param_names) != baseline.model_param_names:
        raise ParameterError(f"the SPS model's parameters {tuple(model.param_names)} are not those the "
                             f"baseline was trained for {baseline.model_param_names}")
    latents = np.asarray(latents)
    norm, z = np.asarray(norm, np.float64).reshape(-1), np.asarray(z, np.float64).reshape(-1)
    n = len(latents)
    if (mag is None) != (sigma is None):
        raise ParameterError("give both mag and sigma, or neither")
    filters = Filters(list(WISE_BANDS))
    step = max(1, max_rows // n_draws)
    mean, std = np.full((n, 4), np.nan), np.full((n, 4), np.nan)
    p = np.full((n, 4), np.nan) if mag is not None else None
    kept = np.full((n, n_draws, 4), np.nan, dtype=np.float32) if keep_draws else None
    bad = 0
    for a in range(0, n, step):
        rows = np.arange(a, min(n, a + step))
        theta = baseline.sample(latents[rows], norm[rows], z[rows], n_draws, seed=seed, rows=rows)
        full = baseline.full_theta(theta, z[rows]).reshape(-1, len(baseline.model_param_names))
        m = model_wise_vega(model, full, filters).reshape(len(rows), n_draws, 4)
        finite = np.isfinite(m)
        bad += int((~finite).any(-1).sum())
        with warnings.catch_warnings():     # an all-NaN galaxy row stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean[rows], std[rows] = np.nanmean(m, 1), np.nanstd(m, 1)
        if p is not None:
            p[rows] = phat_draws(np.asarray(mag)[rows], np.asarray(sigma)[rows], m)
        if kept is not None:
            kept[rows] = m
    return SEDWisePrediction(mean, std, p, kept, n_draws, bad)


def summary_table_draws(mag, sigma, pred, phat, rng: np.random.Generator | None = None
                        ) -> dict[str, list[float]]:
    """The keys of :func:`sedinfer.spectra.metrics.summary_table` (χ²_N, median χ², mean p̂,
    mean p̂ of the data under the data, detected fraction, per band) for a prediction whose p̂
    was computed from draws (:func:`phat_draws`)."""
    c = chi(mag, sigma, pred)
    base = phat_data_baseline(mag, sigma, rng=rng or np.random.default_rng(0), n_samples=64)
    with np.errstate(invalid="ignore"):
        return {
            "chi2_n": np.nanmean(c**2, 0).tolist(),
            "chi2_median": np.nanmedian(c**2, 0).tolist(),
            "phat_mean": np.nanmean(phat, 0).tolist(),
            "phat_data_mean": np.nanmean(base, 0).tolist(),
            "detected_fraction": detected(sigma, mag).mean(0).tolist(),
        }


__all__ = ["SEDWisePrediction", "model_wise_vega", "phat_draws", "predict_wise_sed", "summary_table_draws"]
