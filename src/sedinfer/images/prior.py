"""Score priors on the host image S and the dust map D (Siegel & Melchior, Eqs. 3 and 9).

A prior is anything with a score: a callable ``score(x, t)`` (or an object with ``.score``)
returning ∇_x log p_t(x) for images x (G, H, W) in *physical* units, at the noise temperature
t of its SDE (STYLE.md principles 11 and 13). The network priors here are a
:class:`~sedinfer.images.unet.ScoreUNet` plus a :class:`~sedinfer.images.sde.VESDE` plus the
transform between physical images and the network's space, which is explicit:

* host S ≥ 0 (any normalisation): u = S / max S (peak 1, as scarlet normalises morphologies);
  the score in S is s_u / max S with the peak held fixed (the prior is on the shape);
* dust D ∈ (0, 1]: u = 1 − D, the fraction of light absorbed at λ₀ (0 where there is no dust,
  bounded, linear in the light lost); the score in D is −s_u;
* the condition of s(D | S): c = asinh(u_S / a) / asinh(1 / a), a = 0.01, the peak-normalised
  host with an asinh stretch so that the faint disk, where dust lanes lie, is visible to the
  network (any transform of the condition is allowed: its density is not modelled).

Classes: :class:`HostPrior` s(S), :class:`DustPrior` s(D) (unconditional, a baseline) and
:class:`ConditionalDustPrior` s(D | S). All share ``.score(x, t, condition=None)``,
``.network_score(u, t, cond)`` and ``.save(path)``; :func:`load` reads any of them back
(versioned dict of tensors + JSON config + card, ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sedinfer.atomic import load_versioned, save_torch, write_text
from sedinfer.images.errors import ImageError
from sedinfer.images.sde import VESDE
from sedinfer.images.unet import ScoreUNet, UNetConfig, n_parameters

FORMAT = "sedinfer.images.score_prior"
FORMAT_VERSION = 1
COND_STRETCH = 0.01
"""a of the asinh stretch of the condition channel (fraction of the host's peak)."""

ScoreFunction = Callable[..., torch.Tensor]
"""``score(x (G, H, W), t, [condition (G, H, W)]) -> ∇_x log p_t(x)`` (G, H, W)."""


def host_to_network(host: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u = S / max S (G, H, W) and the peaks (G,) (detached); a zero image raises."""
    peak = host.detach().flatten(1).amax(1)
    if (peak <= 0).any() or not torch.isfinite(peak).all():
        bad = torch.nonzero(~(peak > 0) | ~torch.isfinite(peak)).flatten().tolist()
        raise ImageError(f"host images {bad} have no positive finite pixel; the host prior needs one")
    return host / peak[:, None, None], peak


def dust_to_network(transmission: torch.Tensor) -> torch.Tensor:
    """u = 1 − D (G, H, W)."""
    return 1.0 - transmission


def condition_channel(host: torch.Tensor) -> torch.Tensor:
    """The s(D | S) condition c (G, 1, H, W) from a host image S (G, H, W)."""
    u, _ = host_to_network(host.detach())
    a = torch.tensor(COND_STRETCH, dtype=u.dtype, device=u.device)
    return (torch.asinh(u.clamp_min(0) / a) / torch.asinh(1.0 / a))[:, None]


def _times(t: float | torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,) or (t < 0).any() or (t > 1).any():
        raise ImageError(f"t must be a number or ({n},) values in [0, 1], got {tuple(t.shape)}")
    return t


class ScorePrior(nn.Module):
    """A score network with its SDE; subclasses fix the physical ↔ network transform."""

    kind = "base"
    conditional = False

    def __init__(self, network: ScoreUNet | None = None, sde: VESDE | None = None,
                 card: dict | None = None):
        super().__init__()
        cond = 1 if self.conditional else 0
        self.network = network or ScoreUNet(UNetConfig(cond_channels=cond))
        if self.network.config.cond_channels != cond:
            raise ImageError(f"{type(self).__name__} needs a network with cond_channels={cond}, got "
                             f"{self.network.config.cond_channels}")
        self.sde = sde or VESDE()
        self.card = dict(card or {})

    # ---- network space
    def to_network(self, x: torch.Tensor, condition: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(u (G, 1, H, W), cond (G, C, H, W) | None) from physical images (G, H, W)."""
        raise NotImplementedError

    def network_score(self, u: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """s(u, t | cond) in network space, (N, 1, H, W) for times t (N,); computed in the network's
        dtype and on its device, returned in those of ``u``."""
        ref = self.network.freq
        out = self.network(u.to(ref), self.sde.sigma(t.to(ref.device, torch.float64)).to(ref),
                           None if cond is None else cond.to(ref))
        return out.to(u)

    # ---- physical space
    def _check(self, x: torch.Tensor, condition: torch.Tensor | None) -> None:
        if x.ndim != 3:
            raise ImageError(f"{type(self).__name__}.score takes images (G, H, W), got {tuple(x.shape)}")
        if self.conditional and (condition is None or condition.shape != x.shape):
            raise ImageError(f"{type(self).__name__}.score needs condition= the host image S with the "
                             f"shape of x {tuple(x.shape)}, got "
                             f"{None if condition is None else tuple(condition.shape)}")

    def score(self, x: torch.Tensor, t: float | torch.Tensor,
              condition: torch.Tensor | None = None) -> torch.Tensor:
        """∇_x log p_t(x) (G, H, W) for physical images x (G, H, W) at temperature t."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t: float | torch.Tensor, condition: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.score(x, t, condition)

    # ---- persistence
    def config_dict(self) -> dict:
        return {"kind": self.kind, "unet": self.network.config.to_dict(), "sde": self.sde.to_dict(),
                "transform": self.transform_doc, "n_parameters": n_parameters(self.network)}

    transform_doc = ""

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> ScorePrior:
        """Read a saved prior of this class (see :func:`load`)."""
        prior = load(path, device)
        if not isinstance(prior, cls):
            raise ImageError(f"{path} holds a {type(prior).__name__} ({prior.kind!r}), not a {cls.__name__}")
        return prior

    def save(self, path: str | os.PathLike, write_card: bool = True) -> Path:
        """Write weights + config + card to ``path`` (.pt) atomically, and the card as JSON beside it."""
        path = Path(path)
        config = self.config_dict()
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
                   "config_json": json.dumps(config), "card_json": json.dumps(self.card),
                   "state": {k: v.detach().cpu() for k, v in self.network.state_dict().items()}}
        out = save_torch(payload, path)
        if write_card:
            write_text(path.with_suffix(".json"), json.dumps({"config": config, "card": self.card},
                                                             indent=2) + "\n")
        return out


class HostPrior(ScorePrior):
    """s(S): host-morphology prior; network space u = S / max S."""

    kind = "host"
    transform_doc = "u = S / max(S); score_S = score_u / max(S) (peak held fixed)"

    def to_network(self, x, condition=None):
        u, _ = host_to_network(x)
        return u[:, None], None

    def score(self, x, t, condition=None):
        self._check(x, condition)
        u, peak = host_to_network(x)
        s = self.network_score(u[:, None], _times(t, x.shape[0], x))[:, 0]
        return s / peak[:, None, None]


class DustPrior(ScorePrior):
    """s(D): unconditional dust prior (the baseline of issue 18 §5); u = 1 − D."""

    kind = "dust"
    transform_doc = "u = 1 - D; score_D = -score_u"

    def to_network(self, x, condition=None):
        return dust_to_network(x)[:, None], None

    def score(self, x, t, condition=None):
        self._check(x, None)
        return -self.network_score(dust_to_network(x)[:, None], _times(t, x.shape[0], x))[:, 0]


class ConditionalDustPrior(ScorePrior):
    """s(D | S): the dust prior conditioned on the host image (extra input channel); u = 1 − D."""

    kind = "dust_given_host"
    conditional = True
    transform_doc = ("u = 1 - D; score_D = -score_u; condition c = asinh((S/max S)/a)/asinh(1/a), "
                     f"a = {COND_STRETCH}")

    def to_network(self, x, condition=None):
        return dust_to_network(x)[:, None], condition_channel(condition)

    def score(self, x, t, condition=None):
        self._check(x, condition)
        u, c = self.to_network(x, condition)
        return -self.network_score(u, _times(t, x.shape[0], x), c)[:, 0]


PRIOR_CLASSES: dict[str, type[ScorePrior]] = {c.kind: c for c in (HostPrior, DustPrior,
                                                                   ConditionalDustPrior)}


def build_prior(kind: str, unet: UNetConfig | None = None, sde: VESDE | None = None,
                card: dict | None = None) -> ScorePrior:
    """A new (untrained) prior of ``kind`` 'host', 'dust' or 'dust_given_host'."""
    if kind not in PRIOR_CLASSES:
        raise ImageError(f"prior kind must be one of {sorted(PRIOR_CLASSES)}, got {kind!r}")
    cls = PRIOR_CLASSES[kind]
    cond = 1 if cls.conditional else 0
    unet = unet or UNetConfig(cond_channels=cond)
    if unet.cond_channels != cond:
        unet = UNetConfig.from_dict({**unet.to_dict(), "cond_channels": cond})
    return cls(ScoreUNet(unet), sde, card)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> ScorePrior:
    """Read a prior written by :meth:`ScorePrior.save` (no arbitrary pickles), in eval mode."""
    payload = load_versioned(path, FORMAT, FORMAT_VERSION, "score prior", device="cpu")
    config = json.loads(payload["config_json"])
    prior = build_prior(config["kind"], UNetConfig.from_dict(config["unet"]), VESDE(**config["sde"]),
                        json.loads(payload["card_json"]))
    prior.network.load_state_dict(payload["state"])
    return prior.to(device).eval()


def as_score(prior: Any) -> ScoreFunction | None:
    """The score function of ``prior``: its ``.score`` if it has one, else the callable itself."""
    if prior is None:
        return None
    fn = getattr(prior, "score", prior)
    if not callable(fn):
        raise ImageError(f"a prior must be callable score(x, t) or have .score, got {type(prior).__name__}")
    return fn


__all__ = ["FORMAT", "FORMAT_VERSION", "COND_STRETCH", "ScoreFunction", "host_to_network",
           "dust_to_network", "condition_channel", "ScorePrior", "HostPrior", "DustPrior",
           "ConditionalDustPrior", "PRIOR_CLASSES", "build_prior", "load", "as_score"]
