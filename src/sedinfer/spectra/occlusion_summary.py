"""Star-forming / quiescent split by Hα, class means of occlusion maps, and their figure (§5.3).

The paper splits its galaxies "based on Hα strength" (Jespersen et al., footnote 17) without a
number. Here the split is by the rest-frame emission equivalent width of Hα, measured on the
normalised spectrum itself:

    W(Hα) = Σ_p (f_p / c_p − 1) Δλ_rest,p    over rest 6554.61–6574.61 Å (Hα ± 10 Å, vacuum),

with the continuum c linear in λ through the medians of the side bands 6490–6530 Å and 6600–6640 Å
(clear of [N II] λλ6550, 6585 and [S II] λλ6718, 6733), Δλ_rest,p the rest-frame width of pixel p,
and masked line pixels filled by the mean of the unmasked ones. W > 0 is emission. A galaxy is
**star-forming** when W(Hα) > 3 Å and **quiescent** otherwise: the W(Hα) = 3 Å boundary between
line-emitting and retired galaxies of Cid Fernandes et al. (2011, MNRAS 413, 1687, the WHAN
diagram). Cid Fernandes et al. measure W(Hα) after subtracting a stellar-population fit; here the
stellar Hα absorption (≈ 1–3 Å in old populations) is not removed, so weak emitters fall among the
quiescent ones, and AGN (which WHAN separates with [N II]/Hα) count as star-forming. **unknown**:
Hα outside the grid (z ≳ 0.40 on SDSS), fewer than half of the line pixels or than 10 pixels of
either side band unmasked, or a continuum ≤ 0.

:func:`class_means` puts each spectrum's map (observed grid) on a common rest-frame grid
(λ_rest = λ_obs / (1 + z), linear interpolation; NaN stays NaN) and averages per class, with the
mean normalised spectrum; :func:`plot_occlusion` draws the star-forming and quiescent panels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sedinfer.spectra.lines import GALAXY_LINES, H_ALPHA_VAC_AA, GalaxyLine

HALPHA_LINE_BAND_AA: tuple[float, float] = (H_ALPHA_VAC_AA - 10.0, H_ALPHA_VAC_AA + 10.0)
"""Rest-frame (vacuum) band of the Hα equivalent width, Å."""
HALPHA_CONTINUUM_AA: tuple[tuple[float, float], tuple[float, float]] = ((6490.0, 6530.0), (6600.0, 6640.0))
"""Rest-frame side bands of the Hα continuum, Å."""
SF_EW_THRESHOLD_AA: float = 3.0
"""W(Hα) (Å, emission > 0) above which a galaxy is star-forming (Cid Fernandes et al. 2011)."""
CLASSES: tuple[str, str] = ("star-forming", "quiescent")
UNKNOWN = "unknown"


def halpha_ew(wave_obs_aa: np.ndarray, flux_norm: np.ndarray, ivar_norm: np.ndarray,
              z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame emission equivalent width of Hα (Å, (N,); NaN where it cannot be measured) and
    a reason (N,) for each NaN (empty otherwise). ``flux_norm``, ``ivar_norm`` (N, M) on the
    observed (vacuum) grid ``wave_obs_aa`` (M,); ivar 0 = masked; ``z`` (N,)."""
    wave = np.asarray(wave_obs_aa, dtype=np.float64)
    flux = np.atleast_2d(np.asarray(flux_norm, dtype=np.float64))
    good = np.atleast_2d(np.asarray(ivar_norm)) > 0
    z = np.atleast_1d(np.asarray(z, dtype=np.float64))
    if flux.shape != good.shape or flux.shape[1:] != wave.shape or z.shape != flux.shape[:1]:
        raise ValueError(f"shapes flux {flux.shape}, ivar {good.shape}, wave {wave.shape}, z {z.shape} "
                         "do not match (N, M), (N, M), (M,), (N,)")
    n = len(z)
    ew = np.full(n, np.nan)
    reason = np.full(n, "", dtype=object)
    dlam = np.gradient(wave)                                          # observed pixel widths, Å
    (b0, b1), (r0, r1) = HALPHA_CONTINUUM_AA
    lo, hi = HALPHA_LINE_BAND_AA
    for i in range(n):
        if not np.isfinite(z[i]):
            reason[i] = "no redshift"
            continue
        rest = wave / (1.0 + z[i])
        if rest[0] > b0 or rest[-1] < r1:
            reason[i] = f"H-alpha (rest {b0:g}-{r1:g} A) outside the observed grid at z = {z[i]:.4g}"
            continue
        line = (rest >= lo) & (rest <= hi)
        blue, red = (rest >= b0) & (rest <= b1), (rest >= r0) & (rest <= r1)
        n_side = min((blue & good[i]).sum(), (red & good[i]).sum())
        if (line & good[i]).sum() < 0.5 * line.sum() or n_side < 10:
            reason[i] = "too many masked pixels around H-alpha"
            continue
        cb, cr = np.median(flux[i, blue & good[i]]), np.median(flux[i, red & good[i]])
        xb, xr = 0.5 * (b0 + b1), 0.5 * (r0 + r1)
        use = line & good[i]
        cont = cb + (cr - cb) * (rest[use] - xb) / (xr - xb)
        if not (cont > 0).all():
            reason[i] = "H-alpha continuum <= 0"
            continue
        ew[i] = float(np.mean(flux[i, use] / cont - 1.0) * dlam[line].sum() / (1.0 + z[i]))
    return ew, reason.astype(str)


