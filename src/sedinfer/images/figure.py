"""The per-galaxy figure of ``sedinfer dustmap fit`` (in the style of the paper's Fig. 2).

One row per image set — the truth (for simulated files with ``HOST``/``DUST``) above the fit:
the host light S (log stretch), the absorbed fraction 1 − D at λ₀ on [0, 0.75] (the paper's colour
range) with the contours enclosing 50 % and 84 % of the host light, and on the right the
attenuation of the total flux per band A_b (mag) and the host flux per band before (grey) and
after (red) attenuation (nJy) against the bands' pivot wavelengths (µm). PNG at 80 dpi, ~100 kB.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sedinfer.atomic import save_figure


def light_levels(host: np.ndarray, fractions=(0.84, 0.5)) -> list[float]:
    """Pixel values of ``host`` whose isophotes enclose ``fractions`` of its light (ascending)."""
    flat = np.sort(host.ravel())[::-1]
    cum = np.cumsum(flat) / max(flat.sum(), 1e-300)
    levels = sorted({float(flat[min(np.searchsorted(cum, f), flat.size - 1)]) for f in fractions})
    return levels


def dustmap_figure(path: str | os.PathLike, result, i: int, bands, pivots_aa: np.ndarray,
                   pixel_scale: float | None, truth: dict | None = None, title: str = "") -> Path:
    """Write the figure of galaxy ``i`` of a :class:`~sedinfer.images.fit.FitResult`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("inferred", result.host[i], result.transmission[i])]
    if truth is not None:
        rows.insert(0, ("true", truth["host"] / truth["host"].sum(), truth["dust"]))
    n = result.host.shape[-1]
    half = n * (pixel_scale or 1.0) / 2
    extent = (-half, half, -half, half)
    unit = "arcsec" if pixel_scale else "pixel"
    fig = plt.figure(figsize=(13.0, 6.4))
    grid = fig.add_gridspec(2, 3, width_ratios=(1, 1, 1.2), wspace=0.62, hspace=0.45)
    lo = max(min(float(r[1].max()) for r in rows) * 1e-3, 1e-12)
    hi = max(float(r[1].max()) for r in rows)
    for row, (label, host, dust) in enumerate(rows):
        ax = fig.add_subplot(grid[row, 0])
        im = ax.imshow(np.log10(np.clip(host, lo, None)), origin="lower", extent=extent, cmap="gray_r",
                       vmin=np.log10(lo), vmax=np.log10(hi))
        fig.colorbar(im, ax=ax, fraction=0.046, label=r"log$_{10}$ S [fraction of light / pixel]")
        ax.set_title(f"{label} host S")
        ax.set_xlabel(f"x [{unit}]")
        ax.set_ylabel(f"y [{unit}]")
        ax = fig.add_subplot(grid[row, 1])
        im = ax.imshow(1.0 - dust, origin="lower", extent=extent, cmap="magma", vmin=0, vmax=0.75)
        levels = light_levels(host)
        if host.max() > levels[0]:
            ax.contour(host, levels=levels, colors="c", linewidths=0.8, origin="lower", extent=extent)
        fig.colorbar(im, ax=ax, fraction=0.046, label=r"1 $-$ D")
        ax.set_title(f"{label} absorbed fraction 1 - D at 0.4754 um\n(contours: 50, 84 % of host light)",
                     fontsize=8)
        ax.set_xlabel(f"x [{unit}]")
        ax.set_ylabel(f"y [{unit}]")
    if truth is None:                  # no truth: the attenuation map in magnitudes below
        ax = fig.add_subplot(grid[1, 0])
        a0 = result.a0_map_mag[i]
        im = ax.imshow(a0, origin="lower", extent=extent, cmap="magma", vmin=0,
                       vmax=max(1.0, float(np.percentile(a0, 99.5))))
        fig.colorbar(im, ax=ax, fraction=0.046, label=r"A(0.4754 $\mu$m) [mag]")
        ax.set_title("inferred attenuation map")
        ax.set_xlabel(f"x [{unit}]")
        ax.set_ylabel(f"y [{unit}]")
    lam = np.asarray(pivots_aa, dtype=float) / 1e4
    ax = fig.add_subplot(grid[0, 2])
    ax.plot(lam, result.a_band_mag[i], "o-", color="C3", label="inferred")
    if truth is not None and truth.get("a_band_mag") is not None:
        ax.plot(lam, truth["a_band_mag"], "s--", color="k", mfc="none", label="true")
    ax.set_xlabel(r"observed pivot wavelength [$\mu$m]")
    ax.set_ylabel(r"A$_b$ of the total flux [mag]")
    ax.set_title(f"delta = {result.delta[i]:.2f}, A(0.4754 um) = {result.a0_mean_mag[i]:.2f} mag",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[1, 2])
    sed = result.sed_njy[i]
    ax.plot(lam, sed, "o-", color="0.5", label="host, unattenuated")
    ax.plot(lam, sed * 10 ** (-0.4 * result.a_band_mag[i]), "o-", color="C3", label="attenuated")
    if truth is not None and truth.get("sed_njy") is not None:
        ax.plot(lam, truth["sed_njy"], "s", color="k", mfc="none", label="true host")
    ax.set_yscale("log")
    ax.set_ylabel("flux per band [nJy]")
    ax.set_xlabel(r"observed pivot wavelength [$\mu$m]")
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title + ("" if len(bands) == 0 else f"  ({', '.join(bands)})"), fontsize=10)
    return save_figure(fig, path, dpi=80)


__all__ = ["dustmap_figure", "light_levels"]
