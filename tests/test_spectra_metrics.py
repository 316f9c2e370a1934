"""WISE prediction metrics on toy data with known answers."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from scipy import stats

from sedinfer.spectra.metrics import (
    chi,
    chi2_n,
    phat,
    phat_data_baseline,
    phat_pit,
    plot_chi_hist,
    plot_color_color,
    plot_pp,
    pp_curve,
    summary_table,
)

matplotlib.use("Agg")


def calibrated(n: int = 20000, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(8, 15, (n, 4))
    sigma = rng.uniform(0.02, 0.3, (n, 4))
    mag = truth + sigma * rng.standard_normal((n, 4))
    sigma[rng.uniform(size=n) < 0.3, 3] = np.nan  # W4 non-detections
    return truth, mag, sigma, rng


def test_chi2_n_is_one_for_calibrated_predictions_and_skips_nondetections():
    truth, mag, sigma, _ = calibrated()
    c2 = chi2_n(mag, sigma, truth)
    assert np.allclose(c2, 1.0, atol=0.04)
    assert np.isnan(chi(mag, sigma, truth)[np.isnan(sigma)]).all()
    # a 2σ bias: χ²_N = 1 + 4
    assert chi2_n(mag, sigma, truth + 2 * np.nan_to_num(sigma))[0] == pytest.approx(5.0, rel=0.05)


def test_phat_of_delta_predictions_matches_the_data_baseline():
    truth, mag, sigma, rng = calibrated()
    p = phat(mag, sigma, truth)
    base = phat_data_baseline(mag, sigma, rng=rng, n_samples=200)
    assert np.allclose(np.nanmean(p, 0), 1 / math.sqrt(2), atol=0.01)
    assert np.allclose(np.nanmean(base, 0), 1 / math.sqrt(2), atol=0.002)
    u = phat_pit(p)
    for b in range(4):
        ub = u[:, b][np.isfinite(u[:, b])]
        assert stats.kstest(ub, "uniform").pvalue > 0.01
    fr, fm = pp_curve(p[:, 0])
    assert np.max(np.abs(fr - fm)) < 0.02
    single = phat_data_baseline(mag, sigma, rng=rng)
    fr2, fm2 = pp_curve(p[:, 1], single[:, 1])
    assert np.max(np.abs(fr2 - fm2)) < 0.03


def test_monte_carlo_phat_matches_the_closed_form():
    truth, mag, sigma, rng = calibrated(2000)
    s = np.full_like(mag, 0.1)
    mc = phat(mag, sigma, truth, s, n_samples=4000, rng=rng)
    exact = phat(mag, sigma, truth, s, exact=True)
    assert np.nanmax(np.abs(mc - exact)) < 0.03
    assert np.nanmean(exact) < 1 / math.sqrt(2)  # a spread prediction scores lower
    # an overconfident, biased model scores far below the data
    bad = phat(mag, sigma, truth + 5 * np.nan_to_num(sigma))
    assert np.nanmean(bad) < 0.01


def test_summary_and_figures_have_units(tmp_path):
    truth, mag, sigma, rng = calibrated(500)
    tab = summary_table(mag, sigma, truth, rng=rng)
    assert len(tab["chi2_n"]) == 4 and tab["detected_fraction"][0] == 1.0
    p = phat(mag, sigma, truth)
    figs = [
        plot_pp({"model": pp_curve(p[:, 0])}, "W1"),
        plot_chi_hist({"model": chi(mag, sigma, truth)[:, 0]}, "W1"),
        plot_color_color(mag, truth, np.isfinite(sigma)),
    ]
    for fig in figs:
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel()
        assert all("(" in label for label in (ax.get_xlabel(), ax.get_ylabel()))
        fig.savefig(tmp_path / "f.png")
