"""Population inference on a PopSED-like mock (PopSED §4.1) and the selection-effect test.

Usage:
    python scripts/population_validation.py recovery --n 10000 --flows 5 --epochs 250 [--write-demo]
    python scripts/population_validation.py selection --n 10000 --epochs 250

``recovery``: a mock of ``--n`` galaxies (parent p(z, log M) ∝ dV/dz · φ(log M) with a GAMA double
Schechter φ, other parameters from PopSED Table 2, SDSS noise, r < 19.8 and S/N > 1 in ugriz) is
fitted by an ensemble of flows; per parameter and derived quantity the 1-D Wasserstein distance
and KS statistic of the ensemble and of every flow against the truth, and the ensemble coverage,
go to ``docs/population_recovery.json`` (``docs/population_selection.json``); figures to
``docs/figures/population/``.

``selection``: a parent population (default 0.01 < z < 0.2, 10 < log M < 12; 53 % of it has
r < 19.8) observed with r < 19.8 is fitted over the parent's box without and with the soft
selection function; both are compared with the parent (which the catalog under-represents at low
mass and high z).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import sedinfer as si
from sedinfer.atomic import write_text
from sedinfer.population import FitConfig, SoftMagnitudeLimit, fit, plots
from sedinfer.population.data import build_noise_model, catalog_fluxes, observed_magnitudes
from sedinfer.population.forward import ForwardModel, make_simulator
from sedinfer.population.mock import TABLE2, MockPopulation, make_mock_catalog
from sedinfer.population.outputs import derived_columns, population_table
from sedinfer.population.reference import FAMILIES as REFERENCE_FAMILIES
from sedinfer.population.runner import FIGURE_COLUMNS
from sedinfer.population.validation import (
    coverage_by_ensemble_size,
    marginal_distances,
    photometry_c2st,
    recovery_report,
)
from sedinfer.priors import Uniform

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "docs" / "figures" / "population"
DEMO = ROOT / "src" / "sedinfer" / "data" / "demo" / "popsed_mock.parquet"


def columns_of(model, theta: np.ndarray) -> dict[str, np.ndarray]:
    cols = {n: theta[:, j] for j, n in enumerate(model.param_names)}
    cols.update(derived_columns(model, torch.as_tensor(theta, dtype=model.dtype)))
    return cols


def write_demo(mock, path: Path) -> None:
    from astropy.table import Table

    from sedinfer.catalog import write_catalog

    t = Table(
        meta={
            "description": "PopSED-like mock (scripts/population_validation.py recovery, seed 0)",
            "selection": json.dumps(mock.selection),
            "n_parent": mock.n_parent,
        }
    )
    t["id"] = np.arange(len(mock.mags))
    for j, b in enumerate(mock.bands):
        f = 10 ** (-0.4 * (mock.mags[:, j] - 22.5))
        t[f"flux_{b}"] = f.astype(np.float32)
        t[f"flux_err_{b}"] = (f * mock.mag_errs[:, j] / 1.0857362).astype(np.float32)
    for j, p in enumerate(mock.param_names):
        t[f"true_{p}"] = mock.theta[:, j].astype(np.float32)
    write_catalog(t, path, overwrite=True)


def config_from(args, **kw) -> FitConfig:
    return FitConfig(
        epochs=args.epochs,
        batch_size=args.batch,
        n_simulated=args.n_simulated or args.batch,
        steps_per_epoch=args.steps_per_epoch,
        learning_rate=args.lr,
        loss=args.loss,
        seed=args.seed,
        entropy_weight=args.entropy_weight,
        entropy_decay=args.entropy_decay,
        entropy_spread=args.entropy_spread,
        marginal_weight=args.marginal_weight,
        reference_scatter=args.reference_scatter,
        reference_family=args.reference_family,
        whiten=not args.no_whiten,
        bootstrap=not args.no_bootstrap,
        **kw,
    )


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), {time.strftime('%Y-%m-%d')}"
    )


def photometry_marginals(catalog_mags: np.ndarray, synthetic_mags: np.ndarray, bands: list[str]) -> dict:
    """W1 and KS per band and adjacent colour, catalog against synthetic asinh magnitudes."""
    names = bands + [f"{a}-{b}" for a, b in zip(bands[:-1], bands[1:], strict=True)]
    with_colours = lambda m: np.column_stack([m, -np.diff(m, axis=1)])  # noqa: E731
    return marginal_distances(with_colours(catalog_mags), with_colours(synthetic_mags), names)


def fit_forward_model(model, sdss, mock, pop, bounds) -> ForwardModel:
    """The forward model of a fit to ``mock``: its box, catalog-fitted noise model and softening."""
    flux, flux_err = catalog_fluxes(mock.mags, mock.mag_errs)
    soft = np.asarray(pop.metadata["softening_maggies"], dtype=np.float64)
    return ForwardModel(make_simulator(model, sdss, bounds), build_noise_model("catalog", flux, flux_err,
                        sdss.names), torch.as_tensor(soft, dtype=torch.float32))


def resimulated_truth(model, sdss, mock, pop, bounds) -> np.ndarray:
    """Asinh magnitudes (N, B) of the catalog's true parameters through the fit's forward model."""
    forward = fit_forward_model(model, sdss, mock, pop, bounds)
    with torch.no_grad():
        theta = torch.as_tensor(mock.theta, dtype=model.dtype)
        mags, _, _ = forward(theta, 1.0, torch.Generator().manual_seed(3))
    return mags.double().numpy()


def mock_population(args) -> MockPopulation:
    """PopSED's Table 2 population, or ("flat") every Table-2 parameter uniform over its range."""
    if args.mock_population == "table2":
        return MockPopulation()
    return MockPopulation(others={k: Uniform(d.low, d.high) for k, d in TABLE2.items()})


