"""Mock catalogs: parameters drawn from the prior, forward-modelled and noised.

:func:`simulate_catalog` is what ``sedinfer simulate`` runs. The returned Table holds, per
galaxy: ``id``; the true parameters (named as ``model.param_names``); the derived quantities of
:mod:`sedinfer.sps.derived`; and per band the noisy flux ``flux_<band>``, its uncertainty
``flux_err_<band>`` and the noiseless flux ``flux_true_<band>``, all in nanomaggies
(:data:`sedinfer.catalog.FLUX_UNIT`). Its ``meta`` records how it was made (model
configuration, prior, filters, noise model, seed, sedinfer version), nested values as JSON
strings, so :func:`sedinfer.catalog.write_catalog` stores it in every format.

The Gaussian noise is kept as drawn (``redraw_negative=False``): negative fluxes stay, and the
pulls (f − f_true)/σ have mean 0 and standard deviation 1 in every band. PopSED's redraw of
negative fluxes (``redraw_negative=True``) biases mocks bright (issue 20: pull means +0.46 to
+0.66) and is kept only as an explicit option.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import astropy.units as u
import numpy as np
import torch
from astropy.table import Column, Table

from sedinfer.catalog import FLUX_UNIT, flux_column, flux_err_column, flux_true_column
from sedinfer.errors import ParameterError
from sedinfer.units import NMGY_PER_MAGGY


def _unit(text: str | None):
    """An astropy unit for a unit string of sedinfer's tables (None when dimensionless)."""
    if not text:
        return None
    return u.Unit(text, parse_strict="silent")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _resolve_filters(filters):
    from sedinfer.filters import Filters

    if isinstance(filters, Filters):
        return filters
    if isinstance(filters, str) and "," in filters:
        filters = [f.strip() for f in filters.split(",") if f.strip()]
    return Filters(filters)


def new_seed() -> int:
    """A fresh random seed (63 bits) from the operating system's entropy."""
    return int(np.random.SeedSequence().entropy % (2**63))


