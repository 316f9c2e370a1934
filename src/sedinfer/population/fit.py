"""Population inference (PopSED, Li et al. 2024): fit q(θ) so that its photometry matches a catalog.

::

    pop = sedinfer.population.fit(mags, mag_errs, model=sedinfer.SPSModel(),
                                  filters=sedinfer.Filters("sdss"), n_flows=5)
    theta = pop.sample(10000)          # (10000, D), columns = model.param_names

K flows (seeds ``seed, ..., seed + K - 1``, each on its own bootstrap resample of the catalog
when K > 1) are trained independently by minimising a Wasserstein-type distance between
forward-modelled and observed magnitudes (:mod:`~sedinfer.population.train`); together they form
the returned :class:`~sedinfer.population.ensemble.Population`. ``model`` may be an SPS model or
any differentiable callable θ → magnitudes with its own box (``bounds``). With ``scheduler`` the
members train side by side on a Dask cluster, each resumable from its own checkpoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.population.config import FLOOR_FACTOR, FitConfig
from sedinfer.population.data import (
    build_noise_model,
    catalog_fluxes,
    check_catalog,
    default_softening,
    observed_magnitudes,
)
from sedinfer.population.ensemble import Population
from sedinfer.population.flow import BoxFlow
from sedinfer.population.forward import ForwardModel, describe_selection, make_simulator
from sedinfer.population.support import check_selection_limit
from sedinfer.population.train import fingerprint, train_member


class PopulationWarning(UserWarning):
    """A population fit ran but its input or outcome needs attention."""


def _resolve_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _model_description(model: Any) -> Any:
    cfg = getattr(model, "config", None)
    return cfg.to_dict() if hasattr(cfg, "to_dict") else type(model).__name__


def fit(mags: Any, mag_errs: Any, model: Any, filters: Any = None, n_flows: int = 5,
        config: FitConfig | None = None, selection: Any = None, progress: bool = True,
        device: str | torch.device | None = None, *, noise: Any = "catalog", bounds: Any = None,
        param_names: Any = None, softening: Any = None, checkpoint_dir: str | Path | None = None,
        scheduler: str | None = None, workers: int | None = None) -> Population:
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
    ``checkpoint_dir``: one checkpoint per member, written every epoch and resumed when present.
    ``scheduler``: a Dask scheduler address or ``"local"`` (a LocalCluster of ``workers``
    single-threaded workers) on which the members train side by side; default: one after another
    in this process.
    """
    config = config or FitConfig()
    if isinstance(n_flows, bool) or not isinstance(n_flows, int) or n_flows < 1:
        raise ParameterError(f"n_flows must be a positive integer, got {n_flows!r}")
    n_cols = np.shape(mags)[1] if np.ndim(mags) == 2 else None
    sim = make_simulator(model, filters, bounds, param_names, n_bands=n_cols)
    m, e = check_catalog(mags, mag_errs, sim.bands)
    check_selection_limit(m, sim.bands, selection, PopulationWarning)
    flux, flux_err = catalog_fluxes(m, e)
    b = default_softening(flux, flux_err) if softening is None else np.asarray(softening, dtype=np.float64)
    noise_model = build_noise_model(noise, flux, flux_err, sim.bands)
    device = torch.device("cpu") if scheduler is not None else _resolve_device(device)
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
    # identifies data and settings (each member adds its own, train_member)
    noise_info = None if noise_model is None else noise_model.to_dict()
    run_id = fingerprint([config.to_dict(), list(sim.bands), list(sim.param_names), sim.low.tolist(),
                          sim.high.tolist(), b.tolist(), noise_info, selection_info, n,
                          float(observed.double().sum()), float((observed.double() ** 2).sum())])
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None
    tasks = [dict(seed=config.seed + k, observed=observed, config=config, batch_size=batch_size,
                  steps_per_epoch=steps_per_epoch, run_id=run_id,
                  checkpoint=ckpt_dir / f"member{k:03d}.pt" if ckpt_dir is not None else None,
                  label=f"population flow {k + 1}/{n_flows}",
                  rows=bootstrap_rows(n, config.seed + k) if n_flows > 1 else None)
             for k in range(n_flows)]
    if scheduler is None:
        results = [train_member(forward=forward, device=device, progress=progress, **t) for t in tasks]
    else:
        results = _train_on_dask(tasks, forward, scheduler, workers)
    members = [flow for flow, _ in results]
    history = [record for _, record in results]
    warn_if_not_converged(history)
    metadata = {
        "config": config.to_dict(), "n_flows": n_flows, "n_galaxies": n, "bands": list(sim.bands),
        "param_names": list(sim.param_names), "simulator": sim.kind, "model": _model_description(model),
        "softening_maggies": b.tolist(), "magnitudes": "asinh (Lupton et al. 1999) with softening_maggies",
        "noise_model": None if noise_model is None else noise_model.to_dict(), "selection": selection_info,
        "batch_size": batch_size, "steps_per_epoch": steps_per_epoch, "device": str(device),
        "history": history,
    }
    return Population(members, metadata).eval()


