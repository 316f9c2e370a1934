"""Validation metrics of issue 18 §5 (sedinfer.images.validation) and the resumable run."""

from __future__ import annotations

import numpy as np
import pytest

from sedinfer.images.errors import ImageError
from sedinfer.images.fit import FitConfig
from sedinfer.images.validation import (
    ResultStore,
    attenuation_bin,
    attenuation_bin_labels,
    band_attenuation,
    covering_bin,
    galaxy_metrics,
    light_weighted_attenuation,
    pearson_r,
    summarise,
)
from sedinfer.images.validation_run import PriorMode, ValidationConfig, prepare_modes, run_validation


def blob(n: int = 16, width: float = 3.0) -> np.ndarray:
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    s = np.exp(-(x**2 + y**2) / (2 * width**2))
    return s / s.sum()


def test_pearson_r_of_identical_maps_is_one_and_of_constant_maps_undefined():
    d = 1 - 0.5 * blob() / blob().max()
    assert pearson_r(d, d) == pytest.approx(1.0, abs=1e-12)
    assert pearson_r(d, 2 * d + 3) == pytest.approx(1.0, abs=1e-12)
    assert pearson_r(d, 1 - d) == pytest.approx(-1.0, abs=1e-12)
    assert pearson_r(d, d, weights=blob()) == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(pearson_r(d, np.ones_like(d)))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(size=400)
    assert pearson_r(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)


def test_known_attenuation_recovered_exactly_when_inferred_equals_truth():
    s = blob()
    a0 = 0.7                                                     # a uniform screen of 0.7 mag at λ₀
    d = np.full_like(s, 10 ** (-0.4 * a0))
    assert light_weighted_attenuation(s, d) == pytest.approx(a0, abs=1e-12)
    assert light_weighted_attenuation(3 * s, d) == pytest.approx(a0, abs=1e-12)   # any normalisation
    k = np.array([1.3, 1.0, 0.6])
    np.testing.assert_allclose(band_attenuation(s, d, k), a0 * k, atol=1e-12)
    d = 1 - 0.6 * s / s.max()
    sed = np.array([1e4, 2e4, 3e4])
    truth = {"host": s, "dust": d, "sed_njy": sed, "ratio": k, "delta": -0.2, "covering_fraction": 0.5}
    fit = {"host": s, "transmission": d, "sed_njy": sed, "ratio": k, "delta": -0.2, "covering_fraction": 0.5}
    m = galaxy_metrics(truth, fit)
    assert m["a0_error_mag"] == 0.0 and m["a0_true_mag"] == pytest.approx(-2.5 * np.log10((s * d).sum()))
    assert m["pearson_dust"] == pytest.approx(1.0) and m["pearson_host"] == pytest.approx(1.0)
    assert m["sed_rel_error"] == [0.0, 0.0, 0.0]
    assert m["a_band_fit_mag"] == m["a_band_true_mag"]
    assert 0.3 <= m["a0_true_mag"] < 1.0                         # -2.5 log10(1 - 0.6 Σ S² / max S)
    assert m["covering_bin"] == "cov<0.9" and m["attenuation_bin"] == "0.3<=A<1"
    dark = galaxy_metrics(truth, {**fit, "transmission": np.ones_like(d), "sed_njy": 0.9 * sed})
    assert dark["pearson_dust"] is None                          # a constant map: no correlation
    np.testing.assert_allclose(dark["sed_rel_error"], -0.1)
    assert dark["a0_fit_mag"] == pytest.approx(0.0, abs=1e-12)


