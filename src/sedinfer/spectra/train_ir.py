"""Train the infrared models on a mock table: autoencoder, then WISE predictor, then metrics.

The runner behind ``scripts/train_ir_models.py`` (and ``sedinfer ir train --mock`` once wired):

1. :func:`~sedinfer.spectra.train_autoencoder.train_autoencoder` on the table's spectra, resumable
   (``OUT/autoencoder.ckpt``; the best-validation model is ``OUT/autoencoder.pt``). With
   ``--max-hours`` a call stops when the budget runs out; run the same command again to go on.
2. Once the autoencoder is done: latents of every spectrum, the predictor
   (:func:`~sedinfer.spectra.predictor.train_predictor`, 70/10/20 split) → ``OUT/predictor.pt``.
3. ``OUT/metrics.json``: the autoencoder's held-out χ² per pixel and latent redshift invariance,
   and χ²_N, p̂ (model and data under data) per band on the predictor's test split;
   ``OUT/pp_w1.png`` … figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from sedinfer.atomic import save_figure, write_text
from sedinfer.spectra.autoencoder import AutoencoderConfig
from sedinfer.spectra.metrics import (
    BAND_LABELS,
    chi,
    phat,
    phat_data_baseline,
    plot_chi_hist,
    plot_color_color,
    plot_pp,
    pp_curve,
    summary_table,
)
from sedinfer.spectra.predictor import PredictorConfig, PredictorTrainConfig, train_predictor
from sedinfer.spectra.train_autoencoder import AETrainConfig, evaluate, split_indices, train_autoencoder
from sedinfer.spectra.training_data import SpectraArrays
from sedinfer.spectra.wise import wise_columns


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of the training run (``sedinfer ir train --mock``)."""
    parser.add_argument("mock", help="a mock table written by `sedinfer ir simulate` (.parquet)")
    parser.add_argument("--out-dir", required=True, help="directory for models, checkpoint and metrics")
    parser.add_argument("--epochs", type=int, default=10, help="autoencoder epochs (default 10)")
    parser.add_argument("--max-steps", type=int, default=None, help="autoencoder steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=int, default=64, help="autoencoder batch (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="autoencoder learning rate (default 1e-3)")
    parser.add_argument(
        "--max-hours", type=float, default=None, help="stop after this many hours; rerun to resume"
    )
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many spectra")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    return parser


def read_wise(path: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wNmpro, wNsigmpro) (N, 4) of the rows with ``ids``, in that order (null → NaN)."""
    import pyarrow.parquet as pq

    names = wise_columns()
    table = pq.read_table(path, columns=["id", *names["mpro"], *names["sigmpro"]])
    row = {v: i for i, v in enumerate(table.column("id").to_numpy(zero_copy_only=False).astype(str))}
    take = np.array([row[i] for i in ids])

    def block(cols: list[str]) -> np.ndarray:
        return np.stack(
            [table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)[take] for c in cols], 1
        )

    return block(names["mpro"]), block(names["sigmpro"])


def run_train(args: argparse.Namespace, log=print) -> dict:
    """Run steps 1–3 (module docstring); returns the metrics dict (``{"done": False}`` if the
    autoencoder is not finished)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_config = AutoencoderConfig()
    t0 = time.monotonic()
    data = SpectraArrays.from_mock_table(args.mock, z_max=model_config.z_max, limit=args.limit)
    log(f"{len(data)} spectra from {args.mock} in {time.monotonic() - t0:.1f} s (left out: {data.dropped})")
    cfg = AETrainConfig(
        batch_size=args.batch_size,
        learning_rate=args.lr,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_hours=args.max_hours,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    ae, state = train_autoencoder(
        data,
        cfg,
        model_config,
        out=out / "autoencoder.pt",
        checkpoint=out / "autoencoder.ckpt",
        resume=not args.no_resume,
        log=log,
    )
    if not state["done"]:
        log(f"autoencoder at step {state['step']}: not finished; run the same command again to resume")
        return {"done": False, "step": state["step"]}
    _, val_rows = split_indices(len(data), cfg.val_fraction, cfg.max_val, cfg.seed)
    ae_metrics = evaluate(ae, data.select(val_rows), seed=cfg.seed + 7)
    log(f"autoencoder held-out: {ae_metrics}")

    latents = ae.encode_arrays(data.flux, data.ivar, data.z)
    mag, sigma = read_wise(args.mock, data.id)
    predictor, info = train_predictor(
        latents,
        data.norm_flam_1e17,
        data.z,
        mag,
        sigma,
        PredictorConfig(n_latent=latents.shape[1]),
        PredictorTrainConfig(seed=args.seed),
    )
    predictor.metadata.update({"autoencoder": "autoencoder.pt", "mock": str(args.mock)})
    predictor.save(out / "predictor.pt")
    test = info["split"]["test"]
    mean, sig = predictor.predict(latents[test], data.norm_flam_1e17[test], data.z[test])
    rng = np.random.default_rng(args.seed)
    table = summary_table(mag[test], sigma[test], mean, sig, rng=rng)
    metrics = {
        "done": True,
        "n_spectra": len(data),
        "autoencoder": ae_metrics,
        "autoencoder_steps": state["step"],
        "autoencoder_hours": state["hours"],
        "predictor_test": table,
        "n_test": int(len(test)),
    }
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    p_model = phat(mag[test], sigma[test], mean, sig, rng=rng)
    p_delta = phat(mag[test], sigma[test], mean)
    p_data = phat_data_baseline(mag[test], sigma[test], rng=rng)
    c = chi(mag[test], sigma[test], mean)
    for b, band in enumerate(BAND_LABELS):
        curves = {
            "model (with s)": pp_curve(p_model[:, b], p_data[:, b]),
            "model (delta)": pp_curve(p_delta[:, b], p_data[:, b]),
        }
        save_figure(plot_pp(curves, band), out / f"pp_{band.lower()}.png")
        save_figure(plot_chi_hist({"model": c[:, b]}, band), out / f"chi_{band.lower()}.png")
    save_figure(plot_color_color(mag[test], mean, np.isfinite(sigma[test])), out / "color_color.png")
    log(json.dumps(metrics["predictor_test"]))
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = add_train_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args(argv)
    return 0 if run_train(args).get("done") else 3


__all__ = ["add_train_arguments", "main", "read_wise", "run_train"]
