"""WISE W1–W4 from the autoencoder latents (Jespersen et al., §3.1; issue 17 §3).

The paper's network: inputs x = (s_1 … s_6, log10 norm, z) (8), an MLP 8 → 20 → 20 → 4 with ReLU
(684 parameters), and the normalisation re-applied after the output. The spectra are normalised
by their median f_λ in rest 5300–5850 Å, so a galaxy ``norm`` times brighter is 2.5 log10(norm)
mag brighter in every band:

    m̂_b = μ_b + τ_b · out_b(x) − 2.5 log10(norm)     (Vega mag),

with μ, τ the training mean and spread of m + 2.5 log10 norm (x is standardised likewise).
Training minimises the Gaussian negative log-likelihood with the measured σ_b (``wNsigmpro``);
a non-detection (null ``wNsigmpro``) gets σ = 10⁴ mag, which removes it from the fit, as in the
paper. Split 70 / 10 / 20 % (train / validation for early stopping / test).

Beyond the paper, a **variance head** (``variance_head=True``, the default): 4 more outputs give
an intrinsic scatter s_b ≥ 0 of the true magnitude about m̂_b, and the likelihood becomes
N(m | m̂, σ² + s²) (0.5 ln(σ² + s²) + 0.5 (m − m̂)² / (σ² + s²)); s → 0 is the paper's loss. It
was chosen over a small ensemble because the ensemble spread measures only how well 684
parameters are pinned by ~10⁵ galaxies (nearly nothing), while s measures what the optical
spectrum leaves undetermined — the predictive distribution p(WISE | optical) that p̂ integrates
over. The network is 8 → 20 → 20 → 8 (768 parameters); ``variance_head=False`` is the paper's
network exactly (σ_pred = 0, a delta-function prediction).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sedinfer.atomic import load_versioned, save_torch

FORMAT = "sedinfer-wise-predictor"
FORMAT_VERSION = 1
NONDETECTION_SIGMA_MAG: float = 1e4
"""σ (mag) given to a non-detection in the likelihood (the paper's choice)."""
N_BANDS = 4


@dataclass(frozen=True)
class PredictorConfig:
    """Network of a :class:`WisePredictor`: ``n_latent`` latents + log10 norm + z in, ``hidden``
    ReLU layers, 4 magnitudes (+ 4 scatters with ``variance_head``) out."""

    n_latent: int = 6
    hidden: tuple[int, ...] = (20, 20)
    variance_head: bool = True
    min_scatter_mag: float = 1e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))


@dataclass(frozen=True)
class PredictorTrainConfig:
    """Adam with early stopping on the validation NLL (``patience`` epochs)."""

    epochs: int = 300
    batch_size: int = 256
    learning_rate: float = 3e-3
    patience: int = 30
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0


