"""Support model (Gaussian mixture in the flow's context space), error floor and flux-limited prior."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sedinfer.errors import ParameterError
from sedinfer.posterior.flux_limited import FluxLimitedPrior, check_prior_spec, check_selection
from sedinfer.posterior.galaxies import SEDPosterior
from sedinfer.posterior.sed import training_set
from sedinfer.posterior.sed_config import SDSS_BANDS, SEDConfig, saved_config
from sedinfer.posterior.support import SupportModel, fit_support


def _contexts(n: int, seed: int) -> torch.Tensor:
    """Contexts of 3 bands on a tight colour locus: mag_b = m + 0.5 b + 0.03 noise, log err ~ mag."""
    g = torch.Generator().manual_seed(seed)
    m = 17.0 + 4.0 * torch.rand(n, 1, generator=g)
    mag = m + 0.5 * torch.arange(3) + 0.03 * torch.randn(n, 3, generator=g)
    log_err = -2.0 + 0.3 * (mag - 17.0) + 0.05 * torch.randn(n, 3, generator=g)
    z = 0.1 + 0.02 * (m[:, 0] - 17.0) + 0.01 * torch.randn(n, generator=g)
    parts = torch.stack([mag, log_err, torch.ones(n, 3)], -1).flatten(-2)
    return torch.cat([parts, z[:, None]], -1)


@pytest.fixture(scope="module")
def support() -> SupportModel:
    return fit_support(_contexts(6000, 0), _contexts(6000, 1), n_bands=3, spec=True, n_components=8)


def test_threshold_flags_the_chosen_fraction_and_sees_colours(support):
    x = _contexts(20_000, 2)
    all_obs = np.ones((len(x), 3), dtype=bool)
    out, nll = support.flags(x, all_obs)
    assert np.isfinite(nll).all()
    assert 0.005 < out.mean() < 0.02                      # 1 % by construction
    swapped = x.clone()
    swapped[:, [0, 1, 6, 7]] = x[:, [6, 7, 0, 1]]         # bands 0 and 2 exchanged: wrong colours
    assert support.flags(swapped, all_obs)[0].mean() > 0.99
    off = x.clone()
    off[:, 3] += 0.3                                      # one band 0.3 mag off the locus
    assert support.flags(off, all_obs)[0].mean() > 0.95


def test_masked_bands_use_the_marginal_and_its_own_threshold(support):
    x = _contexts(20_000, 3)
    obs = np.ones((len(x), 3), dtype=bool)
    obs[:, 1] = False
    out, nll = support.flags(x, obs)
    assert 0.005 < out.mean() < 0.02
    # the marginal ignores whatever the masked band holds
    junk = x.clone()
    junk[:, 3:5] = 99.0
    np.testing.assert_allclose(support.nll(junk, obs), nll)


def test_support_round_trips_through_json(support):
    again = SupportModel.from_dict(json.loads(json.dumps(support.to_dict())))
    x = _contexts(100, 4)
    obs = np.ones((100, 3), dtype=bool)
    np.testing.assert_allclose(again.nll(x, obs), support.nll(x, obs))
    with pytest.raises(ParameterError, match="version"):
        SupportModel.from_dict({**support.to_dict(), "version": 99})


def test_old_saved_configs_keep_the_redraw_new_configs_do_not():
    assert SEDConfig().redraw_negative is False and SEDConfig().sigma_factor_range is None
    assert saved_config({"bands": list(SDSS_BANDS)})["redraw_negative"] is True
    assert saved_config({"redraw_negative": False})["redraw_negative"] is False
    cfg = SEDConfig(sigma_factor_range=[1 / 3, 3])
    again = SEDConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.build_noise().factor_range == pytest.approx((1 / 3, 3))
    with pytest.raises(ParameterError, match="sigma_factor_range"):
        SEDConfig(sigma_factor_range=(2.0, 3.0))
    with pytest.raises(ParameterError, match="inference_prior"):
        SEDConfig(inference_prior={"kind": "flux_limited", "band": "sdss_r0"})
    with pytest.raises(ParameterError, match="wise_w1"):
        SEDConfig(inference_prior={**_histogram().to_dict(), "selection": {"band": "wise_w1"}})
    with pytest.raises(ParameterError, match="mag_limit"):
        check_selection({"mag_limit": 17.77})


@pytest.mark.parametrize("name", ["sdss-specz", "sdss-photz"])
def test_shipped_models_were_trained_as_the_docs_say(name):
    """Noise kept as drawn, errors spanning [1/3, 3] x the depth model, nebular emission on, a
    support model; the photo-z model on the flux-limited (z, log M) prior."""
    sed = SEDPosterior.load(name)
    cfg = SEDConfig.from_dict(sed.meta["config"])
    assert cfg.redraw_negative is False
    assert cfg.sigma_factor_range == pytest.approx((1 / 3, 3), rel=1e-6)
    assert cfg.build_noise() == sed.noise
    assert sed.meta["model_config"]["nebular"] is True
    assert sed.support is not None
    if name == "sdss-photz":
        assert sed.meta["inference_prior"]["kind"] == "flux_limited_histogram"


def _histogram() -> FluxLimitedPrior:
    counts = np.zeros((4, 3), dtype=int)
    counts[0, 1], counts[1, 2], counts[2, 0] = 60, 30, 10
    return FluxLimitedPrior((0.0, 0.1, 0.2, 0.3, 0.4), (9.0, 10.0, 11.0, 12.0),
                            tuple(tuple(int(v) for v in r) for r in counts), {"band": "sdss_r0"})


def test_flux_limited_histogram_samples_its_counts_and_normalises():
    prior = _histogram()
    z, m = prior.sample(50_000, torch.Generator().manual_seed(0))
    counts, _, _ = np.histogram2d(z.numpy(), m.numpy(), bins=[prior.z_edges, prior.log_mass_edges])
    np.testing.assert_allclose(counts / counts.sum(), np.asarray(prior.counts) / 100, atol=0.01)
    zz, mm = np.meshgrid(np.linspace(0.0005, 0.3995, 400), np.linspace(9.0025, 11.9975, 600), indexing="ij")
    integral = np.exp(prior.log_prob(zz, mm)).mean() * 0.4 * 3.0
    assert integral == pytest.approx(1.0, rel=1e-3)
    assert prior.log_prob(np.array([0.35]), np.array([9.5]))[0] == -np.inf
    assert FluxLimitedPrior.from_dict(json.loads(json.dumps(prior.to_dict()))) == prior


def test_training_set_draws_redshift_and_mass_from_the_flux_limited_prior():
    spec = check_selection({})
    assert spec["mag_max"] == 17.77 and spec["band"] == "sdss_r0"
    prior = _histogram()
    cfg = SEDConfig(n_simulations=300, redshift_mode="phot", inference_prior=prior.to_dict())
    assert SEDConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    theta, x, info = training_set(cfg, progress=False)
    names = list(info["param_names"])
    z, m = theta[:, names.index("redshift")].numpy(), theta[:, names.index("log_mass")].numpy()
    assert np.isfinite(prior.log_prob(z, m)).all()          # every draw in an occupied cell
    assert info["inference_prior"] == prior.to_dict()
    assert torch.isfinite(x).all()


def test_error_floor_inflates_small_errors_and_names_the_bands():
    sed = SEDPosterior.load("sdss-specz")
    flux = np.array([[5.0, 20.0, 40.0, 60.0, 70.0]])          # nanomaggies, r ~ 18.5
    floor = sed.error_floor(flux * 1e-9) * 1e9
    err = floor.copy()
    err[0, [1, 3]] /= 3.0                                   # g and i below the floor
    res = sed.infer(flux, err, np.array([0.1]), n_samples=8, seed=0, derived=False)
    assert res.inflated_bands[0] == "sdss_g0,sdss_i0"
    t = res.summary_table()
    assert t["inflated_bands"][0] == "sdss_g0,sdss_i0" and "support_nll" in t.colnames
    same = sed.infer(flux, np.where(err < floor, floor, err), np.array([0.1]), n_samples=8, seed=0,
                     derived=False)
    np.testing.assert_array_equal(res.samples, same.samples)  # as if the catalog had the floor's errors
    raw = sed.infer(flux, err, np.array([0.1]), n_samples=8, seed=0, derived=False, error_floor=False)
    assert raw.inflated_bands[0] == "" and not np.array_equal(raw.samples, res.samples)


@pytest.mark.slow
def test_flux_limited_prior_from_the_mock_population_is_low_redshift():
    import importlib.util
    from pathlib import Path

    from sedinfer.filters import Filters

    path = Path(__file__).parents[1] / "scripts" / "flux_limited_prior.py"
    spec = importlib.util.spec_from_file_location("flux_limited_prior", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cfg = SEDConfig(redshift_mode="phot")
    prior = script.build_flux_limited_prior(cfg.build_model(), Filters(list(cfg.bands)), cfg.build_noise(),
                                     {"mag_max": 19.8, "n_galaxies": 300},
                                     chunk=10_000)
    assert sum(map(sum, prior.counts)) == 300
    assert prior.selection["n_parent"] > 3000                 # a few % of the parent pass r < 19.8
    assert 0.1 < prior.selection["median_redshift"] < 0.35 and prior.selection["median_log_mass"] > 10
    assert check_prior_spec(prior.to_dict(), SDSS_BANDS) == prior.to_dict()
    with pytest.raises(ParameterError, match="mag_max"):
        check_selection({"mag_max": "bright"})


def test_train_config_names_the_inference_prior_and_error_range(tmp_path):
    from sedinfer.posterior.card import load_config

    (tmp_path / "fl.json").write_text(json.dumps(_histogram().to_dict()))
    toml = tmp_path / "cfg.toml"
    toml.write_text('redshift_mode = "phot"\ninference_prior = "fl.json"\n'
                    'sigma_factor_range = [0.3333, 3.0]\n')
    cfg = load_config(toml)
    assert FluxLimitedPrior.from_dict(cfg.inference_prior) == _histogram()
    assert cfg.sigma_factor_range == (0.3333, 3.0) and cfg.redraw_negative is False
