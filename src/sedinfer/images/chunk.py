"""One chunk of ``sedinfer dustmap fit``, the unit of work (a Dask task with a scheduler): read
each galaxy's input, fit those sharing an instrument in batches of ``batch`` with
:func:`~sedinfer.images.fit.fit_map`, and write each galaxy's outputs (issue 18 §6-8).

A batch whose fit fails is refitted one galaxy at a time, so one bad galaxy fails alone. Every
galaxy's record (``<name>.dustmap.json``) is written as soon as it is known, after its FITS file
and figure (:mod:`sedinfer.images.output`). Simulated cubes (files with ``HOST`` and ``DUST``
HDUs, :func:`~sedinfer.images.fits_io.read_truth`) also get their recovery metrics (``truth`` in
the record and the figure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sedinfer.images.errors import ImageError
from sedinfer.images.inputs import PreparedInput, failure_reason, prepare_input
from sedinfer.images.output import output_paths, write_failure, write_record
from sedinfer.images.prior_choice import PriorSpec
from sedinfer.images.settings import FitSettings

_FIT_ERRORS = (ImageError, ValueError, RuntimeError)


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
    prepared: list[PreparedInput] = []
    for name, path in task.items:
        t0 = time.perf_counter()
        try:
            prepared.append(prepare_input(name, Path(path), s))
        except Exception as exc:  # noqa: BLE001 - any unusable input is that galaxy's failure
            records[name] = write_failure(out_dir, name, Path(path), failure_reason(exc), "read",
                                          task.key_hash, seconds=time.perf_counter() - t0)
    device = torch.device(s.device)
    host_prior, dust_prior = (p.to(device) if p is not None and hasattr(p, "to") else p
                              for p in task.priors.load())
    groups: dict[tuple, list[PreparedInput]] = {}
    for p in prepared:
        groups.setdefault(p.inst_key, []).append(p)

    def fit(batch: list[PreparedInput]) -> list[tuple[list[PreparedInput], Any, Any]]:
        """[(galaxies, model, result)]: the batch fitted at once, else each galaxy alone; a galaxy
        whose own fit fails gets its failure record."""
        try:
            model = ImageModel(batch[0].inst, [p.redshift for p in batch]).to(device)
            data = np.stack([p.cube.image for p in batch])
            w = np.stack([p.cube.inv_var for p in batch])
            return [(batch, model, fit_map(model, data, w, host_prior, dust_prior, config=s.config))]
        except _FIT_ERRORS as exc:
            if len(batch) > 1:                               # isolate the galaxy that fails
                return [done for p in batch for done in fit([p])]
            p = batch[0]
            records[p.name] = write_failure(out_dir, p.name, p.path, f"fit failed: {exc}", "fit",
                                            task.key_hash)
            return []

    for members in groups.values():
        for start in range(0, len(members), s.batch):
            batch = members[start:start + s.batch]
            t0 = time.perf_counter()
            done = fit(batch)
            seconds = (time.perf_counter() - t0) / len(batch)
            for members_done, model, result in done:
                for i, p in enumerate(members_done):
                    records[p.name] = _write_galaxy(out_dir, p, model, result, i, task, seconds)
    return [records[name] for name, _ in task.items]


def _truth_metrics(p: PreparedInput, model, result, i: int) -> dict | None:
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


def _write_galaxy(out_dir: Path, p: PreparedInput, model, result, i: int, task: ChunkTask,
                  seconds: float) -> dict:
    from sedinfer.images.output import galaxy_summary, write_dustmap_fits

    paths = output_paths(out_dir, p.name)
    arrays = [result.sed_njy[i], result.host[i], result.transmission[i], result.model[i],
              result.a_band_mag[i], result.delta[i], result.a0_mean_mag[i], result.covering_fraction[i]]
    if not all(np.isfinite(a).all() for a in arrays):
        return write_failure(out_dir, p.name, p.path, "the fit returned non-finite values", "fit",
                             task.key_hash)
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
    return write_record(out_dir, record)


__all__ = ["ChunkTask", "fit_chunk"]
