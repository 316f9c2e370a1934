"""``sedinfer ir occlusion``: multiscale-occlusion maps of spectra, a Parquet table and a figure.

``add_occlusion_arguments(parser)`` adds the options; ``run_occlusion(args)`` reads the spectra
(SDSS spec files, a directory or glob of them, or an ``ir simulate`` table, as ``ir predict``),
loads the autoencoder and predictor (``--models DIR``, default the shipped ones), runs
:func:`sedinfer.spectra.occlusion.multiscale_occlusion` on every usable spectrum, classifies each
by Hα (:mod:`sedinfer.spectra.occlusion_summary`) and writes one row per input spectrum:

``id``, ``z``, ``ok``, ``reason`` (from ``ir predict``'s checks: reader flags, redshift range),
``class`` (star-forming / quiescent / unknown), ``halpha_ew_aa``, ``w1_pred`` … ``w4_pred`` (the
unoccluded prediction, Vega mag), ``sigma_w1`` … ``sigma_w4`` (the σ of Δχ, mag), ``n_windows``,
and ``dchi_w1`` … ``dchi_w4``: fixed-size lists of M float32 on the observed grid (NaN for masked
pixels, and everywhere for rows with ``ok`` False). The schema metadata key ``sedinfer`` holds
JSON with the format, ``wave_obs_aa``, the windows, stride, seed, σ choice and the definition of Δχ.
``--figure FILE.png`` draws the class means of one band (``--band``, default W3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

FORMAT = "sedinfer-ir-occlusion"
FORMAT_VERSION = 1
BANDS = ("w1", "w2", "w3", "w4")


def _windows(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated window lengths in pixels, got {text!r}")
    return values


def add_occlusion_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``ir occlusion`` options to ``parser`` and return it."""
    from sedinfer.cli_args import positive_int
    from sedinfer.spectra.cli import add_spectra_and_models
    from sedinfer.spectra.occlusion import DEFAULT_WINDOWS_PIX

    add_spectra_and_models(parser)
    parser.add_argument("--out", required=True, help="output table (.parquet), one row per spectrum")
    parser.add_argument("--figure", default=None, metavar="FILE.png",
                        help="also draw the star-forming / quiescent mean maps of --band")
    parser.add_argument("--band", choices=BANDS, default="w3", help="band of the figure (default w3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the occluding noise (default 0)")
    parser.add_argument("--windows", type=_windows, default=DEFAULT_WINDOWS_PIX, metavar="L1,L2,...",
                        help="window lengths in observed pixels (default "
                             f"{','.join(str(w) for w in DEFAULT_WINDOWS_PIX)})")
    parser.add_argument("--stride-fraction", type=float, default=0.5,
                        help="window stride as a fraction of its length (default 0.5)")
    parser.add_argument("--scale", choices=("auto", "observed", "predictive"), default="auto",
                        help="σ of Δχ: the table's wNsigmpro (observed; non-detections give NaN), the "
                             "predictor's predictive σ, or auto: observed for an `ir simulate` table, "
                             "predictive for spec files")
    parser.add_argument("--max-spectra", type=positive_int, default=None, metavar="N",
                        help="only the first N input spectra (occlusion costs ~10^3 encodings each)")
    parser.add_argument("--batch-size", type=positive_int, default=256,
                        help="occluded spectra encoded at a time (default 256)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads (default 1, see sedinfer.threads)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def _read_input(inputs: list[str], max_spectra: int | None):
    """(SpectrumBatch, observed σ (N, 4) or None, number of spectra before --max-spectra)."""
    import numpy as np

    from sedinfer.errors import ParameterError
    from sedinfer.spectra.io import read_mock_table
    from sedinfer.spectra.sdss import read_sdss, spectrum_paths

    tables = [p for p in inputs if str(p).endswith(".parquet")]
    if tables and len(inputs) > 1:
        raise ParameterError("give one `ir simulate` table, or SDSS spec files (not both)")
    if tables:
        batch, table, _ = read_mock_table(tables[0])
        names = [f"{b}sigmpro" for b in BANDS]
        sigma = None
        if all(c in table.column_names for c in names):
            sigma = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                              for c in names], 1)
        n_input = len(batch)
        if max_spectra is not None and max_spectra < n_input:
            batch = batch.select(np.arange(max_spectra))
            sigma = None if sigma is None else sigma[:max_spectra]
        return batch, sigma, n_input
    paths = spectrum_paths(inputs)
    n_input = len(paths)
    return read_sdss(paths[:max_spectra] if max_spectra else paths, strict=False), None, n_input


