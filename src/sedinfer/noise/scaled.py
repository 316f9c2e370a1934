"""Errors spread around a base noise model: σ = σ_base · u, log u ~ U(log u_lo, log u_hi).

A posterior conditioned on σ (SEDFLOW, Hahn & Melchior 2022, §4.2 and §5.1) is valid for a
catalog only where the catalog's errors lie inside the training errors. SEDFLOW sampled
p(σ | f) from its catalog; :class:`ScaledNoiseModel` instead widens any base model (the survey
depth model by default): each element (galaxy and band) draws σ_base ~ p_base(σ | f) and an
independent factor u, log-uniform on ``factor_range`` (e.g. 1/3 … 3), so catalogs whose errors
are up to that factor smaller or larger than the base model's are inside the training support.

The noise is kept as drawn: :meth:`ScaledNoiseModel.add_noise` refuses ``redraw_negative=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError
from sedinfer.noise.base import FLOOR_QUANTILE, NoiseModel, RedrawStats, _check_quantile, _check_scale, _randn

#: quadrature nodes over the base model's z and bisection steps of :meth:`ScaledNoiseModel.sigma_floor`
_N_NODES, _BISECTIONS = 64, 50


class ScaledNoiseModel(NoiseModel):
    """σ = σ_base · u per element, u log-uniform on ``factor_range`` = (u_lo, u_hi), 0 < u_lo ≤ u_hi.

    ``base``: a :class:`NoiseModel` (or its ``to_dict()``) over the same ``bands``.
    """

    kind = "scaled"

    def __init__(self, bands: list[str] | tuple[str, ...], base: NoiseModel | Mapping[str, Any],
                 factor_range: Sequence[float] = (1 / 3, 3.0)) -> None:
        super().__init__(bands)
        if isinstance(base, Mapping):
            base = _base_from_dict(dict(base))
        if not isinstance(base, NoiseModel):
            raise ParameterError(f"base must be a noise model or its to_dict(), got {type(base).__name__}")
        if tuple(base.bands) != self.bands:
            raise ParameterError(f"the base noise model's bands {list(base.bands)} differ from "
                                 f"{list(self.bands)}")
        lo, hi = (float(v) for v in factor_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
            raise ParameterError(f"factor_range must be (low, high) with 0 < low <= high, got "
                                 f"{tuple(factor_range)}")
        self.base = base
        self.factor_range = (lo, hi)

    # the base model's pieces (used by NoiseModel helpers that need them)
    def _moments(self, flux: Tensor) -> tuple[Tensor, ...]:
        return self.base._moments(flux)

    def _sigma_given(self, flux: Tensor, moments: tuple[Tensor, ...], z: Tensor) -> Tensor:
        return self.base._sigma_given(flux, moments, z)

    def _params(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "factor_range": list(self.factor_range)}

    def _factor(self, like: Tensor, generator: torch.Generator | None) -> Tensor:
        """Log-uniform factors u shaped like ``like``."""
        lo, hi = (math.log(v) for v in self.factor_range)
        u = torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)
        return torch.exp(lo + (hi - lo) * u)

    def sample_sigma(self, flux: Tensor | np.ndarray, generator: torch.Generator | None = None,
                     scale: float = 1.0) -> Tensor:
        """σ = σ_base · u (..., B) in maggies; ``flux`` (..., B) in maggies, ≥ 0."""
        sigma = self.base.sample_sigma(flux, generator, scale)
        return sigma * self._factor(sigma, generator)

    def add_noise(self, flux: Tensor | np.ndarray, generator: torch.Generator | None = None,
                  scale: float = 1.0, redraw_negative: bool = False, max_redraws: int = 100,
                  return_stats: bool = False
                  ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, RedrawStats]:
        """Noisy fluxes f + σ·ε, ε ~ N(0, 1), kept as drawn (negative values included).

        Returns ``(noisy_flux, sigma)`` (..., B) in maggies, plus :class:`RedrawStats` counting
        the negative fluxes if ``return_stats``. ``redraw_negative=True`` is refused.
        """
        if redraw_negative:
            raise ParameterError("ScaledNoiseModel keeps the noise as drawn; redraw_negative=True is not "
                                 "supported")
        f, shape = self._as_flux(flux)
        _check_scale(scale)
        sigma = self.sample_sigma(f, generator, scale)
        noisy = f + sigma * _randn(f, generator)
        out = (noisy.reshape(shape), sigma.reshape(shape))
        if not return_stats:
            return out
        neg = torch.bincount((noisy.detach() < 0).nonzero(as_tuple=True)[1], minlength=len(self.bands))
        counts = dict(zip(self.bands, neg.tolist(), strict=True))
        return (*out, RedrawStats(counts, dict(counts), 0))

    def sigma_floor(self, flux: Tensor | np.ndarray, quantile: float = FLOOR_QUANTILE,
                    scale: float = 1.0) -> Tensor:
        """Lower ``quantile`` of p(σ | f) of σ = σ_base · u (maggies, (..., B)); ``flux`` in maggies, ≥ 0.

        ln σ = ln σ_base(z) + ln u with z ~ N(0, 1) and ln u ~ U(a, b), so
        P(σ < s) = E_z[clip((ln s − ln σ_base(z) − a) / (b − a), 0, 1)], the expectation by
        Gauss–Hermite quadrature (:data:`_N_NODES` nodes) and ``s`` found by bisection.
        """
        _check_quantile(quantile)
        f, shape = self._as_flux(flux)
        scale = _check_scale(scale)
        nodes, weights = np.polynomial.hermite_e.hermegauss(_N_NODES)
        weights = torch.as_tensor(weights / weights.sum(), dtype=f.dtype, device=f.device)
        moments = self.base._moments(f)
        log_base = torch.stack([torch.log(self.base._sigma_given(f, moments, torch.full_like(f, float(z))))
                                for z in nodes], -1)                       # (N, B, nodes)
        a, b = (math.log(v) for v in self.factor_range)
        width = max(b - a, 1e-12)
        lo, hi = log_base.min(-1).values + a, log_base.max(-1).values + b
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            cdf = (((mid[..., None] - log_base - a) / width).clamp(0, 1) * weights).sum(-1)
            below = cdf < quantile
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (torch.exp(0.5 * (lo + hi)) / scale).reshape(shape)

    def _repr_extra(self) -> str:
        lo, hi = self.factor_range
        return f", base={self.base!r}, factor_range=({lo:.4g}, {hi:.4g})"


def _base_from_dict(data: dict[str, Any]) -> NoiseModel:
    """A depth, SNR or sigma model from its ``to_dict()`` (a scaled model cannot be a base)."""
    from sedinfer.noise.depth import DepthNoiseModel
    from sedinfer.noise.sigma import SigmaNoiseModel
    from sedinfer.noise.snr import SNRNoiseModel

    kinds = {cls.kind: cls for cls in (DepthNoiseModel, SigmaNoiseModel, SNRNoiseModel)}
    cls = kinds.get(data.get("kind"))
    if cls is None:
        raise ParameterError(f"base noise model kind {data.get('kind')!r} is not one of {sorted(kinds)}")
    return cls.from_dict(data)


__all__ = ["ScaledNoiseModel"]