def classify_halpha(ew_aa: np.ndarray, threshold_aa: float = SF_EW_THRESHOLD_AA) -> np.ndarray:
    """``"star-forming"`` where W(Hα) > ``threshold_aa``, ``"quiescent"`` where ≤, ``"unknown"``
    where NaN; (N,) strings."""
    ew = np.asarray(ew_aa, dtype=np.float64)
    out = np.full(ew.shape, UNKNOWN, dtype=object)
    out[np.isfinite(ew) & (ew > threshold_aa)] = CLASSES[0]
    out[np.isfinite(ew) & (ew <= threshold_aa)] = CLASSES[1]
    return out.astype(str)


@dataclass
class OcclusionSummary:
    """Class means on a rest-frame grid ``wave_rest_aa`` (K,): per class, ``delta_chi`` (4, K)
    the mean Δχ, ``n_spectra`` (4, K) how many spectra have a finite value there, ``flux`` (K,)
    the mean normalised spectrum; ``n_class`` the number of spectra per class."""

    wave_rest_aa: np.ndarray
    delta_chi: dict[str, np.ndarray]
    n_spectra: dict[str, np.ndarray]
    flux: dict[str, np.ndarray]
    n_class: dict[str, int]


def rest_grid(wave_obs_aa: np.ndarray, z: np.ndarray, dloglam: float = 1e-4) -> np.ndarray:
    """Log-uniform rest-frame grid (Å) covering ``wave_obs_aa`` / (1 + z) for every finite z."""
    z = np.asarray(z, dtype=np.float64)
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise ValueError("no finite redshift to build a rest-frame grid")
    lo = math.log10(wave_obs_aa[0] / (1 + z.max()))
    hi = math.log10(wave_obs_aa[-1] / (1 + z.min()))
    return 10.0 ** (lo + dloglam * np.arange(int(math.floor((hi - lo) / dloglam)) + 1))


