"""Catalog I/O: the one place where sedinfer reads and writes tables of galaxies.

Formats are chosen by extension (:data:`FORMATS`): FITS (``.fits``, ``.fit``, ``.fits.gz``),
Parquet (``.parquet``, ``.pq``), ECSV (``.ecsv``) and plain CSV (``.csv``). Column units and
table metadata survive FITS (units as below; the metadata as one JSON header value ``SEDMETA``),
Parquet (astropy's YAML schema metadata) and ECSV (its YAML header); plain CSV keeps only the
column names and values.

FITS units (:func:`fits_unit`, the one rule): ``TUNITn`` holds only strings that astropy's FITS
unit parser reads back, without a warning, as the same unit (``Gyr``, ``solMass yr-1``, ``mag``).
Units the FITS standard lacks get no ``TUNITn`` but a ``TCOMMn`` in words: nanomaggies (not a
FITS unit), logarithmic quantities (``dex(solMass)``: FITS has no ``dex`` and no function units,
and the physical unit alone would misstate a log10 value) and AB magnitudes (``TUNITn = 'mag'``
plus ``TCOMMn``, since FITS has no ``mag(AB)``). The exact astropy units of those columns are kept
in one JSON header value ``SEDUNITS`` ({column: unit string}) that :func:`read_catalog` restores,
so ``astropy.table.Table.read`` of a sedinfer FITS file raises no ``UnitsWarning`` and sedinfer
reads every unit back. Metadata values must be JSON-serialisable; sedinfer stores nested
objects (model configuration, prior, noise model) as JSON strings.

Fluxes in catalogs are in **nanomaggies** (:data:`FLUX_UNIT`): 1 nmgy = 1e-9 maggies =
3.631 µJy, AB magnitude = 22.5 - 2.5 log10(f / nmgy). Columns are named by
:func:`flux_column`, :func:`flux_err_column` and :func:`flux_true_column`.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Column, MaskedColumn, Table

from sedinfer.errors import CatalogError

FLUX_UNIT = u.nanomaggy
"""Unit of every flux column: nanomaggies (3.631 µJy; AB mag = 22.5 - 2.5 log10 f). Convert with
``equivalencies=u.zero_point_flux(3631 * u.Jy)``, e.g. ``FLUX_UNIT.to(u.uJy, equivalencies=...)``."""

FORMATS: dict[str, str] = {".fits": "fits", ".fit": "fits", ".fits.gz": "fits", ".fit.gz": "fits",
                           ".parquet": "parquet", ".pq": "parquet", ".ecsv": "ecsv", ".csv": "csv"}
"""Supported file extensions and their formats."""

_META_KEY = "SEDMETA"  # FITS header keyword holding the table metadata as JSON
_UNITS_KEY = "SEDUNITS"  # FITS header keyword: JSON {column: astropy unit} of units FITS cannot state


def flux_column(band: str) -> str:
    """Name of the observed (noisy) flux column of ``band``, in nanomaggies."""
    return f"flux_{band}"


def flux_err_column(band: str) -> str:
    """Name of the 1σ flux-uncertainty column of ``band``, in nanomaggies."""
    return f"flux_err_{band}"


def flux_true_column(band: str) -> str:
    """Name of the noiseless (true) flux column of ``band`` in simulated catalogs, in nanomaggies."""
    return f"flux_true_{band}"


def flux_bands(colnames: Iterable[str]) -> list[str]:
    """Bands that have an observed flux column (``flux_<band>``), in column order."""
    return [c[5:] for c in colnames
            if c.startswith("flux_") and not c.startswith(("flux_err_", "flux_true_")) and len(c) > 5]


def _extension(path: str | os.PathLike) -> str:
    name = Path(path).name.lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise CatalogError(f"cannot tell the catalog format of {os.fspath(path)!r} from its extension; "
                       f"supported extensions: {', '.join(FORMATS)}")


def catalog_format(path: str | os.PathLike) -> str:
    """``"fits"``, ``"parquet"``, ``"ecsv"`` or ``"csv"`` from the extension of ``path``."""
    return FORMATS[_extension(path)]


# ------------------------------------------------------------------------------ reading
@contextmanager
def _reading(path: Path, fmt: str):
    """Turn any failure of a reader into a CatalogError naming the file and format."""
    try:
        yield
    except CatalogError:
        raise
    except Exception as err:
        raise CatalogError(f"cannot read {str(path)!r} as a {fmt} catalog ({type(err).__name__}: "
                           f"{err}); supported extensions: {', '.join(FORMATS)}") from err


def _open_fits(path: Path):
    from astropy.io import fits

    return fits.open(path, memmap=not path.name.lower().endswith(".gz"), character_as_bytes=False)


def catalog_columns(path: str | os.PathLike) -> list[str]:
    """Column names of a catalog, read from its header / schema only where the format allows."""
    path, fmt = _existing(path)
    with _reading(path, fmt):
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if fmt == "fits":
            with _open_fits(path) as hdul:
                return list(_table_hdu(hdul, path).columns.names)
        if fmt == "csv":
            import pandas as pd

            return [str(c) for c in pd.read_csv(path, nrows=0).columns]
        return list(Table.read(path, format="ascii.ecsv").colnames)


def read_catalog(path: str | os.PathLike, columns: Sequence[str] | None = None) -> Table:
    """Read a catalog into an astropy Table (native byte order, units and metadata kept).

    ``columns`` selects (and orders) columns; only those are read from Parquet and FITS files.
    Raises :class:`CatalogError` for an unknown extension, an unreadable file or missing columns.
    """
    path, fmt, columns = _selection(path, columns)
    with _reading(path, fmt):
        if fmt == "fits":
            with _open_fits(path) as hdul:
                return _fits_table(_table_hdu(hdul, path), columns, slice(None))
        if fmt == "parquet":
            from astropy.io.misc.parquet import read_table_parquet

            table = read_table_parquet(str(path), include_names=columns)
        elif fmt == "csv":
            import pandas as pd

            return _from_pandas(pd.read_csv(path, usecols=columns), columns)
        else:
            table = Table.read(path, format="ascii.ecsv")
    return _native(table[columns] if columns is not None else table)


def iter_catalog_chunks(path: str | os.PathLike, chunk_rows: int,
                        columns: Sequence[str] | None = None) -> Iterator[Table]:
    """Yield consecutive Tables of at most ``chunk_rows`` rows, without loading the whole file.

    Parquet streams pyarrow record batches, FITS slices a memory map (``.fits.gz`` cannot be
    memory-mapped and is read whole), CSV reads pandas chunks; ECSV is read whole, then sliced.
    Units and table metadata are attached to every chunk as in :func:`read_catalog`.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise CatalogError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    chunk_rows = int(chunk_rows)
    path, fmt, columns = _selection(path, columns)
    if fmt == "ecsv":
        table = read_catalog(path, columns)
        for start in range(0, len(table), chunk_rows):
            yield table[start:start + chunk_rows]
        return
    with _reading(path, fmt):
        if fmt == "parquet":
            yield from _parquet_chunks(path, chunk_rows, columns)
        elif fmt == "fits":
            with _open_fits(path) as hdul:
                hdu = _table_hdu(hdul, path)
                for start in range(0, hdu.data.shape[0] if hdu.data is not None else 0, chunk_rows):
                    yield _fits_table(hdu, columns, slice(start, start + chunk_rows))
        else:
            import pandas as pd

            with pd.read_csv(path, usecols=columns, chunksize=chunk_rows) as reader:
                yield from (_from_pandas(frame, columns) for frame in reader if len(frame))


