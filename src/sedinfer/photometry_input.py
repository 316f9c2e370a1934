"""Catalog photometry in the units it comes in -> fluxes and errors in nanomaggies.

The unit of a band is decided, column by column, from the column's astropy unit (FITS ``TUNIT``,
Parquet / ECSV metadata) and the ``input_units`` option (``--input-units`` on the command line):

============  ===============================================  ==========================================
option        values                                           error conversion (to a flux error)
============  ===============================================  ==========================================
``nmgy``      flux in nanomaggies (default)                    same unit
``maggies``   flux in maggies (f_ν / 3631 Jy)                  same unit
``ujy``       flux density in µJy                              same unit
``njy``       flux density in nJy                              same unit
``ab``        AB (Pogson) magnitude m = -2.5 log10 f           σ_f = 0.4 ln 10 · f · σ_m
``asinh``     SDSS asinh magnitude (Lupton et al. 1999)        σ_f = sqrt(f² + 4b²) · σ_μ / 1.0857
============  ===============================================  ==========================================

Asinh magnitudes need the softening b of each band (SDSS ugriz: 1.4, 0.9, 1.2, 1.8, 7.4 × 10⁻¹⁰
maggies, :data:`sedinfer.units.SDSS_ASINH_B`); other bands are refused.

Column units: ``mag(AB)`` (``u.ABmag``) reads as AB magnitudes; a flux-density unit (``nmgy``,
``uJy``, ``Jy``, ``maggy``) is converted through the AB zero point; plain ``mag`` does not say
whether the magnitudes are Pogson or asinh, so it needs ``input_units="ab"`` or ``"asinh"``. A
column without a unit takes ``input_units`` (default nanomaggies). A unit that contradicts the
option (e.g. ``uJy`` with ``ab``) is an error, as is any other unit. Magnitudes must lie in
:data:`MAG_RANGE`: sentinels for missing values (99, -9999) must be empty cells (NaN), which mask
the band.

**Magnitudes in flux columns.** A catalog of magnitudes read as nanomaggies would be accepted
silently (every value a plausible positive flux). When flux columns have neither a unit nor an
``input_units`` option, they are refused (:func:`refuse_magnitudes`) if *every* such column
looks like magnitudes: at least :data:`MAG_LIKE_SHARE` of its finite values in
:data:`MAG_LIKE_RANGE` (10-35) and its median in :data:`MAG_LIKE_MEDIAN` (12-30). Galaxy
magnitudes from the UV to the mid-IR satisfy this; nanomaggy fluxes of a galaxy sample do not,
because within a band they spread over decades (r = 14-22 is 1.6-2500 nmgy; the u band of most
SDSS galaxies is below 10 nmgy) and they go negative for faint objects. A genuine flux catalog
that trips the rule passes ``input_units="nmgy"`` explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import numpy as np

from sedinfer import units
from sedinfer.errors import CatalogError, FilterError

INPUT_UNITS: tuple[str, ...] = ("nmgy", "maggies", "ujy", "njy", "ab", "asinh")
"""Values of the ``input_units`` option (``--input-units``)."""

MAGNITUDE_UNITS: tuple[str, ...] = ("ab", "asinh")
FLUX_UNITS: dict[str, u.UnitBase] = {"nmgy": u.nanomaggy, "maggies": u.maggy, "ujy": u.uJy, "njy": u.nJy}
"""The astropy unit of each linear ``input_units`` value."""

MAG_RANGE: tuple[float, float] = (0.0, 50.0)
"""Magnitudes outside this range (e.g. the sentinels 99, -99, -9999) are refused, not guessed."""
MAG_LIKE_RANGE: tuple[float, float] = (10.0, 35.0)
MAG_LIKE_MEDIAN: tuple[float, float] = (12.0, 30.0)
MAG_LIKE_SHARE: float = 0.9
GUARD_ROWS: int = 1000
"""Rows from the start of a catalog on which :func:`refuse_magnitudes` decides (a fixed number,
so the decision does not depend on the chunk size)."""

_ZERO_POINT = u.zero_point_flux(units.AB_ZEROPOINT_JY * u.Jy)


def check_input_units(value: str | None) -> str | None:
    """``value`` if it is None or one of :data:`INPUT_UNITS`; else :class:`CatalogError`."""
    if value is not None and value not in INPUT_UNITS:
        raise CatalogError(f"input units {value!r} are not known; expected one of {', '.join(INPUT_UNITS)} "
                           "(--input-units)")
    return value


def _kind(unit) -> str | None:
    """``None`` (no unit), ``"ab"`` (mag(AB)), ``"mag"`` (plain mag), ``"flux"`` or ``"other"``."""
    if unit is None or unit == u.dimensionless_unscaled:
        return None
    if isinstance(unit, u.MagUnit):
        return "ab" if unit.physical_unit == u.AB else "other"
    if unit == u.mag:
        return "mag"
    try:
        u.Unit(unit).to(u.nanomaggy, equivalencies=_ZERO_POINT)
    except (u.UnitConversionError, TypeError, ValueError):
        return "other"
    return "flux"


def _nmgy_per(unit) -> float:
    return float(u.Unit(unit).to(u.nanomaggy, equivalencies=_ZERO_POINT))


def band_kind(flux_name: str, flux_unit, option: str | None) -> tuple[str, float | None, bool]:
    """How to read one band's flux column: ``(kind, nmgy per value unit, defaulted)``.

    ``kind`` is ``"ab"``, ``"asinh"`` or ``"flux"`` (then values times the factor are nmgy);
    ``defaulted`` is True when neither a unit nor ``option`` said what the values are.
    """
    kind = _kind(flux_unit)
    if kind is None:
        if option in MAGNITUDE_UNITS:
            return option, None, False
        return "flux", _nmgy_per(FLUX_UNITS[option or "nmgy"]), option is None
    if kind == "other":
        raise CatalogError(f"column {flux_name!r} has unit {flux_unit}, which is neither a flux density nor "
                           "an AB magnitude; expected nanomaggies (or uJy, Jy, maggies) or mag(AB)")
    if kind == "ab":
        if option not in (None, "ab"):
            raise CatalogError(f"column {flux_name!r} has unit {flux_unit} (AB magnitudes) but "
                               f"--input-units is {option!r}; drop the option or give --input-units ab")
        return "ab", None, False
    if kind == "mag":
        if option in MAGNITUDE_UNITS:
            return option, None, False
        if option is None:
            raise CatalogError(f"column {flux_name!r} has unit mag, which does not say whether the values "
                               "are AB (Pogson) or SDSS asinh magnitudes; pass --input-units ab or "
                               "--input-units asinh")
        raise CatalogError(f"column {flux_name!r} has unit mag but --input-units is {option!r} (a flux "
                           "unit); pass --input-units ab or asinh for magnitudes")
    if option in MAGNITUDE_UNITS or (option is not None and u.Unit(flux_unit) != FLUX_UNITS[option]):
        raise CatalogError(f"column {flux_name!r} has unit {flux_unit} but --input-units is {option!r}; "
                           "drop the option (the file's units are then used) or correct the column unit")
    return "flux", _nmgy_per(flux_unit), False


def _err_factor(err_name: str, err_unit, kind: str, option: str | None, flux_name: str) -> float | None:
    """For a flux band, nmgy per value unit of the error column; for a magnitude band, None."""
    ekind = _kind(err_unit)
    if kind in MAGNITUDE_UNITS:
        if ekind in (None, "mag", "ab"):
            return None
        raise CatalogError(f"column {err_name!r} has unit {err_unit} but {flux_name!r} holds magnitudes; "
                           "expected its error in magnitudes (unit mag or none)")
    if ekind is None:
        return _nmgy_per(FLUX_UNITS[option or "nmgy"])
    if ekind != "flux":
        raise CatalogError(f"column {err_name!r} has unit {err_unit} which is not a flux density; expected "
                           f"nanomaggies (or a convertible unit such as uJy) like its flux column "
                           f"{flux_name!r}; for magnitudes pass --input-units ab or asinh")
    return _nmgy_per(err_unit)


def _check_magnitudes(values: np.ndarray, name: str) -> None:
    lo, hi = MAG_RANGE
    bad = np.isfinite(values) & ((values < lo) | (values > hi))
    if bad.any():
        i = int(np.argmax(bad))
        raise CatalogError(f"column {name!r} holds {int(bad.sum())} magnitude(s) outside [{lo:g}, {hi:g}] "
                           f"(first: {values[i]:g} in row {i}); missing magnitudes must be empty cells "
                           "(NaN): sentinel values such as 99 or -9999 are not guessed")


def to_nmgy(flux_values: np.ndarray, err_values: np.ndarray, *, band: str, flux_name: str, err_name: str,
            flux_unit=None, err_unit=None, option: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One band's flux and error (N,) in nanomaggies (float64) from the column values and units.

    ``band``: the model's band name (for the asinh softening). Non-finite values stay NaN.
    """
    kind, factor, _ = band_kind(flux_name, flux_unit, option)
    efactor = _err_factor(err_name, err_unit, kind, option, flux_name)
    v = np.asarray(flux_values, dtype=np.float64)
    e = np.asarray(err_values, dtype=np.float64)
    if kind == "flux":
        return v * factor, e * efactor
    _check_magnitudes(v, flux_name)
    if kind == "ab":
        f = units.mag_to_maggies(v)
        sigma = units.flux_err_from_mag_err(f, e)
    else:
        try:
            b = float(units.asinh_softening([band])[0])
        except FilterError:
            raise CatalogError(f"column {flux_name!r}: asinh magnitudes need the softening b of band "
                               f"{band!r}, known only for {', '.join(units.SDSS_ASINH_B)}; convert the "
                               "column to fluxes or AB magnitudes") from None
        f = units.asinh_mag_to_maggies(v, b)
        sigma = units.flux_err_from_asinh_mag_err(f, e, b)
    return units.maggies_to_nmgy(f), units.maggies_to_nmgy(sigma)


