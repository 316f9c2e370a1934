"""Build a flux-limited-sample inference prior p(z, log M) for ``SEDConfig.inference_prior``.

Observes the parent population of :class:`sedinfer.population.mock.MockPopulation`
(p(z, log M) ∝ dV_c/dz · GAMA double-Schechter φ(log M), PopSED Table 2 for the other
parameters) through the forward model and noise model of a ``train-posterior`` config, keeps the
galaxies with observed magnitude in ``--band`` below ``--mag-max`` (no other cut) and writes the
histogram of their (z, log M) as JSON (:class:`sedinfer.posterior.flux_limited.FluxLimitedPrior`).
Name that file in the config: ``inference_prior = "sdss_main_prior.json"``.

    OMP_NUM_THREADS=1 python scripts/flux_limited_prior.py configs/sdss_photz.toml --mag-max 17.77 \\
        --out configs/sdss_main_prior.json

Cost (one core, SPSModel(), SDSS depth noise): 400 galaxies with r < 17.77 took 434,568 parents and
11.5 s; with r < 19.8, 41,494 parents and 1.1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.posterior.flux_limited import FluxLimitedPrior, check_selection


def build_flux_limited_prior(model, filters, noise, spec: dict, chunk: int = 50_000) -> FluxLimitedPrior:
    """Observe the MockPopulation parent through ``model``, ``filters`` and ``noise``, keep galaxies
    with observed magnitude in ``spec["band"]`` < ``spec["mag_max"]`` until ``spec["n_galaxies"]``
    pass, and histogram their (z, log M) on the parent's ranges (settings: ``check_selection``)."""
    from sedinfer.population.mock import TABLE2, MockPopulation, make_mock_catalog

    spec = check_selection(spec)
    if spec["band"] not in filters.names:
        raise ParameterError(f"band {spec['band']!r} is not one of the filters {list(filters.names)}")
    # parameters Table 2 has no distribution for (e.g. log_u of a nebular model) keep the model's prior
    extra = {n: model.prior[n] for n in model.param_names
             if n not in TABLE2 and n not in ("redshift", "log_mass")}
    population = MockPopulation(others={**TABLE2, **extra})
    for name, (lo, hi) in (("redshift", population.z_range), ("log_mass", population.log_mass_range)):
        box = model.prior[name]
        if lo < box.low or hi > box.high:
            raise ParameterError(f"the flux-limited sample's {name} range [{lo}, {hi}] leaves the model's "
                                 f"prior box [{box.low}, {box.high}]")
    with np.errstate(invalid="ignore", divide="ignore"):     # magnitudes of negative fluxes are unused
        mock = make_mock_catalog(model, filters, spec["n_galaxies"], population=population, noise=noise,
                                 limit_band=spec["band"], limit_mag=spec["mag_max"], min_snr=-math.inf,
                                 seed=spec["seed"], chunk=chunk)
    names = list(mock.param_names)
    z, m = mock.theta[:, names.index("redshift")], mock.theta[:, names.index("log_mass")]
    ze = np.linspace(*population.z_range, spec["z_bins"] + 1)
    me = np.linspace(*population.log_mass_range, spec["log_mass_bins"] + 1)
    counts, _, _ = np.histogram2d(z, m, bins=[ze, me])
    selection = {**spec, "n_parent": int(mock.n_parent), "z_range": list(population.z_range),
                 "log_mass_range": list(population.log_mass_range),
                 "median_redshift": float(np.median(z)), "median_log_mass": float(np.median(m))}
    return FluxLimitedPrior(tuple(ze.tolist()), tuple(me.tolist()),
                            tuple(tuple(int(v) for v in r) for r in counts), selection)


def main() -> None:
    from sedinfer.filters import Filters
    from sedinfer.posterior.card import load_config

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", help="train-posterior TOML (forward model, noise, bands)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--band", default="sdss_r0")
    p.add_argument("--mag-max", type=float, default=17.77)
    p.add_argument("--n-galaxies", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    start = time.perf_counter()
    prior = build_flux_limited_prior(cfg.build_model(), Filters(list(cfg.bands)), cfg.build_noise(),
                                     {"band": args.band, "mag_max": args.mag_max,
                                      "n_galaxies": args.n_galaxies, "seed": args.seed})
    with open(args.out, "w") as fh:
        json.dump(prior.to_dict(), fh)
    print(f"{prior.describe()}; {time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
