"""Cost of the dust-map MAP fit (issue 18 §7): per galaxy, batched, and one prior evaluation.

Usage:  OMP_NUM_THREADS=1 python benchmarks/bench_dustmap.py [--threads 1,2] [--iterations 100]
        [--galaxies 3] [--batch 8] [--priors none,conditional,unconditional] [--prior-dir DIR]
        [--converge 0] [--device cpu] [--json FILE] [--quick]

Simulated HSC grizy 64 × 64 cubes of the test seed 1 (fiducial hosts, SPS SEDs; ``--quick``:
power-law stand-in SEDs, which do not change the fit's cost) are fitted with
:func:`sedinfer.images.fit.fit_map` for each prior mode, in one run so that the modes are peers:

1. **one prior evaluation**: ``prior.score(x, t)`` of s(S), s(D) and s(D | S) (what the fit calls
   once per iteration each) on 1 image and on ``--batch`` images, median of ``--repeats`` calls;
2. **one galaxy at a time**: ``--galaxies`` views each fitted alone for exactly ``--iterations``
   iterations (no early stop: a fixed amount of work), seconds per galaxy-iteration;
3. **batched**: ``--batch`` views in one ``fit_map`` call for ``--iterations`` iterations, giving
   galaxies per second at that iteration count and seconds per galaxy-iteration;
4. ``--converge N``: N views fitted alone with the default ``FitConfig`` (tolerance stop, at most
   3000 iterations): the MAP time per galaxy as the fit is run, with its iteration counts.

Each at every ``--threads`` count (torch intra-op threads). Priors: the trained weights of
``--prior-dir``, else untrained networks of the shipped architecture (``UNetConfig()``, base 16,
as ``scripts/train_dust_priors.py`` trains them): a network's cost does not depend on its weights,
but an untrained score is 0, so ``--converge`` with untrained priors converges like the likelihood
alone (the output says which weights were used). Wall and CPU seconds are both reported (on a
shared machine the wall time is inflated by other jobs; the load average is recorded). Ratios to
the likelihood alone in the same run are given per mode. Prints a Markdown table and one JSON
document (``--json`` also writes it). ``--quick``: 1 thread count, 3 iterations, 1 galaxy,
batch 2, stand-in SEDs: a smoke run whose times say little.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return run.stdout.strip()


def stand_in_seds(theta: np.ndarray) -> np.ndarray:
    """nJy (N, 5): a power law in the HSC pivots, redder when older (~10⁴-10⁵ nJy galaxies)."""
    lam = np.array([4791.0, 6214.0, 7689.0, 8903.0, 9772.0]) / 6000.0
    return 10 ** (theta[:, 1:2] - 6.0) * lam[None] ** (np.log10(theta[:, 3:4] * 1e3) - 2.5)


def simulate(n_views: int, quick: bool):
    from sedinfer.images.instrument import hsc_instrument
    from sedinfer.images.simulate import SimulationConfig, simulate_galaxies

    inst = hsc_instrument()
    n_gal = -(-n_views // 3)
    views = simulate_galaxies(range(n_gal), 1, inst, stand_in_seds if quick else None,
                              SimulationConfig(n_views=3))
    return inst, views[:n_views]


class Timer:
    """Wall and CPU seconds of a block (CUDA synchronised)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        self._sync()
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self._sync()
        self.wall, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def time_score(prior, batch: int, repeats: int, host: torch.Tensor, dust: torch.Tensor,
               device: torch.device) -> dict:
    x = (host if prior.kind == "host" else dust)[:batch].to(device)
    cond = host[:batch].to(device) if prior.conditional else None
    walls, cpus = [], []
    with torch.no_grad():
        prior.score(x, 0.2, condition=cond)                      # warm-up
        for _ in range(repeats):
            with Timer(device) as t:
                prior.score(x, 0.2, condition=cond)
            walls.append(t.wall)
            cpus.append(t.cpu)
    return {"prior": prior.kind, "images": batch, "wall_s": float(np.median(walls)),
            "cpu_s": float(np.median(cpus)), "wall_s_per_image": float(np.median(walls)) / batch}


