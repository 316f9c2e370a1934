"""Settings of a population fit: one frozen :class:`FitConfig`, saved with every population.

The method is fixed (docs/population.md): an ensemble of box flows, each trained on its own
bootstrap resample of the catalog, on asinh magnitudes whitened by the catalog's covariance, by
the sliced W2 loss (or PopSED's Sinkhorn loss) plus a share on every band's and adjacent colour's
1-D distribution, with an annealed entropy term KL(q ‖ uniform box). The knobs a user may need
are in :class:`FitConfig`; the parts of the recipe that are not choices a user makes (PopSED's
learning-rate and noise schedules, the blur schedule, gradient clipping, the monitor) are the
module constants below.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from sedinfer.errors import ParameterError
from sedinfer.population.flow import DEFAULT_POPULATION_FLOW
from sedinfer.population.losses import LOSSES, BlurSchedule
from sedinfer.posterior.flow import FlowConfig

#: one-cycle learning rate: from lr/10 up to lr (first 30 % of the steps), then down to lr/100
#: (PopSED §2.5: 3e-5 → 3e-4 → 3e-6)
LR_DIV_FACTOR = 10.0
LR_FINAL_DIV_FACTOR = 10.0
LR_PCT_START = 0.3
#: noise anti-annealing R(t) = 1 + R0 exp(−TAU t/T) (PopSED §2.5)
NOISE_R0 = 30.0
NOISE_TAU = 12.0
#: Sinkhorn blur schedule (PopSED §2.5) and geomloss ε-scaling
BLUR = BlurSchedule()
SINKHORN_SCALING = 0.5
#: random directions per step of the sliced loss
N_PROJECTIONS = 256
#: entropy weight λ(t) = entropy_weight · exp(−ENTROPY_DECAY t/T)
ENTROPY_DECAY = 6.0
#: gradient-norm clip
CLIP_GRAD_NORM = 10.0
#: draws and catalog rows of the fixed-draw monitor loss
MONITOR_SIZE = 2048
#: a member whose final monitor loss is above this factor times the data-vs-data floor did not
#: reach the catalog
FLOOR_FACTOR = 2.0
#: about this many optimiser steps per flow by default, whatever the catalog size
DEFAULT_STEPS = 2250


@dataclass(frozen=True)
class FitConfig:
    """What a population fit may be asked to change; defaults as validated in docs/population.md.

    epochs, steps_per_epoch: training length (``steps_per_epoch=None``: one pass over the catalog,
    N // batch_size steps; the default 250 epochs are ≈ 2250 steps for 10⁴ galaxies, and the cost
    of a step does not depend on the catalog size). batch_size: catalog rows per step;
    n_simulated: simulated galaxies per step. learning_rate: peak of the one-cycle schedule.
    loss: ``"sliced"`` (sliced W2, default) or ``"sinkhorn"`` (PopSED's, geomloss).
    marginal_weight: share a ∈ [0, 1] of the loss on the 1-D distributions of every band and
    adjacent colour, (1 − a)·distance + a·marginals (0: the distance alone, as PopSED).
    entropy_weight: initial weight of KL(q ‖ uniform box) (0: PopSED's recipe, which collapses
    into corners of the box, docs/population.md). seed: member k uses seed + k. flow: the flow
    architecture.
    """

    epochs: int = 250
    steps_per_epoch: int | None = None
    batch_size: int = 1024
    n_simulated: int = 1024
    learning_rate: float = 3e-4
    loss: str = "sliced"
    marginal_weight: float = 0.5
    entropy_weight: float = 0.1
    seed: int = 0
    flow: FlowConfig = DEFAULT_POPULATION_FLOW

    def __post_init__(self) -> None:
        ints = {"epochs": self.epochs, "batch_size": self.batch_size, "n_simulated": self.n_simulated,
                "steps_per_epoch": 1 if self.steps_per_epoch is None else self.steps_per_epoch}
        bad = [k for k, v in ints.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if bad:
            raise ParameterError(f"{bad} must be positive integers, got {[ints[k] for k in bad]}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ParameterError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.loss not in LOSSES:
            raise ParameterError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ParameterError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.marginal_weight <= 1:
            raise ParameterError(f"marginal_weight must be in [0, 1], got {self.marginal_weight}")
        if not (math.isfinite(self.entropy_weight) and self.entropy_weight >= 0):
            raise ParameterError(f"entropy_weight must be a finite number >= 0, got {self.entropy_weight}")
        if isinstance(self.flow, dict):
            object.__setattr__(self, "flow", FlowConfig.from_dict(self.flow))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flow": self.flow.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        """The config saved by :meth:`to_dict`; a config of an older sedinfer whose options were
        removed is refused with the names of those options."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(
                f"population settings {unknown} are not options of this sedinfer (removed in 0.2: the "
                "population fit has one method, docs/population.md); this configuration was written by an "
                "older version: refit, or read it as a plain dict")
        return cls(**data)


__all__ = ["BLUR", "CLIP_GRAD_NORM", "DEFAULT_STEPS", "ENTROPY_DECAY", "FitConfig", "LR_DIV_FACTOR",
           "FLOOR_FACTOR", "LR_FINAL_DIV_FACTOR", "LR_PCT_START", "MONITOR_SIZE", "NOISE_R0", "NOISE_TAU",
           "N_PROJECTIONS", "SINKHORN_SCALING"]
