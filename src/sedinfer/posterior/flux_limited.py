"""An inference prior for a flux-limited sample: p(z, log M) of galaxies brighter than a limit.

The prior box of the SPS model (PopSED Table 1: z uniform to 1.55, log M uniform 7.5–13) is the
range an emulator must cover, not what a survey sees: a flux-limited sample (SDSS main sample
r < 17.77, Strauss et al. 2002; GAMA r < 19.8, Baldry et al. 2010) holds few galaxies beyond
z ≈ 0.3 and almost no dwarfs beyond z ≈ 0.05. ``scripts/flux_limited_prior.py`` observes the
parent population of :class:`sedinfer.population.mock.MockPopulation` — p(z, log M) ∝ dV_c/dz ·
φ(log M) with the GAMA double-Schechter mass function (Baldry et al. 2012) and PopSED Table 2 for
the other parameters — through the SPS model and the noise model, keeps the galaxies whose
observed magnitude in ``band`` is below ``mag_max`` (no other cut) and histograms their
(z, log M). :class:`FluxLimitedPrior` samples that histogram (a cell ∝ its count, then uniform
inside it) and gives its exact piecewise-constant log density. The other parameters keep the
model's prior box. The histogram itself is the config value (``SEDConfig.inference_prior``, a
JSON file in a ``train-posterior`` TOML) and is saved with a trained model. (The builder is a
script because :mod:`sedinfer.population` imports :mod:`sedinfer.posterior`.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sedinfer.errors import ParameterError

#: Settings of a flux-limited prior and their defaults (SDSS main-sample limit).
FLUX_LIMITED_DEFAULTS: dict[str, Any] = {"band": "sdss_r0", "mag_max": 17.77, "n_galaxies": 20_000,
                                         "seed": 0, "z_bins": 30, "log_mass_bins": 30}


def check_prior_spec(spec: dict, bands: tuple[str, ...]) -> dict:
    """A validated ``SEDConfig.inference_prior``: ``{"kind": "box"}`` or a
    :meth:`FluxLimitedPrior.to_dict` histogram whose band is one of ``bands``."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in ("box", "flux_limited_histogram"):
        raise ParameterError(f"inference_prior must be {{'kind': 'box'}} or a flux-limited histogram "
                             f"(kind 'flux_limited_histogram', from scripts/flux_limited_prior.py), got "
                             f"kind {kind!r}")
    if kind == "box":
        if len(spec) > 1:
            raise ParameterError(f"inference_prior of kind 'box' takes no settings, got {sorted(spec)}")
        return {"kind": "box"}
    prior = FluxLimitedPrior.from_dict(spec)
    band = prior.selection.get("band")
    if band is not None and band not in bands:
        raise ParameterError(f"inference_prior band {band!r} is not one of the bands {list(bands)}")
    return prior.to_dict()


