"""Wall time of a single-galaxy posterior fit: emcee on sedinfer's model against bagpipes' own fitter.

Usage:  OMP_NUM_THREADS=1 python benchmarks/bench_fit_baselines.py [--steps 20000] [--walkers 256]
            [--skip-bagpipes] [--bagpipes-live 400]

One mock SDSS galaxy (default PopSED model, z = 0.08, log M = 10.5, ugriz with the default SDSS
depth noise model) is fitted

(a) by :func:`sedinfer.posterior.mcmc.run_emcee` on the default model in float64 with the
    redshift fixed (10 free parameters), ``--walkers`` × ``--steps`` steps (default 256 × 20,000,
    run_emcee's defaults), burn-in a quarter;
(b) by ``bagpipes.fit`` with its default sampler here (nautilus; MultiNest when importable),
    the closest bagpipes configuration: delayed-τ + burst SFH, Charlot & Fall (CF00) dust with
    free A_V, η, n, redshift fixed (9 free parameters), on the same ugriz fluxes (µJy) through
    the same filter curves.

Prints one JSON line per fit with its wall-clock seconds and the machine, then a summary line.
bagpipes writes its files under a temporary working directory (removed afterwards).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import shutil
import tempfile
import time
import warnings

import numpy as np
import torch

import sedinfer as si
from sedinfer.noise import default_noise_model
from sedinfer.posterior.mcmc import run_emcee

BANDS = ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0")
# redshift, log_mass, log_z, kappa1-3, f_burst, t_burst (Gyr), tau_bc, tau_ism, n_dust
TRUTH = (0.08, 10.5, -0.2, 0.4, 0.6, 0.5, 0.05, 1.5, 0.6, 0.3, -0.4)


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")


def mock_galaxy(model: si.SPSModel, filters: si.Filters, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy ugriz fluxes and errors (nanomaggies) of ``TRUTH`` under the default SDSS noise model."""
    with torch.no_grad():
        flux = model.photometry(torch.tensor([TRUTH], dtype=model.dtype), filters, units="maggies")
    gen = torch.Generator().manual_seed(seed)
    noisy, sigma = default_noise_model(list(BANDS)).add_noise(flux, generator=gen)
    return noisy[0].double().numpy() * 1e9, sigma[0].double().numpy() * 1e9


