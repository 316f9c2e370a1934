"""Validation of population inference with the package defaults, on mocks that did not choose them.

Usage (from the repository root; each fit resumes from its checkpoints under --work):
    python scripts/population_validation.py fit --mock table2 --seed 1 --work /tmp/popval
    python scripts/population_validation.py fit --mock flat --seed 1 --work /tmp/popval
    python scripts/population_validation.py fit --mock bagpipes --seed 1 --work /tmp/popval
    python scripts/population_validation.py calibration          # after table2 seeds 1-5
    python scripts/population_validation.py demo                 # the shipped demo catalog

Mocks (10⁴ galaxies, r < 19.8 and S/N > 1 in ugriz, SDSS depth noise; seed 0 is the
development mock and the demo catalog, so validation uses seeds >= 1):

* ``table2``: parent p(z, log M) ∝ dV/dz · φ(log M) (GAMA double Schechter), the other parameters
  from PopSED Table 2 (:mod:`sedinfer.population.mock`), through sedinfer's default model;
* ``flat``: the same with every Table-2 parameter uniform over its Table-2 range;
* ``bagpipes``: made by bagpipes (:mod:`sedinfer.bagpipes_mock`: delayed-τ + burst, Calzetti,
  nebular emission); the truth is bagpipes' own stellar mass, SFR(100 Myr) and redshift.

``fit`` writes ``docs/population/<mock>_seed<S>.json``: W1 and KS of the ensemble and of every
flow against the catalog's truth, the photometry C2ST of the catalog against the fit, against a
second draw of the truth's noise (the truth's own photometry resimulated with the fit's noise
model: what no fit can beat), and for ``table2`` whether each quantile of the *population's*
marginal (from a 10⁵-galaxy mock) lies in the ensemble's 68 % band. ``calibration`` combines the
table2 fits into ``docs/population/calibration.json`` with the calibrated reference value.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import sedinfer as si
from sedinfer.atomic import write_text
from sedinfer.population import FitConfig, fit, plots
from sedinfer.population.data import build_noise_model, catalog_fluxes, observed_magnitudes
from sedinfer.population.mock import TABLE2, MockPopulation, make_mock_catalog
from sedinfer.population.outputs import derived_columns, population_table
from sedinfer.population.runner import FIGURE_COLUMNS
from sedinfer.population.validation import (
    band_hits,
    calibration_summary,
    marginal_distances,
    marginal_quantiles,
    photometry_c2st,
)
from sedinfer.priors import Uniform

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "population"
DEMO = ROOT / "src" / "sedinfer" / "data" / "demo" / "popsed_mock.parquet"
DERIVED = ("log_mstar", "log_sfr_100myr", "mass_weighted_age")
TRUTH_SEED = 1_000_003          # the 10⁵-galaxy draw of the population behind the table2 quantiles


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {time.strftime('%Y-%m-%d')}")


def mock_population(name: str) -> MockPopulation:
    if name == "table2":
        return MockPopulation()
    return MockPopulation(others={k: Uniform(d.low, d.high) for k, d in TABLE2.items()})


def truth_columns(model, theta: np.ndarray) -> dict[str, np.ndarray]:
    cols = {n: theta[:, j] for j, n in enumerate(model.param_names)}
    cols.update(derived_columns(model, torch.as_tensor(theta, dtype=model.dtype)))
    return cols


def load_mock(args, model, sdss) -> dict:
    """{"mags", "errs" (N, B) AB, "flux_true" (N, B) maggies, "truth": {name: (N,)}, "n_parent"}."""
    if args.mock == "bagpipes":
        from sedinfer.bagpipes_mock import make_bagpipes_catalog
        from sedinfer.catalog import read_catalog, write_catalog

        path = Path(args.work) / f"bagpipes_calzetti_seed{args.seed}.parquet"
        if not path.exists():
            write_catalog(make_bagpipes_catalog(args.n, sdss, seed=args.seed, progress=True), path)
        t = read_catalog(path)
        flux = np.column_stack([np.asarray(t[f"flux_{b}"], np.float64) for b in sdss.names]) * 1e-9
        err = np.column_stack([np.asarray(t[f"flux_err_{b}"], np.float64) for b in sdss.names]) * 1e-9
        true = np.column_stack([np.asarray(t[f"flux_true_{b}"], np.float64) for b in sdss.names]) * 1e-9
        truth = {"redshift": np.asarray(t["true_redshift"]), "log_mstar": np.asarray(t["true_log_mstar"]),
                 "log_sfr_100myr": np.asarray(t["true_log_sfr_100myr"])}
        return {"mags": -2.5 * np.log10(flux), "errs": 1.0857362 * err / flux, "flux_true": true,
                "truth": truth, "n_parent": int(t.meta["n_parent"]), "catalog": str(path)}
    mock = make_mock_catalog(model, sdss, args.n, seed=args.seed, population=mock_population(args.mock))
    return {"mags": mock.mags, "errs": mock.mag_errs, "flux_true": mock.flux,
            "truth": truth_columns(model, mock.theta), "n_parent": mock.n_parent, "theta": mock.theta}


def population_quantiles(model, sdss, names) -> np.ndarray:
    """Quantiles (L, D) of the table2 population's selected marginals, from 10⁵ galaxies (cached)."""
    path = OUT / "table2_population_quantiles.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["names"] == list(names):
            return np.asarray(saved["quantiles"])
    mock = make_mock_catalog(model, sdss, 100_000, seed=TRUTH_SEED, population=mock_population("table2"))
    cols = truth_columns(model, mock.theta)
    q = marginal_quantiles(np.column_stack([cols[k] for k in names]), names)
    write_text(path, json.dumps({"names": list(names), "seed": TRUTH_SEED, "n": 100_000,
                                 "quantiles": q.tolist()}, indent=1))
    return q


