"""Common interface of the photometric noise models.

Every model describes, per band, a distribution p(σ | f) of the flux uncertainty σ given the
noiseless flux f (both in maggies; 1 maggie = 3631 Jy, AB). Drawing is reparameterised: a model
turns the flux into per-element parameters (``_moments``) and maps one standard-normal draw z
per element to σ (``_sigma_given``); the noisy flux is then f + σ·ε with ε ~ N(0, 1). Both steps
are plain tensor arithmetic, so the noisy flux is differentiable with respect to f.

With ``redraw_negative=True`` (the default of :meth:`NoiseModel.add_noise`, kept for PopSED's
population forward model, Li et al. 2024, §2.2) negative noisy fluxes are redrawn: z and ε are
drawn again for the negative entries only, up to ``max_redraws`` rounds. This biases the noise
(pulls (f − f_true)/σ no longer have mean 0 and std 1), so mocks and posterior training sets
(:mod:`sedinfer.simulate`, :mod:`sedinfer.posterior.sed`) pass ``redraw_negative=False`` and keep
the Gaussian noise as drawn.

:meth:`NoiseModel.sigma_floor` gives the lower quantile of p(σ | f), the error floor below which a
model trained on this noise has not seen errors.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError

#: Version of the JSON layout written by :meth:`NoiseModel.save`.
FORMAT_VERSION = 1

#: Default lower quantile of p(σ | f) taken as a model's error floor (:meth:`NoiseModel.sigma_floor`).
#: Chosen on development mocks of the retrained ``sdss-specz`` (r < 20, seed 99): galaxies given
#: errors at the 10 % quantile were flagged by the support test 1.6 % of the time (unchanged ones
#: 0.7 %), at the 5 % quantile 4.0 %, at the 0.1 % quantile 74 %: errors raised only to the very
#: edge of the training p(σ | f) would be flagged, not handled.
FLOOR_QUANTILE = 0.1


@dataclass(frozen=True)
class RedrawStats:
    """Outcome of the negative-flux redraw of one :meth:`NoiseModel.add_noise` call.

    ``n_redrawn`` counts, per band, the entries that were negative after the first draw;
    ``n_kept_negative`` those still negative after ``max_redraws`` rounds, which are kept as
    last drawn; ``rounds`` is the number of redraw rounds run.
    """

    n_redrawn: dict[str, int]
    n_kept_negative: dict[str, int]
    rounds: int

    @property
    def total_kept_negative(self) -> int:
        """Number of negative fluxes returned, all bands together."""
        return sum(self.n_kept_negative.values())


class NoiseModel(ABC):
    """Per-band model of p(σ | f); subclasses define ``_moments`` and ``_sigma_given``.

    Fluxes are tensors (or arrays, converted) of shape (..., B) in maggies, B = ``len(bands)``;
    outputs are tensors of the same shape, dtype and device.
    """

    kind: ClassVar[str]

    def __init__(self, bands: list[str] | tuple[str, ...]) -> None:
        bands = tuple(bands)
        if not bands or not all(isinstance(b, str) and b for b in bands):
            raise ParameterError(f"bands must be a non-empty sequence of filter names, got {bands!r}")
        if len(set(bands)) != len(bands):
            raise ParameterError(f"bands must be unique, got {list(bands)}")
        self.bands: tuple[str, ...] = bands

    # ----------------------------------------------------------------- model-specific parts
    @abstractmethod
    def _moments(self, flux: Tensor) -> tuple[Tensor, ...]:
        """Per-element parameters of p(σ | f), each of shape (M, B), from flux (M, B) ≥ 0."""

    @abstractmethod
    def _sigma_given(self, flux: Tensor, moments: tuple[Tensor, ...], z: Tensor) -> Tensor:
        """σ in maggies (before ``scale``) from a standard-normal draw z; elementwise."""

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """JSON-ready constructor arguments other than ``bands`` (numbers as lists)."""

    # ------------------------------------------------------------------------ sampling
    def sample_sigma(self, flux: Tensor | np.ndarray, generator: torch.Generator | None = None,
                     scale: float = 1.0) -> Tensor:
        """Draw σ ~ p(σ | f) and divide it by ``scale``.

        ``flux`` (..., B) in maggies, finite and ≥ 0. ``scale`` is the anti-annealing factor
        R ≥ 1 of :func:`anti_annealing_factor` (R > 1 reduces the noise). Returns σ (..., B) in
        maggies, differentiable with respect to ``flux``.
        """
        f, shape = self._as_flux(flux)
        scale = _check_scale(scale)
        z = _randn(f, generator)
        return (self._sigma_given(f, self._moments(f), z) / scale).reshape(shape)

    def sigma_floor(self, flux: Tensor | np.ndarray, quantile: float = FLOOR_QUANTILE,
                    scale: float = 1.0) -> Tensor:
        """Lower ``quantile`` of p(σ | f) / ``scale``: the smallest errors the model makes at ``flux``.

        ``flux`` (..., B) in maggies, finite and ≥ 0; returns σ (..., B) in maggies. Every model's σ
        is monotonic in its standard-normal draw z, so the quantile is σ at z = ±Φ⁻¹(1 − quantile),
        whichever is smaller.
        """
        _check_quantile(quantile)
        f, shape = self._as_flux(flux)
        scale = _check_scale(scale)
        zq = NormalDist().inv_cdf(1.0 - quantile)
        moments = self._moments(f)
        lo = torch.minimum(self._sigma_given(f, moments, torch.full_like(f, zq)),
                           self._sigma_given(f, moments, torch.full_like(f, -zq)))
        return (lo / scale).reshape(shape)

    def add_noise(self, flux: Tensor | np.ndarray, generator: torch.Generator | None = None,
                  scale: float = 1.0, redraw_negative: bool = True, max_redraws: int = 100,
                  return_stats: bool = False
                  ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, RedrawStats]:
        """Noisy fluxes f + σ·ε, ε ~ N(0, 1), with σ ~ p(σ | f) / ``scale``.

        With ``redraw_negative`` the entries whose noisy flux is negative get a fresh σ and ε,
        round after round on the remaining negatives only, for at most ``max_redraws`` rounds;
        entries still negative then are kept as last drawn, counted in the returned
        :class:`RedrawStats` (``return_stats=True``) and reported by a ``RuntimeWarning``.
        Returns ``(noisy_flux, sigma)`` (each (..., B), maggies), plus the stats if asked; both
        tensors are differentiable with respect to ``flux``.
        """
        f, shape = self._as_flux(flux)
        scale = _check_scale(scale)
        if isinstance(max_redraws, bool) or not isinstance(max_redraws, int) or max_redraws < 0:
            raise ParameterError(f"max_redraws must be an integer >= 0, got {max_redraws!r}")
        moments = self._moments(f)
        z, eps = _randn(f, generator), _randn(f, generator)
        stats = None
        if redraw_negative or return_stats:
            stats = self._redraw(f.detach(), tuple(m.detach() for m in moments), z, eps, scale,
                                 generator, max_redraws if redraw_negative else 0)
        sigma = self._sigma_given(f, moments, z) / scale
        noisy = (f + sigma * eps).reshape(shape)
        sigma = sigma.reshape(shape)
        return (noisy, sigma, stats) if return_stats else (noisy, sigma)

    @torch.no_grad()
    def _redraw(self, f: Tensor, moments: tuple[Tensor, ...], z: Tensor, eps: Tensor, scale: float,
                generator: torch.Generator | None, max_redraws: int) -> RedrawStats:
        """Redraw z and ε in place where f + σ·ε < 0; returns the counts per band."""
        sigma = self._sigma_given(f, moments, z) / scale
        rows, cols = ((f + sigma * eps) < 0).nonzero(as_tuple=True)
        n_redrawn = torch.bincount(cols, minlength=len(self.bands))
        rounds = 0
        while rows.numel() and rounds < max_redraws:
            rounds += 1
            z_new, eps_new = _randn(rows, generator, f.dtype), _randn(rows, generator, f.dtype)
            z[rows, cols], eps[rows, cols] = z_new, eps_new
            f_sub = f[rows, cols]
            sigma_sub = self._sigma_given(f_sub, tuple(m[rows, cols] for m in moments), z_new) / scale
            still = (f_sub + sigma_sub * eps_new) < 0
            rows, cols = rows[still], cols[still]
        kept = torch.bincount(cols, minlength=len(self.bands))
        stats = RedrawStats(dict(zip(self.bands, n_redrawn.tolist(), strict=True)),
                            dict(zip(self.bands, kept.tolist(), strict=True)), rounds)
        if max_redraws and stats.total_kept_negative:
            bad = {b: n for b, n in stats.n_kept_negative.items() if n}
            warnings.warn(f"{stats.total_kept_negative} noisy fluxes are still negative after "
                          f"{max_redraws} redraws and were kept as drawn (per band: {bad})",
                          RuntimeWarning, stacklevel=3)
        return stats

    def _as_flux(self, flux: Tensor | np.ndarray) -> tuple[Tensor, torch.Size]:
        """Flux as a (M, B) tensor plus the original shape; checks bands, finiteness, sign."""
        f = flux if isinstance(flux, Tensor) else torch.as_tensor(np.asarray(flux, dtype=np.float64))
        if not f.is_floating_point():
            f = f.to(torch.get_default_dtype())
        if f.ndim == 0 or f.shape[-1] != len(self.bands):
            raise ParameterError(f"flux has shape {tuple(f.shape)}; expected (..., {len(self.bands)}) "
                                 f"with one column per band {list(self.bands)}")
        bad = (~torch.isfinite(f.detach())) | (f.detach() < 0)
        if bad.any():
            per_band = bad.reshape(-1, len(self.bands)).sum(0)
            b = int(per_band.nonzero()[0, 0])
            raise ParameterError(f"flux in band {self.bands[b]!r} holds {int(per_band[b])} NaN, "
                                 "infinite or negative values; expected finite fluxes >= 0 in maggies")
        return f.reshape(-1, len(self.bands)), f.shape

    # --------------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``kind``, ``version``, ``bands`` and the model's numbers."""
        return {"kind": self.kind, "version": FORMAT_VERSION, "bands": list(self.bands), **self._params()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseModel:
        """Rebuild a model of this class from :meth:`to_dict` output."""
        _check_header(data, cls.kind)
        params = {k: v for k, v in data.items() if k not in ("kind", "version")}
        try:
            return cls(**params)
        except TypeError as err:
            raise ParameterError(f"noise-model data of kind {cls.kind!r} has keys {sorted(params)} that "
                                 f"do not match {cls.__name__}: {err}") from err

    def save(self, path: str | Path) -> None:
        """Write the model to a small JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> NoiseModel:
        """Read a model of this class written by :meth:`save`."""
        return cls.from_dict(read_json(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoiseModel) or type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bands={list(self.bands)}{self._repr_extra()})"

    def _repr_extra(self) -> str:
        return ""


def anti_annealing_factor(step: int, total_steps: int, r0: float = 30.0, tau: float = 12.0) -> float:
    """Noise-reduction factor R(t) = 1 + r0 exp(-tau t / T) of PopSED (Li et al. 2024, §2.5).

    Pass it as ``scale`` to :meth:`NoiseModel.add_noise`: σ is divided by R, from 1 + r0 at
    step 0 down towards 1 (full noise) late in training. PopSED uses r0 = 30, tau = 12.
    """
    if total_steps <= 0 or step < 0:
        raise ParameterError(f"need step >= 0 and total_steps > 0, got step={step}, "
                             f"total_steps={total_steps}")
    if r0 < 0 or not np.isfinite(r0) or not np.isfinite(tau):
        raise ParameterError(f"r0 must be finite and >= 0 and tau finite, got r0={r0}, tau={tau}")
    return 1.0 + r0 * float(np.exp(-tau * step / total_steps))


def read_json(path: str | Path) -> dict[str, Any]:
    """Parse a noise-model JSON file; errors name the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ParameterError(f"cannot read noise-model file {str(path)!r}: {err}") from err
    if not isinstance(data, dict) or "kind" not in data:
        raise ParameterError(f"noise-model file {str(path)!r} has no 'kind' key")
    return data


def _check_header(data: dict[str, Any], kind: str) -> None:
    if data.get("kind") != kind:
        raise ParameterError(f"noise-model data has kind {data.get('kind')!r}; expected {kind!r}")
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ParameterError(f"noise-model data has version {version!r}; this sedinfer reads "
                             f"versions <= {FORMAT_VERSION}")


def _check_quantile(quantile: float) -> None:
    """A lower quantile of p(σ | f): in (0, 0.5)."""
    if not 0 < quantile < 0.5:
        raise ParameterError(f"quantile must be in (0, 0.5), got {quantile}")


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ParameterError(f"scale must be finite and > 0 (the anti-annealing factor R >= 1), got {scale}")
    return scale


def _randn(like: Tensor, generator: torch.Generator | None, dtype: torch.dtype | None = None) -> Tensor:
    """Standard normals shaped like ``like`` on its device (dtype ``like``'s unless given)."""
    dtype = dtype or like.dtype
    return torch.randn(like.shape, generator=generator, dtype=dtype, device=like.device)
