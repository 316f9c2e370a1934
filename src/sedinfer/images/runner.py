"""``sedinfer dustmap fit``: MAP dust maps for many cutouts, in resumable chunks (issue 18 §6-8).

:func:`run_dustmap_fit` takes FITS cutouts (files or folders of them), fits each with
:func:`~sedinfer.images.fit.fit_map` (batched) and writes per galaxy, atomically
(:mod:`sedinfer.atomic`), in this order:

* ``OUT/<name>.dustmap.fits`` (:func:`~sedinfer.images.output.write_dustmap_fits`);
* ``OUT/<name>.dustmap.png``, a small figure (unless ``figures=False``);
* ``OUT/<name>.dustmap.json``, the galaxy's summary, written last: it marks the galaxy complete.

and ``OUT/run.json``, the run summary listing *every* input with ``ok`` and ``reason``, rewritten
after each chunk. A galaxy whose input cannot be used (unreadable file, band count ≠ bands,
zero or negative variance, an empty image, an image smaller than the stamp, no redshift, no PSF)
gets ``ok = false`` with the reason in its JSON and in ``run.json``; nothing is skipped silently.

**Chunks and resuming.** Inputs are cut, in the order given, into chunks of ``chunk`` galaxies, the
unit of work (a Dask task with ``scheduler``). On a rerun into the same folder a galaxy whose JSON
exists, was made with the same settings (bands, stamp size, redshift, PSF, fit configuration,
priors and their files' SHA-256) and whose listed outputs exist is not fitted again; a chunk
with every galaxy complete is skipped. Failed galaxies are kept as failed unless
``retry_failed``. JSON made with other settings stops the run with an error (``overwrite``
refits everything). Because every file is renamed into place complete, an interrupted run leaves
no partial outputs, only galaxies not yet done.

**Priors** (:class:`PriorSpec`, :func:`resolve_priors`): ``conditional`` = s(S) + s(D | S)
(``host.pt`` + ``dust_given_host.pt``), ``unconditional`` = s(S) + s(D) (``host.pt`` +
``dust.pt``), ``none`` = the likelihood alone; from ``prior_dir`` or the shipped folder
``sedinfer/data/dustmap_priors`` (:data:`SHIPPED_PRIOR_DIR`). If the weights are missing the
run stops before any fit with an error that says so (never a silent fit without priors). Python
callers may pass prior objects or score callables instead (:meth:`PriorSpec.from_objects`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sedinfer.atomic import write_text
from sedinfer.errors import SedinferError
from sedinfer.images.errors import ImageError
from sedinfer.images.fit import FitConfig

PRIOR_MODES = ("conditional", "unconditional", "none")
PRIOR_FILES = {"conditional": ("host.pt", "dust_given_host.pt"), "unconditional": ("host.pt", "dust.pt")}
SHIPPED_PRIOR_DIR = "dustmap_priors"
"""Folder of ``sedinfer/data`` where the package's trained prior weights are to ship."""
DEMO_DIR = ("demo", "dustmap")
"""Folder of ``sedinfer/data`` where example cubes for ``--demo`` are to ship."""
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fits.fz", ".fit.gz")
OUTPUT_TAG = ".dustmap"
RUN_SUMMARY = "run.json"
HSC_PIXEL_SCALE = 0.168
DEFAULT_PSF_SIZE = 25
VARIANCE_RULE = ("sky variance per band from the 3-sigma-clipped MAD of adjacent-pixel differences "
                 "/ sqrt(2) (uniform per band; assumes uncorrelated noise; source shot noise ignored)")
CUT_RULE = "geometric centre: first pixel ((H - size) // 2, (W - size) // 2), 0-based"


def data_path(*parts: str) -> Path:
    """A path inside the installed ``sedinfer/data`` folder (it may not exist)."""
    return Path(str(resources.files("sedinfer") / "data")).joinpath(*parts)


def demo_cubes() -> list[Path]:
    """The shipped example cubes of ``--demo``; an :class:`ImageError` when none ship."""
    folder = data_path(*DEMO_DIR)
    cubes = sorted(p for p in folder.glob("*.fits")) if folder.is_dir() else []
    if not cubes:
        raise ImageError(f"--demo: this installation ships no example cubes (nothing in {folder}); "
                         "run 'sedinfer dustmap simulate --n 2 --out DIR' and fit DIR instead")
    return cubes


