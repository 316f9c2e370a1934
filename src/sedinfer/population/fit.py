"""Population inference (PopSED, Li et al. 2024): fit q(θ) so that its photometry matches a catalog.

::

    pop = sedinfer.population.fit(mags, mag_errs, model=sedinfer.SPSModel(),
                                  filters=sedinfer.Filters("sdss"), n_flows=5)
    theta = pop.sample(10000)          # (10000, D), columns = model.param_names

K flows (seeds ``seed, ..., seed + K - 1``, each on its own bootstrap resample of the catalog)
are trained independently by minimising a
Wasserstein-type distance between forward-modelled and observed magnitudes
(:mod:`~sedinfer.population.train`); together they form the returned
:class:`~sedinfer.population.ensemble.Population`. ``model`` may be an SPS model or any
differentiable callable θ → magnitudes with its own box (``bounds``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.population.data import (
    build_noise_model,
    catalog_fluxes,
    check_catalog,
    default_softening,
    observed_magnitudes,
)
from sedinfer.population.ensemble import Population
from sedinfer.population.flow import DEFAULT_POPULATION_FLOW
from sedinfer.population.forward import ForwardModel, describe_selection, make_simulator
from sedinfer.population.losses import LOSSES, BlurSchedule
from sedinfer.population.reference import FAMILIES, draw_references
from sedinfer.population.train import fingerprint, train_member
from sedinfer.posterior.flow import FlowConfig


class PopulationWarning(UserWarning):
    """A population fit ran but its input or outcome needs attention."""


@dataclass(frozen=True)
class FitConfig:
    """Settings of a population fit (PopSED §2.5 values where the paper gives them).

    The defaults are those validated on the PopSED mock (docs/population.md): sliced loss with
    half its weight on the band and colour marginals, 1024 galaxies per step, 250 epochs, i.e.
    about 2250 steps for 10^4 galaxies. The cost of a
    step does not depend on the catalog size, so for larger catalogs fewer epochs give the same
    number of steps (e.g. 25 epochs for 10^5 galaxies).

    epochs, steps_per_epoch: training length; ``steps_per_epoch=None`` means one pass over the
    catalog (N // batch_size steps). batch_size: observed galaxies per step; n_simulated:
    simulated galaxies per step. learning_rate: peak of the one-cycle schedule, which starts at
    ``learning_rate / lr_div_factor`` (PopSED 3e-4 and 3e-5) and ends ``lr_final_div_factor``
    times lower still (3e-6). loss: ``"sinkhorn"`` or ``"sliced"``; sinkhorn_scaling: geomloss ε
    scaling; n_projections: directions of the sliced loss. blur: Sinkhorn blur schedule (mag).
    r0, tau: noise anti-annealing R(t) = 1 + r0 exp(-tau t/T). entropy_weight, entropy_decay:
    weight λ(t) = entropy_weight exp(-entropy_decay t/T) of KL(q ‖ uniform box) added to the
    loss (0: PopSED's recipe; see :mod:`~sedinfer.population.train`). entropy_spread: with K > 1
    flows, member k uses entropy_weight · spread^(2k/(K-1) - 1), log-evenly from weight/spread
    to weight·spread, so the ensemble also spans the choice of this prior (1: all equal; the
    default 3 gives weights 0.033 ... 0.3 around 0.1). reference_scatter: with K > 1 flows and
    a value s > 0, member k's entropy term pulls towards its own random reference density, a
    product over the box, seeded by seed + k, instead of the uniform box (default 1; 0: uniform
    for every member). reference_family: "partition" (default: random smooth log-densities
    balanced so that the members' references average to the uniform box), "beta" (Beta(a, b)
    with ln a, ln b = s·|N(0, 1)|) or "tilt" (log-quadratic, c₁, c₂ = s·N(0, 1));
    :mod:`~sedinfer.population.reference`.
    marginal_weight: share a in [0, 1] of the loss given to the 1-D distributions of every band
    and adjacent colour, (1 - a)·distance + a·marginals (0: the distance alone, as PopSED).
    whiten: compare magnitudes after a linear map that gives the catalog unit covariance
    (colours weigh as much as brightness; blur then in units of the catalog's spread).
    bootstrap: with more than one flow, each member trains on its own bootstrap resample of the
    catalog (seeded by its seed), so the ensemble spread includes the catalog's sampling noise,
    not only the optimiser's.
    seed: member k uses seed + k.
    flow: flow architecture. clip_grad_norm: gradient-norm clip (None: off). checkpoint_dir:
    per-member checkpoints (resumed when present). min_loss_drop: warn when a member's final
    monitor loss is above this fraction of its initial one (and above twice the data floor).
    monitor_size: simulated and observed galaxies of the monitor loss.
    """

    epochs: int = 250
    steps_per_epoch: int | None = None
    batch_size: int = 1024
    n_simulated: int = 1024
    learning_rate: float = 3e-4
    lr_div_factor: float = 10.0
    lr_final_div_factor: float = 10.0
    lr_pct_start: float = 0.3
    loss: str = "sliced"
    sinkhorn_scaling: float = 0.5
    n_projections: int = 256
    blur: BlurSchedule = field(default_factory=BlurSchedule)
    r0: float = 30.0
    tau: float = 12.0
    entropy_weight: float = 0.1
    entropy_decay: float = 6.0
    entropy_spread: float = 3.0
    reference_scatter: float = 1.0
    reference_family: str = "partition"
    marginal_weight: float = 0.5
    whiten: bool = True
    bootstrap: bool = True
    seed: int = 0
    flow: FlowConfig = DEFAULT_POPULATION_FLOW
    clip_grad_norm: float | None = 10.0
    checkpoint_dir: str | None = None
    min_loss_drop: float = 0.5
    monitor_size: int = 2048

    def __post_init__(self) -> None:
        ints = {"epochs": self.epochs, "batch_size": self.batch_size, "n_simulated": self.n_simulated,
                "n_projections": self.n_projections, "monitor_size": self.monitor_size,
                "steps_per_epoch": 1 if self.steps_per_epoch is None else self.steps_per_epoch}
        bad = [k for k, v in ints.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if bad:
            raise ParameterError(f"{bad} must be positive integers, got {[ints[k] for k in bad]}")
        if self.loss not in LOSSES:
            raise ParameterError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not (self.learning_rate > 0 and self.lr_div_factor >= 1 and self.lr_final_div_factor >= 1
                and 0 < self.lr_pct_start < 1 and 0 < self.sinkhorn_scaling < 1):
            raise ParameterError("need learning_rate > 0, lr_div_factor >= 1, lr_final_div_factor >= 1, "
                                 "lr_pct_start and sinkhorn_scaling in (0, 1)")
        if not (self.r0 >= 0 and math.isfinite(self.tau) and 0 < self.min_loss_drop <= 1):
            raise ParameterError(f"need r0 >= 0, finite tau and min_loss_drop in (0, 1], got r0={self.r0}, "
                                 f"tau={self.tau}, min_loss_drop={self.min_loss_drop}")
        if not 0 <= self.marginal_weight <= 1:
            raise ParameterError(f"marginal_weight must be in [0, 1], got {self.marginal_weight}")
        if not (self.entropy_weight >= 0 and self.entropy_decay >= 0 and self.entropy_spread >= 1):
            raise ParameterError(f"need entropy_weight >= 0, entropy_decay >= 0 and entropy_spread >= 1, got "
                                 f"{self.entropy_weight}, {self.entropy_decay}, {self.entropy_spread}")
        if not (math.isfinite(self.reference_scatter) and self.reference_scatter >= 0):
            raise ParameterError(f"reference_scatter must be a finite number >= 0, got "
                                 f"{self.reference_scatter}")
        if self.reference_family not in FAMILIES:
            raise ParameterError(f"reference_family must be one of {FAMILIES}, got {self.reference_family!r}")
        if isinstance(self.blur, dict):
            object.__setattr__(self, "blur", BlurSchedule(**self.blur))
        if isinstance(self.flow, dict):
            object.__setattr__(self, "flow", FlowConfig.from_dict(self.flow))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flow": self.flow.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        return cls(**data)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _model_description(model: Any) -> Any:
    cfg = getattr(model, "config", None)
    return cfg.to_dict() if hasattr(cfg, "to_dict") else type(model).__name__


def fit(mags: Any, mag_errs: Any, model: Any, filters: Any = None, n_flows: int = 5,
        config: FitConfig | None = None, selection: Any = None, progress: bool = True,
        device: str | torch.device | None = None, *, noise: Any = "catalog", bounds: Any = None,
        param_names: Any = None, softening: Any = None) -> Population:
    """Fit the population distribution q(θ) of a catalog; returns a :class:`Population`.

    ``mags``, ``mag_errs``: AB magnitudes and 1σ errors (N, B), one column per filter, all
    finite (rows with NaN/inf raise an error naming the band: drop them first). ``model``: an
    :class:`~sedinfer.SPSModel` (box = ``model.prior``; moved to ``device``) or a callable
    θ (N, D) → noiseless AB magnitudes (N, B), differentiable, with ``bounds=(low, high)``.
    ``filters``: a :class:`~sedinfer.Filters` (or names) in the catalog's column order.
    ``selection``: None, a :class:`~sedinfer.population.forward.SoftMagnitudeLimit` or a callable
    simulated magnitudes (N, B) → weights (N,) in [0, 1] describing how the catalog was selected.
    ``noise``: ``"catalog"`` (PopSED's p(SNR | f) fitted on the catalog), ``"depth"``, a
    :class:`~sedinfer.noise.NoiseModel`, or None. ``softening``: asinh softening (B,) in maggies
    (default: the median flux error per band). ``device``: CUDA when available by default.
    """
    config = config or FitConfig()
    if isinstance(n_flows, bool) or not isinstance(n_flows, int) or n_flows < 1:
        raise ParameterError(f"n_flows must be a positive integer, got {n_flows!r}")
    n_cols = np.shape(mags)[1] if np.ndim(mags) == 2 else None
    sim = make_simulator(model, filters, bounds, param_names, n_bands=n_cols)
    m, e = check_catalog(mags, mag_errs, sim.bands)
    flux, flux_err = catalog_fluxes(m, e)
    b = default_softening(flux, flux_err) if softening is None else np.asarray(softening, dtype=np.float64)
    noise_model = build_noise_model(noise, flux, flux_err, sim.bands)
    device = _resolve_device(device)
    if isinstance(model, torch.nn.Module):
        model.to(device)
    b_tensor = torch.as_tensor(b, dtype=torch.float32, device=device)
    forward = ForwardModel(sim, noise_model, b_tensor, selection)
    observed = observed_magnitudes(m, b).to(device)

    n = m.shape[0]
    batch_size = config.batch_size
    if n < batch_size:
        warnings.warn(f"the catalog has {n} galaxies, fewer than batch_size={batch_size}; every step uses "
                      f"all {n}", PopulationWarning, stacklevel=2)
        batch_size = n
    steps_per_epoch = config.steps_per_epoch or max(1, n // batch_size)
    selection_info = describe_selection(selection)
    # identifies data and settings (each member adds its own, train_member); where the checkpoints go
    # does not change training
    run_id = fingerprint([{k: v for k, v in config.to_dict().items() if k != "checkpoint_dir"},
                          list(sim.bands), list(sim.param_names), sim.low.tolist(), sim.high.tolist(),
                          b.tolist(), None if noise_model is None else noise_model.to_dict(), selection_info,
                          n, float(observed.double().sum()), float((observed.double() ** 2).sum())])
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    members, history = [], []
    references = member_references(config, n_flows, sim.low.numel())
    for k in range(n_flows):
        ckpt = ckpt_dir / f"member{k:03d}.pt" if ckpt_dir is not None else None
        rows = bootstrap_rows(n, config.seed + k) if config.bootstrap and n_flows > 1 else None
        member_config = replace(config, entropy_weight=member_entropy_weight(config, k, n_flows))
        flow, record = train_member(config.seed + k, forward, observed, member_config, batch_size=batch_size,
                                    steps_per_epoch=steps_per_epoch, device=device, run_id=run_id,
                                    checkpoint=ckpt, progress=progress,
                                    label=f"population flow {k + 1}/{n_flows}", rows=rows,
                                    reference=references[k])
        members.append(flow)
        history.append(record)
    _warn_if_loss_flat(history, config.min_loss_drop)
    metadata = {
        "config": config.to_dict(), "n_flows": n_flows, "n_galaxies": n, "bands": list(sim.bands),
        "param_names": list(sim.param_names), "simulator": sim.kind, "model": _model_description(model),
        "softening_maggies": b.tolist(), "magnitudes": "asinh (Lupton et al. 1999) with softening_maggies",
        "noise_model": None if noise_model is None else noise_model.to_dict(), "selection": selection_info,
        "batch_size": batch_size, "steps_per_epoch": steps_per_epoch, "device": str(device),
        "history": history,
    }
    return Population(members, metadata).eval()


def member_entropy_weight(config: FitConfig, k: int, n_flows: int) -> float:
    """Initial entropy weight of member k of n_flows (see ``FitConfig.entropy_spread``)."""
    if n_flows < 2 or config.entropy_spread == 1:
        return config.entropy_weight
    return config.entropy_weight * config.entropy_spread ** (2 * k / (n_flows - 1) - 1)


def member_references(config: FitConfig, n_flows: int, dim: int) -> list[torch.Tensor | None]:
    """Parameters of every member's reference density ((2, dim) for "beta" and "tilt", node
    densities (33, dim) for "partition"), or None each for the uniform box."""
    if n_flows < 2 or config.reference_scatter == 0:
        return [None] * n_flows
    seeds = [config.seed + j for j in range(n_flows)]
    return draw_references(config.reference_family, seeds, dim, config.reference_scatter)


def member_reference(config: FitConfig, k: int, n_flows: int, dim: int) -> torch.Tensor | None:
    """Parameters of member k's reference density (see :func:`member_references`)."""
    return member_references(config, n_flows, dim)[k]


def bootstrap_rows(n: int, seed: int) -> torch.Tensor:
    """Row indices (n,) of a bootstrap resample (with replacement) of n catalog rows, seeded."""
    g = torch.Generator().manual_seed(1_000_000_007 + seed)
    return torch.randint(n, (n,), generator=g)


def _warn_if_loss_flat(history: list[dict[str, Any]], min_drop: float) -> None:
    """Warn for members whose monitor loss stayed above ``min_drop`` x its initial value and above
    twice the data-vs-data floor."""
    flat = [(i, h) for i, h in enumerate(history) if h["monitor_final"] > min_drop * h["monitor_initial"]
            and h["monitor_final"] > 2 * h["monitor_floor"]]
    if flat:
        i, h = flat[0]
        warnings.warn(
            f"the loss did not fall for {len(flat)} of {len(history)} flows (flow {i}: final "
            f"{h['monitor_final']:.4g} vs initial {h['monitor_initial']:.4g}, data-vs-data floor "
            f"{h['monitor_floor']:.4g}): the prior box may exclude the data (check the bounds against the "
            "catalog), or training was too short", PopulationWarning, stacklevel=3)


__all__ = ["FitConfig", "PopulationWarning", "bootstrap_rows", "fit", "member_entropy_weight",
           "member_reference", "member_references"]
