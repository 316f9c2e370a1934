"""Variance-exploding SDE of the score priors (Song et al. 2021; Song & Ermon 2019, 2020).

A data image u₀ is perturbed by Gaussian noise of standard deviation σ(t), t ∈ [0, 1]::

    u_t = u₀ + σ(t) z,    z ~ N(0, I),    σ(t) = σ_min (σ_max / σ_min)^t

and a score network s(u, t) ≈ ∇_u log p_t(u) of the smoothed density p_t = p₀ ⊛ N(0, σ(t)²) is
trained by denoising score matching with weight σ(t)² (:func:`~sedinfer.images.train_prior.dsm_loss`).

Defaults, for images in the priors' network space (values in [0, 1], :mod:`~sedinfer.images.prior`):
σ_min = 10⁻³, below the per-pixel precision any cutout gives (10⁻³ of the peak); σ_max = 50, above
the largest Euclidean distance between two 64 × 64 training images (≤ 64 for values in [0, 1]),
as Song & Ermon (2020, technique 1) prescribe so that p_1 forgets the data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

SIGMA_MIN = 1e-3
SIGMA_MAX = 50.0


@dataclass(frozen=True)
class VESDE:
    """σ(t) = σ_min (σ_max/σ_min)^t; ``sigma_min`` < ``sigma_max``, both > 0 (network-space units)."""

    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX

    def __post_init__(self) -> None:
        if not (0.0 < self.sigma_min < self.sigma_max and math.isfinite(self.sigma_max)):
            raise ValueError(f"VESDE needs 0 < sigma_min < sigma_max < inf, got sigma_min="
                             f"{self.sigma_min}, sigma_max={self.sigma_max}")

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """σ(t), same shape as ``t``."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def time_for_sigma(self, sigma: float) -> float:
        """The t with σ(t) = ``sigma`` (for choosing a MAP temperature by its noise level)."""
        if not self.sigma_min <= sigma <= self.sigma_max:
            raise ValueError(f"sigma must lie in [{self.sigma_min}, {self.sigma_max}], got {sigma}")
        return math.log(sigma / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)

    def perturb(self, u0: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """u_t = u₀ + σ(t) z for images (N, C, H, W) and times (N,)."""
        return u0 + self.sigma(t).to(u0.dtype)[:, None, None, None] * z

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["SIGMA_MIN", "SIGMA_MAX", "VESDE"]
