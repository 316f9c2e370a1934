"""Score priors of issue 18 §3: the SDE, the network contract, transforms, save/load, DSM training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer.errors import SedinferError
from sedinfer.images.errors import ImageError
from sedinfer.images.prior import (
    ConditionalDustPrior,
    DustPrior,
    HostPrior,
    build_prior,
    condition_channel,
    load,
)
from sedinfer.images.sde import VESDE
from sedinfer.images.train_prior import PriorTrainConfig, dsm_loss, train_prior
from sedinfer.images.unet import UNetConfig

TINY = UNetConfig(base_channels=8, channel_mult=(1, 2), emb_dim=16, groups=4)
KINDS = ("host", "dust", "dust_given_host")


def blobs(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Toy pairs: a Gaussian host of random centre and width, dust 1 - 0.6 × a narrower blob."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] + 0.5
    c = rng.uniform(5, size - 5, (n, 2, 1, 1))
    w = rng.uniform(1.5, 3.0, (n, 1, 1))
    r2 = (x - c[:, 0]) ** 2 + (y - c[:, 1]) ** 2
    host = np.exp(-r2 / (2 * w**2))
    host /= host.sum((1, 2), keepdims=True)
    dust = 1 - 0.6 * np.exp(-r2 / (2 * (0.6 * w) ** 2))
    return host.astype(np.float32), np.clip(dust, 1e-3, 1).astype(np.float32)


def test_ve_sde_schedule():
    sde = VESDE(1e-3, 50.0)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(sde.sigma(t).numpy(), [1e-3, np.sqrt(1e-3 * 50), 50.0], rtol=1e-12)
    assert sde.time_for_sigma(0.01) == pytest.approx(np.log(10) / np.log(5e4))
    with pytest.raises(ValueError, match="sigma_min"):
        VESDE(1.0, 0.5)


@pytest.mark.parametrize("kind", KINDS)
def test_prior_contract_shapes_transforms(kind):
    prior = build_prior(kind, TINY)
    gen = torch.Generator().manual_seed(0)
    for p in prior.network.parameters():          # non-zero output layer so the score is not 0
        p.data.normal_(0, 0.1, generator=gen)
    host, dust = (torch.as_tensor(a) for a in blobs(3))
    x = host if kind == "host" else dust
    cond = host if prior.conditional else None
    s = prior.score(x, 0.3, condition=cond)
    assert s.shape == x.shape and torch.isfinite(s).all() and s.abs().max() > 0
    u, c = prior.to_network(x, cond)
    t = torch.full((3,), 0.3)
    s_net = prior.network_score(u, t, c)[:, 0]
    if kind == "host":                             # u = S / max S: score_S = score_u / max S
        peak = host.flatten(1).amax(1)
        torch.testing.assert_close(s, s_net / peak[:, None, None])
        torch.testing.assert_close(prior.score(4.0 * x, 0.3), s / 4.0)
    else:                                          # u = 1 - D: score_D = -score_u
        torch.testing.assert_close(s, -s_net)
        torch.testing.assert_close(u[:, 0], 1 - dust)
    if prior.conditional:
        assert c.shape == (3, 1, 16, 16) and float(c.max()) == pytest.approx(1.0)
        torch.testing.assert_close(condition_channel(7.0 * host), c)   # shape only, not flux


def test_prior_errors_name_the_problem():
    host, dust = (torch.as_tensor(a) for a in blobs(2))
    with pytest.raises(ImageError, match="condition"):
        build_prior("dust_given_host", TINY).score(dust, 0.1)
    with pytest.raises(ImageError, match="no positive"):
        build_prior("host", TINY).score(torch.zeros(2, 16, 16), 0.1)
    with pytest.raises(ImageError, match="kind"):
        build_prior("stars", TINY)
    with pytest.raises(ImageError, match="t must"):
        build_prior("dust", TINY).score(dust, 1.5)
    with pytest.raises(ValueError, match="divisible"):
        build_prior("dust", TINY).score(dust[:, :15, :15], 0.1)


def test_save_load_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(1)
    host, dust = (torch.as_tensor(a) for a in blobs(2))
    for cls in (HostPrior, DustPrior, ConditionalDustPrior):
        prior = build_prior(cls.kind, TINY, VESDE(2e-3, 30.0), card={"note": "test"})
        for p in prior.network.parameters():
            p.data.normal_(0, 0.1, generator=gen)
        path = prior.save(tmp_path / f"{cls.kind}.pt")
        back = cls.load(path)
        assert type(back) is cls and type(load(path)) is cls
        assert back.sde == VESDE(2e-3, 30.0) and back.card == {"note": "test"}
        assert (tmp_path / f"{cls.kind}.json").is_file()
        x = host if cls.kind == "host" else dust
        cond = host if cls.conditional else None
        torch.testing.assert_close(back.score(x, 0.2, cond), prior.score(x, 0.2, cond), rtol=0, atol=0)
    with pytest.raises(ImageError, match="not a HostPrior"):
        HostPrior.load(tmp_path / "dust.pt")
    # float64 images on a float32 network: computed in float32, returned as float64
    s64 = back.score(x.double(), 0.2, None if cond is None else cond.double())
    assert s64.dtype == torch.float64
    torch.testing.assert_close(s64.float(), back.score(x, 0.2, cond))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(SedinferError, match="not a readable"):
        load(tmp_path / "junk.pt")


@pytest.mark.slow
def test_dsm_loss_decreases_on_toy(tmp_path):
    host, dust = blobs(32)
    cfg = PriorTrainConfig(kind="dust_given_host", steps=30, batch_size=8, lr=5e-3, base_channels=8,
                           channel_mult=(1, 2), checkpoint_every=1000, seed=0)
    # the same held-out batch and noise before and after training
    prior0 = build_prior(cfg.kind, cfg.unet())
    hv, dv = (torch.as_tensor(a) for a in blobs(16, seed=9))

    def held_out(prior) -> float:
        u, c = prior.to_network(dv, hv)
        with torch.no_grad():
            return float(dsm_loss(prior, u, c, torch.Generator().manual_seed(5)))

    before = held_out(prior0)
    prior = train_prior({"host": host, "dust": dust}, cfg, tmp_path, device="cpu", log=None)
    after = held_out(prior)
    assert before == pytest.approx(16 * 16, rel=0.3)      # zero-initialised output: E|z|² = n_pix
    assert after < 0.6 * before
    assert prior.card["steps"] == 30 and (tmp_path / "dust_given_host.pt").is_file()


def test_training_resumes_to_the_same_weights(tmp_path):
    host, dust = blobs(16)
    pairs = {"host": host, "dust": dust}
    kw = dict(kind="host", batch_size=4, base_channels=8, channel_mult=(1, 2), checkpoint_every=2)
    full = train_prior(pairs, PriorTrainConfig(steps=4, **kw), tmp_path / "a", device="cpu", log=None)
    train_prior(pairs, PriorTrainConfig(steps=2, **kw), tmp_path / "b", device="cpu", log=None)
    resumed = train_prior(pairs, PriorTrainConfig(steps=4, **kw), tmp_path / "b", device="cpu", log=None)
    for (k, a), b in zip(full.network.state_dict().items(), resumed.network.state_dict().values(),
                         strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    with pytest.raises(ImageError, match="another configuration"):
        train_prior(pairs, PriorTrainConfig(steps=6, lr=1e-3, **kw), tmp_path / "b", device="cpu",
                    log=None)
    with pytest.raises(ImageError, match=r"\(0, 1\]"):
        train_prior({"host": host, "dust": dust * 0}, PriorTrainConfig(steps=1, **kw), tmp_path / "c",
                    log=None)