def _existing(path: str | os.PathLike) -> tuple[Path, str]:
    fmt = catalog_format(path)
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog {str(path)!r} does not exist or is not a file")
    return path, fmt


def _selection(path: str | os.PathLike, columns: Sequence[str] | None
               ) -> tuple[Path, str, list[str] | None]:
    """Existing path, its format and the requested columns (all present, else CatalogError)."""
    path, fmt = _existing(path)
    if columns is None:
        return path, fmt, None
    columns = [columns] if isinstance(columns, str) else list(columns)
    available = catalog_columns(path)
    missing = [c for c in columns if c not in available]
    if missing:
        raise CatalogError(f"catalog {str(path)!r} lacks column(s) {', '.join(missing)}; "
                           f"available columns: {', '.join(available)}")
    return path, fmt, columns


def _from_pandas(frame, columns: Sequence[str] | None) -> Table:
    """A CSV frame as a Table; empty float cells stay NaN (as in FITS and Parquet), not masked."""
    table = Table.from_pandas(frame)
    for name in table.colnames:
        if isinstance(table[name], MaskedColumn) and table[name].dtype.kind == "f":
            table[name] = Column(table[name].filled(np.nan))
    return table[columns] if columns is not None else table


def _native(table: Table) -> Table:
    """Columns in native byte order (torch cannot wrap big-endian arrays)."""
    for name in table.colnames:
        col = table[name]
        if getattr(col.dtype, "byteorder", "=") not in ("=", "|"):
            table[name] = col.astype(col.dtype.newbyteorder("="))
    return table


