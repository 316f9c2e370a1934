"""``sedinfer posterior``: posterior summaries (and samples) for every row of a catalog, in chunks.

:func:`run_posterior` reads the catalog in chunks (:func:`sedinfer.catalog.iter_catalog_chunks`),
runs each chunk through a :class:`~sedinfer.posterior.galaxies.SEDPosterior` — in this process or
on a Dask cluster — and writes one part per chunk into ``<out>.parts/``. A ``manifest.json`` there
pins the catalog (path, size, mtime), the model (path, SHA-256), the number of draws, the seed, the
chunk size and the column map, so a killed run resumes with the parts it finished; a mismatching
manifest is an error. The parts are then joined into the output (written to a temporary file and
renamed into place; Parquet is streamed part by part, FITS is assembled in memory) and removed.

Draws are seeded per row from ``(seed, row index in the catalog)``, so results do not depend on
the chunk size, the order in which chunks finish or the scheduler. Rows that cannot be processed
stay in the output with ``ok=False`` and a ``reason``.

Photometry is read in the units of the catalog (column units or ``input_units``: nanomaggies,
maggies, µJy, nJy, AB or SDSS asinh magnitudes; :mod:`sedinfer.photometry_input`). Before any
chunk runs, the first :data:`~sedinfer.photometry_input.GUARD_ROWS` rows are checked so that
magnitudes in flux columns without a unit are refused.

Without a scheduler the chunks run in ``workers`` local processes (default: the CPUs, at most 8;
:func:`sedinfer.parallel.process_map`), each with ``threads`` torch threads (default one,
:mod:`sedinfer.threads`: many threads collapse when other processes share the cores, while each
process takes the next chunk when it is free). Progress shows as a bar on a terminal and as a line
every ~10 s otherwise (:mod:`sedinfer.progress`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedinfer.catalog import catalog_columns, catalog_format, iter_catalog_chunks, read_catalog
from sedinfer.digest import file_sha256
from sedinfer.errors import CatalogError, SedinferError
from sedinfer.posterior.columns import ColumnMap
from sedinfer.posterior.galaxies import SHIPPED, SEDPosterior, shipped_path
from sedinfer.posterior.parts import (
    MANIFEST_VERSION,
    column_units,
    open_parts,
    part_path,
    write_output,
    write_part,
    write_samples,
)
from sedinfer.progress import progress as progress_reporter
from sedinfer.threads import check_threads, torch_threads

OUTPUT_FORMATS = ("parquet", "fits")
SAMPLES_SUFFIXES = (".h5", ".hdf5")


# ------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ModelRef:
    """A model file: the name the user gave, its resolved path and the SHA-256 of its bytes."""

    name: str
    path: str
    sha256: str


def model_ref(model: str | os.PathLike) -> ModelRef:
    """Resolve a shipped model name or a model file path (error if missing)."""
    key = os.fspath(model)
    path = shipped_path(key) if key in SHIPPED else Path(key)
    if not path.is_file():
        raise SedinferError(f"model {key!r} is neither a shipped model ({', '.join(SHIPPED)}) nor a file")
    digest = file_sha256(path)
    return ModelRef(key, str(path.resolve()), digest)


@functools.lru_cache(maxsize=2)
def cached_posterior(path: str, sha256: str) -> SEDPosterior:
    """The model at ``path``, loaded once per process (``sha256`` keys the cache)."""
    del sha256
    return SEDPosterior.load(path)


# ------------------------------------------------------------------------------ sampling
def row_seeds(seed: int, start: int, n: int) -> np.ndarray:
    """(n,) torch seeds of catalog rows ``start .. start+n-1``, derived from ``(seed, row)``."""
    return np.array([int(np.random.SeedSequence([seed, start + i]).generate_state(1, np.uint64)[0])
                     & 0x7FFF_FFFF_FFFF_FFFF for i in range(n)], dtype=np.int64)


@dataclass
class ChunkTask:
    """One chunk: its index, first catalog row, ids (N,), flux and errors (N, B) nmgy, z (N,), and
    the torch threads to run it with."""

    index: int
    start: int
    id_name: str
    ids: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    redshift: np.ndarray | None
    model: ModelRef
    n_samples: int
    seed: int
    keep_samples: bool
    threads: int = 1


def process_chunk(task: ChunkTask):
    """Run one chunk (in this process or on a Dask worker): ``(index, summary Table, samples|None)``."""
    from sedinfer.parallel import restore_malloc_defaults

    restore_malloc_defaults()            # a no-op outside glibc; undoes Dask's MALLOC_TRIM_THRESHOLD_
    sp = cached_posterior(task.model.path, task.model.sha256)
    seeds = row_seeds(task.seed, task.start, len(task.ids))
    with torch_threads(task.threads):
        res = sp.infer(task.flux, task.flux_err, task.redshift, n_samples=task.n_samples, row_seeds=seeds)
    table = res.summary_table()
    for name, unit in column_units(res.names).items():
        for tag in ("p16", "p50", "p84"):
            table[f"{name}_{tag}"].unit = unit
    table.add_column(task.ids, name=task.id_name, index=0)
    return task.index, table, (res.samples if task.keep_samples else None)


def _results(tasks: Iterable[ChunkTask], scheduler: str | None, workers: int | None,
             processes: bool) -> Iterator[tuple]:
    """Results of ``tasks``, as they finish: on a Dask cluster (``"local"`` starts one), in local
    worker processes, or here when one worker is asked for."""
    from sedinfer.parallel import dask_map, default_workers, process_map

    if scheduler:
        return dask_map(process_chunk, tasks, scheduler, workers, processes)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise SedinferError(f"workers must be a positive integer, got {workers!r}")
    return process_map(process_chunk, tasks, workers)


# ------------------------------------------------------------------------------ parts + manifest
# ------------------------------------------------------------------------------ the run
@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_posterior` did; ``failures`` holds the first (id, reason) pairs."""

    out: Path
    samples: Path | None
    n_rows: int
    n_failed: int
    n_ood: int
    n_chunks: int
    n_resumed_rows: int
    seconds: float
    failures: tuple[tuple[str, str], ...]

    def line(self) -> str:
        computed = self.n_rows - self.n_resumed_rows
        resumed = f" ({self.n_resumed_rows} resumed)" if self.n_resumed_rows else ""
        return (f"{self.n_rows} rows{resumed}, {self.n_failed} failed, {self.n_ood} OOD-flagged, "
                f"{self.seconds:.1f} s, {computed / max(self.seconds, 1e-9):.1f} rows/s")


