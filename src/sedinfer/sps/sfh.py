"""Star-formation histories (SFHs) as mass formed per stellar-age bin.

Every SFH is expressed through its cumulative function F(t): the fraction of the (non-burst)
stellar mass formed within the last ``t`` Gyr of lookback time, with F(0) = 0 and F = 1 at
the start of star formation, which is never earlier than the Big Bang at the galaxy's
redshift (``t_age``). The mass formed in an age bin [t_a, t_b] is F(t_b) - F(t_a), exact
for every family, and bursts are placed by linear interpolation in log age between the
two neighbouring bin centres so that the spectrum is differentiable in ``t_burst``.

Families (parameter names in brackets):

* ``nmf``: PopSED eq. 1, four NMF bases stretched to ``t_age`` with Dirichlet weights
  (``kappa1..3`` through stick breaking) plus a burst (``f_burst``, ``t_burst``);
* ``delayed`` / ``exponential`` / ``constant`` (``age``, ``tau``): SFR ∝ s e^(-s/τ),
  e^(-s/τ), 1, with s the time since the start ``min(age, t_age)``;
* ``burst``: a single burst (``t_burst``); any parametric family + ``"+burst"``;
* ``binned``: prospector-α-like piecewise-constant SFR in 7 lookback bins (0–30 Myr,
  30–100 Myr, four log-spaced bins up to 0.85 t_age, and 0.85 t_age–t_age) with a flat
  Dirichlet prior on the mass fractions (``kappa1..6``).

All kernels run in float64: the SFH weights are small (N, A) tensors and float32 loses
accuracy in the closed-form cumulative integrals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import torch

from sedinfer.priors import kappa_to_simplex
from sedinfer.units import YR_PER_GYR

AGE_STEP_DEX = 0.1
FIRST_LOG_AGE_YR = 6.0
N_BINNED = 7


def age_bins(age_universe_gyr: float) -> tuple[np.ndarray, np.ndarray]:
    """Stellar-age bins: centres at log10(t/yr) = 6.0, 6.1, ... up to the age of the Universe,
    edges at the mid-points with the first at 0 and the last at ``age_universe_gyr``.

    Returns ``(centres_yr (A,), edges_yr (A+1,))``.
    """
    top = np.log10(age_universe_gyr) + 9.0
    logc = np.arange(FIRST_LOG_AGE_YR, top, AGE_STEP_DEX)
    edges = 10 ** np.concatenate([[0.0], logc[:-1] + AGE_STEP_DEX / 2, [top]])
    edges[0] = 0.0
    return 10**logc, edges


def _clamp01(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


# --- parametric families: G(s) = mass formed during the first s Gyr after the start --------
def _g_delayed(s: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    x = s / tau
    # 1 - (1 + x) e^-x, written to stay accurate for small x
    return tau**2 * torch.where(x < 1e-3, x**2 / 2 - x**3 / 3, -torch.expm1(-x) - x * torch.exp(-x))


def _g_exponential(s: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    return -tau * torch.expm1(-s / tau)


def _g_constant(s: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    return s


_PARAMETRIC = {"delayed": (_g_delayed, ("age", "tau")),
               "exponential": (_g_exponential, ("age", "tau")),
               "constant": (_g_constant, ("age",))}


@lru_cache(maxsize=1)
def nmf_bases() -> tuple[np.ndarray, np.ndarray]:
    """The project's four NMF SFH bases on normalised lookback x = t/t_age.

    Returns ``(x (X,), cumulative (4, X))`` with cumulative[i, -1] = 1 (see docs/nmf_bases.md).
    """
    path = resources.files("sedinfer") / "data" / "nmf_sfh_bases.csv"
    table = _read_csv(path)
    x, dens = table[:, 0], table[:, 1:].T
    seg = 0.5 * (dens[:, 1:] + dens[:, :-1]) * np.diff(x)
    cum = np.concatenate([np.zeros((4, 1)), np.cumsum(seg, axis=1)], axis=1)
    return x, cum / cum[:, -1:]


def _read_csv(path) -> np.ndarray:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if lines[0][0] not in "0123456789-.":
        lines = lines[1:]
    return np.array([[float(v) for v in ln.split(",")] for ln in lines])


def _interp_mixture(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Each galaxy's mixture Σ_k β_k f_k of curves fp (K, X) tabulated on sorted xp (X,), linearly
    interpolated at x (N, T), with weights β (N, K); returns (N, T). Interpolation is linear in the
    curves, so the K curves are interpolated first and mixed after (never an (N, X) array)."""
    return torch.einsum("nk,knt->nt", beta, _interp_curves(x, xp, fp))


