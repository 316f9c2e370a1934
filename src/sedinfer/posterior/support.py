"""A support test in the joint space the flow is conditioned on (SEDFLOW §5.1, issue 20 §3).

A per-feature box misses galaxies whose every magnitude is ordinary but whose colours are not
(a reversed SED). :class:`SupportModel` is a Gaussian mixture p(y) fitted to the context of
held-out simulations, y = (asinh magnitude and log10 error of every band, redshift in
spectroscopic mode; the observed flags are left out), standardised. A galaxy is outside the
support when its negative log density −log p(y_obs) exceeds a threshold: the ``quantile``
(default 99 %) of −log p over other held-out simulations of the same brightness — in
:data:`N_BRIGHTNESS_BINS` equally populated bins of the mean observed asinh magnitude — so about
1 − ``quantile`` of galaxies like the training set's are flagged at every brightness (a single
threshold flags bright galaxies, rare in the training set, more often). For a galaxy with masked
bands the mixture is marginalised exactly over them (drop the rows and columns of means and
covariances) and the thresholds are those of the same band pattern, computed on the calibration
simulations for every pattern at build time.

:func:`sedinfer.posterior.sed.build_support` makes one for any trained
:class:`~sedinfer.posterior.galaxies.SEDPosterior` from fresh simulations of its own config (no
retraining); it is saved in the model's metadata as plain numbers (JSON, versioned), not pickles.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass

import numpy as np
import torch

from sedinfer.errors import ParameterError

SUPPORT_VERSION = 1
N_BRIGHTNESS_BINS = 10              # threshold bins in the mean observed asinh magnitude
SUPPORT_SEED_OFFSET = 5_003_000     # fresh simulations: config seed + this (not training's, not validation's)


def _feature_index(n_bands: int, spec: bool) -> list[int]:
    """Context columns of the support features: amag and log error per band, then the redshift."""
    idx = [j for b in range(n_bands) for j in (3 * b, 3 * b + 1)]
    return idx + ([3 * n_bands] if spec else [])


def _pattern_dims(pattern: tuple[bool, ...], spec: bool) -> list[int]:
    """Feature dimensions kept for a band pattern (True = observed)."""
    dims = [j for b, o in enumerate(pattern) if o for j in (2 * b, 2 * b + 1)]
    return dims + ([2 * len(pattern)] if spec else [])


def _key(pattern) -> str:
    return "".join("1" if o else "0" for o in pattern)


@dataclass(frozen=True)
class SupportModel:
    """Gaussian mixture over standardised context features plus NLL thresholds per band pattern.

    ``center``/``scale`` (d,) standardise the features; ``weights`` (K,), ``means`` (K, d),
    ``covariances`` (K, d, d) in standardised units; ``thresholds`` maps a band pattern ('11111')
    to ``{"edges": inner bin edges of the mean observed asinh magnitude, "nll": NLL threshold per
    bin}``; a galaxy above its bin's threshold is flagged.
    """

    n_bands: int
    spec: bool
    center: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    thresholds: dict[str, float]
    quantile: float
    info: dict = dataclasses.field(default_factory=dict)

    def features(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Standardised features (N, d) from flow contexts (N, C)."""
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        y = x[:, _feature_index(self.n_bands, self.spec)].astype(np.float64)
        return (y - self.center) / self.scale

    def nll(self, x: torch.Tensor | np.ndarray, observed: np.ndarray) -> np.ndarray:
        """−log p of each row's observed features (N,), the mixture marginalised over masked bands."""
        y = self.features(x)
        observed = np.asarray(observed, dtype=bool)
        out = np.full(len(y), np.nan)
        for pattern in {tuple(r) for r in observed.tolist()}:
            if not any(pattern):
                continue
            rows = np.all(observed == np.array(pattern), axis=1)
            out[rows] = self._marginal_nll(y[rows], _pattern_dims(pattern, self.spec))
        return out

    def _marginal_nll(self, y: np.ndarray, dims: list[int]) -> np.ndarray:
        yt = torch.as_tensor(y[:, dims], dtype=torch.float64)
        mu = torch.as_tensor(self.means[:, dims], dtype=torch.float64)
        cov = torch.as_tensor(self.covariances[:, dims][:, :, dims], dtype=torch.float64)
        mvn = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov)
        logw = torch.log(torch.as_tensor(self.weights, dtype=torch.float64))
        lp = torch.logsumexp(mvn.log_prob(yt[:, None, :]) + logw, dim=-1)
        return (-lp).numpy()

    def threshold(self, x: torch.Tensor | np.ndarray, observed: np.ndarray) -> np.ndarray:
        """NLL threshold (N,) of each row's band pattern and brightness bin (inf: no band observed)."""
        observed = np.asarray(observed, dtype=bool)
        bright = _brightness(x, observed)
        out = np.full(len(observed), np.inf)
        for i, row in enumerate(observed):
            t = self.thresholds.get(_key(row))
            if t is not None:
                out[i] = t["nll"][int(np.searchsorted(t["edges"], bright[i], side="right"))]
        return out

    def flags(self, x: torch.Tensor | np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(outside (N,) bool, nll (N,))``: NLL above the threshold of the row's pattern and brightness."""
        nll = self.nll(x, observed)
        return np.isfinite(nll) & (nll > self.threshold(x, observed)), nll

    def to_dict(self) -> dict:
        """JSON-ready numbers (lists), with a format version."""
        return {"kind": "gmm", "version": SUPPORT_VERSION, "n_bands": self.n_bands, "spec": self.spec,
                "center": self.center.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "means": self.means.tolist(),
                "covariances": self.covariances.tolist(), "thresholds": dict(self.thresholds),
                "quantile": self.quantile, "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: dict) -> SupportModel:
        if data.get("kind") != "gmm" or not isinstance(data.get("version"), int) \
                or data["version"] > SUPPORT_VERSION:
            raise ParameterError(f"support model of kind {data.get('kind')!r}, version "
                                 f"{data.get('version')!r}; this sedinfer reads kind 'gmm' up to "
                                 f"version {SUPPORT_VERSION}")
        arr = {k: np.asarray(data[k], dtype=np.float64) for k in ("center", "scale", "weights", "means",
                                                                  "covariances")}
        return cls(int(data["n_bands"]), bool(data["spec"]), thresholds=dict(data["thresholds"]),
                   quantile=float(data["quantile"]), info=dict(data.get("info", {})), **arr)


def _brightness(x: torch.Tensor | np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Mean asinh magnitude (N,) over each row's observed bands (NaN if none)."""
    x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    mags = x[:, 0:3 * observed.shape[1]:3].astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(observed, mags, 0.0).sum(1) / observed.sum(1)


def fit_support(x_fit: torch.Tensor, x_cal: torch.Tensor, n_bands: int, spec: bool, n_components: int = 64,
                quantile: float = 0.99, seed: int = 0) -> SupportModel:
    """Fit the mixture on contexts ``x_fit`` (N, C), all bands observed, and set the thresholds on
    ``x_cal`` (M, C) for every band pattern."""
    from sklearn.mixture import GaussianMixture

    if not 0.5 < quantile < 1:
        raise ParameterError(f"quantile must be in (0.5, 1), got {quantile}")
    start = time.perf_counter()
    idx = _feature_index(n_bands, spec)
    y = x_fit.numpy()[:, idx].astype(np.float64)
    center, scale = y.mean(0), y.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    gmm = GaussianMixture(n_components, covariance_type="full", reg_covar=1e-4, max_iter=300,
                          random_state=seed).fit((y - center) / scale)
    model = SupportModel(n_bands, spec, center, scale, gmm.weights_, gmm.means_, gmm.covariances_, {},
                         quantile)
    thresholds = {}
    for pattern in itertools.product((True, False), repeat=n_bands):
        if not any(pattern):
            continue
        obs = np.tile(np.array(pattern), (len(x_cal), 1))
        nll, bright = model.nll(x_cal, obs), _brightness(x_cal, obs)
        edges = np.quantile(bright, np.linspace(0, 1, N_BRIGHTNESS_BINS + 1)[1:-1])
        which = np.searchsorted(edges, bright, side="right")
        thresholds[_key(pattern)] = {"edges": edges.tolist(),
                                     "nll": [float(np.quantile(nll[which == k], quantile))
                                             for k in range(N_BRIGHTNESS_BINS)]}
    info = {"n_fit": len(x_fit), "n_calibration": len(x_cal), "n_components": n_components, "seed": seed,
            "converged": bool(gmm.converged_), "fit_seconds": round(time.perf_counter() - start, 2)}
    return dataclasses.replace(model, thresholds=thresholds, info=info)


__all__ = ["SupportModel", "fit_support", "SUPPORT_VERSION", "SUPPORT_SEED_OFFSET"]