def fit(inst, views, priors, config, device):
    from sedinfer.images.fit import fit_map
    from sedinfer.images.scene import ImageModel

    model = ImageModel(inst, [v.galaxy.redshift for v in views]).to(device)
    data = np.stack([v.image for v in views])
    inv_var = 1.0 / np.stack([v.variance for v in views])
    with Timer(device) as t:
        res = fit_map(model, data, inv_var, *priors, config=config)
    return t, res


def bench_mode(mode, inst, views, args, device) -> dict:
    from sedinfer.images.fit import FitConfig

    priors = tuple(p.to(device) if p is not None else None for p in mode.spec.load())
    n_it = args.iterations
    fixed = FitConfig(max_steps=n_it, min_steps=n_it)
    fit(inst, views[:1], priors, FitConfig(max_steps=2, min_steps=2), device)          # warm-up
    singles = [fit(inst, [v], priors, fixed, device)[0] for v in views[:args.galaxies]]
    wall1 = float(np.median([t.wall for t in singles]))
    cpu1 = float(np.median([t.cpu for t in singles]))
    tb, _ = fit(inst, views[:args.batch], priors, fixed, device)
    out = {"mode": mode.name, "untrained_weights": mode.untrained,
           "single": {"galaxies": len(singles), "iterations": n_it, "wall_s_per_galaxy": wall1,
                      "cpu_s_per_galaxy": cpu1, "wall_ms_per_iteration": 1e3 * wall1 / n_it,
                      "cpu_ms_per_iteration": 1e3 * cpu1 / n_it},
           "batched": {"batch": args.batch, "iterations": n_it, "wall_s": tb.wall, "cpu_s": tb.cpu,
                       "galaxies_per_s": args.batch / tb.wall,
                       "wall_ms_per_galaxy_iteration": 1e3 * tb.wall / (n_it * args.batch),
                       "cpu_ms_per_galaxy_iteration": 1e3 * tb.cpu / (n_it * args.batch)}}
    if args.converge:
        runs = [fit(inst, [v], priors, FitConfig(), device) for v in views[:args.converge]]
        out["converged_fits"] = [{"wall_s": t.wall, "cpu_s": t.cpu, "n_iter": int(r.n_iter[0]),
                                  "converged": bool(r.converged[0])} for t, r in runs]
    return out


