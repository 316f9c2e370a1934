"""Throughput of SPSModel.photometry against bagpipes.model_galaxy, in the same run.

Usage:  python benchmarks/bench_photometry.py [--n 100000] [--repeats 3] [--bagpipes-n 200]

For each configuration (default PopSED model; full model with nebular + dust emission) and
each filter set (SDSS ugriz; ugriz + WISE W1-W4) it times photometry for N prior draws on
this machine's CPU threads (after one warm-up call that builds the template plan), reports
the best of ``repeats`` runs, the peak resident memory, and the throughput of bagpipes
computing the same photometry for matched galaxies (delayed-tau + Calzetti + nebular + dust
emission, one model_galaxy update per galaxy). Results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time

import numpy as np
import torch

import sedinfer as si

FILTER_SETS = {"ugriz": ["sdss"], "ugriz+W1-4": ["sdss", "wise"]}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_sedinfer(model, filters, n: int, repeats: int, seed: int = 0) -> float:
    theta = model.prior.sample((n,), generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        model.photometry(theta[: min(n, 8192)], filters)        # warm-up: builds the plan
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.photometry(theta, filters)
            best = min(best, time.perf_counter() - t0)
    return n / best


def time_bagpipes(filters, n: int, with_wise: bool, seed: int = 0) -> float:
    import bagpipes as pipes

    rng = np.random.default_rng(seed)
    tmp = tempfile.mkdtemp()
    paths = []
    for c in filters:
        path = os.path.join(tmp, c.name + ".dat")
        np.savetxt(path, np.c_[c.wave_aa, c.trans])
        paths.append(path)
    comps = {"redshift": 0.5, "delayed": {"age": 3.0, "tau": 1.0, "massformed": 10.0, "metallicity": 1.0},
             "dust": {"type": "Calzetti", "Av": 0.5, "qpah": 2.0, "umin": 1.0, "gamma": 0.01},
             "nebular": {"logU": -3.0}}
    galaxy = pipes.model_galaxy(comps, filt_list=paths, phot_units="mujy")
    t0 = time.perf_counter()
    for _ in range(n):
        comps["redshift"] = rng.uniform(0.05, 1.5)
        comps["delayed"]["age"] = rng.uniform(0.1, 4.0)
        comps["delayed"]["tau"] = 10 ** rng.uniform(-1, 1)
        comps["dust"]["Av"] = rng.uniform(0, 2)
        galaxy.update(comps)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bagpipes-n", type=int, default=200)
    args = ap.parse_args()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    rows = []
    for label, filters in FILTER_SETS.items():
        f = si.Filters(filters)
        bp = time_bagpipes(f, args.bagpipes_n, "wise" in filters)
        for name, kw in (("default (NMF+burst, CF dust)", {}),
                         ("full (+nebular, +dust emission)", {"nebular": True, "dust_emission": True})):
            rate = time_sedinfer(si.SPSModel(**kw), f, args.n, args.repeats)
            rows.append((label, name, rate, bp, rate / bp, peak_rss_mb()))
    print("\n| bands | model | sedinfer gal/s | bagpipes gal/s | ratio | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|")
    for label, name, rate, bp, ratio, rss in rows:
        print(f"| {label} | {name} | {rate:,.0f} | {bp:,.1f} | {ratio:,.0f}x | {rss:,.0f} |")


if __name__ == "__main__":
    main()
