"""Per-galaxy posteriors from a trained SED flow: input checks, samples, derived quantities, summaries.

:meth:`SEDPosterior.infer` takes fluxes and errors in nanomaggies (the catalog unit) and, in
spectroscopic-redshift mode, redshifts. Per row it

* masks bands whose flux or error is NaN/inf (the flow was trained with band dropout) and
  records them in ``masked_bands``;
* refuses rows it cannot process — an error ≤ 0, a redshift missing or outside the trained range,
  no usable band — with the reason in ``reason`` (samples NaN), never dropping them;
* flags rows outside the training support (``ood``; SEDFLOW §5.1): any observed feature (asinh
  magnitude, its log error, the redshift) outside the central 99.9% of the training set, naming
  the features in ``ood_features``. Their posteriors are extrapolations and should not be trusted.

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
    rows that failed; ``ok`` (N,); ``reason``, ``masked_bands``, ``ood_features`` (N,) strings;
    ``ood`` (N,) bool.
    """

    names: tuple[str, ...]
    samples: np.ndarray
    ok: np.ndarray
    reason: np.ndarray
    masked_bands: np.ndarray
    ood: np.ndarray
    ood_features: np.ndarray

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
        return table


class SEDPosterior:
    """A trained SED posterior for catalogs; wraps a :class:`~sedinfer.posterior.Posterior`."""

    def __init__(self, posterior: Posterior) -> None:
        sed = posterior.metadata.get("sed")
        if sed is None:
            raise SedinferError("this posterior has no SED metadata; it was not trained by "
                                "train_sed_posterior")
        from sedinfer.sps.model import LEGACY_SETTINGS, saved_model_kwargs

        self.posterior = posterior.eval()
        # a model saved before a forward-model setting existed keeps the value it was trained with
        model = saved_model_kwargs(sed["config"].get("model", {}), sed.get("model_config"))
        pinned = {k: model[k] for k in LEGACY_SETTINGS}
        self.meta = {**sed, "config": {**sed["config"], "model": model},
                     "model_config": {**sed.get("model_config", {}), **pinned}}
        cfg = sed["config"]
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
              derived: bool = True, batch_size: int = 8192, row_seeds=None) -> InferenceResult:
        """Posterior samples for N galaxies (fluxes and errors (N, B) in nanomaggies).

        ``seed`` seeds the whole call; ``row_seeds`` (N,) seeds each galaxy separately (see
        :meth:`Posterior.sample`)."""
        flux, sigma, z, observed, ok, reasons, masked = self.check_rows(flux_nmgy, flux_err_nmgy, redshift)
        n = flux.shape[0]
        z_safe = None if z is None else np.where(ok, z, 0.0)
        x = self.context(np.where(ok[:, None], flux, 0.0), np.where(ok[:, None], sigma, 1.0), z_safe,
                         observed & ok[:, None])
        ood_features = self.out_of_support(x, observed)
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
                               ood_features != "", ood_features.astype(str))

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
