"""Multiscale occlusion: which pixels of a spectrum the WISE prediction depends on (issue 17 §6).

Jespersen et al. (§5.3, Figs. 13–14, appendix I), after the inverse multiscale occlusion of Shen
& Melchior (2023, arXiv:2310.20012). For each window length L (pixels of the observed grid) a
window slides over the spectrum with stride ⌈L · ``stride_fraction``⌉ (half-overlapping by
default; a last window ends on the last pixel). Each window in turn is **occluded**: its
unmasked pixels are replaced by Gaussian noise with the median of their fluxes and five times
their variance,

    y_p ← median_w(y) + √(5 var_w(y)) ε_p,   ε_p ~ N(0, 1),   p ∈ window, ivar_p > 0,

with var_w the sample variance (ddof 1) of the window's unmasked fluxes ("the same median flux as
the spectral section, but five times the variance"). The occluded spectrum is encoded again and
the WISE predictor run again, giving m̂_occ (Vega mag, 4 bands). The response of band b is

    Δχ_b = (m̂_occ,b − m̂_ref,b) / σ_b,

the change of χ = (m̂ − m) / σ (model minus data, as the paper's Fig. 15; the data m cancels),
with the reference m̂_ref the prediction for the unoccluded spectrum (default) or any given
``reference_mag`` — the paper's Fig. 13 uses prospector's prediction there, "Δχ = Δχ_MO −
χ_prospector". σ_b is ``sigma_mag`` (e.g. the catalog's ``wNsigmpro``) or, by default, the
predictor's predictive σ of the unoccluded spectrum. Δχ_b > 0: occluding the window makes band b
fainter, i.e. the feature there brightens band b (the sense of the paper's Fig. 14).

A pixel's value at scale L is the mean Δχ of the evaluated windows of length L that contain it;
the map is the mean over the scales at which the pixel was covered. The paper gives no window
lengths; the default :data:`DEFAULT_WINDOWS_PIX` = 8 … 128 pixels (550 km/s to 8800 km/s on the
SDSS grid of 69 km/s per pixel, ≈ 12–200 Å at 6000 Å) spans one emission line to a broad
absorption band.

**Masked pixels** (ivar ≤ 0) stay masked (flux 0, ivar 0) inside an occluded window, take no part
in its median and variance, and get NaN in the map: the encoder never saw them. A window with
fewer than :data:`MIN_WINDOW_PIXELS` unmasked pixels is not evaluated; pixels covered by no
evaluated window at any scale are NaN. The inverse variance is not changed by the occlusion (the
encoder uses it only as the mask). Bands whose σ is not finite and > 0 (non-detections) are NaN.

The noise comes from one ``torch.Generator``, drawn per (spectrum, scale) for every window in a
fixed order, so the result does not depend on ``batch_size``. Pure: no I/O; the models are put in
eval mode for the call and restored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

DEFAULT_WINDOWS_PIX: tuple[int, ...] = (8, 16, 32, 64, 128)
"""Default occlusion window lengths, observed-grid pixels (module docstring)."""
NOISE_VARIANCE_FACTOR: float = 5.0
"""The occluding noise has this many times the variance of the window's fluxes (the paper's 5)."""
MIN_WINDOW_PIXELS: int = 2
"""Fewest unmasked pixels for a window to be occluded (a variance needs two)."""
N_BANDS = 4


@dataclass
class OcclusionResult:
    """Multiscale occlusion of N spectra of M pixels.

    ``delta_chi`` (N, 4, M): Δχ per pixel and band, averaged over scales (NaN: masked, not
    covered, or no σ); ``per_scale`` (N, S, 4, M) the per-scale maps when asked for, else None;
    ``pred_mag`` (N, 4) the unoccluded prediction (Vega mag); ``reference_mag`` (N, 4) m̂_ref;
    ``sigma_mag`` (N, 4) the σ used; ``windows_pix`` the window lengths; ``n_windows`` (N,) the
    windows evaluated per spectrum (encoder calls).
    """

    delta_chi: torch.Tensor
    per_scale: torch.Tensor | None
    pred_mag: torch.Tensor
    reference_mag: torch.Tensor
    sigma_mag: torch.Tensor
    windows_pix: tuple[int, ...]
    n_windows: torch.Tensor


def window_starts(n_pix: int, length: int, stride_fraction: float = 0.5) -> torch.Tensor:
    """First pixels (W,) of the windows of ``length`` sliding over ``n_pix`` pixels with stride
    ⌈length · stride_fraction⌉; the last window ends on the last pixel."""
    if not 1 <= length <= n_pix:
        raise ValueError(f"window length {length} must be in [1, {n_pix}] pixels")
    if not 0 < stride_fraction <= 1:
        raise ValueError(f"stride_fraction must be in (0, 1], got {stride_fraction}")
    stride = max(1, math.ceil(length * stride_fraction))
    starts = list(range(0, n_pix - length + 1, stride))
    if starts[-1] != n_pix - length:
        starts.append(n_pix - length)
    return torch.tensor(starts, dtype=torch.long)


def check_windows(windows_pix: Sequence[int], n_pix: int) -> tuple[int, ...]:
    """``windows_pix`` as sorted unique ints in [1, n_pix]; ``ValueError`` otherwise."""
    try:
        out = tuple(sorted({int(w) for w in windows_pix}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"window lengths must be integers, got {windows_pix!r}") from err
    if not out or out[0] < 1 or out[-1] > n_pix:
        raise ValueError(f"window lengths must be in [1, {n_pix}] pixels, got {windows_pix!r}")
    return out


def occlude_windows(
    flux: torch.Tensor, good: torch.Tensor, starts: torch.Tensor, length: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The occluding values of one spectrum's windows.

    ``flux`` (M,) with masked pixels 0, ``good`` (M,) True where unmasked, ``starts`` (W,).
    Returns (pixel indices (W, L), replacement values (W, L): noise on unmasked pixels, 0 on
    masked ones, and ``evaluate`` (W,) True for windows with ≥ MIN_WINDOW_PIXELS unmasked pixels).
    """
    idx = starts[:, None] + torch.arange(length)
    vals, g = flux[idx], good[idx]
    n = g.sum(1)
    nan = torch.full_like(vals, float("nan"))
    med = torch.nanmedian(torch.where(g, vals, nan), dim=1).values
    mean = torch.where(g, vals, 0).sum(1) / n.clamp(min=1)
    var = (torch.where(g, vals - mean[:, None], 0) ** 2).sum(1) / (n - 1).clamp(min=1)
    eps = torch.randn(vals.shape, generator=generator, dtype=vals.dtype)
    noise = med[:, None] + torch.sqrt(NOISE_VARIANCE_FACTOR * var)[:, None] * eps
    return idx, torch.where(g, noise, 0), n >= MIN_WINDOW_PIXELS


