"""Training loop of one population flow: sample θ, forward-model, compare, step; checkpoints.

Each step draws ``n_simulated`` θ from the flow, forward-models noisy magnitudes with the
anti-annealing factor R(t) (:func:`sedinfer.noise.anti_annealing_factor`), and minimises the
loss to a mini-batch of the observed catalog at the scheduled blur, with Adam and a one-cycle
learning rate (Smith & Topin 2017; PopSED, Li et al. 2024, §2.5).

To the distance is added λ(t)·KL(q ‖ uniform over the box) = λ(t)·(E_q[log q] + log V), with
λ(t) = ``entropy_weight``·exp(−6 t/T): an annealed pull towards the uniform prior.
Without it (``entropy_weight=0``, PopSED's recipe) flows fitted to the PopSED mock collapse within
tens of steps into corners of the box (maximal mass and grey dust at high z), a local optimum
whose photometry is close to, but measurably worse than, that of the true population; see
docs/population.md. The catalog is reshuffled
every epoch (the order of epoch e is seeded by (seed, e), so a resumed run sees the same
batches). With a checkpoint file the full state is written atomically after every epoch and a
later run resumes from it; a finished member is loaded without training.

A monitor loss (full noise R = 1, blur = the schedule's ``stop``, fixed draws and catalog
subset) is evaluated before and after training, together with the data-vs-data floor (the loss
between two disjoint halves of the catalog subset), so that a loss which cannot fall (for
instance a prior box that excludes the data) is detected by :func:`sedinfer.population.fit`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sedinfer.atomic import save_torch
from sedinfer.digest import json_digest
from sedinfer.errors import ParameterError, SedinferError
from sedinfer.noise import anti_annealing_factor
from sedinfer.population.config import (
    BLUR,
    CLIP_GRAD_NORM,
    ENTROPY_DECAY,
    LR_DIV_FACTOR,
    LR_FINAL_DIV_FACTOR,
    LR_PCT_START,
    MONITOR_SIZE,
    N_PROJECTIONS,
    NOISE_R0,
    NOISE_TAU,
    SINKHORN_SCALING,
    FitConfig,
)
from sedinfer.population.flow import BoxFlow
from sedinfer.population.forward import ForwardModel
from sedinfer.population.losses import marginal_directions, population_loss, whitening_matrix

MONITOR_SEED = 7919
#: members trained in threads of one process (e.g. an in-process Dask cluster) must not interleave
#: their seeded initialisations of torch's global generator
_INIT_LOCK = threading.Lock()


def fingerprint(parts: Any) -> str:
    """Short SHA-256 of a JSON-able description of a run (data, configuration, seed)."""
    return json_digest(parts)


def _loss(config: FitConfig, x: Tensor, y: Tensor, blur: float, w: Tensor | None,
          gen: torch.Generator | None, metric: Tensor | None = None, dirs: Tensor | None = None) -> Tensor:
    if metric is not None:
        x, y = x @ metric, y @ metric
    return population_loss(config.loss, x, y, blur=blur, scaling=SINKHORN_SCALING,
                           n_projections=N_PROJECTIONS, x_weights=w, generator=gen,
                           marginal_weight=config.marginal_weight, marginal_dirs=dirs)


class Monitor:
    """Fixed-draw loss of a flow against a fixed catalog subset, and the data-vs-data floor; holds the
    whitening matrix of the catalog and the band/colour axes of the marginal term."""

    def __init__(self, forward: ForwardModel, observed: Tensor, config: FitConfig, device: torch.device):
        self.forward, self.config, self.device = forward, config, device
        self.metric = whitening_matrix(observed)
        self.axes = (marginal_directions(observed.shape[1], self.metric).to(device)
                     if config.marginal_weight > 0 else None)
        n = observed.shape[0]
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(MONITOR_SEED)).to(device)
        self.y = observed[perm[:min(n, MONITOR_SIZE)]]
        half = min(n // 2, MONITOR_SIZE)
        self.halves = (observed[perm[:half]], observed[perm[half:2 * half]]) if half >= 1 else None

    def _gen(self) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(MONITOR_SEED)

    @torch.no_grad()
    def __call__(self, flow: BoxFlow) -> float:
        gen = self._gen()
        x, w, _ = self.forward(flow.sample(MONITOR_SIZE, gen), 1.0, gen)
        return float(_loss(self.config, x, self.y, BLUR.stop, w, gen, self.metric, self.axes))

    @torch.no_grad()
    def floor(self) -> float:
        if self.halves is None:
            return 0.0
        return float(_loss(self.config, *self.halves, BLUR.stop, None, self._gen(), self.metric,
                           self.axes))


def _state_dict(flow, opt, sched, gens, state, fp) -> dict[str, Any]:
    return {"fingerprint": fp, "flow": flow.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "generators": [g.get_state() for g in gens],
            "state_json": json.dumps(state)}


def _rows_digest(rows: Tensor | None) -> str | None:
    """What makes one member differ from the others of its run besides its seed (its bootstrap
    rows), so that a checkpoint is resumed only by the member that wrote it."""
    return None if rows is None else hashlib.sha256(rows.cpu().numpy().tobytes()).hexdigest()[:16]


def train_member(seed: int, forward: ForwardModel, observed: Tensor, config: FitConfig, *, batch_size: int,
                 steps_per_epoch: int, device: torch.device, run_id: str, checkpoint: Path | None = None,
                 progress: bool = True, label: str = "flow",
                 rows: Tensor | None = None) -> tuple[BoxFlow, dict[str, Any]]:
    """Train one flow with ``seed``; returns it (eval mode) and its history record.

    ``observed`` (N, B) asinh magnitudes on ``device``; ``run_id`` identifies data and settings
    (a checkpoint written for another run is refused). ``rows`` (M,): the catalog rows this
    member trains on (e.g. a bootstrap resample; default all); the monitor always uses the
    whole catalog.
    """
    sim = forward.simulator
    devices = [device] if device.type == "cuda" else []
    with _INIT_LOCK, torch.random.fork_rng(devices=devices):   # the global RNG: one member at a time
        torch.manual_seed(seed)
        flow = BoxFlow(sim.low, sim.high, config.flow, sim.param_names).to(device)
    total = config.epochs * steps_per_epoch
    opt = torch.optim.Adam(flow.parameters(), lr=config.learning_rate)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.learning_rate, total_steps=total, pct_start=LR_PCT_START,
        div_factor=LR_DIV_FACTOR, final_div_factor=LR_FINAL_DIV_FACTOR)
    gen = torch.Generator(device=device).manual_seed(seed)
    fp = fingerprint([run_id, seed, _rows_digest(rows)])
    state: dict[str, Any] = {"seed": seed, "step": 0, "seconds": 0.0, "epochs": [], "done": False,
                             "monitor_initial": None, "monitor_final": None, "monitor_floor": None}
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        if saved.get("fingerprint") != fp:
            raise ParameterError(f"checkpoint {checkpoint} was written for other data or settings; remove it "
                                 "or choose another checkpoint_dir")
        flow.load_state_dict(saved["flow"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generators"][0].cpu())
        state = json.loads(saved["state_json"])
    monitor = Monitor(forward, observed, config, device)
    if state["monitor_initial"] is None:
        state["monitor_initial"], state["monitor_floor"] = monitor(flow), monitor.floor()

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=state["step"], desc=label, unit="step", dynamic_ncols=True,
               disable=None if progress else True)
    rows = torch.arange(observed.shape[0], device=device) if rows is None else rows.to(device)
    n = rows.shape[0]
    start = time.perf_counter() - state["seconds"]
    loss_sum, kl_sum, kept_sum, order = 0.0, 0.0, 0, None
    log_volume = flow.log_volume()
    while state["step"] < total:
        step = state["step"]
        epoch, pos = divmod(step, steps_per_epoch)
        if order is None or pos == 0:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
            order = rows[order.to(device)]
        idx = order[(pos * batch_size + torch.arange(batch_size, device=device)) % n]
        r = anti_annealing_factor(step, total, NOISE_R0, NOISE_TAU)
        blur = BLUR(step, total)
        lam = config.entropy_weight * math.exp(-ENTROPY_DECAY * step / total)
        if lam > 0:
            theta, log_q = flow.sample_and_log_prob(config.n_simulated, gen)
            kl = log_q.mean() + log_volume
        else:
            theta, kl = flow.sample(config.n_simulated, gen), None
        x, w, kept = forward(theta, r, gen)
        distance = _loss(config, x, observed[idx], blur, w, gen, monitor.metric, monitor.axes)
        loss = distance if kl is None else distance + lam * kl
        if not bool(torch.isfinite(loss)):
            raise SedinferError(f"{label}: the loss became {loss.item()} at step {step}; check the "
                                "simulator, the catalog and the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), CLIP_GRAD_NORM)
        opt.step()
        sched.step()
        state["step"] = step + 1
        loss_sum, kept_sum = loss_sum + distance.item(), kept_sum + kept
        kl_sum += 0.0 if kl is None else kl.item()
        bar.update(1)
        if state["step"] % steps_per_epoch == 0 or state["step"] == total:
            done_in_epoch = state["step"] - epoch * steps_per_epoch
            state["seconds"] = round(time.perf_counter() - start, 3)
            state["epochs"].append({"epoch": epoch + 1, "step": state["step"],
                                    "loss": loss_sum / done_in_epoch, "blur": blur, "noise_factor": r,
                                    "kl_uniform": kl_sum / done_in_epoch, "entropy_weight": lam,
                                    "lr": sched.get_last_lr()[0], "negative_fluxes_kept": kept_sum,
                                    "seconds": state["seconds"]})
            bar.set_postfix(loss=f"{loss_sum / done_in_epoch:.4g}", blur=blur, R=f"{r:.2f}")
            loss_sum, kl_sum, kept_sum = 0.0, 0.0, 0
            if checkpoint is not None and state["step"] < total:
                save_torch(_state_dict(flow, opt, sched, [gen], state, fp), checkpoint)
    bar.close()
    flow.eval()
    if not state["done"]:
        state["monitor_final"], state["done"] = monitor(flow), True
        state["seconds"] = round(time.perf_counter() - start, 3)
        if checkpoint is not None:
            save_torch(_state_dict(flow, opt, sched, [gen], state, fp), checkpoint)
    record = {k: state[k] for k in ("seed", "monitor_initial", "monitor_final", "monitor_floor", "seconds",
                                    "epochs")}
    return flow, record


__all__ = ["Monitor", "fingerprint", "train_member"]
