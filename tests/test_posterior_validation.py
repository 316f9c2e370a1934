"""Calibration toolkit (p-p, SBC, TARP) on a Gaussian toy with an exact conjugate posterior."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from sedinfer.errors import ParameterError
from sedinfer.posterior import validation as v
from sedinfer.posterior import validation_plots as vp
from sedinfer.posterior.calibration import calibration_report

M, S, D = 1000, 200, 3
NOISE = 0.5  # observation noise: x = theta + NOISE * eps, theta ~ N(0, 1)
BOUNDS = (np.full(D, -4.0), np.full(D, 4.0))
NAMES = ["a", "b", "c"]


def toy(seed: int = 1, shrink: float = 1.0, shift: float = 0.0, m: int = M, s: int = S):
    """Truths and draws of the exact posterior N(mu, sd^2), optionally too narrow or shifted by sd."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((m, D))
    x = theta + NOISE * rng.standard_normal((m, D))
    var = 1.0 / (1.0 + NOISE**-2)
    mu, sd = var * x / NOISE**2, np.sqrt(var)
    samples = mu[:, None, :] + shift * sd + (sd / shrink) * rng.standard_normal((m, s, D))
    return samples, theta


@pytest.fixture(scope="module")
def calibrated():
    return toy(1)


@pytest.fixture(scope="module")
def overconfident():
    return toy(2, shrink=2.0)


@pytest.fixture(scope="module")
def biased():
    return toy(3, shift=1.0)


def test_ranks_shape_range_and_ties(calibrated):
    samples, truth = calibrated
    ranks = v.sbc_ranks(samples, truth, seed=0)
    assert ranks.shape == (M, D) and np.issubdtype(ranks.dtype, np.integer)
    assert ranks.min() >= 0 and ranks.max() <= S
    assert np.array_equal(ranks, (samples < truth[:, None, :]).sum(axis=1))  # no ties in continuous draws
    # every draw ties with the truth: ranks are spread uniformly over 0..S by the random tie-break
    tied = v.sbc_ranks(np.zeros((4000, 9, 1)), np.zeros((4000, 1)), seed=5)
    assert tied.min() == 0 and tied.max() == 9
    assert stats.chisquare(np.bincount(tied[:, 0], minlength=10)).pvalue > 0.01
    assert np.array_equal(tied, v.sbc_ranks(np.zeros((4000, 9, 1)), np.zeros((4000, 1)), seed=5))


def test_torch_tensors_accepted(calibrated):
    torch = pytest.importorskip("torch")
    samples, truth = calibrated
    got = v.sbc_ranks(torch.from_numpy(samples[:50]).float(), torch.from_numpy(truth[:50]).float())
    assert got.shape == (50, D)


def test_bin_edges():
    equal = v.sbc_bin_edges(199, 1000)  # 200 ranks, 50 divides 200
    assert equal.size - 1 == 50 and set(np.diff(equal)) == {4}
    uneven = v.sbc_bin_edges(200, 1000)  # 201 = 3 * 67: no divisor in [25, 50]
    assert uneven[0] == 0 and uneven[-1] == 201 and np.ptp(np.diff(uneven)) <= 1
    assert 1000 / (uneven.size - 1) >= 20
    assert v.sbc_bin_edges(200, 1000, n_bins=3).tolist() == [0, 67, 134, 201]
    with pytest.raises(ParameterError, match="n_bins"):
        v.sbc_bin_edges(9, 1000, n_bins=11)


def test_holm_adjustment():
    got = v.holm([0.01, 0.04, 0.03, 0.5])
    assert np.allclose(got, [0.04, 0.09, 0.09, 0.5])


def test_uniformity_test_has_nominal_size():
    """Exactly uniform ranks (uneven bins, S = 200) give uniform p-values."""
    ranks = np.random.default_rng(7).integers(0, S + 1, size=(M, 300))
    p = np.asarray(v.sbc_uniformity(ranks, S)["p_values"])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.0 <= (p < 0.05).mean() <= 0.1


def test_calibrated_toy_passes(calibrated):
    samples, truth = calibrated
    sbc = v.sbc_uniformity(v.sbc_ranks(samples, truth), S)
    assert sbc["n_bins"] == 50 and sbc["alpha"] == 0.01
    assert not any(sbc["rejected"]) and min(sbc["p_corrected"]) > 0.01
    levels, cov = v.pp_coverage(samples, truth)
    assert cov.shape == (D, levels.size) and cov[:, 0].max() == 0 and cov[:, -1].min() == 1
    assert v.max_pp_deviation(levels, cov).max() < 0.05  # 99 % Kolmogorov band for M = 1000: 0.052
    levels, ecp = v.tarp_coverage(samples, truth, BOUNDS, n_refs=10, seed=0)
    assert v.tarp_max_deviation(levels, ecp) <= 0.03


