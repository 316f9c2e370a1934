"""The generic posterior engine: bounded samples, density, training, checkpoints, persistence."""

from __future__ import annotations

import math

import pytest
import torch

import sedinfer.posterior as sp
from sedinfer.errors import ParameterError, SedinferError

LOW, HIGH = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0])


def _toy(n: int, seed: int = 0):
    """θ ~ U(box); x = θ + N(0, 0.1²): the posterior is a truncated normal around x."""
    g = torch.Generator().manual_seed(seed)
    theta = LOW + (HIGH - LOW) * torch.rand(n, 2, generator=g)
    return theta, theta + 0.1 * torch.randn(n, 2, generator=g)


@pytest.fixture(scope="module")
def toy_posterior():
    theta, x = _toy(20000)
    cfg = sp.TrainConfig(max_epochs=12, batch_size=256, seed=1)
    return sp.train(theta, x, bounds=(LOW, HIGH), config=cfg, progress=False,
                    flow=sp.FlowConfig(transforms=4, hidden=(64, 64)), param_names=["a", "b"])


def test_recovers_toy_posterior(toy_posterior):
    s = toy_posterior.sample(torch.tensor([0.2, 2.0]), 4000, seed=0)
    assert s.shape == (4000, 2)
    assert torch.allclose(s.median(0).values, torch.tensor([0.2, 2.0]), atol=0.03)
    iqr = s.quantile(0.75, 0) - s.quantile(0.25, 0)
    assert torch.allclose(iqr, torch.full((2,), 2 * 0.6745 * 0.1), rtol=0.2)


def test_samples_stay_in_box_even_at_the_edge(toy_posterior):
    x = torch.tensor([[-1.5, -0.5], [1.4, 4.5], [0.0, 2.0]])    # contexts beyond the box edges
    s = toy_posterior.sample(x, 3000, seed=2)
    assert s.shape == (3, 3000, 2)
    assert bool(((s >= LOW) & (s <= HIGH)).all())


def test_log_prob_is_a_normalised_density(toy_posterior):
    x = torch.tensor([0.0, 1.0])
    n = 200
    a = torch.linspace(-1, 1, n + 1)[:-1] + 1 / n
    b = torch.linspace(0, 4, 2 * n + 1)[:-1] + 2 / (2 * n)
    grid = torch.stack(torch.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        dens = toy_posterior.log_prob(grid, x).exp()
    integral = float(dens.sum() * (2 / n) * (4 / (2 * n)))
    assert integral == pytest.approx(1.0, abs=0.03)
    assert toy_posterior.log_prob(torch.tensor([2.0, 1.0]), x).item() == -math.inf


def test_sampling_is_reproducible_and_batched_consistently(toy_posterior):
    x = torch.tensor([[0.1, 1.0], [0.3, 3.0]])
    a = toy_posterior.sample(x, 100, seed=5)
    b = toy_posterior.sample(x, 100, seed=5)
    assert torch.equal(a, b)
    c = toy_posterior.sample(x, 100, seed=5, batch_size=7)    # other batching: same distribution
    assert torch.allclose(c.mean(1), a.mean(1), atol=0.05)


def test_save_load_roundtrip(toy_posterior, tmp_path):
    path = toy_posterior.save(tmp_path / "toy.pt")
    back = sp.load(path)
    x = torch.tensor([0.2, 2.0])
    assert torch.equal(back.sample(x, 50, seed=1), toy_posterior.sample(x, 50, seed=1))
    assert back.param_names == ("a", "b")
    assert back.metadata["n_simulations"] == 20000
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(SedinferError, match="not a readable"):
        sp.load(tmp_path / "junk.pt")


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
    theta, x = _toy(3000, seed=3)
    flow = sp.FlowConfig(transforms=2, hidden=(32,))
    full = sp.train(theta, x, (LOW, HIGH), flow=flow, config=sp.TrainConfig(max_epochs=4, patience=99),
                    progress=False, checkpoint=tmp_path / "a.ckpt")
    # the same run stopped after 2 epochs (as if killed), then resumed to 4 from the checkpoint
    sp.train(theta, x, (LOW, HIGH), flow=flow, config=sp.TrainConfig(max_epochs=2, patience=99),
             progress=False, checkpoint=tmp_path / "b.ckpt")
    resumed = sp.train(theta, x, (LOW, HIGH), flow=flow, config=sp.TrainConfig(max_epochs=4, patience=99),
                       progress=False, checkpoint=tmp_path / "b.ckpt")
    h_full, h_res = full.metadata["history"], resumed.metadata["history"]
    assert [h["epoch"] for h in h_res] == [1, 2, 3, 4]
    assert [h["val_nll"] for h in h_res] == pytest.approx([h["val_nll"] for h in h_full], rel=1e-5)
    with pytest.raises(ParameterError, match="other data or settings"):
        sp.train(theta[:2000], x[:2000], (LOW, HIGH), flow=flow, config=sp.TrainConfig(max_epochs=4),
                 progress=False, checkpoint=tmp_path / "b.ckpt")


def test_bad_training_inputs():
    theta, x = _toy(100)
    with pytest.raises(ParameterError, match="outside the bounds"):
        sp.train(theta * 3, x, (LOW, HIGH), progress=False)
    x_bad = x.clone()
    x_bad[3, 1] = float("nan")
    with pytest.raises(ParameterError, match="NaN"):
        sp.train(theta, x_bad, (LOW, HIGH), progress=False)
    with pytest.raises(ParameterError, match="rows"):
        sp.train(theta, x[:50], (LOW, HIGH), progress=False)
    with pytest.raises(ParameterError, match="flow kind"):
        sp.FlowConfig(kind="glow")


def test_bad_context_is_named(toy_posterior):
    with pytest.raises(ParameterError, match="2 features"):
        toy_posterior.sample(torch.zeros(3), 10)
    with pytest.raises(ParameterError, match=r"\['x1'\]"):
        toy_posterior.sample(torch.tensor([0.0, float("inf")]), 10)


@pytest.mark.parametrize("kind", ["affine-coupling", "nsf", "maf"])
def test_other_flow_kinds_train_and_stay_bounded(kind):
    theta, x = _toy(1000)
    post = sp.train(theta, x, (LOW, HIGH), flow=sp.FlowConfig(kind=kind, transforms=2, hidden=(16,)),
                    config=sp.TrainConfig(max_epochs=1), progress=False)
    s = post.sample(x[:2], 20, seed=0)
    assert bool(((s >= LOW) & (s <= HIGH)).all())
    assert torch.isfinite(post.log_prob(theta[:5], x[:5])).all()