def _interp_curves(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """The K curves fp (K, X) on sorted xp (X,), linearly interpolated at x (N, T): (K, N, T)."""
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, len(xp) - 1)
    return torch.lerp(fp[:, i - 1], fp[:, i], (x - xp[i - 1]) / (xp[i] - xp[i - 1]))


def _interp_mixture_runs(x: torch.Tensor, key: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor,
                         beta: torch.Tensor) -> torch.Tensor:
    """:func:`_interp_mixture` for rows of x that are equal within each run of equal ``key`` (N,).

    Posterior draws of one galaxy come in a run with one redshift, so they share the lookback
    grid: each run interpolates the curves once and mixes them with one (n, K) @ (K, T) product.
    Falls back to the general kernel when runs are short (on average under 4 rows)."""
    _, counts = torch.unique_consecutive(key, return_counts=True)
    if 4 * counts.numel() > key.numel():
        return _interp_mixture(x, xp, fp, beta)
    starts = torch.cumsum(counts, 0) - counts
    curves = _interp_curves(x[starts], xp, fp)                                 # (K, M, T)
    parts = [b @ curves[:, m] for m, b in enumerate(torch.split(beta, counts.tolist()))]
    return torch.cat(parts)


def burst_weights(t_burst_gyr: torch.Tensor, centres_yr: np.ndarray) -> torch.Tensor:
    """Unit mass split between the two age bins whose centres bracket ``t_burst`` (linear in
    log age; all in the first bin below 1 Myr). (N,) -> (N, A)."""
    logc = torch.as_tensor(np.log10(centres_yr), dtype=torch.float64, device=t_burst_gyr.device)
    u = ((torch.log10(t_burst_gyr * YR_PER_GYR) - logc[0]) / AGE_STEP_DEX).clamp(0, len(logc) - 1)
    i0 = u.floor().clamp(max=len(logc) - 2)
    frac = u - i0
    w = torch.zeros(t_burst_gyr.shape + (len(logc),), dtype=torch.float64, device=t_burst_gyr.device)
    w = w.scatter(-1, i0.long().unsqueeze(-1), (1 - frac).unsqueeze(-1))
    return w.scatter_add(-1, i0.long().unsqueeze(-1) + 1, frac.unsqueeze(-1))