def magnitude_like(values: np.ndarray) -> bool:
    """Whether one column's values (N,) look like magnitudes (see the module docstring)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return False
    lo, hi = MAG_LIKE_RANGE
    share = float(np.mean((v >= lo) & (v <= hi)))
    median = float(np.median(v))
    return share >= MAG_LIKE_SHARE and MAG_LIKE_MEDIAN[0] <= median <= MAG_LIKE_MEDIAN[1]


def refuse_magnitudes(columns: Sequence[tuple[str, np.ndarray]]) -> None:
    """Raise :class:`CatalogError` if every ``(name, values)`` flux column looks like magnitudes.

    Pass only the columns read as nanomaggies by default (no unit, no ``input_units``).
    """
    if not columns or not all(magnitude_like(v) for _, v in columns):
        return
    medians = ", ".join(f"{name} {np.nanmedian(np.asarray(v, dtype=float)):.1f}" for name, v in columns)
    lo, hi = MAG_LIKE_RANGE
    raise CatalogError(
        f"the flux columns look like magnitudes, not fluxes in nanomaggies: at least "
        f"{MAG_LIKE_SHARE:.0%} of the values of each lie in [{lo:g}, {hi:g}] (medians: {medians}), whereas "
        "nanomaggy fluxes of galaxies spread over decades (r = 14-22 is 1.6-2500 nmgy) and go negative "
        "when faint. "
        "Pass --input-units ab (AB magnitudes) or --input-units asinh (SDSS asinh magnitudes), or "
        "--input-units nmgy if these really are fluxes in nanomaggies (in a --columns TOML file: "
        "input_units = \"ab\")")


__all__ = ["INPUT_UNITS", "MAGNITUDE_UNITS", "FLUX_UNITS", "MAG_RANGE", "MAG_LIKE_RANGE", "MAG_LIKE_MEDIAN",
           "MAG_LIKE_SHARE", "GUARD_ROWS", "check_input_units", "band_kind", "to_nmgy", "magnitude_like",
           "refuse_magnitudes"]
