"""Image model of issue 18 §1: attenuation curve, PSF convolution, scene (Eqs. 6-8), noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from sedinfer.filters import FilterCurve, Filters
from sedinfer.images.curve import (
    LAMBDA0_AA,
    band_curve_terms_weighted,
    calzetti_k_normalised,
    curve_terms,
)
from sedinfer.images.errors import ImageError
from sedinfer.images.instrument import (
    Instrument,
    add_noise,
    gaussian_log_likelihood,
    hsc_instrument,
    sky_sigma_from_depth,
)
from sedinfer.images.psf import convolve_fft, gaussian_psf, moffat_psf
from sedinfer.images.scene import ImageModel, attenuation_cube, render_scene
from sedinfer.sps.dust import calzetti_k

# --- attenuation curve -------------------------------------------------------------------------

@pytest.mark.parametrize(("wave_aa", "k_ref"), [(5500.0, 4.05), (1500.0, 10.33), (22000.0, 0.369),
                                                (4754.0, 4.700)])
def test_calzetti_reference_values(wave_aa, k_ref):
    # Calzetti et al. (2000) Eq. 4 with R_V = 4.05, evaluated by hand
    assert calzetti_k(np.array([wave_aa]))[0] == pytest.approx(k_ref, abs=0.005)


def test_curve_is_one_at_lambda0_for_every_delta():
    for delta in (-0.8, -0.3, 0.0, 0.4):
        assert calzetti_k_normalised(np.array([LAMBDA0_AA]), delta)[0] == pytest.approx(1.0, abs=1e-12)


def test_curve_without_bump_is_calzetti_times_power_law():
    lam = np.array([3000.0, 4000.0, 6000.0, 9000.0])
    for delta in (-0.7, 0.3):
        k = calzetti_k_normalised(lam, delta, bump=False)
        ref = calzetti_k(lam) / calzetti_k(np.array([LAMBDA0_AA])) * (lam / LAMBDA0_AA) ** delta
        np.testing.assert_allclose(k, ref, rtol=1e-12)


def test_bump_strength_tied_to_delta():
    # at 2175 Å the Drude profile is 1: the bump adds E_b = 0.85 - 1.9 δ to k (Kriek & Conroy 2013)
    lam = np.array([2175.0])
    for delta in (-0.5, 0.0, 0.3):
        with_b = calzetti_k_normalised(lam, delta) * _k_ref(delta, True)
        without = calzetti_k_normalised(lam, delta, bump=False) * _k_ref(delta, False)
        power = (2175.0 / 5500.0) ** delta
        assert (with_b - without)[0] / power == pytest.approx(0.85 - 1.9 * delta, rel=1e-9)


def _k_ref(delta: float, bump: bool) -> float:
    t = curve_terms(np.array(LAMBDA0_AA), bump)
    return 4.05 * float((t[0] + (0.85 - 1.9 * delta) * t[1]) * np.exp(delta * t[2]))


def test_steeper_curve_for_negative_delta():
    lam = np.array([4000.0, 9000.0])
    flat, steep = calzetti_k_normalised(lam, 0.3), calzetti_k_normalised(lam, -0.6)
    assert steep[0] > flat[0] and steep[1] < flat[1]


def test_model_ratio_is_curve_at_rest_pivot():
    filters = Filters("hsc")
    z = np.array([0.0, 0.2])
    delta = torch.tensor([-0.4, 0.2])
    ratio = ImageModel(hsc_instrument(), z).ratio(delta).double().numpy()
    for g in range(2):
        ref = calzetti_k_normalised(filters.pivot_wave_aa / (1 + z[g]), float(delta[g]))
        np.testing.assert_allclose(ratio[g], ref, rtol=1e-5)


def test_sed_weighted_band_average():
    lam = np.linspace(3000.0, 12000.0, 9001)
    narrow = np.where(np.abs(lam - 6000.0) < 5.0, 1.0, 0.0)[None]
    t = band_curve_terms_weighted(lam, np.ones((1, lam.size)), narrow, np.array([0.0]))
    np.testing.assert_allclose(t[:, 0, 0], curve_terms(np.array(6000.0)), rtol=1e-4)
    # across the broad HSC g band a red SED weights the red side, where k is smaller
    trans = Filters("hsc_g").transmission_on(lam)
    blue, red = (lam / 5000.0) ** -3.0, (lam / 5000.0) ** 3.0
    t2 = band_curve_terms_weighted(lam, np.stack([blue, red]), trans, np.array([0.0, 0.0]))
    assert t2[0, 1, 0] < t2[0, 0, 0]


# --- PSF and convolution -----------------------------------------------------------------------

def _moments(img: np.ndarray) -> tuple[float, float, float]:
    y, x = np.indices(img.shape)
    f = img.sum()
    cx, cy = (img * x).sum() / f, (img * y).sum() / f
    return cx, cy, float((img * (x - cx) ** 2).sum() / f)


def test_gaussian_psf_is_centred_and_has_its_width():
    psf = gaussian_psf(0.7, 0.168, 41)
    cx, cy, var = _moments(psf)
    sigma = 0.7 / (2 * math.sqrt(2 * math.log(2))) / 0.168
    assert psf.sum() == pytest.approx(1.0) and cx == pytest.approx(20.0) and cy == pytest.approx(20.0)
    assert var == pytest.approx(sigma**2 + 1 / 12, rel=1e-4)     # pixel integration adds 1/12 px²


def test_moffat_fwhm():
    fwhm_pix = 10.0
    psf = moffat_psf(fwhm_pix, 1.0, beta=3.0, size=61, oversample=9)
    row = psf[30]
    half = row.max() / 2
    right = 30 + np.interp(-half, -row[30:], np.arange(31))
    assert 2 * (right - 30) == pytest.approx(fwhm_pix, rel=0.02)
    with pytest.raises(ImageError, match="beta"):
        moffat_psf(1.0, 0.168, beta=1.0)


def test_convolution_conserves_flux_and_adds_variances():
    img = gaussian_psf(1.0, 0.168, 63)[None, None]          # a centred source, 63 x 63 stamp
    img = np.pad(img, ((0, 0), (0, 0), (0, 1), (0, 1)))      # 64 x 64, centre (31, 31)
    psf = gaussian_psf(0.8, 0.168, 31)
    out = convolve_fft(torch.as_tensor(img), torch.as_tensor(psf)[None]).numpy()[0, 0]
    assert out.sum() == pytest.approx(img.sum(), rel=1e-9)
    _, _, v_img = _moments(img[0, 0])
    _, _, v_psf = _moments(psf)
    cx, cy, v_out = _moments(out)
    assert (cx, cy) == (pytest.approx(31.0), pytest.approx(31.0))
    assert v_out == pytest.approx(v_img + v_psf, rel=1e-6)
    s1, s2 = (f / (2 * math.sqrt(2 * math.log(2))) / 0.168 for f in (1.0, 0.8))
    assert v_out == pytest.approx(s1**2 + s2**2 + 2 / 12, rel=1e-3)


def test_convolution_matches_scipy_and_keeps_positions():
    rng = np.random.default_rng(3)
    img = rng.random((2, 3, 64, 64))
    psf = np.stack([moffat_psf(f, 0.168, 3.0, 25) for f in (0.6, 0.8, 1.0)])
    out = convolve_fft(torch.as_tensor(img), torch.as_tensor(psf)).numpy()
    ref = np.stack([[fftconvolve(img[g, b], psf[b], mode="same") for b in range(3)] for g in range(2)])
    np.testing.assert_allclose(out, ref, atol=1e-10)
    delta = np.zeros((1, 1, 64, 64))
    delta[0, 0, 20, 40] = 1.0
    moved = convolve_fft(torch.as_tensor(delta), torch.as_tensor(psf[:1])).numpy()[0, 0]
    np.testing.assert_allclose(moved[20 - 12:20 + 13, 40 - 12:40 + 13], psf[0], atol=1e-12)


# --- scene and full model ----------------------------------------------------------------------

def _scene_inputs(g: int = 2, b: int = 5, n: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    sed = torch.rand(g, b, generator=gen, dtype=torch.float64) * 100 + 10
    host = torch.rand(g, n, n, generator=gen, dtype=torch.float64)
    host = host / host.sum((-1, -2), keepdim=True)
    d = torch.rand(g, n, n, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    return sed, host, d


def test_no_dust_gives_separable_cube_exactly():
    sed, host, _ = _scene_inputs()
    ratio = torch.rand(2, 5, dtype=torch.float64)
    cube = render_scene(sed, host, torch.ones_like(host), ratio)
    assert torch.equal(cube, sed[:, :, None, None] * host[:, None])
    assert torch.equal(render_scene(sed, host), cube)


def test_attenuation_per_band_is_k_times_a0():
    sed, host, d = _scene_inputs()
    model = ImageModel(hsc_instrument(image_shape=(16, 16)), [0.05, 0.3]).double()
    delta = torch.tensor([-0.5, 0.2], dtype=torch.float64)
    cube = model.scene(sed, host, d, delta)
    a_band = -2.5 * torch.log10(cube / render_scene(sed, host))
    a0 = -2.5 * torch.log10(d)
    k = model.ratio(delta)
    torch.testing.assert_close(a_band, k[:, :, None, None] * a0[:, None], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(attenuation_cube(d, k), a_band, rtol=1e-10, atol=1e-12)
    # blue bands are attenuated more than red ones (K decreasing with wavelength)
    assert (k[:, :-1] > k[:, 1:]).all()


def test_model_flux_through_psf_and_gradients():
    inst = Instrument("hsc", np.stack([gaussian_psf(f, 0.168, 5) for f in (0.3, 0.3, 0.25, 0.3, 0.3)]),
                      0.168, np.ones(5), image_shape=(12, 12))
    model = ImageModel(inst, [0.1]).double()
    sed, host, d = _scene_inputs(1, 5, 12)
    host = torch.zeros_like(host)
    host[0, 6, 6] = 1.0
    y = model(sed, host, torch.ones_like(host), torch.zeros(1, dtype=torch.float64))
    torch.testing.assert_close(y.sum((-1, -2)), sed, rtol=1e-6, atol=0)   # PSF (float32) inside the stamp
    small = ImageModel(Instrument("hsc", np.stack([gaussian_psf(0.3, 0.168, 3)] * 5), 0.168, np.ones(5),
                                  image_shape=(6, 6)), [0.1]).double()
    sed, host, d = (x.clone().requires_grad_() for x in _scene_inputs(1, 5, 6))
    delta = torch.tensor([-0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: small(*a), (sed, host, d, delta))
    data = small(sed, host, d, delta).detach() + 1.0
    loss = small.log_likelihood(data, torch.ones_like(data), sed, host, d, delta).sum()
    grads = torch.autograd.grad(loss, (sed, host, d, delta))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_scene_shape_errors():
    sed, host, d = _scene_inputs()
    with pytest.raises(ImageError, match="ratio"):
        render_scene(sed, host, d)
    with pytest.raises(ImageError, match="sed must be"):
        render_scene(sed[0], host)
    model = ImageModel(hsc_instrument(image_shape=(16, 16)), [0.05, 0.3])
    with pytest.raises(ImageError, match="delta must be"):
        model.scene(sed.float(), host.float(), d.float(), torch.zeros(3))
    with pytest.raises(ImageError, match="PSF images for"):
        Instrument("hsc", np.stack([gaussian_psf(1.0, 0.168)] * 4), 0.168, np.ones(5))


# --- noise -------------------------------------------------------------------------------------

def test_sky_sigma_gives_five_sigma_at_depth():
    m5, scale, d = 26.0, 0.168, 2.0
    sigma = sky_sigma_from_depth([m5], scale, d)[0]
    n_pix = math.pi * (d / 2) ** 2 / scale**2
    f5 = 3631e9 * 10 ** (-0.4 * m5)                          # nJy
    assert f5 / (sigma * math.sqrt(n_pix)) == pytest.approx(5.0)


def test_noise_has_the_variance_and_likelihood_is_chi2():
    inst = hsc_instrument()
    var = inst.sky_variance().double()
    gen = torch.Generator().manual_seed(5)
    clean = torch.zeros(1, *var.shape, dtype=torch.float64)
    noisy = add_noise(clean, var, gen)
    measured = noisy[0].var((-1, -2))
    torch.testing.assert_close(measured, var[:, 0, 0], rtol=0.06, atol=0)
    loglike = gaussian_log_likelihood(noisy, clean, 1 / var)
    assert float(-2 * loglike) == pytest.approx(var.numel(), rel=0.03)
    with pytest.raises(ImageError, match="variance"):
        add_noise(clean, -var)


def test_custom_filter_set_instrument():
    lam = np.linspace(5000.0, 6000.0, 11)
    box = FilterCurve.from_arrays("box", lam, np.ones_like(lam))
    inst = Instrument([box, "sdss_r0"], np.stack([gaussian_psf(1.0, 0.4)] * 2), 0.4, [1.0, 2.0])
    assert inst.bands == ("box", "sdss_r0")


def test_model_accepts_sed_weighted_terms():
    inst = hsc_instrument(image_shape=(16, 16))
    lam = np.linspace(3500.0, 11500.0, 4001)
    flat = np.ones((1, lam.size))
    terms = band_curve_terms_weighted(lam, flat, inst.filters.transmission_on(lam), np.array([0.1]))
    k_w = ImageModel(inst, [0.1], terms=terms).ratio(torch.tensor([-0.3]))
    k_p = ImageModel(inst, [0.1]).ratio(torch.tensor([-0.3]))
    torch.testing.assert_close(k_w, k_p, rtol=0.05, atol=0)    # broad bands: a few % apart
    assert not torch.allclose(k_w, k_p, rtol=1e-4)
    with pytest.raises(ImageError, match="terms must be"):
        ImageModel(inst, [0.1, 0.2], terms=terms)


def test_float32_and_float64_models_agree():
    sed, host, d = _scene_inputs(2, 5, 64)
    delta = torch.tensor([-0.5, 0.2], dtype=torch.float64)
    m32 = ImageModel(hsc_instrument(), [0.05, 0.3])
    y32 = m32(sed.float(), host.float(), d.float(), delta.float())
    assert y32.dtype == torch.float32
    m64 = ImageModel(hsc_instrument(), [0.05, 0.3]).double()
    y64 = m64(sed, host, d, delta)
    assert y64.dtype == torch.float64 and m64.instrument.transfer.dtype == torch.complex128
    torch.testing.assert_close(y32.double(), y64, rtol=1e-4, atol=1e-4 * float(y64.abs().max()))
    assert m64.float().instrument.transfer.dtype == torch.complex64
    with pytest.raises(ImageError, match="hsc_instrument knows"):
        hsc_instrument(["sdss_r0"])
