"""Batched HMC in the whitened prior space (sedinfer.posterior.hmc)."""

import numpy as np
import pytest
import torch

from sedinfer.errors import ParameterError
from sedinfer.posterior.hmc import run_hmc_batch, split_rhat, theta_to_u, u_to_theta
from sedinfer.posterior.mcmc_batch import SPSBatchLogPosterior
from sedinfer.priors import LogUniform, Prior, TruncatedNormal, Uniform

PRIOR = Prior({"a": Uniform(-1.0, 2.0), "b": TruncatedNormal(0.0, 1.0, -0.5, 3.0)})
# per galaxy: likelihood mean (a, b), standard deviations, correlation; the last one is flat
MEANS = np.array([[0.5, 1.0], [-0.9, -0.4], [0.0, 0.0]])
SDS = np.array([[0.3, 0.3], [0.2, 0.3], [1.0, 1.0]])
RHO = np.array([0.8, -0.5, 0.0])
FLAT = np.array([False, False, True])


class Gaussians:
    """Correlated Gaussian likelihoods (one per galaxy) under the box prior PRIOR."""

    prior, joint = PRIOR, None

    def __init__(self, rows=(0, 1, 2)):
        self.rows = list(rows)

    def select(self, rows):
        return Gaussians([self.rows[r] for r in rows])

    def precision(self):
        out = []
        for g in self.rows:
            cov = np.diag(SDS[g]) @ np.array([[1, RHO[g]], [RHO[g], 1]]) @ np.diag(SDS[g])
            out.append(np.zeros((2, 2)) if FLAT[g] else np.linalg.inv(cov))
        return torch.as_tensor(np.array(out))

    def torch_log_likelihood(self, x):
        r = x - torch.as_tensor(MEANS[self.rows])[:, None, :]
        return -0.5 * torch.einsum("gni,gij,gnj->gn", r, self.precision(), r)


