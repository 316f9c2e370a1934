"""A population fit of a catalog file, end to end: read, check, fit, sample, tabulate, plot.

:func:`run_population` is what ``sedinfer population CATALOG --out DIR`` does. It reads fluxes
(nanomaggies, through the shared :class:`~sedinfer.posterior.columns.ColumnMap`), turns them
into magnitudes, fits the ensemble with per-flow checkpoints under ``DIR/checkpoints`` (a rerun
resumes), and writes into ``DIR`` (each file atomically):

* ``population.pt`` — the fitted ensemble (:func:`sedinfer.population.load`);
* ``samples.parquet`` — ensemble draws with derived quantities and synthetic photometry;
* ``run.json`` — the catalog, columns, settings, timings and per-flow losses;
* ``corner.png``, ``photometry.png``, ``nz.png``, ``sfms.png`` — PopSED Figs. 2–4 analogues
  (with the catalog's ``true_<param>`` columns drawn as the truth when present).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sedinfer.atomic import write_text
from sedinfer.errors import CatalogError
from sedinfer.population.data import observed_magnitudes
from sedinfer.population.fit import PopulationWarning
from sedinfer.population.forward import selection_probability
from sedinfer.population.support import unexplained_fraction, warn_if_unexplained
from sedinfer.population.validation import keep_with_probability, photometry_c2st
from sedinfer.units import POGSON

FIGURE_COLUMNS = ("redshift", "log_mstar", "log_sfr_100myr", "log_z", "mass_weighted_age")


@dataclass
class PopulationRun:
    """What :func:`run_population` wrote and measured."""

    out_dir: Path
    n_galaxies: int
    n_dropped: int
    seconds: float
    files: list[Path] = field(default_factory=list)
    photometry_c2st: float = float("nan")
    unexplained_fraction: float = float("nan")

    def line(self) -> str:
        return (
            f"fitted {self.n_galaxies} galaxies ({self.n_dropped} rows with bad fluxes dropped) in "
            f"{self.seconds:.0f} s; catalog vs synthetic photometry C2ST accuracy {self.photometry_c2st:.3f} "
            f"(0.5: indistinguishable); {self.unexplained_fraction:.1%} of the catalog not reproduced; "
            f"outputs in {self.out_dir}"
        )


def describe_box(pop: Any) -> str:
    """The population's box as 'name low-high, ...' (for messages)."""
    return ", ".join(f"{n} {lo:.3g}-{hi:.3g}" for n, lo, hi in
                     zip(pop.param_names, pop.low.tolist(), pop.high.tolist(), strict=True))


