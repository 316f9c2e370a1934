"""Cosmological distances and ages, tabulated from an astropy cosmology.

Luminosity distance and the age of the Universe are tabulated once on a fine redshift grid
(Δz = 1e-3) and interpolated linearly in torch, so they are batched and differentiable in z.
At z → 0 the luminosity distance is floored at 10 pc, so z = 0 gives absolute magnitudes.
"""

from __future__ import annotations

import numpy as np
import torch

TEN_PC_MPC = 1e-5  # 10 pc in Mpc: the distance floor (absolute magnitudes at z = 0)


def resolve_cosmology(cosmology=None):
    """An astropy cosmology: an instance, the name of a realization (``"Planck18"``), or
    ``None`` for Planck18."""
    import astropy.cosmology as apc

    if cosmology is None:
        return apc.Planck18
    if isinstance(cosmology, str):
        if cosmology not in apc.realizations.available:
            raise ValueError(f"unknown cosmology {cosmology!r}; expected one of "
                             f"{sorted(apc.realizations.available)} or an astropy cosmology")
        return getattr(apc, cosmology)
    if isinstance(cosmology, apc.Cosmology):
        return cosmology
    raise TypeError(f"cosmology must be an astropy Cosmology or a name, got {type(cosmology)}")


#: tabulations already made in this process, by (repr of the cosmology, z_max, dz); every
#: SPSModel needs them. The repr of an astropy cosmology lists all its parameters.
_TABLES: dict[tuple[str, float, float], tuple[np.ndarray, np.ndarray]] = {}
_MAX_TABLES = 8
_SUBSTEPS = 8          # integrand samples per grid step of the cumulative Simpson rule


def _integrated(cosmology, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d_L [Mpc], age [Gyr]) on the ascending grid ``z`` (from 0) of a flat cosmology.

    astropy integrates every point separately when massive neutrinos make E(z) non-analytic
    (~3.6 s for the default grid, at every start of a command). Here astropy's own E(z) is
    integrated cumulatively on a grid ``_SUBSTEPS`` times finer (Simpson's rule), and the age
    is anchored on astropy's age at the top of the grid: agreement ~1e-10 (tested).
    """
    from astropy import constants as const
    from scipy.integrate import cumulative_simpson

    fine = np.linspace(z[0], z[-1], (len(z) - 1) * _SUBSTEPS + 1)
    inv_e = np.asarray(cosmology.inv_efunc(fine), dtype=np.float64)
    hubble_mpc = (const.c / cosmology.H0).to("Mpc").value
    hubble_gyr = (1 / cosmology.H0).to("Gyr").value
    d_c = hubble_mpc * cumulative_simpson(inv_e, x=fine, initial=0.0)[::_SUBSTEPS]
    back = cumulative_simpson((inv_e / (1 + fine))[::-1], x=-fine[::-1], initial=0.0)[::-1]
    age = float(cosmology.age(z[-1]).value) + hubble_gyr * back[::_SUBSTEPS]
    return (1 + z) * d_c, age


def _tabulate(cosmology, z: np.ndarray, z_max: float, dz: float) -> tuple[np.ndarray, np.ndarray]:
    """(d_L [Mpc] floored at 10 pc, age [Gyr]) on the grid ``z``, cached per cosmology (copies)."""
    key = (repr(cosmology), z_max, dz)
    if key not in _TABLES:
        if cosmology.Ok0 == 0:
            dl, age = _integrated(cosmology, z)
        else:                             # curved: astropy's own point-by-point integrals
            dl = cosmology.luminosity_distance(z).value
            age = np.asarray(cosmology.age(z).value, dtype=np.float64)
        dl = np.maximum(dl, TEN_PC_MPC)
        if len(_TABLES) >= _MAX_TABLES:
            _TABLES.pop(next(iter(_TABLES)))
        _TABLES[key] = (dl, age)
    dl, age = _TABLES[key]
    return dl.copy(), age.copy()


class CosmologyTable:
    """Tabulated ``d_L(z)`` [Mpc] and ``t_age(z)`` [Gyr] on ``0 <= z <= z_max``."""

    def __init__(self, cosmology=None, z_max: float = 10.0, dz: float = 1e-3):
        self.cosmology = resolve_cosmology(cosmology)
        self.z_max = float(z_max)
        self.dz = float(dz)
        z = np.arange(0.0, self.z_max + 2 * dz, dz)
        self.z = z
        self.dl_mpc, self.age_gyr = _tabulate(self.cosmology, z, self.z_max, self.dz)
        self.age0_gyr = float(self.age_gyr[0])

    def _interp(self, table: np.ndarray, z: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(table, dtype=torch.float64, device=z.device)
        u = z.to(torch.float64) / self.dz
        i = u.floor().clamp(0, len(table) - 2).long()
        w = u - i
        return t[i] * (1 - w) + t[i + 1] * w

    def luminosity_distance_mpc(self, z: torch.Tensor) -> torch.Tensor:
        """d_L in Mpc (float64), floored at 10 pc."""
        return self._interp(self.dl_mpc, z)

    def age_gyr_at(self, z: torch.Tensor) -> torch.Tensor:
        """Age of the Universe at redshift z in Gyr (float64)."""
        return self._interp(self.age_gyr, z)

    def distance_modulus(self, z: torch.Tensor) -> torch.Tensor:
        """5 log10(d_L / 10 pc)."""
        return 5.0 * torch.log10(self.luminosity_distance_mpc(z) / TEN_PC_MPC)
