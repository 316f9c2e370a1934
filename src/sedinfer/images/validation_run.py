"""A resumable validation run of the dust-map fit on held-out simulated galaxies (issue 18 §5).

Galaxies ``start … start + n − 1`` of a seed other than the priors' training seed (0, used by
``scripts/train_dust_priors.py``; the test seed is 1) are simulated with
:func:`~sedinfer.images.simulate.simulate_galaxies` (``n_views`` orientations, fiducial and
monochromatic hosts sharing one noise draw) and fitted with :func:`~sedinfer.images.fit.fit_map`
once per prior mode: ``none`` (the likelihood alone), ``unconditional`` (s(S) + s(D)) and
``conditional`` (s(S) + s(D | S)). Every view's truth and observed cube and every (view, mode) fit
go to a :class:`~sedinfer.images.validation.ResultStore` under the work folder as soon as they
exist, so a rerun with the same settings continues where the last one stopped; ``max_seconds``
stops before the next batch once spent. Galaxies are processed in chunks with all modes per chunk,
so a partial run compares the modes on the same galaxies.

A mode whose weights are missing is skipped with the reason, unless ``allow_untrained``: then
networks of the shipped architecture (:class:`~sedinfer.images.unet.UNetConfig` defaults, as
``train_dust_priors.py`` trains) with untrained weights stand in, for smoke runs only (their
score is exactly 0, so such a fit is the likelihood alone at the priors' cost); every record and
the mode's description say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sedinfer.images.errors import ImageError
from sedinfer.images.fit import FitConfig, fit_map
from sedinfer.images.prior_choice import PRIOR_MODES, PriorSpec, resolve_priors
from sedinfer.images.validation import ATTENUATION_EDGES_MAG, COVERING_SPLIT, ResultStore, galaxy_metrics

TRAINING_SEED = 0
"""Seed of the priors' training pairs (``scripts/train_dust_priors.py --seed 0``)."""
DUST_KIND = {"conditional": "dust_given_host", "unconditional": "dust"}


@dataclass(frozen=True)
class ValidationConfig:
    """What to simulate and how to fit: galaxies ``start … start + n − 1`` of ``seed`` with
    ``n_views`` views in ``variants``; ``fit`` the optimiser settings, ``batch`` views per
    ``fit_map`` call, ``sim_chunk`` galaxies simulated (and then fitted) together."""

    n: int = 60
    seed: int = 1
    start: int = 0
    n_views: int = 3
    variants: tuple[str, ...] = ("fiducial", "monochromatic")
    image_size: int = 64
    fit: FitConfig = field(default_factory=FitConfig)
    batch: int = 8
    sim_chunk: int = 8
    device: str = "cpu"
    covering_split: float = COVERING_SPLIT
    attenuation_edges: tuple[float, ...] = ATTENUATION_EDGES_MAG

    def __post_init__(self) -> None:
        if self.n < 1 or self.start < 0 or self.batch < 1 or self.sim_chunk < 1:
            raise ImageError(f"need n >= 1, start >= 0, batch >= 1, sim_chunk >= 1: {self}")
        if self.seed == TRAINING_SEED:
            raise ImageError(f"seed {TRAINING_SEED} is the training seed of the priors "
                             "(scripts/train_dust_priors.py); validate on held-out galaxies of another "
                             "seed (the test seed is 1)")

    def names(self, index: int) -> list[tuple[str, int, str]]:
        """(name, view, variant) of galaxy ``index``, as :attr:`SimulatedView.name`."""
        return [(f"gal_s{self.seed}_{index:06d}_v{v}{'' if var == 'fiducial' else '_mono'}", v, var)
                for v in range(self.n_views) for var in self.variants]


@dataclass
class PriorMode:
    """One prior mode of the run: its :class:`PriorSpec` when it runs, else why it is skipped."""

    name: str
    spec: PriorSpec | None = None
    skipped: str | None = None
    untrained: bool = False

    def describe(self) -> dict:
        out = {"mode": self.name, "status": "skipped" if self.skipped else "fitted",
               "untrained_weights": self.untrained}
        if self.skipped:
            out["reason"] = self.skipped
        if self.spec is not None:
            out["priors"] = self.spec.describe()
        if self.untrained:
            out["note"] = ("untrained networks of the shipped architecture (--allow-untrained, a smoke "
                           "run): their score is 0, so these fits are the likelihood alone at the priors' "
                           "cost; the numbers say nothing about the method")
        return out


