"""Which catalog columns feed a SED posterior: the ID, the redshift and a flux and error per band.

The defaults read what ``sedinfer simulate`` writes: ``id``, ``redshift``, ``flux_<band>`` and
``flux_err_<band>``. Other catalogs are mapped with options (:func:`column_map`) or a small TOML
file (:func:`read_column_toml`), for example::

    id = "objid"
    redshift = "z_spec"                 # ignored by photometric-redshift models
    flux_pattern = "cmodelflux_{band}"  # {band} is the model's band name, e.g. sdss_r0
    err_pattern = "cmodelfluxerr_{band}"
    [flux]                              # per-band names override the patterns
    sdss_u0 = "u_flux"
    [flux_err]
    sdss_u0 = "u_flux_err"
    input_units = "ab"                  # optional: nmgy (default), maggies, ujy, njy, ab, asinh

Photometry is returned in nanomaggies. Columns may hold fluxes in any flux-density unit or AB /
SDSS asinh magnitudes, told by their units or by ``input_units``; flux columns without either
that look like magnitudes are refused (:mod:`sedinfer.photometry_input` has the rules).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sedinfer.errors import CatalogError
from sedinfer.photometry_input import band_kind as _band_kind
from sedinfer.photometry_input import check_input_units, refuse_magnitudes, to_nmgy

DEFAULT_ID = "id"
DEFAULT_REDSHIFT = "redshift"
DEFAULT_FLUX_PATTERN = "flux_{band}"
DEFAULT_ERR_PATTERN = "flux_err_{band}"
TOML_KEYS = ("id", "redshift", "flux_pattern", "err_pattern", "flux", "flux_err", "input_units")


@dataclass(frozen=True)
class ColumnMap:
    """Catalog column names: ``id`` and ``redshift`` (each None when not used) and, per band of
    ``bands`` (model order), ``flux`` and ``flux_err``; ``input_units`` says what unit-less photometry
    columns hold (None: nanomaggies, and refuse magnitude-like values)."""

    id: str | None
    redshift: str | None
    bands: tuple[str, ...]
    flux: tuple[str, ...]
    flux_err: tuple[str, ...]
    input_units: str | None = None

    def __post_init__(self) -> None:
        check_input_units(self.input_units)

    def required(self) -> list[str]:
        """All columns to read, without repeats, in a stable order."""
        names = [*([self.id] if self.id else []), *([self.redshift] if self.redshift else []), *self.flux,
                 *self.flux_err]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict:
        return {"id": self.id, "redshift": self.redshift, "bands": list(self.bands),
                "flux": list(self.flux), "flux_err": list(self.flux_err), "input_units": self.input_units}

    def check(self, available: Sequence[str], catalog: str | os.PathLike) -> None:
        """Raise :class:`CatalogError` listing the expected columns if any is missing."""
        missing = [c for c in self.required() if c not in set(available)]
        if missing:
            expected = [f"id: {self.id}"] if self.id else []
            expected += [f"redshift: {self.redshift}"] if self.redshift else []
            expected += [f"{b}: {f} ± {e}"
                         for b, f, e in zip(self.bands, self.flux, self.flux_err, strict=True)]
            raise CatalogError(
                f"catalog {os.fspath(catalog)!r} lacks column(s) {', '.join(missing)}; expected "
                f"{'; '.join(expected)} (map columns with --id-col, --redshift-col, --flux-cols, "
                f"--err-cols or --columns FILE.toml)")

    def arrays(self, table, guard: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(ids (N,), flux (N, B), flux_err (N, B), redshift (N,) or None)`` from a Table;
        photometry converted to nanomaggies (float64), empty cells as NaN; row numbers as ids
        without an id column. ``guard``: first :meth:`refuse_magnitudes` on this table."""
        if guard:
            self.refuse_magnitudes(table)
        ids = np.asarray(table[self.id]) if self.id else np.arange(len(table))
        flux, err = [], []
        for band, fc, ec in zip(self.bands, self.flux, self.flux_err, strict=True):
            f, e = to_nmgy(_numeric(table[fc], fc), _numeric(table[ec], ec), band=band, flux_name=fc,
                           err_name=ec, flux_unit=getattr(table[fc], "unit", None),
                           err_unit=getattr(table[ec], "unit", None), option=self.input_units)
            flux.append(f)
            err.append(e)
        z = _numeric(table[self.redshift], self.redshift) if self.redshift else None
        return ids, np.stack(flux, axis=1), np.stack(err, axis=1), z

    def refuse_magnitudes(self, table) -> None:
        """:class:`CatalogError` if the flux columns read as nanomaggies by default (no unit, no
        ``input_units``) all look like magnitudes (:func:`sedinfer.photometry_input.refuse_magnitudes`)."""
        defaulted = [(c, _numeric(table[c], c)) for c in self.flux
                     if _band_kind(c, getattr(table[c], "unit", None), self.input_units)[2]]
        refuse_magnitudes(defaulted)


