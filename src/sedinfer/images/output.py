"""Outputs of a dust-map fit: the ``<name>.dustmap.fits`` file and the per-galaxy JSON summary.

Per galaxy ``<name>`` in ``OUT`` (:func:`output_paths`): ``<name>.dustmap.fits``,
``<name>.dustmap.png`` (the figure) and ``<name>.dustmap.json``, the record (:func:`galaxy_summary`
for a fitted galaxy, :func:`write_failure` for one that failed), written last and atomically
(:func:`write_record`): it marks the galaxy complete.

FITS layout (:func:`write_dustmap_fits`, written atomically):

===========  ==========  ===================================================================
HDU          BUNIT       content
===========  ==========  ===================================================================
primary      —           header below
``HOST``     (none)      S (H, W): the host's unattenuated light distribution, unit sum
``DUST``     (none)      D (H, W): the transmission at λ₀ = 0.4754 µm, in (0, 1]
``ATTEN``    ``mag``     A(λ₀) = -2.5 log₁₀ D (H, W)
``MODEL``    ``nJy``     the fitted noiseless cube PSF ⊛ F S D^K(δ) (B, H, W), nJy per pixel
``RESID``    ``nJy``     data − model (B, H, W); 0 at masked pixels (never NaN)
``MASK``     (none)      uint8 (B, H, W): 1 where the pixel was masked (NaN/inf data or variance)
``SED``      table       BAND, WAVE (pivot, Angstrom), FLUX (dust-corrected host flux, nJy),
                         FLUX_ATT (attenuated, nJy), ATTEN (A of the total flux, mag)
===========  ==========  ===================================================================

Primary header: ``NBAND``, ``BANDn``; ``DELTA`` (curve slope δ), ``A0MEAN`` (light-weighted
A(λ₀) = -2.5 log₁₀ Σ S D, mag), ``COVFRAC`` (fraction of the host light behind A(λ₀) > 0.05
mag), ``FLUXn`` (dust-corrected host flux in BANDn, nJy; ``FLUXUNIT`` = 'nJy'), ``ABANDn``
(attenuation of the total flux in BANDn, mag), ``REDSHIFT``, ``PRIOR``, ``NITER``,
``CONVERGD``, ``CHI2``, ``NPIX`` (unmasked pixels), ``NMASKED``, ``VAREST`` (variance estimated
from the sky) with ``VARRULE``, ``CUTX0``/``CUTY0`` (the cut-out's origin in the input, 0-based),
``PSFSRC``, the fit configuration (``MAXSTEPS``, ``LR``, ``TOL``, ``TEMP``), ``SRCFILE`` and the
sedinfer version. Every unit written is one astropy parses without a warning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sedinfer.atomic import write_atomic, write_text
from sedinfer.images.curve import LAMBDA0_AA
from sedinfer.images.instrument import NJY_AB_ZEROPOINT_MAG

OUTPUT_TAG = ".dustmap"
VARIANCE_RULE_SHORT = "sky: clipped MAD of adjacent-pixel diffs / sqrt2"


def output_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """Paths of galaxy ``name``'s outputs in ``out_dir``: keys ``fits``, ``figure``, ``json``."""
    return {"fits": out_dir / f"{name}{OUTPUT_TAG}.fits", "figure": out_dir / f"{name}{OUTPUT_TAG}.png",
            "json": out_dir / f"{name}{OUTPUT_TAG}.json"}


def to_json(x):
    """``json.dumps`` ``default``: numpy scalars and arrays as Python values, anything else as text."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def write_record(out_dir: Path, record: dict) -> dict:
    """Write ``record`` as ``<name>.dustmap.json`` in ``out_dir`` atomically; returns it."""
    text = json.dumps(record, indent=1, default=to_json) + "\n"
    write_text(output_paths(out_dir, record["name"])["json"], text)
    return record


def read_record(path: Path) -> dict | None:
    """A galaxy's JSON record, or None if the file is missing, unreadable or not a record."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "ok" in record else None


