"""Support test of a shipped SED posterior on bright mocks (issue 20 §3).

Uses the density support model saved with ``--model`` (or builds one from fresh simulations of
its own config, :func:`sedinfer.posterior.sed.build_support`, when it has none or with
``--rebuild-support``), simulates mocks of the posterior's own forward model with ``sedinfer
simulate``'s path (SDSS depth noise as drawn), keeps those with observed r < ``--r-max``, and
reports the fraction flagged (``ood``, and by the density test alone) for: the unchanged mocks; reversed SEDs
(flux and error columns u<->z and g<->i swapped); errors 3x smaller (raised to the floor by the
default rule); each band 2 mag fainter and 2 mag brighter (errors unchanged). Writes the
numbers as JSON.

Beside the support test, every case gets a reference detector that needs no density model: the
smallest χ² of the galaxy against ``--n-templates`` noise-free SEDs of the same training
distribution (free positive amplitude, i.e. free mass; spectroscopic models: templates within
``--template-dz`` of the galaxy's redshift), flagged above the 99 % quantile of that χ² on the
unchanged mocks. A shifted galaxy that some model SED fits as well as an unchanged one fits its
own is inside the model's colours; no test of the photometry alone can flag it without flagging
ordinary galaxies too, so this rate bounds what to expect of the support test.

    OMP_NUM_THREADS=1 python scripts/posterior_support_check.py --model sdss-photz --seed 2020601 \
        --out support_check_photz.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch


def nearest_template_chi2(flux: np.ndarray, err: np.ndarray, templates: np.ndarray,
                          z: np.ndarray | None = None, z_templates: np.ndarray | None = None,
                          dz: float = 0.01, chunk: int = 256) -> np.ndarray:
    """min over templates of χ² = Σ_b ((f_b − a m_b) / σ_b)² with the best amplitude a ≥ 0, (N,).

    ``flux``, ``err`` (N, B) and ``templates`` (M, B) in one flux unit; with ``z`` (N,) and
    ``z_templates`` (M,) only templates with |z_t − z| ≤ ``dz`` count (inf if there is none)."""
    f, w = torch.as_tensor(flux, dtype=torch.float64), torch.as_tensor(err, dtype=torch.float64) ** -2
    m = torch.as_tensor(templates, dtype=torch.float64)
    out = np.full(len(f), np.inf)
    order = np.arange(len(f)) if z is None else np.argsort(z)
    if z is not None:                                   # templates sorted by redshift, windows per chunk
        t_order = np.argsort(z_templates)
        m, z_sorted = m[t_order], np.asarray(z_templates)[t_order]
    for lo in range(0, len(f), chunk):
        rows = order[lo:lo + chunk]
        fi, wi, mi = f[rows], w[rows], m
        if z is not None:
            a_, b_ = np.searchsorted(z_sorted, [z[rows].min() - dz, z[rows].max() + dz], side="left")
            if b_ <= a_:
                continue
            mi, zi = m[a_:b_], z_sorted[a_:b_]
        cross = (fi * wi) @ mi.T                            # Σ w f m, (n, M)
        norm = wi @ (mi ** 2).T                             # Σ w m², (n, M)
        a = (cross / norm).clamp(min=0.0)
        chi2 = (wi * fi ** 2).sum(1, keepdim=True) - 2 * a * cross + a ** 2 * norm
        if z is not None:
            far = torch.as_tensor(np.abs(z[rows][:, None] - zi[None]) > dz)
            chi2 = chi2.masked_fill(far, math.inf)
        out[rows] = chi2.min(1).values.numpy()
    return out


SIGNIFICANCE_EDGES = (0.0, 3.0, 5.0, 10.0, math.inf)


def by_significance(shift_sigma: np.ndarray, flags: np.ndarray) -> list[dict]:
    """Flagged fraction in bins of the shift's significance |Δf| / σ in the shifted band.

    A band moved by 2 mag at S/N 3 moves by < 3σ: the measurement itself allows it, so no test
    of the photometry can see it; the detection rate that matters is that of significant shifts."""
    rows = []
    for lo, hi in zip(SIGNIFICANCE_EDGES[:-1], SIGNIFICANCE_EDGES[1:], strict=True):
        sel = (shift_sigma >= lo) & (shift_sigma < hi)
        rows.append({"sigma_low": lo, "sigma_high": None if math.isinf(hi) else hi, "n": int(sel.sum()),
                     "ood": round(float(flags[sel].mean()), 4) if sel.any() else None})
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="sdss-specz")
    p.add_argument("--n-support", type=int, default=40_000)
    p.add_argument("--n-mocks", type=int, default=60_000)
    p.add_argument("--r-max", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--rebuild-support", action="store_true",
                   help="build a new support model even if the posterior has one")
    p.add_argument("--n-templates", type=int, default=100_000,
                   help="noise-free SEDs of the reference chi2 detector (default 100,000)")
    p.add_argument("--n-reference-galaxies", type=int, default=2000,
                   help="mocks per case that get the chi2 reference (default 2000)")
    p.add_argument("--template-dz", type=float, default=0.01,
                   help="spectroscopic models: template redshifts within this of the galaxy's")
    p.add_argument("--out", default="support_check.json")
    args = p.parse_args()
    torch.set_num_threads(1)

    import dataclasses

    from sedinfer.posterior.galaxies import SEDPosterior
    from sedinfer.posterior.sed import attach_support, build_support, training_set
    from sedinfer.posterior.sed_config import SEDConfig

    sed = SEDPosterior.load(args.model)
    t0 = time.perf_counter()
    if sed.support is None or args.rebuild_support:
        attach_support(sed, build_support(sed, n=args.n_support))
    support = sed.support
    build_s = time.perf_counter() - t0
    # mocks of the posterior's own training distribution (prior, forward model, noise), all bands observed
    config = dataclasses.replace(SEDConfig.from_dict(sed.meta["config"]), band_dropout=0.0)
    _, _, info = training_set(config, n=args.n_mocks, seed=args.seed, progress=False)
    bands = list(sed.bands)
    flux = info["noisy"].double().numpy() * 1e9                # maggies -> nanomaggies
    err = info["sigma"].double().numpy() * 1e9
    z = info["theta_full"][:, sed.model.param_names.index("redshift")].double().numpy()
    r = flux[:, bands.index("sdss_r0")]
    bright = r > 10 ** (-0.4 * (args.r_max - 22.5))          # nanomaggies: r < r_max
    flux, err, z = flux[bright], err[bright], z[bright]

    spec = sed.redshift_mode == "spec"
    _, _, tinfo = training_set(config, n=args.n_templates, seed=args.seed + 1, progress=False)
    templates = tinfo["flux"].double().numpy() * 1e9
    z_t = tinfo["theta_full"][:, sed.model.param_names.index("redshift")].double().numpy()
    if spec:                                          # templates near each galaxy's redshift
        chi2_of = lambda f, e: nearest_template_chi2(f, e, templates, z[:len(f)], z_t, args.template_dz)  # noqa: E731
    else:
        chi2_of = lambda f, e: nearest_template_chi2(f, e, templates)  # noqa: E731
    floored = lambda f, e: np.maximum(e, sed.error_floor(f * 1e-9) * 1e9)   # noqa: E731 - as the flow sees them
    chi2_cut = float(np.quantile(chi2_of(flux, floored(flux, err)), 0.99))       # on all unchanged mocks

    def flagged(f: np.ndarray, e: np.ndarray, shift_sigma: np.ndarray | None = None) -> dict:
        res = sed.infer(f, e, z if spec else None, n_samples=2, seed=0, derived=False)
        dens = np.array(["density" in s for s in res.ood_features])
        e_used = floored(f, e)
        k = args.n_reference_galaxies                  # the chi2 reference on the first k mocks only (cost)
        chi2 = chi2_of(f[:k], e_used[:k])
        out = {"ood": round(float(res.ood[res.ok].mean()), 4),
               "density": round(float(dens[res.ok].mean()), 4),
               "chi2_reference": round(float((chi2[res.ok[:k]] > chi2_cut).mean()), 4),
               "n": int(res.ok.sum()), "n_chi2_reference": int(res.ok[:k].sum())}
        if shift_sigma is not None:
            out["by_shift_significance"] = by_significance(shift_sigma[res.ok], res.ood[res.ok])
        return out

    cases = {"unchanged": flagged(flux, err)}
    order = [bands.index(b) for b in ("sdss_z0", "sdss_i0", "sdss_r0", "sdss_g0", "sdss_u0")]
    cases["reversed (u<->z, g<->i)"] = flagged(flux[:, order], err[:, order])
    cases["errors / 3 (raised to the floor)"] = flagged(flux, err / 3)
    for j, b in enumerate(bands):
        for dm in (+2.0, -2.0):
            f = flux.copy()
            f[:, j] *= 10 ** (-0.4 * dm)
            shift = np.abs(f[:, j] - flux[:, j]) / floored(flux, err)[:, j]
            cases[f"{b} {dm:+.0f} mag"] = flagged(f, err, shift)
    report = {"model": args.model, "n_support_simulations": args.n_support, "support_info": support.info,
              "support_build_seconds": round(build_s, 1), "n_mocks": args.n_mocks, "r_max": args.r_max,
              "n_bright": int(bright.sum()), "mock_seed": args.seed, "mocks": "training distribution",
              "n_templates": args.n_templates, "template_dz": args.template_dz if spec else None,
              "chi2_reference_cut": round(chi2_cut, 3), "n_reference_galaxies": args.n_reference_galaxies,
              "cases": cases}
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