def main(argv: list[str] | None = None) -> int:
    from sedinfer.images.validation_run import prepare_modes
    from sedinfer.threads import torch_threads

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--iterations", type=int, default=100, help="fixed iterations per timed fit")
    ap.add_argument("--galaxies", type=int, default=3, help="views fitted one at a time")
    ap.add_argument("--batch", type=int, default=8, help="views per batched fit")
    ap.add_argument("--repeats", type=int, default=5, help="timed prior evaluations")
    ap.add_argument("--priors", default="none,conditional,unconditional")
    ap.add_argument("--prior-dir", default=None, help="trained priors (default: untrained, shipped size)")
    ap.add_argument("--converge", type=int, default=0, help="views fitted to convergence (default FitConfig)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, metavar="FILE")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 iterations, 1 galaxy, batch 2")
    args = ap.parse_args(argv)
    if args.quick:
        args.threads, args.iterations, args.galaxies, args.batch, args.repeats = "1", 3, 1, 2, 2
        args.converge = 0
    threads = [int(t) for t in args.threads.split(",")]
    device = torch.device(args.device)
    modes = prepare_modes([m.strip() for m in args.priors.split(",") if m.strip()], args.prior_dir,
                          allow_untrained=True)
    load0 = os.getloadavg()
    t_sim = time.perf_counter()
    inst, views = simulate(max(args.batch, args.galaxies, args.converge), args.quick)
    t_sim = time.perf_counter() - t_sim
    inst = inst.to(device)
    host = torch.as_tensor(np.stack([v.host for v in views]), dtype=torch.float32)
    dust = torch.as_tensor(np.stack([v.transmission for v in views]), dtype=torch.float32)
    results = []
    for n_threads in threads:
        with torch_threads(n_threads):
            priors = {}
            for m in modes:
                for p in m.spec.load():
                    if p is not None:
                        priors[p.kind] = (p.to(device), m.untrained)
            scores = [{**time_score(p, b, args.repeats, host, dust, device), "untrained_weights": u}
                      for p, u in priors.values() for b in sorted({1, args.batch})]
            fits = [bench_mode(m, inst, views, args, device) for m in modes]
        base = next((f for f in fits if f["mode"] == "none"), None)
        for f in fits:
            if base is not None:
                f["cpu_ratio_to_none"] = {
                    "single": f["single"]["cpu_ms_per_iteration"] / base["single"]["cpu_ms_per_iteration"],
                    "batched": (f["batched"]["cpu_ms_per_galaxy_iteration"]
                                / base["batched"]["cpu_ms_per_galaxy_iteration"])}
            f["batched_speedup_per_galaxy_iteration"] = (
                f["single"]["wall_ms_per_iteration"] / f["batched"]["wall_ms_per_galaxy_iteration"])
        results.append({"threads": n_threads, "prior_evaluations": scores, "fits": fits})
    untrained = sorted({m.name for m in modes if m.untrained})
    out = {"benchmark": "dustmap MAP fit (issue 18 §7)", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "git_commit": git_commit(), "command": [sys.executable, *sys.argv],
           "machine": {"platform": platform.platform(),
                       "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "torch": torch.__version__, "device": str(device),
                       "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "nice": os.nice(0),
                       "load_average_before": [round(x, 2) for x in load0],
                       "load_average_after": [round(x, 2) for x in os.getloadavg()]},
           "quick": args.quick, "image": [len(inst.bands), *inst.image_shape], "bands": list(inst.bands),
           "seds": "power-law stand-in" if args.quick else "SPS (seed 1, fiducial hosts)",
           "simulation_s": round(t_sim, 1),
           "priors": {m.name: m.describe() for m in modes},
           "untrained_modes": untrained,
           "note": (f"{untrained}: untrained networks of the shipped architecture; a network's cost does "
                    "not depend on its weights" if untrained else "trained priors"),
           "results": results}
    print("| threads | mode | CPU ms / iteration, 1 galaxy (wall) | batch | CPU ms / galaxy-iteration "
          f"(wall) | galaxies/s at {args.iterations} it. | vs none (CPU, 1 / batched) |\n"
          "|---|---|---|---|---|---|---|")
    for r in results:
        for f in r["fits"]:
            s, b, q = f["single"], f["batched"], f.get("cpu_ratio_to_none", {})
            print(f"| {r['threads']} | {f['mode']}{' (untrained)' if f['untrained_weights'] else ''} | "
                  f"{s['cpu_ms_per_iteration']:.1f} ({s['wall_ms_per_iteration']:.1f}) | {b['batch']} | "
                  f"{b['cpu_ms_per_galaxy_iteration']:.1f} ({b['wall_ms_per_galaxy_iteration']:.1f}) | "
                  f"{b['galaxies_per_s']:.3g} | {q.get('single', 1):.1f} / {q.get('batched', 1):.1f} |")
        for s in r["prior_evaluations"]:
            print(f"| {r['threads']} | score {s['prior']} | {s['images']} images: "
                  f"{1e3 * s['cpu_s']:.1f} ms CPU ({1e3 * s['wall_s']:.1f} wall) | | | | |")
    print(json.dumps(out), flush=True)
    if args.json:
        from sedinfer.atomic import write_text

        write_text(args.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