def _numeric(col, name: str) -> np.ndarray:
    """A column as float64 (masked cells -> NaN)."""
    if hasattr(col, "filled") and np.ma.is_masked(col):
        col = col.astype(np.float64).filled(np.nan) if col.dtype.kind in "iuf" else col
    try:
        return np.asarray(col, dtype=np.float64)
    except (TypeError, ValueError):
        raise CatalogError(f"column {name!r} is not numeric (dtype {col.dtype}); expected numbers") from None


def _split(value: str | Sequence[str] | None) -> list[str] | str | None:
    """A pattern (contains ``{band}``) stays a string; a comma-separated list becomes a list."""
    if value is None or not isinstance(value, str):
        return list(value) if value is not None else None
    if "{band}" in value:
        return value
    return [v.strip() for v in value.split(",") if v.strip()]


def _per_band(spec, bands: tuple[str, ...], what: str, option: str) -> dict[str, str]:
    if isinstance(spec, str):
        try:
            return {b: spec.format(band=b) for b in bands}
        except (KeyError, IndexError, ValueError) as err:
            raise CatalogError(f"{option} pattern {spec!r} is invalid ({err}); use {{band}} for the "
                               f"band name, e.g. 'flux_{{band}}'") from None
    if len(spec) != len(bands):
        raise CatalogError(f"{option} lists {len(spec)} {what} column(s) but the model has {len(bands)} "
                           f"bands; give one per band in the order {', '.join(bands)}")
    return dict(zip(bands, spec, strict=True))


def read_column_toml(path: str | os.PathLike, bands: Sequence[str]) -> dict:
    """Checked contents of a column-map TOML file (keys of :data:`TOML_KEYS`)."""
    from sedinfer.posterior.card import read_toml

    if not os.path.isfile(path):
        raise CatalogError(f"column map file {os.fspath(path)!r} does not exist")
    data = read_toml(path)
    unknown = sorted(set(data) - set(TOML_KEYS))
    if unknown:
        raise CatalogError(f"{os.fspath(path)}: unknown key(s) {unknown}; expected some of {list(TOML_KEYS)}")
    for table in ("flux", "flux_err"):
        if table in data:
            if not isinstance(data[table], Mapping):
                raise CatalogError(f"{os.fspath(path)}: [{table}] must be a table of band = \"column\"")
            extra = sorted(set(data[table]) - set(bands))
            if extra:
                raise CatalogError(f"{os.fspath(path)}: [{table}] names band(s) {extra} the model does not "
                                   f"use; its bands are {', '.join(bands)}")
    for key in ("id", "flux_pattern", "err_pattern", "input_units"):
        if key in data and not isinstance(data[key], str):
            raise CatalogError(f"{os.fspath(path)}: {key} must be a string")
    if "redshift" in data and not isinstance(data["redshift"], (str, bool)):
        raise CatalogError(f"{os.fspath(path)}: redshift must be a column name (or false)")
    return data


def column_map(bands: Sequence[str], needs_redshift: bool, *, id_col: str | None = None,
               redshift_col: str | None = None, flux_cols: str | Sequence[str] | None = None,
               err_cols: str | Sequence[str] | None = None,
               toml: str | os.PathLike | None = None, input_units: str | None = None) -> ColumnMap:
    """The :class:`ColumnMap` from defaults, then the TOML file, then explicit options.

    ``flux_cols`` / ``err_cols``: a pattern with ``{band}`` or one column per band (a sequence or a
    comma-separated string) in model band order. The redshift is used only if ``needs_redshift``.
    ``input_units``: one of :data:`sedinfer.photometry_input.INPUT_UNITS` for unit-less columns.
    """
    bands = tuple(bands)
    cfg = read_column_toml(toml, bands) if toml is not None else {}
    flux = _per_band(cfg.get("flux_pattern", DEFAULT_FLUX_PATTERN), bands, "flux", "flux_pattern")
    err = _per_band(cfg.get("err_pattern", DEFAULT_ERR_PATTERN), bands, "error", "err_pattern")
    flux.update(cfg.get("flux", {}))
    err.update(cfg.get("flux_err", {}))
    if flux_cols is not None:
        flux = _per_band(_split(flux_cols), bands, "flux", "--flux-cols")
    if err_cols is not None:
        err = _per_band(_split(err_cols), bands, "error", "--err-cols")
    redshift = None
    if needs_redshift:
        redshift = redshift_col or cfg.get("redshift") or DEFAULT_REDSHIFT
        if redshift is True:
            redshift = DEFAULT_REDSHIFT
    return ColumnMap(id=id_col or cfg.get("id", DEFAULT_ID), redshift=redshift, bands=bands,
                     flux=tuple(flux[b] for b in bands), flux_err=tuple(err[b] for b in bands),
                     input_units=input_units or cfg.get("input_units"))


__all__ = ["ColumnMap", "column_map", "read_column_toml", "DEFAULT_ID", "DEFAULT_REDSHIFT",
           "DEFAULT_FLUX_PATTERN", "DEFAULT_ERR_PATTERN"]
