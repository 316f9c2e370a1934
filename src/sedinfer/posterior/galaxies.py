"""Per-galaxy posteriors from a trained SED flow: input checks, samples, derived quantities, summaries.

:meth:`SEDPosterior.infer` takes fluxes and errors in nanomaggies (the catalog unit) and, in
spectroscopic-redshift mode, redshifts. Per row it

* masks bands whose flux or error is NaN/inf (the flow was trained with band dropout) and
  records them in ``masked_bands``;
* refuses rows it cannot process — an error ≤ 0, a redshift missing or outside the trained range,
  no usable band — with the reason in ``reason`` (samples NaN), never dropping them;
* raises errors below the noise model's floor — the 10 % quantile of the training p(σ | f)
  at the observed flux (clipped at 0), :meth:`sedinfer.noise.NoiseModel.sigma_floor` — to that
  floor, naming the bands in ``inflated_bands`` (``error_floor=False`` turns this off). The
  posterior is then that of a galaxy with the floor's errors: wider, never narrower, than the
  catalog's errors would allow, and inside the training support;
* flags rows outside the training support (``ood``; SEDFLOW §5.1): any observed feature (asinh
  magnitude, its log error, the redshift) outside the central 99.9% of the training set, and, for
  models with a support model (:mod:`sedinfer.posterior.support`), a joint density below the
  threshold set on held-out simulations (``density`` in ``ood_features``, its −log p in
  ``support_nll``). Their posteriors are extrapolations and should not be trusted.

Negative fluxes are valid (faint galaxies) and are kept: asinh magnitudes handle them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from sedinfer.errors import CatalogError, SedinferError
from sedinfer.posterior.encoding import encode
from sedinfer.posterior.estimator import Posterior
from sedinfer.posterior.estimator import load as load_posterior
from sedinfer.units import MAGGIES_PER_NMGY

SHIPPED = {"sdss-specz": "sdss_specz.pt", "sdss-photz": "sdss_photz.pt"}
DEFAULT_MODEL = "sdss-specz"
DERIVED_OUTPUTS = ("log_mstar", "sfr_100myr", "sfr_1gyr", "log_ssfr", "mass_weighted_age")


def shipped_path(name: str) -> Path:
    """File of a shipped model (``sdss-specz``, ``sdss-photz``)."""
    if name not in SHIPPED:
        raise SedinferError(f"unknown shipped model {name!r}; shipped models: {sorted(SHIPPED)}")
    path = Path(str(resources.files("sedinfer") / "data" / "posteriors" / SHIPPED[name]))
    if not path.is_file():
        raise SedinferError(f"shipped model {name!r} is not installed ({path} missing)")
    return path


@dataclass
class InferenceResult:
    """Posterior samples and per-row status of :meth:`SEDPosterior.infer` for N galaxies.

    ``samples`` (N, S, K) over ``names`` (inferred parameters, then derived quantities), NaN for
    rows that failed; ``ok`` (N,); ``reason``, ``masked_bands``, ``ood_features``,
    ``inflated_bands`` (bands whose error was raised to the noise model's floor) (N,) strings;
    ``ood`` (N,) bool; ``support_nll`` (N,) −log density of the support model (NaN without one).
    """

    names: tuple[str, ...]
    samples: np.ndarray
    ok: np.ndarray
    reason: np.ndarray
    masked_bands: np.ndarray
    ood: np.ndarray
    ood_features: np.ndarray
    inflated_bands: np.ndarray | None = None
    support_nll: np.ndarray | None = None

    def summary_table(self):
        """Astropy Table: ``<name>_p16/_p50/_p84`` per quantity, then the status columns."""
        from astropy.table import Table

        table = Table()
        q = np.full((len(self.ok), len(self.names), 3), np.nan, dtype=np.float32)
        if self.ok.any():
            q[self.ok] = np.moveaxis(np.percentile(self.samples[self.ok], [16, 50, 84], axis=1), 0, -1)
        for k, name in enumerate(self.names):
            for j, tag in enumerate(("p16", "p50", "p84")):
                table[f"{name}_{tag}"] = q[:, k, j]
        table["ok"] = self.ok
        table["ood"] = self.ood
        table["reason"] = self.reason.astype(str)
        table["masked_bands"] = self.masked_bands.astype(str)
        table["ood_features"] = self.ood_features.astype(str)
        n = len(self.ok)
        inflated = self.inflated_bands if self.inflated_bands is not None else np.full(n, "")
        table["inflated_bands"] = inflated.astype(str)
        nll = self.support_nll if self.support_nll is not None else np.full(n, np.nan)
        table["support_nll"] = nll.astype(np.float32)
        return table


class SEDPosterior:
    """A trained SED posterior for catalogs; wraps a :class:`~sedinfer.posterior.Posterior`."""

    def __init__(self, posterior: Posterior) -> None:
        sed = posterior.metadata.get("sed")
        if sed is None:
            raise SedinferError("this posterior has no SED metadata; it was not trained by "
                                "train_sed_posterior")
        from sedinfer.posterior.sed_config import saved_config
        from sedinfer.posterior.support import SupportModel
        from sedinfer.sps.model import LEGACY_SETTINGS, saved_model_kwargs

        self.posterior = posterior.eval()
        # a model saved before a forward-model or noise setting existed keeps the value it was trained with
        model = saved_model_kwargs(sed["config"].get("model", {}), sed.get("model_config"))
        pinned = {k: model[k] for k in LEGACY_SETTINGS}
        self.meta = {**sed, "config": {**saved_config(sed["config"]), "model": model},
                     "model_config": {**sed.get("model_config", {}), **pinned}}
        cfg = sed["config"]
        self.support = SupportModel.from_dict(sed["support"]) if sed.get("support") else None
        self._noise = None
        self.bands: tuple[str, ...] = tuple(cfg["bands"])
        self.redshift_mode: str = cfg["redshift_mode"]
        self.param_names: tuple[str, ...] = posterior.param_names
        self.softening = torch.tensor(sed["softening_maggies"], dtype=torch.float32)
        self.redshift_range = tuple(sed["redshift_range"])
        self._model = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.param_names + DERIVED_OUTPUTS

    @property
    def model(self):
        """The forward model the flow was trained with (built on first use)."""
        if self._model is None:
            import dataclasses

            from sedinfer.posterior.sed_config import SEDConfig

            cfg = SEDConfig.from_dict(self.meta["config"])
            self._model = dataclasses.replace(cfg, prior=self.meta["prior"]).build_model()
        return self._model

    @property
    def noise(self):
        """The noise model of the training set (from the saved ``noise`` dict)."""
        if self._noise is None:
            from sedinfer.noise import from_dict

            self._noise = from_dict(self.meta["noise"])
        return self._noise

    def error_floor(self, flux_maggies: np.ndarray) -> np.ndarray:
        """Error floor (N, B) in maggies at the observed fluxes (N, B) (negatives and NaN read as 0)."""
        f = np.where(np.isfinite(flux_maggies), np.clip(flux_maggies, 0.0, None), 0.0)
        return self.noise.sigma_floor(torch.as_tensor(f, dtype=torch.float64)).numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        return self.posterior.save(path)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike = DEFAULT_MODEL) -> SEDPosterior:
        """A shipped model by name (``sdss-specz``) or a model file."""
        key = str(name_or_path)
        path = shipped_path(key) if key in SHIPPED else Path(key)
        return cls(load_posterior(path))

    # ------------------------------------------------------------------ inference
    def check_rows(self, flux_nmgy, flux_err_nmgy, redshift=None):
        """Validate inputs; returns (flux, sigma in maggies, z, observed mask, ok, reasons, masked)."""
        flux = np.asarray(flux_nmgy, dtype=np.float64)
        err = np.asarray(flux_err_nmgy, dtype=np.float64)
        nb = len(self.bands)
        if flux.ndim != 2 or flux.shape[1] != nb or err.shape != flux.shape:
            raise CatalogError(f"fluxes and errors must both have shape (N, {nb}) for bands "
                               f"{list(self.bands)}, "
                               f"got {flux.shape} and {err.shape}")
        n = flux.shape[0]
        spec = self.redshift_mode == "spec"
        if spec:
            if redshift is None:
                raise CatalogError("this model conditions on spectroscopic redshifts: a redshift column is "
                                   "required")
            z = np.asarray(redshift, dtype=np.float64).reshape(-1)
            if z.shape[0] != n:
                raise CatalogError(f"{z.shape[0]} redshifts for {n} rows")
        else:
            z = None
        observed = np.isfinite(flux) & np.isfinite(err)
        reasons = np.full(n, "", dtype=object)
        bad_err = observed & (err <= 0)
        for i, b in zip(*np.nonzero(bad_err), strict=True):
            reasons[i] += f"flux_err_{self.bands[b]}={err[i, b]:g} is not > 0; "
        none = ~observed.any(1)
        reasons[none] += "no band with finite flux and error; "
        if spec:
            lo, hi = self.redshift_range
            zbad = ~np.isfinite(z) | (z < lo) | (z > hi)
            for i in np.nonzero(zbad)[0]:
                reasons[i] += f"redshift={z[i]:g} outside the trained range [{lo:g}, {hi:g}]; "
        reasons = np.array([r.rstrip("; ") for r in reasons], dtype=object)
        ok = reasons == ""
        masked = np.array([",".join(b for b, o in zip(self.bands, row, strict=True) if not o)
                           for row in observed], dtype=object)
        return flux * MAGGIES_PER_NMGY, err * MAGGIES_PER_NMGY, z, observed, ok, reasons, masked

    def context(self, flux_maggies, sigma_maggies, z, observed) -> torch.Tensor:
        f = torch.as_tensor(flux_maggies, dtype=torch.float32)
        s = torch.as_tensor(sigma_maggies, dtype=torch.float32)
        zz = torch.as_tensor(z, dtype=torch.float32) if z is not None else None
        return encode(f, s, self.softening, zz, torch.as_tensor(observed))

    def out_of_support(self, x: torch.Tensor, observed: np.ndarray) -> np.ndarray:
        """(N,) strings naming the context features outside the training range ('' if none)."""
        names = self.posterior.context_names
        ranges = self.meta["feature_ranges"]
        xs = x.numpy()
        flags = np.zeros(xs.shape, dtype=bool)
        for j, name in enumerate(names):
            if name in ranges:
                lo, hi = ranges[name]
                flags[:, j] = (xs[:, j] < lo) | (xs[:, j] > hi)
        for b in range(len(self.bands)):
            flags[:, 3 * b:3 * b + 2] &= observed[:, [b]]
        return np.array([",".join(names[j] for j in np.nonzero(row)[0]) for row in flags], dtype=object)

    def infer(self, flux_nmgy, flux_err_nmgy, redshift=None, n_samples: int = 1000, seed: int | None = None,
              derived: bool = True, batch_size: int = 8192, row_seeds=None,
              error_floor: bool = True) -> InferenceResult:
        """Posterior samples for N galaxies (fluxes and errors (N, B) in nanomaggies).

        ``seed`` seeds the whole call; ``row_seeds`` (N,) seeds each galaxy separately (see
        :meth:`Posterior.sample`). ``error_floor``: raise errors below the noise model's floor to it
        (see the module docstring)."""
        flux, sigma, z, observed, ok, reasons, masked = self.check_rows(flux_nmgy, flux_err_nmgy, redshift)
        n = flux.shape[0]
        use = observed & ok[:, None]
        inflate = np.zeros_like(use)
        if error_floor:
            floor = self.error_floor(flux)
            inflate = use & (sigma < floor)
            sigma = np.where(inflate, floor, sigma)
        inflated = np.array([",".join(b for b, i in zip(self.bands, row, strict=True) if i)
                             for row in inflate], dtype=object)
        z_safe = None if z is None else np.where(ok, z, 0.0)
        x = self.context(np.where(ok[:, None], flux, 0.0), np.where(ok[:, None], sigma, 1.0), z_safe, use)
        ood_features = self.out_of_support(x, observed)
        nll = np.full(n, np.nan)
        if self.support is not None and ok.any():
            outside, nll[ok] = self.support.flags(x[torch.as_tensor(ok)], use[ok])
            rows = np.nonzero(ok)[0][outside]
            ood_features[rows] = [f"{f},density" if f else "density" for f in ood_features[rows]]
        ood_features[~ok] = ""
        names = self.names if derived else self.param_names
        samples = np.full((n, n_samples, len(names)), np.nan, dtype=np.float32)
        rows = np.nonzero(ok)[0]
        if rows.size:
            seeds = None if row_seeds is None else np.asarray(row_seeds)[rows]
            theta = self.posterior.sample(x[rows], n_samples, batch_size=batch_size, seed=seed,
                                          row_seeds=seeds)
            samples[rows, :, :len(self.param_names)] = theta.cpu().numpy()
            if derived:
                samples[rows, :, len(self.param_names):] = self._derived(theta, z, rows)
        return InferenceResult(tuple(names), samples, ok, reasons.astype(str), masked.astype(str),
                               ood_features != "", ood_features.astype(str), inflated.astype(str), nll)

    @torch.no_grad()
    def _derived(self, theta: torch.Tensor, z, rows, chunk: int = 100_000) -> np.ndarray:
        """Derived quantities (M, S, len(DERIVED_OUTPUTS)) of samples θ (M, S, D)."""
        model = self.model
        m, s, _ = theta.shape
        flat = theta.reshape(m * s, -1)
        full = torch.empty(m * s, len(model.param_names))
        for j, name in enumerate(model.param_names):
            if name in self.param_names:
                full[:, j] = flat[:, self.param_names.index(name)]
            elif name == "redshift" and z is not None:
                full[:, j] = torch.as_tensor(z[rows], dtype=torch.float32).repeat_interleave(s)
            else:
                raise SedinferError(f"model parameter {name!r} is neither inferred nor given")
        out = np.empty((m * s, len(DERIVED_OUTPUTS)), dtype=np.float32)
        for start in range(0, m * s, chunk):
            d = model.derived(full[start:start + chunk])
            out[start:start + chunk] = torch.stack([d[k] for k in DERIVED_OUTPUTS], -1).cpu().numpy()
        return out.reshape(m, s, -1)


__all__ = ["SEDPosterior", "InferenceResult", "SHIPPED", "DEFAULT_MODEL", "DERIVED_OUTPUTS", "shipped_path"]
