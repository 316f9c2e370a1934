"""End-to-end validation of a trained SED posterior on fresh simulations (``sedinfer validate``).

1. Calibration: ``n`` held-out simulations drawn with a seed the training never used, all bands
   observed; p-p, SBC and TARP (:mod:`sedinfer.posterior.validation`) on the inferred parameters.
2. Recovery figure: posterior median with 16–84% intervals against the truth.
3. Against MCMC (optional, ``n_mcmc`` galaxies): emcee on the same forward model with the
   Gaussian flux likelihood, compared per parameter (KS) and jointly (C2ST), with a SEDFLOW
   Fig. 2-style figure for the first galaxy. Galaxies are drawn among those with r-band S/N ≥ 10,
   where the posterior is narrower than the prior and the comparison means something.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from sedinfer.atomic import save_figure, write_text
from sedinfer.errors import ParameterError
from sedinfer.units import NMGY_PER_MAGGY

VALIDATION_SEED_OFFSET = 7_919_000  # held-out simulations: config seed + this


def _recovery_plot(truth: np.ndarray, samples: np.ndarray, names, path: Path, max_points: int = 300) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    cols = 5
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    q = np.percentile(samples[:max_points], [16, 50, 84], axis=1)
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.axis("off")
            continue
        t = truth[:max_points, j]
        ax.errorbar(t, q[1, :, j], yerr=[q[1, :, j] - q[0, :, j], q[2, :, j] - q[1, :, j]], fmt="o", ms=2,
                    lw=0.5, alpha=0.6)
        lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"true {names[j]}")
        ax.set_ylabel("posterior median")
    fig.tight_layout()
    save_figure(fig, path)


def validate_sed_posterior(sed, outdir: str | Path, n: int = 2000, n_samples: int = 1000,
                           seed: int | None = None,
                           n_mcmc: int = 0, mcmc_steps: int = 3000, min_snr: float = 0.0,
                           progress: bool = True) -> dict:
    """Run the checks above; write figures and ``validation.json`` into ``outdir``; return the numbers.

    ``min_snr`` > 0 restricts the calibration set to galaxies whose r-band (else first band)
    S/N is at least that (drawn from a larger pool): the regime where the data, not the prior,
    shape the posterior.
    """
    from sedinfer.filters import Filters
    from sedinfer.posterior.calibration import calibration_report
    from sedinfer.posterior.sed import training_set
    from sedinfer.posterior.sed_config import SEDConfig

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(SEDConfig.from_dict(sed.meta["config"]), band_dropout=0.0)
    seed = config.seed + VALIDATION_SEED_OFFSET if seed is None else seed
    pool = n if min_snr <= 0 else 40 * n
    if n_mcmc and sed.meta.get("inference_prior"):
        raise ParameterError("n_mcmc: the MCMC comparison samples the prior box, but this model was trained "
                             "with a flux-limited inference prior; run it without MCMC")
    theta, x, info = training_set(config, n=pool, seed=seed, progress=progress)
    if min_snr > 0:
        r = list(sed.bands).index("sdss_r0") if "sdss_r0" in sed.bands else 0
        keep = torch.nonzero(info["noisy"][:, r] / info["sigma"][:, r] >= min_snr)[:n, 0]
        theta, x = theta[keep], x[keep]
        info = {**info, **{k: info[k][keep] for k in ("noisy", "sigma", "theta_full")}}
        n = len(keep)
    start = time.perf_counter()
    samples = sed.posterior.sample(x, n_samples, seed=seed).cpu().numpy()
    sample_seconds = time.perf_counter() - start
    names = list(sed.param_names)
    bounds = (sed.posterior.low.cpu().numpy(), sed.posterior.high.cpu().numpy())
    report = calibration_report(samples, theta.numpy(), names, bounds, outdir, seed=seed)
    _recovery_plot(theta.numpy(), samples, names, outdir / "recovery.png")
    report["held_out_seed"] = seed
    report["min_snr_r"] = min_snr
    report["sampling"] = {"n_galaxies": n, "n_samples": n_samples, "seconds": round(sample_seconds, 2),
                          "samples_per_second": round(n * n_samples / sample_seconds)}
    if n_mcmc:
        report["mcmc"] = _compare_mcmc(sed, info, x, n_mcmc, n_samples, mcmc_steps, seed, outdir,
                                       Filters(list(config.bands)))
    write_text(outdir / "validation.json", json.dumps(report, indent=2, default=float) + "\n")
    return report


def _compare_mcmc(sed, info, x, n_gal, n_samples, steps, seed, outdir: Path, filters,
                  walkers: int = 128) -> dict:
    from sedinfer.posterior.compare import c2st, marginal_ks, plot_posterior_vs_mcmc
    from sedinfer.posterior.mcmc import run_emcee

    noisy, sigma, theta_full = info["noisy"], info["sigma"], info["theta_full"]
    model = info["model"]
    model64 = type(model)(**model.config.to_dict(), prior=model.prior).double()
    r = list(sed.bands).index("sdss_r0") if "sdss_r0" in sed.bands else 0
    snr = (noisy[:, r] / sigma[:, r]).numpy()
    picks = np.nonzero(snr >= 10)[0][:n_gal]
    iz = model.param_names.index("redshift")
    rows = []
    for k, i in enumerate(picks):
        z = float(theta_full[i, iz])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # convergence is recorded instead
            flux_nmgy, err_nmgy = noisy[i].numpy() * NMGY_PER_MAGGY, sigma[i].numpy() * NMGY_PER_MAGGY
            res = run_emcee(model64, filters, flux_nmgy, err_nmgy, z,
                            n_walkers=walkers, n_steps=steps, burn=steps // 4, thin=max(1, steps // 200),
                            seed=seed + k, progress=False)
        flow = sed.posterior.sample(x[i], n_samples, seed=seed + k).cpu().numpy()
        mc = np.asarray(res.samples)
        ks = marginal_ks(flow, mc, list(sed.param_names))
        acc = c2st(flow, mc[np.random.default_rng(k).choice(len(mc), min(len(mc), 4 * n_samples),
                                                             replace=False)], seed=k)
        rows.append({"galaxy": int(i), "redshift": z, "snr_r": float(snr[i]), "c2st": float(acc),
                     "ks": {n: float(v[0]) for n, v in ks.items()}, "mcmc_seconds": float(res.wall_time_s),
                     "acceptance": float(res.acceptance_fraction),
                     "autocorr_steps_max": float(np.nanmax(res.autocorr_time)),
                     "converged_50tau": bool(res.converged())})
        if k == 0:
            truth = np.delete(theta_full[i].numpy(), iz)
            plot_posterior_vs_mcmc(flow, mc, list(sed.param_names), truth, outdir / "posterior_vs_mcmc.png")
    return {"n_galaxies": len(rows), "steps": steps, "walkers": walkers, "galaxies": rows,
            "median_c2st": float(np.median([r["c2st"] for r in rows])) if rows else None,
            "median_ks": {n: float(np.median([r["ks"][n] for r in rows])) for n in sed.param_names}
            if rows else None}


__all__ = ["validate_sed_posterior"]
