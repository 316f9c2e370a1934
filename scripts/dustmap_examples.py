"""Figure of simulated dusty galaxies for docs/dustmaps.md, and the statistics of a sample.

    python scripts/dustmap_examples.py --n 40 --seed 0 --out docs/figures/dustmap_examples.png

Rows: host light S at λ₀ (log), transmission D at λ₀ (with S contours at 50 and 84 % of the
light), observed z i r composite. Prints the wall and CPU time per galaxy (after the SPS grid is
built) and the quantiles of covering fraction, light-weighted A(λ₀) and its maximum.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def light_contours(host: np.ndarray, fractions=(0.5, 0.84)) -> list[float]:
    """Surface-brightness levels enclosing ``fractions`` of the light."""
    v = np.sort(host.ravel())[::-1]
    c = np.cumsum(v) / v.sum()
    return sorted(float(v[np.searchsorted(c, f)]) for f in fractions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=6, help="views shown in the figure")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from sedinfer.images.galaxies import kpc_per_arcsec
    from sedinfer.images.instrument import hsc_instrument
    from sedinfer.images.seds import sps_sed_function
    from sedinfer.images.simulate import simulate_galaxies

    inst = hsc_instrument()
    seds = sps_sed_function(inst.filters)
    seds(np.array([[0.1, 10.0, 0.0, 10.0, 1.0, -2.5]]))
    kpc_per_arcsec(0.1)
    t0, c0 = time.perf_counter(), time.process_time()
    views = simulate_galaxies(range(args.n), args.seed, inst, seds)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"wall {dt / args.n:.3f} s, CPU {cpu / args.n:.3f} s per galaxy ({len(views) // args.n} views); "
          f"CPU {cpu / len(views):.3f} s per (S, D) pair; n = {args.n}, seed {args.seed}")
    q = [0, 10, 50, 90, 100]
    for key in ("covering_fraction", "a0_mean_mag", "a0_max_mag"):
        vals = np.array([getattr(v, key) for v in views])
        print(f"{key}: quantiles {q} % = {np.round(np.percentile(vals, q), 3).tolist()}")
    cov = np.array([v.covering_fraction for v in views])
    print(f"fraction with covering < 0.9: {np.mean(cov < 0.9):.2f}; < 0.3: {np.mean(cov < 0.3):.2f}")
    if args.out is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sedinfer.atomic import save_figure

    order = np.argsort([v.a0_mean_mag for v in views])
    pick = [views[i] for i in order[np.linspace(0, len(order) - 1, args.show).astype(int)]]
    fig, axes = plt.subplots(3, len(pick), figsize=(2.2 * len(pick), 6.9))
    for col, v in zip(axes.T, pick, strict=True):
        col[0].imshow(np.log10(v.host + 1e-7), origin="lower", cmap="magma", vmin=-5.5)
        col[1].imshow(v.transmission, origin="lower", cmap="gray", vmin=0, vmax=1)
        col[1].contour(v.host, light_contours(v.host), colors=["c", "y"], linewidths=0.7)
        rgb = np.stack([v.image[3], v.image[2], v.image[1]], -1)
        rgb = np.arcsinh(rgb / (3 * np.sqrt(v.variance[2, 0, 0]))) / np.arcsinh(rgb.max() / 3)
        col[2].imshow(np.clip(rgb / np.percentile(rgb, 99.5), 0, 1), origin="lower")
        col[0].set_title(f"i={np.degrees(v.view.inclination_rad):.0f}°, z={v.galaxy.redshift:.2f}",
                         fontsize=8)
        col[1].set_title(f"A0={v.a0_mean_mag:.2f} cov={v.covering_fraction:.2f}", fontsize=8)
        col[2].set_title(f"δ={v.galaxy.delta:+.2f}", fontsize=8)
        for ax in col:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("host S (log)")
    axes[1, 0].set_ylabel("transmission D")
    axes[2, 0].set_ylabel("observed z, i, r")
    fig.tight_layout()
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