@dataclass(frozen=True)
class SFH:
    """A star-formation-history family. ``kind`` is ``nmf``, ``delayed``, ``exponential``,
    ``constant``, ``burst``, ``binned``, or a parametric family with ``+burst``."""

    kind: str = "nmf"

    @property
    def base(self) -> str:
        return self.kind.removesuffix("+burst")

    @property
    def has_burst(self) -> bool:
        return self.kind in ("nmf", "burst") or self.kind.endswith("+burst")

    @property
    def param_names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = ()
        if self.base == "nmf":
            names = ("kappa1", "kappa2", "kappa3")
        elif self.base == "binned":
            names = tuple(f"kappa{i}" for i in range(1, N_BINNED))
        elif self.base in _PARAMETRIC:
            names = _PARAMETRIC[self.base][1]
        return names + (("f_burst", "t_burst") if self.has_burst and self.base != "burst"
                        else ("t_burst",) if self.base == "burst" else ())

    def validate(self) -> None:
        if self.base not in (*_PARAMETRIC, "nmf", "binned", "burst"):
            raise ValueError(f"unknown sfh {self.kind!r}; expected one of 'nmf', 'delayed', "
                             "'exponential', 'constant', 'burst', 'binned', or '<parametric>+burst'")
        if self.kind in ("nmf+burst", "binned+burst", "burst+burst"):
            raise ValueError(f"sfh {self.kind!r} is not supported ('nmf' already has a burst)")

    # ------------------------------------------------------------------------------------
    def smooth_cumulative(self, p: dict[str, torch.Tensor], t_gyr: torch.Tensor,
                          t_age_gyr: torch.Tensor) -> torch.Tensor:
        """F(t): fraction of the non-burst mass formed within lookback t. t (N, T) -> (N, T)."""
        t_age = t_age_gyr.unsqueeze(-1)
        if self.base == "nmf":
            x, cum = nmf_bases()
            xp = torch.as_tensor(x, dtype=torch.float64, device=t_gyr.device).contiguous()
            fp = torch.as_tensor(cum, dtype=torch.float64, device=t_gyr.device)
            kappa = torch.stack([p["kappa1"], p["kappa2"], p["kappa3"]], -1)
            beta = kappa_to_simplex(kappa.to(torch.float64))
            x = _clamp01(t_gyr / t_age)
            if t_gyr.ndim == 2 and t_gyr.shape[0] > 1 and t_gyr.stride(0) == 0:   # one grid for every row
                return _interp_mixture_runs(x, t_age_gyr, xp, fp, beta)
            return _interp_mixture(x, xp, fp, beta)
        if self.base == "binned":
            frac = kappa_to_simplex(torch.stack([p[n] for n in self.param_names[:N_BINNED - 1]], -1)
                                    .to(torch.float64))
            edges = binned_edges_gyr(t_age_gyr)
            within = _clamp01((t_gyr.unsqueeze(-1) - edges[..., None, :-1])
                              / (edges[..., None, 1:] - edges[..., None, :-1]))
            return (within * frac.unsqueeze(-2)).sum(-1)
        if self.base == "burst":
            return torch.zeros_like(t_gyr)
        g, _ = _PARAMETRIC[self.base]
        tau = p["tau"].unsqueeze(-1) if "tau" in p else None
        start = torch.minimum(p["age"].unsqueeze(-1), t_age)
        total = g(start, tau)
        return (total - g(start - torch.minimum(t_gyr, start), tau)) / total

    def _burst(self, p: dict[str, torch.Tensor], t_age_gyr: torch.Tensor):
        f = p["f_burst"] if self.base != "burst" else torch.ones_like(t_age_gyr)
        return f, torch.minimum(p["t_burst"], t_age_gyr)

    def bin_weights(self, p: dict[str, torch.Tensor], t_age_gyr: torch.Tensor,
                    centres_yr: np.ndarray, edges_yr: np.ndarray) -> torch.Tensor:
        """Fraction of the total mass formed in each age bin, (N, A), summing to 1."""
        edges = torch.as_tensor(edges_yr / YR_PER_GYR, dtype=torch.float64, device=t_age_gyr.device)
        cum = self.smooth_cumulative(p, edges.expand(t_age_gyr.shape + edges.shape), t_age_gyr)
        w = cum[..., 1:] - cum[..., :-1]
        if self.has_burst:
            f, tb = self._burst(p, t_age_gyr)
            w = (1 - f).unsqueeze(-1) * w + f.unsqueeze(-1) * burst_weights(tb, centres_yr)
        return w

    def mass_formed_within(self, p: dict[str, torch.Tensor], t_gyr: float,
                           t_age_gyr: torch.Tensor) -> torch.Tensor:
        """Fraction of the total mass formed within the last ``t_gyr`` Gyr, (N,)."""
        t = torch.full_like(t_age_gyr, t_gyr).unsqueeze(-1)
        frac = self.smooth_cumulative(p, t, t_age_gyr)[..., 0]
        if self.has_burst:
            f, tb = self._burst(p, t_age_gyr)
            frac = (1 - f) * frac + f * (tb <= t_gyr).to(frac.dtype)
        return frac


def binned_edges_gyr(t_age_gyr: torch.Tensor) -> torch.Tensor:
    """Lookback edges of the binned SFH, (N,) -> (N, 8) in Gyr."""
    t = t_age_gyr.unsqueeze(-1)
    log_mid = torch.linspace(0, 1, 5, dtype=torch.float64, device=t.device)
    lo, hi = np.log10(0.1), torch.log10(0.85 * t)
    mid = 10 ** (lo + (hi - lo) * log_mid)
    zero = torch.zeros_like(t)
    return torch.cat([zero, zero + 0.03, mid, t], -1)