def split_70_10_20(n: int, seed: int = 0, fractions=(0.7, 0.1, 0.2)) -> dict[str, np.ndarray]:
    """Seeded train / val / test row indices (sorted) in the given fractions."""
    perm = np.random.default_rng([seed, 3]).permutation(n)
    a = int(round(fractions[0] * n))
    b = a + int(round(fractions[1] * n))
    return {"train": np.sort(perm[:a]), "val": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


def likelihood_sigma(sigma_mag: torch.Tensor) -> torch.Tensor:
    """σ for the likelihood: the measured one, 10⁴ mag where it is null (non-detection) or ≤ 0."""
    ok = torch.isfinite(sigma_mag) & (sigma_mag > 0)
    return torch.where(ok, sigma_mag, torch.full_like(sigma_mag, NONDETECTION_SIGMA_MAG))


def gaussian_nll(
    mag: torch.Tensor, sigma_mag: torch.Tensor, pred: torch.Tensor, scatter: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of 0.5 ln v + 0.5 (m − m̂)² / v, v = σ² + s², over galaxies and bands (N, 4) each.
    Non-detections (null σ) get σ = 10⁴ mag; a null magnitude is replaced by the prediction."""
    sig = likelihood_sigma(sigma_mag)
    m = torch.where(torch.isfinite(mag), mag, pred.detach())
    v = sig**2 + (scatter**2 if scatter is not None else 0.0)
    return (0.5 * torch.log(v) + 0.5 * (m - pred) ** 2 / v).mean()


class WisePredictor(nn.Module):
    """(latents (N, S), norm (N,) in 10⁻¹⁷ erg/s/cm²/Å, z (N,)) → W1–W4 (Vega) and σ_pred."""

    def __init__(self, config: PredictorConfig | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config = config or PredictorConfig()
        self.metadata = dict(metadata or {})
        widths = [config.n_latent + 2, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], N_BANDS * (2 if config.variance_head else 1)))
        self.net = nn.Sequential(*layers)
        d = config.n_latent + 2
        for name, size in (("x_mean", d), ("x_std", d), ("y_mean", N_BANDS), ("y_std", N_BANDS)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def inputs(latents: torch.Tensor, norm: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x (N, S + 2) = (latents, log10 norm, z)."""
        return torch.cat([latents, torch.log10(norm)[:, None], z[:, None]], dim=1)

    def set_scaling(self, x: torch.Tensor, y_shifted: torch.Tensor) -> None:
        """Standardisation from training inputs x (N, S + 2) and m + 2.5 log10 norm (N, 4) (NaN skipped)."""
        self.x_mean.copy_(x.mean(0))
        self.x_std.copy_(x.std(0).clamp(min=1e-6))
        mu = torch.nanmean(y_shifted, 0)
        sd = torch.sqrt(torch.nanmean((y_shifted - mu) ** 2, 0))
        self.y_mean.copy_(torch.nan_to_num(mu, nan=0.0))
        self.y_std.copy_(torch.nan_to_num(sd, nan=1.0).clamp(min=1e-3))

    def forward(
        self, latents: torch.Tensor, norm: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(m̂ (N, 4) Vega mag, scatter s (N, 4) mag or None without the variance head)."""
        x = (self.inputs(latents, norm, z) - self.x_mean) / self.x_std
        out = self.net(x)
        mean = self.y_mean + self.y_std * out[:, :N_BANDS] - 2.5 * torch.log10(norm)[:, None]
        if not self.config.variance_head:
            return mean, None
        scatter = self.y_std * nn.functional.softplus(out[:, N_BANDS:]) + self.config.min_scatter_mag
        return mean, scatter

    @torch.no_grad()
    def predict(self, latents, norm, z) -> tuple[np.ndarray, np.ndarray]:
        """(mean, σ_pred) (N, 4) Vega mag as float64 arrays; σ_pred = 0 without the variance head."""
        t = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in (latents, norm, z)]
        if t[0].ndim != 2 or t[0].shape[1] != self.config.n_latent:
            raise ValueError(f"latents must be (N, {self.config.n_latent}), got {tuple(t[0].shape)}")
        if not bool((t[1] > 0).all()):
            raise ValueError("norm must be > 0 (the 5300-5850 A median flux)")
        was = self.training
        self.eval()
        mean, scatter = self(*t)
        self.train(was)
        sig = torch.zeros_like(mean) if scatter is None else scatter
        return mean.double().numpy(), sig.double().numpy()

    def save(self, path: str | os.PathLike) -> Path:
        """One self-describing file: format, version, config, metadata (JSON), state dict."""
        import sedinfer

        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "sedinfer_version": sedinfer.__version__,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()},
            "metadata_json": json.dumps(self.metadata),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        return save_torch(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WisePredictor:
        """Read a predictor written by :meth:`save`; in eval mode."""
        payload = load_versioned(path, FORMAT, FORMAT_VERSION, "WISE predictor")
        model = cls(PredictorConfig(**payload["config"]), json.loads(payload["metadata_json"]))
        model.load_state_dict(payload["state_dict"])
        return model.eval()


def train_predictor(
    latents,
    norm,
    z,
    mag_vega,
    sigma_vega,
    config: PredictorConfig | None = None,
    train_config: PredictorTrainConfig = PredictorTrainConfig(),
) -> tuple[WisePredictor, dict[str, Any]]:
    """Fit a :class:`WisePredictor` to (N, S) latents, (N,) norm and z, (N, 4) ``wNmpro`` and
    ``wNsigmpro`` (NaN σ: non-detection). Returns (the best-validation model, info with the
    ``split`` indices and the per-epoch ``history`` of train and validation NLL)."""
    tc = train_config
    config = config or PredictorConfig(n_latent=int(np.shape(latents)[1]))
    arr = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in (latents, norm, z, mag_vega, sigma_vega)]
    s_t, n_t, z_t, m_t, e_t = arr
    if not bool((n_t > 0).all()):
        raise ValueError("norm must be > 0 for every galaxy")
    split = split_70_10_20(len(s_t), tc.seed, tc.fractions)
    tr, va = (torch.as_tensor(split[k]) for k in ("train", "val"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tc.seed)
        model = WisePredictor(config)
        detected = torch.isfinite(e_t) & (e_t > 0)
        shifted = torch.where(
            detected, m_t + 2.5 * torch.log10(n_t)[:, None], torch.full_like(m_t, float("nan"))
        )
        model.set_scaling(model.inputs(s_t, n_t, z_t)[tr], shifted[tr])
        opt = torch.optim.Adam(model.parameters(), lr=tc.learning_rate)
        gen = torch.Generator().manual_seed(tc.seed)

        def nll(rows: torch.Tensor) -> torch.Tensor:
            mean, scatter = model(s_t[rows], n_t[rows], z_t[rows])
            return gaussian_nll(m_t[rows], e_t[rows], mean, scatter)

        best, best_sd, since, history = float("inf"), None, 0, []
        for epoch in range(tc.epochs):
            model.train()
            order = tr[torch.randperm(len(tr), generator=gen)]
            losses = []
            for a in range(0, len(order), tc.batch_size):
                loss = nll(order[a : a + tc.batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            with torch.no_grad():
                val = float(nll(va)) if len(va) else float(np.mean(losses))
            history.append({"epoch": epoch, "train_nll": float(np.mean(losses)), "val_nll": val})
            if val < best - 1e-6:
                best, since = val, 0
                best_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since += 1
                if since >= tc.patience:
                    break
    model.load_state_dict(best_sd)
    model.metadata.update(
        {
            "n_train": len(tr),
            "n_val": len(va),
            "n_test": len(split["test"]),
            "best_val_nll": best,
            "epochs_run": len(history),
            "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(tc).items()},
        }
    )
    return model.eval(), {"split": split, "history": history}


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "NONDETECTION_SIGMA_MAG",
    "PredictorConfig",
    "PredictorTrainConfig",
    "WisePredictor",
    "gaussian_nll",
    "likelihood_sigma",
    "split_70_10_20",
    "train_predictor",
]
