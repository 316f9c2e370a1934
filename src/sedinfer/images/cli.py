"""``sedinfer dustmap simulate``: simulated dusty galaxies written as FITS cubes (issue 18 §2, §6).

Only the argument builder and the runner live here; the top-level CLI wires them in. Writes
``OUT/<name>.fits`` per galaxy view (and variant) and ``OUT/manifest.csv`` with the truth of
every file; ``--pairs FILE.npz`` also writes the (S, D) training pairs in one array file.
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


__all__ = ["add_simulate_arguments", "run_simulate"]
