"""Reading SDSS spectra (``spec-PLATE-MJD-FIBER.fits``, DR8 and later) onto one grid.

HDU 1 (COADD) holds ``loglam`` (log10 vacuum λ in Å), ``flux`` (10⁻¹⁷ erg/s/cm²/Å), ``ivar``
and ``and_mask``; HDU 2 (SPECOBJ) the pipeline's ``Z``, ``Z_ERR`` and ``CLASS``, and the fibre
position ``PLUG_RA``, ``PLUG_DEC`` (deg, also in the primary header). The primary header's
``RA``, ``DEC`` are the *plate centre*, up to 1.5° away, not the object: :func:`fibre_position`
reads ``PLUG_RA``/``PLUG_DEC`` only. Each file
covers part of the common SDSS grid (:func:`sedinfer.spectra.sdss_instrument`); its pixels are
placed by index, the rest of the grid is masked. A pixel is masked when ``and_mask ≠ 0`` (any
pipeline flag set in every exposure, e.g. bit 23 BRIGHTSKY), ``ivar ≤ 0``, the flux or ivar is
not finite, or it lies on a sky line of :data:`sedinfer.spectra.SKY_LINES`.

A file whose wavelengths are not on the SDSS grid (another survey, a resampled spectrum), that
is not a FITS spec file, or that lacks the COADD columns raises :class:`SpectrumFileError`
naming the file (``strict=False`` turns it into ``ok=False`` with the message as reason). A
spectrum with every pixel masked, no finite flux or no redshift keeps its row, ``ok=False``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedinfer.errors import SedinferError
from sedinfer.spectra.batch import NORM_WINDOW_REST_AA, SpectrumBatch, assemble
from sedinfer.spectra.instrument import Instrument, sdss_instrument

COADD_COLUMNS: tuple[str, ...] = ("loglam", "flux", "ivar", "and_mask")
"""Columns read from HDU 1 of a spec file."""
SPECOBJ_COLUMNS: tuple[str, ...] = ("Z", "Z_ERR", "CLASS")
"""Columns read from HDU 2 of a spec file."""
_PATTERNS = ("spec-*.fits", "spec-*.fits.gz", "spec-*.fit")


class SpectrumFileError(SedinferError, ValueError):
    """A spectrum file cannot be read as an SDSS spec file on the SDSS grid."""


def spectrum_paths(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Files named by ``source``: a file, a directory (its ``spec-*.fits[.gz]``), a glob
    pattern, or a list of any of these; in order, sorted within directories and globs."""
    if isinstance(source, (str, os.PathLike)):
        items = [source]
    else:
        items = list(source)
        if not items:
            raise SpectrumFileError("no spectrum files given (empty list)")
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = sorted({p for pat in _PATTERNS for p in path.glob(pat)})
            if not found:
                raise SpectrumFileError(f"directory {text!r} holds no SDSS spec files "
                                        f"({', '.join(_PATTERNS)})")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not found:
                raise SpectrumFileError(f"glob pattern {text!r} matches no files")
            out.extend(found)
        else:
            raise SpectrumFileError(f"no such spectrum file or directory: {text!r}")
    return out


def _column(table, name: str, path: Path, hdu: str):
    names = {n.lower(): n for n in table.columns.names}
    if name.lower() not in names:
        raise SpectrumFileError(f"{path}: HDU {hdu} has no column {name!r} (columns: "
                                f"{', '.join(table.columns.names)}); expected an SDSS spec-PLATE-MJD-FIBER "
                                "file (DR8 or later)")
    return np.asarray(table.data[names[name.lower()]])


def fibre_position(hdul) -> tuple[float, float]:
    """(RA, Dec) in degrees of the fibre of an open spec file: ``PLUG_RA``, ``PLUG_DEC`` of HDU 2
    (SPECOBJ), else of the primary header; NaN where neither has them."""
    if len(hdul) > 2 and hasattr(hdul[2], "columns") and len(hdul[2].data):
        names = {n.upper(): n for n in hdul[2].columns.names}
        if "PLUG_RA" in names and "PLUG_DEC" in names:
            return float(hdul[2].data[names["PLUG_RA"]][0]), float(hdul[2].data[names["PLUG_DEC"]][0])
    head = hdul[0].header
    if "PLUG_RA" in head and "PLUG_DEC" in head:
        return float(head["PLUG_RA"]), float(head["PLUG_DEC"])
    return np.nan, np.nan


def read_sdss_positions(paths: Sequence[str | os.PathLike]) -> tuple[np.ndarray, np.ndarray]:
    """(RA, Dec) (N,) in degrees of the fibres of spec files (:func:`fibre_position`), in order;
    NaN for a file that has none or cannot be opened (its spectrum row says why)."""
    from astropy.io import fits

    ra, dec = np.full(len(paths), np.nan), np.full(len(paths), np.nan)
    for i, path in enumerate(paths):
        try:
            with fits.open(path, memmap=False) as hdul:
                ra[i], dec[i] = fibre_position(hdul)
        except (OSError, ValueError, TypeError, IndexError):
            continue
    return ra, dec


