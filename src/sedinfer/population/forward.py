"""The population forward model: θ ~ q → fluxes → noise (anti-annealed) → asinh magnitudes.

For a batch θ (N, D):

1. a :class:`Simulator` gives noiseless fluxes f (N, B) in maggies: an
   :class:`~sedinfer.SPSModel` through ``model.photometry(θ, filters, units="maggies")``, or any
   callable θ → noiseless AB magnitudes, converted with f = 10^(-0.4 m);
2. a noise model (:mod:`sedinfer.noise`) adds noise with σ divided by the anti-annealing factor
   R(t) = 1 + R0 exp(-τ t / T) (PopSED, Li et al. 2024, §2.5); negative noisy fluxes are redrawn
   as in PopSED §2.2 (those still negative after 100 rounds are kept and counted);
3. fluxes become asinh magnitudes (Lupton et al. 1999) with a per-band softening b (maggies):
   equal to AB magnitudes for f ≫ b and finite for f ≤ 0, so noisy faint fluxes never give NaN;
4. an optional selection function turns the magnitudes into per-galaxy weights in [0, 1]
   (:class:`SoftMagnitudeLimit`, or any callable mags (N, B) → (N,)), normalised to sum to 1 and
   used as the simulated weights α of the loss: a flux-limited catalog is modelled without
   discarding draws, and the weights stay differentiable.

Every step is a torch operation, so the magnitudes and weights are differentiable in θ.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sedinfer.errors import ParameterError, SedinferError
from sedinfer.units import asinh_mag

#: Floor on selection weights before normalisation: keeps the loss defined when a batch has
#: (numerically) no draw inside the selection.
MIN_SELECTION_WEIGHT = 1e-12


@dataclass(frozen=True, eq=False)
class Simulator:
    """θ (N, D) → noiseless fluxes (N, B) in maggies, with its box ``low``/``high`` (D,)."""

    fn: Callable[[Tensor], Tensor]
    low: Tensor
    high: Tensor
    param_names: tuple[str, ...]
    bands: tuple[str, ...]
    kind: str

    def __call__(self, theta: Tensor) -> Tensor:
        flux = self.fn(theta)
        if not isinstance(flux, Tensor) or flux.shape != (theta.shape[0], len(self.bands)):
            shape = tuple(flux.shape) if isinstance(flux, Tensor) else type(flux).__name__
            raise ParameterError(f"the {self.kind} simulator returned {shape}; expected a tensor of shape "
                                 f"({theta.shape[0]}, {len(self.bands)}), one column per band "
                                 f"{list(self.bands)}")
        bad = ~torch.isfinite(flux.detach()).all(0)
        if bool(bad.any()):
            cols = [self.bands[j] for j in torch.nonzero(bad)[:, 0].tolist()]
            raise SedinferError(f"the {self.kind} simulator returned NaN or infinite fluxes in bands {cols}")
        return flux


def _box(bounds: Any, d: int | None, what: str) -> tuple[Tensor, Tensor]:
    low, high = (torch.as_tensor(b, dtype=torch.float32).reshape(-1) for b in bounds)
    if low.shape != high.shape or (d is not None and low.numel() != d):
        raise ParameterError(f"{what} must be two sequences of {d or 'D'} numbers, got {low.numel()} and "
                             f"{high.numel()}")
    return low, high


def make_simulator(model: Any, filters: Any = None, bounds: Any = None,
                   param_names: Sequence[str] | None = None, n_bands: int | None = None) -> Simulator:
    """A :class:`Simulator` from an SPS model or a callable.

    ``model``: an :class:`~sedinfer.SPSModel` (anything with ``photometry`` and ``prior``):
    ``filters`` (a :class:`~sedinfer.Filters` or filter names) is required and the box is
    ``model.prior.bounds()`` unless ``bounds`` is given. Or a callable θ (N, D) → noiseless AB
    magnitudes (N, B): its box is ``bounds = (low, high)`` or its ``prior.bounds()``; ``filters``
    may be any band names (default ``band0 ... band{B-1}`` with ``n_bands``).
    """
    if hasattr(model, "photometry") and hasattr(model, "prior"):
        from sedinfer.filters import Filters

        if filters is None:
            raise ParameterError("an SPS model needs filters=Filters([...]) matching the catalog columns")
        filt = filters if isinstance(filters, Filters) else Filters(filters)
        names = tuple(model.param_names)
        low, high = _box(bounds if bounds is not None else model.prior.bounds(), len(names), "bounds")

        def fn(theta: Tensor) -> Tensor:
            return model.photometry(theta, filt, units="maggies")

        return Simulator(fn, low, high, names, tuple(filt.names), "SPS")
    if not callable(model):
        raise ParameterError("model must be an SPSModel or a callable θ -> magnitudes, got "
                             f"{type(model).__name__}")
    if bounds is None:
        if not hasattr(model, "prior"):
            raise ParameterError("a callable simulator needs its box: pass bounds=(low, high) or give the "
                                 "callable a .prior with .bounds()")
        bounds = model.prior.bounds()
    low, high = _box(bounds, None, "bounds")
    names = tuple(param_names) if param_names else tuple(getattr(model, "param_names", ())) or \
        tuple(f"theta{i}" for i in range(low.numel()))
    if len(names) != low.numel():
        raise ParameterError(f"{len(names)} parameter names for a {low.numel()}-dimensional box")
    if filters is not None:
        bands = tuple(filters.names) if hasattr(filters, "names") else tuple(str(b) for b in filters)
    elif n_bands is not None:
        bands = tuple(f"band{i}" for i in range(n_bands))
    else:
        raise ParameterError("a callable simulator needs filters (band names) or n_bands")

    def fn_mag(theta: Tensor) -> Tensor:
        mags = model(theta)
        return 10.0 ** (-0.4 * mags) if isinstance(mags, Tensor) else mags

    return Simulator(fn_mag, low, high, names, bands, "callable")


@dataclass(frozen=True)
class SoftMagnitudeLimit:
    """Selection weight sigmoid((limit - m) / width) on one band (name or column index).

    A soft version of a magnitude limit m < ``limit`` (e.g. GAMA's r < 19.8); ``width`` (mag) > 0
    sets how sharp it is and keeps gradients finite. m is the simulated (noisy) asinh magnitude,
    equal to the AB magnitude for objects well above the noise.
    """

    band: str | int
    limit: float
    width: float = 0.05

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ParameterError(f"width of the soft magnitude limit must be > 0 mag, got {self.width}")

    def column(self, bands: Sequence[str]) -> int:
        if isinstance(self.band, int):
            if not 0 <= self.band < len(bands):
                raise ParameterError(f"selection band index {self.band} is outside the {len(bands)} bands "
                                     f"{list(bands)}")
            return self.band
        if self.band not in bands:
            raise ParameterError(f"selection band {self.band!r} is not one of the bands {list(bands)}")
        return list(bands).index(self.band)

    def __call__(self, mags: Tensor, bands: Sequence[str]) -> Tensor:
        return torch.sigmoid((self.limit - mags[:, self.column(bands)]) / self.width)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "soft_magnitude_limit", "band": self.band, "limit": self.limit, "width": self.width}


def selection_probability(selection: Any, mags: Tensor, bands: Sequence[str]) -> Tensor:
    """Probability (N,) in [0, 1] that ``selection`` keeps each row of magnitudes (N, B).

    ``selection``: a :class:`SoftMagnitudeLimit` or a callable mags (N, B) → (N,); its output is
    checked (shape, finite, inside [0, 1]).
    """
    if isinstance(selection, SoftMagnitudeLimit):
        w = selection(mags, bands)
    else:
        w = torch.as_tensor(selection(mags), dtype=mags.dtype, device=mags.device)
    if w.shape != (mags.shape[0],):
        raise ParameterError(f"the selection function returned shape {tuple(w.shape)}; expected "
                             f"({mags.shape[0]},), one weight per galaxy")
    wd = w.detach()
    if not bool(torch.isfinite(wd).all()) or bool((wd < 0).any()) or bool((wd > 1).any()):
        raise ParameterError("the selection function must return finite weights in [0, 1], got values "
                             f"in [{wd.min().item():.4g}, {wd.max().item():.4g}]")
    return w


def describe_selection(selection: Any) -> dict[str, Any] | None:
    """JSON-able description of a selection (for saved populations)."""
    if selection is None:
        return None
    if isinstance(selection, SoftMagnitudeLimit):
        return selection.to_dict()
    return {"kind": "callable", "repr": repr(selection)}


@dataclass(eq=False)
class ForwardModel:
    """θ → (asinh magnitudes (N, B), normalised selection weights (N,) or None).

    ``noise``: a :class:`~sedinfer.noise.NoiseModel` over ``simulator.bands`` or None (no noise);
    ``softening``: asinh softening b (B,) in maggies; ``selection``: None, a
    :class:`SoftMagnitudeLimit` or a callable mags (N, B) → weights (N,) in [0, 1].
    """

    simulator: Simulator
    noise: Any
    softening: Tensor
    selection: Any = None

    def __post_init__(self) -> None:
        bands = self.simulator.bands
        if self.noise is not None and tuple(self.noise.bands) != bands:
            raise ParameterError(f"the noise model covers bands {list(self.noise.bands)} but the simulator "
                                 f"gives {list(bands)}")
        if self.softening.shape != (len(bands),) or not bool((self.softening > 0).all()):
            raise ParameterError(f"softening must hold one positive value (maggies) per band {list(bands)}, "
                                 f"got {self.softening.tolist()}")
        if isinstance(self.selection, SoftMagnitudeLimit):
            self.selection.column(bands)        # fail early on an unknown band

    def magnitudes(self, flux: Tensor) -> Tensor:
        """Asinh magnitudes (N, B) of fluxes (N, B) in maggies, in the dtype of ``softening``."""
        return asinh_mag(flux, self.softening.to(flux)).to(self.softening.dtype)

    def weights(self, mags: Tensor) -> Tensor | None:
        """Normalised selection weights (N,) of simulated magnitudes, or None without selection."""
        if self.selection is None:
            return None
        w = selection_probability(self.selection, mags, self.simulator.bands).clamp_min(MIN_SELECTION_WEIGHT)
        return w / w.sum()

    def __call__(self, theta: Tensor, scale: float = 1.0, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor | None, int]:
        """Magnitudes (N, B), weights (N,) or None, and the number of noisy fluxes left negative.

        ``scale`` is the anti-annealing factor R ≥ 1 (σ / R); ``generator`` draws the noise.
        """
        flux = self.simulator(theta)
        kept = 0
        if self.noise is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*still negative after.*", category=RuntimeWarning)
                flux, _, stats = self.noise.add_noise(flux, generator, scale=scale, return_stats=True)
            kept = stats.total_kept_negative
        mags = self.magnitudes(flux)
        return mags, self.weights(mags), kept


__all__ = ["ForwardModel", "MIN_SELECTION_WEIGHT", "Simulator", "SoftMagnitudeLimit", "describe_selection",
           "make_simulator", "selection_probability"]
