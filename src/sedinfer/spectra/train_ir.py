"""Train the infrared models: autoencoder, then WISE predictor, then metrics (``sedinfer ir train``).

Inputs (:func:`training_set`): a mock table from ``sedinfer ir simulate`` (WISE columns from the
table, or from ``--wise`` matched by id), or a user's SDSS spec files (files, directories, globs;
:func:`~sedinfer.spectra.read_sdss`) with a WISE catalog ``--wise CATALOG`` matched by ``--match id``
or by RA/Dec within 2″ (``--match radec``; :mod:`sedinfer.spectra.wise_catalog`). Spec files are
read ``--chunk`` at a time and kept as float32 (memory: 3.1 GB per 10⁵ spectra). Every input
spectrum gets a row in ``OUT/training_rows.parquet`` (``id``, ``source``, ``z``, ``ok``, ``reason``,
``wise_row``, ``sep_arcsec``, ``wise_detected_bands``); rows with ``ok`` False (unusable spectrum,
z missing or outside [0, z_max], no WISE counterpart) are left out of training, never silently.
``OUT/training_inputs.json`` fingerprints the training set; resuming on other inputs is refused.

1. :func:`~sedinfer.spectra.train_autoencoder.train_autoencoder` on the spectra, resumable
   (``OUT/autoencoder.ckpt``; the best-validation model is ``OUT/autoencoder.pt``). With
   ``--max-hours`` a call stops when the budget runs out; run the same command again to go on.
2. Once the autoencoder is done: latents of every spectrum, the predictor
   (:func:`~sedinfer.spectra.predictor.train_predictor`, 70/10/20 split) → ``OUT/predictor.pt``.
   Non-detections (null ``wNsigmpro``) get σ = 10⁴ mag in its likelihood.
3. ``OUT/metrics.json``: the autoencoder's held-out χ² per pixel and latent redshift invariance,
   and χ²_N, p̂ (model and data under data) per band on the predictor's test split;
   ``OUT/pp_w1.png`` … figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sedinfer.atomic import save_figure, write_atomic, write_text
from sedinfer.errors import CatalogError, ParameterError
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
from sedinfer.spectra.wise_catalog import (
    MATCH_MODES,
    MATCH_RADIUS_ARCSEC,
    match_wise,
    read_wise_catalog,
    wise_bands,
)

ROWS_FILE = "training_rows.parquet"
INPUTS_FILE = "training_inputs.json"


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of the training run (``sedinfer ir train``)."""
    parser.add_argument("input", nargs="+",
                        help="a mock table written by `sedinfer ir simulate` (.parquet), or SDSS "
                             "spec-*.fits files, directories or globs (with --wise)")
    parser.add_argument("--out-dir", required=True, help="directory for models, checkpoint and metrics")
    w = parser.add_argument_group("WISE catalog (required for SDSS spec files)")
    w.add_argument("--wise", metavar="CATALOG", default=None,
                   help="FITS/Parquet/CSV/ECSV with w1mpro..w4mpro, w1sigmpro..w4sigmpro (Vega; null "
                        "wNsigmpro = non-detection)")
    w.add_argument("--match", choices=MATCH_MODES, default="id",
                   help="match spectra to the catalog by id (PLATE-MJD-FIBER) or by RA/Dec (default id)")
    w.add_argument("--id-column", default="id", help="catalog id column for --match id (default id)")
    w.add_argument("--ra-column", default="ra", help="catalog RA column (deg) for --match radec (default ra)")
    w.add_argument("--dec-column", default="dec",
                   help="catalog Dec column (deg) for --match radec (default dec)")
    w.add_argument("--match-radius", type=float, default=MATCH_RADIUS_ARCSEC,
                   help=f"largest RA/Dec separation, arcsec (default {MATCH_RADIUS_ARCSEC:g})")
    parser.add_argument("--epochs", type=int, default=10, help="autoencoder epochs (default 10)")
    parser.add_argument("--max-steps", type=int, default=None, help="autoencoder steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=int, default=64, help="autoencoder batch (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="autoencoder learning rate (default 1e-3)")
    parser.add_argument(
        "--max-hours", type=float, default=None, help="stop after this many hours; rerun to resume"
    )
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many spectra")
    parser.add_argument("--chunk", type=int, default=2000, help="spec files read at a time (default 2000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    parser.add_argument("--no-figures", action="store_true", help="skip the PP, chi and colour figures")
    return parser


def read_wise(path: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wNmpro, wNsigmpro) (N, 4) of the rows with ``ids`` of a mock table, in that order (σ NaN
    for non-detections, :func:`~sedinfer.spectra.wise_catalog.wise_bands`)."""
    import pyarrow.parquet as pq

    names = wise_columns()
    table = pq.read_table(path, columns=["id", *names["mpro"], *names["sigmpro"]])
    row = {v: i for i, v in enumerate(table.column("id").to_numpy(zero_copy_only=False).astype(str))}
    take = np.array([row[i] for i in ids], dtype=np.int64)

    def block(cols: list[str]) -> np.ndarray:
        return np.stack(
            [table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)[take] for c in cols], 1
        ).reshape(len(take), len(cols))

    return wise_bands(block(names["mpro"]), block(names["sigmpro"]))


@dataclass
class TrainingSet:
    """The usable spectra (``data``), their WISE ``mag``, ``sigma`` (N, 4) Vega (σ NaN: not
    detected), and ``rows``: one report row per input spectrum (a pandas DataFrame)."""

    data: SpectraArrays
    mag: np.ndarray
    sigma: np.ndarray
    rows: object

    def fingerprint(self) -> str:
        """SHA-256 of the ids, redshifts and normalisations used (what a resume must see again)."""
        h = hashlib.sha256("\n".join(self.data.id.tolist()).encode())
        for a in (self.data.z, self.data.norm_flam_1e17, self.mag, self.sigma):
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        return h.hexdigest()


def spectrum_reasons(ok, reason, norm, z, z_max: float) -> np.ndarray:
    """(N,) why each spectrum cannot train (empty: usable): the reader's reason, no
    normalisation, or z missing / outside [0, z_max] (the rule of :class:`SpectraArrays`)."""
    out = np.array([str(r) for r in reason], dtype=object)
    ok, norm, z = np.asarray(ok, bool), np.asarray(norm, float), np.asarray(z, float)
    out[~ok & (out == "")] = "spectrum not usable"
    fresh = ok & (out == "")
    out[fresh & ~(np.isfinite(norm) & (norm > 0))] = "no normalisation"
    fresh &= out == ""
    bad_z = fresh & ~(np.isfinite(z) & (z >= 0) & (z <= z_max))
    out[bad_z] = [f"z = {v:.4g} outside the trained range [0, {z_max:g}]" if np.isfinite(v) else "no redshift"
                  for v in z[bad_z]]
    return out.astype(str)


def _report(ids, source, z, reason, match=None):
    import pandas as pd

    n = len(ids)
    return pd.DataFrame({"id": np.asarray(ids, str), "source": np.asarray(source, str),
                         "z": np.asarray(z, float), "ok": np.asarray(reason) == "",
                         "reason": np.asarray(reason, str),
                         "wise_row": match.row if match is not None else np.full(n, -1),
                         "sep_arcsec": match.sep_arcsec if match is not None else np.full(n, np.nan),
                         "wise_detected_bands": match.n_detected if match is not None else np.zeros(n, int)})


def _with_wise(reason: np.ndarray, match) -> np.ndarray:
    """Spectrum reasons, then the WISE match's for rows still usable."""
    return np.where((reason == "") & ~match.ok, match.reason, reason)


def _wise_catalog(args: argparse.Namespace):
    return read_wise_catalog(args.wise, args.match, args.id_column, args.ra_column, args.dec_column)


def _mock_training_set(args: argparse.Namespace, z_max: float) -> TrainingSet:
    from sedinfer.spectra.io import open_mock_table
    from sedinfer.spectra.wise_catalog import WiseMatch

    path = args.input[0]
    if args.wise and args.match != "id":
        raise ParameterError("a mock table has no RA/Dec: match its --wise catalog with --match id")
    pf, _ = open_mock_table(path)
    t = pf.read(columns=["id", "z", "ok", "reason", "norm_flam_1e17"])
    col = {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}
    ids = col["id"].astype(str)
    reason = spectrum_reasons(col["ok"].astype(bool), col["reason"].astype(str),
                              col["norm_flam_1e17"].astype(float), col["z"].astype(float), z_max)
    if args.wise:
        match = match_wise(_wise_catalog(args), ids=ids)
    else:
        mag, sig = read_wise(path, ids)
        n = len(ids)
        match = WiseMatch(mag, sig, np.arange(n), np.full(n, np.nan), np.ones(n, bool), np.full(n, ""))
    reason = _with_wise(reason, match)
    # without --wise every usable row has WISE data, so the reader may stop at --limit
    data = SpectraArrays.from_mock_table(path, z_max=z_max, limit=None if args.wise else args.limit)
    keep = np.isin(data.id, ids[reason == ""])
    data = data.select(np.flatnonzero(keep)[: args.limit])
    used = np.isin(ids, data.id)
    reason = np.where((reason == "") & ~used, f"not used (--limit {args.limit})", reason)
    where = {v: i for i, v in enumerate(ids.tolist())}
    take = np.array([where[i] for i in data.id], dtype=np.int64)
    return TrainingSet(data, match.mpro[take], match.sigmpro[take],
                       _report(ids, np.full(len(ids), str(path)), col["z"], reason, match))


def _sdss_training_set(args: argparse.Namespace, z_max: float) -> TrainingSet:
    import pandas as pd

    from sedinfer.spectra.sdss import read_sdss, read_sdss_positions, spectrum_paths

    if not args.wise:
        raise ParameterError("SDSS spec files need a WISE catalog: pass --wise CATALOG (w1mpro..w4mpro, "
                             "w1sigmpro..w4sigmpro) and --match id|radec")
    if args.chunk < 1:
        raise ParameterError(f"--chunk must be >= 1, got {args.chunk}")
    catalog = _wise_catalog(args)
    paths = spectrum_paths(args.input)
    parts, reports, wave, n_used = [], [], None, 0
    for a in range(0, len(paths), args.chunk):
        chunk = paths[a:a + args.chunk]
        batch = read_sdss(chunk, strict=False)
        wave = batch.wave_obs_aa
        if args.match == "id":
            match = match_wise(catalog, ids=batch.id)
        else:
            ra, dec = read_sdss_positions(chunk)
            match = match_wise(catalog, ra_deg=ra, dec_deg=dec, radius_arcsec=args.match_radius)
        reason = spectrum_reasons(batch.ok, batch.reason, batch.norm_flam_1e17, batch.z, z_max)
        reason = _with_wise(reason, match)
        rows = np.flatnonzero(reason == "")
        if args.limit is not None:
            cut = rows[max(0, args.limit - n_used):]
            reason[cut] = f"not used (--limit {args.limit})"
            rows = rows[: max(0, args.limit - n_used)]
        n_used += rows.size
        reports.append(_report(batch.id, batch.source, batch.z, reason, match))
        if rows.size:
            parts.append((SpectraArrays.from_batch(batch.select(rows), z_max), match.mpro[rows],
                          match.sigmpro[rows]))
    report = pd.concat(reports, ignore_index=True)
    if not parts:
        raise CatalogError(f"none of the {len(paths)} spectra can be used for training; first reasons: "
                           + "; ".join(f"{i}: {r}" for i, r in zip(report["id"][:3], report["reason"][:3],
                                                                   strict=True)))
    counts = report.loc[~report["ok"], "reason"].str.split(":").str[0].value_counts()
    data = SpectraArrays(*(np.concatenate([getattr(p[0], k) for p in parts])
                           for k in ("flux", "ivar", "z", "id", "norm_flam_1e17")), wave_obs_aa=wave,
                         dropped={str(k): int(v) for k, v in counts.items()})
    mag, sigma = (np.concatenate([p[i] for p in parts]) for i in (1, 2))
    return TrainingSet(data, mag, sigma, report)


def training_set(args: argparse.Namespace, z_max: float = 0.5) -> TrainingSet:
    """The training spectra and WISE photometry of ``args.input`` (module docstring)."""
    mock = len(args.input) == 1 and str(args.input[0]).lower().endswith((".parquet", ".pq"))
    if not mock and any(str(p).lower().endswith((".parquet", ".pq")) for p in args.input):
        raise ParameterError("give one `ir simulate` table, or SDSS spec files (not both)")
    return _mock_training_set(args, z_max) if mock else _sdss_training_set(args, z_max)


def _check_inputs(out: Path, fingerprint: dict, resume: bool) -> None:
    """Refuse to resume a checkpoint made from other inputs; record the inputs of this run."""
    path = out / INPUTS_FILE
    if resume and (out / "autoencoder.ckpt").is_file() and path.is_file():
        old = json.loads(path.read_text())
        if old.get("sha256") != fingerprint["sha256"]:
            raise ParameterError(f"{out} holds a training run on other inputs ({old.get('n_spectra')} "
                                 f"spectra from {old.get('input')}); use another --out-dir or --no-resume")
    write_text(path, json.dumps(fingerprint, indent=1))


def run_train(args: argparse.Namespace, log=print, model_config: AutoencoderConfig | None = None) -> dict:
    """Run steps 1–3 (module docstring); returns the metrics dict (``{"done": False}`` if the
    autoencoder is not finished). ``model_config`` replaces the default autoencoder size."""
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_config = model_config or AutoencoderConfig()
    t0 = time.monotonic()
    ts = training_set(args, z_max=model_config.z_max)
    data, mag, sigma = ts.data, ts.mag, ts.sigma
    write_atomic(out / ROWS_FILE, lambda tmp: ts.rows.to_parquet(tmp, index=False), suffix=".parquet")
    source = args.input[0] if len(args.input) == 1 else f"{len(args.input)} inputs"
    log(f"{len(data)} of {len(ts.rows)} spectra from {source} in {time.monotonic() - t0:.1f} s "
        f"(left out: {data.dropped}; every row in {out / ROWS_FILE})")
    inputs = {"sha256": ts.fingerprint(), "n_spectra": len(data), "input": [str(i) for i in args.input],
              "wise": args.wise, "match": args.match}
    _check_inputs(out, inputs, resume=not args.no_resume)
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
    ae_metrics = evaluate(ae, data.select(val_rows), seed=cfg.seed + 7) if len(val_rows) else {}
    log(f"autoencoder held-out: {ae_metrics}")

    latents = ae.encode_arrays(data.flux, data.ivar, data.z)
    predictor, info = train_predictor(
        latents,
        data.norm_flam_1e17,
        data.z,
        mag,
        sigma,
        PredictorConfig(n_latent=latents.shape[1]),
        PredictorTrainConfig(seed=args.seed),
    )
    predictor.metadata.update({"autoencoder": "autoencoder.pt", "input": [str(i) for i in args.input],
                               "wise": args.wise, "match": args.wise and args.match})
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
    if not getattr(args, "no_figures", False):
        _figures(out, mag[test], sigma[test], mean, sig, rng)
    log(json.dumps(metrics["predictor_test"]))
    return metrics


def _figures(out: Path, mag: np.ndarray, sigma: np.ndarray, mean: np.ndarray, sig: np.ndarray, rng) -> None:
    """PP and χ figures per band and the colour-colour figure of the test split."""
    p_model = phat(mag, sigma, mean, sig, rng=rng)
    p_delta = phat(mag, sigma, mean)
    p_data = phat_data_baseline(mag, sigma, rng=rng)
    c = chi(mag, sigma, mean)
    for b, band in enumerate(BAND_LABELS):
        curves = {
            "model (with s)": pp_curve(p_model[:, b], p_data[:, b]),
            "model (delta)": pp_curve(p_delta[:, b], p_data[:, b]),
        }
        save_figure(plot_pp(curves, band), out / f"pp_{band.lower()}.png")
        save_figure(plot_chi_hist({"model": c[:, b]}, band), out / f"chi_{band.lower()}.png")
    save_figure(plot_color_color(mag, mean, np.isfinite(sigma)), out / "color_color.png")


def main(argv: list[str] | None = None) -> int:
    args = add_train_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args(argv)
    return 0 if run_train(args).get("done") else 3


__all__ = ["INPUTS_FILE", "ROWS_FILE", "TrainingSet", "add_train_arguments", "main", "read_wise", "run_train",
           "spectrum_reasons", "training_set"]
