"""Tests of sedinfer.units: flux/magnitude conversions for numpy and torch inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer import units as u
from sedinfer.errors import FilterError

FLUX = np.array([1e-12, 3.2e-9, 1e-9, 0.5, 1.0, 42.0])  # maggies


@pytest.mark.parametrize(
    ("forward", "backward"),
    [
        (u.maggies_to_mag, u.mag_to_maggies),
        (u.maggies_to_njy, u.njy_to_maggies),
        (u.maggies_to_ujy, u.ujy_to_maggies),
        (u.maggies_to_nmgy, u.nmgy_to_maggies),
        (u.nmgy_to_ujy, u.ujy_to_nmgy),
        (lambda f: u.asinh_mag(f, 1.2e-10), lambda m: u.asinh_mag_to_maggies(m, 1.2e-10)),
    ],
)
def test_round_trips_numpy_and_torch(forward, backward):
    np.testing.assert_allclose(backward(forward(FLUX)), FLUX, rtol=1e-10)
    t = torch.tensor(FLUX, dtype=torch.float64)
    out = forward(t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    torch.testing.assert_close(backward(out), t, rtol=1e-10, atol=0.0)


def test_known_values():
    assert u.maggies_to_mag(1.0) == 0.0
    assert u.maggies_to_mag(u.njy_to_maggies(3631e9)) == pytest.approx(0.0, abs=1e-12)
    assert u.maggies_to_mag(u.nmgy_to_maggies(1.0)) == pytest.approx(22.5)
    assert u.nmgy_to_ujy(1.0) == pytest.approx(3.631)
    assert u.maggies_to_ujy(1e-9) == pytest.approx(3.631)
    assert u.mag_to_maggies(5.0) == pytest.approx(0.01)
    assert u.maggies_to_njy(1.0) == pytest.approx(3.631e12)
    assert u.mag_err_from_flux(100.0, 1.0) == pytest.approx(0.010857, rel=1e-4)
    assert u.flux_err_from_mag_err(100.0, u.mag_err_from_flux(100.0, 1.0)) == pytest.approx(1.0)
    assert u.AB_ZEROPOINT_JY == 3631.0 and u.L_SUN_ERG_S == 3.828e33
    assert u.C_AA_PER_S == pytest.approx(2.99792458e18)


def test_scalars_stay_scalars():
    assert isinstance(u.maggies_to_mag(1e-9), float)
    assert isinstance(u.asinh_mag(1e-9, 1e-10), float)
    assert isinstance(u.maggies_to_njy(np.ones(3)), np.ndarray)


def test_fnu_flam_round_trip():
    wave = np.array([1500.0, 5000.0, 2.2e4])
    fnu = np.full(3, u.AB_ZEROPOINT_FNU_CGS)
    np.testing.assert_allclose(u.flam_to_fnu(wave, u.fnu_to_flam(wave, fnu)), fnu, rtol=1e-12)
    assert u.fnu_to_flam(5000.0, 1.0) == pytest.approx(u.C_AA_PER_S / 5000.0**2)


def test_asinh_matches_pogson_when_bright():
    b = u.SDSS_ASINH_B["sdss_r0"]
    bright = np.array([1e-7, 1e-6, 1e-3])  # >> b
    np.testing.assert_allclose(u.asinh_mag(bright, b), u.maggies_to_mag(bright), atol=1e-5)
    np.testing.assert_allclose(
        u.asinh_mag_err(bright, 0.01 * bright, b), u.mag_err_from_flux(bright, 0.01 * bright), rtol=1e-5
    )


def test_asinh_finite_for_zero_and_negative_and_known_value():
    b = 1e-10
    mu = u.asinh_mag(np.array([-1e-10, 0.0, 1e-10]), b)
    assert np.all(np.isfinite(mu)) and np.all(np.diff(mu) < 0)
    assert mu[1] == pytest.approx(-u.POGSON * np.log(b))  # zero flux: -1.0857 ln b = 25 mag for b=1e-10
    assert mu[1] == pytest.approx(25.0)
    assert u.asinh_mag_err(0.0, 1e-10, b) == pytest.approx(u.POGSON / 2.0)


def test_asinh_per_band_softening_broadcasts_with_torch_grad():
    names = list(u.SDSS_ASINH_B)
    b = u.asinh_softening(names)
    np.testing.assert_allclose(b, [1.4e-10, 0.9e-10, 1.2e-10, 1.8e-10, 7.4e-10])
    flux = torch.full((4, 5), 2e-10, dtype=torch.float64, requires_grad=True)
    mu = u.asinh_mag(flux, b)
    assert mu.shape == (4, 5)
    mu.sum().backward()
    assert torch.all(flux.grad < 0)
    np.testing.assert_allclose(mu[0].detach().numpy(), u.asinh_mag(np.full(5, 2e-10), b))


def test_asinh_softening_unknown_band():
    assert u.asinh_softening(["sdss_g0", "wise_w1"], default=1e-9)[1] == 1e-9
    with pytest.raises(FilterError, match="wise_w1"):
        u.asinh_softening(["wise_w1"])


def test_torch_float32_preserved():
    t = torch.tensor([1.0, 1e-9], dtype=torch.float32)
    out = u.maggies_to_mag(t)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([0.0, 22.5]))