def recovery(args, model, sdss, bounds) -> dict:
    if args.write_demo and (args.mock_seed != 0 or args.mock_population != "table2"):
        raise SystemExit("--write-demo writes the shipped demo catalog: the Table-2 mock with seed 0")
    mock = make_mock_catalog(model, sdss, args.n, seed=args.mock_seed, population=mock_population(args))
    if args.write_demo:
        write_demo(mock, DEMO)
    cfg = config_from(
        args, checkpoint_dir=args.checkpoints and str(Path(args.checkpoints) / (args.tag or "recovery"))
    )
    sel = None
    if args.select:
        sel = SoftMagnitudeLimit(mock.selection["band"], mock.selection["limit_mag"], 0.05)
    t0 = time.perf_counter()
    pop = fit(
        mock.mags, mock.mag_errs, model, sdss, n_flows=args.flows, config=cfg, bounds=bounds, selection=sel
    )
    seconds = time.perf_counter() - t0
    table = population_table(pop, model, sdss, n=args.samples * (5 if sel else 1), seed=1)
    names = list(model.param_names) + ["log_mstar", "log_sfr_100myr", "mass_weighted_age"]
    truth = columns_of(model, mock.theta)
    ens = {c: np.asarray(table[c]) for c in table.colnames}
    limit_band = mock.selection["band"]
    beyond_limit = float((ens[f"mag_obs_{limit_band}"] >= mock.selection["limit_mag"]).mean())
    selected_fraction = None
    if sel is not None:  # the flow models the parent: compare the draws the survey would have selected
        keep = ens[f"mag_obs_{sel.band}"] < sel.limit
        selected_fraction = float(keep.mean())
        ens = {c: v[keep] for c, v in ens.items()}
    members = [{c: v[ens["flow"] == k] for c, v in ens.items()} for k in range(pop.n_flows)]
    report = recovery_report(
        {k: truth[k] for k in names}, {k: ens[k] for k in names}, [{k: m[k] for k in names} for m in members]
    )
    if pop.n_flows > 2:  # how coverage grows with the number of flows
        report["coverage_by_ensemble_size"] = coverage_by_ensemble_size(
            np.column_stack([truth[k] for k in names]),
            [np.column_stack([m[k] for k in names]) for m in members],
            names,
        )
    # same population, new draw
    second = make_mock_catalog(model, sdss, min(args.n, 20_000), seed=99, population=mock_population(args))
    report["catalog_noise_floor"] = marginal_distances(  # truth vs a second draw of the same size: the floor
        np.column_stack([truth[k] for k in names]),
        np.column_stack([columns_of(model, second.theta)[k] for k in names]),
        names,
    )
    bands = list(sdss.names)
    soft = np.asarray(pop.metadata["softening_maggies"], dtype=np.float64)
    catalog_mags = observed_magnitudes(mock.mags, soft).double().numpy()  # asinh, as the fit saw it
    syn_mags = np.column_stack([ens[f"mag_obs_{b}"] for b in bands])
    oracle_mags = resimulated_truth(model, sdss, mock, pop, bounds)
    report["photometry_marginals"] = {  # 1-D distances per band and colour, catalog vs synthetic
        "ensemble": photometry_marginals(catalog_mags, syn_mags, bands),
        "true_parameters_resimulated": photometry_marginals(catalog_mags, oracle_mags, bands),
    }
    report["photometry_c2st"] = {  # can a classifier tell the catalog from the synthetic photometry?
        "ensemble": photometry_c2st(catalog_mags, syn_mags),
        "members": [
            photometry_c2st(catalog_mags, np.column_stack([m[f"mag_obs_{b}"] for b in bands]))["accuracy"]
            for m in members
        ],
        "ensemble_colours_only": photometry_c2st(np.diff(catalog_mags, axis=1), np.diff(syn_mags, axis=1)),
        "second_mock": photometry_c2st(catalog_mags, observed_magnitudes(second.mags, soft).double().numpy()),
        "true_parameters_resimulated": photometry_c2st(catalog_mags, oracle_mags),
        "meaning": "MLP classifier accuracy (5-fold), catalog vs synthetic asinh magnitudes; 0.5: "
        "indistinguishable; second_mock: a new draw of the true population, the value to expect; "
        "true_parameters_resimulated: the catalog's true parameters through the fit's own forward "
        "model (its catalog-fitted noise model), i.e. what the fit could reach",
    }
    kw = dict(
        colors=["0.4", "C0"],
        labels=["truth (mock)", "inferred population"],
        members=members if pop.n_flows > 1 else (),
    )
    tag = args.tag or "mock"
    plots.corner([truth, ens], FIGURE_COLUMNS, FIG / f"{tag}_corner.png", **kw)
    plots.corner([truth, ens], list(model.param_names), FIG / f"{tag}_corner_all.png", **kw)
    plots.corner(
        [{b: catalog_mags[:, j] for j, b in enumerate(bands)}, {b: ens[f"mag_obs_{b}"] for b in bands}],
        bands,
        FIG / f"{tag}_photometry.png",
        colors=["0.4", "C0"],
        labels=["mock catalog", "synthetic photometry of the inferred population"],
    )
    plots.redshift_distribution([m["redshift"] for m in members], FIG / f"{tag}_nz.png", truth["redshift"])
    plots.main_sequence(ens, FIG / f"{tag}_sfms.png", truth)
    return {
        "n_galaxies": args.n,
        "n_parent": mock.n_parent,
        "n_flows": args.flows,
        "draws_beyond_catalog_limit": {"band": limit_band, "limit_mag": mock.selection["limit_mag"],
                                       "fraction": beyond_limit},
        "selection": None
        if sel is None
        else {**sel.to_dict(), "selected_fraction_of_draws": selected_fraction},
        "fit_seconds": round(seconds, 1),
        "seconds_per_flow": [h["seconds"] for h in pop.history],
        "config": cfg.to_dict(),
        "monitor": [
            {k: h.get(k) for k in ("seed", "entropy_weight", "monitor_initial", "monitor_final",
                                   "monitor_floor")}
            for h in pop.history
        ],
        "recovery": report,
    }