# ---------------------------------------------------------------------------------------- priors
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class PriorSpec:
    """Which priors a run uses: ``mode`` and either weight files (loaded where the chunk runs,
    cached per process) or in-memory objects (any score callables; ``mode`` 'custom')."""

    mode: str = "none"
    host_path: str | None = None
    dust_path: str | None = None
    host_sha256: str | None = None
    dust_sha256: str | None = None
    host: Any = field(default=None, compare=False, repr=False)
    dust: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_objects(cls, host=None, dust=None, label: str = "custom") -> PriorSpec:
        """Priors given in Python: a host score s(S) and a dust score s(D | S) or s(D), or None."""
        return cls(mode=label if (host is not None or dust is not None) else "none", host=host, dust=dust)

    def describe(self) -> dict:
        """JSON-able record of the priors (files and SHA-256, or the objects' classes and cards)."""
        out: dict[str, Any] = {"mode": self.mode}
        for tag in ("host", "dust"):
            path, obj = getattr(self, f"{tag}_path"), getattr(self, tag)
            if path is not None:
                out[tag] = {"file": str(path), "sha256": getattr(self, f"{tag}_sha256")}
            elif obj is not None:
                out[tag] = {"object": type(obj).__name__, "kind": getattr(obj, "kind", None),
                            "card": getattr(obj, "card", None) or None}
            else:
                out[tag] = None
        return out

    def label(self) -> str:
        """Short text for FITS headers."""
        if self.mode in ("none", "custom") and self.host is None and self.dust is None \
                and self.host_path is None and self.dust_path is None:
            return "none (likelihood alone)"
        files = [Path(p).name for p in (self.host_path, self.dust_path) if p]
        return f"{self.mode}: " + (" + ".join(files) if files else "objects given in Python")

    def load(self) -> tuple[Any, Any]:
        """(host prior, dust prior), loading weight files once per process."""
        host = self.host if self.host is not None else (
            _cached_prior(self.host_path, self.host_sha256) if self.host_path else None)
        dust = self.dust if self.dust is not None else (
            _cached_prior(self.dust_path, self.dust_sha256) if self.dust_path else None)
        return host, dust


_PRIOR_CACHE: dict[tuple[str, str | None], Any] = {}


def _cached_prior(path: str, sha256: str | None):
    key = (str(path), sha256)
    if key not in _PRIOR_CACHE:
        from sedinfer.images.prior import load

        _PRIOR_CACHE[key] = load(path)
    return _PRIOR_CACHE[key]


def resolve_priors(mode: str, prior_dir: str | os.PathLike | None = None) -> PriorSpec:
    """The :class:`PriorSpec` of ``--prior MODE [--prior-dir DIR]``; errors name what is missing."""
    if mode not in PRIOR_MODES:
        raise ImageError(f"--prior must be one of {PRIOR_MODES}, got {mode!r}")
    if mode == "none":
        if prior_dir is not None:
            raise ImageError("--prior none fits the likelihood alone; do not also give --prior-dir")
        return PriorSpec("none")
    shipped = prior_dir is None
    folder = data_path(SHIPPED_PRIOR_DIR) if shipped else Path(prior_dir)
    names = PRIOR_FILES[mode]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        if shipped:
            raise ImageError(
                f"--prior {mode}: the shipped dust-map priors are not in this installation ({folder} "
                f"has no {', '.join(missing)}): the priors are not trained yet. Pass --prior-dir DIR "
                f"with {' and '.join(names)} (written by scripts/train_dust_priors.py), or --prior none "
                "to fit with the likelihood alone (the no-prior baseline)")
        raise ImageError(f"--prior {mode}: {folder} has no {', '.join(missing)} (need {' and '.join(names)}, "
                         "as written by scripts/train_dust_priors.py); or use --prior none")
    host_path, dust_path = (folder / n for n in names)
    spec = PriorSpec(mode, str(host_path.resolve()), str(dust_path.resolve()), _sha256(host_path),
                     _sha256(dust_path))
    try:                                                 # unreadable or wrong-kind weights: fail now
        host, dust = spec.load()
    except SedinferError as exc:
        raise ImageError(f"--prior {mode}: {exc}") from exc
    want = {"conditional": "dust_given_host", "unconditional": "dust"}[mode]
    if getattr(host, "kind", None) != "host" or getattr(dust, "kind", None) != want:
        raise ImageError(f"--prior {mode}: {host_path.name} holds a {getattr(host, 'kind', '?')!r} prior and "
                         f"{dust_path.name} a {getattr(dust, 'kind', '?')!r} prior; expected 'host' and "
                         f"{want!r}")
    return spec


