"""Maximum-likelihood training of a conditional flow on simulated (θ, x) pairs.

Neural posterior estimation: maximise E[log q(θ | x)] over simulations, which for a flexible q
converges to the true posterior p(θ | x) under the simulator and prior. The data are split once
(seeded) into training and validation sets; training stops when the validation log-likelihood
has not improved for ``patience`` epochs, and the best-validation weights are kept. With a
``checkpoint`` path the full state (weights, optimiser, scheduler, RNG, history) is written
atomically after every epoch, and a later call with the same path resumes where it stopped.
A caller may fix the validation rows itself (``validation_rows``, e.g. to match another model's
split) and bound a call's wall time (``max_seconds``; the next call resumes).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from sedinfer.atomic import save_torch
from sedinfer.errors import ParameterError
from sedinfer.posterior.estimator import UNIT_EPS, Posterior, as_tensor_2d
from sedinfer.posterior.flow import FlowConfig


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: AdamW, learning rate halved when validation stalls."""

    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 200
    patience: int = 8
    lr_patience: int = 3
    min_learning_rate: float = 1e-5
    validation_fraction: float = 0.1
    clip_grad_norm: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ParameterError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.learning_rate <= 0:
            raise ParameterError("batch_size and max_epochs must be >= 1 and learning_rate > 0")


def _check_data(theta: Tensor, x: Tensor, low: Tensor, high: Tensor, names) -> None:
    if theta.shape[0] != x.shape[0]:
        raise ParameterError(f"theta has {theta.shape[0]} rows but x has {x.shape[0]}")
    if theta.shape[0] < 10:
        raise ParameterError(f"need at least 10 simulations to train, got {theta.shape[0]}")
    for what, t in (("theta", theta), ("x", x)):
        bad = ~torch.isfinite(t).all(0)
        if bool(bad.any()):
            raise ParameterError(f"{what} has NaN/inf values in columns {torch.nonzero(bad)[:, 0].tolist()}")
    outside = ((theta < low) | (theta > high)).any(0)
    if bool(outside.any()):
        cols = [names[i] for i in torch.nonzero(outside)[:, 0].tolist()]
        raise ParameterError(f"theta has values outside the bounds in {cols}: bounds must enclose the "
                             "prior support")


