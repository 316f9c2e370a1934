"""An unconditional normalizing flow q_φ(θ) whose samples always lie inside a prior box.

The flow (:func:`sedinfer.posterior.flow.build_flow` with no context) maps a standard-normal base
to a latent u (D,); an output layer maps u into the box with the normal CDF Φ (PopSED, Li et al.
2024, §2.3)::

    θ = low + (high - low) · (ε + (1 - 2ε) Φ(u)),   ε = UNIT_EPS = 1e-6.

The last linear layer of every transform is zero-initialised, which makes every spline (or
affine) transform the identity: u is then exactly N(0, 1), Φ(u) exactly uniform, and q_φ
starts as the uniform distribution over the box (shrunk by ε of its width at each edge, so that
no draw sits on an edge where a forward model may be singular, e.g. redshift 0).

A standard-normal base with Φ is used rather than a logistic base with a sigmoid: zuko's
splines act on [-5, 5] and are the identity outside, which holds 1.3 % of a logistic variable's
mass per dimension (draws the flow could never move) but only 6e-7 of a normal one's.

Sampling inverts the splines, which solves a quadratic per bin. In float32 its discriminant can
round below zero next to a bin edge when neighbouring knot derivatives differ by ~10⁵ (found with
strongly perturbed weights: 4 NaN draws in 5000), so a batch with a non-finite latent is redone
in float64 (parameters cast inside the graph, so gradients still reach them); a draw that stays
non-finite raises an error rather than being dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain

import torch
import zuko
from torch import Tensor
from torch.func import functional_call

from sedinfer.errors import ParameterError, SedinferError
from sedinfer.posterior.estimator import UNIT_EPS
from sedinfer.posterior.flow import FlowConfig, build_flow

#: Default architecture of a population flow (smaller than PopSED's 20 blocks x 60 bins x 100
#: features, which is sized for a GPU; pass ``FlowConfig(...)`` for more capacity).
DEFAULT_POPULATION_FLOW = FlowConfig(kind="nsf-coupling", transforms=8, hidden=(128, 128), bins=16)

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LINEAR = (torch.nn.Linear, zuko.nn.Linear)


def zero_init_last_layers(flow: torch.nn.Module) -> int:
    """Zero the last linear layer of every transform of a zuko flow (all the parameters of a
    transform without a hyper-network, e.g. a 1-D element-wise spline).

    With zero hyper-network outputs zuko's spline and affine transforms are the identity, so
    the flow starts as its base distribution. Returns the number of transforms zeroed.
    """
    count = 0
    with torch.no_grad():
        for transform in flow.transform.transforms:
            linears = [m for m in transform.modules() if isinstance(m, _LINEAR)]
            params = [linears[-1].weight, linears[-1].bias] if linears else list(transform.parameters())
            for p in params:
                if p is not None:
                    p.zero_()
            count += 1
    return count


def _non_finite_rows(u: Tensor, log_qu: Tensor | None) -> Tensor:
    """Boolean (n,): rows of u (n, D), or of log q(u) (n,) if given, that are NaN or infinite."""
    bad = ~torch.isfinite(u).all(-1)
    return bad if log_qu is None else bad | ~torch.isfinite(log_qu)


class BoxFlow(torch.nn.Module):
    """q_φ(θ) over the box ``[low, high]`` (each (D,)); starts uniform over the box.

    ``sample(n)`` is differentiable in the flow's parameters (reparameterised); ``log_prob``
    is the density of θ in its own units.
    """

    def __init__(self, low: Tensor | Sequence[float], high: Tensor | Sequence[float],
                 config: FlowConfig = DEFAULT_POPULATION_FLOW,
                 param_names: Sequence[str] | None = None) -> None:
        super().__init__()
        low = torch.as_tensor(low, dtype=torch.float32).reshape(-1)
        high = torch.as_tensor(high, dtype=torch.float32).reshape(-1)
        if low.shape != high.shape or low.numel() < 1 or not bool((high > low).all()):
            raise ParameterError(f"the box needs low < high in every dimension, got low={low.tolist()} "
                                 f"and high={high.tolist()}")
        if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ParameterError(f"the box must be finite, got low={low.tolist()}, high={high.tolist()}")
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.config = config
        d = low.numel()
        self.param_names = tuple(param_names) if param_names else tuple(f"theta{i}" for i in range(d))
        if len(self.param_names) != d:
            raise ParameterError(f"{len(self.param_names)} parameter names for a {d}-dimensional box")
        self.flow = build_flow(d, 0, config)
        zero_init_last_layers(self.flow)

    @property
    def dim(self) -> int:
        return self.low.numel()

    # ------------------------------------------------------------------ box map
    def to_box(self, u: Tensor) -> Tensor:
        """Latent u (..., D) -> θ (..., D) strictly inside the box."""
        unit = UNIT_EPS + (1 - 2 * UNIT_EPS) * torch.special.ndtr(u)
        return self.low + (self.high - self.low) * unit

    def from_box(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """θ (..., D) -> latent u and log|dθ/du| summed over D (the inverse of :meth:`to_box`)."""
        width = self.high - self.low
        unit = ((theta - self.low) / width - UNIT_EPS) / (1 - 2 * UNIT_EPS)
        tiny = torch.finfo(theta.dtype).eps
        u = torch.special.ndtri(unit.clamp(tiny, 1 - tiny))
        log_phi = -0.5 * u**2 - _LOG_SQRT_2PI
        log_jac = (torch.log(width) + math.log(1 - 2 * UNIT_EPS) + log_phi).sum(-1)
        return u, log_jac

    # ------------------------------------------------------------------ density, sampling
    def forward(self, eps: Tensor, with_log_prob: bool = True) -> tuple[Tensor, Tensor | None]:
        """Latent u (n, D) of base draws ``eps`` (n, D) and, if asked, log q(u) (n,)."""
        dist = self.flow()
        if not with_log_prob:
            return dist.transform.inv(eps), None
        u, ladj = dist.transform.inv.call_and_ladj(eps)
        return u, dist.base.log_prob(eps) - ladj

    def _latent(self, eps: Tensor, with_log_prob: bool) -> tuple[Tensor, Tensor | None]:
        """:meth:`forward`, redone in float64 if float32 gave a non-finite value (module docstring)."""
        u, log_qu = self(eps, with_log_prob)
        if not bool(_non_finite_rows(u, log_qu).any()):
            return u, log_qu
        state = {k: v.double() if v.is_floating_point() else v
                 for k, v in chain(self.named_parameters(), self.named_buffers())}
        u, log_qu = functional_call(self, state, (eps.double(), with_log_prob))
        bad = _non_finite_rows(u, log_qu)
        if bool(bad.any()):
            raise SedinferError(f"the flow's spline inverse gave NaN or inf for {int(bad.sum())} of "
                                f"{len(eps)} draws even in float64: its splines are numerically degenerate "
                                "(check the learning rate and the loss history)")
        return u.to(eps.dtype), None if log_qu is None else log_qu.to(eps.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws θ (n, D), differentiable in the flow's parameters.

        ``generator`` (on this module's device) draws the base noise, so results are
        reproducible without touching the global random state.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParameterError(f"n must be a positive integer, got {n!r}")
        eps = torch.randn(n, self.dim, generator=generator, device=self.low.device)
        return self.to_box(self._latent(eps, False)[0])

    def sample_and_log_prob(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` draws θ (n, D) and their log q(θ) (n,), both differentiable (one flow pass)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParameterError(f"n must be a positive integer, got {n!r}")
        eps = torch.randn(n, self.dim, generator=generator, device=self.low.device)
        u, log_qu = self._latent(eps, True)
        log_phi = -0.5 * u**2 - _LOG_SQRT_2PI
        log_jac = (torch.log(self.high - self.low) + math.log(1 - 2 * UNIT_EPS) + log_phi).sum(-1)
        return self.to_box(u), log_qu - log_jac

    def log_volume(self) -> float:
        """log of the box volume: the entropy of the uniform distribution over the box (nats)."""
        return float(torch.log(self.high - self.low).sum())

    def log_prob(self, theta: Tensor) -> Tensor:
        """log q(θ) (...,) for θ (..., D); -inf outside the box."""
        theta = torch.as_tensor(theta, dtype=torch.float32, device=self.low.device)
        if theta.shape[-1:] != (self.dim,):
            raise ParameterError(f"theta must have {self.dim} columns ({', '.join(self.param_names)}), "
                                 f"got shape {tuple(theta.shape)}")
        inside = ((theta >= self.low) & (theta <= self.high)).all(-1)
        u, log_jac = self.from_box(theta)
        lp = self.flow().log_prob(u) - log_jac
        return torch.where(inside, lp, torch.full_like(lp, -torch.inf))


__all__ = ["BoxFlow", "DEFAULT_POPULATION_FLOW", "zero_init_last_layers"]