def catalog_magnitudes(
    flux_nmgy: np.ndarray, err_nmgy: np.ndarray, bands: tuple[str, ...], drop_bad_rows: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AB magnitudes and errors (N', B) from nanomaggies, and the boolean mask of rows kept.

    Rows with a non-finite or non-positive flux, or a non-finite or negative error, cannot be
    magnitudes: they raise a :class:`CatalogError` naming the band and the count, unless
    ``drop_bad_rows`` (then they are dropped and counted).
    """
    bad = ~np.isfinite(flux_nmgy) | (flux_nmgy <= 0) | ~np.isfinite(err_nmgy) | (err_nmgy < 0)
    rows = bad.any(1)
    if rows.any() and not drop_bad_rows:
        col = int(np.flatnonzero(bad.any(0))[0])
        raise CatalogError(
            f"{int(rows.sum())} row(s) have a missing, non-finite or non-positive flux or error "
            f"(first band {bands[col]!r}: {int(bad[:, col].sum())} rows); population inference "
            "compares magnitudes, so cut these rows (e.g. S/N > 1 in every band, as PopSED) or "
            "pass --drop-bad-rows"
        )
    keep = ~rows
    f, e = flux_nmgy[keep], err_nmgy[keep]
    return 22.5 - 2.5 * np.log10(f), POGSON * e / f, keep


def _truth_columns(
    table, names: tuple[str, ...], keep: np.ndarray, model: Any
) -> dict[str, np.ndarray] | None:
    """Truth columns of a mock catalog (``true_<param>`` for every parameter), with derived ones."""
    from sedinfer.population.outputs import derived_columns

    cols = [f"true_{n}" for n in names]
    if not all(c in table.colnames for c in cols):
        return None
    theta = np.column_stack([np.asarray(table[c], dtype=np.float64)[keep] for c in cols])
    truth = {n: theta[:, j] for j, n in enumerate(names)}
    truth.update(derived_columns(model, torch.as_tensor(theta, dtype=model.dtype)))
    return truth


def run_population(
    catalog: str | os.PathLike,
    out_dir: str | os.PathLike,
    columns: Any,
    *,
    model: Any,
    filters: Any,
    n_flows: int,
    config: Any,
    bounds: Any = None,
    selection: Any = None,
    noise: Any = "catalog",
    n_samples: int = 10_000,
    drop_bad_rows: bool = False,
    progress: bool = True,
    device: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> PopulationRun:
    """Fit the population of ``catalog`` and write the outputs listed above into ``out_dir``."""
    from sedinfer.catalog import read_catalog, write_catalog
    from sedinfer.population import plots
    from sedinfer.population.fit import fit
    from sedinfer.population.outputs import population_table

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = read_catalog(catalog)
    columns.check(table.colnames, catalog)
    _, flux, err, _ = columns.arrays(table)
    mags, errs, keep = catalog_magnitudes(flux, err, tuple(filters.names), drop_bad_rows)
    pop = fit(
        mags,
        errs,
        model,
        filters,
        n_flows=n_flows,
        config=config,
        selection=selection,
        progress=progress,
        device=device,
        noise=noise,
        bounds=bounds,
        checkpoint_dir=out / "checkpoints",
        scheduler=scheduler,
        workers=workers,
    )
    fit_seconds = time.perf_counter() - start
    files = [pop.save(out / "population.pt")]
    model.to("cpu")
    samples = population_table(pop.cpu(), model, filters, n=n_samples, seed=config.seed)
    files.append(write_catalog(samples, out / "samples.parquet", overwrite=True))

    truth = _truth_columns(table, tuple(pop.param_names), keep, model)
    ens = {c: np.asarray(samples[c]) for c in samples.colnames}
    flow_id = ens["flow"]
    members = [{c: v[flow_id == k] for c, v in ens.items()} for k in range(pop.n_flows)]
    sets, colors, labels = [ens], ["C0"], ["inferred population (ensemble)"]
    if truth is not None:
        sets, colors, labels = [truth, ens], ["0.4", "C0"], ["truth", "inferred population (ensemble)"]
    files.append(
        plots.corner(
            sets,
            FIGURE_COLUMNS,
            out / "corner.png",
            colors=colors,
            labels=labels,
            members=members if pop.n_flows > 1 else (),
        )
    )
    bands = list(filters.names)
    obs_mags = np.asarray(mags, dtype=np.float64)
    soft = pop.metadata.get("softening_maggies")
    if f"mag_obs_{bands[0]}" in ens:  # noisy synthetic photometry: asinh, as in the fit
        syn_mags = np.column_stack([ens[f"mag_obs_{b}"] for b in bands])
        if soft is not None:  # the catalog in the same asinh magnitudes
            obs_mags = observed_magnitudes(obs_mags, np.asarray(soft, dtype=np.float64)).double().numpy()
    else:
        syn_mags = np.column_stack([ens[f"mag_{b}"] for b in bands])
    obs = {b: obs_mags[:, j] for j, b in enumerate(bands)}
    if selection is not None:  # the flows model the parent: keep the draws the survey would select
        p = selection_probability(selection, torch.as_tensor(syn_mags, dtype=torch.float32), tuple(bands))
        syn_mags = keep_with_probability(syn_mags, p.detach().numpy(), config.seed)
    syn = {b: syn_mags[:, j] for j, b in enumerate(bands)}
    c2st = photometry_c2st(obs_mags, syn_mags, seed=config.seed)
    unexplained = unexplained_fraction(obs_mags, syn_mags, seed=config.seed)
    warn_if_unexplained(unexplained, describe_box(pop), PopulationWarning)
    files.append(
        plots.corner(
            [obs, syn],
            bands,
            out / "photometry.png",
            colors=["0.4", "C0"],
            labels=["catalog", "synthetic photometry of the inferred population"],
        )
    )
    files.append(
        plots.redshift_distribution(
            [m["redshift"] for m in members], out / "nz.png", None if truth is None else truth["redshift"]
        )
    )
    files.append(plots.main_sequence(ens, out / "sfms.png", truth))
    run = {
        "catalog": os.fspath(catalog),
        "columns": columns.to_dict(),
        "n_rows": int(len(table)),
        "n_galaxies": int(keep.sum()),
        "n_dropped": int((~keep).sum()),
        "n_flows": n_flows,
        "config": config.to_dict(),
        "selection": pop.metadata.get("selection"),
        "bounds": {"low": pop.low.tolist(), "high": pop.high.tolist(), "names": list(pop.param_names)},
        "fit_seconds": round(fit_seconds, 1),
        "photometry_c2st": {**c2st, "meaning": "classifier accuracy, catalog vs synthetic photometry of the "
                            "inferred population; 0.5: indistinguishable"},
        "unexplained_fraction": {"value": unexplained, "meaning": "share of the catalog whose photometry the "
                                 "fitted population does not produce (population/support.py)"},
        "monitor": [
            {k: h[k] for k in ("seed", "monitor_initial", "monitor_final", "monitor_floor", "seconds")}
            for h in pop.history
        ],
    }
    if truth is not None:
        from sedinfer.population.validation import recovery_report

        run["recovery"] = recovery_report(
            {k: truth[k] for k in FIGURE_COLUMNS},
            {k: ens[k] for k in FIGURE_COLUMNS},
            [{k: m[k] for k in FIGURE_COLUMNS} for m in members],
        )
    files.append(write_text(out / "run.json", json.dumps(run, indent=1, default=float)))
    return PopulationRun(out, int(keep.sum()), int((~keep).sum()), time.perf_counter() - start, files,
                         c2st["accuracy"], unexplained)


__all__ = ["FIGURE_COLUMNS", "PopulationRun", "catalog_magnitudes", "run_population"]
