"""Distances between two weighted point clouds x (N, B) and y (M, B), and the blur schedule.

Both losses use the cost |x - y|² / 2 (geomloss's convention for p = 2), so for point masses
they approach W2² / 2:

- :func:`sinkhorn_loss`: the debiased Sinkhorn divergence of :mod:`geomloss` (Feydy et al.
  2019), as in PopSED (Li et al. 2024, §2.4). Cost O(N M) per iteration; the dense
  ("tensorized") backend holds N x M matrices, so it is used unless pykeops is installed.
- :func:`sliced_wasserstein_loss`: the sliced Wasserstein distance (Bonneel et al. 2015):
  the mean over random unit directions of the exact 1-D W2² / 2 of the projections, from
  sorted samples in O((N + M) log(N + M)) per direction (PopSED §5.3).

Weights (α (N,), β (M,), each summing to 1; uniform when omitted) model a selection function:
the losses are differentiable with respect to the points and the weights.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from sedinfer.errors import ParameterError

LOSSES = ("sinkhorn", "sliced")


@dataclass(frozen=True)
class BlurSchedule:
    """Sinkhorn blur σ (in the units of the compared data, here magnitudes) versus training step.

    PopSED (§2.5): σ starts at 0.3 and decreases by 0.05 every 60 of 800 steps until 0.05, then
    σ = 0.002 for the remaining steps. Here the stages ``start, start - decrement, ..., stop``
    each last ``stage_fraction`` of the total steps (PopSED: 60/800); afterwards σ = ``final``
    (``None``: stay at ``stop``).
    """

    start: float = 0.3
    stop: float = 0.05
    decrement: float = 0.05
    stage_fraction: float = 0.075
    final: float | None = 0.002

    def __post_init__(self) -> None:
        if not (0 < self.stop <= self.start and self.decrement > 0 and 0 < self.stage_fraction <= 1):
            raise ParameterError(f"blur schedule needs 0 < stop <= start, decrement > 0 and stage_fraction "
                                 f"in (0, 1], got {self}")
        if self.final is not None and not self.final > 0:
            raise ParameterError(f"final blur must be > 0 or None, got {self.final}")

    @property
    def n_stages(self) -> int:
        return int(math.floor((self.start - self.stop) / self.decrement + 1e-9)) + 1

    def __call__(self, step: int, total_steps: int) -> float:
        """σ at ``step`` (0-based) of ``total_steps``."""
        if total_steps < 1 or step < 0:
            raise ParameterError(f"need step >= 0 and total_steps >= 1, got {step}, {total_steps}")
        stage = int(step // max(self.stage_fraction * total_steps, 1e-12))
        if stage >= self.n_stages:
            return self.stop if self.final is None else self.final
        return round(max(self.start - stage * self.decrement, self.stop), 12)

    def to_dict(self) -> dict:
        return asdict(self)


def _keops_available() -> bool:
    return importlib.util.find_spec("pykeops") is not None


def _weights(w: Tensor | None, n: int, like: Tensor, name: str) -> Tensor:
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    if w.shape != (n,):
        raise ParameterError(f"{name} must have shape ({n},), one weight per point, got {tuple(w.shape)}")
    return w


def _check_points(x: Tensor, y: Tensor) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(x.shape[0], y.shape[0]) < 1:
        raise ParameterError(f"point clouds must be (N, B) and (M, B) with N, M >= 1, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")


def sinkhorn_loss(x: Tensor, y: Tensor, blur: float, scaling: float = 0.5, x_weights: Tensor | None = None,
                  y_weights: Tensor | None = None) -> Tensor:
    """Debiased Sinkhorn divergence (p = 2, cost |x-y|²/2) between x (N, B) and y (M, B).

    ``blur`` σ = ε^(1/2) (data units); ``scaling`` in (0, 1) trades the speed of the ε-scaling
    annealing against accuracy. Returns a scalar tensor, ≈ 0 for identical clouds.
    """
    from geomloss import SamplesLoss

    _check_points(x, y)
    if not blur > 0 or not 0 < scaling < 1:
        raise ParameterError(f"need blur > 0 and scaling in (0, 1), got blur={blur}, scaling={scaling}")
    a = _weights(x_weights, x.shape[0], x, "x_weights")
    b = _weights(y_weights, y.shape[0], y, "y_weights")
    backend = "auto" if _keops_available() else "tensorized"
    loss = SamplesLoss("sinkhorn", p=2, blur=float(blur), scaling=float(scaling), backend=backend)
    return loss(a.contiguous(), x.contiguous(), b.contiguous(), y.contiguous())


def random_directions(n: int, dim: int, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """``n`` unit vectors (n, dim) drawn uniformly on the sphere."""
    v = torch.randn(n, dim, generator=generator, dtype=dtype, device=device)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def wasserstein_1d(x: Tensor, y: Tensor, x_weights: Tensor, y_weights: Tensor) -> Tensor:
    """Exact W2² between weighted 1-D samples, batched: x (P, N), y (P, M), weights (N,), (M,).

    W2² = ∫₀¹ (F⁻¹(t) - G⁻¹(t))² dt for the two empirical quantile functions, which are
    piecewise constant between the merged cumulative weights. Returns (P,).
    """
    xs, ix = torch.sort(x, dim=1)
    ys, iy = torch.sort(y, dim=1)
    cx = torch.cumsum(x_weights[ix], dim=1)
    cy = torch.cumsum(y_weights[iy], dim=1)
    cx = cx / cx[:, -1:]                  # exact 1 at the end despite rounding
    cy = cy / cy[:, -1:]
    t, _ = torch.sort(torch.cat([cx, cy], dim=1), dim=1)
    dt = torch.diff(t, dim=1, prepend=torch.zeros_like(t[:, :1]))
    mid = (t - 0.5 * dt).detach().contiguous()
    i = torch.searchsorted(cx.detach().contiguous(), mid).clamp_max(xs.shape[1] - 1)
    j = torch.searchsorted(cy.detach().contiguous(), mid).clamp_max(ys.shape[1] - 1)
    return (dt * (xs.gather(1, i) - ys.gather(1, j)) ** 2).sum(1)


def projected_wasserstein_loss(x: Tensor, y: Tensor, directions: Tensor, x_weights: Tensor | None = None,
                               y_weights: Tensor | None = None) -> Tensor:
    """Mean over ``directions`` (P, B) of the exact 1-D W2² of the projections of x (N, B) and
    y (M, B), times B/2 (the scale of :func:`sliced_wasserstein_loss`). Returns a scalar tensor."""
    _check_points(x, y)
    if directions.ndim != 2 or directions.shape[1] != x.shape[1] or directions.shape[0] < 1:
        raise ParameterError(f"directions must be (P, {x.shape[1]}) with P >= 1, got "
                             f"{tuple(directions.shape)}")
    a = _weights(x_weights, x.shape[0], x, "x_weights")
    b = _weights(y_weights, y.shape[0], y, "y_weights")
    d = directions.to(x)
    return 0.5 * x.shape[1] * wasserstein_1d(d @ x.T, d @ y.T, a, b).mean()


def marginal_directions(n_bands: int, metric: Tensor | None = None) -> Tensor:
    """Unit directions (2B - 1, B) along which the projections of compared points are the bands
    and the adjacent colours (band j minus band j+1) of the photometry.

    ``metric`` (B, B): the linear map the points went through (x_compared = x_mag @ metric, e.g.
    the whitening matrix); band j of x_mag is then x_compared @ metric⁻¹ e_j. Without it the
    points are magnitudes.
    """
    if n_bands < 1:
        raise ParameterError(f"need at least one band, got {n_bands}")
    eye = torch.eye(n_bands, dtype=torch.float64)
    raw = torch.cat([eye, eye[:-1] - eye[1:]])
    dirs = raw if metric is None else raw @ torch.linalg.inv(metric.detach().double().cpu()).T
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return dirs.to(torch.float32 if metric is None else metric.dtype)


def sliced_wasserstein_loss(x: Tensor, y: Tensor, n_projections: int = 256, x_weights: Tensor | None = None,
                            y_weights: Tensor | None = None, generator: torch.Generator | None = None
                            ) -> Tensor:
    """Sliced W2² between x (N, B) and y (M, B) over ``n_projections`` random directions, times B/2.

    The factor B makes it comparable with the Sinkhorn loss (≈ W2²/2): for two distributions
    that differ by a shift Δ, E over directions of (v·Δ)² is |Δ|²/B, so both equal |Δ|²/2.

    ``generator`` (on x's device) draws the directions; fresh directions each call make the
    loss an unbiased estimate of the sliced distance. Returns a scalar tensor.
    """
    _check_points(x, y)
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ParameterError(f"n_projections must be a positive integer, got {n_projections!r}")
    dirs = random_directions(n_projections, x.shape[1], generator, x.dtype, x.device)
    return projected_wasserstein_loss(x, y, dirs, x_weights, y_weights)


def whitening_matrix(y: Tensor) -> Tensor:
    """W (B, B) such that the rows of y (M, B) @ W have unit covariance: W = L^-T, C = L L^T.

    Distances between whitened magnitudes weigh every direction of the observed photometry
    (colours as much as brightness) by its spread in the catalog.
    """
    yd = y.detach().double()
    cov = torch.cov(yd.T).reshape(yd.shape[1], yd.shape[1])
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise ParameterError("the catalog's magnitudes have a singular covariance (a constant band, or bands "
                             "that are exact copies); whitening needs them to vary independently")
    eye = torch.eye(yd.shape[1], dtype=yd.dtype, device=yd.device)
    return torch.linalg.solve_triangular(chol, eye, upper=False).T.to(y.dtype)


def population_loss(kind: str, x: Tensor, y: Tensor, *, blur: float, scaling: float = 0.5,
                    n_projections: int = 256, x_weights: Tensor | None = None,
                    generator: torch.Generator | None = None, marginal_weight: float = 0.0,
                    marginal_dirs: Tensor | None = None) -> Tensor:
    """The loss ``kind`` (one of :data:`LOSSES`) between simulated x (weights α) and observed y.

    With ``marginal_weight`` a > 0 the result is (1 - a)·distance + a·(the 1-D W2² along
    ``marginal_dirs``, by default :func:`marginal_directions` of unmapped magnitudes): a share of
    the loss goes to matching every band's and colour's 1-D distribution, which a sharp feature
    such as a catalog's magnitude limit needs and random projections dilute.
    """
    if not 0 <= marginal_weight <= 1:
        raise ParameterError(f"marginal_weight must be in [0, 1], got {marginal_weight}")
    if kind == "sinkhorn":
        distance = sinkhorn_loss(x, y, blur, scaling, x_weights=x_weights)
    elif kind == "sliced":
        distance = sliced_wasserstein_loss(x, y, n_projections, x_weights=x_weights, generator=generator)
    else:
        raise ParameterError(f"loss must be one of {LOSSES}, got {kind!r}")
    if marginal_weight == 0:
        return distance
    dirs = marginal_directions(x.shape[1]) if marginal_dirs is None else marginal_dirs
    marginal = projected_wasserstein_loss(x, y, dirs, x_weights=x_weights)
    return (1 - marginal_weight) * distance + marginal_weight * marginal


__all__ = ["LOSSES", "BlurSchedule", "marginal_directions", "population_loss", "projected_wasserstein_loss",
           "random_directions", "sinkhorn_loss", "sliced_wasserstein_loss", "wasserstein_1d",
           "whitening_matrix"]
