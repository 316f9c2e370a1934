"""Known-answer tests of sedinfer.posterior.photoz_metrics, and a slow end-to-end smoke test of
scripts/posterior_misspecification.py."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from sedinfer.posterior.photoz_metrics import (
    NMAD_FACTOR,
    OUTLIER_CUT,
    interval_agreement,
    nmad,
    photoz_delta,
    photoz_metrics,
    photoz_metrics_by_bin,
    recovery_stats,
)

ROOT = Path(__file__).resolve().parents[1]


def test_nmad_of_a_gaussian_is_its_sigma():
    x = np.random.default_rng(0).normal(3.0, 0.25, 200_000)
    assert nmad(x) == pytest.approx(0.25, rel=0.01)
    assert nmad(x + 10.0) == pytest.approx(nmad(x))          # shift invariant
    assert nmad([1.0, 2.0, 3.0]) == pytest.approx(NMAD_FACTOR * 1.0)
    assert nmad([1.0, np.nan, 2.0, 3.0, np.inf]) == pytest.approx(NMAD_FACTOR * 1.0)
    assert math.isnan(nmad([]))


def test_photoz_metrics_known_answers():
    z = np.array([0.1, 0.2, 0.5, 1.0])
    # Δ = 0, +0.01, -0.02 and an outlier of +0.3
    z_est = z + np.array([0.0, 0.01, -0.02, 0.3]) * (1 + z)
    np.testing.assert_allclose(photoz_delta(z, z_est), [0.0, 0.01, -0.02, 0.3], atol=1e-12)
    m = photoz_metrics(z, z_est)
    assert m["n"] == 4 and m["n_outliers"] == 1
    assert m["outlier_fraction"] == 0.25
    assert m["bias"] == pytest.approx(0.005)                  # median of (-0.02, 0, 0.01, 0.3)
    d = np.array([0, 0.01, -0.02, 0.3])
    assert m["nmad"] == pytest.approx(NMAD_FACTOR * np.median(np.abs(d - 0.005)))
    assert m["outlier_fraction_err"] == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    # exactly at the cut is not an outlier; NaN pairs are left out
    m = photoz_metrics([0.0, 0.0, np.nan], [OUTLIER_CUT, OUTLIER_CUT + 1e-9, 0.1])
    assert m["n"] == 2 and m["n_outliers"] == 1
    assert photoz_metrics([], [])["n"] == 0 and photoz_metrics([], [])["bias"] is None


def test_photoz_metrics_of_gaussian_errors():
    rng = np.random.default_rng(1)
    z = rng.uniform(0.02, 0.4, 100_000)
    z_est = z + (1 + z) * (0.01 + rng.normal(0, 0.03, z.size))
    m = photoz_metrics(z, z_est)
    assert m["bias"] == pytest.approx(0.01, abs=5e-4)
    assert m["nmad"] == pytest.approx(0.03, rel=0.02)
    # P(|N(0.01, 0.03)| > 0.15) = P(N > 0.14) + P(N < -0.16) (in units of 0.03)
    tails = 0.5 * math.erfc(0.14 / 0.03 / math.sqrt(2)) + 0.5 * math.erfc(0.16 / 0.03 / math.sqrt(2))
    assert m["outlier_fraction"] == pytest.approx(tails, abs=2e-4)


def test_photoz_metrics_by_bin_counts_and_labels():
    z = np.full(7, 0.1)
    z_est = z + np.array([0, 0, 0.5, 0, 0, 0, 0]) * 1.1
    mag = np.array([16.0, 17.0, 17.5, 18.2, 19.0, 19.79, np.nan])
    out = photoz_metrics_by_bin(z, z_est, mag)
    labels = [b["label"] for b in out["bins"]]
    assert labels == ["<17", "17-18", "18-19", "19-19.8"]   # the empty open last bin is dropped
    assert [b["n"] for b in out["bins"]] == [1, 2, 1, 2]
    assert out["bins"][1]["outlier_fraction"] == 0.5
    assert out["overall"]["n"] == 7                          # the NaN magnitude counts only overall
    kept = photoz_metrics_by_bin(z, z_est, mag, keep_empty_last=True)
    assert kept["bins"][-1]["label"] == ">=19.8" and kept["bins"][-1]["n"] == 0
    full = photoz_metrics_by_bin(z, z_est, np.array([16.0, 17.0, 17.5, 18.2, 19.0, 20.5, 21.0]))
    assert full["bins"][-1]["label"] == ">=19.8" and full["bins"][-1]["n"] == 2
    with pytest.raises(ValueError):
        photoz_metrics_by_bin(z, z_est, mag, edges=[18.0, 17.0])
    with pytest.raises(ValueError):
        photoz_metrics_by_bin(z, z_est[:3], mag)


def test_coverage_of_a_calibrated_toy_is_068():
    """Truth ~ N(μ, σ), posterior N(μ, σ): [p16, p84] holds the truth 68.27 % of the time."""
    rng = np.random.default_rng(2)
    n = 20_000
    mu, sigma = rng.normal(0, 1, n), rng.uniform(0.1, 0.5, n)
    truth = mu + sigma * rng.normal(0, 1, n)
    s = recovery_stats(truth, mu - sigma, mu, mu + sigma)
    p = 0.682689
    assert s["n"] == n
    assert abs(s["coverage_68"] - p) < 3 * math.sqrt(p * (1 - p) / n)
    assert s["coverage_68_err"] == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.02)
    assert abs(s["bias"]) < 0.01
    assert s["median_width_68"] == pytest.approx(2 * np.median(sigma))
    # over-confident intervals (half as wide) cover ~38 %; a shifted posterior shows as bias
    assert recovery_stats(truth, mu - sigma / 2, mu, mu + sigma / 2)["coverage_68"] == pytest.approx(0.383,
                                                                                                  abs=0.015)
    b = recovery_stats(truth, mu - sigma + 0.2, mu + 0.2, mu + sigma + 0.2)
    assert b["bias"] == pytest.approx(0.2, abs=0.01)


def test_recovery_stats_scatter_and_missing():
    rng = np.random.default_rng(3)
    truth = rng.normal(10, 1, 50_000)
    est = truth + rng.normal(0, 0.2, truth.size)
    s = recovery_stats(truth, est - 0.2, est, est + 0.2)
    assert s["nmad"] == pytest.approx(0.2, rel=0.03) and s["std"] == pytest.approx(0.2, rel=0.02)
    s = recovery_stats([1.0, np.nan, 3.0], [0.0, 0.0, 0.0], [1.5, 2.0, 2.0], [2.0, 3.0, 4.0])
    assert s["n"] == 2 and s["coverage_68"] == 1.0 and s["bias"] == pytest.approx(-0.25)
    assert recovery_stats([], [], [], [])["coverage_68"] is None


def test_interval_agreement():
    b16, b50, b84 = np.zeros(4), np.ones(4), np.full(4, 2.0)                  # σ_B = 1
    a50 = np.array([1.0, 1.5, 0.0, 4.0])
    out = interval_agreement(a50 - 0.5, a50, a50 + 0.5, b16, b50, b84)
    assert out["n"] == 4
    assert out["per_galaxy"]["dmed_over_sigma"] == pytest.approx([0.0, 0.5, -1.0, 3.0])
    assert out["median_abs_dmed_over_sigma"] == pytest.approx(0.75)
    assert out["max_abs_dmed_over_sigma"] == pytest.approx(3.0)
    assert out["frac_dmed_within_0.5_sigma"] == 0.5
    assert out["frac_b_median_in_a_68"] == 0.5                                 # rows 0 and 1
    assert out["median_width_ratio"] == pytest.approx(0.5)
    assert interval_agreement([], [], [], [], [], [])["n"] == 0


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "posterior_misspecification.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_mass_errors_binned_by_true_parameter():
    """A bias that grows with one bagpipes parameter shows in its quartiles and not in the others."""
    from astropy.table import Table

    module = _script("posterior_misspecification_quartiles")
    rng = np.random.default_rng(3)
    n = 4000
    truth = Table({name: rng.uniform(0, 1, n) for name in module.DRIVERS})
    t = rng.normal(10, 0.5, n)
    p50 = t + 0.4 * (truth["bp_age"] > 0.5) + rng.normal(0, 0.1, n)
    out = module.by_truth_quartile(truth, t, p50 - 0.1, p50, p50 + 0.1, np.ones(n, bool))
    age = [row["bias"] for row in out["bp_age"]]
    assert age[0] == pytest.approx(0, abs=0.02) and age[3] == pytest.approx(0.4, abs=0.02)
    assert sum(row["n"] for row in out["bp_age"]) == n
    tau = [row["bias"] for row in out["bp_tau"]]
    assert max(tau) - min(tau) < 0.1
    assert out["bp_age"][0]["range"][0] == pytest.approx(truth["bp_age"].min())


@pytest.mark.slow
def test_misspecification_script_end_to_end(tmp_path):
    """The script at tiny n (bagpipes, CLI, both references, JSON)."""
    pytest.importorskip("bagpipes")
    spec = importlib.util.spec_from_file_location("posterior_misspecification",
                                                  ROOT / "scripts" / "posterior_misspecification.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["posterior_misspecification"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "m.json"
    rc = module.main(["--models", "sdss-photz", "--n-per-dust", "6", "--n-reference", "20",
                      "--n-population", "20", "--samples", "50", "--work", str(tmp_path / "work"),
                      "--out", str(out), "--seed-offset", "1000"])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["git"]["commit"] and report["seeds"]["bagpipes_cf"] == 2021502
    m = report["models"]["sdss-photz"]
    assert m["runs"]["bagpipes_cf"]["argv"][:2] == ["sedinfer", "posterior"]
    assert m["bagpipes_overall"]["flags"]["n"] == 12
    for key in ("bagpipes_calzetti", "bagpipes_cf", "bagpipes_overall", "reference", "population_mock",
                "reference_errors_x0.5", "reference_errors_x2", "reference_errors_0.05mag"):
        assert set(m[key]["all_ok"]) == {"log_mstar", "log_sfr_100myr", "redshift", "photoz"}
    assert m["reference"]["all_ok"]["photoz"]["overall"]["n"] + m["reference"]["flags"]["n_not_ok"] == 20
    kinds = [c["meta"]["kind"] for k, c in report["catalogs"].items()
             if k.startswith("reference_errors_0.05mag")]
    assert len(kinds) == 1 and kinds[0].endswith("errors mag 0.05 instead of the training noise")
    assert set(m["bagpipes_cf"]["log_mstar_by_truth"]) == set(module.DRIVERS)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["batched", "emcee"])
def test_misspecification_mcmc_results_are_cached(tmp_path, sampler):
    """Each galaxy's chain is kept in the cache folder and a second run reuses it, not reruns it."""
    pytest.importorskip("bagpipes")
    pytest.importorskip("emcee")
    spec = importlib.util.spec_from_file_location("posterior_misspecification_mcmc",
                                                  ROOT / "scripts" / "posterior_misspecification.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--models", "sdss-specz", "--dust", "calzetti", "--n-per-dust", "3", "--n-reference", "0",
            "--n-population", "0", "--samples", "50", "--work", str(tmp_path / "work"),
            "--mcmc", "2", "--mcmc-block", "100", "--mcmc-max-steps", "100", "--mcmc-walkers", "24",
            "--mcmc-cache", str(tmp_path / "chains"), "--seed-offset", "1000", "--mcmc-sampler", sampler]
    assert module.main([*argv, "--out", str(tmp_path / "a.json")]) == 0
    first = json.loads((tmp_path / "a.json").read_text())["models"]["sdss-specz"]["mcmc"]
    assert (first["n_requested"], first["n_galaxies"], first["n_run_now"]) == (2, 2, 2)
    assert [g["row"] for g in first["galaxies"]] == [0, 1]           # independent of the flow's flags
    assert len(list((tmp_path / "chains").glob("*.json"))) == 2
    assert module.main([*argv, "--out", str(tmp_path / "b.json")]) == 0
    second = json.loads((tmp_path / "b.json").read_text())["models"]["sdss-specz"]["mcmc"]
    assert second["n_run_now"] == 0 and second["galaxies"] == first["galaxies"]
