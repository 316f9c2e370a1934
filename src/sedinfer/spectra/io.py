"""Mock SDSS + WISE tables in Parquet: one row per galaxy, spectra as array columns.

Columns: ``id``, ``z``, ``z_err``; ``flux_flam_1e17`` and ``ivar_flam_1e17``, fixed-size lists
of M float32 on the grid stored in the metadata (10⁻¹⁷ erg/s/cm²/Å and its inverse square;
masked pixels have flux 0 and ivar 0); ``norm_flam_1e17``, ``ok``, ``reason``; the true
parameters under the model's names, ``veldisp_kms``, ``fiber_frac``, ``depth_factor``, ``r_ab``
and the derived quantities; ``w1mpro`` … ``w4mpro`` (Vega; the 95 % upper limit for a
non-detection), ``w1sigmpro`` … ``w4sigmpro`` (null for a non-detection), ``w1snr`` … and the
noiseless ``w1mag_true`` ….

The schema metadata key ``sedinfer`` holds JSON: the format name and version, ``wave_obs_aa``
(M,), the instrument, column units and how the table was made. Files are written atomically
(:func:`sedinfer.atomic.write_atomic`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sedinfer.atomic import write_atomic
from sedinfer.errors import CatalogError
from sedinfer.spectra.batch import SpectrumBatch, assemble
from sedinfer.spectra.instrument import Instrument
from sedinfer.spectra.simulate import MockCatalog
from sedinfer.spectra.wise import wise_columns

FORMAT = "sedinfer-ir-mock"
FORMAT_VERSION = 1
META_KEY = b"sedinfer"


def _instrument_meta(inst: Instrument) -> dict[str, Any]:
    return {"name": inst.name, "loglam0": inst.loglam0, "dloglam": inst.dloglam, "n_pix": inst.n_pix,
            "lsf_sigma_kms": inst.lsf_sigma_kms,
            "sky_lines": [[s.name, s.wave_air_aa, s.half_width_kms] for s in inst.sky_lines]}


def mock_table(catalog: MockCatalog, instrument: Instrument, meta: dict[str, Any] | None = None):
    """The pyarrow Table of a :class:`~sedinfer.spectra.MockCatalog` (module docstring)."""
    import pyarrow as pa

    s = catalog.spectra
    m = s.flux_norm.shape[1]

    def array_column(values: np.ndarray):
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, m)

    def nullable(values: np.ndarray):
        return pa.array(values, mask=~np.isfinite(values))

    cols: dict[str, Any] = {"id": pa.array(s.id.astype(str)), "z": pa.array(s.z), "z_err": pa.array(s.z_err),
                            "flux_flam_1e17": array_column(s.flux_flam_1e17),
                            "ivar_flam_1e17": array_column(s.ivar_flam_1e17),
                            "norm_flam_1e17": nullable(s.norm_flam_1e17), "ok": pa.array(s.ok),
                            "reason": pa.array(s.reason.astype(str))}
    for j, name in enumerate(catalog.param_names):
        cols[name] = pa.array(catalog.theta[:, j])
    for name in ("veldisp_kms", "fiber_frac", "depth_factor", "r_ab"):
        cols[name] = pa.array(np.asarray(getattr(catalog, name), dtype=np.float64))
    for name, values in catalog.derived.items():
        cols[name] = nullable(np.asarray(values, dtype=np.float64))
    w, names = catalog.wise, wise_columns()
    for b in range(4):
        cols[names["mpro"][b]] = nullable(w.mpro_vega[:, b])
        cols[names["sigmpro"][b]] = nullable(w.sigmpro_vega[:, b])
        cols[names["snr"][b]] = pa.array(w.snr[:, b])
        cols[f"w{b + 1}mag_true"] = nullable(w.true_vega[:, b])
    units = {"z": "", "flux_flam_1e17": "1e-17 erg/s/cm2/A", "ivar_flam_1e17": "1e34 (erg/s/cm2/A)^-2",
             "norm_flam_1e17": "1e-17 erg/s/cm2/A", "veldisp_kms": "km/s", "r_ab": "mag (AB)",
             **{c: "mag (Vega)" for c in names["mpro"] + names["sigmpro"]}}
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "wave_obs_aa": s.wave_obs_aa.tolist(),
            "instrument": _instrument_meta(instrument), "units": units, "prior_kind": catalog.prior_kind,
            "param_names": list(catalog.param_names), **(meta or {})}
    table = pa.table(cols)
    return table.replace_schema_metadata({META_KEY: json.dumps(info).encode()})


def write_mock_table(catalog: MockCatalog | Iterable[MockCatalog], path: str | os.PathLike,
                     instrument: Instrument, meta: dict[str, Any] | None = None,
                     overwrite: bool = False) -> Path:
    """Write a mock catalog, or an iterable of chunks (one row group each, memory bounded), to
    Parquet atomically; refuses to replace a file unless ``overwrite``."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise CatalogError(f"{str(path)!r}: mock tables are written as Parquet (.parquet or .pq)")
    if path.exists() and not overwrite:
        raise CatalogError(f"{str(path)!r} already exists; pass overwrite=True (--overwrite) to replace it")
    chunks = [catalog] if isinstance(catalog, MockCatalog) else catalog

    def write(tmp: str) -> None:
        writer = None
        try:
            for chunk in chunks:
                table = mock_table(chunk, instrument, meta)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise CatalogError(f"{str(path)!r}: no mock galaxies to write")

    return write_atomic(path, write, suffix=".parquet")


def open_mock_table(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(the ``pyarrow.parquet.ParquetFile``, its ``sedinfer`` metadata) of a mock table; a
    :class:`CatalogError` when ``path`` is not readable Parquet, not a mock table or of a newer
    format version."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as err:
        raise CatalogError(f"cannot read {os.fspath(path)!r} as Parquet: {err}") from err
    raw = (parquet.schema_arrow.metadata or {}).get(META_KEY)
    info = json.loads(raw) if raw else {}
    if info.get("format") != FORMAT:
        raise CatalogError(f"{os.fspath(path)!r} is not a sedinfer mock table (no {META_KEY.decode()!r} "
                           f"metadata with format {FORMAT!r})")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise CatalogError(f"{os.fspath(path)!r} has format version {info['format_version']}; this sedinfer "
                           f"reads up to {FORMAT_VERSION}")
    return parquet, info


def read_mock_table(path: str | os.PathLike) -> tuple[SpectrumBatch, Any, dict[str, Any]]:
    """(spectra, the pyarrow Table, the ``sedinfer`` metadata) of a file written by
    :func:`write_mock_table`; the spectra are masked (ivar 0) and normalised again."""
    parquet, info = open_mock_table(path)
    table = parquet.read()
    wave = np.asarray(info["wave_obs_aa"], dtype=np.float64)
    m = len(wave)

    def matrix(name: str) -> np.ndarray:
        col = table.column(name).combine_chunks()
        return col.flatten().to_numpy().reshape(-1, m).astype(np.float64)

    flux, ivar = matrix("flux_flam_1e17"), matrix("ivar_flam_1e17")
    n = table.num_rows
    z = table.column("z").to_numpy()
    ids = table.column("id").to_numpy(zero_copy_only=False).astype(str)
    spectra = assemble(wave, flux, ivar, ivar <= 0, z, table.column("z_err").to_numpy(),
                       np.full(n, "GALAXY"), ids, np.full(n, os.fspath(path)), None,
                       np.full(n, info["instrument"]["lsf_sigma_kms"]))
    return spectra, table, info


__all__ = ["FORMAT", "FORMAT_VERSION", "mock_table", "open_mock_table", "read_mock_table", "write_mock_table"]