def selection(args, model, sdss) -> dict:
    parent_pop = MockPopulation(z_range=(0.01, args.z_max), log_mass_range=(args.log_mass_min, 12.0))
    parent = columns_of(model, parent_pop.sample(model, 20_000, np.random.default_rng(5)).numpy())
    mock = make_mock_catalog(model, sdss, args.n, population=parent_pop, seed=1)
    catalog = columns_of(model, mock.theta)
    low, high = model.prior.bounds()
    names = list(model.param_names)
    for name, (lo, hi) in (("redshift", parent_pop.z_range), ("log_mass", parent_pop.log_mass_range)):
        low[names.index(name)], high[names.index(name)] = lo, hi
    out = {"n_galaxies": args.n, "selected_fraction": args.n / mock.n_parent,
           "parent": {"z_range": list(parent_pop.z_range), "log_mass_range": list(parent_pop.log_mass_range)}}
    fits = {}
    for label, sel in (("without", None), ("with", SoftMagnitudeLimit("sdss_r0", 19.8, 0.05))):
        cfg = config_from(
            args, checkpoint_dir=args.checkpoints and str(Path(args.checkpoints) / f"sel_{label}")
        )
        pop = fit(
            mock.mags, mock.mag_errs, model, sdss, n_flows=1, config=cfg, bounds=(low, high), selection=sel
        )
        table = population_table(pop, model, sdss, n=args.samples, seed=2, photometry=False)
        fits[label] = {c: np.asarray(table[c]) for c in table.colnames}
        keys = names + ["log_mstar", "log_sfr_100myr", "mass_weighted_age"]
        out[label] = {
            "seconds": round(sum(h["seconds"] for h in pop.history), 1),  # training, across resumes
            "vs_parent": marginal_distances(
                np.column_stack([parent[k] for k in keys]),
                np.column_stack([fits[label][k] for k in keys]),
                keys,
            ),
        }
    keys = names + ["log_mstar", "log_sfr_100myr", "mass_weighted_age"]
    out["catalog_vs_parent"] = marginal_distances(
        np.column_stack([catalog[k] for k in keys]), np.column_stack([parent[k] for k in keys]), keys
    )
    plots.selection_comparison(
        parent,
        catalog,
        fits["without"],
        fits["with"],
        ["redshift", "log_mstar", "log_sfr_100myr", "mass_weighted_age"],
        FIG / f"selection_{args.tag or 'parent'}.png",
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("recovery", "selection"))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--flows", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=250)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--n-simulated", type=int, default=None, help="simulated per step (default: batch)")
    ap.add_argument("--steps-per-epoch", type=int, default=None, help="default: one pass over the catalog")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--loss", default="sliced")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--entropy-weight", type=float, default=FitConfig.entropy_weight)
    ap.add_argument("--entropy-decay", type=float, default=FitConfig.entropy_decay)
    ap.add_argument("--entropy-spread", type=float, default=FitConfig.entropy_spread)
    ap.add_argument("--marginal-weight", type=float, default=FitConfig.marginal_weight)
    ap.add_argument("--reference-scatter", type=float, default=FitConfig.reference_scatter)
    ap.add_argument("--reference-family", choices=REFERENCE_FAMILIES, default=FitConfig.reference_family)
    ap.add_argument("--no-whiten", action="store_true", help="raw magnitudes (whiten=False)")
    ap.add_argument("--select", action="store_true",
                    help="recovery: fit with the mock's magnitude limit as a soft selection function")
    ap.add_argument("--no-bootstrap", action="store_true", help="all flows on the whole catalog")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--write-demo", action="store_true")
    ap.add_argument("--mock-population", choices=("table2", "flat"), default="table2",
                    help="recovery: the mock's parameters other than z and mass from PopSED Table 2, or "
                    "uniform over Table 2's ranges")
    ap.add_argument("--mock-seed", type=int, default=0,
                    help="recovery: seed of the mock catalog (0: the shipped demo; the noise floor uses 99)")
    ap.add_argument("--z-max", type=float, default=0.2, help="selection: parent redshift range (0.01, z_max)")
    ap.add_argument("--log-mass-min", type=float, default=10.0, help="selection: parent log M in (min, 12)")
    ap.add_argument(
        "--tag", default=None, help="figure/JSON name prefix (default: mock; JSON population_<part>)"
    )
    ap.add_argument("--json", default=None, help="default: docs/population_<part>.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, sdss = si.SPSModel(), si.Filters("sdss")
    low, high = model.prior.bounds()
    high[0] = 0.8  # PopSED: 0 < z < 0.8 (and 7.5 < log M < 13, the model default)
    result = (
        recovery(args, model, sdss, (low, high)) if args.part == "recovery" else selection(args, model, sdss)
    )
    result.update(
        {
            "machine": machine(),
            "command": "python scripts/population_validation.py " + " ".join(os.sys.argv[1:]),
        }
    )
    name = args.part if args.tag is None else f"{args.part}_{args.tag}"
    path = Path(args.json or ROOT / "docs" / f"population_{name}.json")
    write_text(path, json.dumps(result, indent=1, default=float))
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("recovery",)}, indent=1, default=float)[
            :4000
        ]
    )


if __name__ == "__main__":
    main()
