"""Simulated dusty galaxies (the stand-in for NIHAO, issue 18 §2): host, dust and observed cubes.

Galaxy ``index`` of seed ``seed`` is drawn from ``numpy.random.default_rng([seed, index])``, so a
galaxy does not depend on how a run is split, and seeds give disjoint sets (train: seed 0, test:
seed 1, ...). Each intrinsic galaxy (:func:`sedinfer.images.galaxies.draw_galaxy`) is seen in
``n_views`` isotropic directions. Per view:

1. unit-flux images S_c of bulge, disk and knots (galsim, :mod:`~sedinfer.images.hosts`) and their
   band fluxes F_c (SPS, :mod:`~sedinfer.images.seds`): host cube H_b = Σ_c F_c,b S_c;
2. transmissions D_c of each component at λ₀ along the lines of sight (:mod:`~sedinfer.images.dust3d`),
   combined with the components' light at λ₀ (band fluxes interpolated to λ₀(1 + z)):
   S = Σ_c w_c S_c / Σ w_c (the HOST truth, unit sum) and D = Σ_c w_c S_c D_c / Σ_c w_c S_c;
3. the observed cube: Y_b = PSF_b ⊛ (H_b D^K_b(δ)) + noise (Eq. 7-8 with the host cube; the
   ``monochromatic`` variant replaces H_b by F_b S, F_b = Σ_pixels H_b, removing the colour
   gradients of the stellar populations).

Covering fraction: the fraction of the host light at λ₀ in the stamp, Σ S [A(λ₀) > 0.05 mag] / Σ S.
The dust mask threshold is set per galaxy so that the covering of a face-on proxy (the disk plane,
half of the bulge light behind the dust) matches a drawn target; each view's covering is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sedinfer.images.curve import LAMBDA0_AA
from sedinfer.images.dust3d import (
    PLANE_GRID,
    bulge_density,
    patchiness_field,
    threshold_mask,
    view_transmission,
)
from sedinfer.images.galaxies import COVERING_RANGE, DELTA_RANGE, Galaxy, View, draw_galaxy, draw_views
from sedinfer.images.hosts import component_images
from sedinfer.images.instrument import Instrument
from sedinfer.images.scene import AttenuationCurve
from sedinfer.images.seds import SEDFunction, component_theta, sps_sed_function

COVER_MAG = 0.05
"""A(λ₀) above which a pixel counts as covered by dust, mag."""
VARIANTS = ("fiducial", "monochromatic")


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: views per galaxy, stamp size, variants and the drawn parameter ranges."""

    n_views: int = 3
    image_size: int = 64
    variants: tuple[str, ...] = ("fiducial",)
    covering_range: tuple[float, float] = COVERING_RANGE
    delta_range: tuple[float, float] = DELTA_RANGE
    bump: bool = True

    def __post_init__(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants must be a non-empty subset of {VARIANTS}, got {self.variants}")
        if self.n_views < 1 or self.image_size < 8:
            raise ValueError(f"n_views >= 1 and image_size >= 8 needed, got n_views={self.n_views}, "
                             f"image_size={self.image_size}")
        lo, hi = self.covering_range
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"covering_range must satisfy 0 <= lo < hi <= 1, got {self.covering_range}")


@dataclass
class SimulatedView:
    """One view of one galaxy in one variant. Images (B, H, W) in nJy per pixel, maps (H, W)."""

    seed: int
    index: int
    view_index: int
    variant: str
    bands: tuple[str, ...]
    galaxy: Galaxy
    view: View
    sed_njy: np.ndarray
    host: np.ndarray
    transmission: np.ndarray
    host_cube: np.ndarray
    scene: np.ndarray
    image: np.ndarray
    variance: np.ndarray
    covering_fraction: float
    a0_mean_mag: float
    a0_max_mag: float
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        tag = "" if self.variant == "fiducial" else "_mono"
        return f"gal_s{self.seed}_{self.index:06d}_v{self.view_index}{tag}"


def covering_fraction(host: np.ndarray, transmission: np.ndarray, cover_mag: float = COVER_MAG) -> float:
    """Fraction of the light ``host`` (H, W) behind A(λ₀) = -2.5 log₁₀ D > ``cover_mag``."""
    a0 = -2.5 * np.log10(np.clip(transmission, 1e-30, None))
    total = host.sum()
    return float(host[a0 > cover_mag].sum() / total) if total > 0 else float("nan")


def light_weights_at_lambda0(fluxes: np.ndarray, pivot_aa: np.ndarray, redshift: float) -> np.ndarray:
    """Component fluxes (C, B) interpolated (linearly in λ, clamped) to λ₀(1 + z): (C,)."""
    order = np.argsort(pivot_aa)
    lam = LAMBDA0_AA * (1.0 + redshift)
    return np.array([np.interp(lam, pivot_aa[order], f[order]) for f in fluxes])


