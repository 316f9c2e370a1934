"""Figures of the dust-map validation (issue 18 §5), in the style of Siegel & Melchior Figs. 2-3.

* :func:`maps_figure` (Fig. 2): for a few views, the true absorbed fraction 1 − D at λ₀ on
  [0, 0.75] with the contours enclosing 50 and 84 % of the true host light (top row), the
  inferred one of each prior mode with its inferred host's contours (rows below), and the host
  flux per band before (grey) and after (red) attenuation, true and inferred (bottom row).
* :func:`recovery_figure` (Fig. 3): per prior mode, the recovered vs true light-weighted A(λ₀),
  the Pearson r of the inferred and true D vs the true A(λ₀), and the host SED error per band;
  fiducial hosts as crosses, monochromatic as circles, coloured by covering fraction (< 0.9, ≥ 0.9).

PNG at 80 dpi through :func:`sedinfer.atomic.save_figure` (well below 300 kB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedinfer.atomic import save_figure
from sedinfer.images.figure import light_levels
from sedinfer.images.validation import COVERING_SPLIT, band_attenuation

A_FLOOR_MAG = 1e-3
"""Smallest A(λ₀) drawn on the logarithmic axes, mag."""
COVER_COLOURS = ("C0", "C3")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pick_views(truths: Sequence[dict], n: int = 4) -> list[str]:
    """Names of ``n`` views spread in true A(λ₀) (quantiles of the sorted list), fiducial first."""
    pool = [t for t in truths if t["variant"] == "fiducial"] or list(truths)
    pool = sorted(pool, key=lambda t: t["a0_mean_mag"])
    if not pool:
        return []
    idx = np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))
    return [pool[i]["name"] for i in idx]


def maps_figure(path: str | os.PathLike, views: Sequence[dict], modes: Sequence[str], pivots_aa,
                pixel_scale: float) -> Path:
    """Fig. 2: ``views`` are dicts with ``truth`` (record), ``truth_arrays`` and ``fits``
    {mode: (record, arrays)}; one column per view."""
    plt = _plt()
    n_col, n_row = len(views), len(modes) + 2
    fig, axes = plt.subplots(n_row, n_col, figsize=(2.7 * n_col + 0.8, 2.45 * n_row), squeeze=False,
                             layout="constrained")
    half = views[0]["truth_arrays"]["host"].shape[-1] * pixel_scale / 2 if views else 1.0
    extent = (-half, half, -half, half)
    lam = np.asarray(pivots_aa, dtype=float) / 1e4
    im = None
    for col, v in enumerate(views):
        t, ta = v["truth"], v["truth_arrays"]
        rows = [("true", ta["host"], ta["dust"], None)]
        rows += [(m, v["fits"][m][1]["host"], v["fits"][m][1]["transmission"], v["fits"][m][0])
                 for m in modes if m in v["fits"]]
        for row, (label, host, dust, rec) in enumerate(rows):
            ax = axes[row, col]
            im = ax.imshow(1.0 - dust, origin="lower", extent=extent, cmap="magma", vmin=0, vmax=0.75)
            levels = light_levels(host)
            if host.max() > levels[0]:
                ax.contour(host, levels=levels, colors="c", linewidths=0.7, origin="lower", extent=extent)
            if row == 0:
                ax.set_title(f"A(λ₀) = {t['a0_mean_mag']:.2f} mag, cov = {t['covering_fraction']:.2f}",
                             fontsize=7)
            else:
                r = rec["pearson_dust"]
                ax.set_title(f"{label}: A = {rec['a0_fit_mag']:.2f} mag, r = "
                             f"{'n/a' if r is None else f'{r:.2f}'}", fontsize=7)
            ax.tick_params(labelsize=6)
            if col == 0:
                ax.set_ylabel(f"{label}\ny [arcsec]", fontsize=7)
            if row == len(rows) - 1:
                ax.set_xlabel("x [arcsec]", fontsize=7)
        for row in range(len(rows), n_row - 1):
            axes[row, col].set_axis_off()
        ax = axes[-1, col]
        sed = ta["sed_njy"]
        a_true = band_attenuation(ta["host"], ta["dust"], ta["ratio"])
        ax.plot(lam, sed, "o-", color="0.5", lw=1, ms=3, label="true host")
        ax.plot(lam, sed * 10 ** (-0.4 * a_true), "o-", color="C3", lw=1, ms=3, label="true attenuated")
        for k, m in enumerate(mm for mm in modes if mm in v["fits"]):
            arrays = v["fits"][m][1]
            ax.plot(lam, arrays["sed_njy"], "x--", color=f"C{k + 4}", lw=0.8, ms=3, label=f"{m}: host")
        ax.set_yscale("log")
        ax.set_xlabel(r"pivot wavelength [$\mu$m]", fontsize=7)
        ax.tick_params(labelsize=6)
        if col == 0:
            ax.set_ylabel("flux per band [nJy]", fontsize=7)
            ax.legend(fontsize=5)
    if im is not None:
        fig.colorbar(im, ax=axes[:-1, :].ravel().tolist(), fraction=0.02, pad=0.02,
                     label="absorbed fraction 1 − D at 0.4754 µm")
    fig.suptitle("true (top) and inferred dust maps; contours: 50 and 84 % of the host light", fontsize=9)
    return save_figure(fig, path, dpi=80)


def recovery_figure(path: str | os.PathLike, records: Sequence[dict], modes: Sequence[str], pivots_aa,
                    split: float = COVERING_SPLIT) -> Path:
    """Fig. 3: one column per mode; rows: A(λ₀) recovered vs true, Pearson r of D vs true A(λ₀),
    host SED error per band (median and 16-84 % of each covering bin)."""
    plt = _plt()
    fig, axes = plt.subplots(3, len(modes), figsize=(3.6 * len(modes), 9.0), squeeze=False)
    lam = np.asarray(pivots_aa, dtype=float) / 1e4
    all_a = [r[k] for r in records for k in ("a0_true_mag", "a0_fit_mag")]
    hi = max(max(all_a, default=1.0), 0.1) * 1.5
    for col, mode in enumerate(modes):
        rs = [r for r in records if r["mode"] == mode]
        ax_a, ax_r, ax_f = axes[:, col]
        ax_a.plot([A_FLOOR_MAG, hi], [A_FLOOR_MAG, hi], "k:", lw=0.8)
        for cov_i, (label, sel) in enumerate(((f"cov < {split:g}", lambda c: c < split),
                                              (f"cov ≥ {split:g}", lambda c: c >= split))):
            for variant, marker in (("fiducial", "x"), ("monochromatic", "o")):
                pts = [r for r in rs if r["variant"] == variant and sel(r["covering_true"])]
                if not pts:
                    continue
                at = np.clip([r["a0_true_mag"] for r in pts], A_FLOOR_MAG, None)
                af = np.clip([r["a0_fit_mag"] for r in pts], A_FLOOR_MAG, None)
                pr = np.array([np.nan if r["pearson_dust"] is None else r["pearson_dust"] for r in pts])
                kw = dict(color=COVER_COLOURS[cov_i], s=14, lw=0.8, label=f"{variant}, {label}")
                if marker == "o":
                    kw.update(facecolors="none", edgecolors=COVER_COLOURS[cov_i])
                    kw.pop("color")
                ax_a.scatter(at, af, marker=marker, **kw)
                ax_r.scatter(at, pr, marker=marker, **kw)
            sub = [r for r in rs if sel(r["covering_true"])]
            if sub:
                err = np.array([r["sed_rel_error"] for r in sub], dtype=float)
                p16, p50, p84 = np.percentile(err, [16, 50, 84], axis=0)
                shift = 1.0 + 0.01 * (cov_i - 0.5)
                ax_f.errorbar(lam * shift, p50, yerr=[p50 - p16, p84 - p50], fmt="o-", ms=3, lw=1,
                              capsize=2, color=COVER_COLOURS[cov_i], label=f"{label} (n = {len(sub)})")
        for ax in (ax_a, ax_r):
            ax.set_xscale("log")
            ax.set_xlim(A_FLOOR_MAG, hi)
            ax.set_xlabel(r"true light-weighted A(0.4754 $\mu$m) [mag]", fontsize=8)
        ax_a.set_yscale("log")
        ax_a.set_ylim(A_FLOOR_MAG, hi)
        ax_a.set_ylabel("recovered A(0.4754 µm) [mag]", fontsize=8)
        ax_a.set_title(f"{mode} (n = {len(rs)})", fontsize=9)
        ax_r.set_ylim(-1.05, 1.05)
        ax_r.axhline(0, color="k", lw=0.5)
        ax_r.set_ylabel("Pearson r of inferred and true D", fontsize=8)
        ax_f.axhline(0, color="k", lw=0.5)
        ax_f.set_xlabel(r"pivot wavelength [$\mu$m]", fontsize=8)
        ax_f.set_ylabel(r"host SED error $\hat F_b / F_b - 1$", fontsize=8)
        for ax in (ax_a, ax_r, ax_f):
            ax.tick_params(labelsize=7)
        if col == 0:
            ax_a.legend(fontsize=6, loc="upper left")
            ax_f.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


__all__ = ["pick_views", "maps_figure", "recovery_figure"]
