"""Figures of a population fit (PopSED Figs. 2–4): population corner with each flow and the
ensemble, observed vs synthetic photometry, the redshift distribution n(z), the star-forming
main sequence, and the with/without selection comparison.

Every function takes column dicts (name → 1-D array) and writes the figure atomically to
``path``; matplotlib is imported lazily with the Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sedinfer.atomic import save_figure
from sedinfer.posterior.compare import _contour, lower_triangle

Columns = Mapping[str, np.ndarray]

LABELS = {
    "redshift": "redshift z",
    "log_mass": r"log $M_{\rm formed}$ [$M_\odot$]",
    "log_mstar": r"log $M_\star$ [$M_\odot$]",
    "log_sfr_100myr": r"log SFR$_{0.1\,\rm Gyr}$ [$M_\odot$/yr]",
    "mass_weighted_age": r"$t_{\rm age,MW}$ [Gyr]",
    "log_z": r"log $Z/Z_\odot$",
    "t_burst": r"$t_{\rm burst}$ [Gyr]",
    "tau_bc": r"$\tau_{\rm BC}$ (5500 Å)",
    "tau_ism": r"$\tau_{\rm ISM}$ (5500 Å)",
}


def label(name: str) -> str:
    """Axis label with units: a parameter's, or ``<band> [asinh mag]`` for a band name."""
    if name in LABELS:
        return LABELS[name]
    if name.startswith(("sdss_", "mag_")) or name.startswith("band"):
        return f"{name.removeprefix('mag_obs_').removeprefix('mag_')} [asinh mag]"
    return name


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[np.isfinite(a)]


def _ranges(sets: Sequence[Columns], names: Sequence[str]) -> list[tuple[float, float]]:
    out = []
    for n in names:
        v = np.concatenate([_finite(s[n]) for s in sets])
        lo, hi = np.percentile(v, [0.5, 99.5])
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        out.append((lo - pad, hi + pad))
    return out


def corner(
    sets: Sequence[Columns],
    names: Sequence[str],
    path: str | Path,
    *,
    colors: Sequence[str],
    labels: Sequence[str],
    members: Sequence[Columns] = (),
    member_color: str = "C0",
    bins: int = 40,
) -> Path:
    """Corner plot of several column sets: 68/95 % contours below the diagonal, histograms on it.

    ``members`` (e.g. the flows of an ensemble) are drawn as light step histograms on the diagonal.
    """
    plt = _plt()
    from matplotlib.lines import Line2D

    d = len(names)
    rng = _ranges(sets, names)
    fig, axes = plt.subplots(d, d, figsize=(max(1.7 * d, 4.5),) * 2, squeeze=False)
    for i, j, ax in lower_triangle(axes):
        if i == j:
            styles = [(m, member_color, 0.35, 0.7) for m in members]
            styles += [(s, c, 1.0, 1.4) for s, c in zip(sets, colors, strict=True)]
            for s, c, alpha, lw in styles:
                h, kw = _finite(s[names[i]]), dict(color=c, alpha=alpha, lw=lw)
                ax.hist(h, bins=bins, range=rng[i], density=True, histtype="step", **kw)
            ax.set_yticks([])
        else:
            for s, c in zip(sets, colors, strict=True):
                x, y = np.asarray(s[names[j]], float), np.asarray(s[names[i]], float)
                ok = np.isfinite(x) & np.isfinite(y)
                _contour(ax, x[ok], y[ok], [list(rng[j]), list(rng[i])], c, bins)
            ax.set_ylim(rng[i])
            if j == 0:
                ax.set_ylabel(label(names[i]), fontsize=9)
        ax.set_xlim(rng[j])
        ax.tick_params(labelsize=6)
        if i == d - 1:
            ax.set_xlabel(label(names[j]), fontsize=9)
        else:
            ax.set_xticklabels([])
        if j > 0:
            ax.set_yticklabels([])
    handles = [Line2D([], [], color=c, label=lab) for c, lab in zip(colors, labels, strict=True)]
    if members:
        handles.append(Line2D([], [], color=member_color, alpha=0.35, label="individual flows"))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.98, wspace=0.05, hspace=0.05)
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.96, 0.96), fontsize=11, frameon=False)
    return save_figure(fig, path, dpi=110)


