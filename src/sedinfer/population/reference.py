"""Reference densities of the entropy term: uniform over the box, or a random Beta per member.

The entropy term of training is λ(t)·KL(q ‖ r), a prior over populations that favours those
close to a reference density r over the box. With r uniform (the default) it prefers the
broadest population the data allow, so along directions the photometry hardly constrains every
member of an ensemble ends near the same, flattest, population, and the members agree with each
other more than with the truth.

*Randomised references* (``FitConfig.reference_scatter`` > 0) give member k its own r: a product
over parameters of Beta(a_d, b_d) densities on the unit box coordinate v = (θ − low)/(high − low),
with ln a_d, ln b_d = scatter·|N(0, 1)| drawn from the member's seed. Shapes are kept ≥ 1 (ramps
and bumps, bounded densities): a shape below 1 makes r infinite at an edge of the box, and the
flows, whose normal-CDF output layer saturates there, then pile mass on that edge and keep it
(measured: spikes at the box edges of κ₁, κ₂, f_burst and log Z with ln a, ln b ~ N(0, 0.5²)).

Each member is then the fit under one draw from a distribution of priors, so where the data
constrain θ the members agree and where they do not they spread over what the priors allow:
the idea of randomised prior functions in ensembles (Osband et al. 2018) applied to the
population's entropy prior.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sedinfer.errors import ParameterError

UNIT_CLAMP = 1e-6


def reference_shapes(seed: int, dim: int, scatter: float) -> Tensor:
    """Beta shapes (2, dim) = (a, b) ≥ 1 of a seeded random reference, exp(scatter·|N(0, 1)|); ones for 0."""
    if not scatter >= 0:
        raise ParameterError(f"reference scatter must be >= 0, got {scatter}")
    g = torch.Generator().manual_seed(2_147_483_629 + int(seed))
    return torch.exp(scatter * torch.randn(2, dim, generator=g, dtype=torch.float64).abs()).float()


def log_reference_unit(unit: Tensor, shapes: Tensor) -> Tensor:
    """log r(v) (N,) of the Beta-product density at unit-box coordinates ``unit`` (N, D) in [0, 1].

    Relative to the unit box (the uniform reference gives 0); add −log V for a density in θ.
    Coordinates are clamped to [1e-6, 1 − 1e-6] so that draws on the box edge stay finite.
    """
    a, b = shapes.to(unit)[0], shapes.to(unit)[1]
    v = unit.clamp(UNIT_CLAMP, 1 - UNIT_CLAMP)
    log_beta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    return ((a - 1) * torch.log(v) + (b - 1) * torch.log1p(-v) - log_beta).sum(-1)


__all__ = ["log_reference_unit", "reference_shapes"]