def read_spec_file(path: str | os.PathLike, instrument: Instrument | None = None) -> dict:
    """One spec file on the instrument grid: a dict with ``flux``, ``ivar``, ``mask`` (M,) in
    the file's units (mask True = unusable), ``z``, ``z_err`` (NaN when missing), ``spec_class``,
    ``id`` (``PLATE-MJD-FIBER``), ``lsf_sigma_kms`` (median ``wdisp`` in km/s, NaN without it),
    ``ra_deg``, ``dec_deg`` (:func:`fibre_position`) and ``reason`` (non-empty when the redshift
    is missing). Raises :class:`SpectrumFileError`."""
    from astropy.io import fits

    inst = instrument or sdss_instrument()
    path = Path(path)
    try:
        hdul = fits.open(path, memmap=False)
    except (OSError, ValueError) as err:
        raise SpectrumFileError(f"{path}: not a readable FITS file ({err})") from err
    with hdul:
        if len(hdul) < 2 or not hasattr(hdul[1], "columns"):
            raise SpectrumFileError(f"{path}: no binary table in HDU 1; expected an SDSS spec file "
                                    f"with columns {', '.join(COADD_COLUMNS)}")
        coadd = hdul[1]
        loglam, flux, ivar, and_mask = (_column(coadd, c, path, "1 (COADD)").astype(np.float64)
                                        for c in COADD_COLUMNS)
        wdisp = None
        if "wdisp" in {n.lower() for n in coadd.columns.names}:
            wdisp = _column(coadd, "wdisp", path, "1").astype(np.float64)
        good_lam = np.isfinite(loglam)
        if not good_lam.any():
            raise SpectrumFileError(f"{path}: loglam has no finite value")
        try:
            idx = inst.pixel_index(loglam[good_lam], what=str(path))
        except ValueError as err:
            raise SpectrumFileError(str(err)) from None
        z, z_err, cls, reason = np.nan, np.nan, "", ""
        if len(hdul) > 2 and hasattr(hdul[2], "columns"):
            spec = hdul[2]
            names = {n.upper() for n in spec.columns.names}
            if "Z" in names and len(spec.data):
                z = float(_column(spec, "Z", path, "2")[0])
                z_err = float(_column(spec, "Z_ERR", path, "2")[0]) if "Z_ERR" in names else np.nan
            if "CLASS" in names and len(spec.data):
                cls = str(_column(spec, "CLASS", path, "2")[0]).strip()
            plate = [spec.data[k][0] for k in ("PLATE", "MJD", "FIBERID") if k in names and len(spec.data)]
        else:
            plate = []
        if not np.isfinite(z):
            reason = "no redshift: HDU 2 (SPECOBJ) has no finite Z"
        ra, dec = fibre_position(hdul)
    ident = (f"{int(plate[0]):04d}-{int(plate[1]):05d}-{int(plate[2]):04d}" if len(plate) == 3
             else path.name.split(".")[0].removeprefix("spec-"))
    on = (idx >= 0) & (idx < inst.n_pix)
    full_flux = np.full(inst.n_pix, np.nan)          # uncovered pixels: no data (and masked)
    full_ivar = np.zeros(inst.n_pix)
    full_bad = np.ones(inst.n_pix, dtype=bool)
    src = np.flatnonzero(good_lam)[on]
    full_flux[idx[on]] = flux[src]
    full_ivar[idx[on]] = ivar[src]
    f, w = flux[src], ivar[src]
    full_bad[idx[on]] = (and_mask[src] != 0) | ~np.isfinite(f) | ~np.isfinite(w) | (w <= 0)
    full_bad |= inst.sky_mask
    if not on.any() and not reason:
        reason = f"no pixel of the file falls on the {inst.name} grid"
    lsf = float(np.median(wdisp[src]) * inst.pixel_kms) if wdisp is not None and src.size else np.nan
    return {"flux": full_flux, "ivar": full_ivar, "mask": full_bad, "z": z, "z_err": z_err,
            "spec_class": cls, "id": ident, "lsf_sigma_kms": lsf, "ra_deg": ra, "dec_deg": dec,
            "reason": reason}


def read_sdss(source: str | os.PathLike | Sequence[str | os.PathLike], instrument: Instrument | None = None,
              strict: bool = True, window_rest_aa: tuple[float, float] = NORM_WINDOW_REST_AA
              ) -> SpectrumBatch:
    """Read SDSS spec files (a file, directory, glob or list: :func:`spectrum_paths`) onto the
    SDSS grid, masked and normalised (:class:`~sedinfer.spectra.SpectrumBatch`, one row per file,
    in order). With ``strict`` (default) a file that is not an SDSS spec file on the grid
    raises :class:`SpectrumFileError`; otherwise its row has ``ok=False`` and the error as reason."""
    inst = instrument or sdss_instrument()
    paths = spectrum_paths(source)
    rows = []
    for path in paths:
        try:
            rows.append(read_spec_file(path, inst))
        except SpectrumFileError as err:
            if strict:
                raise
            rows.append({"flux": np.full(inst.n_pix, np.nan), "ivar": np.zeros(inst.n_pix),
                         "mask": np.ones(inst.n_pix, dtype=bool), "z": np.nan, "z_err": np.nan,
                         "spec_class": "", "id": path.name.split(".")[0].removeprefix("spec-"),
                         "lsf_sigma_kms": np.nan, "reason": str(err)})
    stack = {k: np.stack([r[k] for r in rows]) for k in ("flux", "ivar", "mask")}
    col = {k: np.array([r[k] for r in rows]) for k in ("z", "z_err", "spec_class", "id", "reason",
                                                        "lsf_sigma_kms")}
    return assemble(inst.wave_obs_aa, stack["flux"], stack["ivar"], stack["mask"], col["z"], col["z_err"],
                    col["spec_class"], col["id"], [str(p) for p in paths], col["reason"],
                    col["lsf_sigma_kms"], window_rest_aa)


__all__ = ["COADD_COLUMNS", "SPECOBJ_COLUMNS", "SpectrumFileError", "fibre_position", "read_sdss",
           "read_sdss_positions", "read_spec_file", "spectrum_paths"]