def run_occlusion(args: argparse.Namespace) -> Path:
    """Occlude every usable input spectrum; write the table (and the figure); returns the table path."""
    import json
    import sys

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from sedinfer import __version__
    from sedinfer.atomic import save_figure, write_atomic
    from sedinfer.errors import ParameterError
    from sedinfer.progress import progress
    from sedinfer.spectra.autoencoder import SpectrumAutoencoder
    from sedinfer.spectra.cli import _model_dir
    from sedinfer.spectra.occlusion import NOISE_VARIANCE_FACTOR, check_windows, multiscale_occlusion
    from sedinfer.spectra.occlusion_summary import class_means, classify_halpha, halpha_ew, plot_occlusion
    from sedinfer.spectra.predict_ir import predict_wise
    from sedinfer.spectra.predictor import WisePredictor
    from sedinfer.threads import torch_threads

    out = Path(args.out)
    if out.suffix != ".parquet":
        raise ParameterError(f"--out must end in .parquet, got {str(out)!r}")
    figure = Path(args.figure) if args.figure else None
    for path in (out, figure):
        if path is not None and path.exists() and not args.overwrite:
            raise ParameterError(f"{str(path)!r} already exists; pass --overwrite to replace it")
    if not 0 < args.stride_fraction <= 1:
        raise ParameterError(f"--stride-fraction must be in (0, 1], got {args.stride_fraction}")
    folder = _model_dir(args.models)
    batch, sigma_obs, n_input = _read_input(args.input, args.max_spectra)
    if len(batch) < n_input:
        print(f"--max-spectra {args.max_spectra}: the first {len(batch)} of {n_input} spectra",
              file=sys.stderr)
    scale = args.scale if args.scale != "auto" else ("observed" if sigma_obs is not None else "predictive")
    if scale == "observed" and sigma_obs is None:
        raise ParameterError("--scale observed needs wNsigmpro columns: give an `ir simulate` table")
    autoencoder = SpectrumAutoencoder.load(folder / "autoencoder.pt")
    predictor = WisePredictor.load(folder / "predictor.pt")
    try:
        windows = check_windows(args.windows, autoencoder.config.n_pix)
    except ValueError as err:
        raise ParameterError(f"--windows: {err}") from err
    if scale == "predictive" and not predictor.config.variance_head:
        raise ParameterError("this predictor has no variance head (no predictive σ): use --scale observed")

    with torch_threads(args.threads):
        frame = predict_wise(batch, autoencoder, predictor)     # grid and redshift checks, m̂_0
        ok = frame["ok"].to_numpy(bool)
        rows = np.flatnonzero(ok)
        n, m = len(batch), autoencoder.config.n_pix
        dchi = np.full((n, 4, m), np.nan, dtype=np.float32)
        sigma_used = np.full((n, 4), np.nan)
        n_windows = np.zeros(n, dtype=np.int64)
        gen = torch.Generator().manual_seed(int(args.seed))
        with progress(len(rows), "ir occlusion", unit="spectra", unit_one="spectrum") as bar:
            result = multiscale_occlusion(
                autoencoder, predictor, batch.flux_norm[rows], batch.ivar_norm[rows],
                batch.norm_flam_1e17[rows], batch.z[rows], windows, args.stride_fraction,
                sigma_mag=None if scale == "predictive" else sigma_obs[rows], generator=gen,
                batch_size=args.batch_size, callback=bar.update)
        dchi[rows] = result.delta_chi.numpy()
        sigma_used[rows] = result.sigma_mag.double().numpy()
        n_windows[rows] = result.n_windows.numpy()

    ew, _ = halpha_ew(batch.wave_obs_aa, batch.flux_norm, batch.ivar_norm, np.where(ok, batch.z, np.nan))
    classes = classify_halpha(ew)
    cols = {"id": pa.array(frame["id"].astype(str)), "z": pa.array(frame["z"].to_numpy(np.float64)),
            "ok": pa.array(ok), "reason": pa.array(frame["reason"].astype(str)),
            "class": pa.array(classes), "halpha_ew_aa": pa.array(ew, mask=~np.isfinite(ew))}
    for band in BANDS:
        cols[f"{band}_pred"] = pa.array(frame[f"{band}_pred"].to_numpy(np.float64))
    for b, band in enumerate(BANDS):
        cols[f"sigma_{band}"] = pa.array(sigma_used[:, b])
    cols["n_windows"] = pa.array(n_windows)
    for b, band in enumerate(BANDS):
        flat = pa.array(np.ascontiguousarray(dchi[:, b, :]).reshape(-1))
        cols[f"dchi_{band}"] = pa.FixedSizeListArray.from_arrays(flat, m)
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "sedinfer_version": __version__,
            "wave_obs_aa": np.asarray(batch.wave_obs_aa).tolist(), "windows_pix": list(windows),
            "stride_fraction": args.stride_fraction, "noise_variance_factor": NOISE_VARIANCE_FACTOR,
            "seed": int(args.seed), "scale": scale, "models": str(folder), "n_input": n_input,
            "max_spectra": args.max_spectra,
            "definition": "dchi_b = (m_occluded_b - m_pred_b) / sigma_b per pixel, mean over the windows "
                          "containing the pixel at each scale, then over scales (Vega mag; NaN = masked)"}
    table = pa.table(cols).replace_schema_metadata({b"sedinfer": json.dumps(info).encode()})
    write_atomic(out, lambda tmp: pq.write_table(table, tmp), suffix=".tmp.parquet")
    summary = class_means(dchi, batch.flux_norm, batch.ivar_norm, batch.wave_obs_aa, batch.z, classes)
    print(f"{n} spectra, {int((~ok).sum())} with ok=False; "
          + ", ".join(f"{summary.n_class[c]} {c}" for c in summary.n_class)
          + f", {int((classes == 'unknown').sum())} unknown")
    if figure is not None:
        title = f"multiscale occlusion, windows {','.join(map(str, windows))} px, σ {scale}"
        fig = plot_occlusion(summary, BANDS.index(args.band), title=title)
        save_figure(fig, figure)
        print(f"wrote {figure}")
    return out


__all__ = ["FORMAT", "FORMAT_VERSION", "add_occlusion_arguments", "run_occlusion"]