# -------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class FitSettings:
    """What a run does besides its priors. ``bands`` None: each file's ``BANDn`` keys;
    ``redshift`` None: each file's ``REDSHIFT`` (or ``Z``) key, else that value for every file;
    ``psf_fwhm`` (one per band or one for all, arcsec; Moffat β = 3) and ``pixel_scale`` (arcsec)
    for files without a ``PSF`` HDU whose bands are not all HSC (HSC: the package's Moffat PSFs
    at median Wide seeing). ``batch`` galaxies per ``fit_map`` call."""

    bands: tuple[str, ...] | None = None
    size: int = 64
    redshift: float | None = None
    psf_fwhm: tuple[float, ...] | None = None
    pixel_scale: float | None = None
    config: FitConfig = field(default_factory=FitConfig)
    batch: int = 8
    figures: bool = True
    device: str = "cpu"
    min_snr: float = 5.0

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 4:
            raise ImageError(f"stamp size must be >= 8 and divisible by 4 (the U-Net), got {self.size}")
        if self.batch < 1:
            raise ImageError(f"batch must be >= 1, got {self.batch}")
        if self.redshift is not None and not (math.isfinite(self.redshift) and self.redshift >= 0):
            raise ImageError(f"redshift must be finite and >= 0, got {self.redshift}")
        if self.pixel_scale is not None and not self.pixel_scale > 0:
            raise ImageError(f"pixel scale must be > 0 arcsec, got {self.pixel_scale}")
        if self.psf_fwhm is not None and not all(f > 0 for f in self.psf_fwhm):
            raise ImageError(f"PSF FWHM must be > 0 arcsec, got {self.psf_fwhm}")
        n_fwhm = None if self.psf_fwhm is None else len(self.psf_fwhm)
        if n_fwhm is not None and self.bands is not None and n_fwhm not in (1, len(self.bands)):
            raise ImageError(f"give one PSF FWHM or one per band ({len(self.bands)}), got {n_fwhm}")

    def key(self, priors: PriorSpec) -> dict:
        """Everything the fitted numbers depend on (compared on resume)."""
        return {"bands": list(self.bands) if self.bands else None, "size": self.size,
                "redshift": self.redshift, "psf_fwhm": list(self.psf_fwhm) if self.psf_fwhm else None,
                "pixel_scale": self.pixel_scale, "min_snr": self.min_snr,
                "fit_config": {k: (list(v) if isinstance(v, tuple) else v)
                               for k, v in asdict(self.config).items()},
                "priors": priors.describe()}


def _key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- inputs
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


# ------------------------------------------------------------------------------------ per galaxy
def output_paths(out_dir: Path, name: str) -> dict[str, Path]:
    return {"fits": out_dir / f"{name}{OUTPUT_TAG}.fits", "figure": out_dir / f"{name}{OUTPUT_TAG}.png",
            "json": out_dir / f"{name}{OUTPUT_TAG}.json"}


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "ok" in record else None


def _complete(record: dict | None, out_dir: Path, figures: bool) -> bool:
    if record is None:
        return False
    if not record["ok"]:
        return True
    files = record.get("outputs", {})
    need = ["fits"] + (["figure"] if figures else [])
    return all(k in files and (out_dir / files[k]).is_file() for k in need)


def _failure(name: str, path: Path, reason: str, stage: str, key_hash: str) -> dict:
    return {"name": name, "file": str(path), "ok": False, "reason": reason, "stage": stage,
            "settings_hash": key_hash}


