"""Training losses of the spectrum autoencoder (Melchior et al. 2023; Liang et al. 2023).

- **Fidelity**: χ² per unmasked pixel of each spectrum, χ²_pix = Σ_i w_i (y_i − ŷ_i)² / Σ_i 1[w_i > 0]
  with w the inverse variance (0 where masked), so masked pixels change neither numerator nor
  denominator.
- **Similarity** (Liang et al. 2023, §3.1): for every pair (i, j) in a batch, the latent
  dissimilarity D^s_ij = |s_i − s_j|² / S and the spectral dissimilarity
  D^y_ij = Σ_k W_ijk (y_ik − y_jk)² / Σ_k 1[W_ijk > 0], W = w_i w_j / (w_i + w_j), computed in the
  rest frame, each divided by its mean over distinct pairs; the loss
  σ(k (D^s − D^y) − c/2) + σ(−k (D^s − D^y) − c/2), summed over distinct pairs and divided by N²,
  penalises pairs whose latent and spectral distances disagree (slope k, offset c).
- **Consistency** (ibid. §3.2): a copy of each spectrum moved to another redshift
  (:func:`~sedinfer.spectra.restframe.shift_redshift`) must have the same latents:
  σ(|s − s_aug|² / (S · mean_d var(s_d))) − ½, averaged over the batch.

Each term is a mean per spectrum (spender sums each over the batch: the same relative weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sedinfer.spectra.restframe import observed_to_rest, shift_redshift


@dataclass(frozen=True)
class LossConfig:
    """Weights and shape of the three loss terms; ``similarity_stride`` thins the rest grid
    used for the spectral distances (memory ∝ N² K / stride)."""

    similarity_amp: float = 1.0
    consistency_amp: float = 1.0
    similarity_slope: float = 5.0
    similarity_offset: float = 5.0
    similarity_stride: int = 4


def fidelity_chi2(flux: torch.Tensor, ivar: torch.Tensor, model: torch.Tensor) -> torch.Tensor:
    """χ² per unmasked pixel of each spectrum, (N,), from data ``flux``, ``ivar`` and ``model`` (N, M)."""
    w = torch.where(ivar > 0, ivar, torch.zeros_like(ivar))
    r = torch.where(ivar > 0, flux - model, torch.zeros_like(flux))
    n = (ivar > 0).sum(-1).clamp(min=1)
    return (w * r**2).sum(-1) / n


def _normalise(d: torch.Tensor) -> torch.Tensor:
    n = d.shape[0]
    return d * (n * (n - 1)) / d.sum().clamp(min=torch.finfo(d.dtype).tiny)


def spectral_dissimilarity(flux_rest: torch.Tensor, ivar_rest: torch.Tensor) -> torch.Tensor:
    """D^y (N, N) of rest-frame spectra (N, K) with inverse variances (N, K) (module docstring)."""
    n = flux_rest.shape[0]
    out = torch.empty(n, n, dtype=flux_rest.dtype, device=flux_rest.device)
    for i in range(n):  # one row at a time: memory N K instead of N² K
        wi, wj = ivar_rest[i : i + 1], ivar_rest
        both = (wi > 0) & (wj > 0)
        w = torch.where(both, wi * wj / (wi + wj).clamp(min=1e-30), torch.zeros_like(wj))
        out[i] = (w * (flux_rest[i : i + 1] - flux_rest) ** 2).sum(-1) / both.sum(-1).clamp(min=1)
    return out


def similarity_loss(
    latents: torch.Tensor, spec_dissimilarity: torch.Tensor, config: LossConfig = LossConfig()
) -> torch.Tensor:
    """Similarity loss (scalar) of latents (N, S) given D^y (N, N) (no gradient needed in D^y)."""
    n, s = latents.shape
    if n < 3:
        return latents.sum() * 0
    d_s = ((latents[None, :, :] - latents[:, None, :]) ** 2).sum(-1) / s
    x = _normalise(d_s) - _normalise(spec_dissimilarity)
    k, c = config.similarity_slope, config.similarity_offset
    loss = torch.sigmoid(k * x - 0.5 * c) + torch.sigmoid(-k * x - 0.5 * c)
    loss = loss * (1 - torch.eye(n, dtype=loss.dtype, device=loss.device))
    return loss.sum() / n**2


def consistency_loss(latents: torch.Tensor, latents_aug: torch.Tensor) -> torch.Tensor:
    """Consistency loss (scalar) between latents (N, S) and those of augmented copies (N, S)."""
    n, s = latents.shape
    tol2 = latents.var(dim=0).mean().clamp(min=1e-12) if n > 1 else latents.new_tensor(1.0)
    x = ((latents_aug - latents) ** 2).sum(-1) / (s * tol2)
    return (torch.sigmoid(x) - 0.5).mean()


def augment_redshift(
    flux: torch.Tensor,
    ivar: torch.Tensor,
    z: torch.Tensor,
    dloglam_obs: float,
    z_max: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Copies of observed spectra (N, M) at new redshifts drawn uniformly in [0, ``z_max``]:
    (flux, ivar, z_new)."""
    z_new = torch.rand(z.shape, generator=generator, dtype=torch.float64).to(z) * z_max
    f, w = shift_redshift(flux, ivar, dloglam_obs, z, z_new)
    return f, w, z_new


def rest_frame_for_similarity(
    flux: torch.Tensor,
    ivar: torch.Tensor,
    z: torch.Tensor,
    loglam0_obs: float,
    dloglam_obs: float,
    loglam_rest: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observed spectra moved onto the rest grid ``loglam_rest`` (K,): (flux, ivar) (N, K)."""
    return observed_to_rest(flux, ivar, loglam0_obs, dloglam_obs, loglam_rest, z)


__all__ = [
    "LossConfig",
    "augment_redshift",
    "consistency_loss",
    "fidelity_chi2",
    "rest_frame_for_similarity",
    "similarity_loss",
    "spectral_dissimilarity",
]