def resimulated_truth(flux_true: np.ndarray, noise_dict: dict, soft: np.ndarray) -> np.ndarray:
    """The truth's noiseless fluxes with a fresh draw of the fit's own (catalog-fitted) noise model
    (its ``to_dict()``, saved with the population), as asinh magnitudes (N, B): the photometry of the
    true population as the fit's forward model sees it."""
    from sedinfer.noise import from_dict
    from sedinfer.units import asinh_mag

    noise = from_dict(noise_dict)
    noisy, _ = noise.add_noise(torch.as_tensor(flux_true), torch.Generator().manual_seed(3))
    return asinh_mag(noisy.double().numpy(), soft)


def run_fit(args) -> dict:
    model, sdss = si.SPSModel(), si.Filters("sdss")
    low, high = model.prior.bounds()
    low[0], high[0] = 0.0, 0.8                       # the CLI's default box: 0 < z < 0.8 (PopSED)
    data = load_mock(args, model, sdss)
    tag = f"{args.mock}_seed{args.seed}"
    cfg = FitConfig(seed=args.fit_seed, **({"epochs": args.epochs} if args.epochs else {}))
    t0 = time.perf_counter()
    if args.interim:
        pop = finished_members(data, model, sdss, cfg, (low, high), Path(args.work) / "checkpoints" / tag)
    else:
        pop = fit(data["mags"], data["errs"], model, sdss, n_flows=args.flows, config=cfg, bounds=(low, high),
                  checkpoint_dir=Path(args.work) / "checkpoints" / tag, scheduler=args.scheduler,
                  workers=args.workers)
    seconds = time.perf_counter() - t0
    model.to("cpu")
    table = population_table(pop.cpu(), model, sdss, n=args.samples, seed=1)
    ens = {c: np.asarray(table[c]) for c in table.colnames}
    members = [{c: v[ens["flow"] == k] for c, v in ens.items()} for k in range(pop.n_flows)]
    truth = data["truth"]
    names = [n for n in (*model.param_names, *DERIVED) if n in truth]
    stack = lambda d: np.column_stack([np.asarray(d[k], np.float64) for k in names])  # noqa: E731
    report = {
        "names": names,
        "ensemble": marginal_distances(stack(truth), stack(ens), names),
        "members": [marginal_distances(stack(truth), stack(m), names) for m in members],
    }
    if args.mock == "table2" and pop.n_flows > 1:
        q_true = population_quantiles(model, sdss, names)
        member_q = np.stack([marginal_quantiles(stack(m), names) for m in members])
        report["band_hits"] = band_hits(q_true, member_q).astype(int).tolist()
    bands = list(sdss.names)
    soft = np.asarray(pop.metadata["softening_maggies"], np.float64)
    cat = observed_magnitudes(data["mags"], soft).double().numpy()
    syn = np.column_stack([ens[f"mag_obs_{b}"] for b in bands])
    again = resimulated_truth(data["flux_true"], pop.metadata["noise_model"], soft)
    report["photometry_c2st"] = {
        "ensemble": photometry_c2st(cat, syn)["accuracy"],
        "members": [photometry_c2st(cat, np.column_stack([m[f"mag_obs_{b}"] for b in bands]))["accuracy"]
                    for m in members],
        "truth_resimulated": photometry_c2st(cat, again)["accuracy"],
        "meaning": "classifier accuracy, catalog vs synthetic asinh magnitudes (0.5: indistinguishable); "
                   "truth_resimulated: the truth's noiseless photometry with a new draw of the fit's noise "
                   "model",
    }
    cols = [c for c in FIGURE_COLUMNS if c in truth]
    plots.corner([truth, ens], cols, OUT / f"{tag}{'_interim' if args.interim else ''}_corner.png",
                 colors=["0.4", "C0"],
                 labels=[f"truth ({args.mock} mock)", "inferred population (ensemble)"],
                 members=members if pop.n_flows > 1 else ())
    return {
        "command": "python " + " ".join(sys.argv), "machine": machine(), "mock": args.mock, "seed": args.seed,
        "n_galaxies": len(data["mags"]), "n_parent": data["n_parent"], "n_flows": pop.n_flows,
        "config": cfg.to_dict(), "fit_seconds": round(seconds, 1),
        "seconds_per_flow": [h["seconds"] for h in pop.history],
        "monitor": [{k: h[k] for k in ("seed", "monitor_initial", "monitor_final", "monitor_floor")}
                    for h in pop.history],
        "recovery": report,
    }


