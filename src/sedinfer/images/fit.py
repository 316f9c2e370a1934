"""MAP fit of host and dust to multi-band image cubes (Siegel & Melchior, Eq. 3 and §3).

For G galaxies observed as cubes Y (G, B, H, W) with inverse variances w (0 masks a pixel), Adam
maximises, over the host SED F (G, B), host image S (G, H, W), dust transmission D (G, H, W) and
curve slope δ (G,) of the image model (:class:`~sedinfer.images.scene.ImageModel`)::

    log p(F, S, D, δ | Y) = -½ Σ w (Y - PSF ⊛ F S D^K(δ))² + log p(S) + log p(D | S)

whose gradient is ∇ log L + s(S) + s(D | S) (Eq. 3). The prior terms enter through their scores
at a small noise temperature t (:mod:`~sedinfer.images.prior`): the surrogate loss
-(s.detach() · x) has gradient -s, so any callable score works, whatever computes it.

Parameters and their unbounded twins (STYLE.md principle 4): F = exp(f); S = softplus(s) / Σ
softplus(s), so Σ S = 1 and F is the total unattenuated flux per band (this removes the F × S
scale degeneracy); D = exp(-softplus(r)) ∈ (0, 1]; δ = δ_lo + (δ_hi - δ_lo) sigmoid(d), the range
of the simulations (-0.8, 0.4). Each galaxy stops when the largest relative change of its F from one
iteration to the next stays below ``tol`` for ``patience`` iterations (the paper's criterion; with F
held fixed, the first free one of D, S, δ is watched instead); its
values at that point are kept while the rest of the batch continues. Any of F, S, D, δ can be held
fixed at given values (``fixed``). Baselines of issue 18 §5: ``host_prior=None, dust_prior=None``
(likelihood alone) and a :class:`~sedinfer.images.prior.DustPrior` in place of the conditional one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sedinfer.images.errors import ImageError
from sedinfer.images.galaxies import DELTA_RANGE
from sedinfer.images.prior import as_score
from sedinfer.images.scene import D_FLOOR, ImageModel
from sedinfer.images.simulate import COVER_MAG

FIXABLE = ("sed", "host", "transmission", "delta")


@dataclass(frozen=True)
class FitConfig:
    """Optimiser settings: Adam ``lr`` on the unbounded parameters, at most ``max_steps``
    iterations, stop after ``patience`` iterations with max_b |ΔF_b / F_b| < ``tol`` (not before
    ``min_steps``); prior scores at temperature ``temperature`` (t of the priors' SDE)."""

    max_steps: int = 3000
    min_steps: int = 50
    lr: float = 0.05
    tol: float = 1e-5
    patience: int = 20
    temperature: float = 0.2
    delta_range: tuple[float, float] = DELTA_RANGE
    init_transmission: float = 0.9
    cover_mag: float = COVER_MAG

    def __post_init__(self) -> None:
        if not (self.max_steps >= 1 and 0 <= self.min_steps <= self.max_steps and self.patience >= 1):
            raise ValueError(f"need max_steps >= 1, 0 <= min_steps <= max_steps, patience >= 1: {self}")
        if not (self.lr > 0 and self.tol > 0 and 0 <= self.temperature <= 1):
            raise ValueError(f"need lr > 0, tol > 0 and temperature in [0, 1]: {self}")
        if not (0 < self.init_transmission < 1) or not self.delta_range[0] < self.delta_range[1]:
            raise ValueError(f"need 0 < init_transmission < 1 and delta_range lo < hi: {self}")


@dataclass
class FitResult:
    """MAP estimates per galaxy (numpy). Fluxes in nJy, magnitudes at λ₀ = 0.4754 µm unless per band.

    ``sed_njy`` (G, B) dust-corrected host flux per band; ``host`` S (G, H, W), unit sum;
    ``transmission`` D (G, H, W); ``a0_map_mag`` -2.5 log₁₀ D (G, H, W); ``a_band_mag`` (G, B)
    the attenuation of the total flux per band, -2.5 log₁₀ Σ S D^K_b; ``a0_mean_mag`` (G,) the same
    at λ₀; ``delta`` (G,); ``covering_fraction`` (G,) Σ S [A(λ₀) > 0.05 mag] / Σ S (as the
    simulations); ``model`` (G, B, H, W) the fitted noiseless cube; ``chi2`` (G,) over unmasked
    pixels, ``n_pixels`` (G,) their number; ``n_iter`` (G,) iterations used; ``converged`` (G,).
    """

    bands: tuple[str, ...]
    sed_njy: np.ndarray
    host: np.ndarray
    transmission: np.ndarray
    a0_map_mag: np.ndarray
    a_band_mag: np.ndarray
    a0_mean_mag: np.ndarray
    delta: np.ndarray
    covering_fraction: np.ndarray
    model: np.ndarray
    chi2: np.ndarray
    n_pixels: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


def _inv_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def _prepare(model: ImageModel, data, inv_var) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked (data, inv_var) (G, B, H, W) on the model's device; NaN pixels masked."""
    device, dtype = model.curve.terms.device, model.instrument.psf.dtype
    data = torch.as_tensor(data, dtype=dtype, device=device)
    inv_var = torch.as_tensor(inv_var, dtype=dtype, device=device)
    if data.ndim == 3:
        data, inv_var = data[None], inv_var[None] if inv_var.ndim == 3 else inv_var
    bands = model.instrument.bands
    if data.ndim != 4 or data.shape[1] != len(bands):
        raise ImageError(f"data must be (G, B, H, W) with B = {len(bands)} bands {bands}, got "
                         f"{tuple(data.shape)}")
    if tuple(data.shape[-2:]) != model.instrument.image_shape:
        raise ImageError(f"data images are {tuple(data.shape[-2:])} pixels; the instrument expects "
                         f"{model.instrument.image_shape}")
    if data.shape[0] != model.n_galaxies:
        raise ImageError(f"data has {data.shape[0]} galaxies, the image model {model.n_galaxies} "
                         "(one redshift per galaxy)")
    if inv_var.shape != data.shape:
        raise ImageError(f"inv_var {tuple(inv_var.shape)} must match data {tuple(data.shape)}")
    if (inv_var < 0).any() or torch.isposinf(inv_var).any():
        raise ImageError("inv_var must be >= 0 and finite (zero variance is not allowed; "
                         "0 masks a pixel)")
    bad = ~torch.isfinite(data) | ~torch.isfinite(inv_var)
    inv_var = torch.where(bad, torch.zeros_like(inv_var), inv_var)
    data = torch.where(bad, torch.zeros_like(data), data)
    empty = (inv_var.flatten(1) > 0).sum(1) == 0
    if empty.any():
        raise ImageError(f"galaxies {torch.nonzero(empty).flatten().tolist()} have every pixel masked")
    band_empty = (inv_var.flatten(2) > 0).sum(2) == 0
    if band_empty.any():
        pairs = [(int(i), bands[int(j)]) for i, j in torch.nonzero(band_empty)]
        raise ImageError(f"(galaxy, band) {pairs} have every pixel masked: that band's flux is not "
                         "constrained; drop the band from the instrument")
    return data, inv_var


def _fixed(fixed: dict | None, shapes: dict, like: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in (fixed or {}).items():
        if key not in FIXABLE:
            raise ImageError(f"fixed may hold {FIXABLE}, got {key!r}")
        v = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        if tuple(v.shape) != shapes[key]:
            raise ImageError(f"fixed[{key!r}] must have shape {shapes[key]}, got {tuple(v.shape)}")
        out[key] = v
    return out


def fit_map(model: ImageModel, data, inv_var, host_prior=None, dust_prior=None,
            config: FitConfig | None = None, fixed: dict | None = None) -> FitResult:
    """MAP (F, S, D, δ) for cubes ``data`` and ``inv_var`` (G, B, H, W) (arrays or tensors).

    ``host_prior``: a score s(S) (callable ``score(x, t)`` or an object with ``.score``), or None;
    ``dust_prior``: s(D | S) (objects with ``conditional = True`` get ``condition=S``) or s(D),
    or None. ``fixed``: physical values to hold fixed, keys ``sed`` (G, B), ``host`` (G, H, W),
    ``transmission`` (G, H, W), ``delta`` (G,). Runs on the model's device and dtype.
    """
    config = config or FitConfig()
    data, w = _prepare(model, data, inv_var)
    g, b, h, wd = data.shape
    fix = _fixed(fixed, {"sed": (g, b), "host": (g, h, wd), "transmission": (g, h, wd),
                         "delta": (g,)}, data)
    host_score, dust_score = as_score(host_prior), as_score(dust_prior)
    dust_conditional = bool(getattr(dust_prior, "conditional", False))
    lo, hi = config.delta_range

    # ---- initial values: dust-free fluxes, the least-squares S of a rank-1 cube Σ F_b Y_b / Σ F_b²
    frac = (w > 0).to(data.dtype).flatten(2).mean(2)
    flux0 = ((data * (w > 0)).flatten(2).sum(2) / frac)
    flux0 = flux0.clamp_min(1e-6 * flux0.abs().amax(1, keepdim=True).clamp_min(1e-30))
    img0 = (flux0[:, :, None, None] * data * (w > 0)).sum(1) / flux0.square().sum(1)[:, None, None]
    img0 = img0.clamp_min(1e-4 * img0.flatten(1).amax(1).clamp_min(1e-30)[:, None, None])
    img0 = img0 / img0.flatten(1).amax(1)[:, None, None]
    tau0 = -np.log(config.init_transmission)
    raw = {"sed": torch.log(flux0), "host": _inv_softplus(img0),
           "transmission": _inv_softplus(torch.full((g, h, wd), tau0, dtype=data.dtype, device=data.device)),
           "delta": torch.zeros(g, dtype=data.dtype, device=data.device)}
    params = {k: v.clone().requires_grad_(True) for k, v in raw.items() if k not in fix}
    opt = torch.optim.Adam(list(params.values()), lr=config.lr)

    def physical(p: dict) -> tuple[torch.Tensor, ...]:
        sed = fix["sed"] if "sed" in fix else torch.exp(p["sed"])
        if "host" in fix:
            host = fix["host"]
        else:
            sp = torch.nn.functional.softplus(p["host"])
            host = sp / sp.flatten(1).sum(1)[:, None, None]
        trans = fix["transmission"] if "transmission" in fix else torch.exp(
            -torch.nn.functional.softplus(p["transmission"]))
        delta = fix["delta"] if "delta" in fix else lo + (hi - lo) * torch.sigmoid(p["delta"])
        return sed, host, trans, delta

    snap = {k: v.detach().clone() for k, v in params.items()}
    converged = torch.zeros(g, dtype=torch.bool, device=data.device)
    n_iter = torch.full((g,), config.max_steps, dtype=torch.long, device=data.device)
    calm = torch.zeros(g, dtype=torch.long, device=data.device)
    # the paper's criterion watches F; with F held fixed, watch the first free one of D, S, δ
    watch = next((i for i, k in enumerate(FIXABLE) if k not in fix), 0)
    sed_prev = physical(params)[watch].detach().flatten(1)
    t = float(config.temperature)
    for it in range(config.max_steps):
        opt.zero_grad(set_to_none=True)
        sed, host, trans, delta = physical(params)
        loss = 0.5 * ((data - model(sed, host, trans, delta)) ** 2 * w).sum()
        if host_score is not None and "host" not in fix:
            with torch.no_grad():
                s_host = host_score(host.detach(), t)
            loss = loss - (s_host.detach() * host).sum()
        if dust_score is not None and "transmission" not in fix:
            with torch.no_grad():
                s_dust = (dust_score(trans.detach(), t, condition=host.detach()) if dust_conditional
                          else dust_score(trans.detach(), t))
            loss = loss - (s_dust.detach() * trans).sum()
        if not torch.isfinite(loss):
            raise ImageError(f"the MAP objective became {loss.item()} at iteration {it}; check the "
                             "inputs' units and the priors' scores")
        loss.backward()
        opt.step()
        with torch.no_grad():
            sed_now = physical(params)[watch].flatten(1)
            rel = ((sed_now - sed_prev).abs() / sed_prev.abs().clamp_min(1e-30)).amax(1)
            sed_prev = sed_now.clone()
            calm = torch.where(rel < config.tol, calm + 1, torch.zeros_like(calm))
            newly = (calm >= config.patience) & ~converged & (it + 1 >= config.min_steps)
            if newly.any():
                for k, v in params.items():
                    snap[k][newly] = v.detach()[newly]
                n_iter[newly] = it + 1
                converged |= newly
            if bool(converged.all()):
                break
    with torch.no_grad():
        for k, v in params.items():
            snap[k][~converged] = v.detach()[~converged]
        n_iter[~converged] = it + 1
        return _result(model, data, w, physical(snap), n_iter, converged, config.cover_mag)


def _result(model: ImageModel, data: torch.Tensor, w: torch.Tensor, values: tuple, n_iter, converged,
            cover_mag: float) -> FitResult:
    sed, host, trans, delta = values
    cube = model(sed, host, trans, delta)
    ratio = model.ratio(delta).to(host.dtype)                                   # (G, B)
    log_d = torch.log(trans.clamp_min(D_FLOOR))
    band = (host[:, None] * torch.exp(ratio[:, :, None, None] * log_d[:, None])).flatten(2).sum(2)
    a0_map = -2.5 * log_d / np.log(10.0)
    covered = (a0_map > cover_mag).to(host.dtype)
    cover = (host * covered).flatten(1).sum(1) / host.flatten(1).sum(1)

    def np_(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().double().numpy()

    return FitResult(
        bands=tuple(model.instrument.bands), sed_njy=np_(sed), host=np_(host), transmission=np_(trans),
        a0_map_mag=np_(a0_map), a_band_mag=np_(-2.5 * torch.log10(band)),
        a0_mean_mag=np_(-2.5 * torch.log10((host * trans).flatten(1).sum(1))), delta=np_(delta),
        covering_fraction=np_(cover), model=np_(cube),
        chi2=np_(((data - cube) ** 2 * w).flatten(1).sum(1)), n_pixels=np_((w > 0).flatten(1).sum(1)),
        n_iter=n_iter.cpu().numpy(), converged=converged.cpu().numpy())


__all__ = ["FIXABLE", "FitConfig", "FitResult", "fit_map"]
