"""A user's WISE catalog: every format, nulls as non-detections, missing bands, id and RA/Dec matches."""

from __future__ import annotations

import numpy as np
import pytest

from sedinfer.errors import CatalogError
from sedinfer.spectra.wise_catalog import (
    match_ids,
    match_radec,
    match_wise,
    read_wise_catalog,
    wise_bands,
)

IDS = ["0266-51602-0001", "0266-51602-0002", "0266-51602-0003"]


def catalog_columns(upper: bool = False) -> dict:
    cols = {"id": IDS, "ra": [10.0, 10.01, 359.99995], "dec": [-5.0, -5.0, 0.0]}
    for b in range(1, 5):
        cols[f"w{b}mpro"] = [12.0 + b, 12.1 + b, 12.2 + b]
        cols[f"w{b}sigmpro"] = [0.02, None if b == 4 else 0.03, 0.04]     # row 2: W4 not detected
    return {k.upper(): v for k, v in cols.items()} if upper else cols


def write(path, cols) -> None:
    fmt = path.suffix
    if fmt == ".csv":
        names = list(cols)
        rows = [",".join("" if cols[c][i] is None else str(cols[c][i]) for c in names) for i in range(3)]
        path.write_text("\n".join([",".join(names), *rows]) + "\n")
    elif fmt == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({k: pa.array(v) for k, v in cols.items()}), path)   # None -> null
    else:
        from astropy.table import Table

        Table({k: [np.nan if x is None else x for x in v] for k, v in cols.items()}).write(path)


@pytest.mark.parametrize("suffix,upper", [(".csv", False), (".parquet", False), (".fits", True)])
def test_every_format_reads_nulls_as_non_detections(tmp_path, suffix, upper):
    path = tmp_path / f"wise{suffix}"
    write(path, catalog_columns(upper))
    cat = read_wise_catalog(path, "id", id_column="id")
    assert list(cat.ids) == IDS and cat.mpro.shape == (3, 4)
    assert np.isnan(cat.sigmpro[1, 3]) and np.isfinite(np.delete(cat.sigmpro.ravel(), 7)).all()
    pos = read_wise_catalog(path, "radec")
    np.testing.assert_allclose(pos.ra_deg, [10.0, 10.01, 359.99995])


def test_missing_bands_or_match_columns_are_named(tmp_path):
    cols = catalog_columns()
    del cols["w2sigmpro"], cols["w4mpro"]
    write(tmp_path / "w.csv", cols)
    with pytest.raises(CatalogError, match=r"w4mpro, w2sigmpro \(needs w1mpro..w4mpro"):
        read_wise_catalog(tmp_path / "w.csv")
    write(tmp_path / "ok.csv", catalog_columns())
    with pytest.raises(CatalogError, match="match column.*objid.*--id-column"):
        read_wise_catalog(tmp_path / "ok.csv", id_column="objid")
    with pytest.raises(CatalogError, match="match column.*RAJ2000"):
        read_wise_catalog(tmp_path / "ok.csv", "radec", ra_column="RAJ2000")
    with pytest.raises(CatalogError, match="--match"):
        read_wise_catalog(tmp_path / "ok.csv", "name")


def test_non_detections_get_the_papers_sigma_in_the_likelihood():
    import torch

    from sedinfer.spectra.predictor import NONDETECTION_SIGMA_MAG, likelihood_sigma

    m = np.array([[12, 12, 9, 7.5], [12, np.nan, 9, 7.5]])
    s = np.ma.masked_invalid(np.array([[0.02, 0.0, -1, np.nan], [0.02, 0.03, np.inf, 0.1]]))
    s[0, 3] = np.ma.masked
    mag, sig = wise_bands(m, s)
    assert np.isfinite(sig).tolist() == [[True, False, False, False], [True, False, False, True]]
    lik = likelihood_sigma(torch.as_tensor(sig))
    assert (lik[~torch.isfinite(torch.as_tensor(sig))] == NONDETECTION_SIGMA_MAG).all()


def test_match_ids_keeps_unmatched_and_ambiguous_rows():
    row, why = match_ids([" a", "b", "c", "7"], ["a", "c", "c", 7])
    assert row.tolist() == [0, -1, -1, 3]
    assert "'b' not in the WISE catalog" in why[1] and "2 times" in why[2] and why[0] == why[3] == ""


def test_match_radec_within_two_arcsec_across_ra_zero():
    cat_ra, cat_dec = np.array([10.0, 10.01, 359.99995, np.nan]), np.array([-5.0, -5.0, 0.0, 1.0])
    ra = np.array([10.0 + 1.5 / 3600 / np.cos(np.radians(5)), 10.0 + 3 / 3600, 0.00005, np.nan])
    row, sep, why = match_radec(ra, np.array([-5.0, -5.0, 0.0, 1.0]), cat_ra, cat_dec)
    assert row.tolist() == [0, -1, 2, -1]
    assert sep[0] == pytest.approx(1.5, abs=0.01) and sep[2] == pytest.approx(0.36, abs=0.01)
    assert "no WISE source within 2 arcsec (nearest 2.99" in why[1] and "no RA/Dec" in why[3]


def test_match_wise_fills_unmatched_rows_with_nan(tmp_path):
    write(tmp_path / "w.parquet", catalog_columns())
    m = match_wise(read_wise_catalog(tmp_path / "w.parquet"), ids=[IDS[1], "nope"])
    assert m.ok.tolist() == [True, False] and m.row.tolist() == [1, -1]
    assert m.n_detected.tolist() == [3, 0] and np.isnan(m.mpro[1]).all()


def test_fibre_position_not_plate_centre_of_real_files():
    ppxf = pytest.importorskip("ppxf")           # dev dependency: ships two SDSS DR18 spec files
    from pathlib import Path

    from sedinfer.spectra.sdss import read_sdss_positions, read_spec_file

    path = Path(ppxf.__file__).parent / "spectra" / "NGC3073_SDSS_DR18.fits"
    ra, dec = read_sdss_positions([path, Path("missing.fits")])
    np.testing.assert_allclose([ra[0], dec[0]], [150.21698, 55.618834], atol=1e-5)  # not RA = 150.818
    assert np.isnan(ra[1]) and read_spec_file(path)["ra_deg"] == pytest.approx(150.21698, abs=1e-5)
