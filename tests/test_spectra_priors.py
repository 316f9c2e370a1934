"""Mock population priors: same marginals, different dependence (coupled vs separable)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp, kstest, spearmanr, truncnorm

from sedinfer.errors import ParameterError
from sedinfer.priors import LogUniform, Prior
from sedinfer.spectra import MockPrior
from sedinfer.spectra.priors import permute_columns, truncated_normal

N = 3000


@pytest.fixture(scope="module")
def draws(full_model):
    coupled = MockPrior(full_model, "coupled").sample(N, torch.Generator().manual_seed(11))
    separable = MockPrior(full_model, "separable").sample(N, torch.Generator().manual_seed(12))
    ssfr = {k: full_model.derived(d["theta"])["log_ssfr"].double().numpy()
            for k, d in (("coupled", coupled), ("separable", separable))}
    return full_model.param_names, coupled, separable, ssfr


def test_marginals_agree(draws):
    names, coupled, separable, _ = draws
    for j, name in enumerate(names):
        res = ks_2samp(coupled["theta"][:, j].numpy(), separable["theta"][:, j].numpy())
        assert res.pvalue > 1e-3, (name, res)


def test_dependence_differs(draws):
    names, coupled, separable, ssfr = draws
    i = names.index
    c, s = coupled["theta"], separable["theta"]
    pairs = [(c[:, i("log_z")], c[:, i("qpah")], s[:, i("log_z")], s[:, i("qpah")]),
             (ssfr["coupled"], c[:, i("umin")], ssfr["separable"], s[:, i("umin")])]
    for xc, yc, xs, ys in pairs:
        rho_c = spearmanr(np.asarray(xc), np.asarray(yc)).statistic
        rho_s = spearmanr(np.asarray(xs), np.asarray(ys)).statistic
        assert rho_c > 0.4 and abs(rho_s) < 0.08, (rho_c, rho_s)
    # q_PAH follows Draine et al. (2007): ~1 % at low metallicity, ~3.5 % at solar
    lz, q = coupled["theta"][:, i("log_z")].numpy(), coupled["theta"][:, i("qpah")].numpy()
    assert np.median(q[lz < -1.0]) == pytest.approx(1.0, abs=0.3)
    assert np.median(q[lz > -0.2]) == pytest.approx(3.55, abs=0.3)


def test_separable_is_a_permutation_of_the_coupled_draw(full_model):
    prior = MockPrior(full_model, "coupled")
    d = prior.sample(500, torch.Generator().manual_seed(3))["theta"]
    s = prior.separate(d, torch.Generator().manual_seed(4))
    for j, name in enumerate(full_model.param_names):
        same = torch.equal(s[:, j], d[:, j])
        assert same == (name not in prior.ir_names), name
        assert torch.equal(s[:, j].sort().values, d[:, j].sort().values)
    full_model.parse(s)    # inside the model's limits


def test_velocity_dispersion_range_and_mass_trend(draws):
    names, coupled, _, _ = draws
    v = coupled["veldisp_kms"].numpy()
    assert v.min() >= 50 - 1e-9 and v.max() <= 300 + 1e-9
    logm = coupled["theta"][:, names.index("log_mass")].numpy()
    assert np.median(v[logm > 11]) > 1.5 * np.median(v[logm < 10])


class _AGNStub:
    """The full model plus an ``f_agn`` parameter, standing in for SPSModel(agn=True)."""

    def __init__(self, base):
        self.base = base
        self.param_names = (*base.param_names, "f_agn")
        self.low, self.high, self.config = (*base.low, 0.0), (*base.high, 1.0), base.config
        self.prior = Prior({**base.prior.distributions, "f_agn": LogUniform(1e-4, 1.0)})

    def derived(self, theta):
        return self.base.derived({k: v for k, v in theta.items() if k != "f_agn"})


def test_agn_fraction_coupled_to_mass_when_the_model_has_it(full_model):
    stub = _AGNStub(full_model)
    coupled = MockPrior(stub, "coupled")
    assert coupled.ir_names == ("qpah", "umin", "gamma", "f_agn")
    th = coupled.sample(1500, torch.Generator().manual_seed(5))["theta"].numpy()
    sep = MockPrior(stub, "separable").sample(1500, torch.Generator().manual_seed(6))["theta"].numpy()
    j, m = stub.param_names.index("f_agn"), stub.param_names.index("log_mass")
    assert th[:, j].min() >= 1e-4 and th[:, j].max() <= 1.0
    assert spearmanr(th[:, m], th[:, j]).statistic > 0.5
    assert abs(spearmanr(sep[:, m], sep[:, j]).statistic) < 0.1


@pytest.mark.slow
def test_mocks_with_the_agn_model():
    import sedinfer as si
    from sedinfer.spectra import simulate_mocks

    model = si.SPSModel(nebular=True, dust_emission=True, agn=True)
    assert MockPrior(model).ir_names == ("qpah", "umin", "gamma", "f_agn")
    cat = simulate_mocks(30, model, "coupled", seed=0)
    j = model.param_names.index("f_agn")
    assert cat.spectra.ok.all() and (cat.theta[:, j] >= 1e-5).all() and (cat.theta[:, j] <= 3).all()
    sep = simulate_mocks(30, model, "separable", seed=0)
    np.testing.assert_array_equal(np.sort(sep.theta[:, j]), np.sort(cat.theta[:, j]))


def test_bad_prior_arguments(full_model, default_model):
    with pytest.raises(ParameterError, match="unknown"):
        MockPrior(full_model, "independent")
    with pytest.raises(ParameterError, match="dust emission"):
        MockPrior(default_model)
    with pytest.raises(ParameterError, match="not optical parameters"):
        MockPrior(full_model, optical={"qpah": LogUniform(0.5, 4)})


def test_truncated_normal_and_permutation_kernels():
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = truncated_normal(u, torch.zeros(20000, dtype=torch.float64), 1.0, -1.0, 2.0)
    assert x.min() >= -1 and x.max() <= 2
    assert kstest(x.numpy(), truncnorm(-1.0, 2.0).cdf).pvalue > 1e-3
    loc = torch.linspace(-3, 3, 20000, dtype=torch.float64)      # a location per element
    y = truncated_normal(torch.full_like(loc, 0.5), loc, 0.5, -1.0, 1.0)
    np.testing.assert_allclose(y.numpy(), truncnorm((-1 - loc) / 0.5, (1 - loc) / 0.5, loc, 0.5).ppf(0.5),
                               atol=1e-6)
    t = torch.arange(12.0).reshape(6, 2)
    p = permute_columns(t, [1], torch.Generator().manual_seed(0))
    assert torch.equal(p[:, 0], t[:, 0]) and torch.equal(p[:, 1].sort().values, t[:, 1])
