"""MCMC reference posteriors (sedinfer.posterior.mcmc) and sample-set comparisons (compare)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sedinfer as si
from sedinfer.errors import CatalogError, ParameterError
from sedinfer.posterior.compare import c2st, marginal_ks, plot_posterior_vs_mcmc
from sedinfer.posterior.mcmc import log_likelihood, run_emcee

SHORT_CHAIN = pytest.mark.filterwarnings("ignore:emcee chain may not have converged:RuntimeWarning")
TRUTH = (0.05, 11.0, -0.3, 0.5, 0.5, 0.5, 0.1, 2.0, 0.5, 0.3, -0.5)   # default model order


@pytest.fixture(scope="module")
def model64():
    return si.SPSModel().double()


@pytest.fixture(scope="module")
def mock(model64, sdss):
    """A bright z = 0.05 galaxy in ugriz (nanomaggies), σ = 2% of the flux, one noise draw."""
    theta = torch.tensor([TRUTH], dtype=torch.float64)
    with torch.no_grad():
        flux = model64.photometry(theta, sdss, units="nmgy")[0].numpy()
    err = 0.02 * flux
    return flux + err * np.random.default_rng(1).standard_normal(flux.shape), err


@pytest.fixture(scope="module")
def chain(model64, sdss, mock):
    flux, err = mock
    with pytest.warns(RuntimeWarning, match="converged"):    # 400 steps: far from 50 autocorrelation times
        return run_emcee(model64, sdss, flux, err, redshift=TRUTH[0], n_walkers=32, n_steps=400, burn=200,
                         thin=2, seed=3)


def test_short_chain_recovers_mass_inside_prior(chain, model64):
    names = model64.param_names[1:]
    assert chain.names == names
    assert chain.samples.shape == (32 * 100, 10)
    assert chain.fixed == {"redshift": TRUTH[0]}
    low, high = model64.prior.low[1:], model64.prior.high[1:]
    assert np.all(chain.samples >= low) and np.all(chain.samples <= high)
    assert abs(chain.median()["log_mass"] - TRUTH[1]) < 0.2
    assert 0.05 < chain.acceptance_fraction < 0.9
    assert chain.autocorr_time.shape == (10,) and np.isfinite(chain.log_prob).all()
    # log_prob = log prior + log likelihood; the samples fit the 5 bands (prior draws: median chi2 ~ 1e4)
    log_prior = model64.prior.subset(names).log_prob(torch.as_tensor(chain.samples)).numpy()
    chi2 = -2 * (chain.log_prob - log_prior)
    assert np.median(chi2) < 20


@SHORT_CHAIN
def test_run_emcee_is_seeded(model64, sdss, mock):
    flux, err = mock
    kw = dict(redshift=TRUTH[0], n_walkers=24, n_steps=20, burn=10, thin=1, n_init=256, n_refine=1, seed=5)
    a, b = run_emcee(model64, sdss, flux, err, **kw), run_emcee(model64, sdss, flux, err, **kw)
    np.testing.assert_array_equal(a.samples, b.samples)


@SHORT_CHAIN
def test_fixed_mapping_and_nan_band(model64, sdss, mock):
    flux, err = mock
    flux = flux.copy()
    flux[0] = np.nan                                        # u band missing: skipped, not an error
    res = run_emcee(model64, sdss, flux, err, fixed={"redshift": 0.05, "n_dust": -0.5}, n_walkers=20,
                    n_steps=20, burn=10, thin=1, n_init=256, n_refine=0)
    assert res.names == model64.param_names[1:-1] and res.samples.shape[1] == 9
    assert res.fixed == {"redshift": 0.05, "n_dust": -0.5}


def test_log_likelihood_matches_chi2(model64, sdss, mock):
    flux, err = mock
    theta = torch.tensor([TRUTH], dtype=torch.float64)
    with torch.no_grad():
        pred = model64.photometry(theta, sdss, units="maggies")[0].numpy()
    ll = log_likelihood(model64, sdss, theta, flux * 1e-9, err * 1e-9, units="maggies")
    expect = -0.5 * np.sum(((pred - flux * 1e-9) / (err * 1e-9)) ** 2)
    np.testing.assert_allclose(ll.numpy(), [expect], rtol=1e-10)
    flux_nan = flux.copy()
    flux_nan[2] = np.nan
    keep = np.arange(5) != 2
    ll = log_likelihood(model64, sdss, theta, flux_nan, err)
    np.testing.assert_allclose(ll.numpy(), [-0.5 * np.sum(((pred * 1e9 - flux) / err)[keep] ** 2)], rtol=1e-8)


def test_bad_inputs_raise(model64, sdss, mock):
    flux, err = mock
    bad = err.copy()
    bad[3] = 0.0
    with pytest.raises(CatalogError, match="sdss_i0"):
        run_emcee(model64, sdss, flux, bad, 0.05)
    with pytest.raises(CatalogError, match="no band"):
        run_emcee(model64, sdss, np.full(5, np.nan), err, 0.05)
    with pytest.raises(ParameterError, match="redshift"):
        run_emcee(model64, sdss, flux, err, 2.0)
    with pytest.raises(ParameterError, match="redshift"):
        run_emcee(model64, sdss, flux, err)                 # fixed redshift without a value
    with pytest.raises(ParameterError, match="n_walkers"):
        run_emcee(model64, sdss, flux, err, 0.05, n_walkers=10)
    with pytest.raises(ParameterError, match="units"):
        run_emcee(model64, sdss, flux, err, 0.05, units="mag")
    with pytest.raises(ParameterError, match="log_massx"):
        run_emcee(model64, sdss, flux, err, 0.05, fixed={"redshift": 0.05, "log_massx": 1.0})


def test_c2st_identical_and_shifted():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1000, 3)), rng.standard_normal((1000, 3))
    assert c2st(a, b, seed=0) < 0.6
    shifted = b + np.array([2.0, 0.0, 0.0])
    assert c2st(a, shifted, seed=0) > 0.8


def test_marginal_ks_detects_shift():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2000, 2))
    b = rng.standard_normal((2000, 2)) + np.array([0.0, 0.3])
    res = marginal_ks(a, b, ["x", "y"])
    assert res["x"][1] > 0.01 and res["y"][1] < 1e-6
    assert res["y"][0] > res["x"][0]
    with pytest.raises(ParameterError, match="columns"):
        marginal_ks(a, b, ["x"])


def test_plot_posterior_vs_mcmc(tmp_path, chain, model64):
    rng = np.random.default_rng(2)
    flow = chain.samples + 0.01 * rng.standard_normal(chain.samples.shape)
    out = tmp_path / "fig" / "corner.png"
    path = plot_posterior_vs_mcmc(flow, chain.samples, chain.names, TRUTH[1:], out)
    assert path.is_file() and path.stat().st_size > 10_000
    assert sorted(p.name for p in path.parent.iterdir()) == ["corner.png"]   # no temp file left
    with pytest.raises(ParameterError, match="truth"):
        plot_posterior_vs_mcmc(flow, chain.samples, chain.names, TRUTH, tmp_path / "x.png")
