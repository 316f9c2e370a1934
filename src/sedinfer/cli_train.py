"""``sedinfer train-posterior`` and ``sedinfer validate``: train and check SED posteriors.

Heavy imports happen inside the run functions so ``sedinfer --help`` stays fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="TOML training config (see configs/sdss_specz.toml)")
    p.add_argument("--out", required=True,
                   help="model file to write (.pt); a model card is written beside it")
    p.add_argument("--checkpoint", default=None,
                   help="per-epoch checkpoint file (default: <out>.ckpt); a rerun resumes from it")
    p.add_argument("--n-simulations", type=int, default=None, help="override n_simulations of the config")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from sedinfer.errors import SedinferError
    from sedinfer.posterior.card import load_config, write_model_card
    from sedinfer.posterior.sed import train_sed_posterior

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise SedinferError(f"{out} already exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise SedinferError(f"output directory {out.parent} does not exist")
    config = load_config(args.config)
    if args.n_simulations is not None:
        config = dataclasses.replace(config, n_simulations=args.n_simulations)
    checkpoint = Path(args.checkpoint) if args.checkpoint else out.with_suffix(".ckpt")
    start = time.perf_counter()
    sed = train_sed_posterior(config, checkpoint=checkpoint, device=args.device,
                              progress=not args.no_progress)
    sed.posterior.metadata["total_seconds"] = round(time.perf_counter() - start, 1)
    sed.save(out)
    card = write_model_card(sed, out)
    meta = sed.posterior.metadata
    print(f"wrote {out} ({meta['epochs']} epochs, {meta['train_seconds']:.0f} s training) and {card}")
    return 0


def add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="sdss-specz",
                   help="shipped model name or model file (default: sdss-specz)")
    p.add_argument("--out", required=True, help="directory for the figures and validation.json")
    p.add_argument("--n", type=int, default=2000, help="held-out simulations (default: 2000)")
    p.add_argument("--samples", type=int, default=1000, help="posterior draws per simulation (default: 1000)")
    p.add_argument("--mcmc", type=int, default=0, help="also compare with emcee on this many galaxies")
    p.add_argument("--mcmc-steps", type=int, default=3000, help="emcee steps per galaxy (default: 3000)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the held-out set (default: config seed + offset)")
    p.add_argument("--min-snr", type=float, default=0.0,
                   help="calibrate only on galaxies with r-band S/N >= this (default: all)")
    p.add_argument("--update-card", action="store_true", help="write the numbers into the model card")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_validate(args: argparse.Namespace) -> int:
    from sedinfer.errors import SedinferError
    from sedinfer.posterior.card import write_model_card
    from sedinfer.posterior.checks import validate_sed_posterior
    from sedinfer.posterior.galaxies import SHIPPED, SEDPosterior, shipped_path

    if args.n < 100 or args.samples < 10:
        raise SedinferError(f"--n must be >= 100 and --samples >= 10, got {args.n} and {args.samples}")
    sed = SEDPosterior.load(args.model)
    report = validate_sed_posterior(sed, args.out, n=args.n, n_samples=args.samples, seed=args.seed,
                                    n_mcmc=args.mcmc, mcmc_steps=args.mcmc_steps, min_snr=args.min_snr,
                                    progress=not args.no_progress)
    passed = report.get("passes", {})
    print(f"wrote {args.out}/validation.json; targets: " + ", ".join(f"{k}: {'PASS' if v else 'FAIL'}"
                                                                     for k, v in passed.items()))
    if args.update_card:
        path = shipped_path(args.model) if args.model in SHIPPED else Path(args.model)
        print(f"updated {write_model_card(sed, path, validation=report)}")
    return 0


__all__ = ["add_train", "cmd_train", "add_validate", "cmd_validate"]
