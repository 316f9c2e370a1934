"""Training the score priors by denoising score matching (Vincent 2011; Song et al. 2021).

For a network-space image u₀ (and condition c), t ~ U(ε, 1), z ~ N(0, I)::

    L = E ‖ σ(t) s(u₀ + σ(t) z, t | c) + z ‖²      (per image, summed over pixels)

the σ²-weighted DSM loss of the VE SDE (:mod:`~sedinfer.images.sde`). Training pairs (S, D) come
from :func:`sedinfer.images.simulate.simulate_pairs` or a cached ``.npz`` of them
(``sedinfer dustmap simulate --pairs``; :func:`load_pairs`). Images are augmented by the 8 flips
and right-angle rotations (the priors must not prefer an orientation). Optimiser Adam with
gradient-norm clipping.

:func:`train_prior` is resumable: every ``checkpoint_every`` steps it writes
``<out>/<kind>.ckpt.pt`` atomically (weights, Adam state, step, the random generator's state and
the losses), and a run started again with the same configuration (``steps`` may be raised)
continues from there, giving the same weights as an uninterrupted run. All random numbers come
from one CPU generator seeded by ``seed``, so a run is reproducible on any device. The final prior
is saved as ``<out>/<kind>.pt`` (with its card ``<kind>.json``, which holds this configuration).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from sedinfer.atomic import load_versioned, save_torch
from sedinfer.images.errors import ImageError
from sedinfer.images.prior import PRIOR_CLASSES, ScorePrior, build_prior
from sedinfer.images.sde import SIGMA_MAX, SIGMA_MIN, VESDE
from sedinfer.images.unet import UNetConfig, n_parameters

CKPT_FORMAT = "sedinfer.images.prior_checkpoint"
CKPT_VERSION = 1
T_EPS = 1e-5


@dataclass(frozen=True)
class PriorTrainConfig:
    """What and how to train: the prior ``kind``, its network and SDE, and the optimisation."""

    kind: str = "dust_given_host"
    steps: int = 20000
    batch_size: int = 32
    lr: float = 2e-4
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    augment: bool = True
    base_channels: int = 16
    channel_mult: tuple[int, ...] = (1, 2, 4)
    blocks: int = 1
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    data: str = field(default="", compare=False)
    """Description of the training data (file names), stored on the card; not compared on resume."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        if self.kind not in PRIOR_CLASSES:
            raise ValueError(f"kind must be one of {sorted(PRIOR_CLASSES)}, got {self.kind!r}")
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.grad_clip > 0):
            raise ValueError(f"lr and grad_clip must be > 0, got {self.lr}, {self.grad_clip}")

    def unet(self) -> UNetConfig:
        cond = 1 if PRIOR_CLASSES[self.kind].conditional else 0
        return UNetConfig(cond_channels=cond, base_channels=self.base_channels,
                          channel_mult=self.channel_mult, blocks=self.blocks)

    def to_dict(self) -> dict:
        return asdict(self)

    def resume_key(self) -> dict:
        """The fields that must match for a checkpoint to be continued (all but steps and data)."""
        d = self.to_dict()
        d.pop("steps")
        d.pop("data")
        d["channel_mult"] = list(d["channel_mult"])
        return d


def load_pairs(paths: Sequence[str | os.PathLike]) -> dict[str, np.ndarray]:
    """Concatenate ``host`` and ``dust`` (N, H, W) float32 from ``.npz`` files of training pairs,
    checking them (S ≥ 0 with a positive pixel, D in (0, 1], finite, equal shapes)."""
    hosts, dusts = [], []
    for p in paths:
        with np.load(p) as f:
            if "host" not in f or "dust" not in f:
                raise ImageError(f"{p}: a pairs file needs arrays 'host' and 'dust'")
            hosts.append(np.asarray(f["host"], dtype=np.float32))
            dusts.append(np.asarray(f["dust"], dtype=np.float32))
    return check_pairs(np.concatenate(hosts), np.concatenate(dusts))


def check_pairs(host: np.ndarray, dust: np.ndarray) -> dict[str, np.ndarray]:
    """Validate training pairs (N, H, W) and return them as a dict."""
    host, dust = np.asarray(host, np.float32), np.asarray(dust, np.float32)
    if host.ndim != 3 or host.shape != dust.shape:
        raise ImageError(f"host and dust must be (N, H, W) of one shape, got {host.shape}, {dust.shape}")
    if not (np.isfinite(host).all() and np.isfinite(dust).all()):
        raise ImageError("training pairs contain NaN or infinite pixels")
    if (host < 0).any() or (host.reshape(len(host), -1).max(1) <= 0).any():
        raise ImageError("host images must be >= 0 with at least one positive pixel")
    if (dust <= 0).any() or (dust > 1).any():
        raise ImageError("dust transmissions must lie in (0, 1]")
    return {"host": host, "dust": dust}


