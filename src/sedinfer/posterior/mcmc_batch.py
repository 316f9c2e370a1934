"""Many galaxies' MCMC at once: independent affine-invariant ensembles advanced together.

emcee (Foreman-Mackey et al. 2013) runs one ensemble per sampler, so with the SPS model one
step of 64 walkers is two forward-model calls of 32 rows, and the cost per row is mostly the
per-call overhead (on one core: ≈ 400 µs per evaluation at 64 rows against ≈ 60 µs at 1024,
measured with ``SPSModel(nebular=True).double()``). :func:`run_stretch_batch` advances the
ensembles of G galaxies with the same stretch move (Goodman & Weare 2010, eq. 7, with the
two-halves update that emcee's vectorised ``StretchMove`` uses), so each half-step is one call
of G·W/2 rows. The ensembles never mix: every proposal of galaxy g uses walkers of galaxy g.

Convergence is checked every ``block`` steps per galaxy with emcee's integrated
autocorrelation estimator (:func:`emcee.autocorr.integrated_time`) and the package's rule,
:meth:`sedinfer.posterior.mcmc.McmcResult.converged` (kept chain > ``factor`` τ in every
parameter, the first ``burn_fraction`` of the steps discarded); a converged galaxy leaves the
batch and its chain is final.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError

#: log posterior of a batch: positions (G, n, D) -> (G, n), -inf outside the support
BatchLogProb = Callable[[np.ndarray], np.ndarray]


def stretch_half_steps(x: np.ndarray, lp: np.ndarray, log_prob: BatchLogProb, rng: np.random.Generator,
                       a: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stretch-move step of G independent ensembles of W walkers, (G, W, D) positions and
    (G, W) log posteriors; returns the new positions, log posteriors and (G, W) accepted flags.
    Each half of the walkers moves with partners drawn from the other half of its own ensemble."""
    g, w, d = x.shape
    x, lp = x.copy(), lp.copy()
    accepted = np.zeros((g, w), dtype=bool)
    halves = (np.arange(0, w // 2), np.arange(w // 2, w))
    for k in (0, 1):
        move, other = halves[k], halves[1 - k]
        partner = other[rng.integers(0, len(other), size=(g, len(move)))]
        c = np.take_along_axis(x, partner[..., None], axis=1)                  # (G, m, D)
        z = ((a - 1.0) * rng.random((g, len(move))) + 1.0) ** 2 / a             # p(z) ∝ 1/√z on [1/a, a]
        y = c + z[..., None] * (x[:, move] - c)
        lp_y = log_prob(y)
        with np.errstate(invalid="ignore"):
            log_ratio = (d - 1) * np.log(z) + lp_y - lp[:, move]
        ok = np.log(rng.random((g, len(move)))) < np.where(np.isfinite(lp_y), log_ratio, -np.inf)
        x[:, move] = np.where(ok[..., None], y, x[:, move])
        lp[:, move] = np.where(ok, lp_y, lp[:, move])
        accepted[:, move] = ok
    return x, lp, accepted


def _tau(chain: np.ndarray, store_every: int) -> np.ndarray:
    """Integrated autocorrelation time (D,) in steps of a stored chain (T, W, D); NaN if unknown."""
    from emcee.autocorr import integrated_time

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            return store_every * np.asarray(integrated_time(chain, tol=0, quiet=True), dtype=np.float64)
        except Exception:  # noqa: BLE001 - degenerate (e.g. constant) chains: not converged yet
            return np.full(chain.shape[-1], np.nan)


def run_stretch_batch(log_prob: BatchLogProb, p0: np.ndarray, *, block: int = 5000, max_steps: int = 200_000,
                      store_every: int = 10, factor: float = 50.0, burn_fraction: float = 0.25,
                      a: float = 2.0, seed: int = 0,
                      on_done: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Run the ensembles started at ``p0`` (G, W, D) until each meets the convergence rule or
    ``max_steps``. Returns per galaxy a dict: ``samples`` (K, D) (burn discarded, thinned by
    ≈ τ/2), ``log_prob`` (K,), ``autocorr_steps`` (D,), ``steps``, ``burn``, ``acceptance``,
    ``converged``, ``n_evaluations``, ``seconds`` (the batch's wall time shared equally among
    the galaxies running at each step). ``on_done(g, result)`` is called as each galaxy finishes."""
    p0 = np.asarray(p0, dtype=np.float64)
    if p0.ndim != 3:
        raise ParameterError(f"p0 must have shape (galaxies, walkers, parameters), got {p0.shape}")
    n_gal, n_walk, n_dim = p0.shape
    if n_walk < 2 * n_dim or n_walk % 2:
        raise ParameterError(f"need an even number of walkers >= {2 * n_dim} for {n_dim} parameters, "
                             f"got {n_walk}")
    if block < store_every or max_steps < block:
        raise ParameterError(f"need store_every <= block <= max_steps, got {store_every}, {block}, "
                             f"{max_steps}")
    block -= block % store_every
    rng = np.random.default_rng(seed)
    x, lp = p0.copy(), log_prob(p0)
    if not np.isfinite(lp).all():
        raise ParameterError("some starting positions have log posterior -inf (outside the prior)")
    active = list(range(n_gal))
    chains: list[list[np.ndarray]] = [[] for _ in range(n_gal)]
    logps: list[list[np.ndarray]] = [[] for _ in range(n_gal)]
    n_acc = np.zeros(n_gal)
    seconds = np.zeros(n_gal)
    results: list[dict | None] = [None] * n_gal
    steps = 0
    while active:
        t0 = time.perf_counter()
        xa, la = x[active], lp[active]
        stored_x = np.empty((block // store_every, len(active), n_walk, n_dim))
        stored_l = np.empty((block // store_every, len(active), n_walk))
        sub = _subset(log_prob, active, n_gal)
        for s in range(block):
            xa, la, acc = stretch_half_steps(xa, la, sub, rng, a)
            n_acc[active] += acc.sum(1)
            if (s + 1) % store_every == 0:
                stored_x[s // store_every], stored_l[s // store_every] = xa, la
        x[active], lp[active] = xa, la
        steps += block
        seconds[active] += (time.perf_counter() - t0) / len(active)
        burn = int(burn_fraction * steps) // store_every
        still = []
        for j, g in enumerate(active):
            chains[g].append(stored_x[:, j].copy())
            logps[g].append(stored_l[:, j].copy())
            chain = np.concatenate(chains[g])
            tau = _tau(chain[burn:], store_every)
            done = bool(np.isfinite(tau).all() and steps - burn * store_every > factor * tau.max())
            if not (done or steps + block > max_steps):
                still.append(g)
                continue
            thin = _thin(float(tau.max()) if np.isfinite(tau).all() else math.nan, store_every)
            lps = np.concatenate(logps[g])
            results[g] = {"samples": chain[burn::thin].reshape(-1, n_dim),
                          "log_prob": lps[burn::thin].reshape(-1),
                          "autocorr_steps": tau, "steps": steps, "burn": burn * store_every,
                          "acceptance": float(n_acc[g] / (steps * n_walk)), "converged": done,
                          "n_evaluations": n_walk * (steps + 1), "seconds": float(seconds[g])}
            chains[g], logps[g] = [], []
            if on_done is not None:
                on_done(g, results[g])
        active = still
    return results  # type: ignore[return-value]


def _thin(tau_max: float, store_every: int) -> int:
    """Thinning (in stored steps) that keeps about two samples per autocorrelation time."""
    return max(1, int(0.5 * tau_max / store_every)) if math.isfinite(tau_max) else 1


def _subset(log_prob: BatchLogProb, rows: Sequence[int], n_gal: int) -> BatchLogProb:
    """``log_prob`` restricted to the galaxies ``rows`` (the batch shrinks as galaxies converge)."""
    if len(rows) == n_gal:
        return log_prob
    if not hasattr(log_prob, "select"):
        raise ParameterError("a log_prob whose batch can shrink must have a select(rows) method")
    return log_prob.select(list(rows))


class SPSBatchLogPosterior:
    """Log posterior of G galaxies' free parameters under one forward model: positions
    (G, n, D_free) -> (G, n). ``flux``, ``flux_err`` (G, B) in ``units`` (NaN skips a band);
    ``fixed`` maps parameter names to (G,) values (e.g. the spectroscopic redshifts); the prior is
    ``model.prior`` on the free parameters, times ``joint.log_prob(z, log_mass)`` if given (a
    :class:`sedinfer.posterior.flux_limited.FluxLimitedPrior`)."""

    def __init__(self, model, filters, flux: np.ndarray, flux_err: np.ndarray,
                 fixed: Mapping[str, Sequence[float]], units: str = "nmgy", joint=None) -> None:
        self.model, self.filters, self.units, self.joint = model, filters, units, joint
        self.flux = np.asarray(flux, dtype=np.float64)
        self.err = np.asarray(flux_err, dtype=np.float64)
        self.fixed = {k: np.asarray(v, dtype=np.float64) for k, v in fixed.items()}
        unknown = set(self.fixed) - set(model.param_names)
        if unknown:
            raise ParameterError(f"fixed parameter(s) {sorted(unknown)} are not model parameters "
                                 f"({', '.join(model.param_names)})")
        self.free = tuple(n for n in model.param_names if n not in self.fixed)
        self.free_idx = [model.param_names.index(n) for n in self.free]
        self.prior = model.prior.subset(self.free)
        self.lo = np.array([model.low[i] for i in self.free_idx], dtype=np.float64)
        self.hi = np.array([model.high[i] for i in self.free_idx], dtype=np.float64)
        g = len(self.flux)
        self.base = np.zeros((g, len(model.param_names)))
        for name, values in self.fixed.items():
            self.base[:, model.param_names.index(name)] = values

    def select(self, rows: list[int]) -> SPSBatchLogPosterior:
        """The same posterior for the galaxies ``rows`` only."""
        return SPSBatchLogPosterior(self.model, self.filters, self.flux[rows], self.err[rows],
                                    {k: v[rows] for k, v in self.fixed.items()}, self.units, self.joint)

    def _joint(self, free: np.ndarray, rows: np.ndarray) -> np.ndarray:
        zname, mname = "redshift", "log_mass"
        z = free[:, self.free.index(zname)] if zname in self.free else self.fixed[zname][rows]
        m = free[:, self.free.index(mname)] if mname in self.free else self.fixed[mname][rows]
        return self.joint.log_prob(z, m)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        g, n, d = x.shape
        free = x.reshape(g * n, d)
        rows = np.repeat(np.arange(g), n)
        with torch.no_grad():
            lp = self.prior.log_prob(torch.as_tensor(free)).double().numpy()
        if self.joint is not None:
            lp = lp + self._joint(free, rows)
        ok = np.isfinite(lp) & ((free >= self.lo) & (free <= self.hi)).all(-1)
        out = np.full(g * n, -np.inf)
        if ok.any():
            with torch.no_grad():
                ll = self._log_likelihood_rows(torch.as_tensor(free[ok]), rows[ok])
            out[ok] = lp[ok] + ll.double().cpu().numpy()
        return out.reshape(g, n)

    def _log_likelihood_rows(self, free: Tensor, rows: np.ndarray) -> Tensor:
        """Gaussian ln L (N,) of free parameters (N, D_free) of galaxies ``rows`` (N,), all inside
        the model's box; differentiable in ``free`` unless under ``torch.no_grad``."""
        dev, dt = self.model.device, self.model.dtype
        base = torch.as_tensor(self.base[rows], dtype=dt, device=dev)
        theta = base.index_copy(1, torch.as_tensor(self.free_idx, device=dev), free.to(dev, dt))
        pred = self.model.photometry(theta, self.filters, units=self.units)
        f, s = self.flux[rows], self.err[rows]
        use = np.isfinite(f) & np.isfinite(s)
        f = torch.as_tensor(np.where(use, f, 0.0), dtype=dt, device=dev)
        inv = torch.as_tensor(np.where(use, 1.0 / np.where(use, s, 1.0), 0.0), dtype=dt, device=dev)
        return -0.5 * (((pred - f) * inv) ** 2).sum(-1)

    def torch_log_likelihood(self, x: Tensor) -> Tensor:
        """Gaussian ln L (G, n) of free parameters ``x`` (G, n, D_free) as a differentiable tensor
        (autograd flows through ``model.photometry``); -inf outside the model's box. The prior
        (and ``joint``) are not included: :meth:`torch_log_prob` adds the box prior."""
        g, n, d = x.shape
        flat = x.reshape(g * n, d)
        lo = torch.as_tensor(self.lo, dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(self.hi, dtype=x.dtype, device=x.device)
        ok = (torch.isfinite(flat) & (flat >= lo) & (flat <= hi)).all(-1)
        safe = torch.where(ok[:, None], flat, 0.5 * (lo + hi))     # finite rows everywhere
        ll = self._log_likelihood_rows(safe, np.repeat(np.arange(g), n)).to(x.dtype)
        return torch.where(ok, ll, -math.inf).reshape(g, n)

    def torch_log_prob(self, x: Tensor) -> Tensor:
        """The log posterior of :meth:`__call__` as a differentiable tensor, (G, n, D_free) -> (G, n);
        needs ``joint`` None (the flux-limited histogram prior is piecewise constant, in numpy)."""
        if self.joint is not None:
            raise ParameterError("torch_log_prob supports joint=None only: the flux-limited prior is a "
                                 "numpy histogram, not differentiable in torch")
        return self.prior.log_prob(x) + self.torch_log_likelihood(x)

    def start(self, n_walkers: int, n_init: int = 4096, seed: int = 0) -> np.ndarray:
        """Over-dispersed starts (G, W, D): per galaxy the ``n_walkers`` best of ``n_init`` prior
        draws (z and log M from ``joint`` when given)."""
        gen = torch.Generator().manual_seed(seed)
        g = len(self.flux)
        draws = self.prior.sample((g * n_init,), generator=gen, dtype=torch.float64).numpy()
        if self.joint is not None:
            zj, mj = self.joint.sample(g * n_init, gen)
            for name, v in (("redshift", zj), ("log_mass", mj)):
                if name in self.free:
                    draws[:, self.free.index(name)] = v.numpy()
        draws = draws.reshape(g, n_init, -1)
        best = np.argsort(-self(draws), axis=1)[:, :n_walkers]
        return np.take_along_axis(draws, best[..., None], axis=1)


__all__ = ["run_stretch_batch", "stretch_half_steps", "SPSBatchLogPosterior"]