def _instrument_for(bands: tuple[str, ...], psf: np.ndarray, pixel_scale: float, size: int):
    from sedinfer.images.instrument import Instrument

    key = (bands, hashlib.sha1(np.ascontiguousarray(psf, dtype=np.float64).tobytes()).hexdigest(),
           pixel_scale, size)
    if key not in _INSTRUMENTS:
        _INSTRUMENTS[key] = Instrument(list(bands), psf, pixel_scale, np.ones(len(bands)), (size, size))
    return key, _INSTRUMENTS[key]


_INSTRUMENTS: dict[tuple, Any] = {}


def _psf(cube, bands: tuple[str, ...], header: dict, settings: FitSettings) -> tuple[np.ndarray, float, str]:
    """(PSF (B, h, w), pixel scale arcsec, where the PSF came from) for one cube."""
    from sedinfer.images.instrument import HSC_BANDS, HSC_SEEING_FWHM_ARCSEC
    from sedinfer.images.psf import moffat_psf

    scale = settings.pixel_scale or header.get("PIXSCALE") or (
        HSC_PIXEL_SCALE if all(b in HSC_BANDS for b in bands) else None)
    if cube.psf is not None:
        return cube.psf, float(scale or HSC_PIXEL_SCALE), "file PSF HDU"
    if settings.psf_fwhm is not None:
        if scale is None:
            raise ImageError("--psf-fwhm needs --pixel-scale (or a PIXSCALE header key) for bands "
                             f"{list(bands)}")
        fwhm = settings.psf_fwhm * len(bands) if len(settings.psf_fwhm) == 1 else settings.psf_fwhm
        if len(fwhm) != len(bands):
            raise ImageError(f"--psf-fwhm has {len(fwhm)} values for {len(bands)} bands")
        psf = np.stack([moffat_psf(f, float(scale), 3.0, DEFAULT_PSF_SIZE) for f in fwhm])
        return psf, float(scale), f"Moffat beta=3, FWHM {list(fwhm)} arcsec (--psf-fwhm)"
    if all(b in HSC_BANDS for b in bands):
        fwhm = [HSC_SEEING_FWHM_ARCSEC[HSC_BANDS.index(b)] for b in bands]
        psf = np.stack([moffat_psf(f, HSC_PIXEL_SCALE, 3.0, DEFAULT_PSF_SIZE) for f in fwhm])
        return psf, float(scale), f"HSC default: Moffat beta=3, median Wide FWHM {fwhm} arcsec"
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
class _Prepared:
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


def _prepare(name: str, path: Path, settings: FitSettings) -> _Prepared:
    from sedinfer.images.fits_io import read_cube

    cube = read_cube(path, settings.bands, size=settings.size, min_snr=settings.min_snr)
    bands = tuple(settings.bands or cube.bands or ())
    if not bands:
        raise ImageError(f"{path}: no band names (no NBAND/BANDn header keys); give --bands")
    z, z_source = _redshift(cube.header, settings)
    psf, scale, psf_source = _psf(cube, bands, cube.header, settings)
    key, inst = _instrument_for(bands, psf, scale, settings.size)
    return _Prepared(name, path, cube, bands, z, z_source, psf_source, scale, key, inst)


# ------------------------------------------------------------------------------------------ chunks
@dataclass
class ChunkTask:
    """One chunk: (name, path) of its pending galaxies and everything needed to fit them."""

    index: int
    items: list[tuple[str, str]]
    out_dir: str
    settings: FitSettings
    priors: PriorSpec
    key_hash: str
    threads: int = 1


def fit_chunk(task: ChunkTask) -> list[dict]:
    """Fit one chunk (in this process or on a Dask worker); returns one record per galaxy, each
    already written as ``<name>.dustmap.json`` with its FITS file and figure."""
    from sedinfer.parallel import restore_malloc_defaults
    from sedinfer.threads import torch_threads

    restore_malloc_defaults()
    with torch_threads(task.threads):
        return _fit_chunk(task)


