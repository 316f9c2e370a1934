"""Can the training loss tell the true population from fitted flows? (PopSED mock, 10^4 galaxies)

Usage:
    python scripts/population_loss_resolution.py --checkpoints DIR --flows 5 [--loss sliced] \
        [--marginal-weight 0.5] [--entropy-spread 3] [--reference-scatter 0] [--json out.json]

The flows are the finished checkpoints of ``population_validation.py recovery`` with the same
settings (nothing is trained here: a checkpoint for other settings is refused). For the catalog's
true parameters pushed through the fit's own forward model ("truth") and for each flow, the
script reports the expected loss against the catalog over 30 random batches (mean ± standard
error), in whitened magnitudes, for two parts of the loss: the sliced W2 over 256 random
directions and the 1-D W2 along the band and adjacent-colour axes (the marginal term of
``FitConfig.marginal_weight``), at 1024 simulated vs 1024 catalog rows (the training batch) and
1024 vs the whole catalog. A loss resolves the difference when the truth's value is below the
flows' by more than the errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from population_validation import fit_forward_model  # a sibling script: scripts/ is on sys.path

import sedinfer as si
from sedinfer.atomic import write_text
from sedinfer.population import FitConfig, fit
from sedinfer.population.data import observed_magnitudes
from sedinfer.population.losses import (
    marginal_directions,
    projected_wasserstein_loss,
    random_directions,
    whitening_matrix,
)
from sedinfer.population.mock import make_mock_catalog

REPEATS = 30


def expected_losses(x: torch.Tensor, catalog: torch.Tensor, dirs_fixed: torch.Tensor, n_sim: int,
                    n_obs: int | None) -> dict[str, list[float]]:
    """Mean and standard error over REPEATS batches of the random-sliced and axis-projected losses."""
    gen = torch.Generator().manual_seed(11)
    values: dict[str, list[float]] = {"sliced_random": [], "band_colour_axes": []}
    for _ in range(REPEATS):
        i = torch.randint(len(x), (n_sim,), generator=gen)
        j = torch.arange(len(catalog)) if n_obs is None else torch.randint(len(catalog), (n_obs,),
                                                                          generator=gen)
        rand = random_directions(256, x.shape[1], gen)
        values["sliced_random"].append(float(projected_wasserstein_loss(x[i], catalog[j], rand)))
        values["band_colour_axes"].append(float(projected_wasserstein_loss(x[i], catalog[j], dirs_fixed)))
    return {k: [float(np.mean(v)), float(np.std(v) / np.sqrt(REPEATS))] for k, v in values.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", required=True, help="recovery checkpoints (with the tag)")
    ap.add_argument("--flows", type=int, default=5)
    ap.add_argument("--loss", default="sliced")
    ap.add_argument("--marginal-weight", type=float, default=FitConfig.marginal_weight)
    ap.add_argument("--entropy-spread", type=float, default=FitConfig.entropy_spread)
    ap.add_argument("--reference-scatter", type=float, default=FitConfig.reference_scatter)
    ap.add_argument("--draws", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, sdss = si.SPSModel(), si.Filters("sdss")
    low, high = model.prior.bounds()
    high[0] = 0.8
    mock = make_mock_catalog(model, sdss, 10_000, seed=0)
    for k in range(args.flows):  # never train here: every member must be a finished checkpoint
        path = Path(args.checkpoints) / f"member{k:03d}.pt"
        if not path.exists() or not json.loads(torch.load(path, weights_only=True)["state_json"])["done"]:
            raise SystemExit(f"{path} is missing or unfinished: run the recovery first")
    cfg = FitConfig(loss=args.loss, seed=1, marginal_weight=args.marginal_weight,
                    entropy_spread=args.entropy_spread, reference_scatter=args.reference_scatter,
                    checkpoint_dir=args.checkpoints)
    pop = fit(mock.mags, mock.mag_errs, model, sdss, n_flows=args.flows, config=cfg, bounds=(low, high),
              progress=False)
    forward = fit_forward_model(model, sdss, mock, pop, (low, high))
    catalog_mags = observed_magnitudes(mock.mags, np.asarray(pop.metadata["softening_maggies"]))
    metric = whitening_matrix(catalog_mags)
    catalog = catalog_mags @ metric
    axes = marginal_directions(len(sdss.names), metric)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        sets = {"truth": forward(torch.as_tensor(mock.theta, dtype=torch.float32), 1.0, gen)[0]}
        for k, member in enumerate(pop.members):
            sets[f"flow{k}"] = forward(member.sample(args.draws, gen), 1.0, gen)[0]
    out = {"command": "python scripts/population_loss_resolution.py " + " ".join(sys.argv[1:]),
           "checkpoints": str(Path(args.checkpoints)), "repeats": REPEATS, "units": "whitened magnitudes",
           "batches": {}}
    for label, n_obs in (("1024_vs_1024", 1024), ("1024_vs_catalog", None)):
        out["batches"][label] = {name: expected_losses(x @ metric, catalog, axes, 1024, n_obs)
                                 for name, x in sets.items()}
        for part in ("sliced_random", "band_colour_axes"):
            res = out["batches"][label]
            row = " | ".join(f"{n} {v[part][0]:.4f}±{v[part][1]:.4f}" for n, v in res.items())
            print(f"{label:>16} {part:>16}: {row}", flush=True)
    if args.json:
        write_text(Path(args.json), json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