def write_failure(out_dir: Path, name: str, path: Path, reason: str, stage: str, settings_hash: str,
                  seconds: float | None = None) -> dict:
    """Write and return the record of a galaxy that failed at ``stage`` ('read' or 'fit')."""
    record = {"name": name, "file": str(path), "ok": False, "reason": reason, "stage": stage,
              "settings_hash": settings_hash}
    if seconds is not None:
        record["seconds"] = round(seconds, 3)
    return write_record(out_dir, record)


def _card(text: str, limit: int = 68) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Header:
    """A FITS header whose comments are shortened to fit one 80-character card (no warnings)."""

    def __init__(self, header):
        self.header = header

    def __setitem__(self, key: str, item) -> None:
        value, comment = item
        width = (max(len(value), 8) + 2 if isinstance(value, str) else 20) + 13
        room = 80 - width
        self.header[key] = (value, "" if room < 4 else comment[:room])


def write_dustmap_fits(path: str | os.PathLike, result, i: int, cube, bands, meta: dict) -> Path:
    """Write galaxy ``i`` of a :class:`~sedinfer.images.fit.FitResult` (see the module docstring)."""
    from astropy.io import fits
    from astropy.table import Table

    from sedinfer import __version__

    mask = cube.inv_var <= 0
    model = result.model[i]
    resid = np.where(mask, 0.0, cube.image - model)
    trans = result.transmission[i]
    fits_header = fits.Header()
    head = _Header(fits_header)
    head["NBAND"] = (len(bands), "number of bands")
    for b, name in enumerate(bands, 1):
        head[f"BAND{b}"] = (str(name), "sedpy filter name")
    head["LAMBDA0"] = (LAMBDA0_AA / 1e4, "[micron] reference wavelength of DUST and ATTEN")
    head["DELTA"] = (float(result.delta[i]), "attenuation-curve slope delta (Eq. 5)")
    head["A0MEAN"] = (float(result.a0_mean_mag[i]), "[mag] -2.5 log10 sum(S D): light-weighted A0")
    head["COVFRAC"] = (float(result.covering_fraction[i]), "host light behind A(lambda0) > 0.05 mag")
    head["FLUXUNIT"] = ("nJy", "unit of FLUXn")
    for b in range(len(bands)):
        f = float(result.sed_njy[i, b])
        head[f"FLUX{b + 1}"] = (f, f"[nJy] dust-corrected host flux in BAND{b + 1}")
        head[f"ABAND{b + 1}"] = (float(result.a_band_mag[i, b]),
                                 f"[mag] attenuation of the flux in BAND{b + 1}")
    head["REDSHIFT"] = (float(meta["redshift"]), _card(f"redshift ({meta.get('redshift_source', '')})"))
    head["PRIOR"] = (_card(meta["prior"]), "priors of the MAP fit")
    head["NITER"] = (int(result.n_iter[i]), "Adam iterations used")
    head["CONVERGD"] = (bool(result.converged[i]), "host SED change stayed below TOL")
    head["CHI2"] = (float(result.chi2[i]), "chi^2 over unmasked pixels")
    head["NPIX"] = (int(result.n_pixels[i]), "unmasked pixels (all bands)")
    head["NMASKED"] = (int(mask.sum()), "masked pixels: NaN/inf data or variance")
    head["VAREST"] = (bool(cube.variance_estimated), "variance estimated from the sky (no VAR HDU)")
    head["VARSRC"] = (str(cube.variance_source or "estimated"), "where the variance came from")
    if cube.variance_estimated:
        head["VARRULE"] = (VARIANCE_RULE_SHORT, "rule of the variance estimate")
    y0, x0 = cube.origin
    head["CUTY0"] = (int(y0), "first row of the cut in the input (0-based)")
    head["CUTX0"] = (int(x0), "first column of the cut in the input (0-based)")
    head["CUTRULE"] = ("image centre", "the cut is centred on the input image")
    head["PSFSRC"] = (_card(meta.get("psf_source", "")), "PSF used")
    head["PIXSCALE"] = (float(meta["pixel_scale"]), "[arcsec] pixel scale")
    cfg = meta["config"]
    head["MAXSTEPS"] = (int(cfg.max_steps), "iteration limit")
    head["LR"] = (float(cfg.lr), "Adam learning rate")
    head["TOL"] = (float(cfg.tol), "stop: max relative change of F per iteration")
    head["TEMP"] = (float(cfg.temperature), "prior score temperature t")
    head["SRCFILE"] = (_card(Path(meta["file"]).name), "input cube")
    head["SETHASH"] = (str(meta.get("settings_hash", "")), "hash of the run settings")
    head["SEDINFER"] = (__version__, "sedinfer version")

    def image(data, name, unit=None, comment=""):
        hdu = fits.ImageHDU(np.asarray(data, dtype=np.float32), name=name)
        if unit:
            hdu.header["BUNIT"] = unit
        if comment:
            hdu.header["COMMENT"] = comment
        return hdu

    attenuated = result.sed_njy[i] * 10 ** (-0.4 * result.a_band_mag[i])
    table = Table({"BAND": [str(b) for b in bands], "WAVE": np.asarray(meta["pivots_aa"], dtype=float),
                   "FLUX": result.sed_njy[i], "FLUX_ATT": attenuated, "ATTEN": result.a_band_mag[i]})
    for col, unit in (("WAVE", "Angstrom"), ("FLUX", "nJy"), ("FLUX_ATT", "nJy"), ("ATTEN", "mag")):
        table[col].unit = unit
    sed = fits.table_to_hdu(table)
    sed.name = "SED"
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=fits_header),
        image(result.host[i], "HOST", comment="host light distribution S at lambda0, unit sum"),
        image(trans, "DUST", comment="transmission D at lambda0 = 0.4754 micron"),
        image(result.a0_map_mag[i], "ATTEN", "mag", "A(lambda0) = -2.5 log10 D"),
        image(model, "MODEL", "nJy", "fitted noiseless cube, nJy per pixel"),
        image(resid, "RESID", "nJy", "data - model; 0 at masked pixels"),
        fits.ImageHDU(mask.astype(np.uint8), name="MASK"),
        sed])
    return write_atomic(path, lambda tmp: hdul.writeto(tmp, overwrite=True), suffix=".fits")


