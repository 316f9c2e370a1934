"""Physics tests of the SPS forward model: scaling laws, limits, conservation, references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sedinfer as si

MODELS = {
    "nmf+cf": {},
    "delayed+calzetti": {"sfh": "delayed", "dust": "calzetti"},
    "exponential+none": {"sfh": "exponential", "dust": "none"},
    "constant+burst+all": {"sfh": "constant+burst", "dust": "cf", "nebular": True, "dust_emission": True},
    "binned+cf+neb": {"sfh": "binned", "nebular": True},
    "burst+calzetti": {"sfh": "burst", "dust": "calzetti"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_mass_scaling_is_exact(name, sdss, gen):
    model = si.SPSModel(**MODELS[name]).double()
    theta = model.prior.sample((64,), generator=gen, dtype=torch.float64)
    theta[:, 1] = 10.0
    brighter = theta.clone()
    brighter[:, 1] = 11.0
    dm = model.photometry(brighter, sdss) - model.photometry(theta, sdss)
    assert torch.allclose(dm, torch.full_like(dm, -2.5), atol=1e-9)


def test_dust_free_limits(sdss_wise, gen):
    cf = si.SPSModel(nebular=True).double()
    free = si.SPSModel(dust="none", nebular=True).double()
    theta = cf.prior.sample((32,), generator=gen, dtype=torch.float64)
    i = [cf.param_names.index(n) for n in ("tau_bc", "tau_ism")]
    theta[:, i] = 0.0
    keep = [cf.param_names.index(n) for n in free.param_names]
    expected = free.photometry(theta[:, keep], sdss_wise)
    assert torch.allclose(cf.photometry(theta, sdss_wise), expected, atol=1e-9)
    calz = si.SPSModel(sfh="delayed", dust="calzetti").double()
    nodust = si.SPSModel(sfh="delayed", dust="none").double()
    th = calz.prior.sample((32,), generator=gen, dtype=torch.float64)
    th[:, -1] = 0.0
    assert torch.allclose(calz.photometry(th, sdss_wise), nodust.photometry(th[:, :-1], sdss_wise), atol=1e-9)


def test_dust_dims_and_reddens(sdss, gen):
    model = si.SPSModel(sfh="delayed", dust="calzetti").double()
    th = model.prior.sample((32,), generator=gen, dtype=torch.float64)
    th[:, -1] = 0.0
    dusty = th.clone()
    dusty[:, -1] = 1.0
    m0, m1 = model.photometry(th, sdss), model.photometry(dusty, sdss)
    assert (m1 > m0).all()
    assert ((m1 - m0)[:, 0] > (m1 - m0)[:, 4]).all()        # u dimmed more than z


def test_energy_balance(full_model64, gen):
    theta = full_model64.prior.sample((16,), generator=gen, dtype=torch.float64)
    p = full_model64.parse(theta)
    plan = full_model64.spectrum_plan(3000.0, 3.0e5)
    lum, parts = full_model64.rest_luminosity(p, plan, parts=True)
    dw = plan.dwave_aa
    emitted = (parts["dust_emission"] * dw[plan.ir_start:]).sum(-1)
    # absorbed energy recomputed independently from the model's output spectrum
    stellar_out = lum.clone()
    stellar_out[:, plan.ir_start:] -= parts["dust_emission"]
    absorbed = ((parts["intrinsic"] - stellar_out) * dw).sum(-1)
    assert (absorbed > 0).all()
    assert torch.allclose(emitted, absorbed, rtol=0.01)


def test_distance_modulus_matches_astropy():
    from astropy.cosmology import WMAP9, Planck18

    for cosmo in (Planck18, WMAP9):
        model = si.SPSModel(cosmology=cosmo, z_max=3.0)
        z = np.linspace(0.01, 3.0, 200)
        ours = model.cosmo.distance_modulus(torch.as_tensor(z)).numpy()
        assert np.abs(ours - cosmo.distmod(z).value).max() < 1e-4
        ages = model.cosmo.age_gyr_at(torch.as_tensor(z)).numpy()
        assert np.abs(ages - cosmo.age(z).value).max() < 1e-4


def test_inverse_square_law(sdss):
    """Moving a fixed rest-frame spectrum changes its flux by (d_L ratio)^2 x (1+z) bandwidth terms:
    checked through the spectrum path, which is independent of the photometry tables."""
    model = si.SPSModel(sfh="delayed", dust="none").double()
    theta = torch.tensor([[0.1, 10.0, 0.0, 5.0, 1.0], [1.2, 11.0, -1.0, 2.0, 0.5]], dtype=torch.float64)
    wave = np.exp(np.arange(np.log(2900.0), np.log(11500.0), 2e-4))
    w, flam = model.spectrum(theta, wave_obs_aa=wave)
    ref = sdss.maggies_from_spectrum(w.numpy(), flam.numpy())
    ours = model.photometry(theta, sdss, units="maggies").numpy()
    assert np.abs(2.5 * np.log10(ours / ref)).max() < 2e-3


@pytest.mark.parametrize("sfh", ["nmf", "delayed", "exponential", "constant", "binned", "burst",
                                 "delayed+burst"])
def test_sfh_integrates_to_mass_formed_and_respects_big_bang(sfh, gen):
    model = si.SPSModel(sfh=sfh, dust="none").double()
    theta = model.prior.sample((200,), generator=gen, dtype=torch.float64)
    p = model.parse(theta)
    w = model.sfh_weights(p)
    assert (w >= -1e-12 * w.sum(-1, keepdim=True)).all()
    assert torch.allclose(w.sum(-1), 10 ** p["log_mass"], rtol=1e-9)
    t_age_yr = model.cosmo.age_gyr_at(p["redshift"]) * 1e9
    lower_edges = torch.as_tensor(model.age_edges_yr[:-1], dtype=torch.float64)
    before_big_bang = lower_edges.unsqueeze(0) >= t_age_yr.unsqueeze(-1) * 1.0001
    centres = torch.as_tensor(model.age_centres_yr, dtype=torch.float64)
    # only a burst interpolated towards the next bin centre may touch a bin starting after t_age
    after = before_big_bang & (centres.unsqueeze(0) > t_age_yr.unsqueeze(-1) * 10**0.1)
    assert (w[after] == 0).all()


def test_sfr_of_constant_sfh():
    model = si.SPSModel(sfh="constant", dust="none").double()
    th = torch.tensor([[0.1, 10.0, 0.0, 2.0]], dtype=torch.float64)
    d = model.derived(th)
    expected = 1e10 / 2e9
    for key in ("sfr_10myr", "sfr_100myr", "sfr_1gyr"):
        assert d[key].item() == pytest.approx(expected, rel=1e-6)
    assert d["mass_weighted_age"].item() == pytest.approx(1.0, rel=0.05)
    assert 9.7 < d["log_mstar"].item() < 10.0          # surviving < formed
    assert d["log_ssfr"].item() == pytest.approx(np.log10(expected) - d["log_mstar"].item())


def test_burst_derived_quantities():
    model = si.SPSModel(sfh="burst", dust="none").double()
    th = torch.tensor([[0.0, 10.0, 0.0, 0.05], [0.0, 10.0, 0.0, 2.0]], dtype=torch.float64)
    d = model.derived(th)
    assert d["sfr_100myr"][0].item() == pytest.approx(1e10 / 1e8)
    assert d["sfr_100myr"][1].item() == 0.0
    assert d["mass_weighted_age"][1].item() == pytest.approx(2.0, rel=0.12)


def test_mass_weighted_age_never_exceeds_the_age_of_the_universe():
    model = si.SPSModel()
    theta = model.prior.sample((4000,), generator=torch.Generator().manual_seed(0))
    theta[:, 7] = 13.0                                   # bursts asked for before the Big Bang
    d = model.derived(theta)
    assert (d["mass_weighted_age"] <= d["t_age"] + 1e-5).all()
    assert (d["mass_weighted_age"] > 0).all()


def test_calzetti_reference_values():
    from sedinfer.sps.dust import calzetti_k, drude_profile

    # Calzetti et al. (2000) eq. 4 evaluated by hand
    assert calzetti_k(np.array([5500.0]))[0] == pytest.approx(4.05 + 2.659 * (-2.156 + 1.509 / 0.55
                                                              - 0.198 / 0.55**2 + 0.011 / 0.55**3))
    assert calzetti_k(np.array([22000.0]))[0] == pytest.approx(4.05 + 2.659 * (-1.857 + 1.040 / 2.2))
    assert calzetti_k(np.array([40000.0]))[0] == 0.0
    assert drude_profile(np.array([2175.0]))[0] == pytest.approx(1.0)


def test_igm_matches_bagpipes_implementation():
    import importlib.util

    from sedinfer.sps.grids import grid_dir
    from sedinfer.sps.igm import igm_transmission

    path = grid_dir().parent / "making" / "igm_inoue2014.py"
    spec = importlib.util.spec_from_file_location("_inoue14_reference", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    wave = np.arange(500.0, 1300.0, 2.5)
    for z in (0.3, 1.5, 2.5, 4.0, 6.5):
        assert np.abs(igm_transmission(wave, [z])[0] - ref.get_Inoue14_trans(wave, z)).max() < 1e-10


def test_velocity_dispersion_conserves_flux_and_broadens():
    model = si.SPSModel(sfh="constant", dust="none", nebular=True).double()
    th = torch.tensor([[0.05, 10.0, 0.0, 0.5, -2.0]], dtype=torch.float64)
    wave = np.arange(6500.0, 7200.0, 0.5)
    _, sharp = model.spectrum(th, wave_obs_aa=wave)
    _, broad = model.spectrum(th, wave_obs_aa=wave, veldisp_kms=300.0)
    inner = (wave > 6700) & (wave < 7000)
    assert broad[0, inner].sum().item() == pytest.approx(sharp[0, inner].sum().item(), rel=2e-3)
    assert broad.max() < 0.5 * sharp.max()          # H-alpha peak spread out
    # float32 broadens the same pixels (a float64-only test of the grid's even part once let float32
    # broaden 2 of 9677 pixels)
    _, broad32 = si.SPSModel(sfh="constant", dust="none", nebular=True).spectrum(
        th.float(), wave_obs_aa=wave, veldisp_kms=300.0)
    assert broad32.double()[0, inner].numpy() == pytest.approx(broad[0, inner].numpy(), rel=2e-3)


def test_float64_agrees_with_float32(sdss, gen):
    m32, m64 = si.SPSModel(), si.SPSModel().double()
    theta = m64.prior.sample((128,), generator=gen, dtype=torch.float64)
    mag64 = m64.photometry(theta, sdss)
    diff = m32.photometry(theta.float(), sdss).double() - mag64
    visible = mag64 < 35          # extreme UV attenuation (n_dust ~ -3, tau ~ 3) underflows float32
    assert visible.float().mean() > 0.7      # the PopSED prior allows A_u of hundreds of mag
    assert diff[visible].abs().max() < 2e-3


def test_chunking_and_input_forms_agree(default_model, sdss, gen):
    theta = default_model.prior.sample((300,), generator=gen)
    a = default_model.photometry(theta, sdss)
    b = default_model.photometry(theta, sdss, chunk_size=37)
    c = default_model.photometry({k: theta[:, i] for i, k in enumerate(default_model.param_names)}, sdss)
    assert torch.allclose(a, b, atol=1e-4) and torch.equal(a, c)
    assert torch.allclose(default_model.photometry(theta[5], sdss), a[5:6])


def test_units(default_model, sdss, gen):
    theta = default_model.prior.sample((8,), generator=gen)
    mag = default_model.photometry(theta, sdss)
    maggies = default_model.photometry(theta, sdss, units="maggies")
    assert torch.allclose(mag, -2.5 * torch.log10(maggies))
    assert torch.allclose(default_model.photometry(theta, sdss, units="njy"), maggies * 3631e9, rtol=1e-6)
    wise = si.Filters("wise")
    vega = default_model.photometry(theta, wise, vega=True)
    ab = default_model.photometry(theta, wise)
    assert torch.allclose(ab - vega, torch.tensor([2.699, 3.339, 5.174, 6.620]).expand_as(ab), atol=1e-5)


# ------------------------------------------------------------------ Charlot & Fall birth clouds
def _young_old(model, theta, plan):
    p = model.parse(theta)
    young, old = model.stellar_light(model.sfh_weights(p).to(model.dtype), p["log_z"], plan)
    return p, young, old


@pytest.mark.slow
def test_birth_clouds_follow_the_fsps_power_law(gen):
    model = si.SPSModel().double()
    assert model.config.birth_cloud_curve == "power_law" and model.config.birth_cloud_index == -1.0
    theta = model.prior.sample((8,), generator=gen, dtype=torch.float64)
    theta[:, model.param_names.index("tau_ism")] = 0.0
    theta[:, model.param_names.index("tau_bc")] = torch.linspace(0.1, 3.0, 8, dtype=torch.float64)
    plan = model.spectrum_plan(1000.0, 1e5)
    p, young, old = _young_old(model, theta, plan)
    lum = model.rest_luminosity(p, plan)
    seen = young > 1e-12 * young.amax(-1, keepdim=True)
    t_bc = ((lum - old) / young)[seen]
    expected = torch.exp(-p["tau_bc"].unsqueeze(-1) * (plan.wave_aa / 5500.0) ** -1).expand_as(young)[seen]
    assert torch.allclose(t_bc, expected, rtol=1e-9, atol=1e-12)
    # no cut in the IR: at 10 µm the young stars are still dimmed by exp(-τ_bc 0.55)
    assert (plan.wave_aa[seen.any(0)] > 9e4).any()


def test_birth_cloud_index_is_the_power(gen):
    steep = si.SPSModel(birth_cloud_index=-1.7).double()
    theta = steep.prior.sample((4,), generator=gen, dtype=torch.float64)
    theta[:, steep.param_names.index("tau_ism")] = 0.0
    plan = steep.spectrum_plan(2000.0, 2e4)
    p, young, old = _young_old(steep, theta, plan)
    ratio = (steep.rest_luminosity(p, plan) - old) / young
    expected = torch.exp(-p["tau_bc"].unsqueeze(-1) * (plan.wave_aa / 5500.0) ** -1.7)
    assert torch.allclose(ratio, expected, rtol=1e-9)


@pytest.mark.slow
def test_no_birth_clouds_is_the_ism_alone(sdss_wise, gen):
    for kw in ({}, {"nebular": True}, {"nebular": True, "dust_emission": True}):
        power, kc = si.SPSModel(**kw).double(), si.SPSModel(birth_cloud_curve="kc", **kw).double()
        theta = power.prior.sample((32,), generator=gen, dtype=torch.float64)
        theta[:, power.param_names.index("tau_bc")] = 0.0
        assert torch.allclose(power.photometry(theta, sdss_wise), kc.photometry(theta, sdss_wise), atol=1e-9)
        theta[:, power.param_names.index("tau_bc")] = 1.0
        assert (power.photometry(theta, sdss_wise) - kc.photometry(theta, sdss_wise)).abs().max() > 1e-3


def test_kc_option_reproduces_sedinfer_0_1(sdss_wise):
    """Magnitudes of the model with birth clouds on the Kriek & Conroy curve, as computed by
    sedinfer 0.1 (commit 018530d, before the power law) in float64."""
    model = si.SPSModel(nebular=True, dust_emission=True, birth_cloud_curve="kc").double()
    theta = torch.tensor([[0.1, 10.0, -0.3, 0.4, 0.6, 0.5, 0.2, 3.3, 1.5, 0.4, -0.5, -2.2, 2.5, 3.0, 0.1],
                          [0.05, 10.0, 0.1, 0.1, 0.2, 0.9, 0.5, 0.05, 2.5, 1.0, 0.3, -1.5, 1.0, 10.0, 0.5]],
                         dtype=torch.float64)
    old = torch.tensor([[21.304681383, 19.924972393, 19.205811979, 18.846419435, 18.583127675, 18.594844558,
                         19.155757738, 17.136492443, 16.186345307],
                        [16.817193074, 16.055709918, 15.844779467, 15.647354504, 15.404432907, 15.165521423,
                         15.638410055, 12.626002849, 11.110402059]], dtype=torch.float64)
    assert torch.allclose(model.photometry(theta, sdss_wise), old, atol=2e-9)


@pytest.mark.slow
def test_power_law_energy_balance_in_photometry(sdss_wise, gen):
    """The absorbed luminosity of photometry plans (coarse energy grid, extended into the IR
    for the power law) equals that of a fine spectrum grid from 100 Å to 1 cm."""
    model = si.SPSModel(nebular=True, dust_emission=True).double()
    theta = model.prior.sample((16,), generator=gen, dtype=torch.float64)
    p = model.parse(theta)
    fine = model.spectrum_plan(3000.0, 3.0e5)
    coarse = model.photometry_plan(sdss_wise)
    assert coarse.wave_aa[coarse.n_energy - 1] > 5e5
    _, a_fine = model.rest_luminosity(p, fine, parts=True)
    _, a_coarse = model.rest_luminosity(p, coarse, parts=True)
    assert torch.allclose(a_coarse["absorbed"], a_fine["absorbed"], rtol=2e-3)


@pytest.mark.parametrize("kw", [{}, {"birth_cloud_curve": "kc"}, {"nebular": True, "dust_emission": True},
                                {"birth_cloud_index": -0.7, "nebular": True}])
def test_charlot_fall_gradients_finite(kw, sdss_wise, gen):
    model = si.SPSModel(**kw)
    theta = model.prior.sample((64,), generator=gen)
    theta[:8, model.param_names.index("tau_bc")] = 0.0
    theta[8:16, model.param_names.index("tau_bc")] = 3.0
    theta.requires_grad_(True)
    model.photometry(theta, sdss_wise, units="maggies").sum().backward()
    grad = theta.grad
    assert torch.isfinite(grad).all()
    if not model.config.dust_emission:                      # more dust, less light (no re-emission)
        assert (grad[:, model.param_names.index("tau_bc")] < 0).all()


@pytest.mark.slow
def test_power_law_ism_option_is_exact(sdss_wise, gen):
    """ism_curve="power_law": exp(-tau_ism (lambda/5500)^n_dust) on all stars at every wavelength,
    birth clouds on their own power law (the Charlot & Fall 2000 / bagpipes CF00 form)."""
    model = si.SPSModel(ism_curve="power_law", birth_cloud_index=-0.7).double()
    theta = model.prior.sample((6,), generator=gen, dtype=torch.float64)
    plan = model.spectrum_plan(2000.0, 1e5)
    p, young, old = _young_old(model, theta, plan)
    lam = plan.wave_aa / 5500.0
    t_ism = torch.exp(-p["tau_ism"].unsqueeze(-1) * lam ** p["n_dust"].unsqueeze(-1))
    t_bc = torch.exp(-p["tau_bc"].unsqueeze(-1) * lam**-0.7)
    assert torch.allclose(model.rest_luminosity(p, plan), t_ism * (old + t_bc * young), rtol=1e-10)
    with pytest.raises(ValueError, match="ism_curve"):
        si.SPSModel(ism_curve="calzetti")
    full = si.SPSModel(ism_curve="power_law", nebular=True, dust_emission=True).double()
    th = full.prior.sample((8,), generator=gen, dtype=torch.float64)
    q = full.parse(th)
    _, a_fine = full.rest_luminosity(q, full.spectrum_plan(3000.0, 3.0e5), parts=True)
    _, a_coarse = full.rest_luminosity(q, full.photometry_plan(sdss_wise), parts=True)
    assert torch.allclose(a_coarse["absorbed"], a_fine["absorbed"], rtol=2e-3)