def _fit_chunk(task: ChunkTask) -> list[dict]:
    import torch

    from sedinfer.images.fit import fit_map
    from sedinfer.images.scene import ImageModel

    out_dir, s = Path(task.out_dir), task.settings
    records: dict[str, dict] = {}
    prepared: list[_Prepared] = []
    for name, path in task.items:
        t0 = time.perf_counter()
        try:
            prepared.append(_prepare(name, Path(path), s))
        except Exception as exc:  # noqa: BLE001 - any unusable input is that galaxy's failure
            reason = str(exc) if isinstance(exc, (SedinferError, ValueError, OSError)) else \
                f"{type(exc).__name__}: {exc}"
            records[name] = _failure(name, Path(path), reason, "read", task.key_hash)
            records[name]["seconds"] = round(time.perf_counter() - t0, 3)
            _write_record(out_dir, records[name])
    host_prior, dust_prior = task.priors.load()
    device = torch.device(s.device)
    if host_prior is not None and hasattr(host_prior, "to"):
        host_prior = host_prior.to(device)
    if dust_prior is not None and hasattr(dust_prior, "to"):
        dust_prior = dust_prior.to(device)
    groups: dict[tuple, list[_Prepared]] = {}
    for p in prepared:
        groups.setdefault(p.inst_key, []).append(p)

    def fit(batch: list[_Prepared]):
        model = ImageModel(batch[0].inst, [p.redshift for p in batch]).to(device)
        data = np.stack([p.cube.image for p in batch])
        w = np.stack([p.cube.inv_var for p in batch])
        return model, fit_map(model, data, w, host_prior, dust_prior, config=s.config)

    for members in groups.values():
        for start in range(0, len(members), s.batch):
            batch = members[start:start + s.batch]
            t0 = time.perf_counter()
            try:
                done = [(batch, *fit(batch))]
            except (ImageError, ValueError, RuntimeError) as exc:
                if len(batch) == 1:
                    p = batch[0]
                    records[p.name] = _failure(p.name, p.path, f"fit failed: {exc}", "fit", task.key_hash)
                    _write_record(out_dir, records[p.name])
                    continue
                done = []                                    # isolate the galaxy that fails
                for p in batch:
                    try:
                        done.append(([p], *fit([p])))
                    except (ImageError, ValueError, RuntimeError) as exc1:
                        records[p.name] = _failure(p.name, p.path, f"fit failed: {exc1}", "fit",
                                                   task.key_hash)
                        _write_record(out_dir, records[p.name])
            seconds = (time.perf_counter() - t0) / len(batch)
            for members_done, model, result in done:
                for i, p in enumerate(members_done):
                    records[p.name] = _write_galaxy(out_dir, p, model, result, i, task, seconds)
    return [records[name] for name, _ in task.items]


def _write_record(out_dir: Path, record: dict) -> None:
    text = json.dumps(record, indent=1, default=_json) + "\n"
    write_text(output_paths(out_dir, record["name"])["json"], text)