def fit_emcee(flux: np.ndarray, err: np.ndarray, steps: int, walkers: int, seed: int) -> dict:
    model, filters = si.SPSModel().double(), si.Filters(list(BANDS))
    with torch.no_grad():   # build the photometry plan outside the timed fit (once per process)
        model.photometry(torch.tensor([TRUTH], dtype=torch.float64), filters)
    with warnings.catch_warnings(record=True) as caught:   # the convergence warning is reported below
        warnings.simplefilter("always")
        res = run_emcee(model, filters, flux, err, TRUTH[0], n_walkers=walkers, n_steps=steps,
                        burn=steps // 4, thin=max(1, steps // 200), seed=seed)
    q = np.percentile(res.samples[:, res.names.index("log_mass")], [16, 50, 84])
    return {"fit": "sedinfer run_emcee", "seconds": round(res.wall_time_s, 2), "n_walkers": walkers,
            "n_steps": steps, "n_evaluations": res.n_evaluations,
            "acceptance": round(res.acceptance_fraction, 3),
            "max_autocorr_steps": round(float(np.nanmax(res.autocorr_time)), 1),
            "converged_50tau": res.converged(), "warnings": len(caught),
            "log_mass_16_50_84": [round(float(v), 3) for v in q], "log_mass_true": TRUTH[1]}


def fit_bagpipes(flux: np.ndarray, err: np.ndarray, n_live: int) -> dict:
    filters = si.Filters(list(BANDS))
    work = tempfile.mkdtemp(prefix="bench_bagpipes_")
    here = os.getcwd()
    try:
        os.chdir(work)                      # bagpipes writes ./pipes/ relative to the import-time cwd
        paths = []
        for c in filters:
            paths.append(os.path.join(work, f"{c.name}.dat"))
            np.savetxt(paths[-1], np.column_stack([c.wave_aa, c.trans]))
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import bagpipes as pipes
        phot_ujy = np.column_stack([flux, err]) * 3631e-3      # nanomaggies -> µJy
        galaxy = pipes.galaxy("mock", lambda _id: phot_ujy, spectrum_exists=False, filt_list=paths)
        t_univ = float(pipes.config.cosmo.age(TRUTH[0]).value)
        instructions = {
            "redshift": TRUTH[0],
            "delayed": {"age": (0.1, 0.98 * t_univ), "tau": (0.1, 10.0), "massformed": (7.5, 13.0),
                        "metallicity": (0.005, 2.0)},
            "burst": {"age": (0.01, 0.98 * t_univ), "massformed": (5.0, 12.5), "metallicity": (0.005, 2.0)},
            "dust": {"type": "CF00", "Av": (0.0, 3.0), "eta": (1.0, 3.0), "n": (0.3, 2.5)},
        }
        fit = pipes.fit(galaxy, instructions)
        log = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(log):
            fit.fit(verbose=False, n_live=n_live)   # default sampler: MultiNest if importable, else nautilus
        seconds = time.perf_counter() - t0
        samples = fit.posterior.samples
        mass = np.log10(10 ** samples["delayed:massformed"] + 10 ** samples["burst:massformed"])
        q = np.percentile(mass, [16, 50, 84])
    finally:
        os.chdir(here)
        shutil.rmtree(work, ignore_errors=True)
    multinest = importlib.import_module("bagpipes.fitting.fit").multinest_available
    sampler = "multinest" if multinest else "nautilus"
    return {"fit": f"bagpipes.fit ({sampler})", "seconds": round(seconds, 2), "n_live": n_live,
            "n_free": 9, "log_mass_16_50_84": [round(float(v), 3) for v in q], "log_mass_true": TRUTH[1]}


def fit_timings(steps: int = 20_000, walkers: int = 256, skip_bagpipes: bool = False, n_live: int = 400,
                seed: int = 0) -> dict[str, float]:
    """Wall seconds of each single-galaxy fit on the same mock galaxy (used by bench_posterior.py)."""
    model = si.SPSModel().double()
    flux, err = mock_galaxy(model, si.Filters(list(BANDS)), seed)
    out = {f"emcee on sedinfer's model ({walkers} walkers x {steps} steps)":
           fit_emcee(flux, err, steps, walkers, seed)["seconds"]}
    if not skip_bagpipes:
        res = fit_bagpipes(flux, err, n_live)
        out[f"{res['fit']}, {n_live} live points"] = res["seconds"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000, help="emcee steps per walker (burn-in: a quarter)")
    ap.add_argument("--walkers", type=int, default=256)
    ap.add_argument("--skip-bagpipes", action="store_true")
    ap.add_argument("--bagpipes-live", type=int, default=400, help="nautilus live points (bagpipes default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = si.SPSModel().double()
    flux, err = mock_galaxy(model, si.Filters(list(BANDS)), args.seed)
    info = {"machine": machine(), "flux_nmgy": [round(float(v), 3) for v in flux],
            "flux_err_nmgy": [round(float(v), 3) for v in err]}
    results = [fit_emcee(flux, err, args.steps, args.walkers, args.seed)]
    print(json.dumps({**results[-1], **info}), flush=True)
    if not args.skip_bagpipes:
        results.append(fit_bagpipes(flux, err, args.bagpipes_live))
        print(json.dumps({**results[-1], **info}), flush=True)
    summary = {"summary": {r["fit"]: r["seconds"] for r in results}, "machine": info["machine"]}
    if len(results) == 2:
        summary["speedup"] = round(results[1]["seconds"] / results[0]["seconds"], 1)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
