"""Population inference (sedinfer.population): flow, losses, forward model, fit, save/load, bad input."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import sedinfer as si
from sedinfer.errors import CatalogError, ParameterError, SedinferError
from sedinfer.population import (
    BlurSchedule,
    BoxFlow,
    FitConfig,
    PopulationWarning,
    SoftMagnitudeLimit,
    fit,
    load,
    sinkhorn_loss,
    sliced_wasserstein_loss,
)
from sedinfer.population.losses import (
    marginal_directions,
    population_loss,
    projected_wasserstein_loss,
    wasserstein_1d,
    whitening_matrix,
)
from sedinfer.posterior.flow import FlowConfig

SMALL_FLOW = FlowConfig(transforms=4, hidden=(32, 32), bins=8)
BOX = ([-3.0, -3.0], [3.0, 3.0])
MIX = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


def toy(theta: torch.Tensor) -> torch.Tensor:
    """A differentiable toy simulator: θ (N, 2) -> noiseless AB magnitudes (N, 3)."""
    return 20.0 + theta @ MIX.T.to(theta.dtype)


def toy_catalog(n: int, mean, sd: float, err: float = 0.05, seed: int = 0):
    """Noisy toy magnitudes (N, 3), their errors, and the true θ (N, 2)."""
    g = np.random.default_rng(seed)
    theta = g.normal(mean, sd, size=(n, 2))
    flux = 10 ** (-0.4 * toy(torch.as_tensor(theta)).numpy())
    noisy = flux + flux * err / 1.0857 * g.standard_normal(flux.shape)
    return -2.5 * np.log10(noisy), np.full_like(flux, err), theta


def toy_config(**kw) -> FitConfig:
    base = dict(epochs=30, batch_size=250, n_simulated=250, learning_rate=3e-3, flow=SMALL_FLOW)
    return FitConfig(**{**base, **kw})


def toy_fit(mags, errs, **kw):
    cfg = toy_config(**kw.pop("config", {}))
    return fit(mags, errs, toy, filters=["a", "b", "c"], n_flows=kw.pop("n_flows", 1), config=cfg,
               bounds=kw.pop("bounds", BOX), progress=False, device="cpu", **kw)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def toy_population():
    mags, errs, _ = toy_catalog(1000, [1.0, -0.5], 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PopulationWarning)     # a good fit must not warn
        torch.set_num_threads(1)
        return toy_fit(mags, errs, n_flows=2, config=dict(epochs=30, steps_per_epoch=6))


# ---------------------------------------------------------------------------------- flow
def test_flow_starts_uniform_and_stays_in_box():
    low, high = [0.0, -2.0, 7.5], [1.55, 3.0, 13.0]
    flow = BoxFlow(low, high)
    theta = flow.sample(20000, torch.Generator().manual_seed(0))
    assert theta.requires_grad
    theta = theta.detach()
    for j in range(3):
        unit = ((theta[:, j] - low[j]) / (high[j] - low[j])).numpy()
        assert stats.kstest(unit, "uniform").pvalue > 0.01
    assert bool(((theta > torch.tensor(low)) & (theta < torch.tensor(high))).all())
    expected = -np.log(np.prod(np.subtract(high, low)))
    np.testing.assert_allclose(flow.log_prob(theta[:100]).detach().numpy(), expected, atol=1e-4)
    assert flow.log_prob(torch.tensor([[2.0, 0.0, 10.0]])).item() == -np.inf


def test_flow_samples_stay_in_box_after_perturbation():
    # seed 5 of the global generator (the flow's initial weights) plus 2x-noise weights gives splines
    # whose float32 inverse returns NaN for 4 of these 5000 draws; BoxFlow redoes such a batch in float64
    torch.manual_seed(5)
    flow = BoxFlow([0.0, 0.0], [1.0, 2.0], SMALL_FLOW)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 2.0)
    eps = torch.randn(5000, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert int((~torch.isfinite(flow.flow().transform.inv(eps))).any(-1).sum()) > 0   # the float32 path
    theta = flow.sample(5000, torch.Generator().manual_seed(2))
    assert bool(((theta > 0) & (theta < torch.tensor([1.0, 2.0]))).all())
    theta2, log_q = flow.sample_and_log_prob(5000, torch.Generator().manual_seed(2))
    assert torch.equal(theta, theta2) and bool(torch.isfinite(log_q).all())
    (theta2.sum() + log_q.sum()).backward()                         # gradients reach the float32 weights
    grads = [p.grad for p in flow.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)

    flow.forward = lambda eps, with_log_prob=True: (torch.full_like(eps, torch.nan), None)
    with pytest.raises(SedinferError, match="NaN or inf for 5000 of 5000 draws even in float64"):
        flow.sample(5000)


# -------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("loss", ["sinkhorn", "sliced"])
def test_losses_zero_for_identical_sets_and_grow_with_shift(loss):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g)

    def value(shift):
        y = x + shift
        if loss == "sinkhorn":
            return sinkhorn_loss(x, y, blur=0.05).item()
        return sliced_wasserstein_loss(x, y, 128, generator=torch.Generator().manual_seed(3)).item()

    values = [value(s) for s in (0.0, 0.25, 0.5, 1.0)]
    assert abs(values[0]) < 1e-4
    assert values[1] < values[2] < values[3]
    exact = 0.5 * 5 * 1.0**2                   # |Δ|²/2 for a shift of 1 in all 5 dimensions
    expected = exact                  # sliced: D·E[(v·Δ)²]/2 = |Δ|²/2, as Sinkhorn
    assert values[3] == pytest.approx(expected, rel=0.1)


def uniform(n: int) -> torch.Tensor:
    return torch.full((n,), 1.0 / n)


def test_wasserstein_1d_exact_and_weighted():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(1, 300, generator=g), torch.randn(1, 300, generator=g) + 0.3
    sorted_pairs = ((x.sort().values - y.sort().values) ** 2).mean().item()    # W2² of equal-size sets
    assert wasserstein_1d(x, y, uniform(300), uniform(300)).item() == pytest.approx(sorted_pairs, rel=1e-5)
    y2 = y[:, :200]
    same = wasserstein_1d(x, y2, uniform(300), uniform(200)).item()
    tripled = wasserstein_1d(x, y2.repeat(1, 3), uniform(300), uniform(600)).item()
    assert tripled == pytest.approx(same, rel=1e-5)
    dropped = torch.cat([uniform(100), torch.zeros(100)])                      # zero weight = point absent
    assert wasserstein_1d(x, y2, uniform(300), dropped).item() == pytest.approx(
        wasserstein_1d(x, y2[:, :100], uniform(300), uniform(100)).item(), rel=1e-5)


def test_whitening_gives_unit_covariance_and_refuses_singular():
    g = torch.Generator().manual_seed(5)
    y = torch.randn(4000, 3, generator=g) @ torch.tensor([[2.0, 0.0, 0.0], [1.9, 0.1, 0.0], [0.5, 0.3, 0.4]])
    z = y @ whitening_matrix(y)
    np.testing.assert_allclose(torch.cov(z.T).numpy(), np.eye(3), atol=1e-4)
    with pytest.raises(ParameterError, match="singular covariance"):
        whitening_matrix(torch.cat([y[:, :1], y[:, :1]], 1))


def test_marginal_directions_project_onto_bands_and_colours():
    g = torch.Generator().manual_seed(8)
    mags = torch.randn(2000, 4, generator=g) @ torch.randn(4, 4, generator=g) + 18.0
    metric = whitening_matrix(mags)
    dirs = marginal_directions(4, metric)
    assert dirs.shape == (7, 4)
    np.testing.assert_allclose(dirs.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    proj = (mags @ metric) @ dirs.T                           # what the loss sees along each direction
    raw = torch.cat([mags, mags[:, :-1] - mags[:, 1:]], 1)    # bands, then adjacent colours
    for j in range(7):
        scale = proj[:, j].std() / raw[:, j].std()
        np.testing.assert_allclose((proj[:, j] - proj[:, j].mean()).numpy(),
                                   (scale * (raw[:, j] - raw[:, j].mean())).numpy(), atol=1e-3)
    np.testing.assert_allclose(marginal_directions(2).numpy(), [[1, 0], [0, 1], [2**-0.5, -(2**-0.5)]])


def test_marginal_term_is_exact_for_a_one_band_shift_and_mixes_with_the_distance():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(9))
    y = x.clone()
    y[:, 0] += 0.4           # band 0 shifted: W2² = Δ² along e0, Δ²/2 along the colour (e0 - e1)/√2
    expected = 0.5 * 3 * (0.4**2 + 0.4**2 / 2) / 5            # B/2 · mean over the 5 directions
    marginal = projected_wasserstein_loss(x, y, marginal_directions(3)).item()
    assert marginal == pytest.approx(expected, rel=1e-5)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    sliced = population_loss("sliced", x, y, blur=0.05, n_projections=64, generator=gen()).item()
    mixed = population_loss("sliced", x, y, blur=0.05, n_projections=64, generator=gen(),
                            marginal_weight=0.25).item()
    assert mixed == pytest.approx(0.75 * sliced + 0.25 * expected, rel=1e-5)
    with pytest.raises(ParameterError, match="marginal_weight"):
        population_loss("sliced", x, y, blur=0.05, marginal_weight=1.5)
    with pytest.raises(ParameterError, match="marginal_weight"):
        FitConfig(marginal_weight=-0.1)
    with pytest.raises(ParameterError, match="directions must be"):
        projected_wasserstein_loss(x, y, torch.ones(2, 4))


def test_blur_schedule_follows_popsed():
    b = BlurSchedule()
    assert [b(t, 800) for t in (0, 59, 60, 299, 300, 359, 360, 799)] == [0.3, 0.3, 0.25, 0.1, 0.05, 0.05,
                                                                           0.002, 0.002]
    assert BlurSchedule(final=None)(799, 800) == 0.05


# ------------------------------------------------------------------------------ end to end
def test_toy_fit_recovers_shifted_gaussian(toy_population):
    theta = toy_population.sample(6000, seed=1)
    assert theta.shape == (6000, 2)
    np.testing.assert_allclose(theta.mean(0).numpy(), [1.0, -0.5], atol=0.08)
    np.testing.assert_allclose(theta.std(0).numpy(), [0.3, 0.3], atol=0.1)
    for h in toy_population.history:
        assert h["monitor_final"] < 0.1 * h["monitor_initial"]
    assert len(toy_population.members) == 2 and toy_population.config["loss"] == "sliced"


def test_sinkhorn_loss_fit_recovers_mean():
    mags, errs, _ = toy_catalog(600, [-1.0, 0.8], 0.3, seed=3)
    pop = toy_fit(mags, errs, config=dict(loss="sinkhorn", epochs=30, steps_per_epoch=2))
    np.testing.assert_allclose(pop.sample(4000, seed=0).mean(0).numpy(), [-1.0, 0.8], atol=0.1)


def test_whitened_fit_recovers_mean_and_spread():
    mags, errs, _ = toy_catalog(600, [-1.0, 0.8], 0.3, seed=3)
    pop = toy_fit(mags, errs, config=dict(loss="sliced", epochs=30, steps_per_epoch=3))
    theta = pop.sample(4000, seed=0)
    np.testing.assert_allclose(theta.mean(0).numpy(), [-1.0, 0.8], atol=0.1)
    np.testing.assert_allclose(theta.std(0).numpy(), [0.3, 0.3], atol=0.1)


def test_bootstrap_rows_are_seeded_resamples():
    from sedinfer.population.fit import bootstrap_rows

    a, b = bootstrap_rows(1000, 0), bootstrap_rows(1000, 1)
    assert torch.equal(a, bootstrap_rows(1000, 0)) and not torch.equal(a, b)
    assert a.min() >= 0 and a.max() < 1000
    assert 0.55 < len(torch.unique(a)) / 1000 < 0.70          # 1 - 1/e of the rows, with repeats


def test_config_is_small_validated_and_refuses_removed_options():
    assert len(dataclasses.fields(FitConfig)) <= 12
    c = FitConfig(epochs=3, loss="sinkhorn")
    assert FitConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    for bad in (dict(loss="l1"), dict(marginal_weight=1.5), dict(entropy_weight=-1.0), dict(epochs=0),
                dict(learning_rate=0.0), dict(seed=-1)):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            FitConfig(**bad)
    with pytest.raises(ParameterError, match=r"\['entropy_spread', 'reference_family'\].*older version"):
        FitConfig.from_dict({**c.to_dict(), "entropy_spread": 3.0, "reference_family": "partition"})


def test_population_of_an_older_version_loads(toy_population, tmp_path):
    """A population saved by sedinfer 0.1 (format 1, with the since removed options in its config)
    still loads: the flows are the same, and its settings are kept as a plain dict."""
    path = toy_population.save(tmp_path / "new.pt")
    raw = torch.load(path, weights_only=True)
    meta = json.loads(raw["metadata_json"])
    meta["config"].update(entropy_spread=3.0, reference_family="partition", reference_scatter=1.0,
                          whiten=True)
    raw.update(format_version=1, metadata_json=json.dumps(meta))
    torch.save(raw, tmp_path / "old.pt")
    old = load(tmp_path / "old.pt")
    torch.testing.assert_close(old.sample(300, seed=4), toy_population.sample(300, seed=4))
    assert old.config["reference_family"] == "partition"
    raw.update(format_version=99)
    torch.save(raw, tmp_path / "future.pt")
    with pytest.raises(SedinferError, match="format version 99"):
        load(tmp_path / "future.pt")


def test_save_load_roundtrip(toy_population, tmp_path):
    path = toy_population.save(tmp_path / "pop.pt")
    again = load(path)
    assert again.param_names == toy_population.param_names
    assert again.metadata == toy_population.metadata
    assert FitConfig.from_dict(again.config) == toy_config(epochs=30, steps_per_epoch=6)
    torch.testing.assert_close(again.sample(500, seed=7), toy_population.sample(500, seed=7))
    theta = toy_population.sample(10, seed=2)
    torch.testing.assert_close(again.log_prob(theta), toy_population.log_prob(theta))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "sedinfer.population"


def test_checkpoint_resume_and_refusal(tmp_path):
    mags, errs, _ = toy_catalog(300, [0.5, 0.5], 0.3, seed=6)
    cfg = dict(loss="sliced", epochs=3, steps_per_epoch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PopulationWarning)
        first = toy_fit(mags, errs, config=cfg, checkpoint_dir=tmp_path)
        assert (tmp_path / "member000.pt").exists()
        again = toy_fit(mags, errs, config=cfg, checkpoint_dir=tmp_path)   # finished: loaded, not retrained
        torch.testing.assert_close(first.sample(200, seed=1), again.sample(200, seed=1))
        assert again.history == first.history
        with pytest.raises(ParameterError, match="checkpoint"):
            toy_fit(mags, errs, config={**cfg, "learning_rate": 1e-3}, checkpoint_dir=tmp_path)


def test_checkpoint_of_another_ensemble_member_is_refused(tmp_path):
    # a member's bootstrap rows depend on its seed and on whether there are several flows: the
    # members of a 3-flow run are those of a 2-flow run with the same seed (and resume), but a
    # single flow trains on the whole catalog and must not resume member 0 of an ensemble
    mags, errs, _ = toy_catalog(300, [0.5, 0.5], 0.3, seed=6)
    cfg = dict(loss="sliced", epochs=2, steps_per_epoch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PopulationWarning)
        first = toy_fit(mags, errs, n_flows=3, config=cfg, checkpoint_dir=tmp_path)
        two = toy_fit(mags, errs, n_flows=2, config=cfg, checkpoint_dir=tmp_path)   # members 0, 1 resume
        assert two.history == first.history[:2]
        with pytest.raises(ParameterError, match="member000"):
            toy_fit(mags, errs, n_flows=1, config=cfg, checkpoint_dir=tmp_path)


def test_members_train_on_a_dask_cluster_like_in_process(tmp_path):
    mags, errs, _ = toy_catalog(300, [0.5, 0.5], 0.3, seed=6)
    cfg = dict(loss="sliced", epochs=2, steps_per_epoch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PopulationWarning)
        here = toy_fit(mags, errs, n_flows=2, config=cfg)
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
            there = toy_fit(mags, errs, n_flows=2, config=cfg, scheduler=cl.scheduler_address,
                            checkpoint_dir=tmp_path)
    assert (tmp_path / "member001.pt").exists()
    for a, b in zip(here.members, there.members, strict=True):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb
            torch.testing.assert_close(va, vb)
    finals = [h["monitor_final"] for h in here.history]
    assert [h["monitor_final"] for h in there.history] == pytest.approx(finals)


class Interrupt(Exception):
    pass


def test_interrupted_fit_resumes_to_the_same_result(tmp_path):
    mags, errs, _ = toy_catalog(300, [0.5, 0.5], 0.3, seed=6)
    cfg = dict(loss="sliced", epochs=4, steps_per_epoch=2)
    calls = {"n": 0}

    def flaky(theta):
        calls["n"] += 1
        if calls["n"] == 7:            # monitor + 2 epochs of 2 steps + 1 step: dies mid-epoch 3
            raise Interrupt
        return toy(theta)

    reference = toy_fit(mags, errs, config=cfg)
    with pytest.raises(Interrupt):
        fit(mags, errs, flaky, ["a", "b", "c"], n_flows=1, bounds=BOX, progress=False, device="cpu",
            config=toy_config(**cfg), checkpoint_dir=tmp_path)
    saved = torch.load(tmp_path / "member000.pt", weights_only=True)
    assert json.loads(saved["state_json"])["step"] == 4
    resumed = toy_fit(mags, errs, config=cfg, checkpoint_dir=tmp_path)
    torch.testing.assert_close(resumed.sample(300, seed=3), reference.sample(300, seed=3))


def test_real_sps_model_fit_runs(default_model, sdss):
    prior = si.priors.default_prior(default_model.param_names).replace(
        redshift=si.priors.Uniform(0.02, 0.3), log_mass=si.priors.Uniform(9.5, 11.5))
    theta = prior.sample((200,), generator=torch.Generator().manual_seed(0))
    flux = default_model.photometry(theta, sdss, units="maggies")
    noise = si.noise.default_noise_model(sdss.names)
    noisy, sigma = noise.add_noise(flux, torch.Generator().manual_seed(1))
    noisy, sigma = noisy.numpy().astype(np.float64), sigma.numpy().astype(np.float64)
    keep = (noisy > 0).all(1)
    mags, errs = -2.5 * np.log10(noisy[keep]), 1.0857 * sigma[keep] / noisy[keep]
    cfg = FitConfig(epochs=2, batch_size=100, n_simulated=100, flow=SMALL_FLOW,
                    learning_rate=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PopulationWarning)   # 2 epochs cannot lower the loss much
        pop = fit(mags, errs, default_model, sdss, n_flows=1, config=cfg, progress=False, device="cpu")
    samples = pop.sample(1000, seed=0)
    low, high = default_model.prior.bounds()
    assert samples.shape == (1000, default_model.ndim)
    assert pop.param_names == default_model.param_names
    assert bool(((samples >= low) & (samples <= high)).all())
    assert np.isfinite(pop.history[0]["epochs"][-1]["loss"])


@pytest.mark.slow
def test_selection_weights_reduce_flux_limit_bias():
    mags, errs, _ = toy_catalog(2000, [0.0, 0.0], 0.5, seed=2)
    width = 0.3
    keep = np.random.default_rng(5).random(len(mags)) < 1 / (1 + np.exp(-(20.0 - mags[:, 0]) / width))
    mags, errs = mags[keep], errs[keep]
    cfg = dict(loss="sliced", epochs=40, steps_per_epoch=4, n_simulated=500)
    box = ([-2.0, -2.0], [1.5, 2.0])
    plain = toy_fit(mags, errs, bounds=box, config=cfg).sample(5000, seed=0)[:, 0].mean().item()
    selection = SoftMagnitudeLimit("a", 20.0, width)
    modelled = toy_fit(mags, errs, bounds=box, config=cfg, selection=selection).sample(5000, seed=0)
    modelled = modelled[:, 0].mean().item()
    assert plain < -0.15                          # the flux limit biases θ0 (brighter) when ignored
    assert abs(modelled) < 0.5 * abs(plain)       # true mean is 0


def test_selection_function_checks():
    mags, errs, _ = toy_catalog(100, [0.0, 0.0], 0.5)
    with pytest.raises(ParameterError, match="not one of the bands"):
        toy_fit(mags, errs, selection=SoftMagnitudeLimit("r", 20.0))
    with pytest.raises(ParameterError, match=r"weights in \[0, 1\]"):
        toy_fit(mags, errs, selection=lambda m: 2.0 * torch.ones(m.shape[0]),
                config=dict(epochs=1, batch_size=50))


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_magnitudes_name_the_band(bad):
    mags, errs, _ = toy_catalog(100, [0.0, 0.0], 0.5)
    mags[7, 1] = bad
    with pytest.raises(CatalogError, match=r"band 'b' \(column 1\).*row 7"):
        toy_fit(mags, errs)
    mags[7, 1] = 20.0
    errs[3, 2] = np.nan
    with pytest.raises(CatalogError, match="band 'c'.*magnitude errors"):
        toy_fit(mags, errs)


def test_catalog_smaller_than_batch_warns_and_uses_all():
    mags, errs, _ = toy_catalog(60, [0.0, 0.0], 0.5)
    with pytest.warns(PopulationWarning, match="fewer than batch_size=250"):
        pop = toy_fit(mags, errs, config=dict(loss="sliced", epochs=2))
    assert pop.metadata["batch_size"] == 60 and pop.metadata["steps_per_epoch"] == 1


def test_filter_count_mismatch_names_both(sdss, default_model):
    mags, errs, _ = toy_catalog(50, [0.0, 0.0], 0.5)
    with pytest.raises(CatalogError, match=r"3 magnitude columns but the filters have 5 bands"):
        fit(mags, errs, default_model, sdss, n_flows=1, progress=False)
    with pytest.raises(CatalogError, match=r"3 magnitude columns but the filters have 2 bands \['a', 'b'\]"):
        fit(mags, errs, toy, ["a", "b"], bounds=BOX, progress=False)


def test_box_excluding_the_data_warns():
    mags, errs, _ = toy_catalog(400, [1.0, -0.5], 0.3, seed=4)
    with pytest.warns(PopulationWarning, match=r"did not reach the catalog: final monitor loss above 2 x the "
                      r"data-vs-data floor.*prior box may exclude part of the catalog"):
        toy_fit(mags, errs, bounds=([-3.0, -3.0], [-2.0, -2.0]), config=dict(loss="sliced", epochs=20,
                                                                              steps_per_epoch=2))


def test_noise_options():
    mags, errs, _ = toy_catalog(200, [0.0, 0.0], 0.5)
    quick = dict(loss="sliced", epochs=1, batch_size=100)
    pop = toy_fit(mags, errs, noise=None, config=quick)
    assert pop.metadata["noise_model"] is None and len(pop.metadata["softening_maggies"]) == 3
    with pytest.raises(ParameterError, match="no default depth"):
        toy_fit(mags, errs, noise="depth")
    with pytest.raises(ParameterError, match="noise must be"):
        toy_fit(mags, errs, noise="loud")


def test_callable_needs_a_box():
    mags, errs, _ = toy_catalog(50, [0.0, 0.0], 0.5)
    with pytest.raises(ParameterError, match="bounds"):
        fit(mags, errs, toy, ["a", "b", "c"], progress=False)


def test_sample_and_log_prob_matches_log_prob_and_kl_starts_at_zero():
    flow = BoxFlow([0.0, 7.5], [0.8, 13.0], SMALL_FLOW)
    g = torch.Generator().manual_seed(0)
    theta, log_q = flow.sample_and_log_prob(2000, g)
    assert torch.allclose(log_q, -torch.full_like(log_q, flow.log_volume()), atol=1e-4)   # uniform at start
    with torch.no_grad():                        # perturb the flow: densities still agree with log_prob
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    theta, log_q = flow.sample_and_log_prob(500, g)
    assert torch.allclose(log_q, flow.log_prob(theta), atol=2e-3)
    assert float(log_q.detach().mean()) + flow.log_volume() > 0     # KL(q || uniform) > 0 once it moved


@pytest.mark.slow
def test_a_parameter_the_data_ignore_ends_uniform():
    """The entropy term is KL(q ‖ uniform box): a third parameter the photometry ignores ends uniform."""
    def blind(theta):
        return toy(theta[:, :2])

    mags, errs, _ = toy_catalog(500, [0.5, -0.5], 0.3, seed=2)
    box = ([-3.0, -3.0, 0.0], [3.0, 3.0, 1.0])
    cfg = toy_config(loss="sliced", epochs=40, steps_per_epoch=5, entropy_weight=1.0)
    pop = fit(mags, errs, blind, filters=["a", "b", "c"], n_flows=2, config=cfg, bounds=box, progress=False,
              device="cpu")
    for k, flow in enumerate(pop.members):
        third = flow.sample(4000, torch.Generator().manual_seed(k))[:, 2].detach().numpy()
        assert stats.kstest(third, "uniform").statistic < 0.06, k


# ------------------------------------------------------------------------------ input support
def test_unexplained_fraction_is_zero_for_a_match_and_the_missing_share_otherwise():
    from sedinfer.population.support import unexplained_fraction

    rng = np.random.default_rng(0)
    catalog = rng.normal(size=(4000, 5))
    assert unexplained_fraction(catalog, rng.normal(size=(4000, 5))) < 0.01
    half = np.concatenate([rng.normal(size=(2000, 5)), rng.normal(size=(2000, 5)) + [4, 0, 0, 0, 0]])
    syn = rng.normal(size=(4000, 5))                      # produces only the first half
    assert 0.4 < unexplained_fraction(half, syn) < 0.55


def test_catalog_beyond_the_selection_limit_warns_with_the_fraction_and_the_bound():
    mags, errs, _ = toy_catalog(400, [0.0, 0.0], 0.5, seed=1)
    limit = float(np.median(mags[:, 0]))                  # half the catalog is fainter than the "limit"
    with pytest.warns(PopulationWarning, match=r"3\d\.\d% of the catalog \(\d+ of 400 galaxies\) is fainter "
                                               rf"than the selection limit a < {limit:g}"):
        toy_fit(mags, errs, selection=SoftMagnitudeLimit("a", limit, 0.05), config=dict(epochs=1))
    # (the 1-epoch fit also warns that it did not reach the catalog)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PopulationWarning)
        from sedinfer.population.support import check_selection_limit

        assert check_selection_limit(mags, ["a", "b", "c"], SoftMagnitudeLimit("a", mags[:, 0].max())) == 0.0


def test_cli_warnings_are_one_line_without_source(capsys):
    from sedinfer.cli_population import _print_warning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _print_warning
        warnings.warn("something to look at", PopulationWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "warning: something to look at\n"