def redshift_distribution(
    members: Sequence[np.ndarray],
    path: str | Path,
    reference: np.ndarray | None = None,
    reference_label: str = "truth",
    bins: int = 40,
) -> Path:
    """n(z) of each flow (light), the ensemble (dark) and an optional reference (e.g. spec-z)."""
    plt = _plt()
    allz = np.concatenate(
        [_finite(z) for z in members] + ([_finite(reference)] if reference is not None else [])
    )
    edges = np.linspace(0, np.percentile(allz, 99.8) * 1.05, bins + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for k, z in enumerate(members):
        ax.hist(
            _finite(z),
            edges,
            density=True,
            histtype="step",
            color="C0",
            alpha=0.35,
            lw=0.8,
            label="individual flows" if k == 0 else None,
        )
    ax.hist(
        np.concatenate([_finite(z) for z in members]),
        edges,
        density=True,
        histtype="step",
        color="C0",
        lw=2,
        label="ensemble",
    )
    if reference is not None:
        ax.hist(
            _finite(reference),
            edges,
            density=True,
            histtype="stepfilled",
            color="0.6",
            alpha=0.5,
            label=reference_label,
        )
    ax.set_xlabel("redshift z")
    ax.set_ylabel("n(z) (normalised)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


def main_sequence(
    fit: Columns,
    path: str | Path,
    reference: Columns | None = None,
    z_max: float = 0.1,
    sfr_floor: float = -4.0,
) -> Path:
    """log SFR(100 Myr) vs log M★ at z < ``z_max`` (PopSED Fig. 4); SFR = 0 drawn at ``sfr_floor``."""
    plt = _plt()

    def pick(c: Columns) -> tuple[np.ndarray, np.ndarray]:
        sel = np.asarray(c["redshift"]) < z_max
        return np.asarray(c["log_mstar"])[sel], np.maximum(np.asarray(c["log_sfr_100myr"])[sel], sfr_floor)

    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    x, y = pick(fit)
    sets = [(x, y, "C0", "inferred population")]
    if reference is not None:
        sets.insert(0, (*pick(reference), "0.4", "truth"))
    allx = np.concatenate([s[0] for s in sets])
    ally = np.concatenate([s[1] for s in sets])
    if allx.size < 10:
        ax.text(0.5, 0.5, f"fewer than 10 draws at z < {z_max}", ha="center", transform=ax.transAxes)
    else:
        rng = [
            list(np.percentile(allx, [0.5, 99.5])),
            [sfr_floor - 0.2, float(np.percentile(ally, 99.5)) + 0.3],
        ]
        for sx, sy, c, lab in sets:
            if sx.size >= 10:
                _contour(ax, sx, sy, rng, c, 40)
            ax.plot([], [], color=c, label=f"{lab} ({sx.size} at z<{z_max})")
        xs = np.linspace(*rng[0], 50)
        ax.plot(xs, 0.76 * (xs - 10) - 0.08, "k--", lw=0.8, label="SFMS, Renzini & Peng 2015")
        ax.set_xlim(rng[0])
        ax.set_ylim(rng[1])
    ax.set_xlabel(r"log $M_\star/M_\odot$")
    ax.set_ylabel(r"log SFR$_{0.1\,\rm Gyr}$ [$M_\odot$/yr]")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def selection_comparison(
    parent: Columns,
    catalog: Columns,
    without: Columns,
    with_sel: Columns,
    names: Sequence[str],
    path: str | Path,
    bins: int = 40,
) -> Path:
    """Marginals of the parent population, the flux-limited catalog, and fits without and with
    the selection function (which should recover the parent)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.3), squeeze=False)
    rng = _ranges([parent, catalog], names)
    styles = [
        (parent, dict(histtype="stepfilled", color="0.7", label="parent (truth)")),
        (catalog, dict(histtype="step", color="k", ls=":", label="catalog")),
        (without, dict(histtype="step", color="C3", lw=1.4, label="fit, no selection")),
        (with_sel, dict(histtype="step", color="C0", lw=1.4, label="fit with selection")),
    ]
    for ax, n, r in zip(axes[0], names, rng, strict=True):
        for cols, kw in styles:
            ax.hist(_finite(cols[n]), bins, r, density=True, **kw)
        ax.set_xlabel(label(n))
        ax.set_yticks([])
    axes[0, 0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["corner", "main_sequence", "redshift_distribution", "selection_comparison"]