class _FaceOnProxy:
    """Face-on covering of the disk plane as a function of the mask threshold (the parts that do not
    depend on the threshold are computed once)."""

    def __init__(self, gal: Galaxy, field_plane: np.ndarray, ext: float, weights: np.ndarray):
        n = PLANE_GRID
        x = (np.arange(n) + 0.5) / n * 2 * ext - ext
        xx, yy = np.meshgrid(x, x, indexing="xy")
        r = np.hypot(xx, yy)
        self.field = field_plane
        self.tau_smooth = gal.tau0 * np.exp(-r / gal.dust_h_kpc)
        disk = np.exp(-r / gal.disk_h_kpc)
        zz = np.linspace(-5, 5, 41) * gal.bulge_re_kpc
        bulge = bulge_density(xx[..., None], yy[..., None], zz, gal).sum(-1)
        kx, ky = gal.knots.xyz_kpc[:, 0], gal.knots.xyz_kpc[:, 1]
        s2 = gal.knots.sigma_kpc[:, None, None] ** 2
        peak = np.exp(-((xx - kx[:, None, None]) ** 2 + (yy - ky[:, None, None]) ** 2) / (2 * s2))
        self.tau_clumps = (gal.knots.tau[:, None, None] * peak).sum(0)
        knots = (gal.knots.flux_share[:, None, None] * peak / s2).sum(0)
        parts = [c / max(c.sum(), 1e-300) * w for c, w in zip((bulge, disk, knots), weights, strict=True)]
        total = sum(p.sum() for p in parts)
        self.coverable = (0.5 * parts[0] + parts[1] + parts[2]) / total   # half the bulge is in front

    def __call__(self, threshold: float) -> float:
        tau = self.tau_smooth * threshold_mask(self.field, threshold) + self.tau_clumps
        covered = -2.5 * np.log10(0.5 + 0.5 * np.exp(-tau)) > COVER_MAG
        return float(self.coverable[covered].sum())