def untrained_spec(mode: str) -> PriorSpec:
    """s(S) and the dust prior of ``mode`` with untrained weights of the shipped architecture."""
    from sedinfer.images.prior import build_prior

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        host, dust = build_prior("host"), build_prior(DUST_KIND[mode])
    return PriorSpec.from_objects(host.eval(), dust.eval(), label=f"{mode} (untrained weights)")


def prepare_modes(names: Sequence[str], prior_dir=None, allow_untrained: bool = False) -> list[PriorMode]:
    """A :class:`PriorMode` per requested mode; missing weights skip a mode (or, with
    ``allow_untrained``, put untrained networks in its place)."""
    out = []
    for name in names:
        if name not in PRIOR_MODES:
            raise ImageError(f"prior modes must be among {PRIOR_MODES}, got {name!r}")
        if name == "none":
            out.append(PriorMode(name, PriorSpec("none")))
            continue
        try:
            out.append(PriorMode(name, resolve_priors(name, prior_dir)))
        except ImageError as exc:
            if allow_untrained:
                out.append(PriorMode(name, untrained_spec(name), untrained=True))
            else:
                out.append(PriorMode(name, skipped=f"{exc} [skipped; --allow-untrained fits it with "
                                                   "untrained weights for a smoke run]"))
    return out


def _store_keys(config: ValidationConfig, instrument, sed_label: str) -> tuple[dict, dict]:
    sim = {"seed": config.seed, "n_views": config.n_views, "variants": list(config.variants),
           "image_size": config.image_size, "bands": list(instrument.bands),
           "pixel_scale": instrument.pixel_scale_arcsec, "sed": sed_label}
    fit = {"simulation": sim, "fit_config": {k: (list(v) if isinstance(v, tuple) else v)
                                             for k, v in asdict(config.fit).items()}}
    return sim, fit


def _truth_record(view) -> tuple[dict, dict]:
    record = {"name": view.name, "index": view.index, "view": view.view_index, "variant": view.variant,
              "redshift": float(view.galaxy.redshift), "delta": float(view.galaxy.delta),
              "covering_fraction": float(view.covering_fraction), "a0_mean_mag": float(view.a0_mean_mag),
              "a0_max_mag": float(view.a0_max_mag),
              "inclination_deg": float(np.degrees(view.view.inclination_rad))}
    arrays = {"host": view.host.astype(np.float32), "dust": view.transmission.astype(np.float32),
              "image": view.image.astype(np.float32), "variance": view.variance.astype(np.float32),
              "sed_njy": np.asarray(view.sed_njy, dtype=np.float64),
              "ratio": np.asarray(view.extra["ratio"], dtype=np.float64)}
    return record, arrays


def fit_views(items: list[tuple[dict, dict]], mode: PriorMode, instrument, config: ValidationConfig
              ) -> list[tuple[dict, dict]]:
    """Fit views ``items`` ((truth record, truth arrays), …) together; (record, arrays) per view."""
    from sedinfer.images.scene import ImageModel

    device = torch.device(config.device)
    host_prior, dust_prior = (p.to(device) if p is not None and hasattr(p, "to") else p
                              for p in mode.spec.load())
    model = ImageModel(instrument, [t["redshift"] for t, _ in items]).to(device)
    data = np.stack([a["image"] for _, a in items]).astype(np.float64)
    inv_var = 1.0 / np.stack([a["variance"] for _, a in items]).astype(np.float64)
    t0 = time.perf_counter()
    res = fit_map(model, data, inv_var, host_prior, dust_prior, config=config.fit)
    seconds = (time.perf_counter() - t0) / len(items)
    with torch.no_grad():
        delta = torch.as_tensor(res.delta, dtype=torch.float32, device=device)
        ratio = model.ratio(delta).cpu().double().numpy()
    out = []
    for i, (t, a) in enumerate(items):
        fit = {"host": res.host[i], "transmission": res.transmission[i], "sed_njy": res.sed_njy[i],
               "ratio": ratio[i], "delta": res.delta[i], "covering_fraction": res.covering_fraction[i]}
        truth = {**a, "delta": t["delta"], "covering_fraction": t["covering_fraction"]}
        record = {"name": t["name"], "index": t["index"], "view": t["view"], "variant": t["variant"],
                  "mode": mode.name, "untrained_weights": mode.untrained, "redshift": t["redshift"],
                  **galaxy_metrics(truth, fit, config.covering_split, config.attenuation_edges),
                  "n_iter": int(res.n_iter[i]), "converged": bool(res.converged[i]),
                  "chi2": float(res.chi2[i]), "n_pixels": int(res.n_pixels[i]),
                  "seconds": round(seconds, 4), "batch": len(items)}
        arrays = {"host": res.host[i].astype(np.float32),
                  "transmission": res.transmission[i].astype(np.float32),
                  "sed_njy": res.sed_njy[i], "a_band_mag": res.a_band_mag[i]}
        out.append((record, arrays))
    return out