def _parse_unit(text: str | None, fits_format: bool = False):
    if not text:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        unit = u.Unit(text, format="fits", parse_strict="silent") if fits_format else None
        if unit is None or isinstance(unit, u.UnrecognizedUnit):
            unit = u.Unit(text, parse_strict="silent")
    return unit


def _table_hdu(hdul, path: Path):
    from astropy.io.fits import BinTableHDU, TableHDU

    for hdu in hdul:
        if isinstance(hdu, (BinTableHDU, TableHDU)):
            return hdu
    raise CatalogError(f"FITS file {str(path)!r} has no table extension")


def _fits_table(hdu, columns: Sequence[str] | None, rows: slice) -> Table:
    """Rows of a FITS table HDU as a Table with in-memory, native-order copies of the data."""
    data = hdu.data
    names = list(columns) if columns is not None else list(hdu.columns.names)
    exact_units = json.loads(hdu.header[_UNITS_KEY]) if _UNITS_KEY in hdu.header else {}
    cols = []
    for name in names:
        fcol = hdu.columns[name]
        arr = np.array(data[name][rows]) if data is not None else np.zeros(0)
        if arr.dtype.kind == "U":
            arr = np.char.rstrip(arr)
        unit = _parse_unit(exact_units[name]) if name in exact_units else _parse_unit(fcol.unit,
                                                                                     fits_format=True)
        kwargs = {"name": name, "unit": unit}
        if fcol.null is not None and arr.dtype.kind in "iu":
            cols.append(MaskedColumn(arr, mask=arr == fcol.null, **kwargs))
        else:
            cols.append(Column(arr, **kwargs))
    header = hdu.header
    if _META_KEY in header:
        meta = json.loads(header[_META_KEY])
    else:
        from astropy.io.fits.connect import REMOVE_KEYWORDS, is_column_keyword

        meta = {k: v for k, v in header.items() if isinstance(v, (str, int, float, bool))
                and k not in ("COMMENT", "HISTORY", "", _UNITS_KEY, *REMOVE_KEYWORDS)
                and not is_column_keyword(k) and not (k.startswith("TCOMM") and k[5:].isdigit())}
    return _native(Table(cols, meta=meta))


def _parquet_chunks(path: Path, chunk_rows: int, columns: Sequence[str] | None) -> Iterator[Table]:
    import pyarrow.parquet as pq
    from astropy.table.meta import get_header_from_yaml

    pf = pq.ParquetFile(path)
    md = {k.decode(): v.decode() for k, v in (pf.schema_arrow.metadata or {}).items()}
    header = get_header_from_yaml(md["table_meta_yaml"].split("\n")) if "table_meta_yaml" in md else {}
    units = {c["name"]: c.get("unit") for c in header.get("datatype", [])}
    meta = header.get("meta", {})
    with pf:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            cols = []
            for name, arr in zip(batch.schema.names, batch.columns, strict=True):
                values = arr.to_numpy(zero_copy_only=False)
                values = values.astype(str) if values.dtype == object else values
                cols.append(Column(values, name=name, unit=_parse_unit(units.get(name))))
            yield Table(cols, meta=dict(meta))