def class_means(delta_chi: np.ndarray, flux_norm: np.ndarray, ivar_norm: np.ndarray,
                wave_obs_aa: np.ndarray, z: np.ndarray, classes: np.ndarray,
                wave_rest_aa: np.ndarray | None = None) -> OcclusionSummary:
    """Mean occlusion maps and spectra of each class on a rest-frame grid.

    ``delta_chi`` (N, 4, M) on the observed grid ``wave_obs_aa`` (M,) (NaN: no value);
    ``flux_norm``, ``ivar_norm`` (N, M); ``z`` (N,); ``classes`` (N,) from :func:`classify_halpha`
    (``"unknown"`` rows are left out). ``wave_rest_aa`` default: :func:`rest_grid` of the
    classified spectra.
    """
    delta_chi = np.asarray(delta_chi, dtype=np.float64)
    classes = np.asarray(classes, dtype=str)
    z = np.asarray(z, dtype=np.float64)
    wave = np.asarray(wave_obs_aa, dtype=np.float64)
    if delta_chi.ndim != 3 or delta_chi.shape[0] != len(z) or delta_chi.shape[2] != len(wave):
        raise ValueError(f"delta_chi has shape {delta_chi.shape}; expected ({len(z)}, 4, {len(wave)})")
    known = np.isin(classes, CLASSES) & np.isfinite(z)
    grid = np.asarray(wave_rest_aa, dtype=np.float64) if wave_rest_aa is not None else (
        rest_grid(wave, z[known]) if known.any() else rest_grid(wave, np.zeros(1)))
    flux = np.where(np.asarray(ivar_norm) > 0, np.asarray(flux_norm, dtype=np.float64), np.nan)
    out = OcclusionSummary(grid, {}, {}, {}, {})
    for name in CLASSES:
        rows = np.flatnonzero(known & (classes == name))
        maps = np.full((len(rows), delta_chi.shape[1], len(grid)), np.nan)
        spec = np.full((len(rows), len(grid)), np.nan)
        for j, i in enumerate(rows):
            rest = wave / (1.0 + z[i])
            for b in range(delta_chi.shape[1]):
                maps[j, b] = np.interp(grid, rest, delta_chi[i, b], left=np.nan, right=np.nan)
            spec[j] = np.interp(grid, rest, flux[i], left=np.nan, right=np.nan)
        finite = np.isfinite(maps)
        count = finite.sum(0)
        with np.errstate(invalid="ignore"):
            out.delta_chi[name] = np.where(count > 0, np.nansum(maps, 0) / np.maximum(count, 1), np.nan)
            nspec = np.isfinite(spec).sum(0)
            out.flux[name] = np.where(nspec > 0, np.nansum(spec, 0) / np.maximum(nspec, 1), np.nan)
        out.n_spectra[name] = count
        out.n_class[name] = len(rows)
    return out


def plot_occlusion(summary: OcclusionSummary, band: int = 2, lines: tuple[GalaxyLine, ...] = GALAXY_LINES,
                   title: str | None = None):
    """The star-forming (top) and quiescent (bottom) mean Δχ of ``band`` (0–3 = W1–W4; default
    W3, the paper's Fig. 14) against rest wavelength, the mean normalised spectrum on a second
    axis and ``lines`` marked. Returns a matplotlib ``Figure`` (no pyplot state, no backend
    switch; save it with :func:`sedinfer.atomic.save_figure`)."""
    from matplotlib.figure import Figure

    if band not in range(4):
        raise ValueError(f"band must be 0-3 (W1-W4), got {band!r}")
    label = f"W{band + 1}"
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(left=0.08, right=0.92, top=0.84 if title else 0.88, bottom=0.08, hspace=0.42)
    wave = summary.wave_rest_aa
    for ax, name in zip(axes, CLASSES, strict=True):
        n = summary.n_class.get(name, 0)
        spec_ax = ax.twinx()
        if n:
            spec_ax.plot(wave, summary.flux[name], color="0.2", lw=0.6)
            ax.plot(wave, summary.delta_chi[name][band], color="tab:blue", lw=0.9)
        else:
            ax.text(0.5, 0.5, f"no {name} spectra", transform=ax.transAxes, ha="center", va="center")
        ax.axhline(0.0, color="tab:blue", lw=0.5, ls=":")
        ax.set_zorder(spec_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        for entry in lines:
            for k, lam in enumerate(entry.wave_vac_aa):
                if wave[0] <= lam <= wave[-1]:
                    ax.axvline(lam, color="tab:red", lw=0.6, alpha=0.6)
                    if k == 0:
                        ax.text(lam, 1.01, entry.label, transform=ax.get_xaxis_transform(), rotation=90,
                                ha="center", va="bottom", fontsize=7, color="tab:red")
        ax.set_ylabel(f"Δχ {label} = (m_occluded − m_pred)/σ  [σ]", color="tab:blue", fontsize=9)
        spec_ax.set_ylabel("f_λ / median f_λ(5300–5850 Å)  [–]", fontsize=9)
        ax.set_title(f"{name} (n = {n}, Hα split)", loc="left", fontsize=9, pad=46)
    axes[-1].set_xlabel("rest-frame wavelength (Å, vacuum)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["CLASSES", "HALPHA_CONTINUUM_AA", "HALPHA_LINE_BAND_AA", "OcclusionSummary", "SF_EW_THRESHOLD_AA",
           "UNKNOWN", "class_means", "classify_halpha", "halpha_ew", "plot_occlusion", "rest_grid"]
