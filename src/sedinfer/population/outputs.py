"""Tables of a fitted population: samples with derived quantities and their synthetic photometry.

:func:`population_table` draws from every member of a :class:`~sedinfer.population.Population`
(equal shares, column ``flow`` = member index) and adds, through the SPS model,

* ``log_mstar`` — log10 surviving stellar mass [M_sun];
* ``sfr_100myr`` [M_sun/yr] and ``log_sfr_100myr`` (−inf where no star formed in 100 Myr);
* ``mass_weighted_age`` [Gyr];
* ``mag_<band>`` — noiseless AB magnitudes, and ``mag_obs_<band>`` — magnitudes with the fit's
  noise model applied (asinh with the fit's softening, as compared with the catalog).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import astropy.units as u
import numpy as np
import torch

from sedinfer.units import asinh_mag

DERIVED_COLUMNS = {
    "log_mstar": u.dex(u.Msun),
    "sfr_100myr": u.Msun / u.yr,
    "log_sfr_100myr": u.dex(u.Msun / u.yr),
    "mass_weighted_age": u.Gyr,
}
PARAM_UNITS = {"redshift": u.dimensionless_unscaled, "log_mass": u.dex(u.Msun), "t_burst": u.Gyr}


@torch.no_grad()
def derived_columns(model: Any, theta: torch.Tensor, chunk: int = 100_000) -> dict[str, np.ndarray]:
    """Derived quantities (see module docstring) of θ (N, D), as float64 arrays."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("log_mstar", "sfr_100myr", "mass_weighted_age")}
    for start in range(0, theta.shape[0], chunk):
        d = model.derived(theta[start : start + chunk].to(model.dtype))
        for k in parts:
            parts[k].append(d[k].double().cpu().numpy())
    out = {k: np.concatenate(v) for k, v in parts.items()}
    with np.errstate(divide="ignore"):
        out["log_sfr_100myr"] = np.log10(out["sfr_100myr"])
    return {k: out[k] for k in DERIVED_COLUMNS}


@torch.no_grad()
def synthetic_photometry(
    model: Any,
    filters: Any,
    theta: torch.Tensor,
    noise: Any = None,
    softening: Sequence[float] | None = None,
    seed: int = 0,
    chunk: int = 100_000,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Noiseless AB magnitudes (N, B) and, with ``noise`` and ``softening``, noisy asinh magnitudes."""
    gen = torch.Generator().manual_seed(seed)
    clean, noisy = [], []
    for start in range(0, theta.shape[0], chunk):
        flux = model.photometry(
            theta[start : start + chunk].to(model.dtype), filters, units="maggies"
        ).double()
        with np.errstate(divide="ignore"):
            clean.append(-2.5 * np.log10(flux.cpu().numpy()))
        if noise is not None and softening is not None:
            f, _ = noise.add_noise(flux.cpu(), gen)
            noisy.append(asinh_mag(f.numpy(), np.asarray(softening, dtype=np.float64)))
    return np.concatenate(clean), (np.concatenate(noisy) if noisy else None)


def population_table(
    population: Any, model: Any, filters: Any = None, n: int = 10_000, seed: int = 0, photometry: bool = True
):
    """An astropy Table of ``n`` ensemble draws: ``flow``, the parameters, derived quantities
    and (with ``filters``) synthetic photometry. Metadata record the fit's bands and selection."""
    from astropy.table import Table

    from sedinfer.noise import from_dict as noise_from_dict

    k = population.n_flows
    per = population.sample_members(-(-n // k), seed=seed).cpu()  # (K, ceil(n/K), D)
    flow = np.repeat(np.arange(k), per.shape[1])[:n]
    theta = per.reshape(-1, per.shape[-1])[:n]
    meta = {
        "n_flows": k,
        "seed": seed,
        "bands": population.metadata.get("bands"),
        "selection": population.metadata.get("selection"),
    }
    table = Table(meta=meta)
    table["flow"] = flow.astype(np.int16)
    for j, name in enumerate(population.param_names):
        table[name] = theta[:, j].double().numpy()
        if name in PARAM_UNITS:
            table[name].unit = PARAM_UNITS[name]
    for name, values in derived_columns(model, theta).items():
        table[name] = values
        table[name].unit = DERIVED_COLUMNS[name]
    if photometry and filters is not None:
        nm = population.metadata.get("noise_model")
        noise = noise_from_dict(nm) if nm else None
        clean, noisy = synthetic_photometry(
            model, filters, theta, noise, population.metadata.get("softening_maggies"), seed=seed
        )
        for j, band in enumerate(filters.names):
            table[f"mag_{band}"] = clean[:, j]
            table[f"mag_{band}"].unit = u.ABmag
            if noisy is not None:
                table[f"mag_obs_{band}"] = noisy[:, j]
    return table


__all__ = ["DERIVED_COLUMNS", "derived_columns", "population_table", "synthetic_photometry"]