def _predict(autoencoder, predictor, flux, ivar, norm, z) -> tuple[torch.Tensor, torch.Tensor | None]:
    mean, scatter = predictor(autoencoder.encode(flux, ivar, z), norm, z)
    return mean, scatter


def _check_inputs(flux, ivar, norm, z, sigma_mag, reference_mag) -> None:
    if flux.ndim != 2:
        raise ValueError(f"flux must be (N, M), got shape {tuple(flux.shape)}")
    n = flux.shape[0]
    if ivar.shape != flux.shape:
        raise ValueError(f"ivar has shape {tuple(ivar.shape)}; expected {tuple(flux.shape)}")
    for name, t in (("norm", norm), ("z", z)):
        if t.shape != (n,):
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected ({n},)")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite for every spectrum")
    if not bool((norm > 0).all()):
        raise ValueError("norm must be > 0 (the 5300-5850 A median flux)")
    for name, t in (("sigma_mag", sigma_mag), ("reference_mag", reference_mag)):
        if t is not None and t.shape != (n, N_BANDS):
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected ({n}, {N_BANDS})")


@torch.no_grad()
def multiscale_occlusion(
    autoencoder,
    predictor,
    flux: torch.Tensor,
    ivar: torch.Tensor,
    norm: torch.Tensor,
    z: torch.Tensor,
    windows_pix: Sequence[int] = DEFAULT_WINDOWS_PIX,
    stride_fraction: float = 0.5,
    sigma_mag: torch.Tensor | None = None,
    reference_mag: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
    keep_scales: bool = False,
    callback: Callable[[int], None] | None = None,
) -> OcclusionResult:
    """Multiscale-occlusion Δχ maps (module docstring) of normalised spectra.

    ``autoencoder`` has ``encode(flux, ivar, z)`` → latents (a
    :class:`~sedinfer.spectra.autoencoder.SpectrumAutoencoder`), ``predictor(latents, norm, z)`` →
    (mean (K, 4) Vega mag, scatter (K, 4) or None) (a :class:`~sedinfer.spectra.predictor.WisePredictor`).
    ``flux``, ``ivar`` (N, M) normalised (``SpectrumBatch.flux_norm``, ``ivar_norm``; ivar 0 =
    masked), ``norm`` (N,) in 10⁻¹⁷ erg/s/cm²/Å, ``z`` (N,). ``sigma_mag`` (N, 4): the σ of Δχ
    (default the predictive σ; required for a predictor without variance head);
    ``reference_mag`` (N, 4): m̂_ref (default the unoccluded prediction). ``batch_size``
    occluded spectra are encoded at a time; ``callback(1)`` is called after each spectrum.
    """
    flux = torch.as_tensor(flux, dtype=torch.float32)
    ivar = torch.as_tensor(ivar, dtype=torch.float32)
    norm = torch.as_tensor(norm, dtype=torch.float32)
    z = torch.as_tensor(z, dtype=torch.float32)
    sigma_mag = None if sigma_mag is None else torch.as_tensor(sigma_mag, dtype=torch.float32)
    reference_mag = None if reference_mag is None else torch.as_tensor(reference_mag, dtype=torch.float32)
    _check_inputs(flux, ivar, norm, z, sigma_mag, reference_mag)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n, m = flux.shape
    windows = check_windows(windows_pix, m)
    starts = [window_starts(m, w, stride_fraction) for w in windows]
    modes = [(mod, mod.training) for mod in (autoencoder, predictor) if hasattr(mod, "train")]
    for mod, _ in modes:
        mod.eval()
    try:
        good_all = ivar > 0
        flux0 = torch.where(good_all, flux, 0)
        base, scatter = _predict(autoencoder, predictor, flux0, ivar, norm, z)
        if sigma_mag is None:
            if scatter is None:
                raise ValueError("the predictor has no variance head: pass sigma_mag (e.g. wNsigmpro)")
            sigma_mag = scatter.to(torch.float32)
        ref = base.to(torch.float32) if reference_mag is None else reference_mag
        sig = torch.where(torch.isfinite(sigma_mag) & (sigma_mag > 0), sigma_mag, float("nan"))
        maps = torch.full((n, len(windows), N_BANDS, m), float("nan"))
        n_windows = torch.zeros(n, dtype=torch.long)
        for i in range(n):
            maps[i], n_windows[i] = _one_spectrum(
                autoencoder, predictor, flux0[i], ivar[i], norm[i], z[i], ref[i], sig[i],
                windows, starts, generator, batch_size)
            if callback is not None:
                callback(1)
    finally:
        for mod, was in modes:
            mod.train(was)
    delta = torch.nanmean(maps, dim=1)
    delta = torch.where(good_all[:, None, :], delta, float("nan"))
    return OcclusionResult(delta, maps if keep_scales else None, base.to(torch.float32), ref, sig,
                           windows, n_windows)


