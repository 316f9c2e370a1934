"""AGN torus emission (sps/agn.py): normalisation, the f_agn = 0 limit, WISE colours, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sedinfer as si
from sedinfer.sps.agn import T_SUBLIMATION_K, blackbody_per_unit_luminosity, torus_template


@pytest.mark.slow
def test_templates_have_unit_luminosity_and_a_sublimation_cutoff():
    wave = np.geomspace(100.0, 1e8, 400_000)
    bb = blackbody_per_unit_luminosity(wave, np.array([150.0, 1500.0]))
    assert np.trapezoid(bb, wave, axis=-1) == pytest.approx([1.0, 1.0], rel=1e-6)
    template = torus_template(wave)
    assert np.trapezoid(template, wave) == pytest.approx(1.0, rel=1e-6)
    nu_l_nu = wave * template
    peak_um = wave[np.argmax(nu_l_nu)] / 1e4
    assert 8.0 < peak_um < 12.0
    at = np.interp([1e4, 2.7e4, 3.4e4, 4.6e4, 3e5, 1e6], wave, nu_l_nu) / nu_l_nu.max()
    assert at == pytest.approx([0.013, 0.5, 0.676, 0.839, 0.454, 0.032], abs=0.02)
    # nothing hotter than sublimation: bluewards of 1 µm below the 1500 K blackbody's Wien tail
    hot = blackbody_per_unit_luminosity(wave, np.array([T_SUBLIMATION_K]))[0]
    assert (template[wave < 1e4] <= hot[wave < 1e4] + 1e-300).all()
    with pytest.raises(ValueError, match="t_min_k"):
        torus_template(wave, t_sub_k=100.0, t_min_k=150.0)


@pytest.mark.parametrize("kw", [{"sfh": "delayed", "dust": "calzetti"},
                                {"nebular": True, "dust_emission": True}])
def test_no_agn_at_f_agn_zero(kw, sdss_wise, gen):
    plain, agn = si.SPSModel(**kw).double(), si.SPSModel(agn=True, **kw).double()
    assert agn.param_names == plain.param_names + ("f_agn",) and agn.config.agn
    theta = plain.prior.sample((32,), generator=gen, dtype=torch.float64)
    with_zero = torch.cat([theta, torch.zeros(32, 1, dtype=torch.float64)], -1)
    assert torch.equal(agn.photometry(with_zero, sdss_wise), plain.photometry(theta, sdss_wise))


def test_torus_luminosity_is_f_agn_times_the_stellar_bolometric_luminosity(gen):
    model = si.SPSModel(sfh="delayed", dust="calzetti", agn=True).double()
    theta = model.prior.sample((8,), generator=gen, dtype=torch.float64)
    p = model.parse(theta)
    plan = model.spectrum_plan(3000.0, 3e5)                      # 100 Å to 1 cm
    _, parts = model.rest_luminosity(p, plan, parts=True)
    l_agn = (parts["agn"] * plan.dwave_aa).sum(-1)
    l_star = (parts["intrinsic"] * plan.dwave_aa).sum(-1)       # the stars, integrated independently
    assert torch.allclose(parts["lbol_star"], l_star, rtol=2e-3)
    assert torch.allclose(l_agn, p["f_agn"] * parts["lbol_star"], rtol=1e-4)


def test_strong_agn_meets_the_stern_wise_criterion():
    model = si.SPSModel(sfh="delayed", dust="calzetti", agn=True).double()
    wise = si.Filters(["wise_w1", "wise_w2"])
    f_agn = torch.tensor([0.0, 0.01, 0.1, 0.3, 1.0, 3.0], dtype=torch.float64)
    for z in (0.05, 0.3, 0.5):
        theta = torch.zeros(len(f_agn), model.ndim, dtype=torch.float64)
        theta[:, :6] = torch.tensor([z, 10.5, 0.0, 3.0, 1.0, 0.3], dtype=torch.float64)
        theta[:, 6] = f_agn
        mag = model.photometry(theta, wise, vega=True)
        colour = mag[:, 0] - mag[:, 1]
        assert colour[0] < 0.5                                   # stars alone: blue
        assert (colour[1:] > colour[:-1]).all()                  # redder with more AGN
        assert (colour[f_agn >= 1.0] > 0.8).all(), (z, colour)  # Stern et al. (2012): W1 - W2 >= 0.8


def test_agn_gradients_finite(sdss_wise, gen):
    model = si.SPSModel(nebular=True, dust_emission=True, agn=True)
    theta = model.prior.sample((64,), generator=gen)
    theta[:8, -1] = 0.0
    theta.requires_grad_(True)
    flux = model.photometry(theta, sdss_wise, units="maggies")
    flux[:, -3].sum().backward()                                 # W2
    assert torch.isfinite(theta.grad).all()
    assert (theta.grad[:, -1] > 0).all()                         # more AGN, brighter W2
