"""Time for the multiscale occlusion of one spectrum (issue 17 §8).

Usage:  python benchmarks/bench_occlusion.py [--spectra 4] [--threads 1] [--windows 8,16,32,64,128]
        [--models DIR] [--batch-size 256] [--json FILE] [--quick]

Runs :func:`sedinfer.spectra.occlusion.multiscale_occlusion` on synthetic SDSS-grid spectra (flat
continuum, 2 % noise, nothing masked, so every window is evaluated) with the autoencoder and
predictor of ``--models DIR`` or, by default, untrained ones of the default sizes
(``AutoencoderConfig()``, ``PredictorConfig()``): the cost does not depend on the weights. One
warm-up spectrum first, then ``--spectra`` timed spectra. Reports seconds per spectrum, occluded
spectra (encoder calls) per spectrum and per second, on CPU with ``--threads`` torch threads.
``--quick``: the tests' tiny autoencoder (filters 4/8/8) and one timed spectrum, a smoke run whose
times say nothing about the real model. Prints one Markdown table row and one JSON line
(``--json`` also writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

#: the tiny autoencoder of ``--quick`` (the same sizes as tests/conftest.py TINY_AUTOENCODER)
QUICK_AUTOENCODER = dict(filters=(4, 8, 8), kernel_sizes=(3, 5, 7), encoder_hidden=(8,),
                         decoder_hidden=(16, 32), dloglam_rest=1e-4, dropout=0.0)


def models(folder: str | None, quick: bool):
    from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
    from sedinfer.spectra.predictor import WisePredictor

    if folder:
        return (SpectrumAutoencoder.load(Path(folder) / "autoencoder.pt"),
                WisePredictor.load(Path(folder) / "predictor.pt"), f"models from {folder}")
    torch.manual_seed(0)
    config = AutoencoderConfig(**QUICK_AUTOENCODER) if quick else AutoencoderConfig()
    ae = SpectrumAutoencoder(config).eval()
    return ae, WisePredictor().eval(), f"untrained {'tiny' if quick else 'default-size'} autoencoder " \
                                       f"({ae.n_parameters / 1e6:.2f} M parameters)"


def main() -> None:
    from sedinfer.spectra.occlusion import DEFAULT_WINDOWS_PIX, multiscale_occlusion

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=4, help="timed spectra (default 4)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--windows", default=",".join(map(str, DEFAULT_WINDOWS_PIX)),
                    help="window lengths in pixels (default the package's)")
    ap.add_argument("--models", default=None, metavar="DIR", help="trained autoencoder.pt + predictor.pt")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the JSON result here")
    ap.add_argument("--quick", action="store_true", help="tiny model, one timed spectrum (smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    windows = tuple(int(w) for w in args.windows.split(","))
    n = 1 if args.quick else args.spectra
    ae, pred, what = models(args.models, args.quick)
    m = ae.config.n_pix
    gen = torch.Generator().manual_seed(0)
    flux = 1.0 + 0.02 * torch.randn(n + 1, m, generator=gen)
    ivar = torch.full((n + 1, m), 2500.0)
    norm, z = torch.ones(n + 1), torch.full((n + 1,), 0.1)

    def occlude(rows: slice):
        return multiscale_occlusion(ae, pred, flux[rows], ivar[rows], norm[rows], z[rows], windows,
                                    generator=torch.Generator().manual_seed(1), batch_size=args.batch_size)

    occlude(slice(0, 1))                                   # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    res = occlude(slice(1, n + 1))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    per_spec = int(res.n_windows[0])
    out = {"benchmark": "occlusion", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
           "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "model": what, "quick": args.quick,
           "windows_pix": list(windows), "batch_size": args.batch_size, "spectra": n,
           "occluded_per_spectrum": per_spec, "s_per_spectrum": wall / n, "cpu_s_per_spectrum": cpu / n,
           "occluded_per_s": per_spec * n / wall}
    print("| model | windows (px) | threads | occluded spectra / spectrum | s / spectrum (wall, CPU) "
          "| occluded spectra / s |\n|---|---|---|---|---|---|")
    print(f"| {what} | {','.join(map(str, windows))} | {out['threads']} | {per_spec} | "
          f"{out['s_per_spectrum']:.2f}, {out['cpu_s_per_spectrum']:.2f} | {out['occluded_per_s']:.0f} |")
    print(json.dumps(out), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
