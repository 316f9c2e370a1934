"""The trained conditional density q(θ | x): a flow between standardised spaces and a box.

θ lives in a box ``[low, high]`` (the prior's support). The flow models
``u = (logit((θ - low) / (high - low)) - u_mean) / u_std`` given the standardised context
``(x - x_mean) / x_std``; samples are mapped back through the sigmoid, so they never leave the box
and no rejection is needed. ``log_prob`` adds the Jacobians of both maps, so it is the density of
θ itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sedinfer.atomic import load_versioned, save_torch
from sedinfer.errors import ParameterError
from sedinfer.posterior.flow import FlowConfig, build_flow

FORMAT = "sedinfer.posterior"
FORMAT_VERSION = 1
UNIT_EPS = 1e-6  # θ exactly on the box edge maps to this distance from it in unit coordinates


class Posterior(torch.nn.Module):
    """q(θ | x) with ``.sample``, ``.log_prob``, ``.save`` and :func:`load`.

    Build it with :func:`sedinfer.posterior.train`. Attributes: ``low``, ``high`` (D,) box;
    ``param_names`` (D names), ``context_names`` (C names); ``metadata`` (JSON-able dict: training
    configuration, history, anything a caller adds).
    """

    def __init__(self, low: Tensor, high: Tensor, x_mean: Tensor, x_std: Tensor, u_mean: Tensor,
                 u_std: Tensor, flow_config: FlowConfig = FlowConfig(),
                 param_names: Sequence[str] | None = None, context_names: Sequence[str] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low.ndim != 1 or low.shape != high.shape or not bool((high > low).all()):
            raise ParameterError(f"bounds must be two 1-D tensors with high > low, got {low} and {high}")
        d, c = low.numel(), int(torch.as_tensor(x_mean).numel())
        for name, value, size in (("x_mean", x_mean, c), ("x_std", x_std, c), ("u_mean", u_mean, d),
                                  ("u_std", u_std, d)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).reshape(size))
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.flow_config = flow_config
        self.param_names = tuple(param_names) if param_names else tuple(f"theta{i}" for i in range(d))
        self.context_names = tuple(context_names) if context_names else tuple(f"x{i}" for i in range(c))
        if len(self.param_names) != d or len(self.context_names) != c:
            raise ParameterError(f"{len(self.param_names)} parameter names for {d} parameters or "
                                 f"{len(self.context_names)} context names for {c} context features")
        self.metadata = dict(metadata or {})
        self.flow = build_flow(d, c, flow_config)

    @property
    def dim(self) -> int:
        return self.low.numel()

    @property
    def context_dim(self) -> int:
        return self.x_mean.numel()

    @property
    def device(self) -> torch.device:
        return self.low.device

    # ------------------------------------------------------------------ coordinate maps
    def to_latent(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """θ (..., D) -> standardised logit coordinates u and log|du/dθ| summed over D."""
        width = self.high - self.low
        unit = ((theta - self.low) / width).clamp(UNIT_EPS, 1 - UNIT_EPS)
        u = (torch.log(unit) - torch.log1p(-unit) - self.u_mean) / self.u_std
        log_jac = -(torch.log(unit) + torch.log1p(-unit) + torch.log(width) + torch.log(self.u_std)).sum(-1)
        return u, log_jac

    def from_latent(self, u: Tensor) -> Tensor:
        """Standardised logit coordinates u (..., D) -> θ in the box."""
        return self.low + (self.high - self.low) * torch.sigmoid(u * self.u_std + self.u_mean)

    def standardize(self, x: Tensor) -> Tensor:
        """Context x (..., C) -> standardised context; raises on a wrong width or non-finite values."""
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if x.shape[-1:] != (self.context_dim,):
            raise ParameterError(f"context must have {self.context_dim} features "
                                 f"({', '.join(self.context_names)}), got shape {tuple(x.shape)}")
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            cols = sorted({self.context_names[j] for j in torch.nonzero(bad)[:, -1].tolist()})
            raise ParameterError(f"context holds NaN or inf values in {cols}; expected finite numbers")
        return (x - self.x_mean) / self.x_std

    # ------------------------------------------------------------------ density, sampling
    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        """log q(θ | x) in θ's own units; θ (..., D), x (..., C) broadcastable. -inf outside the box."""
        theta = torch.as_tensor(theta, dtype=torch.float32, device=self.device)
        if theta.shape[-1:] != (self.dim,):
            raise ParameterError(f"theta must have {self.dim} columns ({', '.join(self.param_names)}), "
                                 f"got shape {tuple(theta.shape)}")
        inside = ((theta >= self.low) & (theta <= self.high)).all(-1)
        u, log_jac = self.to_latent(theta)
        lp = self.flow(self.standardize(x)).log_prob(u) + log_jac
        return torch.where(inside, lp, torch.full_like(lp, -torch.inf))

    @torch.no_grad()
    def sample(self, x: Tensor, n: int, batch_size: int = 8192, seed: int | None = None,
               row_seeds: Sequence[int] | None = None) -> Tensor:
        """``n`` draws of θ for each context row.

        x (C,) -> (n, D); x (M, C) -> (M, n, D). Work is split into batches of at most
        ``batch_size`` draws (large batches are memory-bound and slower on a CPU). ``seed`` makes
        the draws reproducible without touching the global generator; ``row_seeds`` (M,) gives
        each row its own base-noise seed instead, so a row's draws do not depend on which other
        rows share its batch (catalogs give the same answer however they are chunked).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParameterError(f"n must be a positive integer, got {n!r}")
        xs = self.standardize(x)
        single = xs.ndim == 1
        xs = xs.reshape(-1, self.context_dim)
        if row_seeds is not None and len(row_seeds) != xs.shape[0]:
            raise ParameterError(f"{len(row_seeds)} row seeds for {xs.shape[0]} context rows")
        out = torch.empty(xs.shape[0], n, self.dim, device=self.device)
        rows = max(1, batch_size // n)
        draws = n if row_seeds is not None else min(n, batch_size)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            for r in range(0, xs.shape[0], rows):
                ctx = xs[r:r + rows]
                if row_seeds is not None:       # base noise per row, pushed through the flow in one batch
                    gens = [torch.Generator().manual_seed(int(s)) for s in row_seeds[r:r + rows]]
                    eps = torch.stack([torch.randn(n, self.dim, generator=g) for g in gens], 1)
                    eps = eps.to(self.device)
                    out[r:r + rows] = self.from_latent(self.flow(ctx).transform.inv(eps)).transpose(0, 1)
                    continue
                for s in range(0, n, draws):
                    k = min(draws, n - s)
                    u = self.flow(ctx).sample((k,))             # (k, rows, D)
                    out[r:r + rows, s:s + k] = self.from_latent(u).transpose(0, 1)
        return out[0] if single else out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write a self-describing file (tensors + JSON-able config), atomically. Returns the path."""
        path = Path(path)
        payload = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "flow_config": self.flow_config.to_dict(),
            "param_names": list(self.param_names), "context_names": list(self.context_names),
            "metadata_json": json.dumps(self.metadata),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        return save_torch(payload, path)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Posterior:
    """Read a :class:`Posterior` written by :meth:`Posterior.save` (no arbitrary pickles)."""
    payload = load_versioned(path, FORMAT, FORMAT_VERSION, "posterior model", device=device)
    state = payload["state_dict"]
    post = Posterior(state["low"], state["high"], state["x_mean"], state["x_std"], state["u_mean"],
                     state["u_std"], FlowConfig.from_dict(payload["flow_config"]), payload["param_names"],
                     payload["context_names"], json.loads(payload["metadata_json"]))
    post.load_state_dict(state)
    return post.to(device).eval()


def as_tensor_2d(values, name: str, width: int | None = None) -> Tensor:
    """A float32 (N, width) tensor from array-like input, with an error naming ``name``."""
    t = torch.as_tensor(np.asarray(values, dtype=np.float32) if not isinstance(values, Tensor) else values,
                        dtype=torch.float32)
    if t.ndim != 2 or (width is not None and t.shape[1] != width):
        raise ParameterError(f"{name} must be a 2-D array of shape (N, {width or 'D'}), got {tuple(t.shape)}")
    return t


__all__ = ["Posterior", "load", "FORMAT", "FORMAT_VERSION"]
