"""The WISE predictor: the paper's size, a known linear relation, non-detections, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer.spectra.predictor import (
    PredictorConfig,
    PredictorTrainConfig,
    WisePredictor,
    gaussian_nll,
    split_70_10_20,
    train_predictor,
)


def toy(n: int = 2000, seed: int = 0, scatter: float = 0.0):
    """m_b = 12 + A_b · s + 0.8 z − 2.5 log10 norm + noise, σ = 0.05 mag, W4 mostly undetected."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n, 6))
    norm = 10 ** rng.uniform(-0.5, 1.0, n)
    z = rng.uniform(0.01, 0.4, n)
    a = rng.uniform(-0.5, 0.5, (6, 4))
    truth = (
        12 + s @ a + 0.8 * z[:, None] - 2.5 * np.log10(norm)[:, None] + scatter * rng.standard_normal((n, 4))
    )
    sigma = np.full((n, 4), 0.05)
    mag = truth + sigma * rng.standard_normal((n, 4))
    nondet = rng.uniform(size=n) < 0.7
    sigma[nondet, 3] = np.nan
    mag[nondet, 3] = truth[nondet, 3] - 3.0  # an upper limit far from the truth
    return s, norm, z, mag, sigma, truth


def test_paper_size_is_684_parameters():
    assert WisePredictor(PredictorConfig(variance_head=False)).n_parameters == 684
    assert WisePredictor().n_parameters == 768


def test_split_is_70_10_20():
    sp = split_70_10_20(1000, seed=1)
    assert [len(sp[k]) for k in ("train", "val", "test")] == [700, 100, 200]
    assert len(np.unique(np.concatenate(list(sp.values())))) == 1000


def test_recovers_a_linear_relation_and_ignores_nondetections():
    s, norm, z, mag, sigma, truth = toy(3000)
    tc = PredictorTrainConfig(epochs=40, patience=40, batch_size=128, learning_rate=1e-2)
    model, info = train_predictor(s, norm, z, mag, sigma, PredictorConfig(variance_head=False), tc)
    test = info["split"]["test"]
    mean, sig = model.predict(s[test], norm[test], z[test])
    rms = np.sqrt(((mean - truth[test]) ** 2).mean(0))
    assert (rms[:3] < 0.05).all(), rms  # within the 0.05 mag noise
    assert rms[3] < 0.15, rms  # W4 from its 30 % detections, not pulled by the limits
    assert np.all(sig == 0)


def test_nll_gradient_ignores_nondetection_values():
    torch.manual_seed(0)
    model = WisePredictor(PredictorConfig(variance_head=True))
    s, norm, z, mag, sigma, _ = (torch.as_tensor(a, dtype=torch.float32) for a in toy(64))
    nondet = ~torch.isfinite(sigma)

    def grads(m):
        model.zero_grad()
        mean, scatter = model(s, norm, z)
        gaussian_nll(m, sigma, mean, scatter).backward()
        return torch.cat([p.grad.ravel() for p in model.parameters()])

    g1 = grads(mag)
    mag2 = mag.clone()
    mag2[nondet] = mag2[nondet] + 5.0
    g2 = grads(mag2)
    mag3 = mag.clone()
    mag3[nondet] = float("nan")
    g3 = grads(mag3)
    assert torch.allclose(g1, g2, atol=1e-6 * float(g1.abs().max())) and torch.allclose(g1, g3, atol=1e-6)


def test_variance_head_learns_the_intrinsic_scatter(tmp_path):
    s, norm, z, mag, sigma, _ = toy(2000, seed=2, scatter=0.2)
    tc = PredictorTrainConfig(epochs=30, patience=30, batch_size=128, learning_rate=3e-3)
    model, info = train_predictor(s, norm, z, mag, sigma, PredictorConfig(), tc)
    test = info["split"]["test"]
    _, sig = model.predict(s[test], norm[test], z[test])
    assert np.median(sig[:, :3]) == pytest.approx(0.2, rel=0.25)
    path = model.save(tmp_path / "p.pt")
    again = WisePredictor.load(path)
    m1, s1 = model.predict(s[:5], norm[:5], z[:5])
    m2, s2 = again.predict(s[:5], norm[:5], z[:5])
    assert np.array_equal(m1, m2) and np.array_equal(s1, s2)
    assert again.metadata["n_train"] == 1400