def reference_moments(g: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and standard deviations (2,) of galaxy g by quadrature on a grid."""
    a = np.linspace(-1.0, 2.0, n)
    b = np.linspace(-0.5, 3.0, n)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    x = torch.as_tensor(np.stack([aa, bb], -1).reshape(1, -1, 2))
    lp = PRIOR.log_prob(x[0]).numpy() + Gaussians([g]).torch_log_likelihood(x)[0].numpy()
    w = np.exp(lp - lp.max())
    w /= w.sum()
    pts = x[0].numpy()
    mean = (w[:, None] * pts).sum(0)
    return mean, np.sqrt((w[:, None] * (pts - mean) ** 2).sum(0))


@pytest.fixture(scope="module")
def gaussian_run():
    gen = torch.Generator().manual_seed(1)
    theta0 = PRIOR.sample((3, 8), generator=gen, dtype=torch.float64).numpy()
    done = []
    res = run_hmc_batch(Gaussians(), theta0, n_leapfrog=16, warmup=300, block=200, max_iterations=4000,
                        seed=3, on_done=lambda g, r: done.append(g))
    return res, done


def test_hmc_matches_the_exact_posterior_moments(gaussian_run):
    res, done = gaussian_run
    assert sorted(done) == [0, 1, 2]
    for g, r in enumerate(res):
        assert r["converged"], (g, r["autocorr_steps"], r["rhat"])
        assert r["rhat"].max() < 1.01
        assert r["steps"] - r["burn"] > 50 * r["autocorr_steps"].max()
        assert 0.6 < r["acceptance"] < 0.95
        assert r["divergences"] == 0
        s = r["samples"]
        assert s.shape[1] == 2 and len(r["log_prob"]) == len(s)
        assert ((s >= PRIOR.low) & (s <= PRIOR.high)).all()
        mean, sd = reference_moments(g)
        assert np.abs(s.mean(0) - mean).max() < 0.15 * sd.min(), (g, s.mean(0), mean)
        assert np.allclose(s.std(0), sd, rtol=0.12), (g, s.std(0), sd)
        if g == 0:
            assert np.corrcoef(s.T)[0, 1] == pytest.approx(0.8, abs=0.05)


def test_log_prob_is_the_theta_space_log_posterior(gaussian_run):
    res, _ = gaussian_run
    r = res[1]
    x = torch.as_tensor(r["samples"][None])
    want = PRIOR.log_prob(x[0]) + Gaussians([1]).torch_log_likelihood(x)[0]
    assert np.allclose(r["log_prob"], want.numpy())


def test_u_map_gives_back_the_prior():
    from scipy.stats import ks_2samp

    prior = Prior({"a": Uniform(-1.0, 2.0), "b": TruncatedNormal(0.0, 1.0, 1.0, 3.0),
                   "c": LogUniform(1e-5, 3.0), "d": TruncatedNormal(0.5, 0.2, -1.0, 0.6)})
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(40_000, 4, generator=gen, dtype=torch.float64)
    theta = u_to_theta(prior, u)
    low, high = prior.bounds(torch.float64)
    assert ((theta >= low) & (theta <= high)).all()
    ref = prior.sample((40_000,), generator=gen, dtype=torch.float64)
    for i in range(4):
        assert ks_2samp(theta[:, i].numpy(), ref[:, i].numpy()).pvalue > 1e-3
    # change of variables: ln p(θ(u)) + ln |dθ/du| = ln N(u; 0, 1), parameter by parameter
    grid = torch.linspace(-6.0, 6.0, 97, dtype=torch.float64)[:, None].repeat(1, 4).requires_grad_(True)
    th = u_to_theta(prior, grid)
    (jac,) = torch.autograd.grad(th.sum(), grid)                # diagonal map: column i is dθ_i/du_i
    cols = torch.stack([d.log_prob(th[:, i]) for i, d in enumerate(prior.distributions.values())], -1)
    normal = -0.5 * grid**2 - 0.5 * np.log(2 * np.pi)
    assert torch.allclose((cols + jac.log()).detach(), normal.detach(), atol=1e-6)
    # θ -> u -> θ, and the extreme tails stay finite
    assert torch.allclose(u_to_theta(prior, theta_to_u(prior, theta[:100])), theta[:100], atol=1e-9)
    far = torch.tensor([[-40.0, 40.0, -40.0, 40.0]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(u_to_theta(prior, far).sum(), far)
    assert torch.isfinite(u_to_theta(prior, far)).all() and torch.isfinite(g).all()


def test_split_rhat_flags_disagreeing_chains():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 4, 2))
    assert split_rhat(x).max() < 1.01
    x[:, 0] += 1.0
    assert split_rhat(x).max() > 1.05


def test_bad_inputs_are_refused():
    with pytest.raises(ParameterError, match="shape"):
        run_hmc_batch(Gaussians(), np.zeros((3, 2)))

    class Joint(Gaussians):
        joint = object()

    with pytest.raises(ParameterError, match="joint=None"):
        run_hmc_batch(Joint(), np.zeros((3, 4, 2)))


def _sps_posterior():
    import sedinfer as si
    from sedinfer.filters import Filters

    model = si.SPSModel().double()
    filters = Filters(["sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"])
    flux = np.array([[3.0, 10.0, 20.0, 28.0, 35.0], [1.0, 4.0, np.nan, 11.0, 14.0]])
    err = 0.05 * np.nan_to_num(flux, nan=1.0) + 0.2
    return model, SPSBatchLogPosterior(model, filters, flux, err, {"redshift": np.array([0.05, 0.2])})


def test_torch_log_posterior_equals_the_numpy_one():
    model, batch = _sps_posterior()
    x = batch.start(6, n_init=32, seed=0)
    x[0, 0, 0] = model.prior.high[1] + 1.0                       # log_mass above its box: -inf
    want = batch(x)
    xt = torch.as_tensor(x).requires_grad_(True)
    got = batch.torch_log_prob(xt)
    assert np.allclose(got.detach().numpy(), want, rtol=1e-12, atol=1e-9)
    assert got[0, 0] == -np.inf
    (grad,) = torch.autograd.grad(got[torch.isfinite(got)].sum(), xt)
    assert torch.isfinite(grad).all() and grad[0, 0].abs().max() == 0
    # directional finite difference of one finite point
    v = torch.randn(x.shape[-1], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = 1e-6
    xp, xm = x.copy(), x.copy()
    xp[1, 2] += h * v.numpy()
    xm[1, 2] -= h * v.numpy()
    fd = (batch(xp)[1, 2] - batch(xm)[1, 2]) / (2 * h)
    assert float(grad[1, 2] @ v) == pytest.approx(fd, rel=1e-5, abs=1e-6)
    with torch.no_grad():
        assert np.allclose(batch.select([1]).torch_log_prob(xt[1:]).numpy(), want[1:], rtol=1e-12)

