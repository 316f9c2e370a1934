"""Multiscale occlusion (issue 17 §6): locality and sign on hand-made models whose prediction depends
on a known pixel range, the noise of an occluded window, masks, seeds, the Hα split, class means on
the rest grid, the figure and the ``ir occlusion`` step."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import TINY_AUTOENCODER
from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.instrument import sdss_wave_aa
from sedinfer.spectra.lines import GALAXY_LINES, H_ALPHA_VAC_AA
from sedinfer.spectra.occlusion import (
    NOISE_VARIANCE_FACTOR,
    multiscale_occlusion,
    occlude_windows,
    window_starts,
)
from sedinfer.spectra.occlusion_summary import (
    class_means,
    classify_halpha,
    halpha_ew,
    plot_occlusion,
)
from sedinfer.spectra.predictor import PredictorConfig, WisePredictor
from sedinfer.spectra.skylines import air_to_vacuum

M = 600
LO, HI = 290, 310          # the only pixels the hand-made model reads
WINDOWS = (8, 16, 32)


class RangeEncoder(nn.Module):
    """Latent (K, 1) = Σ of the flux over pixels [lo, hi): the model sees nothing else."""

    def __init__(self, lo: int = LO, hi: int = HI) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def encode(self, flux, ivar, z):
        return torch.where(ivar > 0, flux, 0)[:, self.lo:self.hi].sum(1, keepdim=True)


class LinearPredictor(nn.Module):
    """m̂_b = 15 − k_b · latent (Vega mag): more flux in the range, brighter in every band."""

    def __init__(self, variance_head: bool = True) -> None:
        super().__init__()
        self.register_buffer("k", torch.tensor([0.01, 0.02, 0.03, 0.04]))
        self.variance_head = variance_head

    def forward(self, latents, norm, z):
        mean = 15.0 - latents * self.k
        return mean, (torch.full_like(mean, 0.05) if self.variance_head else None)


def line_spectra(n: int = 2, seed: int = 0):
    """Flat continuum 1 ± 0.01 with an emission line of amplitude 3, σ = 2 pixels at pixel 300."""
    rng = np.random.default_rng(seed)
    p = np.arange(M)
    flux = 1 + 0.01 * rng.standard_normal((n, M)) + 3 * np.exp(-0.5 * ((p - 300) / 2.0) ** 2)
    t = torch.as_tensor(flux, dtype=torch.float32)
    return t, torch.full((n, M), 1e4), torch.ones(n), torch.full((n,), 0.1)


def run(flux, ivar, norm, z, seed=0, **kw):
    return multiscale_occlusion(RangeEncoder(), LinearPredictor(), flux, ivar, norm, z,
                                windows_pix=kw.pop("windows_pix", WINDOWS),
                                generator=torch.Generator().manual_seed(seed), **kw)


def test_only_pixels_the_model_reads_respond_and_the_line_brightens_the_bands():
    flux, ivar, norm, z = line_spectra()
    r = run(flux, ivar, norm, z)
    d = r.delta_chi.numpy()
    assert d.shape == (2, 4, M) and np.isfinite(d).all()
    far = np.r_[0:LO - max(WINDOWS), HI + max(WINDOWS):M]
    assert np.all(d[:, :, far] == 0.0)                       # occluding ignored pixels: exactly no change
    # removing the emission line takes flux out of the range: every band gets fainter, Δχ > 0
    centre = d[:, :, 298:303].mean(-1)
    assert (centre > 1.0).all(), centre
    # Δχ_b ∝ k_b / σ_b with σ the same in every band: the bands scale as 1 : 2 : 3 : 4
    np.testing.assert_allclose(centre / centre[:, :1], np.broadcast_to([1, 2, 3, 4], centre.shape), rtol=1e-4)
    # the reference is the unoccluded prediction and σ the predictive one
    np.testing.assert_allclose(r.reference_mag.numpy(), r.pred_mag.numpy())
    np.testing.assert_allclose(r.sigma_mag.numpy(), 0.05)


def test_sigma_and_reference_enter_as_defined():
    flux, ivar, norm, z = line_spectra(1)
    r = run(flux, ivar, norm, z)
    sig = torch.tensor([[0.1, 0.1, float("nan"), 0.0]])
    ref = r.pred_mag + torch.tensor([[0.0, 0.02, 0.0, 0.0]])
    r2 = run(flux, ivar, norm, z, sigma_mag=sig, reference_mag=ref)
    d, d2 = r.delta_chi.numpy(), r2.delta_chi.numpy()
    np.testing.assert_allclose(d2[0, 0], d[0, 0] * 0.05 / 0.1, rtol=1e-4, atol=1e-5)   # ∝ 1/σ
    np.testing.assert_allclose(d2[0, 1], (d[0, 1] * 0.05 - 0.02) / 0.1, rtol=1e-4, atol=1e-4)
    assert np.isnan(d2[0, 2:]).all()                          # no σ (non-detection): NaN


def test_occluding_noise_has_the_window_median_and_five_times_its_variance():
    g = torch.Generator().manual_seed(3)
    flux = torch.exp(torch.randn(5000, generator=g) * 0.5)    # skewed: median ≠ mean
    good = torch.ones(5000, dtype=torch.bool)
    good[:1000] = False                                       # masked pixels: untouched, not counted
    idx, vals, ok = occlude_windows(torch.where(good, flux, 0), good, torch.tensor([0]), 5000,
                                    torch.Generator().manual_seed(0))
    assert bool(ok.all()) and idx.shape == (1, 5000)
    assert torch.all(vals[0, :1000] == 0)
    noise, kept = vals[0, 1000:].double(), flux[1000:].double()
    assert abs(float(noise.mean() - kept.median())) < 0.05 * float(kept.std())
    assert float(noise.var() / kept.var()) == pytest.approx(NOISE_VARIANCE_FACTOR, rel=0.06)


def test_windows_cover_the_grid_and_bad_lengths_raise():
    s = window_starts(100, 16)
    assert s[0] == 0 and s[-1] == 84 and int(torch.diff(s)[:-1].max()) == 8
    with pytest.raises(ValueError, match="window length"):
        window_starts(100, 101)
    flux, ivar, norm, z = line_spectra(1)
    with pytest.raises(ValueError, match="window lengths"):
        run(flux, ivar, norm, z, windows_pix=(8, M + 1))


def test_masked_pixels_stay_masked_and_get_nan():
    flux, ivar, norm, z = line_spectra(1)
    ivar[0, LO:HI] = 0                    # everything the model reads is masked
    r = run(flux, ivar, norm, z)
    d = r.delta_chi.numpy()[0]
    assert np.isnan(d[:, LO:HI]).all()
    finite = np.isfinite(d)
    assert finite[:, :LO].all() and finite[:, HI:].all()
    assert np.all(d[finite] == 0.0)       # occlusion never wrote into the masked pixels


def test_same_seed_same_map_other_seed_other_map_batch_size_irrelevant():
    flux, ivar, norm, z = line_spectra(2)
    a = run(flux, ivar, norm, z, seed=1).delta_chi
    b = run(flux, ivar, norm, z, seed=1, batch_size=7).delta_chi
    c = run(flux, ivar, norm, z, seed=2).delta_chi
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a, c)


def test_tiny_real_models_shapes_and_scales():
    torch.manual_seed(0)
    cfg = AutoencoderConfig(**TINY_AUTOENCODER)
    ae, pred = SpectrumAutoencoder(cfg), WisePredictor(PredictorConfig())
    ae.train()
    n, m = 2, cfg.n_pix
    flux, ivar = 1 + 0.05 * torch.randn(n, m), torch.full((n, m), 400.0)
    ivar[1, :50] = 0
    r = multiscale_occlusion(ae, pred, flux, ivar, torch.ones(n), torch.tensor([0.05, 0.2]),
                             windows_pix=(512, 1024), keep_scales=True,
                             generator=torch.Generator().manual_seed(0))
    assert ae.training                                        # mode restored
    assert r.delta_chi.shape == (n, 4, m) and r.per_scale.shape == (n, 2, 4, m)
    assert r.windows_pix == (512, 1024) and r.n_windows.tolist() == [len(window_starts(m, 512))
                                                                     + len(window_starts(m, 1024))] * 2
    assert np.isnan(r.delta_chi[1, :, :50].numpy()).all() and np.isfinite(r.delta_chi[0].numpy()).all()
    expect = torch.nanmean(r.per_scale, 1).masked_fill(ivar[:, None] == 0, float("nan"))
    np.testing.assert_allclose(r.delta_chi.numpy(), expect.numpy(), rtol=1e-6)


def test_bad_inputs_raise():
    flux, ivar, norm, z = line_spectra(2)
    for kw, match in (({"flux": flux[0]}, "flux must be"), ({"ivar": ivar[:, :10]}, "ivar has shape"),
                      ({"norm": torch.tensor([1.0, 0.0])}, "norm must be > 0"),
                      ({"z": torch.tensor([0.1, float("nan")])}, "z must be finite"),
                      ({"sigma_mag": torch.ones(2, 3)}, "sigma_mag has shape")):
        args = {"flux": flux, "ivar": ivar, "norm": norm, "z": z, **kw}
        with pytest.raises(ValueError, match=match):
            run(args.pop("flux"), args.pop("ivar"), args.pop("norm"), args.pop("z"), **args)
    with pytest.raises(ValueError, match="variance head"):
        multiscale_occlusion(RangeEncoder(), LinearPredictor(variance_head=False), flux, ivar, norm, z,
                             windows_pix=WINDOWS)


# ------------------------------------------------------------------ lines, Hα split, class means
def test_line_table_vacuum_matches_air_through_morton():
    for entry in GALAXY_LINES:
        np.testing.assert_allclose(air_to_vacuum(np.array(entry.wave_air_aa)), entry.wave_vac_aa, atol=0.02)
    assert H_ALPHA_VAC_AA == pytest.approx(6564.61)


def sdss_galaxies(z, ew_aa, seed=0):
    """Flat-continuum spectra on the SDSS grid with a Gaussian Hα (σ 2 Å rest) of rest EW ``ew_aa``."""
    wave = sdss_wave_aa()
    rng = np.random.default_rng(seed)
    rest = wave[None] / (1 + np.asarray(z)[:, None])
    amp = np.asarray(ew_aa)[:, None] / (2.0 * np.sqrt(2 * np.pi))
    flux = 1 + amp * np.exp(-0.5 * ((rest - H_ALPHA_VAC_AA) / 2.0) ** 2)
    flux += 0.01 * rng.standard_normal(flux.shape)
    return wave, flux, np.full_like(flux, 1e4)


def test_halpha_equivalent_width_and_classes():
    z = np.array([0.05, 0.1, 0.3, 0.45, 0.05])
    wave, flux, ivar = sdss_galaxies(z, np.array([10.0, -2.0, 5.0, 10.0, 10.0]))
    ivar[4, :] = 0
    ew, reason = halpha_ew(wave, flux, ivar, z)
    np.testing.assert_allclose(ew[:3], [10.0, -2.0, 5.0], atol=0.15)
    assert np.isnan(ew[3]) and "outside" in reason[3] and "masked" in reason[4]
    assert list(classify_halpha(ew)) == ["star-forming", "quiescent", "star-forming", "unknown", "unknown"]


def test_class_means_align_in_the_rest_frame():
    z = np.array([0.0, 0.1, 0.2])
    wave, flux, ivar = sdss_galaxies(z, np.zeros(3))
    rest = wave[None] / (1 + z[:, None])
    dchi = np.repeat(np.where(np.abs(rest - 5000.0) < 3.0, 1.0, 0.0)[:, None], 4, axis=1)
    dchi[:, :, :10] = np.nan
    s = class_means(dchi, flux, ivar, wave, z, np.array(["quiescent", "quiescent", "star-forming"]))
    q = s.delta_chi["quiescent"][2]
    assert s.n_class == {"star-forming": 1, "quiescent": 2}
    assert abs(s.wave_rest_aa[np.nanargmax(q)] - 5000.0) < 3.0 and np.nanmax(q) == pytest.approx(1.0)
    at = np.argmin(np.abs(s.wave_rest_aa - 5000.0))
    assert s.n_spectra["quiescent"][0, at] == 2
    assert s.wave_rest_aa[0] == pytest.approx(wave[0] / 1.2) and s.wave_rest_aa[-1] <= wave[-1]


def test_figure_has_units_and_lines():
    z = np.array([0.05, 0.1])
    wave, flux, ivar = sdss_galaxies(z, np.array([10.0, 0.0]))
    dchi = np.broadcast_to(np.sin(wave / 300.0), (2, 4, len(wave)))     # smooth: quick to draw
    s = class_means(dchi, flux, ivar, wave, z, classify_halpha(halpha_ew(wave, flux, ivar, z)[0]))
    fig = plot_occlusion(s, band=2)
    axes = fig.get_axes()
    assert "Å" in axes[1].get_xlabel() and all(ax.get_ylabel() for ax in axes)
    assert "W3" in axes[0].get_ylabel() and "σ" in axes[0].get_ylabel()
    labels = {t.get_text() for ax in axes for t in ax.texts}
    assert {"Hα", "Hβ", "[O II]", "[O III]", "Ca II H&K", "Sr II", "Fe I", "Mg I b", "Na D"} <= labels
    with pytest.raises(ValueError, match="band"):
        plot_occlusion(s, band=4)


# ------------------------------------------------------------------ the CLI step
def write_table(path, n: int = 4) -> None:
    """An `ir simulate`-like table: SDSS grid, two Hα emitters and two without, WISE σ."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sedinfer.spectra.instrument import sdss_instrument
    from sedinfer.spectra.io import _instrument_meta

    z = np.linspace(0.05, 0.15, n)
    wave, flux, ivar = sdss_galaxies(z, np.array([20.0, 0.0] * (n // 2)))
    m = len(wave)

    def col(a):
        return pa.FixedSizeListArray.from_arrays(pa.array(a.astype(np.float32).ravel()), m)

    cols = {"id": [f"g{i}" for i in range(n)], "z": z, "z_err": np.zeros(n), "flux_flam_1e17": col(flux),
            "ivar_flam_1e17": col(ivar), "norm_flam_1e17": np.ones(n), "ok": np.ones(n, bool),
            "reason": [""] * n}
    for b in range(4):
        sig = np.full(n, 0.05)
        sig[0] = np.nan if b == 3 else sig[0]
        cols[f"w{b + 1}mpro"] = np.full(n, 12.0 + b)
        cols[f"w{b + 1}sigmpro"] = pa.array(sig, mask=~np.isfinite(sig))
    meta = {"format": "sedinfer-ir-mock", "format_version": 1, "wave_obs_aa": wave.tolist(),
            "instrument": _instrument_meta(sdss_instrument())}
    pq.write_table(pa.table(cols).replace_schema_metadata({b"sedinfer": json.dumps(meta).encode()}), path)


def test_ir_occlusion_step_table_figure_and_missing_models(tmp_path, capsys):
    import pyarrow.parquet as pq

    from sedinfer.errors import ParameterError
    from sedinfer.spectra.cli_occlusion import add_occlusion_arguments, run_occlusion

    torch.manual_seed(0)
    models = tmp_path / "models"
    SpectrumAutoencoder(AutoencoderConfig(**TINY_AUTOENCODER)).save(models / "autoencoder.pt")
    WisePredictor().save(models / "predictor.pt")
    table = tmp_path / "mock.parquet"
    write_table(table)
    parser = add_occlusion_arguments(argparse.ArgumentParser())
    out, fig = tmp_path / "occ.parquet", tmp_path / "occ.png"
    argv = [str(table), "--models", str(models), "--out", str(out), "--figure", str(fig),
            "--windows", "512,1024", "--max-spectra", "3", "--seed", "1"]
    assert run_occlusion(parser.parse_args(argv)) == out
    got = pq.read_table(out)
    info = json.loads(got.schema.metadata[b"sedinfer"])
    frame = got.to_pandas()
    assert list(frame["id"]) == ["g0", "g1", "g2"] and frame["ok"].all()
    assert list(frame["class"]) == ["star-forming", "quiescent", "star-forming"]
    assert info["scale"] == "observed" and info["windows_pix"] == [512, 1024] and info["n_input"] == 4
    dchi = np.stack(frame["dchi_w3"].to_numpy())
    assert dchi.shape == (3, 3921) and np.isfinite(dchi).all()
    assert np.isnan(np.stack(frame["dchi_w4"].to_numpy())[0]).all()           # W4 non-detection
    np.testing.assert_allclose(frame["sigma_w1"], 0.05)
    assert 10_000 < fig.stat().st_size < 300_000             # saved by atomic.save_figure
    # same seed, same maps
    again = tmp_path / "again.parquet"
    run_occlusion(parser.parse_args([*argv[:4], str(again), *argv[7:]]))
    np.testing.assert_array_equal(np.stack(pq.read_table(again).to_pandas()["dchi_w3"].to_numpy()), dchi)
    with pytest.raises(ParameterError, match="already exists"):
        run_occlusion(parser.parse_args(argv))
    with pytest.raises(ParameterError, match="autoencoder.pt"):
        run_occlusion(parser.parse_args([str(table), "--models", str(tmp_path / "none"),
                                         "--out", str(tmp_path / "x.parquet")]))
    with pytest.raises(SystemExit):
        parser.parse_args([str(table), "--out", "x.parquet", "--windows", "a,b"])
    capsys.readouterr()
