"""Explicit redshift between a rest-frame model grid and an observed log-uniform grid.

The autoencoder's decoder (Melchior et al. 2023, AJ 166, 74, §2.2) predicts a spectrum on a
rest-frame grid that is wider and finer than the data: log-uniform,

    log10 λ_rest,k = loglam0_rest + dloglam_rest · k,  k < n_rest,

covering every observed pixel de-redshifted over 0 ≤ z ≤ z_max. Observing it at redshift z
samples it at λ_obs / (1 + z), i.e. at the fractional index

    u_i = (log10 λ_obs,i − log10(1 + z) − loglam0_rest) / dloglam_rest,

by linear interpolation (differentiable in the rest-frame flux); the LSF is applied afterwards on
the observed grid by :meth:`sedinfer.spectra.Instrument.apply_lsf`. Fluxes are normalised f_λ
(the 5300–5850 Å rest-frame median is 1), so no (1 + z) factors enter.

The same log-uniform index arithmetic moves observed spectra to the rest frame (the similarity
loss, Liang et al. 2023, AJ 166, 75, §3.1) and to another redshift (the consistency
augmentation, ibid. §3.2). All functions are pure tensor kernels; shapes are in the docstrings.
"""

from __future__ import annotations

import math

import torch


def rest_grid(
    loglam0_obs: float, dloglam_obs: float, n_obs: int, z_max: float, dloglam_rest: float, margin_pix: int = 2
) -> tuple[float, int]:
    """(loglam0_rest, n_rest) of a log-uniform rest grid of step ``dloglam_rest`` covering the
    observed grid de-redshifted over 0 ≤ z ≤ ``z_max``, with ``margin_pix`` spare pixels each side."""
    if not (z_max > 0 and dloglam_rest > 0 and n_obs >= 2):
        raise ValueError(
            f"need z_max > 0, dloglam_rest > 0, n_obs >= 2; got {z_max}, {dloglam_rest}, {n_obs}"
        )
    lo = loglam0_obs - math.log10(1.0 + z_max) - margin_pix * dloglam_rest
    hi = loglam0_obs + dloglam_obs * (n_obs - 1) + margin_pix * dloglam_rest
    return lo, int(math.ceil((hi - lo) / dloglam_rest)) + 1


def _interp_log_uniform(values: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation of ``values`` (N, K) at fractional indices ``u`` (N, M); returns the
    interpolated (N, M) (0 outside) and a bool (N, M), True where 0 ≤ u ≤ K − 1."""
    k = values.shape[-1]
    valid = (u >= 0) & (u <= k - 1)
    uc = u.clamp(0, k - 1)
    i0 = uc.floor().long().clamp(max=k - 2)
    t = (uc - i0).to(values.dtype)
    lo = torch.gather(values, -1, i0)
    hi = torch.gather(values, -1, i0 + 1)
    out = lo + t * (hi - lo)
    return torch.where(valid, out, torch.zeros_like(out)), valid


def rest_to_observed(
    flux_rest: torch.Tensor,
    loglam0_rest: float,
    dloglam_rest: float,
    loglam_obs: torch.Tensor,
    z: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rest-frame spectra ``flux_rest`` (N, K) sampled at λ_obs / (1 + z) on ``loglam_obs`` (M,)
    for redshifts ``z`` (N,): (flux_obs (N, M), valid (N, M) bool). Pixels outside the rest grid
    are 0 and not valid."""
    u = (loglam_obs[None, :] - torch.log10(1.0 + z)[:, None] - loglam0_rest) / dloglam_rest
    return _interp_log_uniform(flux_rest, u.to(flux_rest.dtype))


def observed_to_rest(
    flux_obs: torch.Tensor,
    ivar_obs: torch.Tensor,
    loglam0_obs: float,
    dloglam_obs: float,
    loglam_rest: torch.Tensor,
    z: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observed spectra (N, M) on the grid 10^(loglam0_obs + dloglam_obs i) moved to the rest
    grid ``loglam_rest`` (K,) at redshifts ``z`` (N,): flux by linear interpolation, ivar the
    smaller of the two neighbours (0 where either is masked or outside). Returns (N, K) each."""
    u = (loglam_rest[None, :] + torch.log10(1.0 + z)[:, None] - loglam0_obs) / dloglam_obs
    return _resample_masked(flux_obs, ivar_obs, u.to(flux_obs.dtype))


def shift_redshift(
    flux_obs: torch.Tensor, ivar_obs: torch.Tensor, dloglam_obs: float, z: torch.Tensor, z_new: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observed spectra (N, M) at ``z`` (N,) as they would be observed at ``z_new`` (N,) on the
    same log-uniform grid: f_new(λ) = f(λ (1 + z) / (1 + z_new)). Pixels that come from outside
    the grid or from a masked pixel get flux 0, ivar 0. Returns (flux (N, M), ivar (N, M))."""
    m = flux_obs.shape[-1]
    shift = (torch.log10(1.0 + z) - torch.log10(1.0 + z_new)) / dloglam_obs
    u = torch.arange(m, dtype=flux_obs.dtype, device=flux_obs.device)[None, :] + shift[:, None].to(
        flux_obs.dtype
    )
    return _resample_masked(flux_obs, ivar_obs, u)


def _resample_masked(
    flux: torch.Tensor, ivar: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    f, valid = _interp_log_uniform(flux, u)
    k = flux.shape[-1]
    i0 = u.clamp(0, k - 1).floor().long().clamp(max=k - 2)
    w = torch.minimum(torch.gather(ivar, -1, i0), torch.gather(ivar, -1, i0 + 1))
    w = torch.where(valid & (w > 0), w, torch.zeros_like(w))
    return torch.where(w > 0, f, torch.zeros_like(f)), w


__all__ = ["observed_to_rest", "rest_grid", "rest_to_observed", "shift_redshift"]