def _train_task(task: dict[str, Any], forward: ForwardModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """One member on a Dask worker (CPU, no progress bar): its weights (CPU tensors) and history."""
    from sedinfer.parallel import restore_malloc_defaults

    restore_malloc_defaults()
    torch.set_num_threads(1)
    task = {**task, "observed": task["observed"].cpu()}
    flow, record = train_member(forward=forward, device=torch.device("cpu"), progress=False, **task)
    return {k: v.detach().cpu() for k, v in flow.state_dict().items()}, record


def _train_on_dask(tasks: list[dict[str, Any]], forward: ForwardModel, scheduler: str,
                   workers: int | None) -> list[tuple[BoxFlow, dict[str, Any]]]:
    """Train every member as one Dask task; results in member order."""
    from sedinfer.parallel import dask_client

    sim = forward.simulator
    with dask_client(scheduler, workers) as client:
        remote = client.scatter(forward, broadcast=True)
        futures = [client.submit(_train_task, t, remote, pure=False) for t in tasks]
        states = client.gather(futures)
    out = []
    for (state, record), t in zip(states, tasks, strict=True):
        flow = BoxFlow(sim.low.cpu(), sim.high.cpu(), t["config"].flow, sim.param_names)
        flow.load_state_dict(state)
        out.append((flow.eval(), record))
    return out


def bootstrap_rows(n: int, seed: int) -> torch.Tensor:
    """Row indices (n,) of a bootstrap resample (with replacement) of n catalog rows, seeded."""
    g = torch.Generator().manual_seed(1_000_000_007 + seed)
    return torch.randint(n, (n,), generator=g)


def warn_if_not_converged(history: list[dict[str, Any]]) -> None:
    """Warn for members whose final monitor loss is above ``FLOOR_FACTOR`` (2) times the
    data-vs-data floor (the loss between two halves of the catalog): such a flow did not reach the
    catalog, whatever its loss was at the start."""
    bad = [(i, h) for i, h in enumerate(history) if h["monitor_final"] > FLOOR_FACTOR * h["monitor_floor"]]
    if bad:
        i, h = bad[0]
        warnings.warn(
            f"{len(bad)} of {len(history)} flows did not reach the catalog: final monitor loss above "
            f"{FLOOR_FACTOR:g} x the data-vs-data floor (flow {i}: {h['monitor_final']:.4g} against a floor "
            f"of {h['monitor_floor']:.4g}; {h['monitor_initial']:.4g} at the start). The prior box may "
            "exclude part of the catalog (compare the bounds with it), or training was too short",
            PopulationWarning, stacklevel=3)


__all__ = ["FitConfig", "PopulationWarning", "bootstrap_rows", "fit", "warn_if_not_converged"]
