"""Derive sedinfer's four NMF star-formation-history bases (PopSED eq. 1, Li et al. 2024, §2.1).

PopSED and PROVABGS (Hahn et al. 2023b) use four non-negative SFH bases obtained by NMF of
Illustris SFHs. Those bases are not available to this project, so this script builds its own:

1. draw a seeded library of physically plausible SFHs on normalised lookback time
   x = t_lookback / t_age in [0, 1] (x = 0 now, x = 1 the Big Bang at the galaxy's redshift),
   from five families (delayed-tau, exponentially declining, rising, log-normal, double power
   law), a fraction of them quenched, all with smooth stochastic fluctuations;
2. normalise every SFH to unit integral over x and factorise the (n_sfh, n_x) matrix with
   sklearn's NMF into four non-negative bases;
3. normalise each basis to unit integral, order them by mass-weighted mean lookback time
   (s1 = most recent, s4 = oldest), measure how well non-negative simplex combinations of the
   bases reproduce the library's cumulative mass curves, and write
   ``src/sedinfer/data/nmf_sfh_bases.csv`` plus ``docs/figures/nmf_sfh_bases.png``.

Run from the repository root: ``python scripts/make_nmf_bases.py`` (about 20 s on 2 cores).
See docs/nmf_bases.md.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import matplotlib
import numpy as np
import sklearn
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import nnls
from sklearn.decomposition import NMF, PCA

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CSV_PATH = ROOT / "src" / "sedinfer" / "data" / "nmf_sfh_bases.csv"
FIG_PATH = ROOT / "docs" / "figures" / "nmf_sfh_bases.png"

SEED = 20240531
N_SFH = 30_000
N_X = 501                     # uniform grid, dx = 0.002 (27.6 Myr for t_age = 13.8 Gyr)
N_COMPONENTS = 4
NMF_SETTINGS = dict(n_components=N_COMPONENTS, init="nndsvda", solver="cd", beta_loss="frobenius",
                    max_iter=5000, tol=1e-8, random_state=0)
F_QUENCH = 0.3                # fraction of each family that is quenched
TOL_CUM = 0.05                # max |Delta F| counted as "reproduced"
# Parameter ranges, in units of t_age (multiply by 13.8 Gyr for a z = 0 galaxy). u = 1 - x is
# cosmic time since the Big Bang in units of t_age. ("U", lo, hi) is uniform, ("logU", lo, hi)
# log-uniform. Formulae: delayed/rising SFR ~ s e^(-s/tau), exponential e^(-s/tau) with
# s = u - u_start > 0; lognormal SFR ~ exp(-(ln u - T0)^2 / 2 tau^2) / u; dpl (double power law)
# SFR ~ [(u/tau)^a + (u/tau)^-b]^-1; quench: SFR *= exp(-(u - u_q)/tau_q) for u > u_q;
# fluctuations: log10 SFR += random walk smoothed by a Gaussian of width ell (in x), rescaled
# to an rms of sigma_dex.
PARAMS = {
    "delayed": {"u_start": ("U", 0.0, 0.7), "tau": ("logU", 0.02, 1.0)},
    "exponential": {"u_start": ("U", 0.0, 0.5), "tau": ("logU", 0.02, 1.0)},
    "rising": {"u_start": ("U", 0.0, 0.8), "tau": ("logU", 1.0, 10.0)},
    "lognormal": {"T0": ("U", np.log(0.05), np.log(1.5)), "tau": ("U", 0.2, 1.2)},
    "dpl": {"tau": ("U", 0.05, 1.0), "a": ("logU", 0.3, 30.0), "b": ("logU", 0.3, 30.0)},
    "quench": {"u_q": ("U", 0.3, 0.98), "tau_q": ("logU", 0.005, 0.1)},
    "fluctuations": {"sigma_dex": ("U", 0.0, 0.3), "ell": ("logU", 0.01, 0.1)},
}
FAMILIES = ("delayed", "exponential", "rising", "lognormal", "dpl")


def describe(name: str) -> str:
    """One line of parameter ranges for the CSV header / docs."""
    def fmt(v):
        return f"{v:.3g}" if abs(v) >= 0.01 or v == 0 else f"{v:.1e}"
    return "; ".join(f"{k} ~ {d}({fmt(lo)}, {fmt(hi)})" for k, (d, lo, hi) in PARAMS[name].items())


def draw(rng: np.random.Generator, name: str, n: int) -> dict[str, np.ndarray]:
    """Draw n values of every parameter of PARAMS[name], each shaped (n, 1)."""
    out = {}
    for key, (dist, lo, hi) in PARAMS[name].items():
        v = rng.uniform(lo, hi, n) if dist == "U" else np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        out[key] = v[:, None]
    return out


def trapz(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trapezoid integral along the last axis."""
    return (0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(x)).sum(-1)