def galaxy_summary(name: str, path, result, i: int, cube, bands, meta: dict) -> dict:
    """The JSON record of one fitted galaxy (units in the key names or in ``units``)."""
    sed = result.sed_njy[i]
    return {
        "name": name, "file": str(path), "ok": True, "reason": None,
        "bands": list(bands), "pivot_wave_aa": [float(x) for x in meta["pivots_aa"]],
        "sed_njy": sed.tolist(), "sed_ab_mag": (NJY_AB_ZEROPOINT_MAG - 2.5 * np.log10(sed)).tolist(),
        "a_band_mag": result.a_band_mag[i].tolist(),
        "delta": float(result.delta[i]), "a0_mean_mag": float(result.a0_mean_mag[i]),
        "covering_fraction": float(result.covering_fraction[i]),
        "n_iter": int(result.n_iter[i]), "converged": bool(result.converged[i]),
        "chi2": float(result.chi2[i]), "n_pixels": int(result.n_pixels[i]), "n_masked": int(cube.n_masked),
        "redshift": float(meta["redshift"]), "redshift_source": meta.get("redshift_source"),
        "variance_estimated": bool(cube.variance_estimated), "variance_source": cube.variance_source,
        "cut_origin": list(cube.origin), "input_shape": list(cube.original_shape or cube.image.shape[-2:]),
        "psf_source": meta.get("psf_source"), "prior": meta["prior"],
        "units": {"sed_njy": "nJy", "a_band_mag": "mag", "a0_mean_mag": "mag at 0.4754 micron",
                  "pivot_wave_aa": "Angstrom", "sed_ab_mag": "AB mag"},
    }


__all__ = ["OUTPUT_TAG", "output_paths", "to_json", "write_record", "read_record", "write_failure",
           "write_dustmap_fits", "galaxy_summary"]
