"""sedinfer: galaxy physical properties from photometry and spectra with neural inference.

The package shares one differentiable stellar-population-synthesis forward model
(:class:`sedinfer.SPSModel`), one filter layer (:class:`sedinfer.Filters`), one prior
toolkit (:mod:`sedinfer.priors`), one noise-model layer (:mod:`sedinfer.noise`) and one
catalog I/O layer (:mod:`sedinfer.catalog`) between its inference engines.

Nothing is read from disk at import: template grids load lazily on first use and are cached.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "SPSModel": ("sedinfer.sps.model", "SPSModel"),
    "Filters": ("sedinfer.filters", "Filters"),
    "Prior": ("sedinfer.priors", "Prior"),
}
_SUBMODULES = {"sps", "priors", "noise", "filters", "catalog", "units", "errors", "cli", "posterior",
               "population", "simulate", "spectra", "images"}

__all__ = ["SPSModel", "Filters", "Prior", "__version__", *sorted(_SUBMODULES)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    if name in _SUBMODULES:
        return import_module(f"sedinfer.{name}")
    raise AttributeError(f"module 'sedinfer' has no attribute {name!r}")
