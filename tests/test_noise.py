"""Tests of sedinfer.noise: fits with known answers, noise statistics, redraw, autograd, I/O."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

import sedinfer.noise as noise
from sedinfer.errors import CatalogError, ParameterError
from sedinfer.noise import (
    DepthNoiseModel,
    SigmaNoiseModel,
    SNRNoiseModel,
    anti_annealing_factor,
    default_noise_model,
)

BANDS = ("sdss_g0", "sdss_r0", "wise_w1")
DEPTHS = (22.2, 22.2, 19.6)


def mag_to_flux(mag):
    return 10.0 ** (-0.4 * np.asarray(mag, dtype=np.float64))


def make_models() -> dict[str, noise.NoiseModel]:
    knots = [[16.0, 20.0, 24.0]] * 3
    return {
        "snr": SNRNoiseModel(BANDS, knots, [[100.0, 20.0, 2.0]] * 3, [[10.0, 3.0, 1.0]] * 3),
        "sigma": SigmaNoiseModel(BANDS, knots, [[-8.5, -9.0, -9.3]] * 3, [[0.1, 0.1, 0.2]] * 3),
        "depth": DepthNoiseModel(BANDS, DEPTHS, floor=0.02, snr_scatter=0.1),
    }


MODELS = make_models()
KINDS = sorted(MODELS)


def bright_flux(n: int, dtype=torch.float64) -> torch.Tensor:
    """(n, 3) fluxes at 17-19 mag: SNR >> 1 for every model, so no redraw happens."""
    mags = torch.linspace(17.0, 19.0, n, dtype=dtype)[:, None].expand(n, 3)
    return 10.0 ** (-0.4 * mags)


@pytest.fixture(scope="module")
def depth_catalog():
    """Catalog fluxes and errors drawn from a known DepthNoiseModel."""
    truth = DepthNoiseModel(BANDS, DEPTHS, floor=0.01, snr_scatter=0.1)
    gen = torch.Generator().manual_seed(1)
    mags = 15.0 + 7.0 * torch.rand(60_000, 3, generator=gen, dtype=torch.float64)
    flux = 10.0 ** (-0.4 * mags)
    sigma = truth.sample_sigma(flux, generator=gen)
    return truth, flux.numpy(), sigma.numpy()


# ----------------------------------------------------------------------------- fitting
def test_snr_fit_recovers_depth_model_median(depth_catalog):
    truth, flux, sigma = depth_catalog
    edges = np.arange(15.0, 22.01, 0.25)
    model = SNRNoiseModel.fit(flux, sigma, BANDS, mag_bins=edges)
    snr0 = mag_to_flux(model.mag_knots.numpy()) / truth.nominal_sigma(
        torch.as_tensor(mag_to_flux(model.mag_knots.numpy().T))).numpy().T
    np.testing.assert_allclose(model.median.numpy(), snr0, rtol=0.03)
    # floor-limited bright end: SNR0 ~ 1/floor = 100 with 10 % relative scatter
    np.testing.assert_allclose(model.scatter[:, 0].numpy(), 0.1 * snr0[:, 0], rtol=0.1)
    assert all(info["n_excluded"] == 0 for info in model.fit_info.values())


def test_sigma_fit_recovers_depth_model(depth_catalog):
    truth, flux, sigma = depth_catalog
    model = SigmaNoiseModel.fit(flux, sigma, BANDS, mag_bins=np.arange(15.0, 22.01, 0.25))
    sigma0 = truth.nominal_sigma(torch.as_tensor(mag_to_flux(model.mag_knots.numpy().T))).numpy().T
    np.testing.assert_allclose(model.median.numpy(), np.log10(sigma0), atol=0.02)


def test_fit_default_bins_and_flat_extrapolation(depth_catalog):
    _, flux, sigma = depth_catalog
    model = SNRNoiseModel.fit(flux, sigma, BANDS)
    assert model.mag_knots.shape == (3, 20)
    faint = torch.full((1, 3), 1e-12, dtype=torch.float64)
    fainter = faint / 100
    med_faint, _ = model._moments(faint)
    med_fainter, _ = model._moments(fainter)
    torch.testing.assert_close(med_faint, med_fainter)
    torch.testing.assert_close(med_faint[0], model.median[:, -1])


def test_fit_excludes_bad_rows_and_counts_them(depth_catalog):
    _, flux, sigma = depth_catalog
    flux, sigma = flux[:5000].copy(), sigma[:5000].copy()
    flux[:10, 1] = np.nan
    flux[10:13, 1] = 0.0
    sigma[13:20, 1] = -1.0
    model = SNRNoiseModel.fit(flux, sigma, BANDS, mag_bins=8)
    assert model.fit_info["sdss_r0"]["n_excluded"] == 20
    assert model.fit_info["sdss_g0"]["n_excluded"] == 0
    assert np.isfinite(model.median.numpy()).all()


def test_fit_strict_rejects_zero_errors_naming_the_band(depth_catalog):
    _, flux, sigma = depth_catalog
    sigma = sigma[:2000].copy()
    sigma[5, 2] = 0.0
    with pytest.raises(CatalogError, match="wise_w1"):
        SNRNoiseModel.fit(flux[:2000], sigma, BANDS, strict=True)


@pytest.mark.parametrize("cls", [SNRNoiseModel, SigmaNoiseModel])
def test_fit_band_without_usable_rows_raises(cls, depth_catalog):
    _, flux, sigma = depth_catalog
    sigma = sigma[:2000].copy()
    sigma[:, 1] = 0.0
    with pytest.raises(CatalogError, match="sdss_r0"):
        cls.fit(flux[:2000], sigma, BANDS)


def test_fit_wrong_band_count_raises(depth_catalog):
    _, flux, sigma = depth_catalog
    with pytest.raises(CatalogError, match="sdss_g0"):
        SNRNoiseModel.fit(flux[:, :2], sigma[:, :2], BANDS)
    with pytest.raises(CatalogError, match="flux_err"):
        SigmaNoiseModel.fit(flux, sigma[:10], BANDS)


# ----------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("kind", KINDS)
def test_noise_is_gaussian_with_the_drawn_sigma(kind):
    flux = bright_flux(100_000)
    noisy, sigma = MODELS[kind].add_noise(flux, generator=torch.Generator().manual_seed(2))
    pull = ((noisy - flux) / sigma).numpy()
    for b in range(3):
        x = pull[:, b]
        assert abs(x.mean()) < 0.015
        assert abs(x.std() - 1.0) < 0.01
        chi2 = float(np.sum(x**2))
        assert stats.chi2.sf(chi2, x.size) > 1e-3 and stats.chi2.cdf(chi2, x.size) > 1e-3
        assert stats.kstest(x, "norm").pvalue > 1e-3


def test_depth_noise_std_matches_sky_plus_floor():
    model = DepthNoiseModel(BANDS, DEPTHS, floor=0.05, snr_scatter=0.0)
    flux = torch.as_tensor(mag_to_flux([21.0, 19.0, 18.0]))[None].expand(100_000, 3)
    noisy, sigma = model.add_noise(flux, generator=torch.Generator().manual_seed(3))
    expected = np.hypot(mag_to_flux(DEPTHS) / 5, 0.05 * flux[0].numpy())
    np.testing.assert_allclose(sigma[0].numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose((noisy - flux).std(0).numpy(), expected, rtol=0.01)


def test_depth_snr_is_five_at_the_limit():
    model = DepthNoiseModel(BANDS, DEPTHS, floor=0.0, snr_scatter=0.0)
    flux = torch.as_tensor(mag_to_flux(DEPTHS))[None]
    torch.testing.assert_close(flux / model.sample_sigma(flux), torch.full((1, 3), 5.0, dtype=torch.float64))


def test_snr_draws_follow_interpolated_median_and_scatter():
    model = MODELS["snr"]
    flux = torch.as_tensor(mag_to_flux([18.0, 22.0, 30.0]))[None].expand(100_000, 3)
    snr = (flux / model.sample_sigma(flux, generator=torch.Generator().manual_seed(4))).numpy()
    # 18 mag: halfway 100 -> 20 and 10 -> 3; 22: halfway 20 -> 2 and 3 -> 1; 30: flat at 2 and 1
    expected_mean, expected_std = np.array([60.0, 11.0, 2.0]), np.array([6.5, 2.0, 1.0])
    np.testing.assert_allclose(np.median(snr[:, :2], axis=0), expected_mean[:2], rtol=0.01)
    np.testing.assert_allclose(snr[:, :2].std(axis=0), expected_std[:2], rtol=0.02)
    # beyond the knots the SNR is truncated at snr_min, so sigma <= f / snr_min everywhere
    assert snr[:, 2].min() >= model.snr_min - 1e-12
    assert np.isclose(np.median(snr[:, 2]), 2.0, rtol=0.02)


def test_sigma_draws_follow_log_normal():
    model = MODELS["sigma"]
    flux = torch.as_tensor(mag_to_flux([20.0, 22.0, 26.0]))[None].expand(100_000, 3)
    log_sigma = torch.log10(model.sample_sigma(flux, generator=torch.Generator().manual_seed(5))).numpy()
    np.testing.assert_allclose(log_sigma.mean(0), [-9.0, -9.15, -9.3], atol=0.005)
    np.testing.assert_allclose(log_sigma.std(0), [0.1, 0.15, 0.2], rtol=0.02)


@pytest.mark.parametrize("kind", KINDS)
def test_redraw_makes_all_fluxes_non_negative(kind):
    model = MODELS[kind]
    flux = torch.full((20_000, 3), 1e-11, dtype=torch.float64)  # far below every depth / knot
    noisy, _, info = model.add_noise(flux, generator=torch.Generator().manual_seed(6), return_stats=True)
    assert (noisy >= 0).all()
    assert info.total_kept_negative == 0
    raw, _ = model.add_noise(flux, generator=torch.Generator().manual_seed(6), redraw_negative=False)
    assert sum(info.n_redrawn.values()) == int((raw < 0).sum()) > 0


def test_redraw_budget_exhausted_keeps_and_reports_negatives():
    model = MODELS["depth"]
    flux = torch.zeros(20_000, 3, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="still negative"):
        noisy, _, info = model.add_noise(flux, generator=torch.Generator().manual_seed(7), max_redraws=1,
                                         return_stats=True)
    assert info.rounds == 1
    assert info.total_kept_negative == int((noisy < 0).sum()) > 0
    assert set(info.n_kept_negative) == set(BANDS)


@pytest.mark.parametrize("kind", KINDS)
def test_scale_divides_sigma(kind):
    model, flux, r = MODELS[kind], bright_flux(1000), 7.5
    s1 = model.sample_sigma(flux, generator=torch.Generator().manual_seed(8))
    sr = model.sample_sigma(flux, generator=torch.Generator().manual_seed(8), scale=r)
    torch.testing.assert_close(sr * r, s1)
    n1, _ = model.add_noise(flux, generator=torch.Generator().manual_seed(9))
    nr, _ = model.add_noise(flux, generator=torch.Generator().manual_seed(9), scale=r)
    torch.testing.assert_close((nr - flux) * r, n1 - flux)
    with pytest.raises(ParameterError, match="scale"):
        model.sample_sigma(flux, scale=0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_flow_through_add_noise(kind):
    model = MODELS[kind]
    flux = bright_flux(6).clone().requires_grad_(True)

    def noisy(f: torch.Tensor) -> torch.Tensor:
        return model.add_noise(f, generator=torch.Generator().manual_seed(10))[0]

    noisy(flux).sum().backward()
    assert torch.isfinite(flux.grad).all() and (flux.grad != 0).all()
    # d noisy / d f against finite differences, in units where the fluxes are O(1)
    unit = 1e-7
    assert torch.autograd.gradcheck(lambda g: noisy(g * unit) / unit, (flux.detach() / unit).requires_grad_(),
                                    eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_generator_reproducibility(kind):
    model, flux = MODELS[kind], torch.full((500, 3), 1e-9, dtype=torch.float64)
    a = model.add_noise(flux, generator=torch.Generator().manual_seed(11))
    b = model.add_noise(flux, generator=torch.Generator().manual_seed(11))
    c = model.add_noise(flux, generator=torch.Generator().manual_seed(12))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a[0], c[0])


def test_input_types_and_shapes():
    model = MODELS["depth"]
    out = model.sample_sigma(np.full((4, 3), 1e-8))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (4, 3)
    noisy, sigma = model.add_noise(torch.full((2, 5, 3), 1e-8, dtype=torch.float32))
    assert noisy.shape == sigma.shape == (2, 5, 3) and noisy.dtype == torch.float32


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kind", KINDS)
def test_bad_flux_raises_naming_the_band(kind):
    model, flux = MODELS[kind], bright_flux(4)
    flux[2, 1] = float("nan")
    with pytest.raises(ParameterError, match="sdss_r0"):
        model.add_noise(flux)
    flux[2, 1] = -1e-9
    with pytest.raises(ParameterError, match="sdss_r0"):
        model.sample_sigma(flux)
    with pytest.raises(ParameterError, match="wise_w1"):
        model.add_noise(bright_flux(4)[:, :2])


def test_bad_constructor_arguments_raise():
    with pytest.raises(ParameterError, match="wise_w1"):
        DepthNoiseModel(BANDS, {"sdss_g0": 22.0, "sdss_r0": 22.0})
    with pytest.raises(ParameterError, match="sdss_r0"):
        SNRNoiseModel(BANDS, [[16.0, 20.0]] * 3, [[10.0, 1.0]] * 3, [[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    with pytest.raises(ParameterError, match="sdss_g0.* strictly increasing"):
        SigmaNoiseModel(BANDS, [[16.0, 16.0]] * 3, [[-9.0, -9.0]] * 3, [[0.1, 0.1]] * 3)


# ----------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, tmp_path, depth_catalog):
    model = MODELS[kind]
    if kind == "snr":  # a fitted model also carries fit_info
        _, flux, sigma = depth_catalog
        model = SNRNoiseModel.fit(flux, sigma, BANDS, mag_bins=6, snr_min=0.5)
    path = tmp_path / "noise.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["kind"] == kind and data["version"] == 1 and data["bands"] == list(BANDS)
    back = noise.load(path)
    assert type(back) is type(model) and back == model
    assert type(model).load(path) == model
    flux = bright_flux(10)
    torch.testing.assert_close(back.sample_sigma(flux, generator=torch.Generator().manual_seed(13)),
                               model.sample_sigma(flux, generator=torch.Generator().manual_seed(13)))
    assert type(model).__name__ in repr(model) and "wise_w1" in repr(model)


def test_load_rejects_wrong_kind_or_version(tmp_path):
    path = tmp_path / "noise.json"
    MODELS["depth"].save(path)
    with pytest.raises(ParameterError, match="expected 'snr'"):
        SNRNoiseModel.load(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ParameterError, match="version"):
        noise.load(path)
    path.write_text(json.dumps({**data, "kind": "mystery"}))
    with pytest.raises(ParameterError, match="mystery"):
        noise.load(path)
    path.write_text(json.dumps({**data, "colour": 1}))
    with pytest.raises(ParameterError, match="colour"):
        noise.load(path)


# ----------------------------------------------------------------------------- defaults, schedule
def test_default_noise_model_uses_published_depths():
    model = default_noise_model(["SDSS_U", "sdss_z", "wise_w4", "twomass_Ks", "galex_NUV", "hsc_i",
                                 "lsst_r", "decam_z"])
    np.testing.assert_allclose(model.mag_lim_5sigma.numpy(), [22.0, 20.5, 14.6, 16.9, 20.8, 25.9, 27.5, 22.5])
    assert model.bands[0] == "SDSS_U"
    assert all(d.source for d in noise.DEFAULT_DEPTHS.values())


def test_default_noise_model_unknown_band_lists_known_ones():
    with pytest.raises(ParameterError, match="DepthNoiseModel") as err:
        default_noise_model(["sdss_g0", "jwst_f200w"])
    assert "jwst_f200w" in str(err.value) and "wise_w1" in str(err.value)


def test_anti_annealing_factor():
    assert anti_annealing_factor(0, 800) == pytest.approx(31.0)
    assert anti_annealing_factor(800, 800) == pytest.approx(1.0 + 30.0 * np.exp(-12.0))
    assert anti_annealing_factor(100, 800, r0=0.0) == 1.0
    values = [anti_annealing_factor(t, 800) for t in range(0, 801, 100)]
    assert all(a > b >= 1.0 for a, b in zip(values, values[1:], strict=False))
    with pytest.raises(ParameterError):
        anti_annealing_factor(1, 0)


# ----------------------------------------------------------------------------- error range and floor
def test_scaled_noise_spans_a_log_uniform_factor_around_the_base():
    base = DepthNoiseModel(BANDS, DEPTHS, floor=0.02, snr_scatter=0.0)
    model = noise.ScaledNoiseModel(BANDS, base, (1 / 3, 3.0))
    flux = bright_flux(50_000)
    gen = torch.Generator().manual_seed(20)
    noisy, sigma = model.add_noise(flux, generator=gen)
    log_u = torch.log(sigma / base.nominal_sigma(flux)).numpy()
    # log u uniform on [-ln 3, ln 3]: bounds, mean 0, std ln3/sqrt(3); bands independent
    assert log_u.min() >= -np.log(3) - 1e-9 and log_u.max() <= np.log(3) + 1e-9
    np.testing.assert_allclose(log_u.mean(0), 0.0, atol=0.01)
    np.testing.assert_allclose(log_u.std(0), np.log(3) / np.sqrt(3), rtol=0.01)
    assert abs(np.corrcoef(log_u[:, 0], log_u[:, 1])[0, 1]) < 0.02
    pull = ((noisy - flux) / sigma).numpy()
    np.testing.assert_allclose(pull.mean(0), 0.0, atol=0.015)
    np.testing.assert_allclose(pull.std(0), 1.0, atol=0.01)
    with pytest.raises(ParameterError, match="redraw_negative"):
        model.add_noise(flux, redraw_negative=True)
    with pytest.raises(ParameterError, match="factor_range"):
        noise.ScaledNoiseModel(BANDS, base, (3.0, 1.0))


def test_scaled_noise_round_trips_and_keeps_negative_fluxes(tmp_path):
    model = noise.ScaledNoiseModel(BANDS, MODELS["depth"].to_dict(), (0.5, 2.0))
    model.save(tmp_path / "scaled.json")
    again = noise.load(tmp_path / "scaled.json")
    assert again == model and again.base == MODELS["depth"]
    flux = torch.full((20_000, 3), 1e-11, dtype=torch.float64)
    noisy, _, info = model.add_noise(flux, generator=torch.Generator().manual_seed(21), return_stats=True)
    assert info.total_kept_negative == int((noisy < 0).sum()) > 5000


@pytest.mark.parametrize("kind", KINDS)
def test_sigma_floor_is_the_lower_quantile_of_the_draws(kind):
    model = MODELS[kind]
    flux = torch.as_tensor(mag_to_flux([18.0, 21.0, 19.0]))[None].expand(200_000, 3)
    sigma = model.sample_sigma(flux, generator=torch.Generator().manual_seed(22))
    floor = model.sigma_floor(flux[:1], quantile=0.01)
    below = (sigma < floor).double().mean(0).numpy()
    np.testing.assert_allclose(below, 0.01, atol=0.002)


@pytest.mark.parametrize("quantile", [0.001, 0.01, 0.15])
def test_scaled_sigma_floor_is_the_lower_quantile_of_the_draws(quantile):
    base = MODELS["depth"]
    model = noise.ScaledNoiseModel(BANDS, base, (0.25, 4.0))
    flux = torch.as_tensor(mag_to_flux([18.0, 21.0, 23.5]))[None].expand(400_000, 3)
    sigma = model.sample_sigma(flux, generator=torch.Generator().manual_seed(23))
    floor = model.sigma_floor(flux[:1], quantile=quantile)
    below = (sigma < floor).double().mean(0).numpy()
    np.testing.assert_allclose(below, quantile, atol=max(3e-4, 0.03 * quantile))
    # never below the base floor times u_lo (the old, too low, rule)
    assert (floor >= 0.25 * base.sigma_floor(flux[:1], quantile=quantile) * (1 - 1e-9)).all()
    with pytest.raises(ParameterError, match="quantile"):
        model.sigma_floor(flux[:1], quantile=0.6)
