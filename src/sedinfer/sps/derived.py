"""Derived physical quantities of a batch of parameters.

* ``sfr_10myr``, ``sfr_100myr``, ``sfr_1gyr``: mean SFR over the last 10 Myr, 100 Myr, 1 Gyr
  [M_sun/yr], from the exact cumulative SFH (a burst counts when it is younger than the window);
* ``log_mstar``: log10 of the surviving stellar mass (living stars + remnants, BC03), the
  mass formed in each age bin times its surviving fraction at the galaxy's metallicity;
* ``log_ssfr``: log10 sSFR over 100 Myr [1/yr] relative to the surviving mass;
* ``mass_weighted_age``: mass-formed-weighted mean stellar age [Gyr] on the age bins (the bin
  that straddles the Big Bang counts at the middle of its part after it);
* ``t_age``: age of the Universe at the galaxy's redshift [Gyr].
"""

from __future__ import annotations

import numpy as np
import torch

from sedinfer.sps.grids import load_ssp
from sedinfer.sps.templates import age_overlap_matrix
from sedinfer.units import YR_PER_GYR

DERIVED_NAMES = ("log_mstar", "sfr_10myr", "sfr_100myr", "sfr_1gyr", "log_ssfr", "mass_weighted_age",
                 "t_age")
DERIVED_UNITS = {"log_mstar": "dex(Msun)", "sfr_10myr": "Msun/yr", "sfr_100myr": "Msun/yr",
                 "sfr_1gyr": "Msun/yr", "log_ssfr": "dex(1/yr)", "mass_weighted_age": "Gyr", "t_age": "Gyr"}


def derived_quantities(model, theta) -> dict[str, torch.Tensor]:
    p = model.parse(theta)
    p64 = {k: v.to(torch.float64) for k, v in p.items()}
    t_age = model.cosmo.age_gyr_at(p64["redshift"])
    mass = 10 ** p64["log_mass"]
    out = {}
    for name, window in (("sfr_10myr", 0.01), ("sfr_100myr", 0.1), ("sfr_1gyr", 1.0)):
        out[name] = mass * model.sfh.mass_formed_within(p64, window, t_age) / (window * YR_PER_GYR)
    w = model.sfh_weights(p)                                            # (N, A) M_sun, float64
    grid = load_ssp()
    live = age_overlap_matrix(grid.age_yr, model.age_edges_yr) @ grid.live_frac.T   # (A, Z)
    zw = model.metallicity_weights(p64["log_z"], torch.as_tensor(np.log10(grid.metallicity_zsun)))
    live_t = torch.as_tensor(live, dtype=torch.float64, device=w.device)
    out["log_mstar"] = torch.log10(((w @ live_t) * zw).sum(-1))       # (N, Z) before mixing metallicities
    out["log_ssfr"] = torch.log10(out["sfr_100myr"]) - out["log_mstar"]
    centres = torch.as_tensor(model.age_centres_yr / YR_PER_GYR, dtype=torch.float64, device=w.device)
    lo = torch.as_tensor(model.age_edges_yr[:-1] / YR_PER_GYR, dtype=torch.float64, device=w.device)
    # the bin that straddles the Big Bang formed its stars between its lower edge and t_age
    mid = 0.5 * (lo + t_age[:, None])
    centres = torch.where(centres > t_age[:, None], torch.minimum(centres, mid), centres)
    out["mass_weighted_age"] = (w * centres).sum(-1) / w.sum(-1)
    out["t_age"] = t_age
    return {k: out[k].to(model.dtype) for k in DERIVED_NAMES}