# ------------------------------------------------------------------------------ writing
def write_catalog(table: Table, path: str | os.PathLike, overwrite: bool = False,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``table`` atomically: to a temporary file in the target directory, then renamed.

    The format follows the extension (:data:`FORMATS`). ``meta`` entries are added to (and
    override) ``table.meta``; all metadata values must be JSON-serialisable. An existing file is
    replaced only with ``overwrite=True``; a failed write leaves neither a partial file nor
    a temporary one. Returns the path written.
    """
    fmt = catalog_format(path)
    path = Path(path)
    if path.exists() and not overwrite:
        raise CatalogError(f"{str(path)!r} already exists; pass overwrite=True (--overwrite on the "
                           "command line) to replace it")
    if not path.parent.is_dir():
        raise CatalogError(f"output directory {str(path.parent)!r} does not exist")
    merged = {**dict(table.meta), **dict(meta or {})}
    for key, value in merged.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise CatalogError(f"metadata {key!r} is not JSON-serialisable ({err}); store it as a "
                               "string (e.g. json.dumps of a dict)") from err
    out = Table(table, copy=False)
    out.meta = merged
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{_extension(path)}"
    try:
        _write(out, tmp, fmt)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, (OSError, ValueError, TypeError)) and not isinstance(err, CatalogError):
            raise CatalogError(f"cannot write {str(path)!r} as {fmt}: {err}") from err
        raise
    return path


def _write(table: Table, tmp: Path, fmt: str) -> None:
    if fmt == "fits":
        return _write_fits(table, tmp)
    table.write(tmp, format={"parquet": "parquet", "ecsv": "ascii.ecsv", "csv": "ascii.csv"}[fmt])


def fits_unit(unit) -> tuple[str | None, str | None]:
    """``(TUNIT, TCOMM)`` of a FITS table column in ``unit`` (see the module docstring).

    ``TUNIT`` is a string astropy's FITS parser reads back as ``unit`` without a warning, ``'mag'``
    for a magnitude unit such as ``mag(AB)``, or None (no FITS unit: nanomaggies, ``dex(...)``,
    none or dimensionless). ``TCOMM`` (None when ``TUNIT`` is exact) names the unit in words:
    ``'dex(solMass): log10 of the value in solMass'``, ``'nmgy: nanomaggies, 3.631 uJy ...'``.
    """
    if unit is None:
        return None, None
    unit = unit if isinstance(unit, (u.UnitBase, u.FunctionUnitBase)) else u.Unit(unit, parse_strict="silent")
    if isinstance(unit, u.UnrecognizedUnit):        # a string astropy does not know: kept as written
        return None, f"{unit.name} (not a unit astropy or FITS knows)"
    if unit == u.dimensionless_unscaled:
        return None, None
    generic = unit.to_string()
    if not isinstance(unit, u.FunctionUnitBase):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                text = unit.to_string(format="fits")
                if u.Unit(text, format="fits") == unit:
                    return text, None
            except (ValueError, TypeError, Warning):
                pass
    if isinstance(unit, u.FunctionUnitBase):
        physical = unit.physical_unit
        if unit.function_unit == u.mag:
            zero = "AB magnitude" if unit == u.ABmag else f"magnitude of a quantity in {physical}"
            return "mag", f"{generic}: {zero} (FITS has no magnitude system)"
        if unit.function_unit == u.dex:
            what = ("a dimensionless value" if physical == u.dimensionless_unscaled
                    else f"the value in {physical.to_string()}")
            return None, f"{generic}: log10 of {what} (FITS has no dex)"
        return None, f"{generic} (no FITS unit)"
    if unit == u.dex:
        return None, "dex: log10 of a dimensionless value (FITS has no dex)"
    from sedinfer.units import AB_ZEROPOINT_JY

    try:
        ujy = (1 * unit).to(u.uJy, equivalencies=u.zero_point_flux(AB_ZEROPOINT_JY * u.Jy)).value
    except u.UnitConversionError:
        return None, f"{generic} (no FITS unit)"
    name = {"nmgy": "nanomaggies", "mgy": "maggies"}.get(generic, generic)
    return None, (f"{generic}: {name}, 1 {generic} = {ujy:.6g} uJy (AB mag = "
                  f"{2.5 * np.log10(AB_ZEROPOINT_JY * 1e6 / ujy):.6g} - 2.5 log10 f; no FITS unit)")


def _write_fits(table: Table, tmp: Path) -> None:
    """FITS with every unit kept under the rule of :func:`fits_unit`: TUNITn when FITS has the
    unit, else TCOMMn in words and the astropy unit in ``SEDUNITS``, which :func:`read_catalog`
    restores."""
    from astropy.io import fits

    bare = Table(table, copy=False)
    bare.meta = {}
    units = {}
    for name in bare.colnames:
        units[name], bare[name].unit = bare[name].unit, None
    hdu = fits.table_to_hdu(bare)
    exact = {}
    for i, name in enumerate(bare.colnames, start=1):
        text, words = fits_unit(units[name])
        if text is not None:
            hdu.header[f"TUNIT{i}"] = text
        if words is not None:
            hdu.header[f"TCOMM{i}"] = words
            exact[name] = units[name].to_string()
    if exact:
        hdu.header[_UNITS_KEY] = json.dumps(exact)
    hdu.header[_META_KEY] = json.dumps(table.meta)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)


__all__ = ["FLUX_UNIT", "FORMATS", "catalog_columns", "catalog_format", "fits_unit", "flux_bands",
           "flux_column", "flux_err_column", "flux_true_column", "iter_catalog_chunks", "read_catalog",
           "write_catalog"]
