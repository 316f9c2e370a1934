"""Recovery metrics of the dust-map fit on simulated galaxies (issue 18 §5; Siegel & Melchior,
Figs. 2-3), their binning, and a per-galaxy result store that makes a validation run resumable.

Definitions, for one view with true host S, transmission D (H, W) at λ₀ = 0.4754 µm, true host
flux F (B,) in nJy, and the fit's Ŝ, D̂, F̂ (a :class:`~sedinfer.images.fit.FitResult` row):

* **attenuation strength** A(λ₀) = −2.5 log₁₀(Σ S D / Σ S), mag: the light-weighted attenuation
  at λ₀, i.e. the dimming of the galaxy's total flux there (the simulations' ``A0MEAN`` and the
  fit's ``a0_mean_mag``); true from (S, D), recovered from (Ŝ, D̂). Per band,
  A_b = −2.5 log₁₀(Σ S D^K_b / Σ S) with K_b = k(λ_b, δ)/k(λ₀, δ) (:func:`band_attenuation`).
* **Pearson r of the dust maps**: the correlation coefficient of D̂ and D over all pixels of the
  stamp (:func:`pearson_r`; undefined, NaN, when either map is constant), and the same weighted by
  the true host light S (``pearson_dust_weighted``: the pixels where the data say something).
* **host SED error per band**: F̂_b / F_b − 1 (dimensionless; F is the dust-free host flux).

Bins: covering fraction (the simulations' definition, :func:`~sedinfer.images.simulate.covering_fraction`)
below or at/above :data:`COVERING_SPLIT` = 0.9, the paper's failure mode; true A(λ₀) in the
intervals of :data:`ATTENUATION_EDGES_MAG`. :func:`summarise` gives per-bin statistics.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from sedinfer.atomic import write_atomic, write_text
from sedinfer.digest import json_digest

COVERING_SPLIT = 0.9
"""Covering fraction at which the paper's fits deteriorate (host SED/dust degeneracy)."""
ATTENUATION_EDGES_MAG = (0.1, 0.3, 1.0)
"""Edges of the true light-weighted A(λ₀) bins, mag: < 0.1, 0.1-0.3, 0.3-1, ≥ 1."""
D_FLOOR = 1e-12


def light_weighted_attenuation(host: np.ndarray, transmission: np.ndarray) -> float:
    """A(λ₀) = −2.5 log₁₀(Σ S D / Σ S) in mag for one host S and transmission D (H, W)."""
    s = np.asarray(host, dtype=np.float64)
    d = np.clip(np.asarray(transmission, dtype=np.float64), D_FLOOR, 1.0)
    return float(-2.5 * np.log10((s * d).sum() / s.sum()))


def band_attenuation(host: np.ndarray, transmission: np.ndarray, ratio: Sequence[float]) -> np.ndarray:
    """A_b = −2.5 log₁₀(Σ S D^K_b / Σ S) in mag (B,) for curve ratios K (B,)."""
    s = np.asarray(host, dtype=np.float64)
    log_d = np.log(np.clip(np.asarray(transmission, dtype=np.float64), D_FLOOR, 1.0))
    k = np.asarray(ratio, dtype=np.float64)
    att = (s[None] * np.exp(k[:, None, None] * log_d[None])).reshape(len(k), -1).sum(1) / s.sum()
    return -2.5 * np.log10(att)