def dsm_loss(prior: ScorePrior, u: torch.Tensor, cond: torch.Tensor | None,
             generator: torch.Generator) -> torch.Tensor:
    """σ²-weighted denoising score-matching loss, mean over the batch u (N, 1, H, W)."""
    n = u.shape[0]
    t = torch.rand(n, generator=generator, dtype=torch.float64) * (1 - T_EPS) + T_EPS
    z = torch.randn(u.shape, generator=generator, dtype=torch.float32)
    t, z = t.to(u.device, u.dtype), z.to(u.device)
    sigma = prior.sde.sigma(t)
    s = prior.network_score(u + sigma[:, None, None, None] * z, t, cond)
    return (sigma[:, None, None, None] * s + z).square().flatten(1).sum(1).mean()


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flip and right-angle rotation per image of x (N, C, H, W) (square images)."""
    k = torch.randint(0, 4, (x.shape[0],), generator=generator).tolist()
    f = torch.randint(0, 2, (x.shape[0],), generator=generator).tolist()
    out = [torch.rot90(xi, ki, (-2, -1)) for xi, ki in zip(x, k, strict=True)]
    return torch.stack([o.flip(-1) if fi else o for o, fi in zip(out, f, strict=True)])


def _batch(prior: ScorePrior, pairs: dict[str, torch.Tensor], idx: torch.Tensor,
           generator: torch.Generator, augment: bool, device: torch.device):
    host, dust = pairs["host"][idx], pairs["dust"][idx]
    if augment:
        both = _augment(torch.stack([host, dust], 1), generator)
        host, dust = both[:, 0], both[:, 1]
    host, dust = host.to(device), dust.to(device)
    x = host if prior.kind == "host" else dust
    return prior.to_network(x, host if prior.conditional else None)


def train_prior(pairs: dict[str, np.ndarray], config: PriorTrainConfig, out_dir: str | os.PathLike,
                device: str | torch.device | None = None, log: Callable[[str], None] | None = print,
                log_every: int = 50) -> ScorePrior:
    """Train (or resume) one prior on ``pairs`` (``host``, ``dust`` (N, H, W)); see module docstring.

    ``device`` defaults to CUDA when available. Returns the trained prior (eval mode, on ``device``).
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    checked = check_pairs(pairs["host"], pairs["dust"])
    data = {k: torch.as_tensor(v) for k, v in checked.items()}
    out_dir = Path(out_dir)
    ckpt_path = out_dir / f"{config.kind}.ckpt.pt"
    gen = torch.Generator().manual_seed(int(config.seed))
    with torch.random.fork_rng(devices=[]):           # seeded initial weights, global RNG untouched
        torch.manual_seed(int(config.seed))
        prior = build_prior(config.kind, config.unet(), VESDE(config.sigma_min, config.sigma_max))
    prior = prior.to(device)
    opt = torch.optim.Adam(prior.network.parameters(), lr=config.lr)
    step, losses, seconds = 0, [], 0.0
    if ckpt_path.exists():
        ck = load_versioned(ckpt_path, CKPT_FORMAT, CKPT_VERSION, "prior checkpoint")
        if json.loads(ck["resume_json"]) != config.resume_key():
            raise ImageError(f"{ckpt_path} was written with another configuration "
                             f"({ck['resume_json']}); use another --out or delete it")
        prior.network.load_state_dict(ck["state"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"])
        step, losses, seconds = int(ck["step"]), list(ck["losses"].tolist()), float(ck["seconds"])
        if log:
            log(f"{config.kind}: resumed from {ckpt_path} at step {step}")

    def checkpoint() -> None:
        save_torch({"format": CKPT_FORMAT, "format_version": CKPT_VERSION, "step": step,
                    "resume_json": json.dumps(config.resume_key()),
                    "state": {k: v.detach().cpu() for k, v in prior.network.state_dict().items()},
                    "optimizer": opt.state_dict(), "rng": gen.get_state(),
                    "losses": torch.tensor(losses, dtype=torch.float64), "seconds": seconds}, ckpt_path)

    prior.train()
    n = data["host"].shape[0]
    t0 = t_session = time.perf_counter()
    step0 = step
    while step < config.steps:
        idx = torch.randint(0, n, (config.batch_size,), generator=gen)
        u, cond = _batch(prior, data, idx, gen, config.augment, device)
        loss = dsm_loss(prior, u, cond, gen)
        if not math.isfinite(loss.item()):
            raise ImageError(f"{config.kind}: DSM loss is {loss.item()} at step {step}; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prior.network.parameters(), config.grad_clip)
        opt.step()
        step += 1
        losses.append(loss.item())
        if log and (step % log_every == 0 or step == config.steps):
            recent = np.mean(losses[-log_every:])
            log(f"{config.kind}: step {step}/{config.steps} loss {recent:.4g} "
                f"({(time.perf_counter() - t_session) / (step - step0):.3f} s/step this session)")
        if step % config.checkpoint_every == 0 or step == config.steps:
            seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            checkpoint()
    prior.eval()
    n_pix = int(np.prod(checked["host"].shape[1:]))
    prior.card = {"trained_on": config.data or "in-memory pairs", "n_pairs": int(n),
                  "image_shape": list(checked["host"].shape[1:]), "steps": step,
                  "final_loss_per_pixel": float(np.mean(losses[-100:]) / n_pix) if losses else None,
                  "train_seconds": seconds, "device": str(device),
                  "n_parameters": n_parameters(prior.network), "train_config": config.resume_key(),
                  "loss": "sigma^2-weighted DSM, mean over batch, sum over pixels"}
    prior.save(out_dir / f"{config.kind}.pt")
    return prior


__all__ = ["PriorTrainConfig", "load_pairs", "check_pairs", "dsm_loss", "train_prior"]