def simulate_catalog(n: int, filters: str | Sequence[str] | os.PathLike = "sdss", model=None,
                     noise=None, seed: int | None = None, chunk_size: int = 10000,
                     progress: bool = True, redraw_negative: bool = False) -> Table:
    """Simulate ``n`` galaxies from the model's prior and observe them through ``filters``.

    Parameters
    ----------
    n : number of galaxies (>= 1).
    filters : a :class:`sedinfer.Filters`, a group alias (``"sdss"``), a sedpy name, a
        comma-separated string of names or a sequence of names / paths.
    model : the :class:`sedinfer.SPSModel` (default: ``SPSModel()``); θ ~ ``model.prior``.
    noise : a noise model over the filter names (default:
        :func:`sedinfer.noise.default_noise_model` of those bands).
    seed : seeds the ``torch.Generator`` that draws θ and the noise; the same seed gives the
        same table. ``None`` draws a fresh seed, recorded in ``meta["seed"]``.
    chunk_size : galaxies per forward-model call (bounds memory).
    progress : show a tqdm progress bar (only on a terminal).
    redraw_negative : redraw negative noisy fluxes (PopSED) instead of keeping the noise as drawn.
    """
    from sedinfer import __version__
    from sedinfer.priors import PARAMETER_INFO
    from sedinfer.sps.derived import DERIVED_NAMES, DERIVED_UNITS

    n = _positive_int(n, "n")
    chunk_size = _positive_int(chunk_size, "chunk_size")
    if seed is None:
        seed = new_seed()
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    filters = _resolve_filters(filters)
    if model is None:
        from sedinfer.sps.model import SPSModel

        model = SPSModel()
    if noise is None:
        from sedinfer.noise import default_noise_model

        noise = default_noise_model(filters.names)
    if tuple(noise.bands) != tuple(filters.names):
        raise ParameterError(f"the noise model's bands {list(noise.bands)} differ from the filters "
                             f"{list(filters.names)}")
    clash = set(model.param_names) & set(DERIVED_NAMES)
    if clash:
        raise ParameterError(f"parameter names {sorted(clash)} clash with derived quantities")

    generator = torch.Generator().manual_seed(seed)
    theta, flux, noisy, sigma = simulate_photometry(model, filters, noise, n, generator, chunk_size, progress,
                                                    redraw_negative=redraw_negative)
    with torch.no_grad():
        derived = [model.derived(theta[s:s + chunk_size]) for s in range(0, n, chunk_size)]
    derived = {k: torch.cat([d[k].cpu() for d in derived]) for k in DERIVED_NAMES}

    table = Table()
    table["id"] = Column(np.arange(n, dtype=np.int64), description="galaxy index")
    theta_np = theta.cpu().numpy()
    for j, name in enumerate(model.param_names):
        unit, description = PARAMETER_INFO.get(name, ("", ""))
        table[name] = Column(theta_np[:, j], unit=_unit(unit), description=f"true {description}".strip())
    for name in DERIVED_NAMES:
        table[name] = Column(derived[name].numpy(), unit=_unit(DERIVED_UNITS.get(name)))
    for values, column, what in ((noisy, flux_column, "observed (noisy) flux"),
                                 (sigma, flux_err_column, "1-sigma flux uncertainty"),
                                 (flux, flux_true_column, "noiseless (true) flux")):
        values = (values * NMGY_PER_MAGGY).numpy()
        for b, band in enumerate(filters.names):
            table[column(band)] = Column(values[:, b], unit=FLUX_UNIT, description=f"{what} in {band}")
    to_dict = getattr(noise, "to_dict", None)
    table.meta.update({
        "sedinfer_version": __version__,
        "seed": seed,
        "n": n,
        "filters": json.dumps(list(filters.names)),
        "flux_unit": FLUX_UNIT.to_string(),
        "model_config": json.dumps(model.config.to_dict()),
        "prior": json.dumps(model.prior.to_dict()),
        "noise_model": json.dumps(to_dict() if to_dict is not None else repr(noise)),
        "noise_redraw_negative": bool(redraw_negative),
    })
    return table


def simulate_photometry(model, filters, noise, n: int, generator: torch.Generator, chunk_size: int = 10000,
                        progress: bool = True, redraw_negative: bool = False,
                        theta: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """θ ~ ``model.prior`` (n, D) and its noiseless flux, noisy flux and σ (n, B), in maggies (CPU).

    The core of :func:`simulate_catalog`, shared with the posterior training sets so that both
    see the same model and noise. ``theta`` (n, D), if given, is used instead of prior draws;
    ``redraw_negative`` is passed to the noise model's ``add_noise`` (default: noise as drawn).
    """
    from tqdm.auto import tqdm

    if theta is None:
        theta = model.prior.sample((n,), generator=generator, dtype=model.dtype)
    elif theta.shape != (n, len(model.param_names)):
        raise ParameterError(f"theta has shape {tuple(theta.shape)}; expected "
                             f"({n}, {len(model.param_names)})")
    theta = theta.to(device=model.device, dtype=model.dtype)
    fluxes = []
    with torch.no_grad(), tqdm(total=n, desc="simulating", unit="gal", disable=None if progress else True,
                               dynamic_ncols=True) as bar:
        for start in range(0, n, chunk_size):
            chunk = theta[start:start + chunk_size]
            fluxes.append(model.photometry(chunk, filters, units="maggies", chunk_size=chunk_size).cpu())
            bar.update(len(chunk))
        flux = torch.cat(fluxes)
        noisy, sigma = noise.add_noise(flux, generator=generator, redraw_negative=redraw_negative)
    return theta.cpu(), flux, noisy, sigma


__all__ = ["simulate_catalog", "simulate_photometry", "new_seed"]
