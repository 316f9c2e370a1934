"""The fitted population: an ensemble of box flows q_k(θ), saved and loaded as one file.

PopSED (Li et al. 2024, §2.5) trains K flows from different seeds and combines them by drawing
the same number of samples from each: the ensemble approximates the posterior of the
population distribution, and the spread between members shows how well the data constrain
each parameter.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sedinfer.atomic import load_versioned, save_torch
from sedinfer.errors import ParameterError
from sedinfer.population.flow import BoxFlow
from sedinfer.posterior.flow import FlowConfig

FORMAT = "sedinfer.population"
FORMAT_VERSION = 1


class Population(torch.nn.Module):
    """An ensemble of K :class:`~sedinfer.population.flow.BoxFlow` over the same box.

    Attributes: ``members`` (K flows), ``param_names`` (D names, the column order of every
    sample), ``low``/``high`` (D,) box, ``metadata`` (JSON-able: fit configuration, bands,
    noise model, selection, ``history``).
    """

    def __init__(self, members: Sequence[BoxFlow], metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ParameterError("a population needs at least one flow")
        first = members[0]
        for m in members[1:]:
            if not (torch.equal(m.low, first.low) and torch.equal(m.high, first.high)
                    and m.param_names == first.param_names):
                raise ParameterError("all members of a population must share the box and parameter names")
        self.members = torch.nn.ModuleList(members)
        self.param_names: tuple[str, ...] = first.param_names
        self.metadata: dict[str, Any] = dict(metadata or {})

    @property
    def low(self) -> Tensor:
        return self.members[0].low

    @property
    def high(self) -> Tensor:
        return self.members[0].high

    @property
    def n_flows(self) -> int:
        return len(self.members)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per member: its seed, per-epoch records and the monitor losses (see ``fit``)."""
        return self.metadata.get("history", [])

    @property
    def config(self) -> dict[str, Any]:
        """The :class:`~sedinfer.population.fit.FitConfig` of the fit, as a dict."""
        return self.metadata.get("config", {})

    @torch.no_grad()
    def sample_members(self, n: int, seed: int | None = None) -> Tensor:
        """``n`` draws from every member: (K, n, D)."""
        gen = self._generator(seed)
        return torch.stack([m.sample(n, gen) for m in self.members])

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> Tensor:
        """``n`` draws (n, D) from the ensemble: equal shares from every member (the first
        ``n mod K`` members give one more), shuffled. Columns follow ``param_names``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParameterError(f"n must be a positive integer, got {n!r}")
        gen = self._generator(seed)
        k = self.n_flows
        counts = [n // k + (i < n % k) for i in range(k)]
        out = torch.cat([m.sample(c, gen) for m, c in zip(self.members, counts, strict=True) if c])
        return out[torch.randperm(n, generator=gen, device=out.device)]

    def log_prob(self, theta: Tensor) -> Tensor:
        """log of the ensemble density (1/K) Σ_k q_k(θ), (...,) for θ (..., D)."""
        lp = torch.stack([m.log_prob(theta) for m in self.members])
        return torch.logsumexp(lp, 0) - math.log(self.n_flows)

    def _generator(self, seed: int | None) -> torch.Generator:
        gen = torch.Generator(device=self.low.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        return gen

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the population (weights + JSON configuration) atomically; returns the path."""
        first = self.members[0]
        payload = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "flow_config": first.config.to_dict(), "param_names": list(self.param_names),
            "low": first.low.detach().cpu(), "high": first.high.detach().cpu(),
            "members": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in self.members],
            "metadata_json": json.dumps(self.metadata),
        }
        return save_torch(payload, path)

    def __repr__(self) -> str:
        return f"Population(n_flows={self.n_flows}, params={list(self.param_names)})"


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Population:
    """Read a :class:`Population` written by :meth:`Population.save` (no arbitrary pickles)."""
    payload = load_versioned(path, FORMAT, FORMAT_VERSION, "population", device="cpu")
    config = FlowConfig.from_dict(payload["flow_config"])
    members = []
    for state in payload["members"]:
        flow = BoxFlow(payload["low"], payload["high"], config, payload["param_names"])
        flow.load_state_dict(state)
        members.append(flow)
    return Population(members, json.loads(payload["metadata_json"])).to(device).eval()


__all__ = ["FORMAT", "FORMAT_VERSION", "Population", "load"]
