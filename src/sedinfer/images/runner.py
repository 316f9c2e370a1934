"""``sedinfer dustmap fit``: MAP dust maps for many cutouts, in resumable chunks (issue 18 §6-8).

:func:`run_dustmap_fit` takes FITS cutouts (files or folders of them,
:func:`~sedinfer.images.inputs.expand_inputs`), cuts them, in the order given, into chunks of
``chunk`` galaxies and fits each chunk (:func:`~sedinfer.images.chunk.fit_chunk`; a Dask task
with ``scheduler``), which writes per galaxy, atomically (:mod:`sedinfer.atomic`), in this order:

* ``OUT/<name>.dustmap.fits`` (:func:`~sedinfer.images.output.write_dustmap_fits`);
* ``OUT/<name>.dustmap.png``, a small figure (unless ``figures=False``);
* ``OUT/<name>.dustmap.json``, the galaxy's summary, written last: it marks the galaxy complete.

Here ``OUT/run.json``, the run summary listing *every* input with ``ok`` and ``reason``, is
rewritten after each chunk. A galaxy whose input cannot be used (:mod:`sedinfer.images.inputs`)
gets ``ok = false`` with the reason in its JSON and in ``run.json``; nothing is skipped silently.

**Resuming.** On a rerun into the same folder a galaxy whose JSON exists, was made with the same
settings (:meth:`~sedinfer.images.settings.FitSettings.key`: bands, stamp size, redshift, PSF,
fit configuration, priors and their files' SHA-256) and whose listed outputs exist is not fitted
again; a chunk with every galaxy complete is skipped. Failed galaxies are kept as failed unless
``retry_failed``. JSON made with other settings stops the run with an error (``overwrite``
refits everything). Because every file is renamed into place complete, an interrupted run leaves
no partial outputs, only galaxies not yet done.

**Priors**: :class:`~sedinfer.images.prior_choice.PriorSpec` from
:func:`~sedinfer.images.prior_choice.resolve_priors` (``--prior``, ``--prior-dir``) or
:meth:`~sedinfer.images.prior_choice.PriorSpec.from_objects` (Python callers).

The names this module has always offered (``PriorSpec``, ``FitSettings``, ``expand_inputs``,
``ChunkTask``, ``data_path`` ...) are importable from it still; they live in the modules named.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sedinfer.atomic import write_text
from sedinfer.images.chunk import ChunkTask, fit_chunk
from sedinfer.images.errors import ImageError
from sedinfer.images.inputs import CUT_RULE, VARIANCE_RULE, expand_inputs
from sedinfer.images.output import output_paths, read_record, to_json
from sedinfer.images.prior_choice import PRIOR_FILES, PRIOR_MODES, PriorSpec, resolve_priors
from sedinfer.images.settings import FitSettings, settings_hash
from sedinfer.images.shipped import DEMO_DIR, SHIPPED_PRIOR_DIR, data_path, demo_cubes

RUN_SUMMARY = "run.json"


def _complete(record: dict, out_dir: Path, figures: bool) -> bool:
    """A galaxy is done: it failed, or every output its record lists (FITS, figure) exists."""
    if not record["ok"]:
        return True
    files = record.get("outputs", {})
    need = ["fits"] + (["figure"] if figures else [])
    return all(k in files and (out_dir / files[k]).is_file() for k in need)


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
    from sedinfer.parallel import dask_map

    return dask_map(fit_chunk, tasks, scheduler, workers, processes)


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
    key_hash = settings_hash(key)
    t0 = time.perf_counter()
    records: dict[str, dict] = {}
    resumed: set[str] = set()
    other = []
    for name, _ in items:
        rec = read_record(output_paths(out, name)["json"])
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
        write_text(summary_path, json.dumps(doc, indent=1, default=to_json) + "\n")
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
