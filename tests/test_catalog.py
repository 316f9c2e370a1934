"""Tests of sedinfer.catalog: format round trips, atomic writes, column errors, chunked reading."""

from __future__ import annotations

import json
import os

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table, vstack

import sedinfer.catalog as catalog
from sedinfer.catalog import (
    FLUX_UNIT,
    catalog_columns,
    catalog_format,
    flux_bands,
    flux_column,
    flux_err_column,
    flux_true_column,
    iter_catalog_chunks,
    read_catalog,
    write_catalog,
)
from sedinfer.errors import CatalogError

KEEP_UNITS = ["fits", "fits.gz", "parquet", "ecsv"]
ALL = [*KEEP_UNITS, "csv"]
UNITS = {"log_mass": "log10(Msun)", "log_mstar": "dex(Msun)", "sfr": "Msun/yr", "age": "Gyr",
         "flux_sdss_r0": FLUX_UNIT, "flux_err_sdss_r0": FLUX_UNIT}
META = {"model_config": json.dumps({"sfh": "nmf", "dust": "cf", "z_max": 1.55}), "seed": 42,
        "filters": json.dumps(["sdss_r0"]), "long": "x" * 300}


def make_table(n: int = 11) -> Table:
    rng = np.random.default_rng(0)
    t = Table()
    t["id"] = np.arange(n, dtype=np.int64)
    t["log_mass"] = rng.uniform(8, 12, n).astype(np.float32)
    t["log_mstar"] = rng.uniform(8, 12, n)
    t["sfr"] = rng.lognormal(size=n).astype(np.float32)
    t["age"] = rng.uniform(0, 13, n)
    t["flux_sdss_r0"] = rng.lognormal(size=n)
    t["flux_err_sdss_r0"] = rng.uniform(0.1, 1, n)
    t["name"] = [f"gal{i}" for i in range(n)]
    t["good"] = rng.uniform(size=n) > 0.5
    for name, unit in UNITS.items():
        t[name].unit = unit
    t.meta.update(META)
    return t


@pytest.fixture
def table() -> Table:
    return make_table()


def assert_same_values(a: Table, b: Table) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        if a[name].dtype.kind == "f":
            np.testing.assert_allclose(np.asarray(b[name]), np.asarray(a[name]), rtol=1e-7)
        else:
            assert list(b[name]) == list(a[name]), name


@pytest.mark.parametrize("ext", KEEP_UNITS)
def test_round_trip_keeps_values_dtypes_units_and_meta(tmp_path, table, ext):
    path = write_catalog(table, tmp_path / f"cat.{ext}")
    back = read_catalog(path)
    assert_same_values(table, back)
    for name in table.colnames:
        assert back[name].dtype.kind == table[name].dtype.kind, name
        if table[name].dtype.kind != "U":
            assert back[name].dtype == table[name].dtype, name  # native byte order, same width
        assert back[name].unit == table[name].unit, name
    np.testing.assert_array_equal(back["log_mass"], table["log_mass"])  # float32 exact
    assert back["flux_sdss_r0"].unit == u.nanomaggy
    assert {k: back.meta[k] for k in META} == META
    assert json.loads(back.meta["model_config"])["sfh"] == "nmf"


def test_csv_round_trip_keeps_values_and_dtypes(tmp_path, table):
    """Plain CSV keeps names, values and value kinds (floats come back as float64)."""
    back = read_catalog(write_catalog(table, tmp_path / "cat.csv"))
    assert_same_values(table, back)
    assert back["id"].dtype == np.int64 and back["good"].dtype == bool
    assert back["age"].dtype == np.float64 and back["name"].dtype.kind == "U"
    np.testing.assert_array_equal(back["age"], table["age"])  # float64 exact through text


def test_original_table_untouched_by_write(tmp_path, table):
    write_catalog(table, tmp_path / "cat.fits", meta={"extra": 1})
    assert table["flux_sdss_r0"].unit == FLUX_UNIT and "extra" not in table.meta
    assert read_catalog(tmp_path / "cat.fits").meta["extra"] == 1


def test_atomic_write_refuses_overwrite_and_leaves_no_temp(tmp_path, table):
    path = tmp_path / "cat.parquet"
    write_catalog(table, path)
    assert os.listdir(tmp_path) == ["cat.parquet"]
    with pytest.raises(CatalogError, match="already exists.*overwrite=True"):
        write_catalog(table[:3], path)
    assert len(read_catalog(path)) == len(table)
    write_catalog(table[:3], path, overwrite=True)
    assert len(read_catalog(path)) == 3
    assert os.listdir(tmp_path) == ["cat.parquet"]


