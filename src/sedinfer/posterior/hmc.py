"""Batched Hamiltonian Monte Carlo in a whitened space: many galaxies' reference posteriors at once.

The box prior of :class:`sedinfer.priors.Prior` is a product of 1-D distributions with exact
CDFs F_i and inverse CDFs, so the map

    θ_i(u) = F_i⁻¹(Φ(u_i)),   u ~ N(0, I)  ⇒  θ ~ prior,

turns the posterior p(θ | f) ∝ L(f | θ) p(θ) into the unconstrained target
ln π(u) = ln N(u; 0, I) + ln L(f | θ(u)): the Jacobian of the map is exactly the prior density,
so the box and its edges disappear and prior-dominated directions are unit Gaussians.
Φ(u) is clamped to [ε, 1 − ε] with ε = 2⁻⁵³ (float64 resolution; |u| > 8.2, prior mass 2e-16
outside it): the map is exact inside, the likelihood is flat outside, so the bias is below float64
resolution while θ(u) and its gradient stay finite. The inverse CDFs of Uniform, LogUniform and
TruncatedNormal are torch expressions (``torch.special.ndtri`` for the latter), differentiable by
autograd.

:func:`run_hmc_batch` advances G galaxies × C chains with the leapfrog integrator, one
forward+backward call over all G·C rows per leapfrog step. Per galaxy: the step size is tuned
in warm-up by dual averaging (Hoffman & Gelman 2014, §3.2, target mean acceptance ``delta``); a
mass matrix (dense by default, as the SPS posteriors' degeneracies are correlations; or
diagonal) is set from the pooled chains' covariance at the end of two slow windows (iterations
15-40 % and 40-75 % of the warm-up; Stan's regularised estimate; step size only in the last
25 %); chains left behind in warm-up (mean ln π below the galaxy's best chain's by more than
D + 10 at the end of a window, or not moving) restart from the state of another chain, which
changes nothing after warm-up but keeps the mass matrix from mixing far-apart modes; the
number of leapfrog steps is drawn uniformly in [L/2, L] each iteration against periodic
trajectories. Divergent transitions (energy error >
1000 or non-finite) are rejected and counted. After warm-up the chains run in blocks; a galaxy
has converged when the kept chain (the first ``burn_fraction`` of the iterations, at least the
warm-up, discarded) is longer than ``factor`` integrated autocorrelation times in every
parameter (emcee's estimator, the C chains as walkers: the rule of
:func:`sedinfer.posterior.mcmc_batch.run_stretch_batch`) and the split-R̂ (Gelman et al. 2013)
is below ``rhat_max`` in every parameter; a converged galaxy leaves the batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError
from sedinfer.posterior.mcmc_batch import _tau, _thin
from sedinfer.priors import Prior

EPS_PHI = 2.0 ** -53  # clamp of Φ(u): float64 resolution near 1


def u_to_theta(prior: Prior, u: Tensor) -> Tensor:
    """Whitened u (..., D) to θ (..., D) inside the prior box, θ_i = F_i⁻¹(Φ(u_i)); differentiable."""
    return prior.icdf(torch.special.ndtr(u).clamp(EPS_PHI, 1.0 - EPS_PHI))


def theta_to_u(prior: Prior, theta: Tensor) -> Tensor:
    """Inverse of :func:`u_to_theta`: θ (..., D) in the box to u (..., D), |u| ≤ 8.2."""
    return torch.special.ndtri(prior.cdf(theta).clamp(EPS_PHI, 1.0 - EPS_PHI))


def velocity(p: Tensor, chol: Tensor) -> Tensor:
    """du/dt = M⁻¹ p (G, C, D) for momenta (G, C, D); the inverse mass matrix is M⁻¹ = L Lᵀ with
    ``chol`` = L (G, D, D) lower triangular."""
    return torch.einsum("gij,gcj->gci", chol, torch.einsum("gji,gcj->gci", chol, p))


def kinetic(p: Tensor, chol: Tensor) -> Tensor:
    """Kinetic energy ½ pᵀ M⁻¹ p (G, C) of momenta (G, C, D), M⁻¹ = L Lᵀ, L = ``chol`` (G, D, D)."""
    return 0.5 * torch.einsum("gji,gcj->gci", chol, p).square().sum(-1)


def draw_momenta(chol: Tensor, n_chains: int, gen: torch.Generator) -> Tensor:
    """Momenta p ~ N(0, M) (G, C, D), M = (L Lᵀ)⁻¹: p = L⁻ᵀ z with z ~ N(0, I)."""
    g, d, _ = chol.shape
    z = torch.randn(g, d, n_chains, generator=gen, dtype=chol.dtype)
    return torch.linalg.solve_triangular(chol.transpose(1, 2), z, upper=True).transpose(1, 2)


def leapfrog(u: Tensor, p: Tensor, grad: Tensor, eps: Tensor, chol: Tensor,
             target: Callable[[Tensor], tuple[Tensor, ...]]) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """One leapfrog step of positions ``u`` and momenta ``p`` (G, C, D); ``eps`` (G, 1, 1) step
    sizes, ``chol`` (G, D, D) Cholesky factor of the inverse mass matrix, ``grad`` (G, C, D)
    ∇ ln π at ``u``; ``target(u)`` returns (ln π (G, C), ∇ ln π (G, C, D), ...).
    Returns (u, p, target(u))."""
    p = p + 0.5 * eps * grad
    u = u + eps * velocity(p, chol)
    out = target(u)
    return u, p + 0.5 * eps * out[1], out


def dual_averaging(state: dict, accept: Tensor, delta: float, gamma: float = 0.05, t0: float = 10.0,
                   kappa: float = 0.75) -> Tensor:
    """Update the dual-averaging state (``t``, ``hbar``, ``mu``, ``log_eps_bar``, tensors (G,))
    with mean acceptances (G,); returns the next step sizes (G,) (Hoffman & Gelman 2014, eq. 6)."""
    t = state["t"] = state["t"] + 1
    w = 1.0 / (t + t0)
    state["hbar"] = (1 - w) * state["hbar"] + w * (delta - accept)
    log_eps = state["mu"] - math.sqrt(t) / gamma * state["hbar"]
    a = t ** -kappa
    state["log_eps_bar"] = a * log_eps + (1 - a) * state["log_eps_bar"]
    return log_eps.exp()


def new_dual_state(eps: Tensor) -> dict:
    """Dual-averaging state (per galaxy) restarted around step sizes ``eps`` (G,)."""
    return {"t": 0, "hbar": torch.zeros_like(eps), "mu": torch.log(10 * eps), "log_eps_bar": torch.log(eps)}


def split_rhat(chain: np.ndarray) -> np.ndarray:
    """Split-R̂ (D,) of a chain (T, C, D): each chain halved, R̂ = √(var⁺ / W) (Gelman et al. 2013)."""
    n = chain.shape[0] // 2
    if n < 2:
        return np.full(chain.shape[-1], np.nan)
    halves = np.concatenate([chain[:n], chain[-n:]], axis=1)            # (n, 2C, D)
    w = halves.var(axis=0, ddof=1).mean(axis=0)
    b = n * halves.mean(axis=0).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(((n - 1) / n * w + b / n) / w)


class WhitenedTarget:
    """ln π(u) = ln N(u; 0, I) + ln L(θ(u)) of a log posterior such as
    :class:`sedinfer.posterior.mcmc_batch.SPSBatchLogPosterior`: anything with ``prior`` (a
    :class:`Prior` over the D free parameters), ``torch_log_likelihood(θ (G, n, D)) -> (G, n)``
    (differentiable, -inf outside the support), ``select(rows)`` and ``joint`` (must be None)."""

    def __init__(self, log_post) -> None:
        if getattr(log_post, "joint", None) is not None:
            raise ParameterError("HMC supports joint=None only: the flux-limited prior is a piecewise-"
                                 "constant numpy histogram, not differentiable in torch; use the "
                                 "stretch sampler for models with a flux-limited inference prior")
        self.log_post, self.prior = log_post, log_post.prior

    def select(self, rows: list[int]) -> WhitenedTarget:
        return WhitenedTarget(self.log_post.select(rows))

    def __call__(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(ln π (G, C), ∇_u ln π (G, C, D), θ-space log posterior (G, C)) at u (G, C, D)."""
        with torch.enable_grad():
            u = u.detach().requires_grad_(True)
            theta = u_to_theta(self.prior, u)
            ll = self.log_post.torch_log_likelihood(theta)
            logp = ll - 0.5 * (u * u).sum(-1)
            (grad,) = torch.autograd.grad(torch.where(torch.isfinite(logp), logp, 0.0).sum(), u)
        with torch.no_grad():
            lp_theta = ll + self.prior.log_prob(theta)
        return logp.detach(), grad, lp_theta.detach()


