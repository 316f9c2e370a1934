"""The inputs of ``sedinfer dustmap fit``: finding the cubes (files or folders of them), reading
each into what a fit needs (cube, bands, redshift, PSF, instrument), and the reason a galaxy's
input cannot be used (issue 18 §6).

A galaxy whose input cannot be used — an unreadable file, band count ≠ bands, zero or negative
variance, an empty image, an image smaller than the stamp, no redshift, no PSF — raises here;
the runner records the reason (:func:`failure_reason`) as that galaxy's failure and goes on.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sedinfer.errors import SedinferError
from sedinfer.images.errors import ImageError
from sedinfer.images.output import OUTPUT_TAG
from sedinfer.images.settings import FitSettings

FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fits.fz", ".fit.gz")
DEFAULT_PSF_SIZE = 25
VARIANCE_RULE = ("sky variance per band from the 3-sigma-clipped MAD of adjacent-pixel differences "
                 "/ sqrt(2) (uniform per band; assumes uncorrelated noise; source shot noise ignored)")
CUT_RULE = "geometric centre: first pixel ((H - size) // 2, (W - size) // 2), 0-based"


# ---------------------------------------------------------------------------------- finding cubes
def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[tuple[str, Path]]:
    """(name, path) of every input: files as given (existing or not: a missing file is a per-galaxy
    failure), folders expanded to their FITS files (sorted; ``*.dustmap.fits`` outputs left out).
    Two inputs with the same name (file name less its FITS suffix) are refused."""
    items: list[tuple[str, Path]] = []
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file()
                           and p.name.lower().endswith(FITS_SUFFIXES) and OUTPUT_TAG not in p.name)
            if not found:
                raise ImageError(f"folder {path} holds no FITS files ({', '.join(FITS_SUFFIXES)})")
            items += [(_stem(p), p) for p in found]
        else:
            items.append((_stem(path), path))
    if not items:
        raise ImageError("no input cubes given")
    seen: dict[str, Path] = {}
    dups = []
    for name, path in items:
        if name in seen:
            dups.append(f"{name!r} ({seen[name]} and {path})")
        seen[name] = path
    if dups:
        raise ImageError("inputs with the same name would write the same outputs: " + "; ".join(dups[:5]))
    return items


# ---------------------------------------------------------------------------------- reading a cube
_INSTRUMENTS: dict[tuple, Any] = {}


def _instrument_for(bands: tuple[str, ...], psf: np.ndarray, pixel_scale: float, size: int):
    """(key, :class:`~sedinfer.images.instrument.Instrument`), one per distinct key per process."""
    from sedinfer.images.instrument import Instrument

    key = (bands, hashlib.sha1(np.ascontiguousarray(psf, dtype=np.float64).tobytes()).hexdigest(),
           pixel_scale, size)
    if key not in _INSTRUMENTS:
        _INSTRUMENTS[key] = Instrument(list(bands), psf, pixel_scale, np.ones(len(bands)), (size, size))
    return key, _INSTRUMENTS[key]


def _moffat_psfs(fwhm: Sequence[float], pixel_scale: float) -> np.ndarray:
    """(B, 25, 25) Moffat β = 3 PSFs of FWHM ``fwhm`` (arcsec) at ``pixel_scale`` (arcsec)."""
    from sedinfer.images.psf import moffat_psf

    return np.stack([moffat_psf(f, pixel_scale, 3.0, DEFAULT_PSF_SIZE) for f in fwhm])


def _psf(cube, bands: tuple[str, ...], header: dict, settings: FitSettings) -> tuple[np.ndarray, float, str]:
    """(PSF (B, h, w), pixel scale arcsec, where the PSF came from) for one cube."""
    from sedinfer.images.instrument import HSC_BANDS, HSC_PIXEL_SCALE_ARCSEC, HSC_SEEING_FWHM_ARCSEC

    scale = settings.pixel_scale or header.get("PIXSCALE") or (
        HSC_PIXEL_SCALE_ARCSEC if all(b in HSC_BANDS for b in bands) else None)
    if cube.psf is not None:
        if scale is None:
            raise ImageError(f"the file's PSF HDU needs a pixel scale for bands {list(bands)}: give "
                             "--pixel-scale or a PIXSCALE header key (arcsec per pixel)")
        return cube.psf, float(scale), "file PSF HDU"
    if settings.psf_fwhm is not None:
        if scale is None:
            raise ImageError("--psf-fwhm needs --pixel-scale (or a PIXSCALE header key) for bands "
                             f"{list(bands)}")
        fwhm = settings.psf_fwhm * len(bands) if len(settings.psf_fwhm) == 1 else settings.psf_fwhm
        if len(fwhm) != len(bands):
            raise ImageError(f"--psf-fwhm has {len(fwhm)} values for {len(bands)} bands")
        return _moffat_psfs(fwhm, float(scale)), float(scale), \
            f"Moffat beta=3, FWHM {list(fwhm)} arcsec (--psf-fwhm)"
    if all(b in HSC_BANDS for b in bands):
        fwhm = [HSC_SEEING_FWHM_ARCSEC[HSC_BANDS.index(b)] for b in bands]
        return _moffat_psfs(fwhm, float(scale)), float(scale), \
            f"HSC default: Moffat beta=3, median Wide FWHM {fwhm} arcsec at {float(scale):g} arcsec/pixel"
    raise ImageError(f"no PSF for bands {list(bands)}: the file has no PSF HDU; give --psf-fwhm and "
                     "--pixel-scale")


def _redshift(header: dict, settings: FitSettings) -> tuple[float, str]:
    if settings.redshift is not None:
        return float(settings.redshift), "--redshift"
    for key in ("REDSHIFT", "Z"):
        if key in header:
            z = float(header[key])
            if not (math.isfinite(z) and z >= 0):
                raise ImageError(f"header {key} = {header[key]!r} is not a redshift >= 0")
            return z, f"header {key}"
    raise ImageError("no redshift: the primary header has no REDSHIFT (or Z) key; give --redshift")


@dataclass
class PreparedInput:
    """One galaxy's input, read and ready to fit; ``inst_key`` groups galaxies that share an
    instrument (bands, PSF, pixel scale, stamp size) into one batched fit."""

    name: str
    path: Path
    cube: Any
    bands: tuple[str, ...]
    redshift: float
    redshift_source: str
    psf_source: str
    pixel_scale: float
    inst_key: tuple
    inst: Any


def prepare_input(name: str, path: Path, settings: FitSettings) -> PreparedInput:
    """Read ``path`` (:func:`~sedinfer.images.fits_io.read_cube`) with its bands, redshift, PSF and
    instrument; raises when the input cannot be used (the galaxy's failure)."""
    from sedinfer.images.fits_io import read_cube

    cube = read_cube(path, settings.bands, size=settings.size, min_snr=settings.min_snr)
    bands = tuple(settings.bands or cube.bands or ())
    if not bands:
        raise ImageError(f"{path}: no band names (no NBAND/BANDn header keys); give --bands")
    z, z_source = _redshift(cube.header, settings)
    psf, scale, psf_source = _psf(cube, bands, cube.header, settings)
    key, inst = _instrument_for(bands, psf, scale, settings.size)
    return PreparedInput(name, path, cube, bands, z, z_source, psf_source, scale, key, inst)


def failure_reason(exc: BaseException) -> str:
    """The ``reason`` recorded for an input that :func:`prepare_input` could not use: the message of
    an expected error (the package's, ValueError, OSError), else it with the exception's type."""
    if isinstance(exc, (SedinferError, ValueError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


__all__ = ["FITS_SUFFIXES", "VARIANCE_RULE", "CUT_RULE", "expand_inputs", "PreparedInput", "prepare_input",
           "failure_reason"]