def check_selection(spec: dict) -> dict:
    """The selection settings of a flux-limited sample with :data:`FLUX_LIMITED_DEFAULTS` filled in."""
    unknown = sorted(set(spec) - set(FLUX_LIMITED_DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown flux-limited sample settings {unknown}; expected some of "
                             f"{sorted(FLUX_LIMITED_DEFAULTS)}")
    out = {**FLUX_LIMITED_DEFAULTS, **spec}
    if not (isinstance(out["mag_max"], (int, float)) and math.isfinite(out["mag_max"])):
        raise ParameterError(f"mag_max must be a finite AB magnitude, got {out['mag_max']!r}")
    for key in ("n_galaxies", "z_bins", "log_mass_bins", "seed"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "seed" else 1):
            raise ParameterError(f"{key} must be a positive integer, got {v!r}")
    return out


@dataclass(frozen=True)
class FluxLimitedPrior:
    """Histogram prior on (redshift, log_mass): bin ``edges`` (Kz+1,), (Km+1,) and ``counts``
    (Kz, Km); ``selection`` records how it was made."""

    z_edges: tuple[float, ...]
    log_mass_edges: tuple[float, ...]
    counts: tuple[tuple[int, ...], ...]
    selection: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = np.asarray(self.counts, dtype=np.float64)
        ze, me = np.asarray(self.z_edges), np.asarray(self.log_mass_edges)
        if c.shape != (len(ze) - 1, len(me) - 1) or (np.diff(ze) <= 0).any() or (np.diff(me) <= 0).any():
            raise ParameterError(f"flux-limited prior needs increasing edges and counts of shape "
                                 f"({len(ze) - 1}, {len(me) - 1}), got {c.shape}")
        if (c < 0).any() or c.sum() <= 0:
            raise ParameterError("flux-limited prior counts must be >= 0 with a positive total")

    def _density(self) -> np.ndarray:
        """Probability density per cell (Kz, Km) in 1 / (unit z · dex)."""
        c = np.asarray(self.counts, dtype=np.float64)
        area = np.outer(np.diff(self.z_edges), np.diff(self.log_mass_edges))
        return c / c.sum() / area

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log_mass)``, each (n,) float64: a cell drawn ∝ its count, then uniform inside it."""
        c = torch.as_tensor(np.asarray(self.counts, dtype=np.float64)).flatten()
        cell = torch.multinomial(c / c.sum(), n, replacement=True, generator=generator)
        km = len(self.log_mass_edges) - 1
        iz, im = cell // km, cell % km
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        ze, me = torch.tensor(self.z_edges, dtype=torch.float64), torch.tensor(self.log_mass_edges,
                                                                                dtype=torch.float64)
        z = ze[iz] + u[:, 0] * (ze[iz + 1] - ze[iz])
        m = me[im] + u[:, 1] * (me[im + 1] - me[im])
        return z, m

    def log_prob(self, z: np.ndarray, log_mass: np.ndarray) -> np.ndarray:
        """log p(z, log M) (same shape as the inputs); -inf outside the histogram or in empty cells."""
        z, m = np.asarray(z, dtype=np.float64), np.asarray(log_mass, dtype=np.float64)
        iz = np.searchsorted(self.z_edges, z, side="right") - 1
        im = np.searchsorted(self.log_mass_edges, m, side="right") - 1
        kz, km = len(self.z_edges) - 1, len(self.log_mass_edges) - 1
        iz = np.where(z == self.z_edges[-1], kz - 1, iz)
        im = np.where(m == self.log_mass_edges[-1], km - 1, im)
        inside = (iz >= 0) & (iz < kz) & (im >= 0) & (im < km)
        dens = self._density()[np.clip(iz, 0, kz - 1), np.clip(im, 0, km - 1)]
        with np.errstate(divide="ignore"):
            return np.where(inside, np.log(dens), -np.inf)

    def to_dict(self) -> dict:
        return {"kind": "flux_limited_histogram", "z_edges": list(self.z_edges),
                "log_mass_edges": list(self.log_mass_edges), "counts": [list(r) for r in self.counts],
                "selection": dict(self.selection)}

    @classmethod
    def from_dict(cls, data: dict) -> FluxLimitedPrior:
        if data.get("kind") != "flux_limited_histogram":
            raise ParameterError(f"not a flux-limited prior histogram (kind {data.get('kind')!r})")
        return cls(tuple(data["z_edges"]), tuple(data["log_mass_edges"]),
                   tuple(tuple(int(v) for v in r) for r in data["counts"]), dict(data.get("selection", {})))

    def describe(self) -> str:
        """One line for model cards."""
        s = self.selection
        return (f"flux-limited sample {s.get('band')} < {s.get('mag_max')}: p(z, log M) histogram of "
                f"{s.get('n_galaxies')} galaxies selected from {s.get('n_parent')} of the MockPopulation "
                f"parent (dV/dz x GAMA double-Schechter, PopSED Table 2 for the rest); "
                f"z {self.z_edges[0]:g}-{self.z_edges[-1]:g}, log M {self.log_mass_edges[0]:g}-"
                f"{self.log_mass_edges[-1]:g}; other parameters from the prior box")


__all__ = ["FluxLimitedPrior", "check_prior_spec", "check_selection", "FLUX_LIMITED_DEFAULTS"]