def _mass_from_window(window: list[Tensor], good: Tensor, dense: bool) -> Tensor:
    """Cholesky factors (G, D, D) of the inverse mass matrices: per galaxy the covariance (or, if
    not ``dense``, the variances) of the window's positions (T × (G, C, D)) pooled over iterations
    and the ``good`` chains (G, C), shrunk towards 1e-3 I as in Stan."""
    x = torch.stack(window)                                            # (T, G, C, D)
    w = good.to(x.dtype)[None, :, :, None].expand(x.shape[0], -1, -1, 1)
    n = w.sum((0, 2))                                                  # (G, 1)
    r = (x - (w * x).sum((0, 2))[None, :, None] / n[None, :, None]) * w   # (T, G, C, D), 0 if not good
    cov = torch.einsum("tgci,tgcj->gij", r, r) / (n[:, :, None] - 1)    # (G, D, D)
    cov = cov if dense else torch.diag_embed(torch.diagonal(cov, dim1=1, dim2=2))
    eye = torch.eye(x.shape[-1], dtype=x.dtype)
    shrink = (n / (n + 5.0))[:, :, None]
    return torch.linalg.cholesky(shrink * cov + 1e-3 * (1 - shrink) * eye)


def stray_chains(lp_history: list[Tensor], gap: float) -> Tensor:
    """(G, C) mask of warm-up chains left behind: mean ln π over the last half of ``lp_history``
    (T × (G, C)) lower than the galaxy's best chain's by more than ``gap``, or never moved."""
    lp = torch.stack(lp_history[len(lp_history) // 2:])                # (T', G, C)
    mean = lp.mean(0)
    return (mean < mean.max(1, keepdim=True).values - gap) | (lp.std(0) == 0)


def _restart(stray: Tensor, u: Tensor, logp: Tensor, grad: Tensor, lpt: Tensor,
             gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Warm-up only: move the ``stray`` chains (G, C) onto the current states of randomly chosen
    other chains of their galaxy (their momenta, drawn afresh, separate them)."""
    if not stray.any():
        return u, logp, grad, lpt
    src = torch.multinomial((~stray).to(torch.float64), stray.shape[1], replacement=True, generator=gen)
    src = torch.where(stray, src, torch.arange(stray.shape[1]).expand_as(src))      # (G, C)

    def take(t: Tensor) -> Tensor:
        return torch.take_along_dim(t, src.view(*src.shape, *[1] * (t.ndim - 2)), dim=1)

    return take(u), take(logp), take(grad), take(lpt)


def run_hmc_batch(log_post, theta0: np.ndarray, *, n_leapfrog: int = 32, warmup: int = 500,
                  block: int = 250, max_iterations: int = 5000, delta: float = 0.8,
                  step_size: float = 0.1, factor: float = 50.0, burn_fraction: float = 0.25,
                  rhat_max: float = 1.01, dense: bool = True, seed: int = 0,
                  on_done: Callable[[int, dict], None] | None = None) -> list[dict]:
    """HMC chains of G galaxies started at ``theta0`` (G, C, D) (inside the prior box) until each
    converges or ``max_iterations`` (warm-up included). ``log_post`` as in :class:`WhitenedTarget`.
    Returns per galaxy (and passes to ``on_done(g, result)`` as it ends) the keys of
    :func:`~sedinfer.posterior.mcmc_batch.run_stretch_batch` with iterations as ``steps``:
    ``samples`` (K, D) θ, ``log_prob`` (K,), ``autocorr_steps`` (D,), ``steps``, ``burn``,
    ``acceptance`` (mean acceptance probability after warm-up), ``converged``, ``n_evaluations``
    (gradient evaluations), ``seconds``; plus ``rhat`` (D,), ``divergences`` (after warm-up),
    ``step_size`` and ``inverse_mass`` (D, D) (u-space covariance of the warm-up; diagonal
    unless ``dense``)."""
    x0 = torch.as_tensor(np.asarray(theta0, dtype=np.float64))
    if x0.ndim != 3 or x0.shape[1] < 2:
        raise ParameterError(f"theta0 must have shape (galaxies, chains >= 2, parameters), got "
                             f"{tuple(x0.shape)}")
    if not (0 < warmup < max_iterations and block > 0 and n_leapfrog >= 1):
        raise ParameterError(f"need 0 < warmup < max_iterations, block > 0, n_leapfrog >= 1; got "
                             f"{warmup}, {max_iterations}, {block}, {n_leapfrog}")
    n_gal, n_ch, n_dim = x0.shape
    gen = torch.Generator().manual_seed(seed)
    target = WhitenedTarget(log_post)
    full = target
    u = theta_to_u(target.prior, x0)
    logp, grad, lpt = target(u)
    if not torch.isfinite(logp).all():
        raise ParameterError("some starting positions have log posterior -inf (outside the support)")
    eps = torch.full((n_gal,), float(step_size), dtype=torch.float64)
    chol = torch.eye(n_dim, dtype=torch.float64).repeat(n_gal, 1, 1)
    dual = new_dual_state(eps)
    windows = {int(0.4 * warmup), int(0.75 * warmup)}          # mass-matrix updates; then step size only
    win_start = int(0.15 * warmup)
    active = list(range(n_gal))
    chain_x: list[list[np.ndarray]] = [[] for _ in range(n_gal)]
    chain_l: list[list[np.ndarray]] = [[] for _ in range(n_gal)]
    win: list[Tensor] = []
    lp_hist: list[Tensor] = []
    gap = float(n_dim) + 10.0        # ln π of one chain fluctuates by ≈ √(D/2): D + 10 is far below
    acc_sum, n_div = np.zeros(n_gal), np.zeros(n_gal, dtype=int)
    n_grad, seconds = np.zeros(n_gal, dtype=np.int64), np.zeros(n_gal)
    results: list[dict | None] = [None] * n_gal
    it = 0
    while active:
        t_start = time.perf_counter()
        n_it = warmup if it == 0 else block
        for _ in range(n_it):
            idx = torch.as_tensor(active)
            e, mi = eps[idx].view(-1, 1, 1), chol[idx]
            p = draw_momenta(mi, n_ch, gen)
            h0 = kinetic(p, mi) - logp
            n_steps = int(torch.randint(max(1, n_leapfrog // 2), n_leapfrog + 1, (1,), generator=gen))
            un, pn, (ln, gn, ltn) = u, p, (logp, grad, lpt)
            bad = torch.zeros(logp.shape, dtype=torch.bool)
            for _ in range(n_steps):
                un, pn, (ln, gn, ltn) = leapfrog(un, pn, gn, e, mi, target)
                bad |= ~(torch.isfinite(ln) & torch.isfinite(gn).all(-1) & torch.isfinite(un).all(-1))
                un = torch.where(bad[..., None], u, un)       # a diverged row restarts harmlessly
            n_grad[active] += n_ch * n_steps
            dh = kinetic(pn, mi) - ln - h0
            div = bad | ~torch.isfinite(dh) | (dh > 1000.0)
            a = torch.where(div, 0.0, torch.exp(-dh.clamp_min(0.0)))
            ok = torch.rand(a.shape, generator=gen, dtype=torch.float64) < a
            u = torch.where(ok[..., None], un, u)
            logp, grad, lpt = (torch.where(ok, ln, logp), torch.where(ok[..., None], gn, grad),
                               torch.where(ok, ltn, lpt))
            it += 1
            if it <= warmup:
                eps = dual_averaging(dual, a.mean(1), delta)          # no galaxy leaves in warm-up
                lp_hist.append(logp.clone())
                if it > win_start:
                    win.append(u.clone())
                if it == win_start or it in windows:
                    stray = stray_chains(lp_hist, gap)
                    lp_hist = []
                    if it in windows:
                        chol, win = _mass_from_window(win, ~stray, dense), []
                        eps = torch.exp(dual["log_eps_bar"])
                        dual = new_dual_state(eps)
                    u, logp, grad, lpt = _restart(stray, u, logp, grad, lpt, gen)
                if it == warmup:
                    eps = torch.exp(dual["log_eps_bar"])
                continue
            acc_sum[active] += a.mean(1).numpy()
            n_div[active] += div.sum(1).numpy()
            theta = u_to_theta(target.prior, u)
            for j, g in enumerate(active):
                chain_x[g].append(theta[j].numpy())
                chain_l[g].append(lpt[j].numpy())
        seconds[active] += (time.perf_counter() - t_start) / len(active)
        if it <= warmup:
            continue
        burn = max(warmup, int(burn_fraction * it))
        still = []
        for j, g in enumerate(active):
            chain = np.stack(chain_x[g])                                   # (T, C, D) after warm-up
            kept = chain[burn - warmup:]
            tau, rhat = _tau(kept, 1), split_rhat(kept)
            done = bool(np.isfinite(tau).all() and it - burn > factor * tau.max()
                        and np.isfinite(rhat).all() and rhat.max() < rhat_max)
            if not done and it + block <= max_iterations:
                still.append(j)
                continue
            thin = _thin(float(tau.max()) if np.isfinite(tau).all() else math.nan, 1)
            lps = np.stack(chain_l[g])[burn - warmup:]
            results[g] = {"samples": kept[::thin].reshape(-1, n_dim), "log_prob": lps[::thin].reshape(-1),
                          "autocorr_steps": tau, "steps": it, "burn": burn,
                          "acceptance": float(acc_sum[g] / (it - warmup)), "converged": done,
                          "n_evaluations": int(n_grad[g] + n_ch), "seconds": float(seconds[g]),
                          "rhat": rhat, "divergences": int(n_div[g]), "step_size": float(eps[g]),
                          "inverse_mass": (chol[g] @ chol[g].T).numpy()}
            chain_x[g], chain_l[g] = [], []
            if on_done is not None:
                on_done(g, results[g])
        if len(still) < len(active):
            keep = torch.as_tensor(still, dtype=torch.long)
            u, logp, grad, lpt = u[keep], logp[keep], grad[keep], lpt[keep]
            active = [active[j] for j in still]
            if active:
                target = full.select(active)
    return results  # type: ignore[return-value]


__all__ = ["run_hmc_batch", "u_to_theta", "theta_to_u", "split_rhat", "WhitenedTarget", "leapfrog"]
