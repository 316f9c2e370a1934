"""Reference densities of the entropy term: uniform over the box, or a random density per member.

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

Beta shapes ≥ 1 have one cost: their density falls to zero at an edge unless a shape is exactly
1, so every member thins the box edges of every parameter, and a population flat up to an edge
(κ₂ in the Table-2 mock) is outside the ensemble there. The ``"tilt"`` family has no such
zeros: log r(v) = c₁(v − ½) + c₂(v − ½)² − log Z per parameter, with c₁, c₂ = scatter·N(0, 1),
ramps (c₁), bumps (c₂ < 0) and dips (c₂ > 0) whose density stays finite and positive on the
closed box, centred on the uniform reference (c = 0).

Random references of either family are also a prior over the *ensemble*: the mixture of the
members' references is no longer uniform (tilts of scatter 3 average to a U shape, Betas to a
bump), so in directions the data ignore the aggregated ensemble follows that mixture, not
PopSED's uniform prior. The ``"partition"`` family removes this bias: the K members' random
smooth shapes (a three-term cosine series in log density, so that bumps can sit anywhere in
the box, not only at its centre as a quadratic's do), tabulated on a grid of the unit interval,
are balanced by Sinkhorn iterations so that each still integrates to one and together they sum
to K at every node, i.e. their mixture is exactly uniform. Member k's reference is the
piecewise-linear density through its node values; the ensemble's spread spans the shapes while
its aggregate keeps the uniform prior.

Each member is then the fit under one draw from a distribution of priors, so where the data
constrain θ the members agree and where they do not they spread over what the priors allow:
the idea of randomised prior functions in ensembles (Osband et al. 2018) applied to the
population's entropy prior.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError

UNIT_CLAMP = 1e-6
FAMILIES = ("beta", "tilt", "partition")
RECORD_KEYS = {"beta": "reference_beta_shapes", "tilt": "reference_tilt_coefficients",
               "partition": "reference_partition_nodes"}
PARTITION_NODES = 33
PARTITION_MODES = 3
_NODES, _WEIGHTS = (torch.as_tensor(a, dtype=torch.float64) for a in np.polynomial.legendre.leggauss(48))


def _scaled_normals(seed: int, dim: int, scatter: float, rows: int = 2) -> Tensor:
    """scatter·N(0, 1) draws (rows, dim), float64, from a generator seeded by the member's seed."""
    if not scatter >= 0:
        raise ParameterError(f"reference scatter must be >= 0, got {scatter}")
    g = torch.Generator().manual_seed(2_147_483_629 + int(seed))
    return scatter * torch.randn(rows, dim, generator=g, dtype=torch.float64)


def reference_shapes(seed: int, dim: int, scatter: float) -> Tensor:
    """Beta shapes (2, dim) = (a, b) ≥ 1 of a seeded random reference, exp(scatter·|N(0, 1)|); ones for 0."""
    return torch.exp(_scaled_normals(seed, dim, scatter).abs()).float()


def log_reference_unit(unit: Tensor, shapes: Tensor) -> Tensor:
    """log r(v) (N,) of the Beta-product density at unit-box coordinates ``unit`` (N, D) in [0, 1].

    Relative to the unit box (the uniform reference gives 0); add −log V for a density in θ.
    Coordinates are clamped to [1e-6, 1 − 1e-6] so that draws on the box edge stay finite.
    """
    a, b = shapes.to(unit)[0], shapes.to(unit)[1]
    v = unit.clamp(UNIT_CLAMP, 1 - UNIT_CLAMP)
    log_beta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    return ((a - 1) * torch.log(v) + (b - 1) * torch.log1p(-v) - log_beta).sum(-1)


def reference_tilts(seed: int, dim: int, scatter: float) -> Tensor:
    """Coefficients (2, dim) = (c₁, c₂) of a seeded random tilted reference, scatter·N(0, 1)."""
    return _scaled_normals(seed, dim, scatter).float()


def log_tilt_unit(unit: Tensor, coefficients: Tensor) -> Tensor:
    """log r(v) (N,) of the tilted reference with ``coefficients`` (2, D) at ``unit`` (N, D) in [0, 1]."""
    c1, c2 = coefficients.to(unit)[0], coefficients.to(unit)[1]
    x = _NODES.to(unit)[:, None] / 2                                   # Gauss–Legendre nodes on [-½, ½]
    log_z = torch.logsumexp(c1 * x + c2 * x**2 + torch.log(_WEIGHTS.to(unit) / 2)[:, None], dim=0)
    u = unit.clamp(0, 1) - 0.5
    return (c1 * u + c2 * u**2 - log_z).sum(-1)


