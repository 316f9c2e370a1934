"""SED posteriors: encoding, band dropout, configs, per-galaxy checks and the support flag."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sedinfer.errors import CatalogError, ParameterError
from sedinfer.posterior.card import load_config
from sedinfer.posterior.encoding import asinh_mag, dropout_mask, encode
from sedinfer.posterior.galaxies import SEDPosterior
from sedinfer.posterior.sed import SEDConfig, train_sed_posterior
from sedinfer.posterior.train import TrainConfig
from sedinfer.simulate import simulate_catalog


def test_asinh_magnitudes_match_pogson_for_bright_sources():
    beta = torch.tensor([1e-10])
    flux = torch.tensor([[1e-7], [1e-8]])                   # 17.5 and 20 mag
    sigma = flux * 0.02
    mag, err = asinh_mag(flux, sigma, beta)
    assert torch.allclose(mag, -2.5 * torch.log10(flux), atol=1e-3)
    assert torch.allclose(err, 2.5 / math.log(10) * 0.02 * torch.ones_like(err), rtol=1e-3)
    neg, _ = asinh_mag(torch.tensor([[-3e-10]]), torch.tensor([[1e-10]]), beta)
    assert torch.isfinite(neg).all() and neg.item() > -2.5 * math.log10(1e-10)


def test_encode_marks_missing_bands_and_appends_redshift():
    flux = torch.tensor([[1e-8, float("nan")]])
    x = encode(flux, torch.tensor([[1e-10, 1e-10]]), torch.tensor([1e-10, 1e-10]), torch.tensor([0.3]))
    assert x.shape == (1, 7)
    assert x[0, 2].item() == 1.0 and x[0, 5].item() == 0.0 and x[0, -1].item() == pytest.approx(0.3)
    assert torch.isfinite(x).all()


def test_dropout_mask_keeps_at_least_one_band():
    mask = dropout_mask(20000, 5, 0.3, torch.Generator().manual_seed(0))
    assert bool(mask.any(1).all())
    partial = ~mask.all(1)
    assert abs(partial.float().mean().item() - 0.3) < 0.02
    assert bool(((~mask[partial]).sum(1) >= 1).all())


def test_config_from_toml(tmp_path):
    cfg = load_config("configs/sdss_specz.toml")
    assert cfg.n_simulations >= 1_000_000 and cfg.redshift_mode == "spec"
    bad = tmp_path / "bad.toml"
    bad.write_text('bands = ["sdss_r0"]\nn_simulatons = 10\n')
    with pytest.raises(ParameterError, match="n_simulatons"):
        load_config(bad)
    with pytest.raises(ParameterError, match="redshift_mode"):
        SEDConfig(redshift_mode="both")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = SEDConfig(n_simulations=6000, band_dropout=0.2, train=TrainConfig(max_epochs=3))
    sed = train_sed_posterior(cfg, progress=False)
    path = sed.save(tmp_path_factory.mktemp("model") / "tiny.pt")
    return SEDPosterior.load(path)


@pytest.fixture(scope="module")
def mock():
    table = simulate_catalog(40, seed=11, progress=False)
    flux = np.stack([np.asarray(table[f"flux_{b}"]) for b in SEDConfig().bands], 1)
    err = np.stack([np.asarray(table[f"flux_err_{b}"]) for b in SEDConfig().bands], 1)
    return table, flux, err, np.asarray(table["redshift"])


def test_infer_outputs_samples_summaries_and_derived(tiny, mock):
    table, flux, err, z = mock
    res = tiny.infer(flux, err, z, n_samples=64, seed=0)
    assert res.samples.shape == (40, 64, len(tiny.names))
    assert res.ok.all()
    s = res.summary_table()
    for name in ("log_mass", "n_dust", "log_mstar", "sfr_100myr", "mass_weighted_age"):
        assert (s[f"{name}_p16"] <= s[f"{name}_p50"]).all() and (s[f"{name}_p50"] <= s[f"{name}_p84"]).all()
    # surviving mass is below the mass formed, sample by sample
    k_mass, k_mstar = tiny.names.index("log_mass"), tiny.names.index("log_mstar")
    assert (res.samples[..., k_mstar] < res.samples[..., k_mass]).all()
    low, high = tiny.posterior.low.numpy(), tiny.posterior.high.numpy()
    theta = res.samples[..., :len(tiny.param_names)]
    assert ((theta >= low) & (theta <= high)).all()


def test_bad_rows_are_reported_not_dropped(tiny, mock):
    _, flux, err, z = mock
    flux, err, z = flux[:6].copy(), err[:6].copy(), z[:6].copy()
    flux[0, 1] = np.nan                  # masked band
    err[1, 2] = 0.0                      # invalid error
    z[2] = 3.0                           # outside the trained range
    flux[3, 0] = -0.5                    # negative flux: valid, kept
    z[4] = np.nan
    flux[5, :] = np.inf                  # nothing usable
    res = tiny.infer(flux, err, z, n_samples=16, seed=0)
    assert list(res.ok) == [True, False, False, True, False, False]
    assert res.masked_bands[0] == "sdss_g0"
    assert "flux_err_sdss_r0=0 is not > 0" in res.reason[1]
    assert "redshift=3 outside the trained range [0, 1.55]" in res.reason[2]
    assert "redshift=nan" in res.reason[4]
    assert "no band" in res.reason[5]
    assert np.isnan(res.samples[1]).all() and np.isfinite(res.samples[0]).all()
    with pytest.raises(CatalogError, match="redshift column is required"):
        tiny.infer(flux, err, None)
    with pytest.raises(CatalogError, match=r"\(N, 5\)"):
        tiny.infer(flux[:, :4], err[:, :4], z)


def test_out_of_support_flag_fires(tiny, mock):
    _, flux, err, z = mock
    typical = tiny.infer(flux, err, z, n_samples=8, seed=0)
    assert typical.ood.mean() <= 0.1
    assert np.isfinite(typical.support_nll).all()           # the trained model carries a support model
    weird = err.copy()
    weird[:5] = np.abs(flux[:5]) * 1e-5 + 1e-6      # errors far below anything the noise model makes
    res = tiny.infer(flux[:5], weird[:5], z[:5], n_samples=8, seed=0, error_floor=False)
    assert res.ood.all()
    assert all("log_amag_err" in f for f in res.ood_features)
    # by default such errors are raised to the noise model's floor instead, and named
    floored = tiny.infer(flux[:5], weird[:5], z[:5], n_samples=8, seed=0)
    assert all(b == ",".join(tiny.bands) for b in floored.inflated_bands)


def test_trained_model_saves_its_support_model(tiny, mock, tmp_path):
    _, flux, err, z = mock
    again = SEDPosterior.load(tiny.save(tmp_path / "again.pt"))
    assert again.support is not None and again.support.to_dict() == tiny.support.to_dict()
    a = tiny.infer(flux, err, z, n_samples=4, seed=0, derived=False)
    b = again.infer(flux, err, z, n_samples=4, seed=0, derived=False)
    np.testing.assert_array_equal(a.support_nll, b.support_nll)


def test_shipped_model_loads_recovers_bright_galaxies_and_has_a_card(tmp_path):
    import json
    import os

    from sedinfer.catalog import read_catalog, write_catalog
    from sedinfer.cli import main
    from sedinfer.posterior.card import card_paths
    from sedinfer.posterior.galaxies import shipped_path

    path = shipped_path("sdss-specz")
    assert os.path.getsize(path) <= 20e6
    card = json.loads(card_paths(path)[1].read_text())
    assert card["training"]["n_simulations"] >= 1_000_000
    assert all(card["validation"]["passes"].values())
    sed = SEDPosterior.load("sdss-specz")
    assert sed.bands == SEDConfig().bands and sed.redshift_mode == "spec"
    # what `sedinfer simulate` writes goes straight in; bright galaxies' masses are recovered
    table = simulate_catalog(400, seed=5, progress=False)
    write_catalog(table, tmp_path / "mock.parquet")
    assert main(["posterior", str(tmp_path / "mock.parquet"), "--out", str(tmp_path / "post.parquet"),
                 "--samples", "200", "--no-progress"]) == 0
    out = read_catalog(tmp_path / "post.parquet")
    assert len(out) == 400 and list(out["id"]) == list(table["id"]) and out["ok"].all()
    bright = np.asarray(table["flux_sdss_r0"] / table["flux_err_sdss_r0"]) > 20
    assert bright.sum() >= 10
    err = np.abs(np.asarray(out["log_mass_p50"] - table["log_mass"]))[bright]
    assert np.median(err) < 0.3
    inside = (table["log_mass"] >= out["log_mass_p16"]) & (table["log_mass"] <= out["log_mass_p84"])
    assert 0.5 < inside.mean() < 0.85        # 68% intervals cover about 68% of the truths


def test_shipped_photz_model_infers_redshift_without_one():
    from sedinfer.catalog import read_catalog
    from sedinfer.cli_posterior import demo_catalog

    sed = SEDPosterior.load("sdss-photz")
    assert sed.redshift_mode == "phot" and "redshift" in sed.param_names
    table = read_catalog(demo_catalog())
    flux = np.stack([np.asarray(table[f"flux_{b}"]) for b in sed.bands], 1)
    err = np.stack([np.asarray(table[f"flux_err_{b}"]) for b in sed.bands], 1)
    res = sed.infer(flux, err, None, n_samples=200, seed=0, derived=False)
    z_true = np.asarray(table["redshift"])
    z_med = np.median(res.samples[..., sed.param_names.index("redshift")], axis=1)
    bright = flux[:, 2] / err[:, 2] > 20
    assert np.median(np.abs(z_med - z_true)[bright] / (1 + z_true[bright])) < 0.1


def test_saved_models_keep_the_birth_cloud_curve_they_were_trained_with(tiny, tmp_path):
    from sedinfer.posterior.estimator import load

    saved = tiny.posterior.metadata["sed"]["model_config"]
    assert saved["birth_cloud_curve"] == "power_law" and saved["birth_cloud_index"] == -1.0
    assert tiny.model.config.birth_cloud_curve == "power_law"
    # a model file written before the setting existed (sedinfer 0.1) rebuilds the old model
    legacy = load(tiny.save(tmp_path / "legacy.pt"))
    for key in ("birth_cloud_curve", "birth_cloud_index"):
        del legacy.metadata["sed"]["model_config"][key]
    old = SEDPosterior(legacy)
    assert old.model.config.birth_cloud_curve == "kc"
    assert old.meta["model_config"]["birth_cloud_curve"] == "kc"
    shipped = SEDPosterior.load("sdss-specz")
    recorded = shipped.posterior.metadata["sed"]["model_config"].get("birth_cloud_curve", "kc")
    assert shipped.model.config.birth_cloud_curve == recorded


def test_model_card_states_the_imf_and_the_birth_cloud_curve(tiny, tmp_path):
    import json

    from sedinfer.posterior.card import card_paths, write_model_card

    md = write_model_card(tiny, tmp_path / "tiny.pt").read_text()
    card = json.loads(card_paths(tmp_path / "tiny.pt")[1].read_text())
    assert "IMF: Kroupa (2001)" in md and card["stellar_populations"]["imf"].startswith("Kroupa (2001)")
    assert card["forward_model"]["birth_cloud_curve"] == "power_law" and "birth_cloud_curve='power_law'" in md


def test_training_set_is_cached_beside_the_checkpoint(tmp_path, monkeypatch):
    import sedinfer.posterior.sed as sed_module
    from sedinfer.posterior.sed import cached_training_set, training_set

    cfg = SEDConfig(n_simulations=300, sigma_factor_range=(0.5, 2.0))
    ckpt = tmp_path / "model.ckpt"
    theta, x, info = cached_training_set(cfg, ckpt, progress=False)
    assert (tmp_path / "model.trainset.pt").exists()
    fresh = training_set(cfg, progress=False)
    assert torch.equal(theta, fresh[0]) and torch.equal(x, fresh[1])     # the set is seeded

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr(sed_module, "training_set", no_simulation)
    theta2, x2, info2 = cached_training_set(cfg, ckpt, progress=False)
    assert torch.equal(theta, theta2) and torch.equal(x, x2)
    assert info2["param_names"] == info["param_names"] and info2["context_names"] == info["context_names"]
    assert torch.equal(info2["low"], info["low"]) and torch.equal(info2["softening"], info["softening"])
    with pytest.raises(AssertionError, match="simulated again"):       # another config: not reused
        cached_training_set(SEDConfig(n_simulations=300, seed=1), ckpt, progress=False)
