"""FITS files of image cubes: writing simulated galaxies and reading survey cutouts.

File layout (:func:`write_cube_fits`, :func:`write_view_fits`): an empty primary HDU whose header
holds ``NBAND`` and ``BAND1`` … ``BANDn`` (sedpy filter names); ``SCI`` the cube (B, H, W) in nJy
per pixel; ``VAR`` its variance (nJy²); optionally ``PSF`` (B, h, w). Simulated galaxies add the
truth: ``HOST`` (H, W, S at λ₀, unit sum), ``DUST`` (H, W, the transmission D at λ₀),
``HOSTCUBE`` (B, H, W, the unattenuated PSF-free host) and header keys ``DELTA``, ``A0MEAN``
(light-weighted A(λ₀), mag), ``A0MAX``, ``COVFRAC``, ``REDSHIFT``, ``FLUXn`` (true host flux per
band, nJy), the seed, index, view and variant.

:func:`read_cube` accepts a cube HDU (``SCI``, or the first 3-D image HDU) or one 2-D HDU per band
(named by the band, or ``SCI_<band>``, else all 2-D image HDUs in order), a variance as ``VAR``
(cube), ``VAR_<band>`` or ``IVAR``, and an optional ``PSF`` (B, h, w). Without a variance the
sky variance of each band is estimated from the 3σ-clipped median absolute deviation of the
differences of adjacent pixels (/√2: insensitive to a smooth source; assumes uncorrelated noise).
Images larger than the stamp are cut around the centre; NaN or infinite pixels (and infinite
variance) are masked (inverse variance 0). Errors name the file and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sedinfer.atomic import write_atomic
from sedinfer.images.errors import ImageError

_TRUTH_NAMES = {"HOST", "DUST", "HOSTCUBE", "PSF", "MASK"}
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class ObservedCube:
    """A cutout ready for fitting: ``image`` and ``inv_var`` (B, H, W) float64 (0 = masked),
    ``bands`` (names from the file or the caller), ``variance_estimated`` when the file had none."""

    name: str
    image: np.ndarray
    inv_var: np.ndarray
    bands: tuple[str, ...] | None
    header: dict
    variance_estimated: bool
    n_masked: int
    psf: np.ndarray | None = None
    """The file's ``PSF`` HDU (B, h, w), each normalised to unit sum, when it has one."""
    origin: tuple[int, int] = (0, 0)
    """(row, column) of the cut-out's first pixel in the file's image (0-based; the centred cut)."""
    original_shape: tuple[int, int] | None = None
    """(H, W) of the file's image before the cut."""
    variance_source: str | None = None
    """Where the variance came from: ``VAR``, ``VAR_<band>``, ``IVAR`` or None (estimated)."""


def write_cube_fits(path: str | os.PathLike, image: np.ndarray, variance: np.ndarray,
                    bands: Sequence[str], header: dict | None = None,
                    extra: dict[str, np.ndarray] | None = None, psf: np.ndarray | None = None) -> Path:
    """Write ``image``/``variance`` (B, H, W) with band names and extra HDUs, atomically."""
    from astropy.io import fits

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or len(bands) != image.shape[0]:
        raise ImageError(f"image must be (B, H, W) with B = {len(bands)} bands, got {image.shape}")
    if np.shape(variance) != image.shape:
        raise ImageError(f"variance {np.shape(variance)} must match the image {image.shape}")
    primary = fits.PrimaryHDU()
    primary.header["NBAND"] = (len(bands), "number of bands")
    for i, b in enumerate(bands, 1):
        primary.header[f"BAND{i}"] = (str(b), "sedpy filter name")
    for key, value in (header or {}).items():
        primary.header[key] = value
    sci = fits.ImageHDU(image, name="SCI")
    sci.header["BUNIT"] = "nJy"
    var = fits.ImageHDU(np.asarray(variance, dtype=np.float32), name="VAR")
    var.header["BUNIT"] = "nJy2"
    hdus = [primary, sci, var]
    if psf is not None:
        hdus.append(fits.ImageHDU(np.asarray(psf, dtype=np.float32), name="PSF"))
    for name, data in (extra or {}).items():
        hdus.append(fits.ImageHDU(np.asarray(data, dtype=np.float32), name=name))
    hdul = fits.HDUList(hdus)
    return write_atomic(path, lambda tmp: hdul.writeto(tmp, overwrite=True), suffix=".fits")


