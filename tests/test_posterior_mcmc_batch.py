"""Batched MCMC (sedinfer.posterior.mcmc_batch): the stretch move on known targets, agreement with
emcee, and the batched SPS posterior against the one-galaxy one of sedinfer.posterior.mcmc."""

import numpy as np
import pytest
import torch

from sedinfer.posterior.mcmc import _fixed_values, _LogPosterior
from sedinfer.posterior.mcmc_batch import SPSBatchLogPosterior, run_stretch_batch

MEANS = np.array([[0.0, 0.0], [5.0, -3.0], [-2.0, 10.0]])
SCALES = np.array([[1.0, 1.0], [0.1, 2.0], [3.0, 0.5]])
RHO = np.array([0.0, 0.9, -0.5])


class Gaussians:
    """G correlated 2-D Gaussians, one per ensemble, with the select() the batch needs."""

    def __init__(self, rows=None):
        self.rows = np.arange(len(MEANS)) if rows is None else np.asarray(rows)

    def cov(self, g):
        s, r = SCALES[g], RHO[g]
        return np.array([[s[0] ** 2, r * s[0] * s[1]], [r * s[0] * s[1], s[1] ** 2]])

    def select(self, rows):
        return Gaussians(self.rows[rows])

    def __call__(self, x):
        out = np.empty(x.shape[:2])
        for j, g in enumerate(self.rows):
            d = x[j] - MEANS[g]
            out[j] = -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(self.cov(g)), d)
        return out


@pytest.fixture(scope="module")
def gaussian_run():
    rng = np.random.default_rng(1)
    p0 = MEANS[:, None] + SCALES[:, None] * rng.normal(size=(3, 32, 2))
    done = []
    res = run_stretch_batch(Gaussians(), p0, block=1000, max_steps=20_000, store_every=5, seed=3,
                            on_done=lambda g, r: done.append(g))
    return res, done


def test_each_ensemble_samples_its_own_target(gaussian_run):
    res, done = gaussian_run
    assert sorted(done) == [0, 1, 2]
    for g, r in enumerate(res):
        assert r["converged"] and r["steps"] - r["burn"] > 50 * r["autocorr_steps"].max()
        s = r["samples"]
        assert np.all(np.abs(s.mean(0) - MEANS[g]) < 0.1 * SCALES[g])
        cov = np.cov(s.T)
        assert np.allclose(np.sqrt(np.diag(cov)), SCALES[g], rtol=0.1)
        assert cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]) == pytest.approx(RHO[g], abs=0.06)


def test_acceptance_and_autocorrelation_match_emcee(gaussian_run):
    """The same move as emcee's vectorised stretch move: the same acceptance and τ on the same target."""
    emcee = pytest.importorskip("emcee")
    res, _ = gaussian_run
    target = Gaussians()
    sampler = emcee.EnsembleSampler(32, 2, lambda x: target.select([1])(x[None])[0], vectorize=True)
    rng = np.random.default_rng(2)
    sampler.run_mcmc(MEANS[1] + SCALES[1] * rng.normal(size=(32, 2)), 6000, progress=False)
    tau_emcee = sampler.get_autocorr_time(discard=1500, tol=0, quiet=True)
    assert res[1]["acceptance"] == pytest.approx(np.mean(sampler.acceptance_fraction), abs=0.04)
    assert res[1]["autocorr_steps"].max() == pytest.approx(tau_emcee.max(), rel=0.35)


def test_sps_batch_posterior_equals_the_one_galaxy_posterior():
    import sedinfer as si
    from sedinfer.filters import Filters

    model = si.SPSModel().double()
    filters = Filters(["sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"])
    flux = np.array([[3.0, 10.0, 20.0, 28.0, 35.0], [1.0, 4.0, np.nan, 11.0, 14.0]])
    err = 0.05 * np.nan_to_num(flux, nan=1.0) + 0.2
    z = np.array([0.05, 0.2])
    batch = SPSBatchLogPosterior(model, filters, flux, err, {"redshift": z})
    x = batch.start(16, n_init=64, seed=0)
    assert x.shape == (2, 16, len(model.param_names) - 1)
    got = batch(x)
    for g in range(2):
        fixed = _fixed_values(model, ("redshift",), z[g])
        one = _LogPosterior(model, filters, flux[g], err[g], fixed, "nmgy")
        assert np.allclose(got[g], one(x[g]), rtol=1e-10, atol=1e-8)
    assert np.allclose(batch.select([1])(x[1:]), got[1:])
    outside = x.copy()
    outside[0, 0, 0] = model.prior.high[1] + 1.0                    # log_mass above its prior box
    assert batch(outside)[0, 0] == -np.inf
    with torch.no_grad():
        assert np.isfinite(got).all()


def test_bad_starts_are_refused():
    from sedinfer.errors import ParameterError

    with pytest.raises(ParameterError, match="even number of walkers"):
        run_stretch_batch(Gaussians(), np.zeros((3, 3, 2)))
    with pytest.raises(ParameterError, match="shape"):
        run_stretch_batch(Gaussians(), np.zeros((3, 4)))