def dust_mask(gal: Galaxy, weights: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Mask on the disk-plane grid whose face-on covering is closest to ``gal.covering_target``
    (bisection on the threshold). Returns (mask, extent_kpc, achieved proxy covering)."""
    plane, ext = patchiness_field(gal)
    proxy = _FaceOnProxy(gal, plane, ext, weights)
    lo, hi = -6.0, 6.0
    f_lo = proxy(lo)
    if f_lo <= gal.covering_target:
        return threshold_mask(plane, lo), ext, f_lo
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if proxy(mid) > gal.covering_target:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    return threshold_mask(plane, t), ext, proxy(t)


def _component_masses(gal: Galaxy) -> dict[str, float]:
    bt = float(np.clip(gal.bulge_fraction, 1e-4, 1 - 1e-4))
    disk = gal.log_mass + np.log10(1 - bt)
    return {"bulge": gal.log_mass + np.log10(bt), "disk": disk,
            "knots": disk + np.log10(gal.knot_mass_fraction)}


def simulate_galaxies(indices, seed: int, instrument: Instrument, sed_fn: SEDFunction | None = None,
                      config: SimulationConfig | None = None, views: list[View] | None = None,
                      edit=None) -> list[SimulatedView]:
    """Simulate galaxies ``indices`` of ``seed``: n_views × variants :class:`SimulatedView` each.

    ``views`` replaces the drawn viewing directions (the same for every galaxy) and ``edit``, a
    function Galaxy -> Galaxy, changes the drawn galaxies (e.g. ``dataclasses.replace``); both
    for controlled experiments and tests. The draws are made first, so neither changes the
    other random numbers.
    """
    config = config or SimulationConfig()
    if tuple(instrument.image_shape) != (config.image_size, config.image_size):
        raise ValueError(f"instrument image_shape {instrument.image_shape} != image_size {config.image_size}")
    sed_fn = sed_fn or sps_sed_function(instrument.filters)
    indices = [int(i) for i in indices]
    rngs = [np.random.default_rng([int(seed), i]) for i in indices]
    gals = [draw_galaxy(r, instrument.pixel_scale_arcsec, config.covering_range, config.delta_range)
            for r in rngs]
    drawn = [draw_views(r, config.n_views) for r in rngs]
    views_all = drawn if views is None else [list(views)] * len(gals)
    if edit is not None:
        gals = [edit(g) for g in gals]
    noise_seeds = [int(r.integers(0, 2**62)) for r in rngs]
    theta = np.concatenate([component_theta(g.redshift, _component_masses(g),
                                            {"bulge": g.sps_bulge, "disk": g.sps_disk,
                                             "knots": g.sps_knots}) for g in gals])
    fluxes = np.asarray(sed_fn(theta), dtype=np.float64).reshape(len(gals), 3, len(instrument.filters))
    out = []
    for idx, gal, vs, comp_flux, nseed in zip(indices, gals, views_all, fluxes, noise_seeds, strict=True):
        out += _simulate_one(idx, seed, gal, vs, comp_flux, nseed, instrument, config)
    return out


def _simulate_one(index: int, seed: int, gal: Galaxy, views: list[View], comp_flux: np.ndarray,
                  noise_seed: int, instrument: Instrument, config: SimulationConfig) -> list[SimulatedView]:
    shape = (config.image_size, config.image_size)
    pivot = instrument.filters.pivot_wave_aa
    w0 = light_weights_at_lambda0(comp_flux, pivot, gal.redshift)          # (3,) nJy at λ₀
    mask, ext, proxy = dust_mask(gal, w0)
    curve = AttenuationCurve(pivot, [gal.redshift], config.bump).double()
    ratio = curve(torch.tensor([gal.delta], dtype=torch.float64)).double()    # (1, B)
    gen = torch.Generator().manual_seed(noise_seed % (2**63 - 1))
    kpc_pix = instrument.pixel_scale_arcsec * gal.kpc_per_arcsec
    share = gal.knots.flux_share[:, None, None]
    results = []
    for v, view in enumerate(views):
        imgs = component_images(gal, view, shape, instrument.pixel_scale_arcsec)
        trans = view_transmission(gal, view, shape, kpc_pix, mask, ext, imgs["knots"])
        knots_img = (share * imgs["knots"]).sum(0)
        light = [w0[0] * imgs["bulge"], w0[1] * imgs["disk"], w0[2] * share * imgs["knots"]]
        den = light[0] + light[1] + light[2].sum(0)
        num = light[0] * trans["bulge"] + light[1] * trans["disk"] + (light[2] * trans["knots"]).sum(0)
        eps = 1e-12 * den.max()
        d_map = np.clip((num + eps * trans["disk"]) / (den + eps), 1e-12, 1.0)
        host = den / den.sum()
        cube_fid = (comp_flux[0][:, None, None] * imgs["bulge"] + comp_flux[1][:, None, None] * imgs["disk"]
                    + comp_flux[2][:, None, None] * knots_img)
        a0 = -2.5 * np.log10(d_map)
        cov = covering_fraction(host, d_map)
        stats = {"a0_mean_mag": float(-2.5 * np.log10((host * d_map).sum())),
                 "a0_max_mag": float(a0[host > 1e-3 * host.max()].max())}
        noise = torch.randn((len(pivot), *shape), generator=gen, dtype=torch.float64)
        var = instrument.sky_variance().double()
        for variant in config.variants:
            sed = cube_fid.sum((1, 2))
            hcube = cube_fid if variant == "fiducial" else sed[:, None, None] * host[None]
            scene = _attenuate(hcube, d_map, ratio[0].numpy())
            img = instrument.convolve(torch.as_tensor(scene, dtype=torch.float32)[None])[0].double()
            img = img + noise * var.sqrt()
            results.append(SimulatedView(
                seed=int(seed), index=index, view_index=v, variant=variant, bands=instrument.bands,
                galaxy=gal, view=view, sed_njy=sed, host=host, transmission=d_map, host_cube=hcube,
                scene=scene, image=img.numpy(), variance=var.numpy().copy(), covering_fraction=cov,
                extra={"proxy_covering": proxy, "ratio": ratio[0].numpy().copy()}, **stats))
    return results


def _attenuate(host_cube: np.ndarray, transmission: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """H_b D^K_b for one galaxy (Eq. 7-8 with a possibly non-separable host cube)."""
    return host_cube * np.exp(ratio[:, None, None] * np.log(transmission)[None])


def simulate_pairs(n: int, seed: int, instrument: Instrument, sed_fn: SEDFunction | None = None,
                   config: SimulationConfig | None = None, start: int = 0) -> dict[str, np.ndarray]:
    """Training pairs for the priors: ``host`` S and ``dust`` D (n × n_views, H, W) float32, with
    ``delta``, ``a0_mean_mag``, ``covering`` and ``index`` per row."""
    views = simulate_galaxies(range(start, start + n), seed, instrument, sed_fn, config)
    views = [v for v in views if v.variant == views[0].variant]
    return {"host": np.stack([v.host for v in views]).astype(np.float32),
            "dust": np.stack([v.transmission for v in views]).astype(np.float32),
            "delta": np.array([v.galaxy.delta for v in views]),
            "a0_mean_mag": np.array([v.a0_mean_mag for v in views]),
            "covering": np.array([v.covering_fraction for v in views]),
            "index": np.array([v.index for v in views]), "view": np.array([v.view_index for v in views])}


__all__ = ["COVER_MAG", "VARIANTS", "SimulationConfig", "SimulatedView", "covering_fraction",
           "light_weights_at_lambda0", "dust_mask", "simulate_galaxies", "simulate_pairs"]
