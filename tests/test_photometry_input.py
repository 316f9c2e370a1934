"""Photometry in catalog units: AB and SDSS asinh magnitudes, flux units, and magnitudes refused
from flux columns (sedinfer.photometry_input through ColumnMap and ``sedinfer posterior``)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from sedinfer import cli, cli_posterior, photometry_input, units
from sedinfer.catalog import read_catalog, write_catalog
from sedinfer.errors import CatalogError
from sedinfer.posterior.columns import column_map
from sedinfer.posterior.sed_config import SDSS_BANDS

RNG = np.random.default_rng(20)
N = 300
# nanomaggies from r ~ 24 to r ~ 14 (negative fluxes only for the asinh path), 3-10 % errors + floor
FLUX = 10 ** RNG.uniform(-0.6, 3.4, (N, 5)) * np.array([0.3, 0.7, 1.0, 1.3, 1.5])
ERR = FLUX * RNG.uniform(0.03, 0.1, (N, 5)) + 0.05


def table(flux, err, unit=None, err_unit=None) -> Table:
    t = Table({"id": np.arange(len(flux))})
    for i, band in enumerate(SDSS_BANDS):
        t[f"flux_{band}"] = flux[:, i]
        t[f"flux_err_{band}"] = err[:, i]
        t[f"flux_{band}"].unit, t[f"flux_err_{band}"].unit = unit, err_unit
    return t


def ab_table(unit=None, err_unit=None) -> Table:
    mag = units.maggies_to_mag(units.nmgy_to_maggies(FLUX))
    return table(mag, units.mag_err_from_flux(FLUX, ERR), unit, err_unit)


def asinh_table(flux=FLUX, err=ERR) -> Table:
    b = units.asinh_softening(SDSS_BANDS)
    f, e = units.nmgy_to_maggies(flux), units.nmgy_to_maggies(err)
    return table(units.asinh_mag(f, b), units.asinh_mag_err(f, e, b))


def arrays(t: Table, input_units=None):
    _, flux, err, _ = column_map(SDSS_BANDS, False, input_units=input_units).arrays(t)
    return flux, err


# ---------------------------------------------------------------- conversions
def test_ab_magnitudes_round_trip_with_errors():
    flux, err = arrays(ab_table(), "ab")
    np.testing.assert_allclose(flux, FLUX, rtol=1e-12)
    np.testing.assert_allclose(err, ERR, rtol=1e-12)


def test_asinh_magnitudes_round_trip_including_negative_fluxes():
    faint = np.vstack([FLUX, -0.5 * ERR[:20], np.zeros((1, 5))])       # asinh mags exist for f <= 0
    faint_err = np.vstack([ERR, ERR[:20], ERR[:1]])
    flux, err = arrays(asinh_table(faint, faint_err), "asinh")
    np.testing.assert_allclose(flux, faint, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(err, faint_err, rtol=1e-9)


@pytest.mark.parametrize("kind", ["ab", "asinh"])
def test_error_conversion_is_the_derivative_of_the_flux(kind):
    """σ_f = |df/dm| σ_m: compared with a central finite difference of the inverse magnitude."""
    b = 1.2e-10
    mag = np.array([14.0, 19.0, 22.5, 24.0, 25.5]) if kind == "asinh" else np.array([14.0, 19.0, 22.5])
    to_flux = (lambda m: units.mag_to_maggies(m)) if kind == "ab" else (
        lambda m: units.asinh_mag_to_maggies(m, b))
    h = 1e-6
    dfdm = np.abs(to_flux(mag + h) - to_flux(mag - h)) / (2 * h)
    f = to_flux(mag)
    sigma_m = 0.03
    got = (units.flux_err_from_mag_err(f, sigma_m) if kind == "ab"
           else units.flux_err_from_asinh_mag_err(f, sigma_m, b))
    np.testing.assert_allclose(got, dfdm * sigma_m, rtol=1e-6)
    if kind == "ab":   # the textbook form 0.4 ln 10 f σ_m
        np.testing.assert_allclose(got, 0.4 * np.log(10) * f * sigma_m, rtol=1e-12)


def test_sdss_softening_constants():
    assert dict(zip(SDSS_BANDS, units.asinh_softening(SDSS_BANDS), strict=True)) == {
        "sdss_u0": 1.4e-10, "sdss_g0": 0.9e-10, "sdss_r0": 1.2e-10, "sdss_i0": 1.8e-10, "sdss_z0": 7.4e-10}
    # zero flux has asinh magnitude -1.0857 ln b: 24.63 in u, 22.83 in z (Lupton et al. 1999)
    assert units.asinh_mag(0.0, 1.4e-10) == pytest.approx(24.63, abs=0.01)
    assert units.asinh_mag(0.0, 7.4e-10) == pytest.approx(22.83, abs=0.01)


@pytest.mark.parametrize(("option", "scale"), [("nmgy", 1.0), ("maggies", 1e-9), ("ujy", 3.631),
                                               ("njy", 3631.0)])
def test_linear_input_units(option, scale):
    flux, err = arrays(table(FLUX * scale, ERR * scale), option)
    np.testing.assert_allclose(flux, FLUX, rtol=1e-12)
    np.testing.assert_allclose(err, ERR, rtol=1e-12)


# ---------------------------------------------------------------- column units
def test_abmag_column_unit_needs_no_option():
    flux, err = arrays(ab_table(u.ABmag, u.mag))
    np.testing.assert_allclose(flux, FLUX, rtol=1e-12)
    np.testing.assert_allclose(err, ERR, rtol=1e-12)


@pytest.mark.parametrize("ext", [".fits", ".parquet", ".ecsv"])
def test_units_survive_the_catalog_file(tmp_path, ext):
    write_catalog(ab_table(u.ABmag, u.mag), tmp_path / f"m{ext}")
    flux, _ = arrays(read_catalog(tmp_path / f"m{ext}"))
    np.testing.assert_allclose(flux, FLUX, rtol=1e-10)
    write_catalog(table(FLUX * 3.631, ERR * 3.631, u.uJy, u.uJy), tmp_path / f"j{ext}")
    flux, err = arrays(read_catalog(tmp_path / f"j{ext}"))
    np.testing.assert_allclose(flux, FLUX, rtol=1e-10)
    np.testing.assert_allclose(err, ERR, rtol=1e-10)


def test_plain_mag_unit_needs_ab_or_asinh():
    t = asinh_table()
    for c in t.colnames[1:]:
        t[c].unit = u.mag
    with pytest.raises(CatalogError, match="unit mag, which does not say whether .* --input-units asinh"):
        arrays(t)
    flux, _ = arrays(t, "asinh")
    np.testing.assert_allclose(flux, FLUX, rtol=1e-9)
    with pytest.raises(CatalogError, match="has unit mag but --input-units is 'nmgy'"):
        arrays(t, "nmgy")


def test_units_that_contradict_the_option_or_mean_nothing():
    with pytest.raises(CatalogError, match=r"'flux_sdss_u0' has unit mag\(AB\) .* --input-units is 'asinh'"):
        arrays(ab_table(u.ABmag), "asinh")
    with pytest.raises(CatalogError, match="'flux_sdss_u0' has unit uJy but --input-units is 'ab'"):
        arrays(table(FLUX, ERR, u.uJy), "ab")
    with pytest.raises(CatalogError, match="'flux_sdss_u0' has unit uJy but --input-units is 'nmgy'"):
        arrays(table(FLUX, ERR, u.uJy), "nmgy")
    with pytest.raises(CatalogError, match="'flux_sdss_u0' has unit deg, which is neither"):
        arrays(table(FLUX, ERR, u.deg))
    with pytest.raises(CatalogError, match="'flux_err_sdss_u0' has unit nmgy but 'flux_sdss_u0' holds mag"):
        arrays(ab_table(u.ABmag, u.nanomaggy))
    with pytest.raises(CatalogError, match="input units 'mags' are not known"):
        column_map(SDSS_BANDS, False, input_units="mags")


def test_magnitude_sentinels_and_unknown_softening_are_refused():
    t = ab_table()
    t["flux_sdss_g0"][7] = 99.0
    with pytest.raises(CatalogError, match=r"'flux_sdss_g0' holds 1 magnitude\(s\) outside \[0, 50\] "
                                           r"\(first: 99 in row 7\)"):
        arrays(t, "ab")
    t["flux_sdss_g0"][7] = np.nan                  # an empty cell: the band is masked downstream
    flux, err = arrays(t, "ab")
    assert np.isnan(flux[7, 1]) and np.isfinite(flux[7, [0, 2, 3, 4]]).all()
    w1 = Table({"id": [0], "f": [18.0], "e": [0.1]})
    cmap = column_map(("wise_w1",), False, flux_cols=["f"], err_cols=["e"], input_units="asinh")
    with pytest.raises(CatalogError, match="softening b of band 'wise_w1', known only for sdss_u0"):
        cmap.arrays(w1)


# ---------------------------------------------------------------- magnitudes in flux columns
@pytest.mark.parametrize("make", [ab_table, asinh_table], ids=["ab", "asinh"])
def test_magnitudes_in_unitless_flux_columns_are_refused(make):
    with pytest.raises(CatalogError, match=r"look like magnitudes, not fluxes in nanomaggies.*"
                                           r"--input-units ab .*--input-units asinh .*--input-units nmgy"):
        arrays(make())


def test_refusal_survives_missing_cells_and_a_few_sentinels():
    t = ab_table()
    t["flux_sdss_u0"][:30] = np.nan
    t["flux_sdss_z0"][:5] = -9999.0
    with pytest.raises(CatalogError, match="look like magnitudes"):
        arrays(t)


def test_flux_catalogs_are_not_refused():
    arrays(table(FLUX, ERR))                                  # r ~ 14-24, 0.05-10^3 nmgy
    narrow = FLUX[(FLUX[:, 2] > 10) & (FLUX[:, 2] < 30)]      # r between 18.8 and 20: r alone in [10, 35]
    assert len(narrow) > 10 and photometry_input.magnitude_like(narrow[:, 2])
    arrays(table(narrow, narrow * 0.05))                      # the other bands are not
    # magnitude-like values with an explicit flux option or a flux unit are taken at their word
    mags = ab_table()
    arrays(mags, "nmgy")
    for c in mags.colnames[1:]:
        mags[c].unit = u.nanomaggy
    arrays(mags)


def test_cli_choices_match_the_module():
    assert cli_posterior.INPUT_UNITS == photometry_input.INPUT_UNITS


def test_cli_refuses_a_magnitude_csv_then_reads_it_with_the_option(tmp_path, capsys):
    """End to end with the shipped model: magnitudes in a CSV are refused (rc 2, one line naming the
    option); with --input-units ab the summaries equal those of the same galaxies given as fluxes."""
    demo = read_catalog(cli_posterior.demo_catalog())[:12]
    flux_cat = demo[["id", "redshift", *(c for b in SDSS_BANDS for c in (f"flux_{b}", f"flux_err_{b}"))]]
    mag_cat = flux_cat.copy()
    for b in SDSS_BANDS:
        f, e = np.asarray(flux_cat[f"flux_{b}"]), np.asarray(flux_cat[f"flux_err_{b}"])
        mag_cat[f"flux_{b}"] = units.maggies_to_mag(units.nmgy_to_maggies(f))
        mag_cat[f"flux_err_{b}"] = units.mag_err_from_flux(f, e)
    write_catalog(flux_cat, tmp_path / "flux.csv")
    write_catalog(mag_cat, tmp_path / "mag.csv")
    common = ["--samples", "16", "--seed", "1", "--no-progress"]
    mag_run = ["posterior", str(tmp_path / "mag.csv"), "--out", str(tmp_path / "m.parquet"), *common]
    assert cli.main(mag_run) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "look like magnitudes" in err and "--input-units ab" in err
    assert not (tmp_path / "m.parquet").exists() and not (tmp_path / "m.parquet.parts").exists()
    assert cli.main([*mag_run, "--input-units", "ab"]) == 0
    assert cli.main(["posterior", str(tmp_path / "flux.csv"), "--out", str(tmp_path / "f.parquet"),
                     *common]) == 0
    a, b = read_catalog(tmp_path / "m.parquet"), read_catalog(tmp_path / "f.parquet")
    assert a["ok"].all()
    for name in a.colnames:
        if a[name].dtype.kind == "f":
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert '"input_units": "ab"' in a.meta["column_map"]


def test_input_units_from_a_column_toml(tmp_path):
    toml = tmp_path / "cols.toml"
    toml.write_text('input_units = "ab"\n')
    cmap = column_map(SDSS_BANDS, False, toml=toml)
    assert cmap.input_units == "ab" and cmap.to_dict()["input_units"] == "ab"
    np.testing.assert_allclose(cmap.arrays(ab_table())[1], FLUX, rtol=1e-12)
    assert column_map(SDSS_BANDS, False, toml=toml, input_units="nmgy").input_units == "nmgy"  # option wins
    toml.write_text('input_units = "magnitudes"\n')
    with pytest.raises(CatalogError, match="input units 'magnitudes' are not known; expected one of nmgy"):
        column_map(SDSS_BANDS, False, toml=toml)
