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
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sedinfer.catalog import catalog_columns, catalog_format, iter_catalog_chunks, read_catalog, write_catalog
from sedinfer.errors import CatalogError, SedinferError
from sedinfer.posterior.columns import ColumnMap
from sedinfer.posterior.galaxies import SHIPPED, SEDPosterior, shipped_path

MANIFEST_VERSION = 1
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
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
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
    """One chunk: its index, first catalog row, ids (N,), flux and errors (N, B) nmgy, z (N,)."""

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


def process_chunk(task: ChunkTask):
    """Run one chunk (in this process or on a Dask worker): ``(index, summary Table, samples|None)``."""
    sp = cached_posterior(task.model.path, task.model.sha256)
    seeds = row_seeds(task.seed, task.start, len(task.ids))
    res = sp.infer(task.flux, task.flux_err, task.redshift, n_samples=task.n_samples, row_seeds=seeds)
    table = res.summary_table()
    for name, unit in _units(res.names).items():
        for tag in ("p16", "p50", "p84"):
            table[f"{name}_{tag}"].unit = unit
    table.add_column(task.ids, name=task.id_name, index=0)
    return task.index, table, (res.samples if task.keep_samples else None)


def _dask_results(tasks: Iterable[ChunkTask], scheduler: str, workers: int | None,
                  processes: bool) -> Iterator[tuple]:
    """Results of ``tasks`` on a Dask cluster (``"local"`` starts one), at most 2 per worker queued."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=processes, dashboard_address=None)
    client = Client(cluster if cluster is not None else scheduler)
    try:
        window = 2 * max(1, len(client.scheduler_info()["workers"]))
        pending = as_completed()
        for task in tasks:
            pending.add(client.submit(process_chunk, task, pure=False))
            while pending.count() >= window:
                yield next(pending).result()
        for future in pending:
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------ parts + manifest
def _atomic_json(data: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _open_parts(parts: Path, manifest: dict, restart: bool) -> set[int]:
    """Create or reuse the parts directory; the indices of chunks already finished."""
    if restart and parts.exists():
        shutil.rmtree(parts)
    target = parts / "manifest.json"
    if parts.exists():
        if not target.is_file() and any(parts.iterdir()):
            raise CatalogError(f"{parts} exists without a manifest.json; delete it or pass --restart")
        if target.is_file():
            old = json.loads(target.read_text())
            if old != manifest:
                keys = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
                raise CatalogError(f"{parts} holds a run with different settings ({', '.join(keys)}); "
                                   "delete it or pass --restart to start over")
    parts.mkdir(exist_ok=True)
    _atomic_json(manifest, target)
    return {int(p.name[5:11]) for p in parts.glob("part_*.parquet")}


def _part(parts: Path, index: int, samples: bool = False) -> Path:
    return parts / f"part_{index:06d}{'.samples.npy' if samples else '.parquet'}"


def _write_part(parts: Path, index: int, table, samples: np.ndarray | None) -> None:
    """Samples first, the summary last: a chunk is finished when its summary part exists."""
    if samples is not None:
        tmp = parts / f".part_{index:06d}.{secrets.token_hex(4)}.tmp.npy"
        np.save(tmp, samples)
        os.replace(tmp, _part(parts, index, samples=True))
    write_catalog(table, _part(parts, index), overwrite=True)


def _units(names: tuple[str, ...]) -> dict:
    import astropy.units as u

    from sedinfer.priors import PARAMETER_INFO
    from sedinfer.sps.derived import DERIVED_UNITS

    text = {n: DERIVED_UNITS.get(n) or PARAMETER_INFO.get(n, ("", ""))[0] for n in names}
    return {n: u.Unit(t, parse_strict="silent") for n, t in text.items() if t}


def _write_output(parts: list[Path], out: Path, meta: dict) -> None:
    """Join the summary parts into ``out`` (Parquet streamed, FITS in memory), atomically."""
    if catalog_format(out) == "fits":
        from astropy.table import vstack

        table = vstack([read_catalog(p) for p in parts], metadata_conflicts="silent")
        write_catalog(table, out, overwrite=True, meta=meta)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = parts[0]
    lengths: dict[bytes, int] = {}
    for p in parts:  # astropy reads strings at the width recorded per part: keep the widest
        for key, value in (pq.read_schema(p).metadata or {}).items():
            if key.startswith(b"table::len::"):
                lengths[key] = max(lengths.get(key, 0), int(value))
    head = read_catalog(first)[:0]
    probe = out.with_name(f".{out.name}.{secrets.token_hex(4)}.schema.parquet")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp.parquet")
    try:
        write_catalog(head, probe, meta=meta)
        schema = pq.read_schema(probe)
        schema = schema.with_metadata({**schema.metadata, **{k: str(v).encode() for k, v in lengths.items()}})
        with pq.ParquetWriter(tmp, schema) as writer:
            for p in parts:
                for batch in pq.ParquetFile(p).iter_batches():
                    table = pa.Table.from_batches([batch])
                    if not table.schema.equals(schema, check_metadata=False):
                        table = table.cast(schema)
                    writer.write_table(table)
        os.replace(tmp, out)
    finally:
        probe.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _write_samples(parts: Path, indices: list[int], path: Path, id_name: str, names, meta: dict) -> None:
    """HDF5 file: ``samples`` (N, S, K) float32, ``id`` (N,), ``names`` (K,); written atomically."""
    import h5py

    blocks = [np.load(_part(parts, i, samples=True), mmap_mode="r") for i in indices]
    ids = np.concatenate([np.asarray(read_catalog(_part(parts, i), [id_name])[id_name]) for i in indices])
    n, s, k = sum(b.shape[0] for b in blocks), blocks[0].shape[1], blocks[0].shape[2]
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp.h5")
    try:
        with h5py.File(tmp, "w") as fh:
            dset = fh.create_dataset("samples", shape=(n, s, k), dtype="f4",
                                     chunks=(max(1, min(n, 2**18 // max(1, s * k))), s, k))
            row = 0
            for block in blocks:
                dset[row:row + len(block)] = block
                row += len(block)
            fh.create_dataset("id", data=ids.astype(h5py.string_dtype()) if ids.dtype.kind in "US" else ids)
            fh.create_dataset("names", data=np.array(names, dtype=h5py.string_dtype()))
            fh.attrs.update({k: v for k, v in meta.items() if isinstance(v, (str, int, float))})
            fh.attrs["names"] = list(names)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
                  chunk_rows: int = 2000, save_samples: str | os.PathLike | None = None,
                  scheduler: str | None = None, workers: int | None = None, processes: bool = True,
                  restart: bool = False, overwrite: bool = False, progress: bool = True) -> RunSummary:
    """Posterior summaries for every row of ``catalog`` into ``out`` (see the module docstring).

    ``columns`` maps the catalog (see :func:`sedinfer.posterior.columns.column_map`); ``scheduler``
    is a Dask scheduler address or ``"local"`` (a LocalCluster of ``workers`` single-threaded workers).
    """
    from tqdm.auto import tqdm

    start_time = time.perf_counter()
    catalog, out = Path(catalog), Path(out)
    samples_path = Path(save_samples) if save_samples is not None else None
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise SedinferError(f"n_samples must be a positive integer, got {n_samples!r}")
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
    parts = out.with_name(out.name + ".parts")
    done = _open_parts(parts, manifest, restart)
    indices: list[int] = []
    resumed = [0]

    def tasks(bar) -> Iterator[ChunkTask]:
        row = 0
        for index, chunk in enumerate(iter_catalog_chunks(catalog, chunk_rows, columns.required())):
            indices.append(index)
            if index in done:
                resumed[0] += len(chunk)
                bar.update(len(chunk))
            else:
                ids, flux, err, z = columns.arrays(chunk)
                yield ChunkTask(index, row, columns.id, ids, flux, err, z, ref, int(n_samples), int(seed),
                                samples_path is not None)
            row += len(chunk)

    with tqdm(total=_count_rows(catalog), unit="rows", desc="posterior", dynamic_ncols=True,
              disable=None if progress else True) as bar:
        results = (_dask_results(tasks(bar), scheduler, workers, processes) if scheduler
                   else (process_chunk(t) for t in tasks(bar)))
        for index, table, samples in results:
            _write_part(parts, index, table, samples)
            bar.update(len(table))
    if not indices:
        shutil.rmtree(parts)
        raise CatalogError(f"catalog {str(catalog)!r} has no rows")
    return _finish(parts, indices, out, samples_path, columns, sp.names, ref, manifest, resumed[0],
                   start_time)


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
    files = [_part(parts, i) for i in indices]
    n_rows = n_failed = n_ood = 0
    failures: list[tuple[str, str]] = []
    for f in files:
        t = read_catalog(f, [columns.id, "ok", "ood", "reason"])
        bad = ~np.asarray(t["ok"], dtype=bool)
        n_rows, n_failed, n_ood = n_rows + len(t), n_failed + int(bad.sum()), n_ood + int(np.sum(t["ood"]))
        failures += [(str(i), str(r))
                     for i, r in zip(t[columns.id][bad][:5], t["reason"][bad][:5], strict=True)]
    _write_output(files, out, meta)
    if samples_path is not None:
        _write_samples(parts, indices, samples_path, columns.id, names, meta)
    shutil.rmtree(parts)
    return RunSummary(out, samples_path, n_rows, n_failed, n_ood, len(indices), resumed,
                      time.perf_counter() - start_time, tuple(failures[:5]))


__all__ = ["run_posterior", "RunSummary", "ModelRef", "model_ref", "cached_posterior", "row_seeds",
           "process_chunk", "ChunkTask"]
