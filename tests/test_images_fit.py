"""MAP fit of issue 18 §4: known-answer MAPs with analytic priors, a physics sanity fit on a
simulated cube, full fits with network priors, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer.images.curve import LAMBDA0_AA, curve_terms
from sedinfer.images.errors import ImageError
from sedinfer.images.fit import FitConfig, fit_map
from sedinfer.images.instrument import Instrument, hsc_instrument
from sedinfer.images.prior import build_prior
from sedinfer.images.scene import ImageModel
from sedinfer.images.simulate import SimulationConfig, simulate_galaxies
from sedinfer.images.unet import UNetConfig

TINY = UNetConfig(base_channels=8, channel_mult=(1, 2), emb_dim=16, groups=4)


def faint_seds(theta: np.ndarray) -> np.ndarray:
    """nJy (N, 5): a power law in the HSC pivots, redder when older; ~10⁴-10⁵ nJy galaxies."""
    lam = np.array([4791.0, 6214.0, 7689.0, 8903.0, 9772.0]) / 6000.0
    slope = np.log10(theta[:, 3:4] * 1e3) - 2.5
    return 10 ** (theta[:, 1:2] - 6.0) * lam[None] ** slope


def pixel_model(size: int = 8) -> ImageModel:
    """One band whose curve ratio is exactly 1 (K = k(λ₀)/k(λ₀)), no PSF: Y = F S D."""
    inst = Instrument(["hsc_g"], np.ones((1, 1, 1)), 0.168, [1.0], image_shape=(size, size))
    return ImageModel(inst, [0.0], terms=curve_terms(np.full((1, 1), LAMBDA0_AA)))


@pytest.fixture(scope="module")
def galaxy():
    """Galaxy 7 of seed 3, monochromatic, 32 × 32 (covering 0.54, A(λ₀) 0.22 mag, δ = 0.35)."""
    inst = hsc_instrument(image_shape=(32, 32))
    view = simulate_galaxies([7], 3, inst, faint_seds,
                             SimulationConfig(n_views=1, image_size=32, variants=("monochromatic",)))[0]
    model = ImageModel(inst, [view.galaxy.redshift])
    clean = inst.convolve(torch.as_tensor(view.scene[None], dtype=torch.float32)).numpy()
    return view, model, clean, 1.0 / view.variance[None]


def test_gaussian_dust_prior_gives_the_closed_form_map():
    """Y = a D per pixel with a Gaussian prior N(μ, s²) on D: D* = (w a Y + μ/s²)/(w a² + 1/s²)."""
    model = pixel_model()
    rng = np.random.default_rng(0)
    host = rng.uniform(0.5, 1.5, (1, 8, 8))
    host /= host.sum()
    sed = np.array([[6400.0]])
    d_true = rng.uniform(0.4, 0.9, (1, 8, 8))
    a = sed[0, 0] * host
    data = (a * d_true)[:, None]
    w = np.full_like(data, 0.04)
    mu, s = 0.5, 0.1
    expected = (w[:, 0] * a * data[:, 0] + mu / s**2) / (w[:, 0] * a**2 + 1 / s**2)
    fixed = {"sed": sed, "host": host, "delta": np.zeros(1)}
    cfg = FitConfig(max_steps=400, tol=1e-6, lr=0.05)
    res = fit_map(model, data, w, dust_prior=lambda x, t: -(x - mu) / s**2, config=cfg, fixed=fixed)
    np.testing.assert_allclose(res.transmission, expected, atol=2e-3)
    assert np.abs(expected - d_true).max() > 0.05           # the prior did move the answer
    plain = fit_map(model, data, w, config=cfg, fixed=fixed)
    np.testing.assert_allclose(plain.transmission, d_true, atol=2e-3)


def test_gaussian_host_prior_pulls_towards_its_mean():
    model = pixel_model()
    rng = np.random.default_rng(1)
    s_true = rng.uniform(0.5, 1.5, (1, 8, 8))
    s_true /= s_true.sum()
    mu = torch.full((1, 8, 8), 1 / 64)
    data = (1e4 * s_true)[:, None]
    w = np.full_like(data, 1.0)
    fixed = {"sed": np.array([[1e4]]), "transmission": np.ones((1, 8, 8)), "delta": np.zeros(1)}
    cfg = FitConfig(max_steps=300, tol=1e-6, lr=0.05)
    for width, target in ((1e-6, mu.numpy()), (1.0, s_true)):       # dominant prior, negligible prior
        res = fit_map(model, data, w, host_prior=lambda x, t, m=mu, v=width**2: -(x - m) / v,
                      config=cfg, fixed=fixed)
        np.testing.assert_allclose(res.host, target, rtol=0.02)


def test_likelihood_alone_recovers_dust_and_sed_with_the_true_host(galaxy):
    """Noiseless cube, S fixed at the truth, no priors: what the data alone determine."""
    view, model, clean, w = galaxy
    res = fit_map(model, clean, w, config=FitConfig(max_steps=700), fixed={"host": view.host[None]})
    assert res.chi2[0] < 20                                  # noiseless: the fit reaches the data
    np.testing.assert_allclose(res.sed_njy[0], view.sed_njy, rtol=0.03)
    assert res.delta[0] == pytest.approx(view.galaxy.delta, abs=0.05)
    assert res.a0_mean_mag[0] == pytest.approx(view.a0_mean_mag, abs=0.03)
    assert (np.abs(res.transmission[0] - view.transmission) * view.host).sum() < 0.07
    # the per-band attenuation of the total flux is consistent with the maps
    k = model.ratio(torch.tensor(res.delta, dtype=torch.float32)).double().numpy()[0]
    np.testing.assert_allclose(res.a_band_mag[0], -2.5 * np.log10(
        (res.host[0] * res.transmission[0] ** k[:, None, None]).sum((1, 2))), rtol=1e-5)


def test_full_fit_with_network_priors_runs_and_is_finite(galaxy):
    view, model, _, w = galaxy
    data = view.image[None]
    host_prior = build_prior("host", TINY)
    cfg = FitConfig(max_steps=15, min_steps=15)
    for dust_kind in ("dust_given_host", "dust"):            # s(D | S) and the s(D) baseline
        res = fit_map(model, data, w, host_prior, build_prior(dust_kind, TINY), config=cfg)
        for name in ("sed_njy", "host", "transmission", "a0_map_mag", "a_band_mag", "a0_mean_mag",
                     "delta", "covering_fraction", "model", "chi2"):
            assert np.isfinite(getattr(res, name)).all(), name
        assert res.host.sum() == pytest.approx(1.0, rel=1e-5) and (res.host >= 0).all()
        assert (res.transmission > 0).all() and (res.transmission <= 1).all()
        assert -0.8 <= res.delta[0] <= 0.4 and 0 <= res.covering_fraction[0] <= 1
        assert res.n_iter[0] == 15 and not res.converged[0]
        assert res.model.shape == (1, 5, 32, 32) and res.bands == model.instrument.bands


def test_bad_input_is_refused_or_masked(galaxy):
    view, model, _, w = galaxy
    data = view.image[None].copy()
    cfg = FitConfig(max_steps=5, min_steps=5)
    with pytest.raises(ImageError, match="5 bands"):
        fit_map(model, data[:, :4], w[:, :4], config=cfg)
    with pytest.raises(ImageError, match="inv_var"):
        fit_map(model, data, -w, config=cfg)
    with pytest.raises(ImageError, match="every pixel masked"):
        fit_map(model, data, 0 * w, config=cfg)
    one_band = w.copy()
    one_band[0, 3] = 0
    with pytest.raises(ImageError, match="hsc_z"):
        fit_map(model, data, one_band, config=cfg)
    with pytest.raises(ImageError, match="galaxies"):
        fit_map(model, np.concatenate([data, data]), np.concatenate([w, w]), config=cfg)
    with pytest.raises(ImageError, match="fixed"):
        fit_map(model, data, w, config=cfg, fixed={"redshift": 0.1})
    nan = data.copy()
    nan[0, 2, 10:14, 10:14] = np.nan
    masked_w = w.copy()
    masked_w[0, 2, 10:14, 10:14] = 0
    a = fit_map(model, nan, w, config=cfg)
    b = fit_map(model, np.nan_to_num(nan), masked_w, config=cfg)
    assert np.isfinite(a.sed_njy).all() and a.n_pixels[0] == 5 * 32 * 32 - 16
    np.testing.assert_array_equal(a.sed_njy, b.sed_njy)
