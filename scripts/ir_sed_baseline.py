"""The SED-model baseline against the empirical WISE predictor, on coupled and separable mocks.

Jespersen et al.'s central result (§4, appendix F): an empirical model from the optical spectrum
predicts WISE far better than SED codes fitted to the optical alone, because the SED codes'
separable priors leave out how the infrared depends on the optical. Here it is done where the
truth is known (issue 17 §5):

1. train the baseline q(θ | latents, log10 norm, z) (:mod:`sedinfer.spectra.sed_baseline`) on a
   **separable**-prior mock table encoded by the trained autoencoder (train + validation rows of
   the 70/10/20 split; resumable: ``OUT/sed_baseline.ckpt``; ``--max-hours``; exit 3 while not
   finished, the same command goes on) → ``OUT/sed_baseline.pt``;
2. on the test split of a coupled and of a separable test mock (the same 70/10/20 split, seed
   and fractions as the WISE predictor's, read from ``predictor.pt``; give the predictor's own
   training mock as ``--coupled-mock`` so that its test rows are the predictor's held-out rows):
   χ²_N and p̂ per band of the empirical predictor (p̂ by Monte Carlo over N(m̂, s²)), of the
   baseline (K posterior draws pushed through the SPS model, :mod:`sedinfer.spectra.sed_baseline_wise`),
   of the noiseless truth as a delta prediction, and of the data under the data (→ 0.707);
3. ``OUT/sed_baseline_table.json`` and ``OUT/sed_baseline_table.md`` (both mocks side by side).

    OMP_NUM_THREADS=2 python scripts/ir_sed_baseline.py --models DIR --train-mock SEP_TRAIN.parquet \\
        --coupled-mock COUPLED.parquet --separable-mock SEP_TEST.parquet --out-dir OUT --max-hours 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sedinfer.atomic import write_text
from sedinfer.posterior.flow import FlowConfig
from sedinfer.posterior.train import TrainConfig
from sedinfer.spectra.autoencoder import SpectrumAutoencoder
from sedinfer.spectra.cli import build_model
from sedinfer.spectra.metrics import BAND_LABELS, summary_table
from sedinfer.spectra.predictor import WisePredictor, split_70_10_20
from sedinfer.spectra.priors import MockPrior
from sedinfer.spectra.sed_baseline import (
    SEDBaseline,
    SEDBaselineConfig,
    encode_mock,
    prior_box,
    train_sed_baseline,
)
from sedinfer.spectra.sed_baseline_wise import predict_wise_sed, summary_table_draws

MODEL_FILE, CKPT_FILE = "sed_baseline.pt", "sed_baseline.ckpt"
JSON_FILE, MD_FILE = "sed_baseline_table.json", "sed_baseline_table.md"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", required=True, help="directory with autoencoder.pt and predictor.pt")
    p.add_argument("--train-mock", required=True, help="separable-prior mock table to train the baseline on")
    p.add_argument("--coupled-mock", required=True, help="coupled-prior test mock (the predictor's own mock)")
    p.add_argument("--separable-mock", required=True, help="separable-prior test mock")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--draws", type=int, default=100, help="posterior draws per test galaxy (default 100)")
    p.add_argument("--max-hours", type=float, default=None, help="training time budget; rerun to resume")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--transforms", type=int, default=6, help="flow layers (default 6)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128], help="conditioner widths")
    p.add_argument("--limit", type=int, default=None, help="use at most this many training-mock spectra")
    p.add_argument("--max-test", type=int, default=None, help="evaluate at most this many test rows per mock")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="flow training and posterior-draw seed")
    p.add_argument("--no-resume", action="store_true", help="remove the checkpoint and start afresh")
    return p.parse_args(argv)


def predictor_inputs(predictor: WisePredictor) -> list[str]:
    meta = predictor.metadata
    raw = meta.get("input", meta.get("mock", []))
    return [str(Path(p).resolve()) for p in ([raw] if isinstance(raw, str) else raw or [])]


def evaluate(label: str, path: str, ae, predictor, baseline, model, args, split_seed, fractions, log) -> dict:
    t0 = time.monotonic()
    data = encode_mock(path, ae)
    split = split_70_10_20(len(data), split_seed, fractions)
    test = split["test"][: args.max_test]
    meta = predictor.metadata
    n_pred = sum(int(meta.get(k, 0)) for k in ("n_train", "n_val", "n_test"))
    on_pred = str(Path(path).resolve()) in predictor_inputs(predictor)
    on_base = Path(path).resolve() == Path(args.train_mock).resolve()
    t = data.select(test)
    rng = np.random.default_rng(args.seed)
    mean, sig = predictor.predict(t.latents, t.norm, t.z)
    sed = predict_wise_sed(baseline, model, t.latents, t.norm, t.z, args.draws, t.mag, t.sigma,
                           seed=args.seed)
    out = {
        "mock": str(path), "prior_kind": data.info.get("prior_kind"), "n_rows": len(data),
        "n_test": len(test),
        "predictor_trained_on_this_mock": on_pred,
        "test_rows_held_out_from_predictor": (not on_pred) or n_pred == len(data),
        "baseline_trained_on_this_mock": bool(on_base),
        "empirical": summary_table(t.mag, t.sigma, mean, sig, rng=rng),
        "sed_baseline": summary_table_draws(t.mag, t.sigma, sed.mean, sed.phat, rng=rng),
        "truth_delta": summary_table(t.mag, t.sigma, t.true_vega, rng=rng),
        "sed_baseline_draws": args.draws, "sed_baseline_nonfinite_draws": sed.n_nonfinite,
        "sed_baseline_median_spread_mag": np.nanmedian(sed.std, 0).tolist(),
        "empirical_median_scatter_mag": np.median(sig, 0).tolist(),
        "seconds": round(time.monotonic() - t0, 1),
    }
    if on_pred and n_pred != len(data):
        log(f"WARNING {label}: the predictor was trained on {n_pred} rows of this mock, {len(data)} are "
            "usable now (--limit?): its test split is not the predictor's held-out set")
    log(f"{label}: {len(test)} test galaxies in {out['seconds']} s")
    return out


def markdown(result: dict) -> str:
    """Both tables (χ²_N, mean p̂) with the coupled and separable mocks side by side."""
    mocks = [k for k in ("coupled", "separable") if k in result["mocks"]]
    r = result["mocks"]
    n_test = ", ".join(f"{r[k]['n_test']} {k}" for k in mocks)
    chi_cols = [f"{k}: {m}" for k in mocks for m in ("empirical", "SED baseline")]
    p_cols = [f"{k}: {m}" for k in mocks for m in ("empirical", "SED baseline", "truth", "data under data")]
    lines = [f"SED-model baseline vs empirical predictor (test split: {n_test}; K = {result['draws']} "
             "posterior draws per galaxy)", "",
             "χ²_N over detections (1: as good as the data's errors allow)", "",
             "| band | " + " | ".join(chi_cols) + " |", "|---|" + "---|" * len(chi_cols)]
    for b, band in enumerate(BAND_LABELS):
        cells = [f"{r[k][m]['chi2_n'][b]:.3g}" for k in mocks for m in ("empirical", "sed_baseline")]
        lines.append(f"| {band} | " + " | ".join(cells) + " |")
    lines += ["", "mean p̂ (data under data → 0.707; truth: the noiseless magnitudes as a delta prediction)",
              "", "| band | " + " | ".join(p_cols) + " |", "|---|" + "---|" * len(p_cols)]
    for b, band in enumerate(BAND_LABELS):
        cells = []
        for k in mocks:
            cells += [f"{r[k][m]['phat_mean'][b]:.3g}" for m in ("empirical", "sed_baseline", "truth_delta")]
            cells.append(f"{r[k]['empirical']['phat_data_mean'][b]:.3g}")
        lines.append(f"| {band} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, log=print) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = Path(args.models)
    ae = SpectrumAutoencoder.load(models / "autoencoder.pt")
    predictor = WisePredictor.load(models / "predictor.pt")
    tc_pred = predictor.metadata.get("train_config", {})
    split_seed, fractions = int(tc_pred.get("seed", 0)), tuple(tc_pred.get("fractions", (0.7, 0.1, 0.2)))

    t0 = time.monotonic()
    train_data = encode_mock(args.train_mock, ae, limit=args.limit)
    log(f"{len(train_data)} training spectra encoded in {time.monotonic() - t0:.1f} s")
    model = build_model(agn="f_agn" in train_data.param_names)
    if tuple(model.param_names) != train_data.param_names:
        raise SystemExit(f"the mock's parameters {train_data.param_names} are not the SPS model's")
    if train_data.info.get("sps_config") not in (None, json.loads(json.dumps(model.config.to_dict()))):
        log("WARNING: the training mock was made with another SPS configuration than build_model()'s")
    box = prior_box(MockPrior(model, "separable"))
    config = SEDBaselineConfig(n_latent=ae.config.n_latent, flow=FlowConfig(transforms=args.transforms,
                                                                           hidden=tuple(args.hidden)),
                               split_seed=split_seed, fractions=fractions)
    tc = TrainConfig(batch_size=args.batch_size, learning_rate=args.lr, max_epochs=args.max_epochs,
                     patience=args.patience, seed=args.seed)
    if args.no_resume and (out / CKPT_FILE).exists():
        (out / CKPT_FILE).unlink()
    baseline, done = train_sed_baseline(train_data, box, config, tc, checkpoint=out / CKPT_FILE,
                                        max_hours=args.max_hours, progress=sys.stderr.isatty(),
                                        metadata={"train_mock": str(args.train_mock),
                                                  "autoencoder": str(models / "autoencoder.pt")})
    hist = baseline.posterior.metadata["history"]
    best = baseline.posterior.metadata["best_val_nll_latent"]
    log(f"baseline: {len(hist)} epochs, best validation NLL {best:.3f} (standardised logit space)")
    if not done:
        log("baseline training not finished (time budget): run the same command again to resume")
        return 3
    baseline.save(out / MODEL_FILE)
    baseline = SEDBaseline.load(out / MODEL_FILE)

    result = {"draws": args.draws, "split_seed": split_seed, "fractions": list(fractions),
              "baseline": {"epochs": len(hist), "n_train": baseline.metadata["n_train"],
                           "n_val": baseline.metadata["n_val"], "train_mock": str(args.train_mock),
                           "best_val_nll_latent": baseline.posterior.metadata["best_val_nll_latent"],
                           "stopped": baseline.posterior.metadata["stopped"]},
              "models": str(models), "mocks": {}}
    for label, path in (("coupled", args.coupled_mock), ("separable", args.separable_mock)):
        result["mocks"][label] = evaluate(label, path, ae, predictor, baseline, model, args, split_seed,
                                          fractions, log)
    write_text(out / JSON_FILE, json.dumps(result, indent=2))
    write_text(out / MD_FILE, markdown(result))
    log(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
