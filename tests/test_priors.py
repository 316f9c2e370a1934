"""Tests of sedinfer.priors: 1-D distributions, Prior boxes, stick-breaking and defaults."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from sedinfer.errors import ParameterError
from sedinfer.priors import (
    DEFAULT_PRIORS,
    PARAMETER_INFO,
    LogUniform,
    Prior,
    TruncatedNormal,
    Uniform,
    default_prior,
    distribution_from_dict,
    kappa_to_simplex,
    popsed_prior,
    simplex_to_kappa,
)

DISTS = {
    "uniform": (Uniform(-2.6, 0.3), stats.uniform(loc=-2.6, scale=2.9)),
    "loguniform": (LogUniform(0.1, 10.0), stats.loguniform(0.1, 10.0)),
    "truncnorm": (TruncatedNormal(1.0, 2.0, 0.0, 5.0), stats.truncnorm(-0.5, 2.0, loc=1.0, scale=2.0)),
    # box entirely above the mean: exercises the mirrored (upper-tail) branch
    "truncnorm_tail": (TruncatedNormal(0.0, 1.0, 3.0, 6.0), stats.truncnorm(3.0, 6.0)),
}
IDS = list(DISTS)


def _grid(dist, n=257):
    return torch.linspace(dist.low, dist.high, n, dtype=torch.float64)


@pytest.mark.parametrize("key", IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_shape_dtype_bounds(key, dtype):
    dist, _ = DISTS[key]
    x = dist.sample((100, 3), dtype=dtype)
    assert x.shape == (100, 3) and x.dtype == dtype
    assert bool(((x >= dist.low) & (x <= dist.high)).all())
    assert dist.sample(7).shape == (7,)
    assert dist.sample().shape == ()


@pytest.mark.parametrize("key", IDS)
def test_log_prob_and_cdf_match_scipy(key):
    dist, ref = DISTS[key]
    x = _grid(dist)
    np.testing.assert_allclose(dist.log_prob(x).numpy(), ref.logpdf(x.numpy()), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dist.cdf(x).numpy(), ref.cdf(x.numpy()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("key", IDS)
def test_outside_box(key):
    dist, _ = DISTS[key]
    x = torch.tensor([dist.low - 1e-3, dist.high + 1e-3, dist.high + 100.0, math.nan], dtype=torch.float64)
    assert torch.all(dist.log_prob(x) == -math.inf)
    np.testing.assert_array_equal(dist.cdf(x[:3]).numpy(), [0.0, 1.0, 1.0])


@pytest.mark.parametrize("key", IDS)
def test_icdf_inverts_cdf(key):
    dist, ref = DISTS[key]
    x = _grid(dist)[1:-1]
    torch.testing.assert_close(dist.icdf(dist.cdf(x)), x, rtol=1e-9, atol=1e-9)
    u = torch.tensor([0.0, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(dist.icdf(u).numpy(), [dist.low, dist.high], rtol=1e-9)
    draws = dist.sample(20_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert stats.kstest(draws.numpy(), ref.cdf).pvalue > 0.01


def test_log_prob_gradient_finite():
    for dist, _ in DISTS.values():
        x = torch.tensor([dist.low - 1.0, 0.5 * (dist.low + dist.high)], dtype=torch.float64,
                         requires_grad=True)
        dist.log_prob(x)[1].backward()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("key", IDS)
def test_distribution_dict_round_trip(key):
    dist, _ = DISTS[key]
    assert distribution_from_dict(json.loads(json.dumps(dist.to_dict()))) == dist


def test_distribution_errors():
    with pytest.raises(ParameterError, match="low < high"):
        Uniform(1.0, 1.0)
    with pytest.raises(ParameterError, match="low > 0"):
        LogUniform(0.0, 1.0)
    with pytest.raises(ParameterError, match="scale > 0"):
        TruncatedNormal(0.0, -1.0, 0.0, 1.0)
    with pytest.raises(ParameterError, match="unknown distribution type 'gamma'"):
        distribution_from_dict({"type": "gamma", "low": 0, "high": 1})
    with pytest.raises(ParameterError, match="bad arguments"):
        distribution_from_dict({"type": "uniform", "low": 0, "hi": 1})


def test_generator_reproducibility():
    prior = popsed_prior()
    a = prior.sample((50,), generator=torch.Generator().manual_seed(3))
    b = prior.sample((50,), generator=torch.Generator().manual_seed(3))
    c = prior.sample((50,), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    d1 = LogUniform(0.1, 10.0).sample(10, generator=torch.Generator().manual_seed(0))
    d2 = LogUniform(0.1, 10.0).sample(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(d1, d2)


def test_prior_sample_and_log_prob():
    prior = default_prior(["redshift", "tau", "log_z"])
    assert prior.names == ("redshift", "tau", "log_z") and prior.ndim == 3
    theta = prior.sample((4, 5), dtype=torch.float64)
    assert theta.shape == (4, 5, 3) and theta.dtype == torch.float64
    assert prior.sample().shape == (3,) and prior.sample(6).shape == (6, 3)
    low, high = prior.bounds(torch.float64)
    assert low.shape == high.shape == (3,)
    assert bool(((theta >= low) & (theta <= high)).all())
    expected = sum(d.log_prob(theta[..., i]) for i, d in enumerate(prior.distributions.values()))
    torch.testing.assert_close(prior.log_prob(theta), expected)
    outside = theta.clone()
    outside[1, 2, 0] = 2.0
    lp = prior.log_prob(outside)
    assert lp[1, 2] == -math.inf and torch.isfinite(lp[0]).all()
    torch.testing.assert_close(prior.icdf(prior.cdf(theta)), theta)
    with pytest.raises(ParameterError, match="last dimension 3"):
        prior.log_prob(torch.zeros(2, 4))


def test_float32_samples_pass_validation():
    prior = default_prior(list(DEFAULT_PRIORS))
    theta = prior.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert theta.dtype == torch.float32
    assert prior.validate(theta) is theta
    assert torch.isfinite(prior.log_prob(theta)).all()


def test_validate_errors():
    prior = popsed_prior()
    theta = prior.sample(6, generator=torch.Generator().manual_seed(0))
    bad = theta.clone()
    bad[3, 2] = 0.9
    with pytest.raises(ParameterError) as err:
        prior.validate(bad)
    msg = str(err.value)
    assert "'log_z'" in msg and "0.9" in msg and "row 3" in msg and "[-2.6, 0.3]" in msg
    bad = theta.clone()
    bad[4, 7] = math.nan
    with pytest.raises(ParameterError, match=r"'t_burst'.*non-finite.*row 4.*\[0.01, 13.27\]"):
        prior.validate(bad)
    with pytest.raises(ParameterError, match=r"last dimension 11 \(redshift, log_mass"):
        prior.validate(theta[:, :3])
    # a value just above a float32 bound is reported distinguishably from the bound
    bad = theta.clone()
    bad[0, 1] = torch.nextafter(torch.tensor(13.0), torch.tensor(14.0))
    with pytest.raises(ParameterError, match=r"'log_mass' has value 13.00000\d+ \(row 0\)"):
        prior.validate(bad)


def test_validate_dict_input():
    prior = default_prior(["redshift", "log_mass"])
    out = prior.validate({"log_mass": np.array([10.0, 11.0]), "redshift": [0.1, 0.2]})
    assert out.shape == (2, 2)
    torch.testing.assert_close(out[:, 0], torch.tensor([0.1, 0.2], dtype=torch.float64))
    assert prior.validate({"redshift": 0.5, "log_mass": torch.tensor([9.0, 10.0, 11.0])}).shape == (3, 2)
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'mass'.*redshift, log_mass"):
        prior.validate({"redshift": [0.1], "log_mass": [10.0], "mass": [1.0]})
    with pytest.raises(ParameterError, match=r"missing parameter\(s\) log_mass"):
        prior.validate({"redshift": [0.1]})
    with pytest.raises(ParameterError, match="different lengths"):
        prior.validate({"redshift": [0.1, 0.2], "log_mass": [10.0, 11.0, 12.0]})
    with pytest.raises(ParameterError, match="'redshift' has value 2"):
        prior.validate({"redshift": [0.1, 2.0], "log_mass": [10.0, 11.0]})


def test_prior_dict_round_trip_and_containers():
    prior = popsed_prior().replace(log_z=TruncatedNormal(-0.5, 0.5, -2.6, 0.3))
    again = Prior.from_dict(json.loads(json.dumps(prior.to_dict())))
    assert again == prior and again.names == prior.names
    assert "kappa1" in prior and "tau" not in prior
    assert isinstance(prior["log_z"], TruncatedNormal)
    assert "Prior(redshift=Uniform(" in repr(prior)
    table = prior.describe()
    assert all(name in table for name in prior.names)
    assert "TruncatedNormal(loc=-0.5, scale=0.5)" in table and "[-2.6, 0.3]" in table
    sub = prior.subset(["n_dust", "redshift"])
    assert sub.names == ("n_dust", "redshift")
    np.testing.assert_array_equal(sub.low, [-3.0, 0.0])
    assert popsed_prior()["log_z"] == Uniform(-2.6, 0.3)  # replace did not mutate
    with pytest.raises(ParameterError, match="unknown parameter"):
        prior.replace(tau=Uniform(0, 1))
    with pytest.raises(ParameterError, match="unknown parameter"):
        prior.subset(["tau"])
    with pytest.raises(ParameterError, match="at least one"):
        Prior({})


@pytest.mark.parametrize("k", [2, 4, 7])
def test_kappa_to_simplex_is_flat_dirichlet(k):
    gen = torch.Generator().manual_seed(k)
    kappa = torch.rand(200_000, k - 1, generator=gen, dtype=torch.float64)
    beta = kappa_to_simplex(kappa)
    assert beta.shape == (200_000, k)
    torch.testing.assert_close(beta.sum(-1), torch.ones(200_000, dtype=torch.float64))
    assert bool((beta >= 0).all())
    for i in range(k):
        assert stats.kstest(beta[:, i].numpy(), stats.beta(1, k - 1).cdf).pvalue > 0.01
    torch.testing.assert_close(simplex_to_kappa(beta[:1000]), kappa[:1000])


def test_simplex_transform_inverse_and_gradient():
    beta = torch.distributions.Dirichlet(torch.ones(5, dtype=torch.float64)).sample((100,))
    torch.testing.assert_close(kappa_to_simplex(simplex_to_kappa(beta)), beta)
    kappa = torch.rand(3, 4, dtype=torch.float64).clamp(0.05, 0.95).requires_grad_(True)
    assert torch.autograd.gradcheck(kappa_to_simplex, (kappa,))
    torch.testing.assert_close(kappa_to_simplex(torch.tensor([0.3])), torch.tensor([0.7, 0.3]))


def test_default_priors():
    assert set(DEFAULT_PRIORS) == set(PARAMETER_INFO)
    assert DEFAULT_PRIORS["tau"] == LogUniform(0.1, 10.0)
    assert [f"kappa{i}" in DEFAULT_PRIORS for i in range(1, 10)] == [True] * 9
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'metallicity'.*log_z"):
        default_prior(["redshift", "metallicity"])
    prior = popsed_prior()
    assert prior.names == ("redshift", "log_mass", "log_z", "kappa1", "kappa2", "kappa3",
                           "f_burst", "t_burst", "tau_bc", "tau_ism", "n_dust")
    np.testing.assert_array_equal(prior.low, [0, 7.5, -2.6, 0, 0, 0, 0, 0.01, 0, 0, -3])
    np.testing.assert_array_equal(prior.high, [1.55, 13, 0.3, 1, 1, 1, 1, 13.27, 3, 3, 1])
