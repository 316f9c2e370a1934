"""Normalised spectra in memory for training: from a mock table or a :class:`SpectrumBatch`.

A mock table (``sedinfer ir simulate``, :mod:`sedinfer.spectra.io`) stores f_λ and its inverse
variance in 10⁻¹⁷ units with the normalisation ``norm_flam_1e17``; training uses
flux_norm = f_λ / norm and ivar_norm = ivar · norm², float32, read one row group at a time
(10⁵ SDSS spectra take 3.1 GB). Rows with ``ok`` False, no normalisation, or z outside
[0, z_max] are left out and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from sedinfer.errors import CatalogError
from sedinfer.spectra.batch import SpectrumBatch
from sedinfer.spectra.io import open_mock_table


@dataclass
class SpectraArrays:
    """``flux``, ``ivar`` (N, M) float32 normalised; ``z`` (N,) float32; ``id`` (N,) str;
    ``norm_flam_1e17`` (N,); ``wave_obs_aa`` (M,); ``dropped`` rows left out, by reason."""

    flux: np.ndarray
    ivar: np.ndarray
    z: np.ndarray
    id: np.ndarray
    norm_flam_1e17: np.ndarray
    wave_obs_aa: np.ndarray
    dropped: dict[str, int]

    def __len__(self) -> int:
        return int(self.flux.shape[0])

    def select(self, rows: np.ndarray) -> SpectraArrays:
        return SpectraArrays(
            self.flux[rows],
            self.ivar[rows],
            self.z[rows],
            self.id[rows],
            self.norm_flam_1e17[rows],
            self.wave_obs_aa,
            dict(self.dropped),
        )

    @classmethod
    def from_batch(cls, batch: SpectrumBatch, z_max: float = 0.5) -> SpectraArrays:
        """The usable rows of a :class:`SpectrumBatch` (``read_sdss``, ``read_mock_table``)."""
        z = np.asarray(batch.z, dtype=np.float64)
        keep, dropped = _keep(np.asarray(batch.ok, bool), np.asarray(batch.norm_flam_1e17, float), z, z_max)
        return cls(
            np.asarray(batch.flux_norm[keep], np.float32),
            np.asarray(batch.ivar_norm[keep], np.float32),
            z[keep].astype(np.float32),
            np.asarray(batch.id)[keep].astype(str),
            np.asarray(batch.norm_flam_1e17)[keep],
            np.asarray(batch.wave_obs_aa),
            dropped,
        )

    @classmethod
    def from_mock_table(
        cls, path: str | os.PathLike, z_max: float = 0.5, limit: int | None = None
    ) -> SpectraArrays:
        """The usable rows of a Parquet mock table (at most ``limit`` of them)."""
        pf, info = open_mock_table(path)
        wave = np.asarray(info["wave_obs_aa"], dtype=np.float64)
        m = len(wave)
        parts: list[tuple] = []
        dropped: dict[str, int] = {}
        n_kept = 0
        for g in range(pf.num_row_groups):
            if limit is not None and n_kept >= limit:
                break
            t = pf.read_row_group(
                g, columns=["id", "z", "flux_flam_1e17", "ivar_flam_1e17", "norm_flam_1e17", "ok"]
            )
            z = t.column("z").to_numpy().astype(np.float64)
            norm = t.column("norm_flam_1e17").to_numpy(zero_copy_only=False).astype(np.float64)
            keep, why = _keep(t.column("ok").to_numpy(zero_copy_only=False).astype(bool), norm, z, z_max)
            for k, v in why.items():
                dropped[k] = dropped.get(k, 0) + v
            rows = np.flatnonzero(keep)
            if limit is not None:
                rows = rows[: limit - n_kept]
            flux = t.column("flux_flam_1e17").combine_chunks().flatten().to_numpy().reshape(-1, m)[rows]
            ivar = t.column("ivar_flam_1e17").combine_chunks().flatten().to_numpy().reshape(-1, m)[rows]
            s = norm[rows, None]
            parts.append(
                (
                    (flux / s).astype(np.float32),
                    (ivar * s**2).astype(np.float32),
                    z[rows].astype(np.float32),
                    t.column("id").to_numpy(zero_copy_only=False)[rows].astype(str),
                    norm[rows],
                )
            )
            n_kept += len(rows)
        if not n_kept:
            raise CatalogError(f"{os.fspath(path)!r}: no usable spectra (left out: {dropped})")
        cols = [np.concatenate([p[i] for p in parts]) for i in range(5)]
        return cls(*cols, wave_obs_aa=wave, dropped=dropped)


def _keep(ok: np.ndarray, norm: np.ndarray, z: np.ndarray, z_max: float) -> tuple[np.ndarray, dict[str, int]]:
    good_norm = np.isfinite(norm) & (norm > 0)
    in_z = np.isfinite(z) & (z >= 0) & (z <= z_max)
    keep = ok & good_norm & in_z
    dropped = {
        "not ok": int((~ok).sum()),
        "no normalisation": int((ok & ~good_norm).sum()),
        f"z outside [0, {z_max}]": int((ok & good_norm & ~in_z).sum()),
    }
    return keep, {k: v for k, v in dropped.items() if v}


__all__ = ["SpectraArrays"]