@pytest.mark.parametrize("case", ["overconfident", "biased"])
def test_miscalibrated_toys_detected(case, request):
    samples, truth = request.getfixturevalue(case)
    sbc = v.sbc_uniformity(v.sbc_ranks(samples, truth), S)
    assert all(sbc["rejected"]) and max(sbc["p_corrected"]) < 1e-6
    levels, cov = v.pp_coverage(samples, truth)
    assert v.max_pp_deviation(levels, cov).min() > 0.15
    levels, ecp = v.tarp_coverage(samples, truth, BOUNDS, seed=0)
    assert v.tarp_max_deviation(levels, ecp) > 0.08
    if case == "overconfident":  # truths fall outside too often: coverage below the diagonal
        assert (cov[:, 50] < 0.35).all() and ecp[90] < 0.8


def test_tarp_bootstrap_matches_binomial_noise(calibrated):
    samples, truth = calibrated
    levels, ecp = v.tarp_coverage(samples, truth, BOUNDS, seed=3)
    lv, mean, std = v.tarp_bootstrap(samples, truth, BOUNDS, seed=3, n_boot=200)
    assert np.array_equal(lv, levels) and np.abs(mean - ecp).max() < 0.01
    expected = np.sqrt(ecp[50] * (1 - ecp[50]) / M)
    assert 0.7 * expected < std[50] < 1.3 * expected
    assert std[0] == 0.0


def test_bad_inputs_raise(calibrated):
    samples, truth = calibrated
    with pytest.raises(ParameterError, match="truth must have shape"):
        v.sbc_ranks(samples, truth[:, :2])
    with pytest.raises(ParameterError, match="samples must have shape"):
        v.sbc_ranks(samples[0], truth)
    bad = samples[:10].copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ParameterError, match=r"samples contains non-finite.*\(3, 4, 1\)"):
        v.pp_coverage(bad, truth[:10])
    with pytest.raises(ParameterError, match="bounds"):
        v.tarp_coverage(samples, truth, (BOUNDS[1], BOUNDS[0]))
    with pytest.raises(ParameterError, match="levels"):
        v.pp_coverage(samples, truth, levels=[0.5, 1.5])
    with pytest.raises(ParameterError, match="ranks"):
        v.sbc_uniformity(np.full((10, 2), S + 1), S)


def test_report_writes_figures_and_json(tmp_path, calibrated, overconfident):
    samples, truth = calibrated
    out = tmp_path / "cal"
    report = calibration_report(samples, truth, NAMES, BOUNDS, out, seed=0)
    assert sorted(p.name for p in out.iterdir()) == ["calibration.json", "pp.png", "sbc.png", "tarp.png"]
    for name in ("pp.png", "sbc.png", "tarp.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = json.loads((out / "calibration.json").read_text())
    assert loaded == report
    assert loaded["n_simulations"] == M and loaded["n_samples"] == S
    assert set(loaded["sbc"]["p_values"]) == set(NAMES)
    assert loaded["sbc"]["rejected"] == dict.fromkeys(NAMES, False)
    assert len(loaded["tarp"]["levels"]) == len(loaded["tarp"]["ecp"]) == len(loaded["tarp"]["ecp_std"])
    assert loaded["tarp"]["max_abs_deviation"] <= 0.03
    assert all(loaded["passes"].values()) and len(loaded["passes"]) == 2

    bad = calibration_report(*overconfident, NAMES, BOUNDS, tmp_path / "over", seed=0)
    assert not any(bad["passes"].values())
    assert all(bad["sbc"]["rejected"].values()) and bad["tarp"]["max_abs_deviation"] > 0.1
    with pytest.raises(ParameterError, match="names"):
        calibration_report(samples, truth, NAMES[:2], BOUNDS, tmp_path / "x")


def test_plot_functions_return_paths(tmp_path, calibrated):
    samples, truth = calibrated
    levels, cov = v.pp_coverage(samples, truth)
    assert vp.plot_pp(levels, cov, NAMES, tmp_path / "a" / "pp.png").is_file()
    ranks = v.sbc_ranks(samples, truth)
    assert vp.plot_sbc_histograms(ranks, S, NAMES, tmp_path / "sbc.png", n_bins=20).is_file()
    lv, mean, std = v.tarp_bootstrap(samples, truth, BOUNDS, n_boot=20)
    assert vp.plot_tarp(lv, mean, tmp_path / "tarp.png", ecp_std=std).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "sbc.png", "tarp.png"]
