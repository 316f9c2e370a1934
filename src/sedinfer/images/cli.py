"""``sedinfer dustmap simulate`` and ``sedinfer dustmap fit`` (issue 18 §2, §6-8).

Only the argument builders and the runners live here; the top-level CLI wires them in (its
``_add_steps`` looks up ``add_<step>_arguments`` / ``run_<step>``); :func:`main` runs them alone
(``python -m sedinfer.images.cli fit ...``).

``simulate`` writes ``OUT/<name>.fits`` per galaxy view (and variant) and ``OUT/manifest.csv``
with the truth of every file; ``--pairs FILE.npz`` also writes the (S, D) training pairs.

``fit`` fits cubes (files or folders) with :func:`sedinfer.images.runner.run_dustmap_fit` and
writes ``OUT/<name>.dustmap.fits``, ``.png``, ``.json`` per galaxy and ``OUT/run.json``. Exit
status 0 when every galaxy was fitted, 2 when some could not be (each listed with its reason).
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path


def add_simulate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``sedinfer dustmap simulate``."""
    parser.add_argument("--n", type=int, required=True, help="number of intrinsic galaxies")
    parser.add_argument("--seed", type=int, default=0,
                        help="simulation seed; different seeds give disjoint sets (default 0)")
    parser.add_argument("--start", type=int, default=0, help="index of the first galaxy (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--views", type=int, default=3, help="viewing directions per galaxy (default 3)")
    parser.add_argument("--variant", choices=("fiducial", "monochromatic", "both"), default="fiducial",
                        help="host colours: stellar-population gradients (fiducial), none, or both")
    parser.add_argument("--bands", default="hsc", help="HSC bands: 'hsc' or comma-separated hsc_* names")
    parser.add_argument("--psf", choices=("moffat", "gaussian"), default="moffat")
    parser.add_argument("--size", type=int, default=64, help="stamp size in pixels (default 64)")
    parser.add_argument("--chunk", type=int, default=64, help="galaxies per SPS call (default 64)")
    parser.add_argument("--pairs", type=Path, default=None,
                        help="also write the (host, dust) training pairs to this .npz file")
    parser.add_argument("--no-fits", action="store_true", help="write only --pairs and the manifest")
    return parser


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``sedinfer dustmap simulate`` with parsed ``args``; returns the exit status."""
    import numpy as np

    from sedinfer.atomic import write_atomic, write_text
    from sedinfer.images.fits_io import write_view_fits
    from sedinfer.images.instrument import HSC_BANDS, hsc_instrument
    from sedinfer.images.simulate import SimulationConfig, simulate_galaxies

    if args.n < 1:
        raise SystemExit(f"--n must be >= 1, got {args.n}")
    bands = HSC_BANDS if args.bands.lower() == "hsc" else tuple(b.strip() for b in args.bands.split(","))
    variants = ("fiducial", "monochromatic") if args.variant == "both" else (args.variant,)
    inst = hsc_instrument(bands, psf=args.psf, image_shape=(args.size, args.size))
    config = SimulationConfig(n_views=args.views, image_size=args.size, variants=variants)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, pairs = [], {"host": [], "dust": []}
    t0 = time.perf_counter()
    indices = list(range(args.start, args.start + args.n))
    psf = inst.psf.numpy()
    for c in range(0, len(indices), args.chunk):
        for view in simulate_galaxies(indices[c:c + args.chunk], args.seed, inst, config=config):
            if not args.no_fits:
                write_view_fits(out / f"{view.name}.fits", view, psf=psf)
            rows.append({"file": f"{view.name}.fits", "seed": view.seed, "index": view.index,
                         "view": view.view_index, "variant": view.variant,
                         "redshift": view.galaxy.redshift, "delta": view.galaxy.delta,
                         "a0_mean_mag": view.a0_mean_mag, "a0_max_mag": view.a0_max_mag,
                         "covering": view.covering_fraction,
                         "inclination_deg": float(np.degrees(view.view.inclination_rad))})
            if view.variant == variants[0]:
                pairs["host"].append(view.host.astype(np.float32))
                pairs["dust"].append(view.transmission.astype(np.float32))
    elapsed = time.perf_counter() - t0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "manifest.csv", buf.getvalue())
    if args.pairs is not None:
        meta = {k: np.array([r[k] for r in rows if r["variant"] == variants[0]])
                for k in ("index", "view", "delta", "a0_mean_mag", "covering")}

        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, host=np.stack(pairs["host"]), dust=np.stack(pairs["dust"]),
                                    seed=np.array(args.seed), **meta)

        write_atomic(args.pairs, save, suffix=".npz")
    print(f"simulated {args.n} galaxies x {args.views} views ({len(rows)} files) in {elapsed:.1f} s "
          f"({elapsed / args.n:.2f} s per galaxy) -> {out}")
    return 0


FIT_DEFAULTS = {"max_steps": 3000, "min_steps": 50, "lr": 0.05, "tol": 1e-5, "patience": 20,
                "temperature": 0.2}
"""The defaults of :class:`sedinfer.images.fit.FitConfig` as literals, so that building the
parser imports no torch (a test keeps the two equal)."""


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def parse_bands(text: str | None) -> tuple[str, ...] | None:
    """``--bands``: a group alias of :data:`sedinfer.filters.FILTER_GROUPS` (hsc = HSC grizy) or
    comma-separated sedpy names; None keeps each file's ``BANDn`` keys."""
    if text is None:
        return None
    from sedinfer.filters import FILTER_GROUPS

    names = [t.strip() for t in text.split(",") if t.strip()]
    out: list[str] = []
    for name in names:
        out += list(FILTER_GROUPS.get(name.lower(), (name,)))
    if not out:
        raise SystemExit("--bands: expected a preset (hsc, lsst, decam, sdss) or comma-separated names")
    return tuple(out)