def _fingerprint(n: int, d: int, c: int, flow: FlowConfig, cfg: TrainConfig, split: str | None = None) -> str:
    """Identity of a training run; the stopping rules (max_epochs, patience) may change on resume.
    ``split``: a digest of caller-given validation rows (absent for the seeded split)."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("max_epochs", "patience")}
    text = json.dumps([n, d, c, flow.to_dict(), settings] + ([split] if split else []), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mean_nll(post: Posterior, u: Tensor, x: Tensor, batch: int) -> float:
    total = 0.0
    with torch.no_grad():
        for s in range(0, u.shape[0], batch):
            total += -post.flow(x[s:s + batch]).log_prob(u[s:s + batch]).sum().item()
    return total / u.shape[0]


def train(theta, x, bounds, *, flow: FlowConfig = FlowConfig(), config: TrainConfig = TrainConfig(),
          param_names=None, context_names=None, metadata: dict | None = None,
          device: str | torch.device | None = None, checkpoint: str | os.PathLike | None = None,
          progress: bool = True, validation_rows=None, max_seconds: float | None = None) -> Posterior:
    """Fit q(θ | x) to simulations by maximum likelihood and return the :class:`Posterior`.

    theta (N, D) and x (N, C) tensors or arrays; ``bounds = (low, high)``, each (D,), the prior box
    (θ on its edge is moved ``1e-6`` of the width inside). ``device`` defaults to CUDA when
    present. ``checkpoint``: file for per-epoch state; resumes from it when it exists and was
    written for the same data size and configuration. The returned posterior's ``metadata``
    holds the configs, training history, wall time and ``metadata`` given here.

    ``validation_rows``: row indices of the validation set (the rest train) instead of the
    seeded random ``validation_fraction``. ``max_seconds``: stop after the first epoch that ends
    this many seconds into the call; ``metadata["stopped"]`` is then ``"time budget"`` and the
    same call with the same ``checkpoint`` goes on.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    theta, x = as_tensor_2d(theta, "theta"), as_tensor_2d(x, "x")
    low = torch.as_tensor(bounds[0], dtype=torch.float32).reshape(-1)
    high = torch.as_tensor(bounds[1], dtype=torch.float32).reshape(-1)
    if low.numel() != theta.shape[1] or high.numel() != theta.shape[1]:
        raise ParameterError(f"bounds must have {theta.shape[1]} entries each, got {low.numel()} and "
                             f"{high.numel()}")
    names = tuple(param_names) if param_names else tuple(f"theta{i}" for i in range(theta.shape[1]))
    _check_data(theta, x, low, high, names)
    n, d, c = theta.shape[0], theta.shape[1], x.shape[1]

    torch.manual_seed(config.seed)
    split_digest = None
    if validation_rows is None:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
        n_val = max(1, int(round(config.validation_fraction * n)))
        val_idx, train_idx = perm[:n_val], perm[n_val:]
    else:
        val_idx = torch.unique(torch.as_tensor(validation_rows, dtype=torch.long).reshape(-1))
        if val_idx.numel() < 1 or val_idx.numel() >= n or int(val_idx.min()) < 0 or int(val_idx.max()) >= n:
            raise ParameterError(f"validation_rows must be 1 to {n - 1} distinct row indices in [0, {n})")
        is_val = torch.zeros(n, dtype=torch.bool)
        is_val[val_idx] = True
        train_idx, n_val = torch.nonzero(~is_val)[:, 0], int(val_idx.numel())
        split_digest = hashlib.sha256(val_idx.numpy().tobytes()).hexdigest()[:16]

    unit = ((theta.double() - low.double()) / (high - low).double()).clamp(UNIT_EPS, 1 - UNIT_EPS)
    logit = (torch.log(unit) - torch.log1p(-unit)).float()
    x_std = x[train_idx].std(0).clamp_min(1e-6)
    post = Posterior(low, high, x[train_idx].mean(0), x_std, logit[train_idx].mean(0),
                     logit[train_idx].std(0).clamp_min(1e-6), flow, names, context_names, metadata)
    post.to(device)
    u = ((logit.to(device) - post.u_mean) / post.u_std)
    xs = ((x.to(device) - post.x_mean) / post.x_std)
    u_tr, x_tr, u_va, x_va = u[train_idx.to(device)], xs[train_idx.to(device)], u[val_idx.to(device)], \
        xs[val_idx.to(device)]

    opt = torch.optim.AdamW(post.flow.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=config.lr_patience,
                                                       min_lr=config.min_learning_rate)
    state = {"epoch": 0, "best_val": math.inf, "best_state": None, "bad_epochs": 0, "history": [],
             "seconds": 0.0}
    fingerprint = _fingerprint(n, d, c, flow, config, split_digest)
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=True)
        if saved.get("fingerprint") != fingerprint:
            raise ParameterError(f"checkpoint {ckpt} was written for other data or settings; remove it or "
                                 "choose another checkpoint path")
        post.flow.load_state_dict(saved["flow"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        state = {k: saved[k] for k in state}
        state["history"] = json.loads(saved["history"])
    elif ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    bar = tqdm(total=config.max_epochs, initial=state["epoch"], desc="training", unit="epoch",
               disable=None if progress else True, dynamic_ncols=True)
    start = time.perf_counter() - state["seconds"]
    call_start, out_of_time = time.perf_counter(), False
    gen = torch.Generator(device="cpu")
    while state["epoch"] < config.max_epochs and state["bad_epochs"] < config.patience and not out_of_time:
        post.flow.train()
        gen.manual_seed(config.seed * 100003 + state["epoch"])
        order = torch.randperm(u_tr.shape[0], generator=gen).to(device)
        total = 0.0
        for s in range(0, u_tr.shape[0], config.batch_size):
            idx = order[s:s + config.batch_size]
            loss = -post.flow(x_tr[idx]).log_prob(u_tr[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(post.flow.parameters(), config.clip_grad_norm)
            opt.step()
            total += loss.item() * idx.numel()
        post.flow.eval()
        train_nll, val_nll = total / u_tr.shape[0], _mean_nll(post, u_va, x_va, 8192)
        sched.step(val_nll)
        state["epoch"] += 1
        if val_nll < state["best_val"] - 1e-4:
            state["best_val"], state["bad_epochs"] = val_nll, 0
            state["best_state"] = {k: v.detach().clone() for k, v in post.flow.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["seconds"] = time.perf_counter() - start
        state["history"].append({"epoch": state["epoch"], "train_nll": train_nll, "val_nll": val_nll,
                                 "lr": opt.param_groups[0]["lr"], "seconds": round(state["seconds"], 2)})
        bar.update(1)
        bar.set_postfix(train=f"{train_nll:.3f}", val=f"{val_nll:.3f}", best=f"{state['best_val']:.3f}")
        if ckpt is not None:
            save_torch({**state, "history": json.dumps(state["history"]), "fingerprint": fingerprint,
                          "flow": post.flow.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "rng": torch.get_rng_state()}, ckpt)
        out_of_time = max_seconds is not None and time.perf_counter() - call_start >= max_seconds
    bar.close()
    post.flow.load_state_dict(state["best_state"])
    post.eval()
    post.metadata.update({
        "flow_config": flow.to_dict(), "train_config": asdict(config), "n_simulations": n,
        "n_train": int(train_idx.numel()), "n_validation": n_val, "epochs": state["epoch"],
        "best_val_nll_latent": state["best_val"], "train_seconds": round(state["seconds"], 1),
        "train_device": f"{device}" + (f" ({torch.get_num_threads()} threads)"
                                       if device.type == "cpu" else ""),
        "history": state["history"], "stopped": "early stopping" if state["bad_epochs"] >= config.patience
        else "max_epochs" if state["epoch"] >= config.max_epochs else "time budget",
    })
    return post


__all__ = ["TrainConfig", "train"]