def _check_outputs(out: Path, samples: Path | None, overwrite: bool) -> None:
    if catalog_format(out) not in OUTPUT_FORMATS:
        raise CatalogError(f"output {str(out)!r} must be Parquet (.parquet) or FITS (.fits)")
    if samples is not None and samples.suffix.lower() not in SAMPLES_SUFFIXES:
        raise CatalogError(f"samples file {str(samples)!r} must end in .h5 or .hdf5")
    for path in (out, samples):
        if path is None:
            continue
        if path.exists() and not overwrite:
            raise CatalogError(f"{str(path)!r} already exists; pass --overwrite to replace it")
        if not path.parent.is_dir():
            raise CatalogError(f"output directory {str(path.parent)!r} does not exist")


def _count_rows(path: Path) -> int | None:
    fmt = catalog_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt == "fits":
        from astropy.io import fits

        with fits.open(path) as hdul:
            tables = (h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU)))
            return next((h.header["NAXIS2"] for h in tables), None)
    return None


def run_posterior(catalog: str | os.PathLike, out: str | os.PathLike, columns: ColumnMap, *,
                  model: str | os.PathLike = "sdss-specz", n_samples: int = 1000, seed: int = 0,
                  chunk_rows: int = 100, save_samples: str | os.PathLike | None = None,
                  scheduler: str | None = None, workers: int | None = None, processes: bool = True,
                  restart: bool = False, overwrite: bool = False, progress: bool = True,
                  threads: int | None = None) -> RunSummary:
    """Posterior summaries for every row of ``catalog`` into ``out`` (see the module docstring).

    ``columns`` maps the catalog (see :func:`sedinfer.posterior.columns.column_map`); ``scheduler``
    is a Dask scheduler address or ``"local"`` (a LocalCluster of ``workers`` single-threaded workers);
    without it ``workers`` local processes run the chunks (default
    :func:`sedinfer.parallel.default_workers`; 1 runs them in this process). ``threads``: torch
    threads per chunk (default :data:`sedinfer.threads.DEFAULT_THREADS`). ``progress``: a bar on a
    terminal, else timed lines on stderr.
    """
    start_time = time.perf_counter()
    catalog, out = Path(catalog), Path(out)
    samples_path = Path(save_samples) if save_samples is not None else None
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise SedinferError(f"n_samples must be a positive integer, got {n_samples!r}")
    threads = check_threads(threads)
    _check_outputs(out, samples_path, overwrite)
    columns.check(catalog_columns(catalog), catalog)
    ref = model_ref(model)
    sp = cached_posterior(ref.path, ref.sha256)
    if sp.bands != columns.bands or (sp.redshift_mode == "spec") != (columns.redshift is not None):
        raise SedinferError(f"the column map (bands {list(columns.bands)}, redshift {columns.redshift!r}) "
                            f"does not fit model {ref.name!r} (bands {list(sp.bands)}, "
                            f"{sp.redshift_mode}-z)")
    stat = catalog.stat()
    manifest = {"version": MANIFEST_VERSION, "catalog": {"path": str(catalog.resolve()), "size": stat.st_size,
                                                         "mtime_ns": stat.st_mtime_ns},
                "model": {"path": ref.path, "sha256": ref.sha256}, "n_samples": int(n_samples),
                "seed": int(seed), "chunk_rows": int(chunk_rows), "columns": columns.to_dict(),
                "save_samples": samples_path is not None}
    _guard_magnitudes(catalog, columns)
    parts = out.with_name(out.name + ".parts")
    done = open_parts(parts, manifest, restart)
    indices: list[int] = []
    resumed = [0]

    def tasks(bar) -> Iterator[ChunkTask]:
        row = 0
        for index, chunk in enumerate(iter_catalog_chunks(catalog, chunk_rows, columns.required())):
            indices.append(index)
            if index in done:
                resumed[0] += len(chunk)
                bar.skip(len(chunk))
            else:
                ids, flux, err, z = columns.arrays(chunk, guard=False)
                yield ChunkTask(index, row, columns.id, ids, flux, err, z, ref, int(n_samples), int(seed),
                                samples_path is not None, threads)
            row += len(chunk)

    with progress_reporter(_count_rows(catalog), "posterior", enabled=progress) as bar:
        results = _results(tasks(bar), scheduler, workers, processes)
        for index, table, samples in results:
            write_part(parts, index, table, samples)
            bar.update(len(table))
    if not indices:
        shutil.rmtree(parts)
        raise CatalogError(f"catalog {str(catalog)!r} has no rows")
    return _finish(parts, indices, out, samples_path, columns, sp.names, ref, manifest, resumed[0],
                   start_time)