def view_header(view) -> dict:
    """Header cards of a :class:`~sedinfer.images.simulate.SimulatedView`."""
    g = view.galaxy
    head = {"DELTA": (float(g.delta), "true attenuation-curve slope delta"),
            "A0MEAN": (view.a0_mean_mag, "light-weighted A(lambda0) [mag]"),
            "A0MAX": (view.a0_max_mag, "max A(lambda0) where host > 1e-3 peak [mag]"),
            "COVFRAC": (view.covering_fraction, "host light behind A(lambda0) > 0.05 mag"),
            "LAMBDA0": (0.4754, "reference wavelength of DUST [micron]"),
            "REDSHIFT": (float(g.redshift), "redshift"), "TAU0": (float(g.tau0), "face-on central tau"),
            "INCL": (float(np.degrees(view.view.inclination_rad)), "inclination [deg]"),
            "PA": (float(np.degrees(view.view.position_angle_rad)), "position angle [deg]"),
            "SEED": (view.seed, "simulation seed"), "GALINDEX": (view.index, "galaxy index"),
            "VIEW": (view.view_index, "view of this galaxy"), "VARIANT": (view.variant, "host variant")}
    for i, f in enumerate(view.sed_njy, 1):
        head[f"FLUX{i}"] = (float(f), f"true host flux in BAND{i} [nJy]")
    return head


def write_view_fits(path: str | os.PathLike, view, psf: np.ndarray | None = None) -> Path:
    """One simulated view with its truth (HOST, DUST, HOSTCUBE) and header keys."""
    return write_cube_fits(path, view.image, view.variance, view.bands, view_header(view),
                           {"HOST": view.host, "DUST": view.transmission, "HOSTCUBE": view.host_cube},
                           psf=psf)


def cut_origin(shape: tuple[int, ...], size: int, what: str = "image") -> tuple[int, int]:
    """(row, column) of the first pixel of the ``size`` × ``size`` cut centred in an image of
    ``shape`` (..., H, W): ((H - size) // 2, (W - size) // 2), the geometric centre (a cut-out is
    centred on its catalogue position; the brightest pixel may be a star or a neighbour)."""
    h, w = shape[-2:]
    if h < size or w < size:
        raise ImageError(f"{what} is {h} x {w} pixels; the image model needs at least {size} x {size} "
                         "(smaller images are refused, not padded)")
    return (h - size) // 2, (w - size) // 2


def _cut(data: np.ndarray, size: int, what: str) -> np.ndarray:
    top, left = cut_origin(data.shape, size, what)
    return data[..., top:top + size, left:left + size]


def _image_hdus(hdul) -> list:
    return [h for h in hdul if h.data is not None and getattr(h, "is_image", False) and h.data.ndim >= 2]


def _band_planes(hdus: list, prefix: str, bands: Sequence[str] | None) -> list | None:
    by_name = {h.name.upper(): h for h in hdus}
    if bands is None:
        return None
    names = [f"{prefix}{b}".upper() for b in bands]
    if all(n in by_name for n in names):
        return [by_name[n].data for n in names]
    return None


