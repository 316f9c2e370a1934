"""Posterior sampling throughput, flow architectures, and per-galaxy fits for comparison.

Usage:  python benchmarks/bench_posterior.py [--galaxies 10000] [--samples 1000] [--fits]
        [--mcmc-steps 3000] [--skip-bagpipes]

1. Architecture: samples/s of untrained zuko flows of the shipped model's size (10-D θ,
   16-D context, 6 layers, hidden 128x2) — spline and affine coupling vs autoregressive spline
   and affine — drawing 1000 samples for each of a set of galaxies (speed does not depend on
   the weights). Autoregressive flows are timed on fewer galaxies (they are slow).
2. The shipped model ``sdss-specz``: 1000 posterior samples for each of ``--galaxies`` mock
   SDSS galaxies, flow only and with derived quantities (``SEDPosterior.infer``).
3. ``--fits``: one galaxy fitted by emcee on sedinfer's model and by bagpipes' own sampler, in
   this run (see ``bench_fit_baselines.py``), and the ratio to the flow's time per galaxy.
Results print as Markdown lines for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sedinfer.posterior.flow import FlowConfig, build_flow

KINDS = ("nsf-coupling", "affine-coupling", "nsf", "maf")


def time_architecture(kind: str, n_gal: int, n_samples: int, batch: int = 8192) -> float:
    torch.manual_seed(0)
    flow = build_flow(10, 16, FlowConfig(kind=kind, transforms=6, hidden=(128, 128))).eval()
    ctx = torch.randn(n_gal, 16)
    rows = max(1, batch // n_samples)
    with torch.no_grad():
        flow(ctx[:1]).sample((100,))
        t0 = time.perf_counter()
        for r in range(0, n_gal, rows):
            flow(ctx[r:r + rows]).sample((n_samples,))
        return n_gal * n_samples / (time.perf_counter() - t0)


def time_shipped(n_gal: int, n_samples: int) -> dict:
    from sedinfer.posterior.galaxies import SEDPosterior
    from sedinfer.simulate import simulate_catalog

    sed = SEDPosterior.load("sdss-specz")
    table = simulate_catalog(n_gal, seed=123, progress=False)
    flux = np.stack([np.asarray(table[f"flux_{b}"]) for b in sed.bands], 1)
    err = np.stack([np.asarray(table[f"flux_err_{b}"]) for b in sed.bands], 1)
    z = np.asarray(table["redshift"])
    out = {}
    for derived in (False, True):
        t0 = time.perf_counter()
        sed.infer(flux, err, z, n_samples=n_samples, seed=0, derived=derived)
        dt = time.perf_counter() - t0
        out["with derived" if derived else "flow only"] = (dt, n_gal * n_samples / dt, 1e3 * dt / n_gal)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--fits", action="store_true", help="also time emcee and bagpipes on one galaxy")
    parser.add_argument("--mcmc-steps", type=int, default=3000)
    parser.add_argument("--skip-bagpipes", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {time.strftime('%Y-%m-%d')}")
    print("\n| flow (6 layers, 128x2) | galaxies x samples | samples/s |\n|---|---|---|")
    for kind in KINDS:
        n_gal = args.galaxies // 10 if kind in ("nsf", "maf") else args.galaxies // 5
        rate = time_architecture(kind, n_gal, args.samples)
        print(f"| {kind} | {n_gal} x {args.samples} | {rate:,.0f} |", flush=True)
    shipped = time_shipped(args.galaxies, args.samples)
    print(f"\n| shipped sdss-specz, {args.galaxies} galaxies x {args.samples} samples | seconds | samples/s "
          "| ms per galaxy |\n|---|---|---|---|")
    for key, (dt, rate, ms) in shipped.items():
        print(f"| {key} | {dt:.1f} | {rate:,.0f} | {ms:.2f} |", flush=True)
    if args.fits:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_fit_baselines import fit_timings

        fits = fit_timings(steps=args.mcmc_steps, skip_bagpipes=args.skip_bagpipes)
        per_gal = shipped["with derived"][2] / 1e3
        print("\n| per-galaxy fit | seconds | flow speed-up |\n|---|---|---|")
        print(f"| sedinfer flow, 1000 samples + derived | {per_gal:.4f} | 1 |")
        for name, seconds in fits.items():
            if seconds is not None:
                print(f"| {name} | {seconds:.1f} | {seconds / per_gal:,.0f}x |")


if __name__ == "__main__":
    main()