def partition_references(seeds: Sequence[int], dim: int, scatter: float, n_nodes: int = PARTITION_NODES,
                         n_modes: int = PARTITION_MODES, tol: float = 1e-9, max_iter: int = 20_000) -> Tensor:
    """Node densities (K, n_nodes, dim) of K references whose mixture is uniform on the unit box.

    Member k starts from a random smooth log-density per parameter, a cosine series
    Σ_j a_j cos(jπv)/j, j = 1 … n_modes, with a = scatter·N(0, 1) drawn from its seed, tabulated on
    ``n_nodes`` equally spaced nodes of [0, 1] (bumps, ramps and dips anywhere in the box). Sinkhorn
    iterations then scale members and nodes until every member's piecewise-linear density
    integrates to 1 (trapezoid rule, exact for it) and the K densities sum to K at every node.
    """
    if len(seeds) < 2:
        raise ParameterError(f"a partition of the uniform reference needs >= 2 members, got {len(seeds)}")
    if n_nodes < 2 or n_modes < 1:
        raise ParameterError(f"need n_nodes >= 2 and n_modes >= 1, got {n_nodes} and {n_modes}")
    a = torch.stack([_scaled_normals(s, dim, scatter, n_modes) for s in seeds])     # (K, J, D)
    v = torch.linspace(0, 1, n_nodes, dtype=torch.float64)
    j = torch.arange(1, n_modes + 1, dtype=torch.float64)[:, None]
    log_m = torch.einsum("kjd,jg->kgd", a, torch.cos(torch.pi * j * v) / j)            # (K, G, D)
    p = torch.exp(log_m - log_m.amax(dim=(0, 1), keepdim=True))
    w = torch.full((n_nodes,), 1.0 / (n_nodes - 1), dtype=torch.float64)
    w[0] = w[-1] = 0.5 / (n_nodes - 1)
    k = len(seeds)
    for _ in range(max_iter):
        p = p * k / p.sum(0, keepdim=True)                                         # mixture uniform
        mass = (w[None, :, None] * p).sum(1, keepdim=True)
        p = p / mass                                                               # each normalised
        if (mass - 1).abs().max() < tol:
            return p.float()
    raise ParameterError(f"the partition of the uniform reference did not converge in {max_iter} "
                         f"iterations (scatter {scatter}); use a smaller reference_scatter")


def log_partition_unit(unit: Tensor, nodes: Tensor) -> Tensor:
    """log r(v) (N,) of the piecewise-linear density with node values ``nodes`` (G, D) at ``unit`` (N, D)."""
    g = nodes.shape[0]
    nodes = nodes.to(unit)
    pos = unit.clamp(0, 1) * (g - 1)
    i = pos.detach().floor().clamp(max=g - 2).long()
    f = pos - i
    lo, hi = nodes.gather(0, i), nodes.gather(0, i + 1)
    return torch.log(lo + f * (hi - lo)).sum(-1)


def draw_reference(family: str, seed: int, dim: int, scatter: float) -> Tensor:
    """Parameters (2, dim) of a seeded random reference of family "beta" or "tilt"."""
    if family == "beta":
        return reference_shapes(seed, dim, scatter)
    if family == "tilt":
        return reference_tilts(seed, dim, scatter)
    if family == "partition":
        raise ParameterError("a 'partition' reference depends on every member: use draw_references")
    raise ParameterError(f"reference family must be one of {FAMILIES}, got {family!r}")


def draw_references(family: str, seeds: Sequence[int], dim: int, scatter: float) -> list[Tensor]:
    """Parameters of the references of an ensemble whose members have ``seeds``, one tensor each."""
    if family == "partition":
        return list(partition_references(seeds, dim, scatter))
    return [draw_reference(family, s, dim, scatter) for s in seeds]


_LOG_DENSITIES = {"beta": log_reference_unit, "tilt": log_tilt_unit, "partition": log_partition_unit}


def log_reference(family: str, unit: Tensor, params: Tensor) -> Tensor:
    """log r(v) (N,) relative to the unit box, of the reference ``family`` with ``params``."""
    if family not in _LOG_DENSITIES:
        raise ParameterError(f"reference family must be one of {FAMILIES}, got {family!r}")
    return _LOG_DENSITIES[family](unit, params)


__all__ = ["FAMILIES", "RECORD_KEYS", "draw_reference", "draw_references", "log_partition_unit",
           "log_reference", "log_reference_unit", "log_tilt_unit", "partition_references", "reference_shapes",
           "reference_tilts"]
