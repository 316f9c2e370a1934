"""Public contract of SPSModel: names, shapes, gradients, errors."""

from __future__ import annotations

import pytest
import torch

import sedinfer as si
from sedinfer.errors import FilterError, ParameterError

POPSED = ("redshift", "log_mass", "log_z", "kappa1", "kappa2", "kappa3", "f_burst", "t_burst",
          "tau_bc", "tau_ism", "n_dust")


def test_public_contract(sdss):
    model = si.SPSModel(sfh="delayed", dust="calzetti", nebular=False, dust_emission=False)
    assert model.param_names == ("redshift", "log_mass", "log_z", "age", "tau", "av")
    filters = si.Filters(["sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"])
    theta = model.prior.sample((1000,))
    assert theta.shape == (1000, 6) and theta.dtype == torch.float32
    mags = model.photometry(theta, filters)
    assert mags.shape == (1000, 5) and torch.isfinite(mags).all()
    wave, flux = model.spectrum(theta[:3])
    assert wave.ndim == 1 and flux.shape == (3, wave.shape[0]) and (flux >= 0).all()


def test_default_is_popsed():
    model = si.SPSModel()
    assert model.param_names == POPSED
    assert si.SPSModel(nebular=True, dust_emission=True).param_names == POPSED + ("log_u", "qpah", "umin",
                                                                                   "gamma")
    low, high = model.prior.bounds()
    assert low[0] == 0 and high[0] == pytest.approx(1.55) and high[2] == pytest.approx(0.3)


@pytest.mark.parametrize("kw", [{}, {"sfh": "delayed", "dust": "calzetti"}, {"sfh": "binned"},
                                {"sfh": "exponential+burst", "nebular": True, "dust_emission": True}])
def test_gradients_finite_in_prior_box(kw, sdss_wise, gen):
    model = si.SPSModel(**kw)
    low, high = model.prior.bounds()
    theta = model.prior.sample((96,), generator=gen)
    corners = torch.where(torch.rand(32, model.ndim, generator=gen) < 0.5, low, high)
    corners[:, 1] = 10.0                                    # keep fluxes representable
    theta = torch.cat([theta, corners]).requires_grad_(True)
    flux = model.photometry(theta, sdss_wise, units="maggies")
    flux.sum().backward()
    assert torch.isfinite(theta.grad).all()
    assert (theta.grad.abs().sum(0) > 0).all(), "every parameter must influence the fluxes"


def test_gradient_matches_finite_differences(sdss):
    model = si.SPSModel(nebular=True, dust_emission=True).double()
    theta = torch.tensor([[0.3, 10.5, -0.3, 0.4, 0.6, 0.5, 0.2, 3.3, 0.7, 0.4, -0.5, -2.2, 2.5, 3.0, 0.1]],
                         dtype=torch.float64, requires_grad=True)
    (model.photometry(theta, sdss)[0, 2]).backward()
    for j in range(theta.shape[1]):
        h = 1e-5
        tp, tm = theta.detach().clone(), theta.detach().clone()
        tp[0, j] += h
        tm[0, j] -= h
        fd = (model.photometry(tp, sdss)[0, 2] - model.photometry(tm, sdss)[0, 2]) / (2 * h)
        assert theta.grad[0, j].item() == pytest.approx(fd.item(), rel=2e-3, abs=1e-5), model.param_names[j]


def test_bad_inputs_name_the_culprit(default_model, sdss):
    theta = default_model.prior.sample((4,))
    bad = theta.clone()
    bad[2, 2] = float("nan")
    with pytest.raises(ParameterError, match=r"'log_z'.*row 2"):
        default_model.photometry(bad, sdss)
    bad = theta.clone()
    bad[1, 0] = 3.0
    with pytest.raises(ParameterError, match=r"'redshift'.*\[0, 1.55\]"):
        default_model.photometry(bad, sdss)
    bad = theta.clone()
    bad[0, 9] = float("inf")
    with pytest.raises(ParameterError, match="'tau_ism'"):
        default_model.photometry(bad, sdss)
    with pytest.raises(ParameterError, match=r"expected \(N, 11\)"):
        default_model.photometry(theta[:, :5], sdss)
    cols = {k: theta[:, i] for i, k in enumerate(default_model.param_names)}
    with pytest.raises(ParameterError, match="unknown parameter.*'mass'"):
        default_model.photometry({**cols, "mass": theta[:, 1]}, sdss)
    cols.pop("n_dust")
    with pytest.raises(ParameterError, match="missing parameter.*'n_dust'"):
        default_model.photometry(cols, sdss)
    with pytest.raises(FilterError, match="sdss_q0"):
        default_model.photometry(theta, ["sdss_q0"])


def test_bad_model_options():
    with pytest.raises(ValueError, match="unknown sfh"):
        si.SPSModel(sfh="lognormal")
    with pytest.raises(ValueError, match="unknown dust"):
        si.SPSModel(dust="smc")
    with pytest.raises(ValueError, match="needs dust attenuation"):
        si.SPSModel(dust="none", dust_emission=True)


def test_higher_z_max_accepts_high_redshift(sdss):
    model = si.SPSModel(sfh="delayed", dust="none", z_max=4.0)
    mags = model.photometry(torch.tensor([[3.5, 10.5, 0.0, 1.0, 0.5]]), sdss)
    assert mags[0, 0] > mags[0, 2] + 1.0        # u drops out (Lyman break + IGM) at z = 3.5


def test_device_and_dtype_moves():
    model = si.SPSModel().double()
    assert model.dtype == torch.float64
    assert model.float().dtype == torch.float32


def test_saved_model_kwargs_pin_settings_added_later():
    from sedinfer.sps.model import saved_model_kwargs

    legacy = {"sfh": "nmf", "dust": "cf", "nebular": False}                     # sedinfer 0.1
    assert saved_model_kwargs({}, legacy) == {"birth_cloud_curve": "kc", "birth_cloud_index": -1.0,
                                              "agn": False, "ism_curve": "kc"}
    new = si.SPSModel(birth_cloud_index=-0.7).config.to_dict()
    kw = saved_model_kwargs({"nebular": True}, new)
    assert kw == {"nebular": True, "birth_cloud_curve": "power_law", "birth_cloud_index": -0.7, "agn": False,
                  "ism_curve": "kc"}
    assert si.SPSModel(**kw).config.birth_cloud_index == -0.7
    with pytest.raises(ValueError, match="birth_cloud_curve"):
        si.SPSModel(birth_cloud_curve="calzetti")
