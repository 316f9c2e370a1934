"""How good is one attenuation factor K per band? Pivot vs SED-weighted vs exact, for SPS spectra.

    python scripts/dustmap_band_approximation.py

Prints, for HSC grizy and three SEDs, K_b from the rest-frame pivot wavelength, from the
SED-weighted band average (sedinfer.images.curve.band_curve_terms_weighted) and the exact band
attenuation -2.5 log10[∫ f 10^(-0.4 A0 k) R λ dλ / ∫ f R λ dλ] / A0 at A0 = 0.01, 1 and 2 mag;
and the largest effect of the 2175 Å bump on K for 0 <= z <= 0.5, -0.8 <= δ <= 0.4.
"""

from __future__ import annotations

import numpy as np
import torch

from sedinfer.filters import Filters
from sedinfer.images.curve import (
    LAMBDA0_AA,
    attenuation_ratio,
    band_curve_terms_weighted,
    calzetti_k_normalised,
    curve_terms,
)
from sedinfer.sps.model import SPSModel

SEDS = ((0.05, 10.0, 1.0, "old"), (0.05, 0.03, 10.0, "young"), (0.3, 7.0, 8.0, "disk z=0.3"))


def main() -> None:
    f = Filters("hsc")
    model = SPSModel(sfh="delayed", dust="none", nebular=True, z_max=0.6)
    lam = np.geomspace(3500, 11500, 6000)
    trans = f.transmission_on(lam)
    t0 = torch.as_tensor(curve_terms(np.array(LAMBDA0_AA)))
    for z, age, tau, label in SEDS:
        theta = torch.tensor([[z, 10.0, 0.0, age, tau, -2.5]])
        _, flam = model.spectrum(theta, wave_obs_aa=torch.tensor(lam))
        flam = flam.double().numpy()
        weights = flam[0] * trans * lam * np.gradient(lam)
        for delta in (-0.8, 0.0, 0.4):
            pivot = calzetti_k_normalised(f.pivot_wave_aa / (1 + z), delta)
            terms = torch.as_tensor(band_curve_terms_weighted(lam, flam, trans, np.array([z])))
            weighted = attenuation_ratio(terms, t0, torch.tensor([delta], dtype=torch.float64))[0].numpy()
            k = calzetti_k_normalised(lam / (1 + z), delta)
            exact = [-2.5 * np.log10((weights * 10 ** (-0.4 * a0 * k)).sum(1) / weights.sum(1)) / a0
                     for a0 in (0.01, 1.0, 2.0)]
            print(f"{label:10s} δ={delta:+.1f} pivot {np.round(pivot, 3)} weighted {np.round(weighted, 3)}"
                  f" exact A0=0.01 {np.round(exact[0], 3)} A0=1 {np.round(exact[1], 3)}"
                  f" A0=2 {np.round(exact[2], 3)}")
    for z_max in (0.3, 0.5):
        bump = max(np.max(np.abs(calzetti_k_normalised(f.pivot_wave_aa / (1 + z), d)
                                 / calzetti_k_normalised(f.pivot_wave_aa / (1 + z), d, bump=False) - 1))
                   for z in np.linspace(0, z_max, 26) for d in np.linspace(-0.8, 0.4, 13))
        print(f"largest relative change of K by the bump (HSC, z <= {z_max}): {bump:.4f}")


if __name__ == "__main__":
    main()