def add_fit_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``sedinfer dustmap fit``."""
    from sedinfer.cli_args import add_cluster_arguments, positive_int
    from sedinfer.threads import DEFAULT_THREADS

    parser.add_argument("cubes", nargs="*", metavar="CUBE",
                        help="FITS cutouts (a SCI cube or one image HDU per band; optional VAR/IVAR, "
                             "PSF) or folders of them")
    parser.add_argument("--out", type=Path, help="output folder (--demo default: dustmap_demo)")
    parser.add_argument("--bands", default=None,
                        help="preset (hsc = HSC grizy, lsst, decam, sdss) or comma-separated sedpy names; "
                             "default: the files' BANDn header keys")
    parser.add_argument("--prior", choices=("conditional", "unconditional", "none"), default="conditional",
                        help="s(S) + s(D|S) (default), s(S) + s(D), or none (the likelihood alone)")
    parser.add_argument("--prior-dir", type=Path, default=None,
                        help="folder with trained host.pt and dust_given_host.pt (or dust.pt); "
                             "default: the weights shipped in the package")
    g = parser.add_argument_group("image model")
    g.add_argument("--redshift", type=float, default=None,
                   help="redshift of every galaxy (default: each file's REDSHIFT or Z header key)")
    g.add_argument("--psf-fwhm", type=_float_list, default=None, metavar="ARCSEC[,...]",
                   help="Moffat (beta 3) PSF FWHM, one value or one per band, for files without a PSF HDU "
                        "(HSC bands default to median Wide seeing)")
    g.add_argument("--pixel-scale", type=float, default=None, help="arcsec per pixel (HSC: 0.168)")
    g.add_argument("--size", type=positive_int, default=64,
                   help="stamp size: larger images are cut around their centre (default 64, the priors')")
    g.add_argument("--min-snr", type=float, default=5.0,
                   help="an image whose peak S/N (bands combined, 3x3 sum) is below this is 'empty'")
    f = parser.add_argument_group("optimiser (defaults: sedinfer.images.fit.FitConfig)")
    d = argparse.Namespace(**FIT_DEFAULTS)
    f.add_argument("--max-steps", type=positive_int, default=d.max_steps, help=f"(default {d.max_steps})")
    f.add_argument("--min-steps", type=int, default=d.min_steps, help=f"(default {d.min_steps})")
    f.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    f.add_argument("--tol", type=float, default=d.tol,
                   help=f"stop when max_b |dF_b/F_b| < TOL for --patience iterations (default {d.tol})")
    f.add_argument("--patience", type=positive_int, default=d.patience, help=f"(default {d.patience})")
    f.add_argument("--temperature", type=float, default=d.temperature,
                   help=f"prior score temperature t (default {d.temperature})")
    r = parser.add_argument_group("execution")
    r.add_argument("--batch", type=positive_int, default=8, help="galaxies per fit_map call (default 8)")
    r.add_argument("--chunk", type=positive_int, default=32,
                   help="galaxies per resumable chunk / Dask task (default 32)")
    add_cluster_arguments(r)
    r.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help=f"torch threads per process (default {DEFAULT_THREADS}; for many cores use "
                        "--scheduler local --workers N)")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when present)")
    r.add_argument("--no-figures", action="store_true", help="write no per-galaxy PNG")
    r.add_argument("--overwrite", action="store_true",
                   help="refit galaxies with outputs in --out (default: resume, skipping complete ones)")
    r.add_argument("--retry-failed", action="store_true", help="refit galaxies that failed before")
    r.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--demo", action="store_true",
                        help="fit the example cubes shipped in the package (with --prior none until "
                             "the priors ship)")
    return parser


def run_fit(args: argparse.Namespace) -> int:
    """Run ``sedinfer dustmap fit`` with parsed ``args``; returns the exit status."""
    import sys

    from sedinfer.images.errors import ImageError
    from sedinfer.images.fit import FitConfig
    from sedinfer.images.prior_choice import resolve_priors
    from sedinfer.images.runner import run_dustmap_fit
    from sedinfer.images.settings import FitSettings
    from sedinfer.images.shipped import demo_cubes

    if args.demo:
        if args.cubes:
            raise ImageError("--demo fits the shipped example cubes; do not also give CUBE files")
        cubes, out = demo_cubes(), args.out or Path("dustmap_demo")
    else:
        if not args.cubes or args.out is None:
            raise ImageError("give CUBE files or folders and --out DIR (or --demo)")
        cubes, out = args.cubes, args.out
    priors = resolve_priors(args.prior, args.prior_dir)        # fails before any fit
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        config = FitConfig(max_steps=args.max_steps, min_steps=min(args.min_steps, args.max_steps),
                           lr=args.lr, tol=args.tol, patience=args.patience, temperature=args.temperature)
    except ValueError as exc:
        raise ImageError(str(exc)) from exc
    settings = FitSettings(bands=parse_bands(args.bands), size=args.size, redshift=args.redshift,
                           psf_fwhm=args.psf_fwhm, pixel_scale=args.pixel_scale, config=config,
                           batch=args.batch, figures=not args.no_figures, device=device,
                           min_snr=args.min_snr)
    summary = run_dustmap_fit(cubes, out, settings, priors, chunk=args.chunk, scheduler=args.scheduler,
                              workers=args.workers, threads=args.threads, overwrite=args.overwrite,
                              retry_failed=args.retry_failed, progress=not args.no_progress)
    print(summary.line())
    if summary.n_failed:
        print(f"{summary.n_failed} galaxies could not be fitted (ok=false with a reason in "
              f"{Path(out) / 'run.json'}); first:", file=sys.stderr)
        for name, reason in summary.failures[:10]:
            print(f"  {name}: {reason}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sedinfer.images.cli {simulate,fit} ...`` (the same as ``sedinfer dustmap ...``)."""
    import sys

    from sedinfer.errors import SedinferError

    parser = argparse.ArgumentParser(prog="sedinfer dustmap")
    sub = parser.add_subparsers(dest="step", required=True)
    add_simulate_arguments(sub.add_parser("simulate")).set_defaults(run=run_simulate)
    add_fit_arguments(sub.add_parser("fit")).set_defaults(run=run_fit)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (SedinferError, ValueError, OSError) as exc:
        print(f"sedinfer: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["add_simulate_arguments", "run_simulate", "add_fit_arguments", "run_fit", "parse_bands", "main",
           "FIT_DEFAULTS"]


if __name__ == "__main__":
    raise SystemExit(main())