def _guard_magnitudes(catalog: Path, columns: ColumnMap) -> None:
    """Refuse magnitude-like flux columns, judged on the first GUARD_ROWS rows (whatever the chunk size)."""
    from sedinfer.photometry_input import GUARD_ROWS

    chunks = iter_catalog_chunks(catalog, GUARD_ROWS, list(dict.fromkeys(columns.flux)))
    try:
        first = next(chunks, None)
    finally:
        chunks.close()                  # release the file (FITS memory map, CSV reader) now
    if first is not None:
        columns.refuse_magnitudes(first)


def _finish(parts: Path, indices: list[int], out: Path, samples_path: Path | None, columns: ColumnMap,
            names: tuple[str, ...], ref: ModelRef, manifest: dict, resumed: int,
            start_time: float) -> RunSummary:
    """Write the output (and samples) file, remove the parts, summarise."""
    from sedinfer import __version__

    meta = {"sedinfer_version": __version__, "posterior_model": ref.name,
            "posterior_model_sha256": ref.sha256,
            "catalog": manifest["catalog"]["path"], "n_samples": manifest["n_samples"],
            "seed": manifest["seed"], "column_map": json.dumps(columns.to_dict()),
            "names": json.dumps(list(names)), "quantiles": "16,50,84"}
    files = [part_path(parts, i) for i in indices]
    n_rows = n_failed = n_ood = 0
    failures: list[tuple[str, str]] = []
    for f in files:
        t = read_catalog(f, [columns.id, "ok", "ood", "reason"])
        bad = ~np.asarray(t["ok"], dtype=bool)
        n_rows, n_failed, n_ood = n_rows + len(t), n_failed + int(bad.sum()), n_ood + int(np.sum(t["ood"]))
        failures += [(str(i), str(r))
                     for i, r in zip(t[columns.id][bad][:5], t["reason"][bad][:5], strict=True)]
    write_output(files, out, meta)
    if samples_path is not None:
        write_samples(parts, indices, samples_path, columns.id, names, meta)
    shutil.rmtree(parts)
    return RunSummary(out, samples_path, n_rows, n_failed, n_ood, len(indices), resumed,
                      time.perf_counter() - start_time, tuple(failures[:5]))


__all__ = ["run_posterior", "RunSummary", "ModelRef", "model_ref", "cached_posterior", "row_seeds",
           "process_chunk", "ChunkTask"]
