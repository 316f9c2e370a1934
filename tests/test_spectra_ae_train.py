"""Training the spectrum autoencoder: the loss falls, resume is exact, mock tables load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import TINY_AUTOENCODER
from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.train_autoencoder import AETrainConfig, evaluate, train_autoencoder
from sedinfer.spectra.training_data import SpectraArrays

TINY = AutoencoderConfig(**{**TINY_AUTOENCODER, "n_pix": 400, "dropout": 0.1, "z_max": 0.3})


def toy_data(n: int = 24, seed: int = 0) -> SpectraArrays:
    """Two-parameter rest-frame spectra (a slope and an emission line) at 0 <= z <= 0.3."""
    rng = np.random.default_rng(seed)
    model = SpectrumAutoencoder(TINY)
    wave_rest = model.wave_rest_aa
    wave_obs = 10 ** (TINY.loglam0 + TINY.dloglam * np.arange(TINY.n_pix))
    z = rng.uniform(0, 0.3, n)
    slope, line = rng.uniform(-1, 1, n), rng.uniform(0, 3, n)
    lam = wave_obs[None, :] / (1 + z[:, None])
    flux = 1 + slope[:, None] * (lam - 3500) / 1000 + line[:, None] * np.exp(-0.5 * ((lam - 3300) / 3) ** 2)
    ivar = np.full_like(flux, 400.0)
    ivar[:, 200:210] = 0
    flux = flux + rng.standard_normal(flux.shape) / 20
    assert wave_rest[0] < wave_obs[0] / 1.3
    return SpectraArrays(
        flux.astype(np.float32),
        ivar.astype(np.float32),
        z.astype(np.float32),
        np.array([f"g{i}" for i in range(n)]),
        np.ones(n),
        wave_obs,
        {},
    )


def test_tiny_autoencoder_overfits_a_handful():
    data = toy_data(8)
    cfg = AETrainConfig(
        batch_size=8,
        learning_rate=3e-3,
        max_steps=60,
        checkpoint_every=60,
        val_fraction=0.0,
        similarity_amp=0.1,
        consistency_amp=0.1,
    )
    model, state = train_autoencoder(data, cfg, TINY)
    before = evaluate(SpectrumAutoencoder(TINY), data)["chi2_pix_mean"]
    after = evaluate(model, data)["chi2_pix_mean"]
    assert state["done"] and state["step"] == 60
    assert after < 0.2 * before, (before, after)


def test_resume_continues_identically(tmp_path):
    data = toy_data(24)
    cfg = AETrainConfig(batch_size=8, max_steps=8, checkpoint_every=4, val_fraction=0.2, seed=3)
    straight, s1 = train_autoencoder(data, cfg, TINY, checkpoint=tmp_path / "a.ckpt")
    _, half = train_autoencoder(data, cfg, TINY, checkpoint=tmp_path / "b.ckpt", stop_after=3)
    assert half["step"] == 3 and not half["done"]
    resumed, s2 = train_autoencoder(data, cfg, TINY, checkpoint=tmp_path / "b.ckpt", out=tmp_path / "best.pt")
    assert s2["done"] and s2["step"] == 8
    # same final loss terms and the same weights as the uninterrupted run
    assert s1["history"][-1]["total"] == pytest.approx(s2["history"][-1]["total"], rel=1e-6)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), k
    best = SpectrumAutoencoder.load(tmp_path / "best.pt")
    assert best.metadata["step"] in (3, 8) and best.metadata["n_val"] == 5


def test_time_budget_stops_with_a_checkpoint(tmp_path):
    data = toy_data(16)
    cfg = AETrainConfig(
        batch_size=8, max_steps=10_000, checkpoint_every=10_000, max_hours=1e-9, val_fraction=0.0
    )
    _, state = train_autoencoder(data, cfg, TINY, checkpoint=tmp_path / "c.ckpt")
    assert state["step"] == 1 and not state["done"] and (tmp_path / "c.ckpt").is_file()


def test_reads_a_mock_table(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    m, n = 50, 4
    wave = 10 ** (3.578 + 1e-4 * np.arange(m))
    norm = np.array([2.0, 4.0, np.nan, 1.0])
    flux = np.ones((n, m)) * np.nan_to_num(norm, nan=0)[:, None]
    ivar = np.ones((n, m)) / np.nan_to_num(norm, nan=1)[:, None] ** 2

    def col(a):
        return pa.FixedSizeListArray.from_arrays(pa.array(a.astype(np.float32).ravel()), m)

    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "z": [0.1, 0.2, 0.1, 0.9],
            "flux_flam_1e17": col(flux),
            "ivar_flam_1e17": col(ivar),
            "norm_flam_1e17": pa.array(norm, mask=~np.isfinite(norm)),
            "ok": [True, True, False, True],
        }
    )
    meta = {"format": "sedinfer-ir-mock", "format_version": 1, "wave_obs_aa": wave.tolist()}
    pq.write_table(
        table.replace_schema_metadata({b"sedinfer": json.dumps(meta).encode()}), tmp_path / "m.parquet"
    )
    data = SpectraArrays.from_mock_table(tmp_path / "m.parquet", z_max=0.5)
    assert list(data.id) == ["a", "b"] and data.flux.shape == (2, m)
    assert np.allclose(data.flux, 1.0) and np.allclose(data.ivar, 1.0)
    assert data.dropped == {"not ok": 1, "z outside [0, 0.5]": 1}