def test_failed_write_leaves_nothing(tmp_path, table, monkeypatch):
    path = tmp_path / "cat.fits"
    write_catalog(table, path)
    before = path.read_bytes()

    def broken(tab, tmp, fmt):
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(catalog, "_write", broken)
    with pytest.raises(CatalogError, match="disk full"):
        write_catalog(table, path, overwrite=True)
    with pytest.raises(CatalogError, match="disk full"):
        write_catalog(table, tmp_path / "new.fits")
    assert os.listdir(tmp_path) == ["cat.fits"]
    assert path.read_bytes() == before


def test_meta_must_be_json(tmp_path, table):
    with pytest.raises(CatalogError, match="'bad'.*JSON"):
        write_catalog(table, tmp_path / "cat.ecsv", meta={"bad": object()})
    assert os.listdir(tmp_path) == []


def test_missing_columns_message_lists_missing_and_available(tmp_path, table):
    path = write_catalog(table, tmp_path / "cat.parquet")
    with pytest.raises(CatalogError) as err:
        read_catalog(path, columns=["id", "nope", "flux_sdss_g0"])
    msg = str(err.value)
    assert "nope" in msg and "flux_sdss_g0" in msg
    assert all(name in msg.split("available columns:")[1] for name in table.colnames)


@pytest.mark.parametrize("ext", ALL)
def test_column_selection(tmp_path, table, ext):
    path = write_catalog(table, tmp_path / f"cat.{ext}")
    assert catalog_columns(path) == table.colnames
    back = read_catalog(path, columns=["flux_sdss_r0", "id"])
    assert back.colnames == ["flux_sdss_r0", "id"]
    np.testing.assert_allclose(back["flux_sdss_r0"], table["flux_sdss_r0"])


def test_bad_paths(tmp_path):
    with pytest.raises(CatalogError, match=r"extension.*\.parquet.*\.csv"):
        read_catalog(tmp_path / "cat.txt")
    with pytest.raises(CatalogError, match="does not exist"):
        read_catalog(tmp_path / "missing.fits")
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(CatalogError, match="cannot read.*parquet"):
        read_catalog(tmp_path / "junk.parquet")
    with pytest.raises(CatalogError, match="extension"):
        write_catalog(make_table(), tmp_path / "cat.h5")
    with pytest.raises(CatalogError, match="directory"):
        write_catalog(make_table(), tmp_path / "no" / "cat.fits")


def test_format_and_names():
    assert catalog_format("a/b.FITS.gz") == "fits" and catalog_format("x.pq") == "parquet"
    assert flux_column("sdss_r0") == "flux_sdss_r0"
    assert flux_err_column("sdss_r0") == "flux_err_sdss_r0"
    assert flux_true_column("sdss_r0") == "flux_true_sdss_r0"
    cols = ["id", "flux_a", "flux_err_a", "flux_true_a", "flux_b", "flux_err_b"]
    assert flux_bands(cols) == ["a", "b"]
    assert FLUX_UNIT.to(u.uJy, equivalencies=u.zero_point_flux(3631 * u.Jy)) == pytest.approx(3.631)


@pytest.mark.parametrize("ext", ALL)
def test_chunks(tmp_path, table, ext):
    path = write_catalog(table, tmp_path / f"cat.{ext}")
    chunks = list(iter_catalog_chunks(path, 4))
    assert [len(c) for c in chunks] == [4, 4, 3]
    assert_same_values(table, vstack(chunks))
    if ext != "csv":
        assert all(c["flux_sdss_r0"].unit == FLUX_UNIT for c in chunks)
        assert all(c.meta["seed"] == 42 for c in chunks)
        assert chunks[1]["log_mass"].dtype == np.float32
    sub = list(iter_catalog_chunks(path, 100, columns=["id", "age"]))
    assert len(sub) == 1 and sub[0].colnames == ["id", "age"]


def test_chunk_errors(tmp_path, table):
    path = write_catalog(table, tmp_path / "cat.parquet")
    with pytest.raises(CatalogError, match="chunk_rows"):
        next(iter_catalog_chunks(path, 0))
    with pytest.raises(CatalogError, match="nope"):
        next(iter_catalog_chunks(path, 2, columns=["nope"]))
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(CatalogError, match="cannot read"):
        next(iter_catalog_chunks(tmp_path / "junk.parquet", 2))


def test_parquet_chunks_stream_row_batches(tmp_path):
    """Many small batches come from pyarrow without materialising the whole table."""
    big = make_table(1000)
    path = write_catalog(big, tmp_path / "big.parquet")
    sizes = [len(c) for c in iter_catalog_chunks(path, 128)]
    assert sizes == [128] * 7 + [104]