def cumulative(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid integral from x[0] along the last axis, same shape as y."""
    seg = 0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(x)
    return np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(seg, -1)], -1)


def draw_family(kind: str, n: int, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SFR(u) for n draws of one family, (n, n_x), peak 1; zero before the start and at u = 0."""
    p = draw(rng, kind, n)
    uu = np.clip(u, 1e-8, None)[None, :]
    if kind in ("delayed", "rising", "exponential"):
        s = np.clip(uu - p["u_start"], 0, None)
        sfr = np.exp(-s / p["tau"]) * (s > 0) if kind == "exponential" else s * np.exp(-s / p["tau"])
    elif kind == "lognormal":
        sfr = np.exp(-((np.log(uu) - p["T0"]) ** 2) / (2 * p["tau"] ** 2) - np.log(uu))
    elif kind == "dpl":
        lr = np.log(uu / p["tau"])
        sfr = np.exp(-np.logaddexp(p["a"] * lr, -p["b"] * lr))
    else:
        raise ValueError(kind)
    sfr[:, u <= 0] = 0.0
    return sfr / sfr.max(-1, keepdims=True)


def quench(sfr: np.ndarray, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = draw(rng, "quench", len(sfr))
    return sfr * np.exp(-np.clip(u[None, :] - p["u_q"], 0, None) / p["tau_q"])


def fluctuate(sfr: np.ndarray, rng: np.random.Generator, dx: float) -> np.ndarray:
    """Multiply by 10**(smoothed random walk) with rms sigma_dex; zeros stay zero."""
    n, m = sfr.shape
    p = draw(rng, "fluctuations", n)
    walk = np.cumsum(rng.standard_normal((n, m)), -1)
    out = np.empty_like(sfr)
    for i in range(n):
        w = gaussian_filter1d(walk[i], p["ell"][i, 0] / dx, mode="nearest")
        w -= w.mean()
        out[i] = sfr[i] * 10 ** (p["sigma_dex"][i, 0] * w / max(w.std(), 1e-12))
    return out


def make_library(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N_SFH, n_x) SFH densities in x with unit integral, and the family index of each row."""
    u = 1.0 - x
    per = np.full(len(FAMILIES), N_SFH // len(FAMILIES))
    per[: N_SFH - per.sum()] += 1
    rows, labels = [], []
    for k, (kind, n) in enumerate(zip(FAMILIES, per, strict=True)):
        sfr = draw_family(kind, n, u, rng)
        q = rng.random(n) < F_QUENCH
        sfr[q] = quench(sfr[q], u, rng)
        rows.append(fluctuate(sfr, rng, x[1] - x[0]))
        labels.append(np.full(n, k) + 10 * q)             # +10 marks the quenched ones
    lib = np.concatenate(rows)
    return lib / trapz(lib, x)[:, None], np.concatenate(labels)


def fit_bases(lib: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, NMF]:
    """NMF of the library; bases (4, n_x) with unit integral, ordered by mean lookback time."""
    model = NMF(**NMF_SETTINGS)
    model.fit(lib)
    bases = model.components_ / trapz(model.components_, x)[:, None]
    order = np.argsort(trapz(bases * x, x))
    return bases[order], model


def simplex_fit(lib: np.ndarray, bases: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best non-negative fit of each cumulative curve by the basis cumulatives (nnls), then
    normalised onto the simplex. Returns (beta (N, 4), max |Delta F| (N,))."""
    cum_lib, cum_b = cumulative(lib, x), cumulative(bases, x)
    beta = np.array([nnls(cum_b.T, c)[0] for c in cum_lib])
    beta /= beta.sum(-1, keepdims=True)
    return beta, np.abs(beta @ cum_b - cum_lib).max(-1)


def measure(lib: np.ndarray, bases: np.ndarray, beta: np.ndarray, dmax: np.ndarray,
            x: np.ndarray) -> dict:
    """Reconstruction summary; 'pca_*' is the same metric for the L2-best unconstrained affine
    3-dimensional model of the cumulative curves (PCA, mean + 3 components), for reference."""
    cum = cumulative(lib, x)
    pca = PCA(N_COMPONENTS - 1).fit(cum)
    dpca = np.abs(pca.inverse_transform(pca.transform(cum)) - cum).max(-1)
    dmean = np.abs(beta @ trapz(bases * x, x) - trapz(lib * x, x))
    return dict(frac_ok=np.mean(dmax < TOL_CUM), median=np.median(dmax), p95=np.percentile(dmax, 95),
                frac_01=np.mean(dmax < 0.1), dmean_median=np.median(dmean),
                dmean_p95=np.percentile(dmean, 95), pca_frac_ok=np.mean(dpca < TOL_CUM),
                pca_median=np.median(dpca))


def write_csv(x: np.ndarray, bases: np.ndarray, stats: dict) -> None:
    mean_x = trapz(bases * x, x)
    head = [
        "sedinfer NMF star-formation-history bases (PopSED eq. 1 / PROVABGS-style, own derivation)",
        f"generated by scripts/make_nmf_bases.py on {datetime.date.today().isoformat()} "
        f"(numpy {np.__version__}, scikit-learn {sklearn.__version__})",
        f"seed {SEED}; library of {N_SFH} SFHs, {len(FAMILIES)} families in equal numbers:",
        "  delayed/rising SFR ~ s exp(-s/tau), exponential exp(-s/tau), s = u - u_start > 0;",
        "  lognormal SFR ~ exp(-(ln u - T0)^2 / 2 tau^2) / u; dpl SFR ~ 1 / [(u/tau)^a + (u/tau)^-b];",
        f"  quench ({F_QUENCH:.0%} of each family): SFR *= exp(-(u - u_q) / tau_q) for u > u_q;",
        "  fluctuations (all): log10 SFR += Gaussian-smoothed (width ell) random walk, rms sigma_dex;",
        "  u = 1 - x is cosmic time since the Big Bang; all times in units of t_age. Ranges:",
        *[f"  {k}: {describe(k)}" for k in PARAMS],
        "library SFHs normalised to unit trapezoid integral over x on this grid before NMF",
        "NMF: sklearn.decomposition.NMF(" + ", ".join(f"{k}={v!r}" for k, v in NMF_SETTINGS.items())
        + f"); {stats['n_iter']} iterations, relative Frobenius error {stats['rel_err']:.4f}",
        "bases normalised to unit integral over x in [0, 1], ordered by mass-weighted mean x: "
        + ", ".join(f"s{i + 1} {m:.3f}" for i, m in enumerate(mean_x)),
        *summary(stats),
        "columns: x = t_lookback / t_age (uniform grid, 0 = now, 1 = Big Bang at the galaxy's z),",
        "  s1..s4 = SFR density per unit x (each integrates to 1 over [0, 1]);",
        "  smooth part of PopSED eq. 1 for a galaxy of age t_age (Gyr) and formed mass M:",
        "  SFR(t_lookback) = (1 - f_burst) M / t_age * sum_i beta_i s_i(t_lookback / t_age)",
        "x,s1,s2,s3,s4",
    ]
    CSV_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(CSV_PATH, np.column_stack([x, bases.T]), delimiter=",", fmt="%.10g",
               header="\n".join(head), comments="# ")


def summary(st: dict) -> list[str]:
    return [
        "reconstruction of the library (nnls fit of the cumulative mass curve F(x), normalised to",
        f"  the simplex): {st['frac_ok']:.4f} within max|dF| < {TOL_CUM} ({st['frac_01']:.4f} within 0.1);",
        f"  max|dF| median {st['median']:.4f}, 95th percentile {st['p95']:.4f};",
        f"  |error of mass-weighted mean x| median {st['dmean_median']:.4f}, "
        f"95th percentile {st['dmean_p95']:.4f};",
        f"  reference, unconstrained 3-dim PCA of F(x): {st['pca_frac_ok']:.4f} within {TOL_CUM}, "
        f"median {st['pca_median']:.4f}",
    ]


def plot(x: np.ndarray, bases: np.ndarray, lib: np.ndarray, labels: np.ndarray,
         beta: np.ndarray, dmax: np.ndarray, rng: np.random.Generator) -> None:
    t_age = 13.8
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.2), constrained_layout=True)
    xlabel = r"$x = t_{\rm lookback} / t_{\rm age}$  (0 = now, 1 = Big Bang)"
    for i, b in enumerate(bases):
        axes[0].plot(x, b, color=f"C{i}", lw=2,
                     label=rf"$s_{i + 1}$, $\langle x\rangle$ = {trapz(b * x, x):.2f}")
    axes[0].set(xlabel=xlabel, ylabel=r"$s_i(x)$  (SFR per unit $x$, $\int_0^1 s_i\,dx = 1$)",
                xlim=(0, 1), ylim=(0, None), title="the four NMF SFH bases")
    axes[0].legend()
    top = axes[0].secondary_xaxis("top", functions=(lambda v: v * t_age, lambda v: v / t_age))
    top.set_xlabel(r"lookback time [Gyr] for a $z = 0$ galaxy ($t_{\rm age}$ = 13.8 Gyr)")
    picks = [(0, "delayed-τ"), (1, "exp. declining"), (2, "rising"), (3, "log-normal"),
             (4, "double power law"), (13, "log-normal, quenched")]
    cum_b = cumulative(bases, x)
    for j, (lab, name) in enumerate(picks):
        i = rng.choice(np.flatnonzero(labels == lab))
        rec, peak = beta[i] @ bases, lib[i].max()
        axes[1].plot(x, lib[i] / peak + 1.2 * j, color=f"C{j + 4}", lw=1.3)
        axes[1].plot(x, rec / peak + 1.2 * j, color="k", ls="--", lw=1)
        axes[2].plot(x, cumulative(lib[i], x), color=f"C{j + 4}", lw=1.3,
                     label=f"{name}: max|ΔF| = {dmax[i]:.3f}")
        axes[2].plot(x, beta[i] @ cum_b, color="k", ls="--", lw=1)
    axes[2].plot([], [], "k--", lw=1, label="best simplex fit\nby the 4 bases")
    for ax in axes[1:]:
        ax.set(xlabel=xlabel, xlim=(0, 1))
    axes[1].set(ylabel="SFR / peak SFR  (offset by 1.2 each)",
                title="random library SFHs (colours) and their fits (dashed)")
    axes[2].set(ylabel=r"$F(x)$ = mass fraction formed more recently than $x$", ylim=(0, 1.02),
                title="same, cumulative mass (the fitted quantity)")
    axes[2].legend(fontsize=8.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    FIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG_PATH, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-plot", action="store_true", help="skip the figure")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    x = np.linspace(0.0, 1.0, N_X)
    lib, labels = make_library(x, rng)
    bases, model = fit_bases(lib, x)
    beta, dmax = simplex_fit(lib, bases, x)
    stats = dict(n_iter=model.n_iter_, rel_err=model.reconstruction_err_ / np.linalg.norm(lib),
                 **measure(lib, bases, beta, dmax, x))
    print(f"NMF: {stats['n_iter']} iterations, relative Frobenius error {stats['rel_err']:.4f}")
    print("mean lookback x of s1..s4:", np.round(trapz(bases * x, x), 4))
    print("\n".join(summary(stats)))
    for k, name in enumerate(FAMILIES):
        for q in (0, 1):
            m = labels == k + 10 * q
            print(f"  {name:12s} {'quenched' if q else 'unquenched':10s} n={m.sum():5d} "
                  f"frac<{TOL_CUM}: {np.mean(dmax[m] < TOL_CUM):.3f}  median {np.median(dmax[m]):.4f}")
    write_csv(x, bases, stats)
    print(f"wrote {CSV_PATH.relative_to(ROOT)}")
    if not args.no_plot:
        plot(x, bases, lib, labels, beta, dmax, rng)
        print(f"wrote {FIG_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
