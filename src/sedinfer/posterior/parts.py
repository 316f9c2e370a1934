"""The on-disk state of a ``sedinfer posterior`` run: ``<out>.parts/`` with a manifest, one
part per chunk, and the final assembly of the parts into the output catalog and samples file.

A chunk is finished when its summary part exists (samples are written first); every file is
written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from sedinfer.catalog import catalog_format, read_catalog, write_catalog
from sedinfer.errors import CatalogError

MANIFEST_VERSION = 1


def atomic_json(data: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def open_parts(parts: Path, manifest: dict, restart: bool) -> set[int]:
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
    atomic_json(manifest, target)
    return {int(p.name[5:11]) for p in parts.glob("part_*.parquet")}


def part_path(parts: Path, index: int, samples: bool = False) -> Path:
    return parts / f"part_{index:06d}{'.samples.npy' if samples else '.parquet'}"


def write_part(parts: Path, index: int, table, samples: np.ndarray | None) -> None:
    """Samples first, the summary last: a chunk is finished when its summary part exists."""
    if samples is not None:
        tmp = parts / f".part_{index:06d}.{secrets.token_hex(4)}.tmp.npy"
        np.save(tmp, samples)
        os.replace(tmp, part_path(parts, index, samples=True))
    write_catalog(table, part_path(parts, index), overwrite=True)


def column_units(names: tuple[str, ...]) -> dict:
    import astropy.units as u

    from sedinfer.priors import PARAMETER_INFO
    from sedinfer.sps.derived import DERIVED_UNITS

    text = {n: DERIVED_UNITS.get(n) or PARAMETER_INFO.get(n, ("", ""))[0] for n in names}
    return {n: u.Unit(t, parse_strict="silent") for n, t in text.items() if t}


def write_output(parts: list[Path], out: Path, meta: dict) -> None:
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


def write_samples(parts: Path, indices: list[int], path: Path, id_name: str, names, meta: dict) -> None:
    """HDF5 file: ``samples`` (N, S, K) float32, ``id`` (N,), ``names`` (K,); written atomically."""
    import h5py

    blocks = [np.load(part_path(parts, i, samples=True), mmap_mode="r") for i in indices]
    ids = np.concatenate([np.asarray(read_catalog(part_path(parts, i), [id_name])[id_name]) for i in indices])
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
