"""FITS outputs whose units astropy reads without warnings (issue 20 item 8), every unit kept for sedinfer."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from sedinfer.catalog import fits_unit, read_catalog, write_catalog

UNITS = [u.nanomaggy, u.maggy, u.dex(u.Msun), u.dex(u.Msun / u.yr), u.dex(1 / u.yr), u.dex, u.ABmag,
         u.mag, u.Msun / u.yr, u.Gyr, u.km / u.s, u.Unit("log10(Msun)", parse_strict="silent"),
         u.dimensionless_unscaled, None]


def read_strictly(path) -> Table:
    """``Table.read`` with every warning an error (a UnitsWarning fails the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Table.read(path)


def same_unit(a, b) -> bool:
    if a in (None, u.dimensionless_unscaled) or b in (None, u.dimensionless_unscaled):
        return a in (None, u.dimensionless_unscaled) and b in (None, u.dimensionless_unscaled)
    return a == b and a.to_string() == b.to_string()


def check_fits_output(path, table: Table | None = None) -> Table:
    """The file reads with astropy without a warning; every TUNIT is a FITS unit; sedinfer reads
    back the units of ``table`` (when given) exactly."""
    strict = read_strictly(path)
    header = fits.getheader(path, 1)
    for key, value in header.items():
        if key.startswith("TUNIT"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                u.Unit(value, format="fits")
    back = read_catalog(path)
    if table is not None:
        for name in table.colnames:
            assert same_unit(back[name].unit, table[name].unit), (name, back[name].unit, table[name].unit)
            fits_text = fits_unit(table[name].unit)[0]
            if fits_text is not None:   # astropy alone gets the FITS unit (mag for mag(AB))
                assert strict[name].unit == u.Unit(fits_text, format="fits")
    return back


@pytest.mark.parametrize("unit", UNITS, ids=str)
def test_fits_unit_rule(unit):
    text, words = fits_unit(unit)
    if text is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            parsed = u.Unit(text, format="fits")
        assert parsed == unit or (isinstance(unit, u.MagUnit) and text == "mag")
    if unit is None or unit == u.dimensionless_unscaled:
        assert (text, words) == (None, None)
    elif isinstance(unit, u.DexUnit) or unit == u.dex:
        assert text is None and "log10" in words         # a log value never carries the linear unit
    elif unit == u.nanomaggy:
        assert text is None and "3.631 uJy" in words and "22.5" in words


@pytest.mark.parametrize("ext", [".fits", ".parquet", ".ecsv"])
def test_every_unit_round_trips_and_astropy_reads_fits_without_warnings(tmp_path, ext):
    table = Table({f"c{i}": np.arange(3.0) for i in range(len(UNITS))}, meta={"note": "x"})
    for i, unit in enumerate(UNITS):
        table[f"c{i}"].unit = unit
    table["c0"].description = "flux in r"
    path = write_catalog(table, tmp_path / f"t{ext}")
    back = check_fits_output(path, table) if ext == ".fits" else read_catalog(path)
    for name in table.colnames:
        assert same_unit(back[name].unit, table[name].unit), name
    assert back.meta == {"note": "x"}
    if ext != ".fits":
        strict = read_strictly(path)    # astropy's own reader keeps every unit in Parquet and ECSV
        assert all(same_unit(strict[c].unit, table[c].unit) for c in table.colnames)


def test_simulated_catalog_fits(tmp_path):
    from sedinfer.simulate import simulate_catalog

    cat = simulate_catalog(4, seed=1, progress=False)
    check_fits_output(write_catalog(cat, tmp_path / "sim.fits"), cat)


def test_posterior_output_fits(tmp_path):
    from sedinfer.posterior import runner
    from sedinfer.posterior.columns import column_map
    from sedinfer.posterior.sed_config import SDSS_BANDS
    from sedinfer.simulate import simulate_catalog

    write_catalog(simulate_catalog(4, seed=2, progress=False), tmp_path / "cat.fits")
    cmap = column_map(SDSS_BANDS, needs_redshift=True)
    runner.run_posterior(tmp_path / "cat.fits", tmp_path / "out.fits", cmap, model="sdss-specz", n_samples=20,
                         progress=False)
    out = check_fits_output(tmp_path / "out.fits")
    assert out["log_mstar_p50"].unit == u.dex(u.Msun) and out["sfr_100myr_p50"].unit == u.Msun / u.yr
    strict = read_strictly(tmp_path / "out.fits")
    assert strict["log_mstar_p50"].unit is None and strict["sfr_100myr_p50"].unit == u.Msun / u.yr
    comments = {v for k, v in fits.getheader(tmp_path / "out.fits", 1).items() if k.startswith("TCOMM")}
    assert "dex(solMass): log10 of the value in solMass (FITS has no dex)" in comments


def test_population_output_units_fits(tmp_path):
    from sedinfer.population.outputs import DERIVED_COLUMNS, PARAM_UNITS

    table = Table({name: np.linspace(0.1, 1, 3) for name in [*DERIVED_COLUMNS, *PARAM_UNITS]})
    for name, unit in {**DERIVED_COLUMNS, **PARAM_UNITS}.items():
        table[name].unit = unit
    table["mag_sdss_r0"] = np.array([17.0, 18.0, 19.0])
    table["mag_sdss_r0"].unit = u.ABmag
    check_fits_output(write_catalog(table, tmp_path / "pop.fits"), table)


def test_image_cube_units_are_fits_units(tmp_path):
    from sedinfer.images.fits_io import write_cube_fits

    cube = np.ones((2, 4, 4))
    path = write_cube_fits(tmp_path / "cube.fits", cube, cube, ["sdss_g0", "sdss_r0"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path) as hdul:
            units = [u.Unit(h.header["BUNIT"], format="fits") for h in hdul if "BUNIT" in h.header]
    assert units == [u.nJy, u.nJy ** 2]