def run_validation(config: ValidationConfig, modes: Sequence[PriorMode], work, instrument=None,
                   sed_fn: Callable | None = None, sed_label: str = "sps", max_seconds: float | None = None,
                   log: Callable[[str], None] | None = print) -> dict:
    """Simulate, fit and store (resuming what ``work`` holds); see the module docstring.

    Returns ``records`` (every stored fit of the requested views and fitted modes), ``complete``,
    ``counts`` (views, fits done in this call, resumed), the stores (``truth_store``,
    ``fit_stores`` by mode) and the ``instrument``.
    """
    from sedinfer.images.instrument import hsc_instrument
    from sedinfer.images.simulate import SimulationConfig, simulate_galaxies

    instrument = instrument or hsc_instrument(image_shape=(config.image_size, config.image_size))
    sim_key, fit_key = _store_keys(config, instrument, sed_label)
    truth_store = ResultStore(work, "truth", sim_key)
    active = [m for m in modes if not m.skipped]
    stores = {m.name: ResultStore(work, f"fit-{m.name}",
                                  {**fit_key, "mode": m.name, "priors": m.spec.describe()}) for m in active}
    sim_config = SimulationConfig(n_views=config.n_views, image_size=config.image_size,
                                  variants=tuple(config.variants))
    t_start = time.perf_counter()
    indices = list(range(config.start, config.start + config.n))
    done_now = resumed = 0
    complete = True
    for c0 in range(0, len(indices), config.sim_chunk):
        chunk = indices[c0:c0 + config.sim_chunk]
        pending = {m.name: [n for i in chunk for n, _, _ in config.names(i) if stores[m.name].get(n) is None]
                   for m in active}
        missing_truth = [i for i in chunk if any(truth_store.get(n) is None for n, _, _ in config.names(i))]
        if not any(pending.values()):
            resumed += sum(len(config.names(i)) for i in chunk) * len(active)
            continue
        if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
            complete = False
            break
        if missing_truth:
            views = simulate_galaxies(missing_truth, config.seed, instrument, sed_fn, sim_config)
            for v in views:
                truth_store.put(v.name, *_truth_record(v))
        for m in active:
            names = pending[m.name]
            resumed += len(chunk) * len(config.names(chunk[0])) - len(names)
            for b0 in range(0, len(names), config.batch):
                if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                    complete = False
                    break
                batch = [(truth_store.get(n), truth_store.arrays(n)) for n in names[b0:b0 + config.batch]]
                for record, arrays in fit_views(batch, m, instrument, config):
                    stores[m.name].put(record["name"], record, arrays)
                done_now += len(batch)
                if log:
                    log(f"{m.name}: fitted {len(batch)} views up to {batch[-1][0]['name']} "
                        f"({time.perf_counter() - t_start:.0f} s)")
            if not complete:
                break
        if not complete:
            break
    all_names = [n for i in indices for n, _, _ in config.names(i)]
    records = [r for m in active for n in all_names if (r := stores[m.name].get(n)) is not None]
    expected = len(all_names) * len(active)
    return {"records": records, "complete": complete and len(records) == expected,
            "counts": {"views": len(all_names), "fits_expected": expected, "fits_stored": len(records),
                       "fits_this_run": done_now, "fits_resumed": resumed},
            "truth_store": truth_store, "fit_stores": stores, "instrument": instrument}


def figure_views(run: dict, n: int = 4) -> list[dict]:
    """Views for :func:`~sedinfer.images.validation_figures.maps_figure` from a
    :func:`run_validation` result: ``n`` views fitted in every mode, spread in true A(λ₀)."""
    from sedinfer.images.validation_figures import pick_views

    truth, stores = run["truth_store"], run["fit_stores"]
    names = sorted({r["name"] for r in run["records"]
                    if all(s.get(r["name"]) is not None for s in stores.values())})
    picked = pick_views([truth.get(name) for name in names], n)
    return [{"truth": truth.get(name), "truth_arrays": truth.arrays(name),
             "fits": {m: (s.get(name), s.arrays(name)) for m, s in stores.items()}} for name in picked]


__all__ = ["TRAINING_SEED", "ValidationConfig", "PriorMode", "untrained_spec", "prepare_modes",
           "fit_views", "run_validation", "figure_views"]
