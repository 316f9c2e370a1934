"""The SED-model baseline: q(θ | latents, norm, z), its training, and draws pushed to W1–W4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_AUTOENCODER
from sedinfer.posterior.flow import FlowConfig
from sedinfer.posterior.train import TrainConfig
from sedinfer.spectra import (
    AutoencoderConfig,
    MockPrior,
    SpectrumAutoencoder,
    sdss_instrument,
    simulate_mocks,
)
from sedinfer.spectra.io import write_mock_table
from sedinfer.spectra.predictor import split_70_10_20
from sedinfer.spectra.sed_baseline import (
    SEDBaseline,
    SEDBaselineConfig,
    bounds_ok,
    encode_mock,
    prior_box,
    train_sed_baseline,
)
from sedinfer.spectra.sed_baseline_wise import model_wise_vega, phat_draws, predict_wise_sed

TINY_FLOW = FlowConfig(transforms=2, hidden=(16, 16), bins=4)
FAST = dict(batch_size=8, learning_rate=3e-3, patience=100, seed=0)


@pytest.fixture(scope="module")
def mock(full_model, tmp_path_factory):
    """32 separable mocks, written to a table and encoded by an untrained tiny autoencoder."""
    cat = simulate_mocks(32, full_model, "separable", seed=5)
    path = write_mock_table(cat, tmp_path_factory.mktemp("sed") / "mock.parquet", sdss_instrument())
    torch.manual_seed(0)
    ae = SpectrumAutoencoder(AutoencoderConfig(**TINY_AUTOENCODER))
    return cat, encode_mock(path, ae)


@pytest.fixture(scope="module")
def box(full_model):
    return prior_box(MockPrior(full_model, "separable"))


@pytest.fixture(scope="module")
def trained(mock, box):
    cfg = SEDBaselineConfig(n_latent=mock[1].latents.shape[1], flow=TINY_FLOW)
    return train_sed_baseline(mock[1], box, cfg, TrainConfig(max_epochs=12, **FAST))


def test_true_theta_reproduces_the_mock_wise_truth(mock, full_model, trained):
    """θ of the mocks, redshift dropped and put back by the baseline, through the push path."""
    cat, data = mock
    np.testing.assert_array_equal(data.id, cat.spectra.id)
    np.testing.assert_allclose(data.true_vega, cat.wise.true_vega, atol=1e-9)
    baseline = trained[0]
    cols = [data.param_names.index(n) for n in baseline.param_names]
    theta = torch.as_tensor(data.theta[:, cols], dtype=torch.float32)[:, None]     # (N, 1, D) as draws
    full = baseline.full_theta(theta, data.z).reshape(len(data), -1)
    mag = model_wise_vega(full_model, full)
    assert np.abs(mag - cat.wise.true_vega).max() < 1e-3      # float32 θ against the float64 draw
    # and the truth is the data's: χ of the noiseless magnitudes is of order 1 where detected
    c = (cat.wise.mpro_vega - mag) / cat.wise.sigmpro_vega
    assert np.nanmax(np.abs(c)) < 6
    # a wrong redshift does not reproduce it
    wrong = baseline.full_theta(theta, data.z + 0.05).reshape(len(data), -1)
    assert np.abs(model_wise_vega(full_model, wrong) - cat.wise.true_vega).max() > 0.05


def test_prior_box_encloses_the_mocks(mock, box):
    names, low, high = box
    data = mock[1]
    theta = data.theta[:, [data.param_names.index(n) for n in names]]
    assert "redshift" not in names and ((theta >= low) & (theta <= high)).all()


def test_sample_shapes_bounds_and_reproducibility(mock, trained):
    data, baseline = mock[1], trained[0]
    draws = baseline.sample(data.latents, data.norm, data.z, 7, seed=3)
    assert draws.shape == (len(data), 7, len(baseline.param_names))
    assert bounds_ok(draws, baseline) and torch.isfinite(draws).all()
    again = baseline.sample(data.latents[5:9], data.norm[5:9], data.z[5:9], 7, seed=3, rows=np.arange(5, 9))
    torch.testing.assert_close(again, draws[5:9])
    lp = baseline.log_prob(draws[:, 0], data.latents, data.norm, data.z)
    assert lp.shape == (len(data),) and torch.isfinite(lp).all()


def test_short_training_lowers_the_loss(trained):
    history = trained[0].posterior.metadata["history"]
    assert trained[1] and len(history) == 12
    assert history[-1]["train_nll"] < history[0]["train_nll"] - 0.2


def test_split_matches_the_predictors(trained, mock):
    split = split_70_10_20(len(mock[1]), 0)
    meta = trained[0].metadata
    assert (meta["n_train"], meta["n_val"], meta["n_test_held_out"]) == tuple(len(split[k]) for k in
                                                                             ("train", "val", "test"))
    assert trained[0].posterior.metadata["n_validation"] == len(split["val"])


def test_save_load_round_trip(trained, mock, tmp_path):
    baseline, data = trained[0], mock[1]
    path = baseline.save(tmp_path / "sed.pt")
    back = SEDBaseline.load(path)
    assert back.config == baseline.config and back.param_names == baseline.param_names
    assert back.model_param_names == baseline.model_param_names and back.metadata == baseline.metadata
    torch.testing.assert_close(back.sample(data.latents, data.norm, data.z, 4, seed=1),
                               baseline.sample(data.latents, data.norm, data.z, 4, seed=1))
    theta = baseline.sample(data.latents, data.norm, data.z, 1, seed=2)[:, 0]
    torch.testing.assert_close(back.log_prob(theta, data.latents, data.norm, data.z),
                               baseline.log_prob(theta, data.latents, data.norm, data.z))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "sedinfer-sed-baseline" and payload["format_version"] == 1


def test_time_budget_then_resume_equals_one_run(mock, box, tmp_path):
    data = mock[1]
    cfg = SEDBaselineConfig(n_latent=data.latents.shape[1], flow=TINY_FLOW)
    tc = TrainConfig(max_epochs=5, **FAST)
    ckpt = tmp_path / "sed.ckpt"
    first, done = train_sed_baseline(data, box, cfg, tc, checkpoint=ckpt, max_hours=1e-9)
    assert not done and first.posterior.metadata["epochs"] == 1 and ckpt.is_file()
    resumed, done = train_sed_baseline(data, box, cfg, tc, checkpoint=ckpt)
    whole, _ = train_sed_baseline(data, box, cfg, tc)
    assert done and resumed.posterior.metadata["epochs"] == 5
    def strip(b):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in b.posterior.metadata["history"]]

    assert strip(resumed) == strip(whole)
    for k, v in whole.posterior.state_dict().items():
        torch.testing.assert_close(resumed.posterior.state_dict()[k], v)


def test_pushed_draws_give_phat_and_do_not_depend_on_batching(mock, trained, full_model):
    cat, data = mock
    baseline = trained[0]
    a = predict_wise_sed(baseline, full_model, data.latents, data.norm, data.z, 6, data.mag, data.sigma,
                         keep_draws=True)
    b = predict_wise_sed(baseline, full_model, data.latents, data.norm, data.z, 6, data.mag, data.sigma,
                         max_rows=20)
    assert a.mean.shape == a.std.shape == a.phat.shape == (len(data), 4)
    assert a.draws.shape == (len(data), 6, 4) and a.n_nonfinite == 0
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)
    # float32 SPS photometry differs in the last bits between batch sizes; p̂ = exp(-χ²/2) amplifies it
    np.testing.assert_allclose(a.phat, b.phat, rtol=1e-3, atol=1e-9)
    det = np.isfinite(data.sigma)
    assert np.isnan(a.phat[~det]).all() and ((a.phat[det] >= 0) & (a.phat[det] <= 1)).all()
    kept = phat_draws(data.mag, data.sigma, a.draws)        # the kept draws are float32
    np.testing.assert_allclose(kept, a.phat, rtol=1e-3, atol=1e-6)
    # draws at the noiseless truth score exp(-χ²/2) exactly
    truth = np.repeat(cat.wise.true_vega[:, None], 3, 1)
    chi = (data.mag - cat.wise.true_vega) / data.sigma
    np.testing.assert_allclose(phat_draws(data.mag, data.sigma, truth), np.exp(-0.5 * chi**2), rtol=1e-12)
