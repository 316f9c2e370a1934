"""A batch of spectra on one observed grid, and their normalisation.

Spectra are normalised as in the paper (Jespersen et al., §3.1) and spender (Melchior et al.
2023): by the median flux in rest-frame 5300–5850 Å, a window free of strong emission lines
that stays inside the SDSS grid for 0 ≤ z ≤ 0.59. The normalisation is kept, so the flux in
physical units is ``flux_norm * norm_flam_1e17`` (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹, the unit of SDSS
files) and ``ivar_flam_1e17 = ivar_norm / norm_flam_1e17²``.

Masked pixels (``mask`` True) carry ``ivar_norm = 0``. A spectrum that cannot be used keeps
its row with ``ok = False`` and a ``reason``; its fluxes are zero and its pixels all masked.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

NORM_WINDOW_REST_AA: tuple[float, float] = (5300.0, 5850.0)
"""Rest-frame window (Å) of the median normalisation."""
MIN_NORM_PIXELS: int = 50
"""Fewest unmasked pixels in the window for a normalisation (the window spans ~430 SDSS pixels)."""


def normalise(wave_obs_aa: np.ndarray, flux: np.ndarray, mask: np.ndarray, z: np.ndarray,
              window_rest_aa: tuple[float, float] = NORM_WINDOW_REST_AA,
              min_pixels: int = MIN_NORM_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """Median flux of each spectrum over the unmasked pixels of the rest-frame window.

    ``wave_obs_aa`` (M,), ``flux`` (N, M), ``mask`` (N, M) (True = masked), ``z`` (N,).
    Returns ``norm`` (N,) in the unit of ``flux`` (NaN where it cannot be computed) and
    ``reason`` (N,) strings, empty where the normalisation is fine.
    """
    flux = np.asarray(flux, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    rest = wave_obs_aa[None, :] / (1.0 + np.where(np.isfinite(z), z, 0.0))[:, None]
    inside = (rest >= window_rest_aa[0]) & (rest <= window_rest_aa[1])
    use = inside & ~np.asarray(mask, dtype=bool) & np.isfinite(flux)
    count = use.sum(-1)
    enough = count >= min_pixels
    med = np.full(flux.shape[0], np.nan)
    if enough.any():
        med[enough] = np.nanmedian(np.where(use[enough], flux[enough], np.nan), axis=-1)
    lo, hi = window_rest_aa
    reason = np.full(flux.shape[0], "", dtype=object)
    for i in np.flatnonzero(~np.isfinite(z) | ~enough | ~(med > 0)):
        if not np.isfinite(z[i]):
            reason[i] = "no redshift to place the normalisation window"
        elif not enough[i]:
            reason[i] = (f"{count[i]} unmasked pixels in rest-frame {lo:g}-{hi:g} A (need {min_pixels}; "
                         f"z = {z[i]:.4g})")
        else:
            reason[i] = f"median flux {med[i]:.3g} <= 0 in rest-frame {lo:g}-{hi:g} A"
    norm = np.where(reason == "", med, np.nan)
    return norm, reason.astype(str)


@dataclass
class SpectrumBatch:
    """N spectra on the grid ``wave_obs_aa`` (M,) of one instrument.

    ``flux_norm`` (N, M) f_λ / norm; ``ivar_norm`` (N, M) its inverse variance (0 where
    masked); ``mask`` (N, M) True where a pixel is unusable; ``norm_flam_1e17`` (N,) the
    normalisation in 10⁻¹⁷ erg/s/cm²/Å; ``z``, ``z_err`` (N,); ``spec_class`` (N,) e.g.
    ``"GALAXY"``; ``id`` (N,) a name per spectrum; ``ok`` (N,) and ``reason`` (N,) why not;
    ``source`` (N,) where each row came from (a file path, or ``"mock"``);
    ``lsf_sigma_kms`` (N,) the line-spread σ of each spectrum (NaN when unknown).
    """

    wave_obs_aa: np.ndarray
    flux_norm: np.ndarray
    ivar_norm: np.ndarray
    mask: np.ndarray
    norm_flam_1e17: np.ndarray
    z: np.ndarray
    z_err: np.ndarray
    spec_class: np.ndarray
    id: np.ndarray
    ok: np.ndarray
    reason: np.ndarray
    source: np.ndarray
    lsf_sigma_kms: np.ndarray

    def __post_init__(self) -> None:
        n, m = np.shape(self.flux_norm)
        if np.shape(self.wave_obs_aa) != (m,):
            raise ValueError(f"wave_obs_aa has shape {np.shape(self.wave_obs_aa)}; expected ({m},)")
        for f in fields(self):
            if f.name in ("wave_obs_aa",):
                continue
            shape = np.shape(getattr(self, f.name))
            want = (n, m) if f.name in ("flux_norm", "ivar_norm", "mask") else (n,)
            if shape != want:
                raise ValueError(f"SpectrumBatch.{f.name} has shape {shape}; expected {want}")

    def __len__(self) -> int:
        return int(np.shape(self.flux_norm)[0])

    @property
    def flux_flam_1e17(self) -> np.ndarray:
        """f_λ in 10⁻¹⁷ erg/s/cm²/Å, (N, M) (zero for rows with ok False)."""
        return self.flux_norm * np.nan_to_num(self.norm_flam_1e17, nan=0.0)[:, None]

    @property
    def ivar_flam_1e17(self) -> np.ndarray:
        """Inverse variance of :attr:`flux_flam_1e17`, (N, M)."""
        norm = np.where(np.isfinite(self.norm_flam_1e17), self.norm_flam_1e17, np.inf)
        return self.ivar_norm / norm[:, None] ** 2

    def select(self, rows) -> SpectrumBatch:
        """A new batch of the given rows (indices or a boolean mask)."""
        kw = {f.name: getattr(self, f.name) if f.name == "wave_obs_aa" else getattr(self, f.name)[rows]
              for f in fields(self)}
        return SpectrumBatch(**kw)

    def tensors(self, dtype: torch.dtype = torch.float32, device=None) -> dict[str, torch.Tensor]:
        """The numeric columns as tensors: flux_norm, ivar_norm (N, M), mask (N, M) bool,
        norm_flam_1e17, z (N,), ok (N,) bool."""
        out = {k: torch.as_tensor(np.asarray(getattr(self, k)), dtype=dtype, device=device)
               for k in ("flux_norm", "ivar_norm", "norm_flam_1e17", "z")}
        out["mask"] = torch.as_tensor(np.asarray(self.mask), dtype=torch.bool, device=device)
        out["ok"] = torch.as_tensor(np.asarray(self.ok), dtype=torch.bool, device=device)
        return out


def assemble(wave_obs_aa: np.ndarray, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray,
             z: np.ndarray, z_err: np.ndarray, spec_class, ids, source, reason_in=None,
             lsf_sigma_kms=None, window_rest_aa: tuple[float, float] = NORM_WINDOW_REST_AA) -> SpectrumBatch:
    """Mask, normalise and pack spectra in physical units (flux, ivar (N, M) in 10⁻¹⁷ units).

    ``reason_in`` (N,) holds reasons found earlier (empty strings for none); rows with a reason
    get ``ok = False``, zero flux, zero ivar and every pixel masked.
    """
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    n = flux.shape[0]
    mask = np.asarray(mask, dtype=bool) | ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
    reason = (np.full(n, "", dtype=object) if reason_in is None
              else np.array([str(r) for r in reason_in], dtype=object))
    fresh = reason == ""
    reason[fresh & mask.all(-1)] = "every pixel is masked (and_mask, ivar <= 0, non-finite or sky line)"
    reason[fresh & ~np.isfinite(flux).any(-1)] = "flux is NaN or infinite in every pixel"
    norm, why = normalise(wave_obs_aa, np.where(mask, np.nan, flux), mask, z, window_rest_aa)
    reason = np.where(reason == "", why, reason)
    ok = reason == ""
    scale = np.where(ok, norm, 1.0)[:, None]
    flux_norm = np.where(mask | ~ok[:, None], 0.0, flux / scale)
    ivar_norm = np.where(mask | ~ok[:, None], 0.0, ivar * scale**2)
    mask = mask | ~ok[:, None]
    return SpectrumBatch(np.asarray(wave_obs_aa, dtype=np.float64), flux_norm.astype(np.float32),
                         ivar_norm.astype(np.float32), mask, np.where(ok, norm, np.nan),
                         np.asarray(z, dtype=np.float64), np.asarray(z_err, dtype=np.float64),
                         np.asarray(spec_class, dtype=str), np.asarray(ids, dtype=str), ok,
                         reason.astype(str), np.asarray(source, dtype=str),
                         np.full(n, np.nan) if lsf_sigma_kms is None else
                         np.broadcast_to(np.asarray(lsf_sigma_kms, dtype=np.float64), (n,)).copy())


__all__ = ["MIN_NORM_PIXELS", "NORM_WINDOW_REST_AA", "SpectrumBatch", "assemble", "normalise"]