def _one_spectrum(autoencoder, predictor, flux, ivar, norm, z, ref, sig, windows, starts, generator,
                  batch_size) -> tuple[torch.Tensor, int]:
    """Per-scale maps (S, 4, M) of one spectrum and the number of windows evaluated."""
    m = flux.shape[0]
    good = ivar > 0
    groups = []                                   # per scale: (scale, indices (W, L), values (W, L))
    for s, (length, st) in enumerate(zip(windows, starts, strict=True)):
        idx, vals, evaluate = occlude_windows(flux, good, st, length, generator)
        if bool(evaluate.any()):
            groups.append((s, idx[evaluate], vals[evaluate]))
    acc = torch.zeros(len(windows), N_BANDS, m)
    cnt = torch.zeros(len(windows), m)
    total = sum(len(g[1]) for g in groups)
    pieces: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    for s, idx, vals in groups:                   # chunks of ≤ batch_size windows, across scales
        for a in range(0, len(idx), batch_size):
            pieces.append((s, idx[a:a + batch_size], vals[a:a + batch_size]))
    chunk: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    size = 0
    for k, piece in enumerate(pieces):
        chunk.append(piece)
        size += len(piece[1])
        nxt = len(pieces[k + 1][1]) if k + 1 < len(pieces) else None
        if nxt is None or size + nxt > batch_size:
            _run_chunk(autoencoder, predictor, flux, ivar, norm, z, ref, sig, chunk, acc, cnt)
            chunk, size = [], 0
    maps = torch.where(cnt[:, None, :] > 0, acc / cnt.clamp(min=1)[:, None, :], float("nan"))
    return maps, total


def _run_chunk(autoencoder, predictor, flux, ivar, norm, z, ref, sig, chunk, acc, cnt) -> None:
    """Encode and predict the occluded spectra of ``chunk`` and add their Δχ to ``acc``, ``cnt``."""
    m = flux.shape[0]
    xs = [flux.expand(len(idx), m).clone().scatter_(1, idx, vals) for _, idx, vals in chunk]
    x = torch.cat(xs)
    k = len(x)
    mean, _ = _predict(autoencoder, predictor, x, ivar.expand(k, m), norm.expand(k), z.expand(k))
    d = (mean.to(torch.float32) - ref) / sig                                          # (k, 4)
    row = 0
    for s, idx, _ in chunk:
        w, length = idx.shape
        dd = d[row:row + w]
        acc[s].index_add_(1, idx.reshape(-1), dd.repeat_interleave(length, dim=0).T)
        cnt[s].index_add_(0, idx.reshape(-1), torch.ones(w * length))
        row += w


__all__ = ["DEFAULT_WINDOWS_PIX", "MIN_WINDOW_PIXELS", "NOISE_VARIANCE_FACTOR", "OcclusionResult",
           "check_windows", "multiscale_occlusion", "occlude_windows", "window_starts"]