def read_cube(path: str | os.PathLike, bands: Sequence[str] | None = None, size: int = 64,
              min_snr: float = 5.0) -> ObservedCube:
    """Read a cutout into an :class:`ObservedCube` (B, size, size); see the module docstring."""
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no FITS file at {path}")
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as exc:
        raise ImageError(f"{path} is not a readable FITS file: {exc}") from exc
    with hdul:
        header = dict(hdul[0].header)
        hdus = _image_hdus(hdul)
        names = {h.name.upper(): h for h in hdus}
        file_bands = tuple(str(header[f"BAND{i}"]) for i in range(1, int(header.get("NBAND", 0)) + 1)
                           if f"BAND{i}" in header) or None
        if bands is not None and file_bands is not None and tuple(bands) != file_bands:
            raise ImageError(f"{path}: the file's bands {list(file_bands)} differ from the bands "
                             f"asked for {list(bands)}")
        want = tuple(bands) if bands is not None else file_bands
        if "SCI" in names and names["SCI"].data.ndim == 3:
            image = np.asarray(names["SCI"].data, dtype=np.float64)
        elif (planes := _band_planes(hdus, "", want) or _band_planes(hdus, "SCI_", want)) is not None:
            image = np.stack([np.asarray(p, dtype=np.float64) for p in planes])
        else:
            skip = _TRUTH_NAMES | {"VAR", "IVAR"}
            cubes = [h for h in hdus if h.data.ndim == 3 and h.name.upper() not in skip]
            flat = [h for h in hdus if h.data.ndim == 2 and h.name.upper() not in _TRUTH_NAMES
                    and not h.name.upper().startswith(("VAR", "IVAR"))]
            if cubes:
                image = np.asarray(cubes[0].data, dtype=np.float64)
            elif flat:
                shapes = {h.data.shape for h in flat}
                if len(shapes) > 1:
                    raise ImageError(f"{path}: the per-band image HDUs have different shapes "
                                     f"{sorted(shapes)}")
                image = np.stack([np.asarray(h.data, dtype=np.float64) for h in flat])
            else:
                raise ImageError(f"{path} holds no image HDU (expected a SCI cube or one HDU per band)")
        if image.ndim != 3:
            raise ImageError(f"{path}: the image must be a cube (B, H, W), got shape {image.shape}")
        if want is not None and image.shape[0] != len(want):
            raise ImageError(f"{path} has {image.shape[0]} band images but {len(want)} bands were "
                             f"given ({list(want)})")
        var_source = None
        if "VAR" in names:
            variance, var_source = np.asarray(names["VAR"].data, dtype=np.float64), "VAR"
        elif (vplanes := _band_planes(hdus, "VAR_", want)) is not None:
            variance = np.stack([np.asarray(p, dtype=np.float64) for p in vplanes])
            var_source = "VAR_<band>"
        elif "IVAR" in names:
            ivar = np.asarray(names["IVAR"].data, dtype=np.float64)
            with np.errstate(divide="ignore"):       # IVAR 0 = no data: an infinite variance, masked
                variance = np.where(ivar == 0, np.inf, 1.0 / np.where(ivar == 0, 1.0, ivar))
            var_source = "IVAR"
        else:
            variance = None
        psf = _read_psf(path, names["PSF"].data, image.shape[0]) if "PSF" in names else None
    if variance is not None and variance.shape != image.shape:
        raise ImageError(f"{path}: variance shape {variance.shape} differs from the image {image.shape}")
    original = tuple(int(n) for n in image.shape[-2:])
    origin = cut_origin(image.shape, size, f"{path} image")
    image = _cut(image, size, f"{path} image")
    variance = None if variance is None else _cut(variance, size, f"{path} variance")
    cube = _finish(path, image, variance, want, header, min_snr, psf, var_source)
    return replace(cube, origin=origin, original_shape=original, variance_source=var_source)