def pearson_r(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> float:
    """(Weighted) Pearson correlation of two maps over all their pixels; NaN when either is constant."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {np.shape(a)} and {np.shape(b)}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != x.shape or (w < 0).any() or not w.sum() > 0:
        raise ValueError("weights must be >= 0, not all 0, with the maps' shape")
    w = w / w.sum()
    dx, dy = x - (w * x).sum(), y - (w * y).sum()
    vx, vy = (w * dx * dx).sum(), (w * dy * dy).sum()
    scale = max(np.abs(x).max(), np.abs(y).max(), 1e-300) ** 2
    if vx <= 1e-24 * scale or vy <= 1e-24 * scale:
        return float("nan")
    return float(np.clip((w * dx * dy).sum() / math.sqrt(vx * vy), -1.0, 1.0))


def sed_relative_error(sed_fit: Sequence[float], sed_true: Sequence[float]) -> np.ndarray:
    """F̂_b / F_b − 1 (B,)."""
    return np.asarray(sed_fit, dtype=np.float64) / np.asarray(sed_true, dtype=np.float64) - 1.0


def covering_bin(covering: float, split: float = COVERING_SPLIT) -> str:
    """'cov<0.9' or 'cov>=0.9' (for ``split`` = 0.9)."""
    return f"cov<{split:g}" if covering < split else f"cov>={split:g}"


def attenuation_bin(a0_mag: float, edges: Sequence[float] = ATTENUATION_EDGES_MAG) -> str:
    """Label of the bin of ``edges`` (mag) holding A(λ₀): 'A<0.1', '0.1<=A<0.3', …, 'A>=1'."""
    edges = list(edges)
    if a0_mag < edges[0]:
        return f"A<{edges[0]:g}"
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo <= a0_mag < hi:
            return f"{lo:g}<=A<{hi:g}"
    return f"A>={edges[-1]:g}"


def attenuation_bin_labels(edges: Sequence[float] = ATTENUATION_EDGES_MAG) -> list[str]:
    """All labels of :func:`attenuation_bin`, in increasing A."""
    edges = list(edges)
    return ([f"A<{edges[0]:g}"] + [f"{lo:g}<=A<{hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
            + [f"A>={edges[-1]:g}"])


def galaxy_metrics(truth: dict, fit: dict, split: float = COVERING_SPLIT,
                   edges: Sequence[float] = ATTENUATION_EDGES_MAG) -> dict:
    """Recovery metrics of one view (module docstring), JSON-able.

    ``truth``: ``host``, ``dust`` (H, W), ``sed_njy`` (B,), ``ratio`` (B,) K at the true δ,
    ``delta``, ``covering_fraction``. ``fit``: ``host``, ``transmission`` (H, W), ``sed_njy``
    (B,), ``ratio`` (B,) K at the fitted δ, ``delta``, ``covering_fraction``.
    """
    a_true = light_weighted_attenuation(truth["host"], truth["dust"])
    a_fit = light_weighted_attenuation(fit["host"], fit["transmission"])
    ab_true = band_attenuation(truth["host"], truth["dust"], truth["ratio"])
    ab_fit = band_attenuation(fit["host"], fit["transmission"], fit["ratio"])
    cov = float(truth["covering_fraction"])
    out = {"a0_true_mag": a_true, "a0_fit_mag": a_fit, "a0_error_mag": a_fit - a_true,
           "a_band_true_mag": ab_true.tolist(), "a_band_fit_mag": ab_fit.tolist(),
           "pearson_dust": pearson_r(fit["transmission"], truth["dust"]),
           "pearson_dust_weighted": pearson_r(fit["transmission"], truth["dust"], truth["host"]),
           "pearson_host": pearson_r(fit["host"], truth["host"]),
           "sed_rel_error": sed_relative_error(fit["sed_njy"], truth["sed_njy"]).tolist(),
           "delta_true": float(truth["delta"]), "delta_fit": float(fit["delta"]),
           "covering_true": cov, "covering_fit": float(fit["covering_fraction"]),
           "covering_bin": covering_bin(cov, split), "attenuation_bin": attenuation_bin(a_true, edges)}
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def _quantiles(values: Iterable[float | None]) -> dict:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "median": None, "p16": None, "p84": None}
    p16, p50, p84 = np.percentile(v, [16, 50, 84])
    return {"n": int(v.size), "median": float(p50), "p16": float(p16), "p84": float(p84)}


def bin_statistics(records: Sequence[dict]) -> dict:
    """Statistics of a group of :func:`galaxy_metrics` records (plus ``converged``, when present)."""
    if not records:
        return {"n": 0}
    err = np.array([r["a0_error_mag"] for r in records], dtype=np.float64)
    a_true = np.array([r["a0_true_mag"] for r in records], dtype=np.float64)
    a_fit = np.array([r["a0_fit_mag"] for r in records], dtype=np.float64)
    sed = np.array([r["sed_rel_error"] for r in records], dtype=np.float64)       # (N, B)
    out = {"n": len(records),
           "a0_error_mag": {**_quantiles(err), "rms": float(np.sqrt(np.mean(err ** 2)))},
           "a0_true_fit_pearson": pearson_r(a_true, a_fit) if len(records) > 2 else None,
           "pearson_dust": _quantiles(r["pearson_dust"] for r in records),
           "pearson_dust_weighted": _quantiles(r["pearson_dust_weighted"] for r in records),
           "sed_rel_error_median": np.median(sed, 0).tolist(),
           "sed_abs_rel_error_median": np.median(np.abs(sed), 0).tolist(),
           "delta_abs_error_median": float(np.median([abs(r["delta_fit"] - r["delta_true"])
                                                      for r in records]))}
    if out["a0_true_fit_pearson"] is not None and not math.isfinite(out["a0_true_fit_pearson"]):
        out["a0_true_fit_pearson"] = None
    if all("converged" in r for r in records):
        out["converged_fraction"] = float(np.mean([bool(r["converged"]) for r in records]))
    return out


def summarise(records: Sequence[dict], by: Sequence[str] = ("mode", "variant"),
              bins: Sequence[str] = ("covering_bin", "attenuation_bin")) -> dict:
    """Per-group statistics: ``all`` grouped by the keys ``by``, and for each of ``bins`` grouped by
    ``by`` plus that bin. Keys of the result's lists: the group's values, then :func:`bin_statistics`."""
    def group(keys: Sequence[str]) -> list[dict]:
        groups: dict[tuple, list[dict]] = {}
        for r in records:
            groups.setdefault(tuple(r[k] for k in keys), []).append(r)
        return [{**dict(zip(keys, g, strict=True)), **bin_statistics(rs)} for g, rs in sorted(groups.items())]

    out = {"all": group(list(by))}
    for b in bins:
        out[f"by_{b.removesuffix('_bin')}"] = group([*by, b])
    return out


def key_hash(key: dict) -> str:
    """16 hex digits of the SHA-256 of ``key`` as sorted JSON."""
    return json_digest(key)


class ResultStore:
    """Per-galaxy results in a folder keyed by a settings dict: ``<root>/<label>-<hash>/``.

    :meth:`put` writes ``<name>.npz`` (arrays, optional) and then ``<name>.json`` (the record),
    both atomically, so a record present means the galaxy is complete; other settings get another
    folder and never mix. ``key.json`` in the folder records the settings.
    """

    def __init__(self, root: str | os.PathLike, label: str, key: dict):
        self.key = key
        self.dir = Path(root) / f"{label}-{key_hash(key)}"
        self.dir.mkdir(parents=True, exist_ok=True)
        key_file = self.dir / "key.json"
        if not key_file.exists():
            write_text(key_file, json.dumps(key, indent=1, sort_keys=True, default=str) + "\n")

    def get(self, name: str) -> dict | None:
        """The record of ``name``, or None when it is not (completely) stored."""
        path = self.dir / f"{name}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """The arrays stored with ``name`` (empty when none)."""
        path = self.dir / f"{name}.npz"
        if not path.is_file():
            return {}
        with np.load(path) as f:
            return {k: f[k] for k in f.files}

    def put(self, name: str, record: dict, arrays: dict[str, np.ndarray] | None = None) -> dict:
        """Store ``record`` (JSON-able) and ``arrays``; returns the record."""
        if arrays:
            def save(tmp: str) -> None:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, **arrays)

            write_atomic(self.dir / f"{name}.npz", save, suffix=".npz")
        write_text(self.dir / f"{name}.json", json.dumps(record, default=_json_default) + "\n")
        return record

    def names(self) -> list[str]:
        """Names with a stored record."""
        return sorted(p.stem for p in self.dir.glob("*.json") if p.name != "key.json")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-able: {type(x).__name__}")


__all__ = ["COVERING_SPLIT", "ATTENUATION_EDGES_MAG", "light_weighted_attenuation", "band_attenuation",
           "pearson_r", "sed_relative_error", "covering_bin", "attenuation_bin", "attenuation_bin_labels",
           "galaxy_metrics", "bin_statistics", "summarise", "key_hash", "ResultStore"]
