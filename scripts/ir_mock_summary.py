"""Summary numbers of the SDSS + WISE mocks (docs/infrared.md): selection, S/N, WISE, couplings.

Run: OMP_NUM_THREADS=1 python scripts/ir_mock_summary.py [N] [SEED]   (default 500 galaxies, seed 1)
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from sedinfer import SPSModel
from sedinfer.spectra import simulate_mocks


def main(n: int = 500, seed: int = 1) -> None:
    torch.set_num_threads(1)
    model = SPSModel(nebular=True, dust_emission=True)
    simulate_mocks(5, model, seed=0)                 # builds and caches the model's plans
    i = model.param_names.index
    for kind in ("coupled", "separable"):
        t = time.time()
        cat = simulate_mocks(n, model, kind, seed=seed)
        dt = time.time() - t
        s, w, r = cat.spectra, cat.wise, cat.r_ab
        pix_snr = s.flux_norm * np.sqrt(s.ivar_norm)
        snr = np.array([np.median(pix_snr[k][~s.mask[k]]) for k in range(len(s))])
        w23 = w.true_vega[:, 1] - w.true_vega[:, 2]
        print(f"{kind}: {dt:.1f} s for {n} ({dt / n * 1e3:.1f} ms/galaxy)")
        print("  z 10/50/90 %:", np.percentile(cat.theta[:, 0], [10, 50, 90]).round(3),
              " r:", np.percentile(r, [10, 50, 90]).round(2))
        print("  median S/N per pixel 10/50/90 %:", np.percentile(snr, [10, 50, 90]).round(1),
              " median at 17.3 < r < 17.77:", np.median(snr[r > 17.3]).round(1))
        print("  WISE detected:", w.detected.mean(0).round(3),
              " median wNmpro:", np.nanmedian(w.mpro_vega, 0).round(2),
              " median wNsigmpro:", np.nanmedian(w.sigmpro_vega, 0).round(3))
        w12 = w.true_vega[:, 0] - w.true_vega[:, 1]
        print("  true W1-W2 10/50/90 %:", np.percentile(w12, [10, 50, 90]).round(2),
              " W2-W3:", np.percentile(w23, [10, 50, 90]).round(2))
        rho = {"log_z-qpah": spearmanr(cat.theta[:, i("log_z")], cat.theta[:, i("qpah")]).statistic,
               "log_ssfr-umin": spearmanr(cat.derived["log_ssfr"], cat.theta[:, i("umin")]).statistic,
               "log_ssfr-W2W3": spearmanr(cat.derived["log_ssfr"], w23).statistic}
        print("  Spearman:", {k: round(float(v), 3) for k, v in rho.items()})


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
