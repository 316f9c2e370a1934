"""``sedinfer posterior``: posterior summaries for a catalog, and ``--demo`` on a shipped mock catalog.

Heavy imports happen inside the run function so ``sedinfer --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import secrets
from importlib import resources
from pathlib import Path

INPUT_UNITS = ("nmgy", "maggies", "ujy", "njy", "ab", "asinh")
"""Choices of --input-units: :data:`sedinfer.photometry_input.INPUT_UNITS` (a literal here so that
parsing arguments does not import astropy; a test keeps the two equal)."""
DEMO_CATALOG = "sdss_demo.parquet"
DEMO_OUT = "posterior_demo.parquet"


def demo_catalog() -> Path:
    """The shipped demo catalog: 300 galaxies from ``sedinfer simulate --n 300 --filters sdss --seed 7``."""
    return Path(str(resources.files("sedinfer") / "data" / "demo" / DEMO_CATALOG))


def add_posterior(p: argparse.ArgumentParser) -> None:
    from sedinfer.cli_args import add_cluster_arguments, non_negative_int, positive_int
    from sedinfer.threads import DEFAULT_THREADS

    p.add_argument("catalog", nargs="?", help="input catalog (.parquet, .fits, .csv, .ecsv); fluxes in "
                                              "nanomaggies unless column units or --input-units differ")
    p.add_argument("--out", help="output catalog (.parquet or .fits): one row per input row with the id, "
                                 "<param>_p16/_p50/_p84 and ok, ood, reason, masked_bands, ood_features, "
                                 "inflated_bands (errors raised to the noise model's floor), support_nll "
                                 f"(--demo default: {DEMO_OUT})")
    p.add_argument("--model", default="sdss-specz",
                   help="shipped model name or model file (default: sdss-specz)")
    p.add_argument("--samples", type=positive_int, default=1000,
                   help="posterior draws per galaxy (default: 1000)")
    p.add_argument("--save-samples", metavar="FILE.h5",
                   help="also keep the draws: HDF5 datasets samples (N, S, K) float32, id, names")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="random seed; row i draws from (seed, i), whatever the chunking (default: 0)")
    g = p.add_argument_group("column mapping (defaults: id, redshift, flux_<band>, flux_err_<band>)")
    g.add_argument("--id-col", help="ID column, copied to the output")
    g.add_argument("--redshift-col", help="spectroscopic redshift column (spec-z models)")
    g.add_argument("--flux-cols", help="flux columns: a pattern with {band} (e.g. 'flux_{band}') or one name "
                                       "per model band, comma-separated, in model band order")
    g.add_argument("--err-cols", help="flux-error columns: a pattern with {band} or a comma-separated list")
    g.add_argument("--columns", metavar="FILE.toml",
                   help="column map file (keys id, redshift, flux_pattern, err_pattern, input_units, [flux], "
                        "[flux_err]); options override it")
    g.add_argument("--input-units", choices=INPUT_UNITS, default=None,
                   help="what photometry columns without a unit hold: fluxes in nmgy (default), maggies, "
                        "ujy or njy, or magnitudes: ab (AB) or asinh (SDSS asinh, softening b per ugriz "
                        "band); errors are converted alike. Columns with units (e.g. mag(AB), uJy) are read "
                        "by their unit; plain 'mag' needs ab or asinh. Without units or this option, flux "
                        "columns whose values look like magnitudes are refused")
    r = p.add_argument_group("execution")
    r.add_argument("--chunk-rows", type=positive_int, default=100,
                   help="rows per chunk, the unit of work and of resuming (default: 100)")
    add_cluster_arguments(r, workers_help="worker processes: without --scheduler, local processes that "
                                          "each take the next chunk (default: the CPUs, at most 8; 1 runs "
                                          "in this process); with --scheduler local, Dask workers")
    r.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help=f"torch threads per worker process (default: {DEFAULT_THREADS}; more threads help "
                        "only on an idle machine and collapse when other processes share the cores)")
    r.add_argument("--restart", action="store_true",
                   help="discard the parts of an earlier interrupted run instead of resuming it")
    r.add_argument("--overwrite", action="store_true", help="replace existing output files")
    r.add_argument("--no-progress", action="store_true",
                   help="hide the progress bar (a terminal) or the progress lines every ~10 s on stderr")
    p.add_argument("--demo", action="store_true",
                   help="run on a shipped 300-galaxy mock catalog and plot true vs posterior values")


def cmd_posterior(args: argparse.Namespace) -> int:
    from sedinfer.errors import SedinferError
    from sedinfer.posterior.columns import column_map
    from sedinfer.posterior.runner import cached_posterior, model_ref, run_posterior

    if args.demo:
        if args.catalog is not None:
            raise SedinferError("--demo runs on the shipped demo catalog; do not also give CATALOG")
        catalog, out = demo_catalog(), Path(args.out or DEMO_OUT)
    else:
        if args.catalog is None or args.out is None:
            raise SedinferError("give a CATALOG and --out OUT (or --demo)")
        catalog, out = Path(args.catalog), Path(args.out)
    ref = model_ref(args.model)
    sp = cached_posterior(ref.path, ref.sha256)
    columns = column_map(sp.bands, sp.redshift_mode == "spec", id_col=args.id_col,
                         redshift_col=args.redshift_col, flux_cols=args.flux_cols, err_cols=args.err_cols,
                         toml=args.columns, input_units=args.input_units)
    summary = run_posterior(catalog, out, columns, model=args.model, n_samples=args.samples, seed=args.seed,
                            chunk_rows=args.chunk_rows, save_samples=args.save_samples,
                            scheduler=args.scheduler, workers=args.workers, restart=args.restart,
                            overwrite=args.overwrite, progress=not args.no_progress, threads=args.threads)
    if summary.n_failed:
        print(f"{summary.n_failed} row(s) could not be processed (kept with ok=False and a reason); first:")
        for row_id, reason in summary.failures:
            print(f"  {columns.id}={row_id}: {reason}")
    extra = f" and {summary.samples}" if summary.samples else ""
    print(f"wrote {summary.out}{extra}")
    if args.demo:
        from sedinfer.catalog import read_catalog

        plot = out.with_name(out.name.split(".")[0] + "_recovery.png")
        recovery_plot(read_catalog(catalog), read_catalog(out), sp.names, plot, id_col=columns.id)
        print(f"wrote {plot}")
    print(summary.line())
    return 0


def recovery_plot(truth, summary, names, path: str | os.PathLike, id_col: str = "id") -> Path:
    """True value vs posterior median with 16-84% bars, one panel per quantity in ``truth``.

    ``truth`` and ``summary`` are Tables in the same row order (checked on ``id_col``); rows with
    ``ok=False`` are left out. SFR panels use logarithmic axes. Written atomically; returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sedinfer.errors import CatalogError

    ids, out_ids = np.asarray(truth[id_col]), np.asarray(summary[id_col])
    if len(ids) != len(out_ids) or not np.array_equal(ids, out_ids):
        raise CatalogError(f"truth and posterior tables differ in their {id_col!r} columns")
    names = [n for n in names if n in truth.colnames]
    ok = np.asarray(summary["ok"], dtype=bool)
    ncol = int(np.ceil(np.sqrt(len(names))))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 3.0 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        x = np.asarray(truth[name], dtype=float)[ok]
        if x.size == 0:
            continue
        p16, p50, p84 = (np.asarray(summary[f"{name}_{q}"], dtype=float)[ok] for q in ("p16", "p50", "p84"))
        ax.errorbar(x, p50, yerr=[p50 - p16, p84 - p50], fmt="o", ms=2, lw=0.5, alpha=0.6)
        lo, hi = np.nanmin([x.min(), p16.min()]), np.nanmax([x.max(), p84.max()])
        if name.startswith("sfr_"):
            ax.set_xscale("log")
            ax.set_yscale("log")
            lo = max(lo, 1e-4 * hi)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel("posterior median")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"posterior recovery ({int(ok.sum())} of {len(ok)} galaxies; bars: 16-84%)")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["add_posterior", "cmd_posterior", "recovery_plot", "demo_catalog"]
