"""A small U-Net score network s(u, t | c) (Ronneberger et al. 2015; the score parameterisation of
Song et al. 2021).

Input: the image u (N, 1, H, W) and optional conditioning channels c (N, C, H, W), concatenated
(STYLE.md principle 13: conditioning as extra input channels); H and W divisible by
2^(levels - 1). The noise level enters through Gaussian Fourier features of log σ(t) feeding an
MLP whose output is added inside every residual block. Each level has ``blocks`` residual blocks
(GroupNorm, SiLU, 3 × 3 convolutions); levels are joined by stride-2 convolutions on the way down,
nearest-neighbour upsampling on the way up, with skip connections. The network output is divided
by σ(t), so it learns -z (unit scale) at every noise level: s ≈ -(u_t - u₀)/σ² = -z/σ.

Default (``UNetConfig()``): 16, 32, 64 channels over 3 levels, one block each: 0.37 M parameters
(``base_channels=32``: 1.41 M). Measured step times are in ``docs/dustmaps.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """Architecture: channels per level = ``base_channels`` × ``channel_mult``; ``cond_channels``
    extra input channels; ``groups`` for GroupNorm; ``emb_dim`` of the noise-level embedding."""

    cond_channels: int = 0
    base_channels: int = 16
    channel_mult: tuple[int, ...] = (1, 2, 4)
    blocks: int = 1
    emb_dim: int = 64
    groups: int = 8
    fourier_scale: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        if self.cond_channels < 0 or self.base_channels < 1 or self.blocks < 1 or not self.channel_mult:
            raise ValueError(f"invalid UNetConfig {self}")
        if any(self.base_channels * m % self.groups for m in self.channel_mult):
            raise ValueError(f"base_channels × channel_mult {self.channel_mult} must be divisible by "
                             f"groups={self.groups}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return cls(**{**d, "channel_mult": tuple(d["channel_mult"])})


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in) if c_in % groups == 0 else 1, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return self.skip(x) + h / math.sqrt(2.0)


class ScoreUNet(nn.Module):
    """s(u, σ | c): ``forward(u (N, 1, H, W), sigma (N,), cond (N, C, H, W) | None)`` -> (N, 1, H, W)."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or UNetConfig()
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        # fixed random Fourier frequencies (a buffer, saved with the weights)
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("freq", torch.randn(cfg.emb_dim // 2, generator=gen) * cfg.fourier_scale)
        self.emb_mlp = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.SiLU(),
                                     nn.Linear(cfg.emb_dim, cfg.emb_dim))
        self.head = nn.Conv2d(1 + cfg.cond_channels, chans[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = chans[0]
        for i, ch in enumerate(chans):
            self.down.append(nn.ModuleList([_ResBlock(c if b == 0 else ch, ch, cfg.emb_dim, cfg.groups)
                                            for b in range(cfg.blocks)]))
            c = ch
            if i < len(chans) - 1:
                self.pool.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = _ResBlock(c, c, cfg.emb_dim, cfg.groups)
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i in reversed(range(len(chans))):
            ch = chans[i]
            self.up.append(nn.ModuleList([_ResBlock(2 * ch if b == 0 else ch, ch, cfg.emb_dim, cfg.groups)
                                          for b in range(cfg.blocks)]))
            if i > 0:
                self.unpool.append(nn.Conv2d(ch, chans[i - 1], 3, padding=1))
        self.out_norm = nn.GroupNorm(cfg.groups, chans[0])
        self.out = nn.Conv2d(chans[0], 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def downsampling(self) -> int:
        """H and W must be divisible by this."""
        return 2 ** (len(self.config.channel_mult) - 1)

    def forward(self, u: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None
                ) -> torch.Tensor:
        cfg = self.config
        if u.ndim != 4 or u.shape[1] != 1:
            raise ValueError(f"u must be (N, 1, H, W), got {tuple(u.shape)}")
        if u.shape[-1] % self.downsampling or u.shape[-2] % self.downsampling:
            raise ValueError(f"image size {tuple(u.shape[-2:])} must be divisible by {self.downsampling}")
        if cfg.cond_channels:
            if cond is None or cond.shape != (u.shape[0], cfg.cond_channels, *u.shape[-2:]):
                raise ValueError(f"cond must be (N, {cfg.cond_channels}, H, W) matching u "
                                 f"{tuple(u.shape)}, got {None if cond is None else tuple(cond.shape)}")
            x = torch.cat([u, cond.to(u.dtype)], 1)
        else:
            x = u
        arg = 2 * math.pi * torch.log(sigma.to(u.dtype))[:, None] * self.freq[None, :]
        emb = self.emb_mlp(torch.cat([torch.sin(arg), torch.cos(arg)], 1))
        h = self.head(x)
        skips = []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        h = self.mid(h, emb)
        for j, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], 1)
            for block in blocks:
                h = block(h, emb)
            if j < len(self.unpool):
                h = self.unpool[j](nn.functional.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.out(nn.functional.silu(self.out_norm(h)))
        return out / sigma.to(u.dtype)[:, None, None, None]


def n_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = ["UNetConfig", "ScoreUNet", "n_parameters"]