def finished_members(data, model, sdss, cfg, bounds, ckpt_dir: Path):
    """The members of an unfinished fit whose checkpoints say they are done (``--interim``)."""
    from sedinfer.population import BoxFlow, Population
    from sedinfer.population.data import default_softening

    members, history = [], []
    for path in sorted(ckpt_dir.glob("member*.pt")):
        saved = torch.load(path, weights_only=True)
        state = json.loads(saved["state_json"])
        if state["done"]:
            low, high = (torch.as_tensor(b) for b in bounds)
            flow = BoxFlow(low, high, cfg.flow, model.param_names)
            flow.load_state_dict(saved["flow"])
            members.append(flow.eval())
            history.append(state)
    if not members:
        raise SystemExit(f"no finished member under {ckpt_dir}")
    flux, flux_err = catalog_fluxes(data["mags"], data["errs"])
    noise = build_noise_model("catalog", flux, flux_err, sdss.names)
    meta = {"softening_maggies": default_softening(flux, flux_err).tolist(), "noise_model": noise.to_dict(),
            "bands": list(sdss.names), "history": history}
    return Population(members, meta)


def run_calibration(args) -> dict:
    runs = [json.loads((OUT / f"table2_seed{s}.json").read_text()) for s in args.seeds]
    names = runs[0]["recovery"]["names"]
    hits = [np.asarray(r["recovery"]["band_hits"], dtype=bool) for r in runs]
    return {"seeds": list(args.seeds), **calibration_summary(hits, names, runs[0]["n_flows"]),
            "meaning": "share of the true population's quantiles (5 %, 10 %, ..., 95 %) inside the "
                       "ensemble's central 68 % band of member quantiles, over independent mocks; "
                       "calibrated_rate: the same share for a calibrated ensemble of this size "
                       "(exchangeable truth and members, simulated)"}


def run_demo(_args) -> dict:
    from astropy.table import Table

    from sedinfer.catalog import write_catalog

    model, sdss = si.SPSModel(), si.Filters("sdss")
    mock = make_mock_catalog(model, sdss, 10_000, seed=0)
    t = Table(meta={"description": "PopSED Table-2 mock, seed 0 (scripts/population_validation.py demo)",
                    "selection": json.dumps(mock.selection), "n_parent": mock.n_parent})
    t["id"] = np.arange(len(mock.mags))
    for j, b in enumerate(mock.bands):
        f = 10 ** (-0.4 * (mock.mags[:, j] - 22.5))
        t[f"flux_{b}"] = f.astype(np.float32)
        t[f"flux_err_{b}"] = (f * mock.mag_errs[:, j] / 1.0857362).astype(np.float32)
    for j, p in enumerate(mock.param_names):
        t[f"true_{p}"] = mock.theta[:, j].astype(np.float32)
    write_catalog(t, DEMO, overwrite=True)
    return {"wrote": str(DEMO), "rows": len(t)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("fit", "calibration", "demo"))
    ap.add_argument("--mock", choices=("table2", "flat", "bagpipes"), default="table2")
    ap.add_argument("--seed", type=int, default=1, help="mock seed (0 is the development mock)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="calibration: table2 seeds")
    ap.add_argument("--fit-seed", type=int, default=0, help="FitConfig.seed")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--flows", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="default: FitConfig's")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/popval", help="checkpoints and generated catalogs")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler for the flows ('local' starts one)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--interim", action="store_true",
                    help="evaluate the finished members of a fit still running "
                         "(writes <mock>_seed<S>_interim.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part == "fit":
        suffix = "_interim" if args.interim else ""
        result, path = run_fit(args), OUT / f"{args.mock}_seed{args.seed}{suffix}.json"
    elif args.part == "calibration":
        result, path = run_calibration(args), OUT / "calibration.json"
    else:
        print(json.dumps(run_demo(args)))
        return
    write_text(path, json.dumps(result, indent=1, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
