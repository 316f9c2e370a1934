"""WISE predictions for spectra: one row per spectrum, none dropped, streamed in chunks (issue 17 §7–9).

:func:`predict_wise` takes a :class:`~sedinfer.spectra.SpectrumBatch` (``read_sdss`` or
``read_mock_table``), a trained :class:`~sedinfer.spectra.autoencoder.SpectrumAutoencoder` and
:class:`~sedinfer.spectra.predictor.WisePredictor`, and returns a table with ``id``, ``z``,
``latent_0`` … ``latent_5``, ``norm`` (10⁻¹⁷ erg/s/cm²/Å), ``w1_pred`` … ``w4_pred``,
``w1_pred_err`` … ``w4_pred_err`` (Vega mag), ``ok`` and ``reason``. A row the reader already
flagged keeps its reason; a missing or out-of-range redshift gets one; those rows have NaN
predictions. A batch on another wavelength grid raises ``ValueError``.

:func:`run_predict_survey` (``sedinfer ir predict``) streams a survey through it as
``sedinfer posterior`` does a catalog (:mod:`sedinfer.posterior.runner`): the inputs (SDSS spec
files, or an ``ir simulate`` table read row group by row group) are cut into chunks of ``chunk``
spectra; each chunk (:class:`PredictTask`: file names or a row range, never the spectra) is read,
encoded and predicted in this process or on a Dask cluster (``scheduler``,
:func:`sedinfer.parallel.dask_map`, at most 2 chunks per worker queued), and written as one part
into ``<out>.parts/`` (:mod:`sedinfer.posterior.parts`). Memory is bounded by a few chunks
(≈ 0.2 GB per 2000 spectra). ``manifest.json`` there pins the inputs, both models' SHA-256 and the
chunk size, so a killed run resumes with the parts it finished (other settings: an error, or
``restart``). The parts are joined into ``out`` through a temporary file renamed into place.
Predictions do not depend on the chunk size or the scheduler (the models run in eval mode).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedinfer.digest import file_sha256
from sedinfer.spectra.autoencoder import SpectrumAutoencoder
from sedinfer.spectra.batch import SpectrumBatch
from sedinfer.spectra.predictor import WisePredictor


def predict_wise(
    batch: SpectrumBatch, autoencoder: SpectrumAutoencoder, predictor: WisePredictor, batch_size: int = 512
):
    """The prediction table (a pandas DataFrame, one row per spectrum of ``batch``)."""
    import pandas as pd

    cfg = autoencoder.config
    wave = 10.0 ** (cfg.loglam0 + cfg.dloglam * np.arange(cfg.n_pix))
    if np.shape(batch.wave_obs_aa) != wave.shape or not np.allclose(batch.wave_obs_aa, wave, rtol=1e-6):
        raise ValueError(
            f"the spectra are not on the autoencoder's {cfg.instrument_name} grid "
            f"({cfg.n_pix} pixels from {wave[0]:.1f} A); got {np.size(batch.wave_obs_aa)} pixels"
        )
    n = len(batch)
    z = np.asarray(batch.z, dtype=np.float64)
    reason = np.array([str(r) for r in batch.reason], dtype=object)
    ok = np.asarray(batch.ok, dtype=bool).copy()
    bad_z = ok & ~(np.isfinite(z) & (z >= 0) & (z <= cfg.z_max))
    reason[bad_z] = [
        f"z = {v:.4g} outside the trained range [0, {cfg.z_max:g}]" if np.isfinite(v) else "no redshift"
        for v in z[bad_z]
    ]
    ok &= ~bad_z
    latents = np.full((n, cfg.n_latent), np.nan)
    mean = np.full((n, 4), np.nan)
    err = np.full((n, 4), np.nan)
    rows = np.flatnonzero(ok)
    if rows.size:
        s = autoencoder.encode_arrays(batch.flux_norm[rows], batch.ivar_norm[rows], z[rows], batch_size)
        latents[rows] = s
        mean[rows], err[rows] = predictor.predict(s, batch.norm_flam_1e17[rows], z[rows])
    cols = {"id": np.asarray(batch.id, dtype=str), "z": z}
    cols.update({f"latent_{j}": latents[:, j] for j in range(cfg.n_latent)})
    cols["norm"] = np.asarray(batch.norm_flam_1e17, dtype=np.float64)
    cols.update({f"w{b + 1}_pred": mean[:, b] for b in range(4)})
    cols.update({f"w{b + 1}_pred_err": err[:, b] for b in range(4)})
    cols.update({"ok": ok, "reason": reason.astype(str)})
    return pd.DataFrame(cols)


PARTS_VERSION = 1
OUTPUT_SUFFIXES = (".parquet", ".fits")
MODEL_FILES = ("autoencoder.pt", "predictor.pt")


@dataclass(frozen=True)
class ModelFiles:
    """The two model files of a run and the SHA-256 of their bytes (keys of the per-process cache)."""

    autoencoder: str
    autoencoder_sha256: str
    predictor: str
    predictor_sha256: str

    @classmethod
    def from_dir(cls, folder: str | os.PathLike) -> ModelFiles:
        folder = Path(folder)
        ae, pred = (folder / f for f in MODEL_FILES)
        return cls(str(ae.resolve()), file_sha256(ae), str(pred.resolve()), file_sha256(pred))


@functools.lru_cache(maxsize=2)
def cached_models(files: ModelFiles) -> tuple[SpectrumAutoencoder, WisePredictor]:
    """The autoencoder and predictor of ``files``, loaded once per process."""
    return SpectrumAutoencoder.load(files.autoencoder).eval(), WisePredictor.load(files.predictor)


@dataclass(frozen=True)
class PredictTask:
    """One chunk: SDSS spec ``paths``, or rows ``start`` ≤ i < ``stop`` of the mock ``table``."""

    index: int
    models: ModelFiles
    paths: tuple[str, ...] = ()
    table: str | None = None
    start: int = 0
    stop: int = 0
    threads: int = 1


def read_mock_rows(path: str | os.PathLike, start: int, stop: int) -> SpectrumBatch:
    """Rows ``start`` ≤ i < ``stop`` of an ``ir simulate`` table, reading only their row groups."""
    from sedinfer.spectra.batch import assemble
    from sedinfer.spectra.io import open_mock_table

    pf, info = open_mock_table(path)
    wave = np.asarray(info["wave_obs_aa"], dtype=np.float64)
    m = len(wave)
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    ends = np.cumsum(sizes)
    groups = [g for g in range(len(sizes)) if ends[g] > start and ends[g] - sizes[g] < stop]
    first = int(ends[groups[0]] - sizes[groups[0]]) if groups else start
    t = pf.read_row_groups(groups, columns=["id", "z", "z_err", "flux_flam_1e17", "ivar_flam_1e17"])
    t = t.slice(start - first, stop - start)

    def matrix(name: str) -> np.ndarray:
        return t.column(name).combine_chunks().flatten().to_numpy().reshape(-1, m).astype(np.float64)

    flux, ivar, n = matrix("flux_flam_1e17"), matrix("ivar_flam_1e17"), t.num_rows
    return assemble(wave, flux, ivar, ivar <= 0, t.column("z").to_numpy(), t.column("z_err").to_numpy(),
                    np.full(n, "GALAXY"), t.column("id").to_numpy(zero_copy_only=False).astype(str),
                    np.full(n, os.fspath(path)), None, np.full(n, info["instrument"]["lsf_sigma_kms"]))


def predict_chunk(task: PredictTask):
    """Read, encode and predict one chunk (here or on a Dask worker): ``(index, astropy Table)``."""
    from astropy.table import Table

    from sedinfer.parallel import restore_malloc_defaults
    from sedinfer.spectra.sdss import read_sdss
    from sedinfer.threads import torch_threads

    restore_malloc_defaults()
    ae, pred = cached_models(task.models)
    batch = (read_mock_rows(task.table, task.start, task.stop) if task.table is not None
             else read_sdss(list(task.paths), strict=False))
    with torch_threads(task.threads):
        frame = predict_wise(batch, ae, pred)
    # plain columns (NaN stays NaN; Table.from_pandas would mask it and change the schema per part)
    cols = {c: np.asarray(v) if v.dtype.kind in "biuf" else v.astype(str)
            for c, v in ((c, frame[c].to_numpy()) for c in frame.columns)}
    return task.index, Table(cols)


@dataclass(frozen=True)
class PredictSummary:
    """What :func:`run_predict_survey` did; ``failures`` holds the first (id, reason) pairs."""

    out: Path
    n_rows: int
    n_failed: int
    n_chunks: int
    n_resumed_rows: int
    seconds: float
    failures: tuple[tuple[str, str], ...]

    def line(self) -> str:
        done = self.n_rows - self.n_resumed_rows
        resumed = f" ({self.n_resumed_rows} resumed)" if self.n_resumed_rows else ""
        rate = done / max(self.seconds, 1e-9)
        return (f"{self.n_rows} spectra{resumed}, {self.n_failed} with ok=False (reason column), "
                f"{self.n_chunks} chunks, {self.seconds:.1f} s, {rate:.1f} spectra/s")


def _plan(inputs: Sequence[str | os.PathLike], ae: SpectrumAutoencoder):
    """(mock table or None, SDSS paths or None, number of spectra, manifest entry) of the inputs,
    after checking that their grid is the autoencoder's."""
    from sedinfer.errors import ParameterError
    from sedinfer.spectra.instrument import sdss_instrument
    from sedinfer.spectra.io import open_mock_table
    from sedinfer.spectra.sdss import spectrum_paths

    cfg = ae.config
    want = 10.0 ** (cfg.loglam0 + cfg.dloglam * np.arange(cfg.n_pix))
    inputs = [os.fspath(i) for i in inputs]
    tables = [p for p in inputs if p.lower().endswith((".parquet", ".pq"))]
    if tables and len(inputs) > 1:
        raise ParameterError("give one `ir simulate` table, or SDSS spec files (not both)")
    if tables:
        pf, info = open_mock_table(tables[0])
        wave, what = np.asarray(info["wave_obs_aa"], dtype=np.float64), f"table {tables[0]!r}"
        stat = Path(tables[0]).stat()
        entry = {"table": str(Path(tables[0]).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        n = pf.metadata.num_rows
    else:
        paths = [str(p) for p in spectrum_paths(inputs)]
        wave, what = sdss_instrument().wave_obs_aa, "SDSS spec files"
        entry = {"n_files": len(paths), "paths_sha256": hashlib.sha256("\n".join(paths).encode()).hexdigest()}
        n = len(paths)
    if wave.shape != want.shape or not np.allclose(wave, want, rtol=1e-6):
        raise ParameterError(f"the {what} are on a grid of {wave.size} pixels from {wave[0]:.1f} A; the "
                             f"autoencoder was trained on the {cfg.instrument_name} grid ({cfg.n_pix} pixels "
                             f"from {want[0]:.1f} A)")
    return (tables[0] if tables else None), (None if tables else paths), n, entry


def run_predict_survey(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, models: str | os.PathLike,
                       chunk: int = 2000, scheduler: str | None = None, workers: int | None = None,
                       processes: bool = True, threads: int | None = None, restart: bool = False,
                       overwrite: bool = False, progress: bool = True) -> PredictSummary:
    """Predict W1–W4 for every spectrum of ``inputs`` into ``out`` (.parquet or .fits), in
    resumable chunks (module docstring). ``models``: a folder with autoencoder.pt and predictor.pt."""
    from sedinfer import __version__
    from sedinfer.catalog import read_catalog
    from sedinfer.errors import ParameterError
    from sedinfer.posterior.parts import open_parts, part_path, write_output, write_part
    from sedinfer.progress import progress as progress_reporter
    from sedinfer.threads import check_threads

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ParameterError(f"--out must end in {' or '.join(OUTPUT_SUFFIXES)}, got {str(out)!r}")
    if out.exists() and not overwrite:
        raise ParameterError(f"{str(out)!r} already exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ParameterError(f"output directory {str(out.parent)!r} does not exist")
    if isinstance(chunk, bool) or int(chunk) != chunk or chunk < 1:
        raise ParameterError(f"--chunk must be a positive integer, got {chunk!r}")
    threads = check_threads(threads)
    files = ModelFiles.from_dir(models)
    table, paths, n, entry = _plan(inputs, cached_models(files)[0])
    if n == 0:
        raise ParameterError(f"no spectra in {list(map(str, inputs))}")
    manifest = {"version": PARTS_VERSION, "command": "ir predict", "inputs": entry, "chunk": int(chunk),
                "autoencoder_sha256": files.autoencoder_sha256, "predictor_sha256": files.predictor_sha256}
    parts = out.with_name(out.name + ".parts")
    done = open_parts(parts, manifest, restart)
    n_chunks = -(-n // chunk)
    resumed = sum(min(chunk, n - k * chunk) for k in done if k < n_chunks)

    def tasks() -> Iterator[PredictTask]:
        for k in range(n_chunks):
            if k not in done:
                a, b = k * chunk, min(n, (k + 1) * chunk)
                yield PredictTask(k, files, tuple(paths[a:b]) if paths is not None else (), table, a, b,
                                  threads)

    with progress_reporter(n, "ir predict", enabled=progress, unit="spectra", unit_one="spectrum") as bar:
        bar.skip(resumed)
        if scheduler:
            from sedinfer.parallel import dask_map

            results = dask_map(predict_chunk, tasks(), scheduler, workers, processes)
        else:
            results = (predict_chunk(t) for t in tasks())
        for index, part in results:
            write_part(parts, index, part, None)
            bar.update(len(part))
    names = [part_path(parts, k) for k in range(n_chunks)]
    n_rows = n_failed = 0
    failures: list[tuple[str, str]] = []
    for f in names:
        t = read_catalog(f, ["id", "ok", "reason"])
        bad = ~np.asarray(t["ok"], dtype=bool)
        n_rows, n_failed = n_rows + len(t), n_failed + int(bad.sum())
        failures += [(str(i), str(r)) for i, r in zip(t["id"][bad][:5], t["reason"][bad][:5], strict=True)]
    meta = {"sedinfer_version": __version__, "autoencoder": files.autoencoder,
            "autoencoder_sha256": files.autoencoder_sha256, "predictor": files.predictor,
            "predictor_sha256": files.predictor_sha256, "units": "w*_pred, w*_pred_err: Vega mag; "
            "norm: 1e-17 erg/s/cm2/A"}
    write_output(names, out, meta)
    shutil.rmtree(parts)
    return PredictSummary(out, n_rows, n_failed, n_chunks, resumed, time.perf_counter() - t0,
                          tuple(failures[:5]))


__all__ = ["ModelFiles", "PredictSummary", "PredictTask", "cached_models", "predict_chunk", "predict_wise",
           "read_mock_rows", "run_predict_survey"]