def test_binning_puts_known_cases_in_the_right_bins():
    assert [covering_bin(c) for c in (0.0, 0.5, 0.8999, 0.9, 0.95, 1.0)] == \
        ["cov<0.9"] * 3 + ["cov>=0.9"] * 3
    labels = attenuation_bin_labels()
    assert labels == ["A<0.1", "0.1<=A<0.3", "0.3<=A<1", "A>=1"]
    assert [attenuation_bin(a) for a in (0.0, 0.0999, 0.1, 0.29, 0.3, 0.999, 1.0, 3.0)] == \
        [labels[0], labels[0], labels[1], labels[1], labels[2], labels[2], labels[3], labels[3]]
    rec = {"a0_true_mag": 0.2, "a0_fit_mag": 0.25, "a0_error_mag": 0.05, "pearson_dust": 0.8,
           "pearson_dust_weighted": 0.9, "sed_rel_error": [0.01, -0.02], "delta_true": 0.0,
           "delta_fit": 0.1, "mode": "none", "variant": "fiducial", "converged": True}
    records = [{**rec, "covering_true": c, "covering_bin": covering_bin(c),
                "attenuation_bin": attenuation_bin(a), "a0_true_mag": a}
               for c, a in ((0.3, 0.05), (0.5, 0.2), (0.95, 0.2), (0.99, 1.5), (0.97, 1.2))]
    summary = summarise(records)
    by_cov = {r["covering_bin"]: r["n"] for r in summary["by_covering"]}
    assert by_cov == {"cov<0.9": 2, "cov>=0.9": 3}
    by_a = {r["attenuation_bin"]: r["n"] for r in summary["by_attenuation"]}
    assert by_a == {"A<0.1": 1, "0.1<=A<0.3": 2, "A>=1": 2}
    whole = summary["all"][0]
    assert whole["n"] == 5 and whole["a0_error_mag"]["median"] == pytest.approx(0.05)
    assert whole["sed_rel_error_median"] == pytest.approx([0.01, -0.02])
    assert whole["converged_fraction"] == 1.0


def test_result_store_is_keyed_and_only_complete_records_count(tmp_path):
    store = ResultStore(tmp_path, "fit-none", {"a": 1})
    assert store.get("g1") is None
    store.put("g1", {"name": "g1", "x": np.float64(2.5)}, {"host": np.ones((2, 2), np.float32)})
    again = ResultStore(tmp_path, "fit-none", {"a": 1})
    assert again.get("g1") == {"name": "g1", "x": 2.5}
    np.testing.assert_array_equal(again.arrays("g1")["host"], np.ones((2, 2)))
    assert again.names() == ["g1"]
    assert ResultStore(tmp_path, "fit-none", {"a": 2}).get("g1") is None   # other settings, other folder
    (store.dir / "g2.npz").write_bytes(b"")                       # arrays without a record: not done
    assert store.get("g2") is None


def fake_seds(theta: np.ndarray) -> np.ndarray:
    lam = np.array([4791.0, 6214.0, 7689.0, 8903.0, 9772.0]) / 6000.0
    slope = np.log10(theta[:, 3:4] * 1e3) - 2.5
    return 10 ** (theta[:, 1:2] - 6.0) * lam[None] ** slope


def test_run_validation_resumes_from_its_store(tmp_path, monkeypatch):
    from sedinfer.images import validation_run
    from sedinfer.images.instrument import hsc_instrument

    with pytest.raises(ImageError, match="training seed"):
        ValidationConfig(seed=0)
    inst = hsc_instrument(image_shape=(32, 32))
    config = ValidationConfig(n=1, seed=7, n_views=1, image_size=32, batch=2,
                              fit=FitConfig(max_steps=3, min_steps=3))
    modes = prepare_modes(["none"])
    missing = prepare_modes(["conditional"], prior_dir=tmp_path / "no_weights")
    assert missing[0].skipped and "no_weights" in missing[0].skipped
    run = run_validation(config, modes + missing, tmp_path / "work", inst, fake_seds, "fake", log=None)
    assert run["complete"] and run["counts"]["fits_this_run"] == 2 and len(run["records"]) == 2
    assert {r["variant"] for r in run["records"]} == {"fiducial", "monochromatic"}
    assert all(r["mode"] == "none" and r["n_iter"] == 3 for r in run["records"])

    def no_fit(*a, **k):
        raise AssertionError("a stored fit was fitted again")

    monkeypatch.setattr(validation_run, "fit_views", no_fit)
    monkeypatch.setattr("sedinfer.images.simulate.simulate_galaxies", no_fit)
    again = run_validation(config, modes, tmp_path / "work", inst, fake_seds, "fake", log=None)
    assert again["complete"] and again["counts"]["fits_this_run"] == 0
    assert again["counts"]["fits_resumed"] == 2 and again["records"] == run["records"]
    stopped = run_validation(ValidationConfig(n=2, seed=7, n_views=1, image_size=32, sim_chunk=1,
                                              fit=FitConfig(max_steps=3, min_steps=3)),
                             modes, tmp_path / "work", inst, fake_seds, "fake", max_seconds=0.0, log=None)
    assert not stopped["complete"] and stopped["counts"]["fits_stored"] == 2   # galaxy 1 not started
    assert isinstance(modes[0], PriorMode) and modes[0].describe()["status"] == "fitted"