def read_truth(path: str | os.PathLike, size: int = 64) -> dict | None:
    """The truth of a simulated file (:func:`write_view_fits`), cut like :func:`read_cube`:
    ``host`` S and ``dust`` D (size, size), ``sed_njy`` (B,) and the header's ``delta``,
    ``a0_mean_mag``, ``covering_fraction``; None when the file has no ``HOST`` and ``DUST`` HDUs."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        names = {h.name.upper() for h in hdul}
        if not {"HOST", "DUST"} <= names:
            return None
        head = hdul[0].header
        host = _cut(np.asarray(hdul["HOST"].data, dtype=np.float64), size, f"{path} HOST")
        dust = _cut(np.asarray(hdul["DUST"].data, dtype=np.float64), size, f"{path} DUST")
        n = int(head.get("NBAND", 0))
        sed = [head.get(f"FLUX{i}") for i in range(1, n + 1)]
        return {"host": host, "dust": dust,
                "sed_njy": None if any(f is None for f in sed) else np.asarray(sed, dtype=np.float64),
                "delta": head.get("DELTA"), "a0_mean_mag": head.get("A0MEAN"),
                "covering_fraction": head.get("COVFRAC")}


def _read_psf(path: Path, data: np.ndarray, n_band: int) -> np.ndarray:
    psf = np.asarray(data, dtype=np.float64)
    if psf.ndim == 2:
        psf = np.broadcast_to(psf, (n_band, *psf.shape)).copy()
    if psf.ndim != 3 or psf.shape[0] != n_band or psf.shape[1] % 2 == 0 or psf.shape[2] % 2 == 0:
        raise ImageError(f"{path}: PSF HDU must be (B, h, w) with B = {n_band} and odd h, w "
                         f"(or one 2-D PSF for all bands), got {psf.shape}")
    sums = psf.sum((1, 2))
    if not np.all(np.isfinite(psf)) or np.any(sums <= 0):
        raise ImageError(f"{path}: PSF HDU must be finite with a positive sum in every band")
    return psf / sums[:, None, None]


def _finish(path: Path, image: np.ndarray, variance: np.ndarray | None, bands, header: dict,
            min_snr: float, psf: np.ndarray | None = None, var_source: str | None = None
            ) -> ObservedCube:
    bad = ~np.isfinite(image)
    estimated = variance is None
    if estimated:
        variance = np.empty_like(image)
        for b in range(image.shape[0]):
            diff = np.diff(image[b], axis=-1)[~(bad[b][:, 1:] | bad[b][:, :-1])]
            if diff.size == 0:
                raise ImageError(f"{path}: band {b + 1} has no two adjacent finite pixels")
            for _ in range(5):                         # 3σ-clipped: drop the source's gradients
                mad = MAD_TO_SIGMA * np.median(np.abs(diff - np.median(diff)))
                diff = diff[np.abs(diff - np.median(diff)) < 3.0 * mad] if mad > 0 else diff
            sigma = mad / np.sqrt(2.0)
            if not sigma > 0:
                raise ImageError(f"{path}: band {b + 1} has no noise to estimate a variance from "
                                 "(constant image); give a VAR HDU")
            variance[b] = sigma**2
    bad |= np.isnan(variance) | np.isposinf(variance)
    nonpos = (variance <= 0) & ~bad
    if nonpos.any():
        b = int(np.argwhere(nonpos)[0, 0])
        what = "inverse variance < 0" if var_source == "IVAR" else "zero or negative variance"
        raise ImageError(f"{path}: HDU {var_source}: {int(nonpos.sum())} pixels have {what} (first in "
                         f"band {b + 1}); the variance must be > 0 (use NaN or inf to mask a pixel)")
    if bad.all():
        raise ImageError(f"{path}: every pixel is masked (NaN image or variance)")
    inv_var = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, variance))
    image = np.where(bad, 0.0, image)
    snr = (image * inv_var).sum(0) / np.sqrt(inv_var.sum(0).clip(1e-300))
    smooth = sum(np.roll(np.roll(snr, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 3.0
    if not smooth.max() >= min_snr:
        raise ImageError(f"{path}: empty image, no source detected (peak S/N of the band-combined "
                         f"3x3-summed image {smooth.max():.2f} < {min_snr})")
    name = path.name.removesuffix(".fits").removesuffix(".fz")
    return ObservedCube(name, image, inv_var, tuple(bands) if bands else None, header, estimated,
                        int(bad.sum()), psf)


__all__ = ["ObservedCube", "write_cube_fits", "write_view_fits", "view_header", "read_cube",
           "read_truth", "cut_origin"]
