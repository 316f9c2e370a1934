"""Resumable training of the spectrum autoencoder (issue 17 §2).

Adam on mini-batches of normalised spectra (:class:`~sedinfer.spectra.training_data.SpectraArrays`).
Each step: the fidelity χ² of the batch and of a copy moved to random redshifts in [0, z_max]
(:func:`~sedinfer.spectra.ae_losses.augment_redshift`), the similarity loss of the batch and the
consistency loss between the two copies' latents (:mod:`sedinfer.spectra.ae_losses`):

    L = ½ (½ χ²_pix + ½ χ²_pix,aug) … averaged over the batch, + a_sim L_sim + a_cons L_cons.

Batch order is a fixed function of (seed, epoch), so the state to resume is the step count, the
weights, Adam's moments, the augmentation generator and torch's global generator (dropout; it is
forked, so the caller's generator is left as it was). A checkpoint holding all of them, the best
validation weights and the history is written every ``checkpoint_every`` steps, at the end and
when ``max_hours`` runs out; ``resume`` continues from it bit for bit on the same machine and
thread count. The best-validation model (mean fidelity χ² per pixel on a held-out set) is saved
with :meth:`SpectrumAutoencoder.save` whenever it improves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sedinfer.atomic import load_versioned, save_torch
from sedinfer.spectra.ae_losses import (
    LossConfig,
    augment_redshift,
    consistency_loss,
    fidelity_chi2,
    rest_frame_for_similarity,
    similarity_loss,
    spectral_dissimilarity,
)
from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.training_data import SpectraArrays

CHECKPOINT_FORMAT = "sedinfer-spectrum-autoencoder-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class AETrainConfig:
    """How to train: ``max_steps`` total optimiser steps (None: ``epochs`` × steps per epoch),
    ``max_hours`` wall-clock budget of one call (None: none), checkpoint every
    ``checkpoint_every`` steps, ``val_fraction`` (at most ``max_val`` spectra) held out."""

    batch_size: int = 64
    learning_rate: float = 1e-3
    epochs: int = 10
    max_steps: int | None = None
    max_hours: float | None = None
    checkpoint_every: int = 500
    val_fraction: float = 0.05
    max_val: int = 2000
    seed: int = 0
    similarity_amp: float = 1.0
    consistency_amp: float = 1.0
    similarity_stride: int = 4

    def loss_config(self) -> LossConfig:
        return LossConfig(
            similarity_amp=self.similarity_amp,
            consistency_amp=self.consistency_amp,
            similarity_stride=self.similarity_stride,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AETrainConfig:
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})


def split_indices(n: int, val_fraction: float, max_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices: a seeded permutation, the first rows held out."""
    perm = np.random.default_rng([seed, 17]).permutation(n)
    n_val = min(max_val, int(round(val_fraction * n))) if n > 1 else 0
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def step_losses(
    model: SpectrumAutoencoder,
    flux: torch.Tensor,
    ivar: torch.Tensor,
    z: torch.Tensor,
    loss_config: LossConfig,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (N, M): fidelity, fidelity_aug, similarity, consistency, total."""
    c = model.config
    s, yhat = model(flux, ivar, z)
    fid = fidelity_chi2(flux, ivar, yhat).mean()
    out = {"fidelity": fid}
    total = 0.5 * fid
    if loss_config.consistency_amp > 0:
        fa, wa, za = augment_redshift(flux, ivar, z, c.dloglam, c.z_max, generator)
        s_aug, yhat_aug = model(fa, wa, za)
        out["fidelity_aug"] = fidelity_chi2(fa, wa, yhat_aug).mean()
        out["consistency"] = consistency_loss(s, s_aug)
        total = (
            0.5 * (0.5 * fid + 0.5 * out["fidelity_aug"]) + loss_config.consistency_amp * out["consistency"]
        )
    if loss_config.similarity_amp > 0:
        with torch.no_grad():
            loglam_rest = torch.as_tensor(
                np.log10(model.wave_rest_aa[:: loss_config.similarity_stride]), dtype=flux.dtype
            )
            fr, wr = rest_frame_for_similarity(flux, ivar, z, c.loglam0, c.dloglam, loglam_rest)
            d_y = spectral_dissimilarity(fr, wr)
        out["similarity"] = similarity_loss(s, d_y, loss_config)
        total = total + loss_config.similarity_amp * out["similarity"]
    out["total"] = total
    return out


@torch.no_grad()
def evaluate(
    model: SpectrumAutoencoder, data: SpectraArrays, batch_size: int = 256, seed: int = 0
) -> dict[str, float]:
    """Held-out quality: mean and median fidelity χ² per pixel, and the redshift invariance of the
    latents, mean |s − s_aug|² / (S mean_d var(s_d)) for copies moved to random z in [0, z_max]
    (0: invariant; ≈ 2 for unrelated latents)."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    chi2, s_all, sa_all = [], [], []
    for a in range(0, len(data), batch_size):
        f, w, z = (torch.as_tensor(x[a : a + batch_size]) for x in (data.flux, data.ivar, data.z))
        s, yhat = model(f, w, z)
        chi2.append(fidelity_chi2(f, w, yhat))
        fa, wa, za = augment_redshift(f, w, z, model.config.dloglam, model.config.z_max, gen)
        s_all.append(s)
        sa_all.append(model.encode(fa, wa, za))
    model.train(was)
    chi2_t, s_t, sa_t = torch.cat(chi2), torch.cat(s_all), torch.cat(sa_all)
    scale = s_t.var(0).mean().clamp(min=1e-12) * s_t.shape[1]
    return {
        "chi2_pix_mean": float(chi2_t.mean()),
        "chi2_pix_median": float(chi2_t.median()),
        "z_invariance": float((((sa_t - s_t) ** 2).sum(-1) / scale).mean()),
    }


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch)))


