"""Cross-check sedinfer's photometry against bagpipes for matched model configurations.

Both codes read the same BC03-MILES SSPs, Cloudy nebular grids and Draine & Li (2007) dust
templates (sedinfer reads bagpipes' grid files), so for a matched configuration the two
should agree up to differences in resampling and numerical integration. This script draws
random galaxies for two configurations,

* ``delayed``: delayed-τ SFH + Calzetti dust (+ DL07 dust emission with energy balance at
  bagpipes' defaults qpah = 2, umin = 1, gamma = 0.01, which bagpipes always adds when a
  galaxy has a "dust" component);
* ``burst``: constant SFH + burst, Calzetti dust, nebular emission and DL07 dust emission
  with free qpah, umin, gamma;
* ``stellar``: the ``delayed`` galaxies without dust emission (bagpipes' DL07 term switched off
  on its model object), the stellar light alone through Calzetti dust;
* ``cf``: constant + burst, nebular, DL07 and bagpipes' Charlot & Fall model ``CF00`` (power
  law (5500/λ)^n for both components, A_V on all stars and η A_V on those younger than
  10 Myr) against sedinfer's ``dust="cf"`` with ``ism_curve="power_law"`` and
  ``birth_cloud_index=-n``;

computes AB magnitudes in SDSS ugriz and WISE W1-W4 with both codes, and writes the
statistics of Δm = m_sedinfer − m_bagpipes to ``docs/bagpipes_crosscheck.md`` and a figure
to ``docs/figures/bagpipes_crosscheck.png``. It also measures how far each code's burst
placement is from the raw BC03 SSP evaluated at the exact burst age.

Run from the repository root: ``python scripts/crosscheck_bagpipes.py`` (about a minute).
``tests/test_bagpipes_crosscheck.py`` imports the functions below and runs a smaller
version of the matched comparison.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import sedinfer as si
from sedinfer.bagpipes_mock import bagpipes_cosmology as cosmology
from sedinfer.bagpipes_mock import import_bagpipes, write_filter_files

ROOT = Path(__file__).resolve().parents[1]
MD_PATH = ROOT / "docs" / "bagpipes_crosscheck.md"
FIG_PATH = ROOT / "docs" / "figures" / "bagpipes_crosscheck.png"

BANDS = ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0",
         "wise_w1", "wise_w2", "wise_w3", "wise_w4")
LABELS = ("u", "g", "r", "i", "z", "W1", "W2", "W3", "W4")
N_OPTICAL = 5                      # the first five bands are SDSS
TOL_OPTICAL, TOL_WISE = 0.02, 0.05  # test thresholds on the median |Δm| per band (mag)
CONFIGS = ("delayed", "burst", "stellar", "cf")
TITLES = {"delayed": "delayed-τ + Calzetti (+ DL07 at bagpipes defaults)",
          "burst": "constant + burst + Calzetti + nebular + DL07",
          "stellar": "delayed-τ + Calzetti, no dust emission in either code",
          "cf": "constant + burst + Charlot & Fall (power laws) + nebular + DL07"}
CF_N = (1.0, 0.7)                  # bagpipes CF00 slopes n compared (sedinfer's default index is -1)
MAG_PER_TAU = 2.5 / np.log(10.0)   # A = 1.0857 τ
SEED = 20240607
AGE_FRAC_MAX = 0.98                # ages and burst times drawn below 0.98 t_univ(z)
LOG_AGE0, DLOG_AGE = 6.0, 0.1      # age-bin centres log10(t/yr) = 6.0, 6.1, ... (both codes)


def sedinfer_model(config: str, metallicity_interp: str = "linear", cos=None,
                   cf_n: float = 1.0) -> si.SPSModel:
    cos = cosmology() if cos is None else cos
    if config == "stellar":
        return si.SPSModel(sfh="delayed", dust="calzetti", cosmology=cos,
                           metallicity_interp=metallicity_interp)
    if config == "cf":
        return si.SPSModel(sfh="constant+burst", dust="cf", ism_curve="power_law",
                           birth_cloud_index=-cf_n, nebular=True, dust_emission=True, cosmology=cos,
                           metallicity_interp=metallicity_interp)
    if config == "delayed":
        return si.SPSModel(sfh="delayed", dust="calzetti", dust_emission=True, cosmology=cos,
                           metallicity_interp=metallicity_interp)
    if config == "burst":
        return si.SPSModel(sfh="constant+burst", dust="calzetti", nebular=True, dust_emission=True,
                           cosmology=cos, metallicity_interp=metallicity_interp)
    raise ValueError(f"unknown configuration {config!r}")


def draw(config: str, n: int, rng: np.random.Generator, burst_ages: str = "centres", cos=None,
         cf_n: float = 1.0):
    """Random parameters: returns ``(theta (n, D) in sedinfer's param_names order, list of n
    bagpipes model_components dicts)``.

    ``stellar`` draws the ``delayed`` galaxies (θ without the dust-emission columns); ``cf`` the
    ``burst`` ones with bagpipes' ``CF00`` dust of slope ``cf_n`` and η ~ U(1, 3), mapped to
    τ_ism = A_V / 1.0857, τ_bc = (η − 1) A_V / 1.0857 and n_dust = −``cf_n``.

    ``burst_ages``: ``"centres"`` draws t_burst among the age-bin centres 10^(6.0 + 0.1 k) yr
    below 0.98 t_univ (where both codes place a burst identically); ``"continuous"`` draws
    log10(t_burst/yr) uniformly between 6.0 and log10(0.98 t_univ).
    """
    cos = cosmology() if cos is None else cos
    if config == "stellar":
        theta, comps = draw("delayed", n, rng, burst_ages, cos)
        return theta[:, :6], comps
    if burst_ages not in ("centres", "continuous"):
        raise ValueError(f"burst_ages must be 'centres' or 'continuous', got {burst_ages!r}")
    theta, comps = [], []
    for _ in range(n):
        z = rng.uniform(0.02, 1.5)
        t_max = AGE_FRAC_MAX * float(cos.age(z).value)      # Gyr
        log_mass = rng.uniform(9.0, 11.5)
        log_z = rng.uniform(-2.0, 0.6)
        av = rng.uniform(0.0, 2.0)
        age = rng.uniform(0.1, t_max)
        if config == "delayed":
            tau = 10 ** rng.uniform(-1.0, 1.0)
            theta.append([z, log_mass, log_z, age, tau, av, 2.0, 1.0, 0.01])
            comps.append({"redshift": z,
                          "delayed": {"age": age, "tau": tau, "massformed": log_mass,
                                      "metallicity": 10**log_z},
                          "dust": {"type": "Calzetti", "Av": av}})
            continue
        f_burst = rng.uniform(0.01, 0.5)
        log_t_max = np.log10(t_max) + 9.0
        if burst_ages == "centres":
            k = rng.integers(0, int(np.floor((log_t_max - LOG_AGE0) / DLOG_AGE)) + 1)
            t_burst = 10 ** (LOG_AGE0 + DLOG_AGE * k - 9.0)
        else:
            t_burst = 10 ** (rng.uniform(LOG_AGE0, log_t_max) - 9.0)
        log_u = rng.uniform(-3.5, -1.5)
        qpah, umin, gamma = rng.uniform(0.5, 4.5), rng.uniform(0.2, 20.0), rng.uniform(0.0, 0.5)
        dust = {"type": "Calzetti", "Av": av, "qpah": qpah, "umin": umin, "gamma": gamma}
        if config == "cf":
            eta = rng.uniform(1.0, 3.0)
            dust.update(type="CF00", eta=eta, n=cf_n)
            theta.append([z, log_mass, log_z, age, f_burst, t_burst, (eta - 1.0) * av / MAG_PER_TAU,
                          av / MAG_PER_TAU, -cf_n, log_u, qpah, umin, gamma])
        else:
            theta.append([z, log_mass, log_z, age, f_burst, t_burst, av, log_u, qpah, umin, gamma])
        mass = 10**log_mass
        comps.append({"redshift": z,
                      "constant": {"age_max": age, "age_min": 0.0,
                                   "massformed": np.log10((1 - f_burst) * mass), "metallicity": 10**log_z},
                      "burst": {"age": t_burst, "massformed": np.log10(f_burst * mass),
                                "metallicity": 10**log_z},
                      "dust": dust, "nebular": {"logU": log_u}})
    return np.array(theta), comps


def bagpipes_mags(components: list[dict], filter_paths: list[str],
                  dust_emission: bool = True) -> np.ndarray:
    """AB magnitudes (n, B) from one bagpipes ``model_galaxy`` updated for every draw.

    bagpipes adds DL07 dust emission to every galaxy with a ``"dust"`` component; with
    ``dust_emission=False`` that term is replaced by zero on this model object only (its
    ``dust_emission.spectrum``), leaving the attenuated stellar light.
    """
    pipes = import_bagpipes()
    galaxy = pipes.model_galaxy(components[0], filt_list=filter_paths, phot_units="mujy")
    if not dust_emission:
        galaxy.dust_emission.spectrum = lambda *args: 0.0
    out = np.empty((len(components), len(filter_paths)))
    for i, comp in enumerate(components):
        galaxy.update(comp)
        out[i] = -2.5 * np.log10(galaxy.photometry / 3631e6)
    return out


def sedinfer_mags(model: si.SPSModel, theta: np.ndarray, filters: si.Filters) -> np.ndarray:
    """AB magnitudes (n, B), all draws in one batched call."""
    with torch.no_grad():
        mags = model.photometry(torch.as_tensor(theta, dtype=model.dtype), filters, units="mag")
    return mags.double().numpy()


def compare(config: str, n: int, seed: int, filter_dir: Path, interp: str = "linear",
            burst_ages: str = "centres", cf_n: float = 1.0) -> np.ndarray:
    """Δm = m_sedinfer − m_bagpipes, shape (n, 9), for ``n`` seeded draws."""
    cos = cosmology()
    filters = si.Filters(list(BANDS))
    paths = write_filter_files(filters, filter_dir)
    theta, comps = draw(config, n, np.random.default_rng(seed), burst_ages, cos, cf_n)
    ours = sedinfer_mags(sedinfer_model(config, interp, cos, cf_n), theta, filters)
    return ours - bagpipes_mags(comps, paths, dust_emission=config != "stellar")


def band_medians(dm: np.ndarray) -> str:
    return ", ".join(f"{b} {v:.4f}" for b, v in zip(LABELS, np.median(np.abs(dm), axis=0), strict=True))


# ------------------------------------------------------------------ burst placement vs truth
def burst_placement_errors(n: int = 300, seed: int = SEED, metallicity_index: int = 4) -> dict:
    """Rest-frame magnitude errors of a single burst at ``n`` random ages (log-uniform between
    1 Myr and 12.6 Gyr) for the two placement conventions, against the raw BC03 SSP (Z_sun by
    default) interpolated linearly in log age at the exact burst age (the raw grid has ~220
    ages, 0.05 dex apart or closer).

    Both conventions use the same bin-averaged templates (sedinfer's, which follow bagpipes'
    averaging): sedinfer splits the mass linearly in log age between the two neighbouring bin
    centres, bagpipes puts it all into the bin whose centre is nearest in (linear) age.
    Returns ``{"sedinfer": (n, B), "bagpipes": (n, B), "log_age": (n,), "centres": (C, B)}`` with
    Δm = m − m_true; "centres" holds the error of the bin-averaged templates at the bin centres
    themselves (where both conventions coincide).
    """
    from sedinfer.sps import grids
    from sedinfer.sps.sfh import age_bins, burst_weights
    from sedinfer.sps.templates import stellar_templates

    cos = cosmology()
    filters = si.Filters(list(BANDS))
    ssp = grids.load_ssp()
    wave = ssp.wave_aa
    centres, edges = age_bins(float(cos.age(0).value))
    tmpl = stellar_templates(wave, edges).ssp[metallicity_index]          # (A, W) bin-averaged
    raw = ssp.lum[metallicity_index]                                       # (R, W)
    log_raw = np.log10(np.maximum(ssp.age_yr, 1.0))

    rng = np.random.default_rng(seed)
    log_age = rng.uniform(LOG_AGE0, 10.1, n)
    i = np.clip(np.searchsorted(log_raw, log_age), 1, len(log_raw) - 1)
    w = ((log_age - log_raw[i - 1]) / (log_raw[i] - log_raw[i - 1]))[:, None]
    truth = (1 - w) * raw[i - 1] + w * raw[i]
    ours = burst_weights(torch.as_tensor(10 ** (log_age - 9.0)), centres).numpy() @ tmpl
    nearest = np.argmin(np.abs(centres[None, :] - 10 ** log_age[:, None]), axis=1)
    theirs = tmpl[nearest]

    def mag(lum):
        return -2.5 * np.log10(filters.maggies_from_spectrum(wave, lum))

    m_true = mag(truth)
    # at the bin centres the conventions coincide: what is left is the bin averaging itself
    lc = np.log10(centres[np.log10(centres) <= log_age.max()])
    j = np.clip(np.searchsorted(log_raw, lc), 1, len(log_raw) - 1)
    wc = ((lc - log_raw[j - 1]) / (log_raw[j] - log_raw[j - 1]))[:, None]
    at_centres = mag(tmpl[: len(lc)]) - mag((1 - wc) * raw[j - 1] + wc * raw[j])
    return {"sedinfer": mag(ours) - m_true, "bagpipes": mag(theirs) - m_true, "log_age": log_age,
            "centres": at_centres}


# ------------------------------------------------------------------------------- reporting
def stats_table(rows: dict[str, np.ndarray]) -> str:
    """Markdown table of median / 90th percentile / max |Δm| per band for each labelled (n, B)."""
    head = "| case | statistic | " + " | ".join(LABELS) + " |"
    lines = [head, "|" + "---|" * (len(LABELS) + 2)]
    for name, dm in rows.items():
        a = np.abs(dm)
        for stat, v in (("median", np.median(a, 0)), ("90th pct", np.percentile(a, 90, axis=0)),
                        ("max", a.max(0))):
            lines.append(f"| {name} | {stat} | " + " | ".join(f"{x:.3f}" for x in v) + " |")
    return "\n".join(lines)


def make_figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("(a) " + TITLES["delayed"],
               [("linear Z (matched)", results["delayed", "linear", "centres"]),
                ("log Z (sedinfer default)", results["delayed", "log", "centres"])]),
              ("(b) " + TITLES["burst"] + ", bin-centred t_burst",
               [("linear Z (matched)", results["burst", "linear", "centres"]),
                ("log Z (sedinfer default)", results["burst", "log", "centres"])]),
              ("(c) constant + burst, linear Z: bin-centred vs continuous t_burst",
               [("bin-centred t_burst", results["burst", "linear", "centres"]),
                ("continuous t_burst", results["burst", "linear", "continuous"])])]
    colours = ("tab:blue", "tab:orange")
    fig, axes = plt.subplots(3, 1, figsize=(10, 11), sharex=True)
    x = np.arange(len(LABELS))
    for ax, (title, series) in zip(axes, panels, strict=True):
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.axvline(N_OPTICAL - 0.5, color="0.8", lw=0.8, ls=":")
        for k, (label, dm) in enumerate(series):
            pos = x + (k - 0.5) * 0.36
            bp = ax.boxplot(dm, positions=pos, widths=0.3, whis=(5, 95), patch_artist=True,
                            showfliers=True, flierprops=dict(marker=".", ms=2, alpha=0.5,
                                                             markeredgecolor=colours[k]),
                            medianprops=dict(color="k", lw=1.2), manage_ticks=False)
            for box in bp["boxes"]:
                box.set(facecolor=colours[k], alpha=0.55, edgecolor=colours[k])
            for part in ("whiskers", "caps"):
                for line in bp[part]:
                    line.set(color=colours[k])
            ax.plot([], [], "s", color=colours[k], alpha=0.55, ms=9, label=label)
        for tol, lo, hi in ((TOL_OPTICAL, -0.5, N_OPTICAL - 0.5),
                            (TOL_WISE, N_OPTICAL - 0.5, len(LABELS) - 0.5)):
            ax.fill_between([lo, hi], -tol, tol, color="tab:green", alpha=0.08, lw=0)
        lim = max(0.06, min(0.3, 1.15 * max(np.percentile(np.abs(dm), 99) for _, dm in series)))
        ax.set_ylim(-lim, lim)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(r"$\Delta m = m_{\rm sedinfer} - m_{\rm bagpipes}$ [mag]")
        ax.legend(loc="upper left", fontsize=9, framealpha=0.9)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(x, LABELS)
    axes[-1].set_xlabel("band (SDSS ugriz, WISE W1–W4)")
    fig.text(0.99, 0.005, "boxes: 25–75%, whiskers: 5–95%, dots: beyond; green band: test tolerance "
             "on the median |Δm|", ha="right", va="bottom", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def split_table(dm: np.ndarray, masks: dict[str, np.ndarray], first: str) -> str:
    """Markdown table of the median |Δm| per band in subsets of the draws."""
    lines = [f"| {first} | N | " + " | ".join(LABELS) + " |", "|" + "---|" * (len(LABELS) + 2)]
    for name, m in masks.items():
        med = np.median(np.abs(dm[m]), 0)
        lines.append(f"| {name} | {m.sum()} | " + " | ".join(f"{x:.3f}" for x in med) + " |")
    return "\n".join(lines)


def _range(a: np.ndarray, q: float) -> str:
    v = np.percentile(a[:, :N_OPTICAL], q, axis=0)
    return f"{v.min():.3f}–{v.max():.3f}"


def machine() -> str:
    """The CPU, core count, platform and thread setting of this run, for the record."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.platform()}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def write_markdown(path: Path, results: dict, thetas: dict, truth: dict, n: int, seed: int,
                   command: str, elapsed: float) -> None:
    from importlib.metadata import version

    from sedinfer.sps.grids import SSP_METALLICITIES_ZSUN

    bp_version = version("bagpipes")
    # (b) log-Z differences split by the metallicity interval between grid points
    log_grid = np.log10(SSP_METALLICITIES_ZSUN)
    dm_log = np.concatenate([results["delayed", "log", "centres"], results["burst", "log", "centres"]])
    log_z = np.concatenate([thetas["delayed", "centres"][:, 2], thetas["burst", "centres"][:, 2]])
    cuts = [-2.0, *log_grid[(log_grid > -2.0) & (log_grid < 0.6)], 0.6]
    z_masks = {f"{lo:+.2f} … {hi:+.2f} ({10**lo:.2g}–{10**hi:.2g} Z_sun)":
               (log_z >= lo) & ((log_z < hi) if hi < 0.6 else (log_z <= hi))
               for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)}
    # (c) continuous bursts split by burst age, distance from a bin centre and burst fraction
    dm_c = results["burst", "linear", "continuous"]
    th_c = thetas["burst", "continuous"]
    log_t = np.log10(th_c[:, 5]) + 9.0
    off = np.abs((log_t - LOG_AGE0) / DLOG_AGE - np.round((log_t - LOG_AGE0) / DLOG_AGE)) * DLOG_AGE
    c_masks = {"t_burst < 100 Myr": log_t < 8.0, "t_burst ≥ 100 Myr": log_t >= 8.0,
               "< 0.01 dex from a bin centre": off < 0.01,
               "0.01–0.03 dex from a bin centre": (off >= 0.01) & (off < 0.03),
               "0.03–0.05 dex from a bin centre": off >= 0.03,
               "f_burst < 0.25": th_c[:, 4] < 0.25, "f_burst ≥ 0.25": th_c[:, 4] >= 0.25}

    n_truth = len(truth["log_age"])
    ts, tb, tc = (np.abs(truth[k]) for k in ("sedinfer", "bagpipes", "centres"))
    truth_rows = ["| convention | statistic | " + " | ".join(LABELS) + " |", "|" + "---|" * (len(LABELS) + 2)]
    for name, a in (("sedinfer (log-age interpolation)", ts), ("bagpipes (nearest bin)", tb),
                    (f"either, at the {len(tc)} bin centres", tc)):
        for stat, v in (("median", np.median(a, 0)), ("90th pct", np.percentile(a, 90, axis=0)),
                        ("max", a.max(0))):
            truth_rows.append(f"| {name} | {stat} | " + " | ".join(f"{x:.3f}" for x in v) + " |")

    z_d = thetas["delayed", "centres"][:, 0]
    dl07 = results["dl07"]
    zbins = ((0.0, 0.3), (0.3, 0.7), (0.7, 1.5))
    dl07_rows = [f"| z | N | {' | '.join(LABELS)} |", "|" + "---|" * (len(LABELS) + 2)]
    for lo, hi in ((0.0, 1.5), *zbins):
        m = (z_d >= lo) & (z_d < hi)
        med = np.median(dl07[m], 0)
        dl07_rows.append(f"| {lo:.1f}–{hi:.1f} | {m.sum()} | " + " | ".join(f"{x:.3f}" for x in med) + " |")
    dl07_table = chr(10).join(dl07_rows)
    mis = np.median(np.abs(results["stellar", "linear", "on"]), 0)

    def worst(key):
        med = np.median(np.abs(results[key]), 0)
        return f"{med[:N_OPTICAL].max():.3f} (ugriz) / {med[N_OPTICAL:].max():.3f} (W1–W4)"

    md = f"""# Cross-check against bagpipes

`sedinfer` reads the same template grids as bagpipes (BC03-MILES SSPs, Cloudy nebular
continuum and lines, Draine & Li 2007 dust emission, Inoue et al. 2014 IGM). For matched
model configurations the two codes should therefore give the same photometry, up to
differences in wavelength resampling and numerical integration. This page compares the two
on random galaxies in SDSS ugriz and WISE W1–W4.
It is made by `scripts/crosscheck_bagpipes.py`. `tests/test_bagpipes_crosscheck.py` runs a
smaller version (100 draws per configuration) of the matched comparisons (a), (d) and (e) and
asserts a median |Δm| ≤ {TOL_OPTICAL} mag in each of ugriz and ≤ {TOL_WISE} mag in each of W1–W4.

Δm = m_sedinfer − m_bagpipes (AB magnitudes). bagpipes {bp_version} gives
fluxes in µJy, converted with m = −2.5 log10(f / 3631×10⁶ µJy). Both codes use the filter
curves shipped with sedinfer (sedpy's `sdss_*0` and `wise_w*`), written to two-column
files for bagpipes. sedinfer runs in its default float32, all draws in one batched call;
bagpipes runs one `model_galaxy` updated for each draw (`model_galaxy.update` gives
results identical to building a new object).

![Δm distributions](figures/bagpipes_crosscheck.png)

*Distributions of Δm per band. (a) delayed-τ configuration, (b) constant + burst
configuration with bursts at bin centres, each with linear (matched) and logarithmic
(sedinfer's default) metallicity interpolation; (c) constant + burst, linear Z, with bursts
at bin centres and at continuous random ages. Boxes: 25–75 %, whiskers: 5–95 %, dots:
outside. Shaded green: the test tolerance on the median |Δm|. The y axes stop at 1.15 times
the 99th percentile of |Δm| (at most 0.3 mag), so a few outliers are off the plot; see the
"max" rows of the tables.*

## Matched configurations

Both use bagpipes' cosmology, `FlatLambdaCDM(H0=70, Om0=0.3)`, passed to
`SPSModel(cosmology=...)`, and the same age bins (centres at log10(t/yr) = 6.0, 6.1, …;
edges at the midpoints) with bin-averaged SSPs.

**(1) delayed-τ + Calzetti.** Whenever a bagpipes model has a `"dust"` component bagpipes
also adds Draine & Li dust emission with energy balance, at its defaults qpah = 2,
umin = 1, gamma = 0.01 unless they are given. The matched sedinfer model is therefore

```python
SPSModel(sfh="delayed", dust="calzetti", dust_emission=True, cosmology=cos)
# theta = (redshift, log_mass, log_z, age, tau, av, qpah=2, umin=1, gamma=0.01)
```

against bagpipes `{{"redshift": z, "delayed": {{"age": age, "tau": tau, "massformed":
log_mass, "metallicity": 10**log_z}}, "dust": {{"type": "Calzetti", "Av": av}}}}`.

**(2) constant + burst + Calzetti + nebular + dust emission.**

```python
SPSModel(sfh="constant+burst", dust="calzetti", nebular=True, dust_emission=True, cosmology=cos)
# theta = (redshift, log_mass, log_z, age, f_burst, t_burst, av, log_u, qpah, umin, gamma)
```

against bagpipes `"constant": {{"age_max": age, "age_min": 0, "massformed":
log10((1 − f_burst) M), "metallicity": 10**log_z}}`, `"burst": {{"age": t_burst,
"massformed": log10(f_burst M), "metallicity": 10**log_z}}`, `"dust": {{"type": "Calzetti",
"Av": av, "qpah": qpah, "umin": umin, "gamma": gamma}}`, `"nebular": {{"logU": log_u}}`,
with M = 10**log_mass.

**Metallicity.** bagpipes interpolates *linearly in Z* between the BC03 grid metallicities;
sedinfer's default is interpolation in log Z (`metallicity_interp="log"`). The matched
comparison uses `metallicity_interp="linear"`; table (b) shows the default.

**Burst ages.** The two codes place a burst differently (see below). They coincide when
t_burst is an age-bin centre, so the matched comparison draws t_burst from the bin centres
10^(6.0 + 0.1 k) yr below 0.98 t_univ(z); table (c) uses continuous random burst ages.

**Draws** ({n} per configuration and case, seed {seed}): z ~ U(0.02, 1.5),
log_mass ~ U(9, 11.5), log_z ~ U(−2.0, 0.6), av ~ U(0, 2); delayed-τ: age ~ U(0.1 Gyr,
0.98 t_univ(z)), tau = 10^U(−1, 1) Gyr; constant + burst: age ~ U(0.1 Gyr, 0.98 t_univ(z)),
f_burst ~ U(0.01, 0.5) (so both bagpipes masses are finite), log_u ~ U(−3.5, −1.5),
qpah ~ U(0.5, 4.5), umin ~ U(0.2, 20), gamma ~ U(0, 0.5); continuous burst ages:
log10(t_burst/yr) ~ U(6.0, log10(0.98 t_univ(z))). Tables (a) and (b) use the same draws,
so they differ only in sedinfer's metallicity interpolation.

## Results

|Δm| statistics over the draws (mag).

### (a) Matched: linear Z, bin-centred bursts

{stats_table({"delayed-τ": results["delayed", "linear", "centres"],
              "constant + burst": results["burst", "linear", "centres"]})}

Largest per-band median |Δm|: delayed-τ {worst(("delayed", "linear", "centres"))};
constant + burst {worst(("burst", "linear", "centres"))}.

### (b) sedinfer's default metallicity interpolation (log Z), same draws

{stats_table({"delayed-τ": results["delayed", "log", "centres"],
              "constant + burst": results["burst", "log", "centres"]})}

The change from (a) is the model difference between interpolating the SSPs in log Z and in
Z between grid metallicities, not an error of either code. It depends on where log_z falls
between the grid points (median |Δm|, both configurations together):

{split_table(dm_log, z_masks, "log_z interval")}

(BC03 grid points at log_z = {", ".join(f"{v:+.2f}" for v in log_grid)}.) The differences
are largest in the 1-dex gap between the 0.02 and 0.2 Z_sun grid points, most of all in W1
and W2, and above 2.5 Z_sun.

### (c) Continuous random burst ages (constant + burst, linear Z)

{stats_table({"continuous t_burst": dm_c,
              "bin-centred (as in a)": results["burst", "linear", "centres"]})}

Median |Δm| in subsets of the continuous-t_burst draws:

{split_table(dm_c, c_masks, "subset")}

### (d) No dust emission: the W1/W2 differences of issue 20

Issue 20 reported, for delayed-τ + Calzetti galaxies "without nebular or dust emission",
median |Δm| of 0.005–0.012 mag in ugriz but 0.022 in W1 and 0.068 in W2. The cause is a
configuration mismatch, not an error of either code: bagpipes adds Draine & Li dust emission
(with energy balance, at qpah = 2, umin = 1, gamma = 0.01 unless given) to every galaxy that has
a `"dust"` component, so a bagpipes Calzetti galaxy always has dust emission, and sedinfer's
`SPSModel(dust="calzetti")` (no `dust_emission`) does not. The DL07 spectrum carries the
3.3 µm PAH feature and the continuum of stochastically heated grains, which fall in W1 at
z ≲ 0.3 and in W2 at z ≲ 0.7. Below, the galaxies of (a) without dust emission in sedinfer,
against bagpipes with its DL07 term (as compared in the issue) and with that term replaced by
zero on the bagpipes model object (`bagpipes_mags(..., dust_emission=False)`). On these draws
the mismatch gives median |ΔW1| = {mis[5]:.3f} and |ΔW2| = {mis[6]:.3f}; the issue's draws (not
recorded) gave more, as galaxies at low z and high A_V do (table by redshift below):

{stats_table({"vs bagpipes with DL07 (mismatch), linear Z": results["stellar", "linear", "on"],
              "vs bagpipes with DL07 (mismatch), log Z": results["stellar", "log", "on"],
              "vs bagpipes without DL07 (matched), linear Z": results["stellar", "linear", "off"]})}

Without its DL07 term bagpipes agrees with sedinfer's stellar light in W1 and W2 as well as in
the matched configuration (a), and bagpipes' own DL07 contribution, m(no DL07) − m(DL07), has
these medians by redshift (mag):

{dl07_table}

The remaining W1/W2 difference, once the dust emission is matched, is the same as in ugriz or
smaller: neither code's IR resampling (bagpipes: Δλ/λ = 0.005 across the filters, 0.025
beyond; sedinfer: Δlnλ = 0.01 above 1 µm) nor the filter integration limits the agreement. To compare
with a bagpipes model that has a `"dust"` component, use `dust_emission=True` with bagpipes'
DL07 defaults (configuration 1).

### (e) Charlot & Fall: bagpipes' `CF00` against sedinfer's `dust="cf"`

bagpipes' `CF00` (Carnall et al. 2018, 2019b) attenuates all stars by A_V (5500 Å/λ)^n and
those younger than t_bc = 10 Myr by a further (η − 1) A_V (5500 Å/λ)^n, the same power law for
both components, at every wavelength; nebular lines and continuum see η A_V. sedinfer's
Charlot & Fall model with `ism_curve="power_law"` is T_ism = exp(−τ_ism (λ/5500 Å)^n_dust) on all
stars and T_bc = exp(−τ_bc (λ/5500 Å)^birth_cloud_index) on stars younger than 10 Myr, so the
configurations match exactly with

| bagpipes `CF00` | sedinfer `SPSModel(dust="cf", ism_curve="power_law", ...)` |
|---|---|
| `Av` (mag, all stars) | `tau_ism` = Av / 1.0857 |
| `eta` (birth clouds see η Av) | `tau_bc` = (η − 1) Av / 1.0857 |
| `n` (A ∝ λ^−n) | `n_dust` = −n and `birth_cloud_index` = −n |
| `t_bc` = 0.01 Gyr (default) | birth clouds on stars < 10 Myr (fixed) |

Both split the age bin that straddles 10 Myr in proportion to time (bagpipes' `stellar.spectrum`
and `sedinfer.sps.dust.birth_cloud_fraction` give the young fraction 0.47 for the bin
8.9–11.2 Myr). The galaxies are those of configuration (2) (constant + burst at bin centres,
nebular, DL07 with free qpah, umin, gamma, linear Z) with `CF00` dust, η ~ U(1, 3),
Av ~ U(0, 2), at n = {", ".join(f"{v:g}" for v in CF_N)}:

{stats_table({**{f"CF00 n = {v:g}": results["cf", v] for v in CF_N},
              **{f"control: sedinfer with tau_bc = 0, n = {v:g}": results["cf_no_bc", v] for v in CF_N}})}

The control rows drop sedinfer's birth clouds (τ_bc = 0) on the same galaxies: the matched rows
agree more than ten times better in ugriz and several times better in W1–W4, so the comparison
resolves the birth-cloud term. sedinfer's
default Charlot & Fall model keeps the birth-cloud power law (index −1, as `CF00` with n = 1)
but gives the diffuse ISM the Kriek & Conroy curve, which has no bagpipes counterpart (its
`Salim` curve adds the bump without the (λ/5500 Å)^δ factor and normalises it differently);
the power-law ISM option exists so that this comparison is exact.

## Why burst placement differs

bagpipes adds a burst's whole mass to the single age-grid point nearest to t_burst (nearest
in linear age, so in effect the 0.1-dex age bin that contains t_burst), whose spectrum is
the SSP averaged over that bin. Its spectrum is therefore a step function of t_burst, with
zero derivative almost everywhere. sedinfer splits the mass between the two neighbouring
bin centres, linearly in log age (`sedinfer.sps.sfh.burst_weights`), so the photometry is
continuous and differentiable in t_burst, which gradient-based inference needs. At the bin
centres the two conventions coincide, which is why the matched comparison draws bursts
there. Away from them the two codes disagree most for young bursts, bursts far from a
bin centre and large burst fractions (table (c) above).

sedinfer's convention is also the more accurate of the two. The table below compares a
single burst placed by each convention with the raw BC03 SSP (Z = Z_sun) interpolated
linearly in log age at the exact burst age. It uses rest-frame magnitudes at
{n_truth} random ages, log-uniform between 1 Myr and 12.6 Gyr, and both conventions use the
same bin-averaged templates; Δm = m − m_true (|Δm| statistics). The last rows give the error
at the bin centres, where the two conventions coincide and only the bin averaging is left.

{chr(10).join(truth_rows)}

In ugriz the median error of sedinfer's interpolation is {_range(ts, 50)} mag (90th
percentile {_range(ts, 90)}), and that of bagpipes' bin assignment is {_range(tb, 50)} mag
(90th percentile {_range(tb, 90)}). The disagreement in table (c) therefore comes mostly from
bagpipes' step-function placement. It is diluted by the light of the constant component.
Part of sedinfer's own error is the bin averaging that both codes share (last rows).

## Reproduce

```
{command}
```

Run on {datetime.date.today().isoformat()} (took {elapsed:.0f} s on CPU; {machine()}; sedinfer
{si.__version__}, bagpipes {bp_version}, torch {torch.__version__}, numpy {np.__version__}).
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="draws per configuration and case (default 300)")
    ap.add_argument("--n-truth", type=int, default=300, help="burst ages for the placement check")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--md", type=Path, default=MD_PATH)
    ap.add_argument("--fig", type=Path, default=FIG_PATH)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results, thetas = {}, {}
    cos = cosmology()
    filters = si.Filters(list(BANDS))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_filter_files(filters, Path(tmp))
        cases = [("delayed", "centres"), ("burst", "centres"), ("burst", "continuous")]
        for k, (config, burst_ages) in enumerate(cases):
            rng = np.random.default_rng([args.seed, k])
            theta, comps = draw(config, args.n, rng, burst_ages, cos)
            thetas[config, burst_ages] = theta
            theirs = bagpipes_mags(comps, paths)
            for interp in ("linear", "log") if burst_ages == "centres" else ("linear",):
                dm = sedinfer_mags(sedinfer_model(config, interp, cos), theta, filters) - theirs
                results[config, interp, burst_ages] = dm
                print(f"{config:8s} {interp:6s} {burst_ages:10s} median |dm|: {band_medians(dm)}")
            if config == "delayed":
                # (d) the same galaxies without dust emission: sedinfer's stellar light against
                # bagpipes with its DL07 term (the default it always adds) and without it
                stellar, _ = draw("stellar", args.n, np.random.default_rng([args.seed, k]), burst_ages, cos)
                off = bagpipes_mags(comps, paths, dust_emission=False)
                results["dl07"] = off - theirs
                for interp in ("linear", "log"):
                    ours = sedinfer_mags(sedinfer_model("stellar", interp, cos), stellar, filters)
                    results["stellar", interp, "off"] = ours - off
                    results["stellar", interp, "on"] = ours - theirs
                dm = results["stellar", "linear", "off"]
                print(f"stellar  linear DL07 off   median |dm|: {band_medians(dm)}")
        for j, n_cf in enumerate(CF_N):                                    # (e) Charlot & Fall
            rng = np.random.default_rng([args.seed, 10 + j])
            theta, comps = draw("cf", args.n, rng, "centres", cos, n_cf)
            thetas["cf", n_cf] = theta
            model = sedinfer_model("cf", "linear", cos, n_cf)
            dm = sedinfer_mags(model, theta, filters) - bagpipes_mags(comps, paths)
            results["cf", n_cf] = dm
            print(f"cf n={n_cf:<4} linear centres    median |dm|: {band_medians(dm)}")
            no_bc = theta.copy()
            no_bc[:, model.param_names.index("tau_bc")] = 0.0
            results["cf_no_bc", n_cf] = sedinfer_mags(model, no_bc, filters) - bagpipes_mags(comps, paths)
    truth = burst_placement_errors(args.n_truth, args.seed)
    for name in ("sedinfer", "bagpipes"):
        print(f"burst placement vs raw SSP, {name:8s} median |dm|: {band_medians(truth[name])}")
    elapsed = time.perf_counter() - t0
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python scripts/crosscheck_bagpipes.py", *given])
    make_figure(results, args.fig)
    write_markdown(args.md, results, thetas, truth, args.n, args.seed, command, elapsed)
    print(f"wrote {args.md} and {args.fig} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
