"""Spectrum encoding and WISE-predictor throughput (issue 17 §8), with spender's encoder if it imports.

Usage:  python benchmarks/bench_ir_encode.py [--threads 2] [--spectra 4096] [--batch 512] [--quick]

1. sedinfer's encoder (:class:`~sedinfer.spectra.autoencoder.SpectrumAutoencoder`, the default
   size: filters 24/48/96, MLP 48/32) on ``--spectra`` synthetic SDSS spectra (3921 pixels, the
   flux and mask channels), ``encode_arrays`` in batches of ``--batch``, eval mode, no gradients;
   spectra per second, after one warm-up batch.
2. The same encoder at spender's SDSS size (filters 128/256/512, MLP 128/64/32).
3. ``spender.SpectrumEncoder`` (spender 0.3, its fixed 128/256/512 convolutions, n_hidden 128/64/32)
   on the same spectra in the same run, if ``import spender`` works; otherwise the import error
   is printed (the package is not a dependency: docs/infrared.md).
4. The WISE predictor (8 → 20 → 20 → 8): rows per second of ``predict`` on 10⁵ latents.

The implied time for a 5×10⁵-spectrum survey is printed (encoding dominates). ``--quick``: 64
spectra, batches of 32, 10⁴ predictor rows (a smoke run). Results print as Markdown lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.predictor import WisePredictor

SPENDER_SIZE = {"filters": (128, 256, 512), "encoder_hidden": (128, 64, 32)}
SURVEY = 500_000


def spectra(n: int, n_pix: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flux (n, M), ivar (n, M), z (n,)) float32: a sloped continuum with noise, 3 % masked pixels."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n_pix, dtype=np.float32)
    flux = 1 + 0.3 * rng.standard_normal((n, 1)) * x + 0.05 * rng.standard_normal((n, n_pix))
    ivar = np.where(rng.random((n, n_pix)) < 0.03, 0.0, 400.0).astype(np.float32)
    return flux.astype(np.float32), ivar, rng.uniform(0.01, 0.5, n).astype(np.float32)


def rate(call, n: int, repeats: int = 1) -> float:
    """Items per second of ``call()`` over ``n`` items, best of ``repeats`` after one warm-up."""
    call()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return n / best


def ours(config: AutoencoderConfig, data, batch: int) -> tuple[float, int]:
    torch.manual_seed(0)
    ae = SpectrumAutoencoder(config).eval()
    n_enc = sum(p.numel() for p in ae.encoder.parameters())
    with torch.no_grad():
        return rate(lambda: ae.encode_arrays(*data, batch_size=batch), len(data[0])), n_enc


def spenders(data, batch: int, n_latent: int) -> tuple[float | None, int | None, str]:
    """spender 0.3's encoder on the same spectra, or (None, None, why not)."""
    try:
        import spender
    except Exception as err:  # noqa: BLE001 - any import failure is reported, not raised
        return None, None, f"`import spender` failed: {type(err).__name__}: {err}"
    try:
        enc = spender.SpectrumEncoder(None, n_latent, n_hidden=(128, 64, 32)).eval()
        flux = torch.as_tensor(data[0])

        def run() -> None:
            with torch.no_grad():
                for a in range(0, len(flux), batch):
                    enc(flux[a:a + batch])

        n_par = sum(p.numel() for p in enc.parameters())
        return rate(run, len(flux)), n_par, f"spender {getattr(spender, '__version__', '?')}"
    except Exception as err:  # noqa: BLE001
        return None, None, f"spender imported but its encoder failed: {type(err).__name__}: {err}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--spectra", type=int, default=4096, help="spectra encoded per timing (default 4096)")
    p.add_argument("--batch", type=int, default=512, help="spectra per encoder call (default 512)")
    p.add_argument("--predictor-rows", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="64 spectra, batch 32, 10^4 predictor rows")
    p.add_argument("--skip-spender", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.spectra, args.batch, args.predictor_rows = 64, 32, 10_000
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# bench_ir_encode: torch {torch.__version__}, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
          f"{args.spectra} spectra in batches of {args.batch}")
    cfg = AutoencoderConfig()
    data = spectra(args.spectra, cfg.n_pix)
    r_default, n_default = ours(cfg, data, args.batch)
    print(f"- sedinfer encoder (default, {n_default / 1e6:.2f} M encoder parameters): {r_default:.0f} "
          f"spectra/s; {SURVEY:.0e} spectra in {SURVEY / r_default / 60:.1f} min")
    r_big, n_big = ours(AutoencoderConfig(**SPENDER_SIZE), data, args.batch)
    print(f"- sedinfer encoder at spender's size ({n_big / 1e6:.2f} M): {r_big:.0f} spectra/s")
    if args.skip_spender:
        print("- spender encoder: skipped (--skip-spender)")
    else:
        r_sp, n_sp, what = spenders(data, args.batch, cfg.n_latent)
        if r_sp is None:
            print(f"- spender encoder: not measured; {what}")
        else:
            print(f"- {what} SpectrumEncoder ({n_sp / 1e6:.2f} M): {r_sp:.0f} spectra/s "
                  f"(sedinfer at the same size: {r_big / r_sp:.2f}x)")
    rng = np.random.default_rng(1)
    n = args.predictor_rows
    s, norm, z = (rng.standard_normal((n, cfg.n_latent)), 10 ** rng.uniform(-1, 1, n), rng.uniform(0, 0.5, n))
    pred = WisePredictor()
    r_pred = rate(lambda: pred.predict(s, norm, z), n, repeats=3)
    print(f"- WISE predictor ({pred.n_parameters} parameters): {r_pred:.3g} rows/s")
    print("(not recorded in BENCHMARKS.md: a smoke run on a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
