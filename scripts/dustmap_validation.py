"""Validation of the dust-map fit on held-out simulated galaxies (issue 18 §5; paper Figs. 2-3).

    OMP_NUM_THREADS=1 python scripts/dustmap_validation.py --n 60 --seed 1 \
        --priors none,unconditional,conditional --prior-dir runs/dust_priors \
        --work runs/dustmap_validation --out docs/dustmap_validation.json --figures docs/figures

Galaxies 0 … n − 1 of ``--seed`` (default 1, the test seed; 0, the priors' training seed, is
refused) × ``--views`` orientations, fiducial and monochromatic hosts (SPS SEDs), are fitted
with ``fit_map`` once per prior mode in ``--priors``: ``none`` (the likelihood alone),
``unconditional`` (s(S) + s(D), the baseline that measures what the conditioning buys) and
``conditional`` (s(S) + s(D | S)), weights from ``--prior-dir`` (the output folder of
``scripts/train_dust_priors.py``) or the package. A mode whose weights are missing is skipped
(reason in the JSON and on stderr) unless ``--allow-untrained``, which fits it with untrained
networks of the shipped size for a smoke run (stated in the JSON; their score is 0).

Metrics per view (``sedinfer.images.validation``): attenuation strength = the light-weighted
A(λ₀) = −2.5 log₁₀(Σ S D / Σ S) at λ₀ = 0.4754 µm, recovered (fitted S, D) vs true; Pearson r of
the inferred and true dust maps D over the stamp (and weighted by the true host light); host SED
error F̂_b / F_b − 1 per band; binned by true covering fraction (< 0.9, ≥ 0.9) and true A(λ₀)
(< 0.1, 0.1-0.3, 0.3-1, ≥ 1 mag), per mode and host variant.

Resumable: every view's truth and every (view, mode) fit is stored under ``--work`` as soon as it
exists, so the same command continues; ``--max-hours`` stops before the next batch once spent
(exit 3, JSON ``status: partial``). Writes the JSON (command, seeds, git commit, settings, modes,
summary, per-view records) and the Fig. 2-like ``dustmap_validation_maps.png`` and Fig. 3-like
``dustmap_validation_recovery.png`` in ``--figures``.
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

import torch

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> dict:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    status = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"commit": git("rev-parse", "HEAD").strip(),
            "dirty_paths": [ln[3:] for ln in status if ln.strip()]}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=60, help="galaxies (each seen in --views orientations)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1; 0 is the training seed)")
    p.add_argument("--start", type=int, default=0, help="first galaxy index")
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--variants", default="fiducial,monochromatic")
    p.add_argument("--priors", default="none,unconditional,conditional", help="comma-separated prior modes")
    p.add_argument("--prior-dir", default=None, help="folder with host.pt, dust.pt, dust_given_host.pt")
    p.add_argument("--allow-untrained", action="store_true",
                   help="fit modes whose weights are missing with untrained networks (smoke runs only)")
    p.add_argument("--work", type=Path, default=Path("runs/dustmap_validation"), help="cache folder")
    p.add_argument("--out", type=Path, default=None, help="JSON (default WORK/dustmap_validation.json)")
    p.add_argument("--figures", type=Path, default=None, help="figure folder (default WORK)")
    p.add_argument("--fig2-views", type=int, default=4, help="views shown in the maps figure")
    p.add_argument("--max-hours", type=float, default=None)
    p.add_argument("--batch", type=int, default=8, help="views per fit_map call")
    p.add_argument("--sim-chunk", type=int, default=8, help="galaxies simulated (then fitted) together")
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--min-steps", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from sedinfer.atomic import write_text
    from sedinfer.images.errors import ImageError
    from sedinfer.images.fit import FitConfig
    from sedinfer.images.validation import summarise
    from sedinfer.images.validation_figures import maps_figure, recovery_figure
    from sedinfer.images.validation_run import (
        TRAINING_SEED,
        ValidationConfig,
        figure_views,
        prepare_modes,
        run_validation,
    )
    from sedinfer.threads import torch_threads

    args = parse(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        config = ValidationConfig(
            n=args.n, seed=args.seed, start=args.start, n_views=args.views,
            variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
            fit=FitConfig(max_steps=args.max_steps, min_steps=min(args.min_steps, args.max_steps), lr=args.lr,
                          tol=args.tol, temperature=args.temperature),
            batch=args.batch, sim_chunk=args.sim_chunk, device=device)
        modes = prepare_modes([m.strip() for m in args.priors.split(",") if m.strip()], args.prior_dir,
                              args.allow_untrained)
    except (ImageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for m in modes:
        if m.skipped:
            print(f"skipped --priors {m.name}: {m.skipped}", file=sys.stderr)
        elif m.untrained:
            print(f"--priors {m.name}: UNTRAINED weights (--allow-untrained, smoke run)", file=sys.stderr)
    fitted = [m.name for m in modes if not m.skipped]
    t0 = time.perf_counter()
    with torch_threads(args.threads):
        run = run_validation(config, modes, args.work,
                             max_seconds=None if args.max_hours is None else args.max_hours * 3600)
    records, inst = run["records"], run["instrument"]
    pivots = [float(x) for x in inst.filters.pivot_wave_aa]
    fig_dir = args.figures or args.work
    figures = {}
    if records:
        figures["recovery"] = str(recovery_figure(fig_dir / "dustmap_validation_recovery.png", records,
                                                  fitted, pivots, config.covering_split))
        figures["maps"] = str(maps_figure(fig_dir / "dustmap_validation_maps.png",
                                          figure_views(run, args.fig2_views), fitted, pivots,
                                          inst.pixel_scale_arcsec))
    untrained = [m.name for m in modes if m.untrained]
    out = {"what": "issue 18 §5: dust-map fit on held-out simulated galaxies",
           "status": "complete" if run["complete"] else "partial",
           "command": [sys.executable, *sys.argv] if argv is None else ["dustmap_validation.py", *argv],
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "git": git_commit(),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": args.threads, "device": device,
                       "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
           "seeds": {"simulation": config.seed, "training_seed_excluded": TRAINING_SEED,
                     "galaxies": [config.start, config.start + config.n - 1], "views": config.n_views},
           "allow_untrained": args.allow_untrained, "untrained_modes": untrained,
           "warning": (f"modes {untrained} ran with UNTRAINED prior weights (smoke run): their numbers say "
                       "nothing about the method" if untrained else None),
           "settings": {"variants": list(config.variants), "image_size": config.image_size,
                        "bands": list(inst.bands), "fit_config": config.fit.__dict__ | {
                            "delta_range": list(config.fit.delta_range)},
                        "batch": config.batch, "covering_split": config.covering_split,
                        "attenuation_edges_mag": list(config.attenuation_edges),
                        "definitions": {
                            "a0": "light-weighted A(0.4754 um) = -2.5 log10(sum S D / sum S), mag; true "
                                  "from the true S, D, recovered from the fitted S, D",
                            "pearson_dust": "Pearson r of fitted and true D over all stamp pixels",
                            "pearson_dust_weighted": "the same weighted by the true host light S",
                            "sed_rel_error": "fitted / true unattenuated host flux per band - 1"}},
           "modes": [m.describe() for m in modes], "counts": run["counts"],
           "work": {"truth": str(run["truth_store"].dir),
                    "fits": {k: str(v.dir) for k, v in run["fit_stores"].items()}},
           "seconds_this_run": round(time.perf_counter() - t0, 1),
           "summary": summarise(records) if records else None, "figures": figures, "records": records}
    path = args.out or args.work / "dustmap_validation.json"
    write_text(path, json.dumps(out, indent=1) + "\n")
    print(f"{out['status']}: {run['counts']['fits_stored']}/{run['counts']['fits_expected']} fits "
          f"({run['counts']['fits_this_run']} this run) -> {path}")
    return 0 if run["complete"] else 3


if __name__ == "__main__":
    raise SystemExit(main())