def _json(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _truth_metrics(p: _Prepared, model, result, i: int) -> dict | None:
    """Recovery of a simulated file's truth: Pearson r of D, errors of A(λ₀), δ, covering, F."""
    import torch

    from sedinfer.images.fits_io import read_truth

    try:
        truth = read_truth(p.path, p.cube.image.shape[-1])
    except (OSError, ValueError):
        return None
    if truth is None:
        return None
    d_true, d_fit = truth["dust"].ravel(), result.transmission[i].ravel()
    r = float(np.corrcoef(d_true, d_fit)[0, 1]) if d_true.std() > 0 and d_fit.std() > 0 else None
    out: dict[str, Any] = {"delta": truth["delta"], "a0_mean_mag": truth["a0_mean_mag"],
                           "covering_fraction": truth["covering_fraction"],
                           "sed_njy": None if truth["sed_njy"] is None else truth["sed_njy"].tolist(),
                           "pearson_dust": r, "host": truth["host"], "dust": truth["dust"]}
    if truth["delta"] is not None:
        with torch.no_grad():
            ratio = model.ratio(torch.full((model.n_galaxies,), float(truth["delta"]),
                                           dtype=model.curve.terms.dtype,
                                           device=model.curve.terms.device))[i].cpu().double().numpy()
        s_, d_ = truth["host"] / truth["host"].sum(), np.clip(truth["dust"], 1e-12, 1)
        out["a_band_mag"] = [float(-2.5 * np.log10((s_ * d_ ** k).sum())) for k in ratio]
    if truth["sed_njy"] is not None and len(truth["sed_njy"]) == len(p.bands):
        out["sed_rel_error"] = (result.sed_njy[i] / truth["sed_njy"] - 1).tolist()
    return out


def _write_galaxy(out_dir: Path, p: _Prepared, model, result, i: int, task: ChunkTask,
                  seconds: float) -> dict:
    from sedinfer.images.output import galaxy_summary, write_dustmap_fits

    paths = output_paths(out_dir, p.name)
    arrays = [result.sed_njy[i], result.host[i], result.transmission[i], result.model[i],
              result.a_band_mag[i], result.delta[i], result.a0_mean_mag[i], result.covering_fraction[i]]
    if not all(np.isfinite(a).all() for a in arrays):
        record = _failure(p.name, p.path, "the fit returned non-finite values", "fit", task.key_hash)
        _write_record(out_dir, record)
        return record
    pivots = np.asarray(p.inst.filters.pivot_wave_aa, dtype=float)
    meta = {"prior": task.priors.label(), "redshift": p.redshift, "redshift_source": p.redshift_source,
            "psf_source": p.psf_source, "pixel_scale": p.pixel_scale, "settings_hash": task.key_hash,
            "config": task.settings.config, "pivots_aa": pivots, "file": str(p.path)}
    write_dustmap_fits(paths["fits"], result, i, p.cube, p.bands, meta)
    truth = _truth_metrics(p, model, result, i)
    outputs = {"fits": paths["fits"].name}
    if task.settings.figures:
        from sedinfer.images.figure import dustmap_figure

        dustmap_figure(paths["figure"], result, i, p.bands, pivots, p.pixel_scale, truth, p.name)
        outputs["figure"] = paths["figure"].name
    record = galaxy_summary(p.name, p.path, result, i, p.cube, p.bands, meta)
    if truth is not None:
        record["truth"] = {k: v for k, v in truth.items() if k not in ("host", "dust")}
    record.update(outputs={**outputs, "json": paths["json"].name}, settings_hash=task.key_hash,
                  seconds=round(seconds, 3), priors=task.priors.describe())
    _write_record(out_dir, record)
    return record


# ---------------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class FitRunSummary:
    """What :func:`run_dustmap_fit` did (``run.json`` holds the same and every galaxy)."""

    out_dir: Path
    n_inputs: int
    n_ok: int
    n_failed: int
    n_resumed: int
    n_chunks: int
    n_chunks_skipped: int
    seconds: float
    failures: tuple[tuple[str, str], ...]

    def line(self) -> str:
        fitted = self.n_inputs - self.n_resumed
        rate = f", {self.seconds / fitted:.2f} s per galaxy" if fitted else ""
        return (f"{self.n_inputs} galaxies ({self.n_resumed} already done), {self.n_ok} ok, "
                f"{self.n_failed} failed, {self.n_chunks - self.n_chunks_skipped} of {self.n_chunks} "
                f"chunks run in {self.seconds:.1f} s{rate} -> {self.out_dir}")


def _dask_results(tasks: list[ChunkTask], scheduler: str, workers: int | None, processes: bool
                  ) -> Iterator[list[dict]]:
    from distributed import as_completed

    from sedinfer.parallel import dask_client

    with dask_client(scheduler, workers, processes) as client:
        window = 2 * max(1, len(client.scheduler_info()["workers"]))
        pending = as_completed()
        for task in tasks:
            pending.add(client.submit(fit_chunk, task, pure=False))
            while pending.count() >= window:
                yield next(pending).result()
        for future in pending:
            yield future.result()


def run_dustmap_fit(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                    settings: FitSettings | None = None, priors: PriorSpec | None = None,
                    chunk: int = 32, scheduler: str | None = None, workers: int | None = None,
                    processes: bool = True, threads: int | None = None, overwrite: bool = False,
                    retry_failed: bool = False, progress: bool = True) -> FitRunSummary:
    """Fit every cube of ``inputs`` into ``out_dir``, resumably (see the module docstring)."""
    from sedinfer.threads import check_threads

    settings = settings or FitSettings()
    priors = priors or PriorSpec("none")
    threads = check_threads(threads)
    if chunk < 1:
        raise ImageError(f"chunk must be >= 1, got {chunk}")
    items = expand_inputs(inputs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = settings.key(priors)
    key_hash = _key_hash(key)
    t0 = time.perf_counter()
    records: dict[str, dict] = {}
    resumed: set[str] = set()
    other = []
    for name, _ in items:
        rec = _read_record(output_paths(out, name)["json"])
        if overwrite or rec is None:
            continue
        if rec.get("settings_hash") != key_hash:
            other.append(name)
        elif _complete(rec, out, settings.figures) and (rec["ok"] or not retry_failed):
            records[name], _ = rec, resumed.add(name)
    if other:
        raise ImageError(f"{out} holds results of {len(other)} of these galaxies (e.g. {other[0]!r}) made "
                         "with other settings or priors; use another --out, or --overwrite to refit them")
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    tasks = [ChunkTask(k, [(n, str(p)) for n, p in c if n not in resumed], str(out), settings, priors,
                       key_hash, threads) for k, c in enumerate(chunks)]
    todo = [t for t in tasks if t.items]
    summary_path = out / RUN_SUMMARY

    def write_summary(status: str) -> FitRunSummary:
        rows = []
        for name, path in items:
            rec = records.get(name)
            if rec is None:
                rows.append({"name": name, "file": str(path), "ok": None, "reason": "not fitted yet"})
                continue
            rows.append({"name": name, "file": str(path), "ok": rec["ok"], "reason": rec.get("reason"),
                         "resumed": name in resumed, "seconds": rec.get("seconds"),
                         **{k: rec.get(k) for k in ("a0_mean_mag", "delta", "covering_fraction",
                                                    "converged", "n_iter") if k in rec}})
        done = [r for r in rows if r["ok"] is not None]
        failed = tuple((r["name"], r["reason"]) for r in done if not r["ok"])
        elapsed = time.perf_counter() - t0
        fitted = len(done) - len(resumed)
        doc = {"status": status, "n_inputs": len(items), "n_ok": sum(bool(r["ok"]) for r in done),
               "n_failed": len(failed), "n_resumed": len(resumed), "n_chunks": len(chunks),
               "n_chunks_skipped": len(chunks) - len(todo), "chunk": chunk, "seconds": round(elapsed, 2),
               "seconds_per_fitted_galaxy": round(elapsed / fitted, 3) if fitted else None,
               "scheduler": scheduler, "workers": workers, "threads": threads, "batch": settings.batch,
               "device": settings.device, "settings": key, "settings_hash": key_hash,
               "variance_rule": VARIANCE_RULE, "cut_rule": CUT_RULE, "galaxies": rows}
        write_text(summary_path, json.dumps(doc, indent=1, default=_json) + "\n")
        return FitRunSummary(out, len(items), doc["n_ok"], len(failed), len(resumed), len(chunks),
                             len(chunks) - len(todo), elapsed, failed)

    def consume(results: Iterable[list[dict]]) -> None:
        for n_done, recs in enumerate(results, 1):
            for rec in recs:
                records[rec["name"]] = rec
            write_summary("running")
            if progress:
                bad = sum(not r["ok"] for r in recs)
                print(f"dustmap fit: chunk {n_done}/{len(todo)} done ({len(recs)} galaxies, {bad} failed, "
                      f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)

    if scheduler is None:
        consume(fit_chunk(t) for t in todo)
    elif todo:
        consume(_dask_results(todo, scheduler, workers, processes))
    return write_summary("complete")


__all__ = ["PRIOR_MODES", "PRIOR_FILES", "SHIPPED_PRIOR_DIR", "DEMO_DIR", "VARIANCE_RULE", "CUT_RULE",
           "PriorSpec", "resolve_priors", "FitSettings", "expand_inputs", "output_paths", "ChunkTask",
           "fit_chunk", "FitRunSummary", "run_dustmap_fit", "demo_cubes", "data_path"]
