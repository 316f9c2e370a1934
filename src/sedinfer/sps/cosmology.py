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


#: tabulations already made in this process, by (repr of the cosmology, z_max, dz): astropy
#: integrates d_L and the age point by point (~3.6 s for the default grid), and every SPSModel
#: needs them. The repr of an astropy cosmology lists all its parameters.
_TABLES: dict[tuple[str, float, float], tuple[np.ndarray, np.ndarray]] = {}
_MAX_TABLES = 8


def _tabulate(cosmology, z: np.ndarray, z_max: float, dz: float) -> tuple[np.ndarray, np.ndarray]:
    """(d_L [Mpc] floored at 10 pc, age [Gyr]) on the grid ``z``, cached per cosmology (copies)."""
    key = (repr(cosmology), z_max, dz)
    if key not in _TABLES:
        dl = np.maximum(cosmology.luminosity_distance(z).value, TEN_PC_MPC)
        age = np.asarray(cosmology.age(z).value, dtype=np.float64)
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
