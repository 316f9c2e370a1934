"""Population mock catalogs, recovery metrics, output tables, the runner and `sedinfer population`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sedinfer as si
from sedinfer.cli import main
from sedinfer.errors import CatalogError, ParameterError
from sedinfer.population import BoxFlow, FitConfig, Population
from sedinfer.population.mock import TABLE2, DoubleSchechter, MockPopulation, make_mock_catalog
from sedinfer.population.outputs import population_table
from sedinfer.population.runner import catalog_magnitudes
from sedinfer.population.validation import (
    band_hits,
    calibrated_band_rate,
    calibration_summary,
    marginal_distances,
    marginal_quantiles,
    recovery_report,
)
from sedinfer.posterior.flow import FlowConfig


@pytest.fixture(scope="module")
def model():
    return si.SPSModel()


@pytest.fixture(scope="module")
def sdss():
    return si.Filters("sdss")


@pytest.fixture(scope="module")
def mock(model, sdss):
    return make_mock_catalog(model, sdss, 400, seed=3, chunk=20_000)


# ------------------------------------------------------------------------------ mock
def test_double_schechter_matches_baldry_2012_at_knee():
    phi = DoubleSchechter()
    # at M = M*: ln10 e^-1 (phi1 + phi2)
    assert phi(np.array([10.66]))[0] == pytest.approx(np.log(10) * np.exp(-1) * (3.96e-3 + 0.79e-3), rel=1e-9)
    # the low-mass end rises with slope alpha2 + 1 = -0.47 dex per dex
    lo = np.log10(phi(np.array([7.0, 8.0])))
    assert lo[0] - lo[1] == pytest.approx(0.47, abs=0.03)


def test_parent_follows_volume_and_table2(model):
    pop = MockPopulation(z_range=(0.01, 0.3))
    theta = pop.sample(model, 20_000, np.random.default_rng(0)).numpy()
    z = theta[:, 0]
    # dV/dz grows with z: more galaxies in the upper than the lower half of the range
    assert (z > 0.155).mean() > 0.75
    names = list(model.param_names)
    for name in ("kappa1", "tau_ism", "log_z"):
        dist = TABLE2[name]
        col = theta[:, names.index(name)]
        assert col.min() >= dist.low and col.max() <= dist.high
        ref = dist.sample((20_000,), generator=torch.Generator().manual_seed(1), dtype=torch.float64).numpy()
        assert abs(np.median(col) - np.median(ref)) < 0.05 * (dist.high - dist.low)


def test_mock_catalog_is_flux_limited_with_snr(mock, model, sdss):
    assert mock.mags.shape == (400, 5) and mock.theta.shape == (400, len(model.param_names))
    r = list(sdss.names).index("sdss_r0")
    assert (mock.mags[:, r] < 19.8).all()
    assert (mock.mag_errs < 1.0857).all()  # S/N > 1 in every band
    assert mock.n_parent > 400
    # selection favours massive galaxies: catalog masses above the parent median (mass function)
    assert np.median(mock.theta[:, 1]) > 10.0
    # the recorded truth reproduces the noiseless photometry
    flux = model.photometry(torch.as_tensor(mock.theta[:5], dtype=torch.float32), sdss, units="maggies")
    assert np.allclose(flux.double().numpy(), mock.flux[:5], rtol=1e-4)
    t = mock.to_table()
    assert "mag_sdss_r0" in t.colnames and "true_log_mass" in t.colnames


def test_mock_rejects_unknown_limit_band(model, sdss):
    with pytest.raises(ParameterError, match="limit_band"):
        make_mock_catalog(model, sdss, 10, limit_band="r")


# ------------------------------------------------------------------------------ metrics
def test_marginal_distances_detect_a_shift():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(3000, 2))
    same = rng.normal(size=(3000, 2))
    shifted = same + np.array([0.5, 0.0])
    d_same = marginal_distances(truth, same, ["a", "b"])
    d_shift = marginal_distances(truth, shifted, ["a", "b"])
    assert d_same["a"]["w1"] < 0.1 and d_same["a"]["ks"] < 0.06
    assert d_shift["a"]["w1"] == pytest.approx(0.5, abs=0.06) and d_shift["a"]["ks"] > 0.15
    assert d_shift["b"]["w1"] < 0.1


def test_calibrated_band_rate_is_that_of_exchangeable_draws_and_tends_to_68_percent():
    assert calibrated_band_rate(5) == pytest.approx(0.483, abs=0.005)
    assert calibrated_band_rate(100, n_trials=50_000) == pytest.approx(0.68, abs=0.02)
    assert calibrated_band_rate(2) < calibrated_band_rate(5) < calibrated_band_rate(20)


def test_calibration_summary_matches_the_reference_for_exchangeable_fits_and_not_for_biased_ones():
    rng = np.random.default_rng(1)
    names = ["x", "y"]
    good, bad = [], []
    for _ in range(40):          # 40 independent "fits": truth and 5 members, same population and size
        truth = rng.normal(size=(2000, 2))
        members = [rng.normal(size=(2000, 2)) for _ in range(5)]
        shifted = [m + np.array([0.0, 0.2]) for m in members]
        tq = marginal_quantiles(truth, names)
        good.append(band_hits(tq, np.stack([marginal_quantiles(m, names) for m in members])))
        bad.append(band_hits(tq, np.stack([marginal_quantiles(m, names) for m in shifted])))
    ok, off = calibration_summary(good, names, 5), calibration_summary(bad, names, 5)
    for name in names:
        assert abs(ok["per_name"][name]["rate"] - ok["calibrated_rate"]) < 4 * ok["per_name"][name]["stderr"]
    assert off["per_name"]["y"]["rate"] < 0.1 and off["per_name"]["x"]["rate"] > 0.35
    with pytest.raises(ParameterError, match="two ensemble members"):
        band_hits(tq, np.stack([marginal_quantiles(members[0], names)]))
    with pytest.raises(ParameterError, match="two independent fits"):
        calibration_summary(good[:1], names, 5)
    rep = recovery_report({"x": truth[:, 0]}, {"x": members[0][:, 0]}, [{"x": m[:, 0]} for m in members])
    assert np.array(rep["band_hits"]).shape == (19, 1) and len(rep["members"]) == 5


# ------------------------------------------------------------------------------ tables
def test_population_table_has_derived_and_photometry(model, sdss):
    low, high = model.prior.bounds()
    cfg = FlowConfig(transforms=2, hidden=(16, 16), bins=4)
    members = [BoxFlow(low, high, cfg, model.param_names) for _ in range(2)]
    pop = Population(
        members,
        {
            "bands": list(sdss.names),
            "noise_model": si.noise.default_noise_model(sdss.names).to_dict(),
            "softening_maggies": [1e-10] * 5,
        },
    )
    t = population_table(pop, model, sdss, n=301, seed=0)
    assert len(t) == 301 and set(np.unique(t["flow"])) == {0, 1}
    for col in (
        "log_mstar",
        "sfr_100myr",
        "log_sfr_100myr",
        "mass_weighted_age",
        "mag_sdss_r0",
        "mag_obs_sdss_r0",
    ):
        assert col in t.colnames
    # surviving mass is below the formed mass; ages are inside the age of the Universe
    assert (t["log_mstar"] < t["log_mass"] + 1e-6).all()
    age_universe = model.cosmo.age_gyr_at(torch.as_tensor(np.asarray(t["redshift"]))).numpy()
    assert (t["mass_weighted_age"] <= age_universe + 1e-6).all()
    assert np.isfinite(t["mag_obs_sdss_r0"]).all()


def test_catalog_magnitudes_refuse_or_drop_bad_rows():
    flux = np.array([[10.0, 20.0], [-1.0, 5.0], [np.nan, 3.0]])
    err = np.ones_like(flux)
    with pytest.raises(CatalogError, match=r"2 row\(s\).*'u'.*--drop-bad-rows"):
        catalog_magnitudes(flux, err, ("u", "g"))
    m, e, keep = catalog_magnitudes(flux, err, ("u", "g"), drop_bad_rows=True)
    assert keep.tolist() == [True, False, False]
    assert m[0, 0] == pytest.approx(22.5 - 2.5) and e[0, 0] == pytest.approx(1.0857362 / 10.0, rel=1e-6)


# ------------------------------------------------------------------------------ CLI
@pytest.mark.filterwarnings("ignore::sedinfer.population.PopulationWarning")
def test_population_cli_end_to_end(tmp_path, mock):
    from sedinfer.catalog import write_catalog

    t = mock.to_table()
    for b in mock.bands:
        f = 10 ** (-0.4 * (t[f"mag_{b}"] - 22.5))
        t[f"flux_{b}"] = f
        t[f"flux_err_{b}"] = f * t[f"magerr_{b}"] / 1.0857
    write_catalog(t, tmp_path / "cat.parquet")
    out = tmp_path / "pop"
    args = [
        "population",
        str(tmp_path / "cat.parquet"),
        "--out",
        str(out),
        "--n-flows",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "200",
        "--samples",
        "400",
        "--no-progress",
        "--selection",
        "sdss_r0<19.8",
        "--entropy-weight",
        "0.2",
        "--marginal-weight",
        "0.3",
    ]
    assert main(args) == 0
    for name in (
        "population.pt",
        "samples.parquet",
        "run.json",
        "corner.png",
        "photometry.png",
        "nz.png",
        "sfms.png",
    ):
        assert (out / name).exists(), name
    run = json.loads((out / "run.json").read_text())
    assert run["n_galaxies"] == 400 and run["selection"]["limit"] == 19.8
    assert "recovery" in run and "log_mstar" in run["recovery"]["ensemble"]
    assert 0.0 <= run["photometry_c2st"]["accuracy"] <= 1.0 and run["photometry_c2st"]["n_per_class"] > 50
    pop = si.population.load(out / "population.pt")
    assert pop.n_flows == 2 and float(pop.high[0]) == pytest.approx(0.8)
    assert FitConfig.from_dict(pop.config) == FitConfig(epochs=2, batch_size=200, n_simulated=200,
                                                        entropy_weight=0.2, marginal_weight=0.3)
    assert 0.0 <= run["unexplained_fraction"]["value"] <= 1.0
    # a rerun resumes from the finished checkpoints and gives the same population
    assert main(args) == 0
    again = si.population.load(out / "population.pt")
    assert torch.equal(again.sample(50, seed=1), pop.sample(50, seed=1))


def test_population_cli_errors(tmp_path, capsys):
    assert main(["population", "--out", str(tmp_path)]) == 2
    assert "give a CATALOG" in capsys.readouterr().err
    assert main(["population", "x.parquet", "--out", str(tmp_path), "--bound", "mass=1,2"]) == 2
    assert "unknown parameter 'mass'" in capsys.readouterr().err
    assert main(["population", "x.parquet", "--out", str(tmp_path), "--bound", "redshift=0,9"]) == 2
    assert "inside the model prior" in capsys.readouterr().err
    assert main(["population", "--demo", "x.parquet"]) == 2
    assert "do not also give CATALOG" in capsys.readouterr().err
    assert main(["population", "--demo", "--out", str(tmp_path / "d"), "--marginal-weight", "1.5"]) == 2
    assert "marginal_weight must be in [0, 1], got 1.5" in capsys.readouterr().err
    assert main(["population", "--demo", "--out", str(tmp_path / "d"), "--entropy-weight", "-1"]) == 2
    assert "entropy_weight must be a finite number >= 0, got -1" in capsys.readouterr().err
    from astropy.table import Table

    t = Table({f"flux_{b}": np.ones(5) for b in ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0")})
    t.write(tmp_path / "four.parquet")
    for extra in ([], ["--epochs", "1"]):
        assert main(["population", str(tmp_path / "four.parquet"), "--out", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err
        assert "lacks column(s)" in err and "flux_sdss_z0" in err and "flux_err_sdss_u0" in err


def test_fit_config_rejects_negative_entropy_weight():
    with pytest.raises(ParameterError, match="entropy_weight"):
        FitConfig(entropy_weight=-1.0)


def test_photometry_c2st_detects_a_mismatch_and_honours_selection():
    from sedinfer.population.validation import photometry_c2st

    rng = np.random.default_rng(0)
    cat = rng.normal([19.0, 18.0, 17.5], 0.5, (3000, 3))
    same = rng.normal([19.0, 18.0, 17.5], 0.5, (3000, 3))
    shifted = same + np.array([0.0, 0.4, 0.0])  # one colour off by 0.8 sigma
    assert abs(photometry_c2st(cat, same)["accuracy"] - 0.5) < 0.04
    assert photometry_c2st(cat, shifted)["accuracy"] > 0.6
    # a synthetic set with a faint tail the catalog's cut removed is caught, and the
    # selection probability of the synthetic rows removes the mismatch
    cut = cat[cat[:, 2] < 17.5]  # half the parent: the best classifier reaches 0.75
    assert photometry_c2st(cut, same)["accuracy"] > 0.65
    keep = (same[:, 2] < 17.5).astype(float)
    res = photometry_c2st(cut, same, keep_probability=keep)
    assert abs(res["accuracy"] - 0.5) < 0.05 and res["n_per_class"] == min(len(cut), int(keep.sum()))
    with pytest.raises(ParameterError, match="synthetic_mags has 1 row"):
        photometry_c2st(cat, np.vstack([same, [np.nan, 1, 1]]))
    with pytest.raises(ParameterError, match="keep_probability"):
        photometry_c2st(cat, same, keep_probability=np.ones(5))