def train_autoencoder(
    data: SpectraArrays,
    config: AETrainConfig = AETrainConfig(),
    model_config: AutoencoderConfig | None = None,
    out: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
    stop_after: int | None = None,
) -> tuple[SpectrumAutoencoder, dict[str, Any]]:
    """Train (or continue training) an autoencoder on ``data``; returns (best model, state).

    ``out``: where the best-validation model is saved; ``checkpoint``: the resumable state (read
    first when ``resume`` and it exists; its model and training configs then win, except
    ``epochs``, ``max_steps``, ``max_hours`` and ``checkpoint_every``, taken from ``config``).
    ``stop_after``: stop after this many steps in this call (tests; like running out of
    ``max_hours``). ``state`` has ``step``, ``history`` (per checkpoint: step, train loss
    terms, validation metrics), ``best_val``, ``done`` (True when ``max_steps`` was reached).
    """
    log = log or (lambda msg: None)
    ckpt = None
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        ckpt = load_versioned(checkpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "autoencoder checkpoint")
        # the trajectory (batches, split, optimiser) is the checkpoint's; how long to go on is this call's
        config = replace(
            AETrainConfig.from_dict(ckpt["train_config"]),
            epochs=config.epochs,
            max_steps=config.max_steps,
            max_hours=config.max_hours,
            checkpoint_every=config.checkpoint_every,
        )
        model_config = AutoencoderConfig.from_dict(ckpt["model_config"])
    model_config = model_config or AutoencoderConfig()
    train_rows, val_rows = split_indices(len(data), config.val_fraction, config.max_val, config.seed)
    train, val = data.select(train_rows), data.select(val_rows)
    steps_per_epoch = max(1, len(train) // config.batch_size)
    max_steps = config.max_steps or config.epochs * steps_per_epoch
    loss_config = config.loss_config()
    t0 = time.monotonic()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = SpectrumAutoencoder(
            model_config, {"training": config.to_dict(), "n_train": len(train), "n_val": len(val)}
        )
        opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        aug_gen = torch.Generator().manual_seed(config.seed + 1)
        state: dict[str, Any] = {"step": 0, "history": [], "best_val": float("inf"), "hours": 0.0}
        best_sd = None
        if ckpt is not None:
            model.load_state_dict(ckpt["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            aug_gen.set_state(ckpt["aug_generator"])
            torch.set_rng_state(ckpt["torch_rng"])
            best_sd = ckpt["best_state_dict"]
            state.update(
                step=int(ckpt["step"]),
                history=list(ckpt["history"]),
                best_val=float(ckpt["best_val"]),
                hours=float(ckpt["hours"]),
            )
            log(f"resumed from {checkpoint} at step {state['step']}")
        model.train()
        running: dict[str, list[float]] = {}
        steps_here = 0

        def save_checkpoint() -> None:
            nonlocal best_sd
            metrics = evaluate(model, val, seed=config.seed) if len(val) else {}
            entry = {
                "step": state["step"],
                **{k: float(np.mean(v)) for k, v in running.items()},
                **{f"val_{k}": v for k, v in metrics.items()},
            }
            running.clear()
            state["history"].append(entry)
            score = metrics.get("chi2_pix_mean", entry.get("fidelity", float("inf")))
            if score < state["best_val"]:
                state["best_val"] = score
                best_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if out is not None:
                    _with_weights(model, best_sd, state).save(out)
            log(
                "step {step}: ".format(**entry)
                + ", ".join(f"{k} {v:.4g}" for k, v in entry.items() if k != "step")
            )
            if checkpoint is not None:
                save_torch(
                    {
                        "format": CHECKPOINT_FORMAT,
                        "format_version": CHECKPOINT_VERSION,
                        "train_config": config.to_dict(),
                        "model_config": model_config.to_dict(),
                        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                        "optimizer": opt.state_dict(),
                        "aug_generator": aug_gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "best_state_dict": best_sd,
                        "step": state["step"],
                        "history": state["history"],
                        "best_val": state["best_val"],
                        "hours": state["hours"] + (time.monotonic() - t0) / 3600,
                    },
                    checkpoint,
                )

        order, order_epoch = None, -1
        while state["step"] < max_steps:
            epoch, i = divmod(state["step"], steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = _epoch_order(len(train), config.seed, epoch), epoch
            rows = order[i * config.batch_size : (i + 1) * config.batch_size].numpy()
            f, w, z = (torch.as_tensor(x[rows]) for x in (train.flux, train.ivar, train.z))
            terms = step_losses(model, f, w, z, loss_config, aug_gen)
            opt.zero_grad()
            terms["total"].backward()
            opt.step()
            for k, v in terms.items():
                running.setdefault(k, []).append(float(v.detach()))
            state["step"] += 1
            steps_here += 1
            over_time = config.max_hours is not None and (time.monotonic() - t0) / 3600 > config.max_hours
            stop = over_time or (stop_after is not None and steps_here >= stop_after)
            if state["step"] % config.checkpoint_every == 0 or state["step"] == max_steps or stop:
                save_checkpoint()
            if stop:
                why = "time budget" if over_time else "stop_after"
                log(f"stopping at step {state['step']} of {max_steps} ({why})")
                break
    state["done"] = state["step"] >= max_steps
    state["hours"] += (time.monotonic() - t0) / 3600
    best = _with_weights(model, best_sd, state) if best_sd is not None else model
    return best.eval(), state


def _with_weights(model: SpectrumAutoencoder, state_dict: dict, state: dict) -> SpectrumAutoencoder:
    meta = {
        **model.metadata,
        "step": state["step"],
        "best_val_chi2_pix": state["best_val"],
        "history": state["history"][-1:],
    }
    with torch.random.fork_rng(devices=[]):  # building a module draws initial weights
        best = SpectrumAutoencoder(model.config, meta)
    best.load_state_dict(state_dict)
    return best


__all__ = [
    "AETrainConfig",
    "CHECKPOINT_FORMAT",
    "evaluate",
    "split_indices",
    "step_losses",
    "train_autoencoder",
]
