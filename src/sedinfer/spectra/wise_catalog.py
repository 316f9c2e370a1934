"""A user's WISE catalog, matched to their spectra by id or by sky position (issue 17 §7, §9).

The catalog (FITS, Parquet, CSV or ECSV, read through :mod:`sedinfer.catalog`) must hold the
AllWISE profile-fit magnitudes and errors ``w1mpro`` … ``w4mpro``, ``w1sigmpro`` … ``w4sigmpro``
(Vega; names matched without regard to case, so ``W1MPRO`` works). A catalog without one of
them is refused with an error naming the missing columns.

**Non-detections** as AllWISE codes them (Cutri et al. 2013, §II.1.a): ``wNmpro`` holds the 95 %
upper limit and ``wNsigmpro`` is null (a Parquet null, an empty CSV cell or ``null``, NaN in
FITS). :func:`wise_bands` turns a null, non-finite or non-positive ``wNsigmpro``, and a band whose
``wNmpro`` is null, into σ = NaN; the predictor's likelihood gives those σ = 10⁴ mag
(:func:`sedinfer.spectra.predictor.likelihood_sigma`), as in the paper, so they drop out.

**Matching** (:func:`match_ids`, :func:`match_radec`, :func:`match_wise`): by an id column (the
spectra's ids are ``PLATE-MJD-FIBER`` as :func:`~sedinfer.spectra.read_sdss` writes them, e.g.
``0266-51602-0001``; compared as stripped strings), or by the nearest catalog source within
2″ (:data:`MATCH_RADIUS_ARCSEC`, astropy ``SkyCoord.match_to_catalog_sky``) of the spectrum's
fibre position (``PLUG_RA``, ``PLUG_DEC``; :func:`~sedinfer.spectra.sdss.read_sdss_positions`).
Every spectrum keeps its row: an unmatched id, an id found more than once, no counterpart within
the radius or no position get ``ok = False`` and a ``reason``. Two spectra of one galaxy may
match the same catalog source.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from sedinfer.catalog import catalog_columns, read_catalog
from sedinfer.errors import CatalogError
from sedinfer.spectra.wise import wise_columns

MATCH_MODES: tuple[str, ...] = ("id", "radec")
"""How spectra find their WISE row: an id column, or the sky position."""
MATCH_RADIUS_ARCSEC: float = 2.0
"""Largest separation (arcsec) of a positional match."""


@dataclass(frozen=True)
class WiseCatalog:
    """K catalog rows: ``mpro``, ``sigmpro`` (K, 4) Vega mag (σ NaN: non-detection, :func:`wise_bands`),
    and ``ids`` (K,) str or ``ra_deg``, ``dec_deg`` (K,) for the match; ``path`` the file."""

    path: str
    mpro: np.ndarray
    sigmpro: np.ndarray
    ids: np.ndarray | None = None
    ra_deg: np.ndarray | None = None
    dec_deg: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.mpro.shape[0])


@dataclass(frozen=True)
class WiseMatch:
    """The WISE photometry of N spectra: ``mpro``, ``sigmpro`` (N, 4) (NaN where unmatched or not
    detected), ``row`` (N,) catalog row (−1: none), ``sep_arcsec`` (N,) (NaN for id matches),
    ``ok`` (N,) and ``reason`` (N,) (empty where matched)."""

    mpro: np.ndarray
    sigmpro: np.ndarray
    row: np.ndarray
    sep_arcsec: np.ndarray
    ok: np.ndarray
    reason: np.ndarray

    @property
    def n_detected(self) -> np.ndarray:
        """(N,) bands with a measured σ (0 for unmatched rows)."""
        return np.isfinite(self.sigmpro).sum(1)


def wise_bands(mpro, sigmpro) -> tuple[np.ndarray, np.ndarray]:
    """(mpro, sigmpro) (N, 4) float64 with σ NaN wherever a band is not a detection: σ null,
    non-finite or ≤ 0, or the magnitude null (module docstring)."""
    m = np.ma.filled(np.ma.asarray(mpro, dtype=np.float64), np.nan)
    s = np.ma.filled(np.ma.asarray(sigmpro, dtype=np.float64), np.nan)
    if m.shape != s.shape or m.ndim != 2 or m.shape[1] != 4:
        raise ValueError(f"mpro and sigmpro must both be (N, 4), got {m.shape} and {s.shape}")
    detected = np.isfinite(m) & np.isfinite(s) & (s > 0)
    return m, np.where(detected, s, np.nan)


def match_ids(spec_ids, catalog_ids) -> tuple[np.ndarray, np.ndarray]:
    """(row (N,) int, −1 where none; reason (N,) str) of each spectrum id among the catalog ids."""
    spec = np.char.strip(np.asarray(spec_ids, dtype=str))
    cat = np.char.strip(np.asarray(catalog_ids, dtype=str))
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for i, key in enumerate(cat.tolist()):
        first.setdefault(key, i)
        count[key] = count.get(key, 0) + 1
    row = np.full(spec.shape[0], -1, dtype=np.int64)
    reason = np.full(spec.shape[0], "", dtype=object)
    for i, key in enumerate(spec.tolist()):
        if key not in first:
            reason[i] = f"id {key!r} not in the WISE catalog"
        elif count[key] > 1:
            reason[i] = f"id {key!r} is in the WISE catalog {count[key]} times"
        else:
            row[i] = first[key]
    return row, reason.astype(str)


def match_radec(ra_deg, dec_deg, catalog_ra_deg, catalog_dec_deg,
                radius_arcsec: float = MATCH_RADIUS_ARCSEC) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest catalog source of each position (N,), degrees: (row (N,), −1 beyond ``radius_arcsec``
    or without a position; separation (N,) arcsec, NaN without a position; reason (N,))."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra, dec = np.asarray(ra_deg, dtype=np.float64), np.asarray(dec_deg, dtype=np.float64)
    cra, cdec = np.asarray(catalog_ra_deg, dtype=np.float64), np.asarray(catalog_dec_deg, dtype=np.float64)
    n = ra.shape[0]
    row = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    reason = np.full(n, "", dtype=object)
    has = np.isfinite(ra) & np.isfinite(dec)
    reason[~has] = "no RA/Dec for the spectrum (PLUG_RA/PLUG_DEC)"
    usable = np.flatnonzero(np.isfinite(cra) & np.isfinite(cdec))
    if has.any() and usable.size:
        here = SkyCoord(ra[has] * u.deg, dec[has] * u.deg)
        there = SkyCoord(cra[usable] * u.deg, cdec[usable] * u.deg)
        idx, d2d, _ = here.match_to_catalog_sky(there)
        sep[has] = d2d.to_value(u.arcsec)
        near = sep[has] <= radius_arcsec
        rows = np.where(near, usable[np.atleast_1d(idx)], -1)
        row[has] = rows
    far = has & (row < 0)
    reason[far] = [f"no WISE source within {radius_arcsec:g} arcsec (nearest {s:.3g} arcsec)"
                   if np.isfinite(s) else "the WISE catalog has no finite RA/Dec" for s in sep[far]]
    return row, sep, reason.astype(str)


def _lookup(available: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """(actual names of ``wanted`` in ``available`` ignoring case, the wanted names not found)."""
    lower = {c.lower(): c for c in available}
    return [lower.get(w.lower(), "") for w in wanted], [w for w in wanted if w.lower() not in lower]


def read_wise_catalog(path: str | os.PathLike, match: str = "id", id_column: str = "id",
                      ra_column: str = "ra", dec_column: str = "dec") -> WiseCatalog:
    """Read a WISE catalog for ``match`` ``"id"`` (needs ``id_column``) or ``"radec"`` (needs
    ``ra_column``, ``dec_column`` in degrees); a :class:`CatalogError` names missing columns."""
    if match not in MATCH_MODES:
        raise CatalogError(f"--match must be one of {', '.join(MATCH_MODES)}, got {match!r}")
    names = wise_columns()
    keys = [id_column] if match == "id" else [ra_column, dec_column]
    available = catalog_columns(path)
    bands, missing_bands = _lookup(available, names["mpro"] + names["sigmpro"])
    key_cols, missing_keys = _lookup(available, keys)
    if missing_bands or missing_keys:
        parts = []
        if missing_bands:
            parts.append(f"WISE column(s) {', '.join(missing_bands)} (needs w1mpro..w4mpro and "
                         "w1sigmpro..w4sigmpro, Vega mag)")
        if missing_keys:
            parts.append(f"match column(s) {', '.join(missing_keys)} (for --match {match}; see "
                         f"--{'id-column' if match == 'id' else 'ra-column/--dec-column'})")
        raise CatalogError(f"WISE catalog {os.fspath(path)!r} lacks {' and '.join(parts)}; "
                           f"it has: {', '.join(available)}")
    with warnings.catch_warnings():    # a Parquet file not written by astropy: string widths guessed
        warnings.filterwarnings("ignore", message="No table::len::", category=UserWarning)
        table = read_catalog(path, bands + key_cols)

    def block(cols: list[str]) -> np.ndarray:
        out = []
        for c in cols:
            try:
                out.append(np.ma.filled(np.ma.asarray(table[c], dtype=np.float64), np.nan))
            except (TypeError, ValueError) as err:
                raise CatalogError(f"WISE catalog {os.fspath(path)!r}: column {c!r} is not numeric "
                                   f"({err})") from err
        return np.stack(out, 1) if out else np.zeros((len(table), 0))

    mpro, sigmpro = wise_bands(block(bands[:4]), block(bands[4:]))
    if match == "id":
        ids = np.asarray(np.ma.filled(np.ma.asarray(table[key_cols[0]]).astype(str), ""), dtype=str)
        return WiseCatalog(os.fspath(path), mpro, sigmpro, ids=ids)
    radec = block(key_cols)
    return WiseCatalog(os.fspath(path), mpro, sigmpro, ra_deg=radec[:, 0], dec_deg=radec[:, 1])


def match_wise(catalog: WiseCatalog, ids=None, ra_deg=None, dec_deg=None,
               radius_arcsec: float = MATCH_RADIUS_ARCSEC) -> WiseMatch:
    """WISE rows of N spectra: by ``ids`` if the catalog was read for ids, else by ``ra_deg``, ``dec_deg``."""
    if catalog.ids is not None:
        if ids is None:
            raise ValueError("this WISE catalog was read for --match id: pass the spectra's ids")
        row, reason = match_ids(ids, catalog.ids)
        sep = np.full(row.shape[0], np.nan)
    else:
        if ra_deg is None or dec_deg is None:
            raise ValueError("this WISE catalog was read for --match radec: pass the spectra's RA/Dec")
        row, sep, reason = match_radec(ra_deg, dec_deg, catalog.ra_deg, catalog.dec_deg, radius_arcsec)
    ok = row >= 0
    take = np.where(ok, row, 0)
    nan = np.full((row.shape[0], 4), np.nan)
    mpro = np.where(ok[:, None], catalog.mpro[take], nan) if len(catalog) else nan
    sigmpro = np.where(ok[:, None], catalog.sigmpro[take], nan) if len(catalog) else nan
    return WiseMatch(mpro, sigmpro, row, sep, ok, reason)


__all__ = ["MATCH_MODES", "MATCH_RADIUS_ARCSEC", "WiseCatalog", "WiseMatch", "match_ids", "match_radec",
           "match_wise", "read_wise_catalog", "wise_bands"]
