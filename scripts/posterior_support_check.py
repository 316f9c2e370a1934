"""Support test of a shipped SED posterior on bright mocks (issue 20 §3).

Uses the density support model saved with ``--model`` (or builds one from fresh simulations of
its own config, :func:`sedinfer.posterior.sed.build_support`, when it has none or with
``--rebuild-support``), simulates mocks of the posterior's own forward model with ``sedinfer
simulate``'s path (SDSS depth noise as drawn), keeps those with observed r < ``--r-max``, and
reports the fraction flagged (``ood``, and by the density test alone) for: the unchanged mocks; reversed SEDs
(flux and error columns u<->z and g<->i swapped); errors 3x smaller (raised to the floor by the
default rule); each band 2 mag fainter and 2 mag brighter (errors unchanged). ``--redraw``
makes the mocks with the redraw of negative fluxes the shipped models were trained with.
Writes the numbers as JSON.

    OMP_NUM_THREADS=1 python scripts/posterior_support_check.py --out support_check.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="sdss-specz")
    p.add_argument("--n-support", type=int, default=40_000)
    p.add_argument("--n-mocks", type=int, default=60_000)
    p.add_argument("--r-max", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--redraw", action="store_true",
                   help="mocks with the redraw of negative fluxes (how the shipped models were trained)")
    p.add_argument("--rebuild-support", action="store_true",
                   help="build a new support model even if the posterior has one")
    p.add_argument("--out", default="support_check.json")
    args = p.parse_args()
    torch.set_num_threads(1)

    from sedinfer.posterior.galaxies import SEDPosterior
    from sedinfer.posterior.sed import attach_support, build_support
    from sedinfer.simulate import simulate_catalog

    sed = SEDPosterior.load(args.model)
    t0 = time.perf_counter()
    if sed.support is None or args.rebuild_support:
        attach_support(sed, build_support(sed, n=args.n_support))
    support = sed.support
    build_s = time.perf_counter() - t0
    # mocks of the posterior's own forward model (e.g. nebular emission), SDSS depth noise
    table = simulate_catalog(args.n_mocks, model=sed.model, seed=args.seed, progress=False,
                             redraw_negative=args.redraw)
    bands = list(sed.bands)
    flux = np.stack([np.asarray(table[f"flux_{b}"]) for b in bands], 1)
    err = np.stack([np.asarray(table[f"flux_err_{b}"]) for b in bands], 1)
    z = np.asarray(table["redshift"])
    r = flux[:, bands.index("sdss_r0")]
    bright = r > 10 ** (-0.4 * (args.r_max - 22.5))          # nanomaggies: r < r_max
    flux, err, z = flux[bright], err[bright], z[bright]

    def flagged(f: np.ndarray, e: np.ndarray) -> dict:
        res = sed.infer(f, e, z, n_samples=2, seed=0, derived=False)
        dens = np.array(["density" in s for s in res.ood_features])
        return {"ood": round(float(res.ood[res.ok].mean()), 4),
                "density": round(float(dens[res.ok].mean()), 4), "n": int(res.ok.sum())}

    cases = {"unchanged": flagged(flux, err)}
    order = [bands.index(b) for b in ("sdss_z0", "sdss_i0", "sdss_r0", "sdss_g0", "sdss_u0")]
    cases["reversed (u<->z, g<->i)"] = flagged(flux[:, order], err[:, order])
    cases["errors / 3 (raised to the floor)"] = flagged(flux, err / 3)
    for j, b in enumerate(bands):
        for dm in (+2.0, -2.0):
            f = flux.copy()
            f[:, j] *= 10 ** (-0.4 * dm)
            cases[f"{b} {dm:+.0f} mag"] = flagged(f, err)
    report = {"model": args.model, "n_support_simulations": args.n_support, "support_info": support.info,
              "support_build_seconds": round(build_s, 1), "n_mocks": args.n_mocks, "r_max": args.r_max,
              "n_bright": int(bright.sum()), "mock_seed": args.seed, "mock_redraw_negative": args.redraw,
              "cases": cases}
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
