"""Priors over the SPS model parameters.

1-D distributions (:class:`Uniform`, :class:`LogUniform`, :class:`TruncatedNormal`) with
exact log densities, CDFs and inverse CDFs; :class:`Prior`, an ordered box of independent
parameters that samples, scores and validates ``theta`` tensors of shape (..., D); the
stick-breaking map between iid U(0, 1) ``kappa`` variables and a flat Dirichlet on the
simplex (Betancourt 2012); and the default ranges of every parameter of the SPS model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from functools import reduce
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sedinfer.errors import ParameterError

Shape = int | Sequence[int]


def _uniform_draws(shape: Shape, generator: torch.Generator | None, device: Any) -> Tensor:
    """U[0, 1) float64 draws of ``shape``, made on the generator's device then moved to ``device``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=gen_device)
    return u.to(device=device)


@dataclasses.dataclass(frozen=True)
class _Distribution:
    """Shared machinery of the 1-D distributions: bounds, sampling, serialisation."""

    low: float
    high: float

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, float(getattr(self, field.name)))
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ParameterError(f"{type(self).__name__} needs finite low < high, "
                                 f"got [{self.low}, {self.high}]")

    def _inside(self, x: Tensor) -> Tensor:
        return (x >= self.low) & (x <= self.high)

    def _safe(self, x: Tensor) -> Tensor:
        """``x`` clamped into the box (keeps log/grad finite in the branch torch.where discards)."""
        return x.clamp(self.low, self.high)

    def sample(self, sample_shape: Shape = (), generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
        """Draws of shape ``sample_shape`` by inverse-CDF sampling (computed in float64)."""
        x = self.icdf(_uniform_draws(sample_shape, generator, device)).to(dtype)
        return x.clamp(self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; inverse of :func:`distribution_from_dict`."""
        return {"type": _TYPE_NAMES[type(self)], **dataclasses.asdict(self)}

    def label(self) -> str:
        """Short human-readable name, e.g. ``"Uniform"``."""
        return type(self).__name__


@dataclasses.dataclass(frozen=True)
class Uniform(_Distribution):
    """Uniform density 1 / (high - low) on [low, high]."""

    def log_prob(self, x: Tensor) -> Tensor:
        val = 0.0 * self._safe(x) - math.log(self.high - self.low)  # keeps the autograd graph
        return torch.where(self._inside(x), val, -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return (self._safe(x) - self.low) / (self.high - self.low)

    def icdf(self, u: Tensor) -> Tensor:
        return (self.low + u * (self.high - self.low)).clamp(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class LogUniform(_Distribution):
    """Uniform in log10 x on [low, high] (low > 0); density in x is 1 / (x ln(high / low))."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise ParameterError(f"LogUniform needs low > 0, got low={self.low}")

    def log_prob(self, x: Tensor) -> Tensor:
        val = -torch.log(self._safe(x)) - math.log(math.log(self.high / self.low))
        return torch.where(self._inside(x), val, -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        return torch.log(self._safe(x) / self.low) / math.log(self.high / self.low)

    def icdf(self, u: Tensor) -> Tensor:
        x = torch.exp(math.log(self.low) + u * math.log(self.high / self.low))
        return x.clamp(self.low, self.high)


def _phi(t: float) -> float:
    """Standard normal CDF in float64."""
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


@dataclasses.dataclass(frozen=True)
class TruncatedNormal(_Distribution):
    """Normal(loc, scale) truncated to [low, high].

    Works in mirrored coordinates when the box lies above ``loc`` so that the normal CDF is
    evaluated in its accurate lower tail.
    """

    loc: float = 0.0
    scale: float = 1.0

    def __init__(self, loc: float, scale: float, low: float, high: float) -> None:
        for name, value in (("loc", loc), ("scale", scale), ("low", low), ("high", high)):
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.scale > 0 and math.isfinite(self.loc) and math.isfinite(self.scale)):
            raise ParameterError(f"TruncatedNormal needs finite loc and scale > 0, "
                                 f"got loc={self.loc}, scale={self.scale}")
        if self._standard()[3] <= 0.0:
            raise ParameterError(f"TruncatedNormal box [{self.low}, {self.high}] has no mass "
                                 f"under N({self.loc}, {self.scale})")

    def _standard(self) -> tuple[float, float, float, float]:
        """(sign, Phi(a'), Phi(b'), Z): mirror sign and standardised bounds' CDFs, Z = mass in box."""
        sign = -1.0 if self.low > self.loc else 1.0
        a, b = sorted(sign * (v - self.loc) / self.scale for v in (self.low, self.high))
        pa, pb = _phi(a), _phi(b)
        return sign, pa, pb, pb - pa

    def log_prob(self, x: Tensor) -> Tensor:
        z = (self._safe(x) - self.loc) / self.scale
        norm = math.log(self.scale) + 0.5 * math.log(2 * math.pi) + math.log(self._standard()[3])
        return torch.where(self._inside(x), -0.5 * z**2 - norm, -math.inf)

    def cdf(self, x: Tensor) -> Tensor:
        sign, pa, _, mass = self._standard()
        f = ((torch.special.ndtr(sign * (self._safe(x) - self.loc) / self.scale) - pa) / mass).clamp(0, 1)
        return f if sign > 0 else 1.0 - f

    def icdf(self, u: Tensor) -> Tensor:
        sign, pa, _, mass = self._standard()
        u = u if sign > 0 else 1.0 - u
        z = torch.special.ndtri((pa + u * mass).clamp(0, 1))
        return (self.loc + sign * self.scale * z).clamp(self.low, self.high)

    def label(self) -> str:
        return f"TruncatedNormal(loc={self.loc:g}, scale={self.scale:g})"


Distribution = Uniform | LogUniform | TruncatedNormal
_TYPES: dict[str, type[_Distribution]] = {
    "uniform": Uniform, "log_uniform": LogUniform, "truncated_normal": TruncatedNormal}
_TYPE_NAMES = {cls: name for name, cls in _TYPES.items()}


def distribution_from_dict(d: Mapping[str, Any]) -> Distribution:
    """Rebuild a distribution from ``to_dict()`` output, e.g. ``{"type": "uniform", "low": 0, "high": 1}``."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in _TYPES:
        raise ParameterError(f"unknown distribution type {kind!r}; expected one of {sorted(_TYPES)}")
    try:
        return _TYPES[kind](**d)
    except TypeError as err:
        raise ParameterError(f"bad arguments for distribution {kind!r}: {err}") from None


class Prior:
    """An ordered box of independent 1-D priors; ``theta`` tensors are (..., D) in ``names`` order."""

    def __init__(self, distributions: Mapping[str, Distribution | Mapping[str, Any]]) -> None:
        dists: dict[str, _Distribution] = {}
        for name, dist in distributions.items():
            dist = distribution_from_dict(dist) if isinstance(dist, Mapping) else dist
            if not isinstance(name, str) or not isinstance(dist, _Distribution):
                raise ParameterError(f"prior entry {name!r} must map a name to a distribution, got {dist!r}")
            dists[name] = dist
        if not dists:
            raise ParameterError("a Prior needs at least one parameter")
        self._dists = MappingProxyType(dists)
        self.names: tuple[str, ...] = tuple(dists)
        self.low = np.array([d.low for d in dists.values()], dtype=np.float64)
        self.high = np.array([d.high for d in dists.values()], dtype=np.float64)
        self.low.flags.writeable = self.high.flags.writeable = False

    @property
    def ndim(self) -> int:
        return len(self.names)

    @property
    def distributions(self) -> Mapping[str, Distribution]:
        return self._dists

    def __contains__(self, name: object) -> bool:
        return name in self._dists

    def __getitem__(self, name: str) -> Distribution:
        self._check_names([name])
        return self._dists[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prior) and list(self._dists.items()) == list(other._dists.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Prior({', '.join(f'{n}={d!r}' for n, d in self._dists.items())})"

    def bounds(self, dtype: torch.dtype = torch.float32, device: Any = None) -> tuple[Tensor, Tensor]:
        """(low, high) tensors, each of shape (D,)."""
        return (torch.tensor(self.low, dtype=dtype, device=device),
                torch.tensor(self.high, dtype=dtype, device=device))

    def sample(self, sample_shape: Shape = (), generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
        """Draws of shape (*sample_shape, D), inside the box in ``dtype``."""
        shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        theta = self.icdf(_uniform_draws((*shape, self.ndim), generator, device)).to(dtype)
        low, high = self.bounds(dtype, theta.device)
        return torch.clamp(theta, low, high)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Joint log density (...,) of ``theta`` (..., D); -inf outside the box."""
        return torch.stack(self._columns(theta, "log_prob"), dim=-1).sum(dim=-1)

    def cdf(self, theta: Tensor) -> Tensor:
        """Per-parameter CDFs (..., D) in [0, 1]."""
        return torch.stack(self._columns(theta, "cdf"), dim=-1)

    def icdf(self, u: Tensor) -> Tensor:
        """Map unit-cube points u (..., D) into the box (..., D)."""
        return torch.stack(self._columns(u, "icdf"), dim=-1)

    def _columns(self, x: Tensor, method: str) -> list[Tensor]:
        self._check_shape(x)
        return [getattr(d, method)(x[..., i]) for i, d in enumerate(self._dists.values())]

    def _check_shape(self, theta: Tensor) -> None:
        if theta.ndim == 0 or theta.shape[-1] != self.ndim:
            raise ParameterError(f"theta must have last dimension {self.ndim} ({', '.join(self.names)}), "
                                 f"got shape {tuple(theta.shape)}")

    def _check_names(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self._dists]
        if unknown:
            raise ParameterError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
                                 f"valid names are {', '.join(self.names)}")

    def validate(self, theta: Tensor | np.ndarray | Mapping[str, Any]) -> Tensor:
        """Check ``theta`` (..., D) or a dict name -> (N,) column; return the float tensor ((N, D) for dicts).

        Raises :class:`ParameterError` naming the parameter for a wrong size, unknown or missing
        names, non-finite values, or values outside [low, high].
        """
        if isinstance(theta, Mapping):
            theta = self._stack(theta)
        theta = torch.as_tensor(theta)
        if not theta.is_floating_point():
            theta = theta.to(torch.get_default_dtype())
        self._check_shape(theta)
        rows = theta.detach().reshape(-1, self.ndim)
        low, high = self.bounds(theta.dtype, theta.device)
        for i, name in enumerate(self.names):
            col, rng = rows[:, i], f"[{self.low[i]:g}, {self.high[i]:g}]"
            bad = ~torch.isfinite(col)
            if bad.any():
                row = int(bad.nonzero()[0])
                raise ParameterError(f"parameter {name!r} has non-finite value {col[row].item()} "
                                     f"(row {row}); expected a finite value in {rng}")
            bad = (col < low[i]) | (col > high[i])
            if bad.any():
                row = int(bad.nonzero()[0])
                value = f"{col[row].item():g}"
                value = value if not self.low[i] <= float(value) <= self.high[i] else repr(col[row].item())
                raise ParameterError(f"parameter {name!r} has value {value} (row {row}) "
                                     f"outside its range {rng}")
        return theta

    def _stack(self, columns: Mapping[str, Any]) -> Tensor:
        self._check_names(list(columns))
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ParameterError(f"missing parameter(s) {', '.join(missing)}; the prior needs "
                                 f"{', '.join(self.names)}")
        cols = [torch.as_tensor(columns[n]) for n in self.names]
        dtype = reduce(torch.promote_types, [c.dtype for c in cols])
        dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
        try:
            cols = torch.broadcast_tensors(*[c.to(dtype) for c in cols])
        except RuntimeError:
            raise ParameterError("parameter columns have different lengths: " + ", ".join(
                f"{n}={tuple(c.shape)}" for n, c in zip(self.names, cols, strict=True))) from None
        return torch.stack(cols, dim=-1).reshape(-1, self.ndim)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-ready ``{name: distribution dict}`` in parameter order."""
        return {n: d.to_dict() for n, d in self._dists.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, Any]]) -> Prior:
        """Inverse of :meth:`to_dict`."""
        return cls(d)

    def replace(self, **dists: Distribution | Mapping[str, Any]) -> Prior:
        """A new prior with some parameters' distributions replaced (order kept)."""
        self._check_names(list(dists))
        return Prior({**self._dists, **dists})

    def subset(self, names: Sequence[str]) -> Prior:
        """A new prior over ``names`` (in that order)."""
        names = [names] if isinstance(names, str) else list(names)
        self._check_names(names)
        if len(set(names)) != len(names):
            raise ParameterError(f"duplicate parameter names in {names}")
        return Prior({n: self._dists[n] for n in names})

    def describe(self) -> str:
        """A readable table: name, distribution, range, unit."""
        rows = [("name", "distribution", "range", "unit")] + [
            (n, d.label(), f"[{d.low:g}, {d.high:g}]", PARAMETER_INFO.get(n, ("", ""))[0])
            for n, d in self._dists.items()]
        widths = [max(len(r[j]) for r in rows) for j in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def kappa_to_simplex(kappa: Tensor) -> Tensor:
    """Stick-breaking map from kappa (..., K-1) in [0, 1] to simplex weights (..., K).

    beta_j = r_{j-1} - r_j with r_0 = 1 and r_j = r_{j-1} kappa_j^(1/(K-j)), so iid U(0, 1)
    kappa give a flat Dirichlet(1, ..., 1) (Betancourt 2012). Differentiable; the power's
    derivative, infinite at kappa = 0, is evaluated at kappa >= 1e-12 so gradients stay finite
    on the whole box (the values are exact).
    """
    k1 = kappa.shape[-1]
    exponents = 1.0 / torch.arange(k1, 0, -1, dtype=kappa.dtype, device=kappa.device)
    safe = kappa.clamp_min(1e-12) ** exponents
    remaining = torch.cumprod(safe + (kappa**exponents - safe).detach(), dim=-1)
    previous = torch.cat([torch.ones_like(kappa[..., :1]), remaining], dim=-1)
    return torch.cat([previous[..., :-1] - remaining, previous[..., -1:]], dim=-1)


def simplex_to_kappa(beta: Tensor) -> Tensor:
    """Inverse of :func:`kappa_to_simplex`: weights (..., K) (normalised here) to kappa (..., K-1)."""
    k = beta.shape[-1]
    tail = beta.flip(-1).cumsum(-1).flip(-1)  # tail[i] = sum_{m >= i} beta_m
    ratio = tail[..., 1:] / tail[..., :-1].clamp_min(torch.finfo(beta.dtype).tiny)
    exponents = torch.arange(k - 1, 0, -1, dtype=beta.dtype, device=beta.device)
    return ratio.clamp(0, 1) ** exponents


PARAMETER_INFO: dict[str, tuple[str, str]] = {
    "redshift": ("", "redshift of the source"),
    "log_mass": ("dex(Msun)", "log10 of the total stellar mass formed"),
    "log_z": ("dex", "log10 of the stellar metallicity relative to solar, Z/Zsun"),
    "age": ("Gyr", "time since the start of the parametric (delayed-tau/exponential/constant) SFH"),
    "tau": ("Gyr", "e-folding time of the parametric SFH"),
    **{f"kappa{i}": ("", f"stick-breaking variable {i} of the Dirichlet SFH-basis weights")
       for i in range(1, 10)},
    "f_burst": ("", "fraction of the stellar mass formed in the burst"),
    "t_burst": ("Gyr", "lookback time of the burst"),
    "av": ("mag", "V-band dust attenuation"),
    "tau_bc": ("", "birth-cloud optical depth at 5500 A (Charlot & Fall 2000)"),
    "tau_ism": ("", "diffuse-ISM optical depth at 5500 A"),
    "n_dust": ("", "power-law index of the diffuse-ISM attenuation curve"),
    "log_u": ("dex", "log10 ionisation parameter of the nebular emission"),
    "qpah": ("%", "PAH mass fraction of the dust (Draine & Li 2007)"),
    "umin": ("", "minimum starlight intensity heating the dust (Draine & Li 2007)"),
    "gamma": ("", "fraction of the dust exposed to starlight above umin (Draine & Li 2007)"),
    "f_agn": ("", "AGN torus luminosity in units of the intrinsic bolometric stellar luminosity"),
}

DEFAULT_PRIORS: dict[str, Distribution] = {
    "redshift": Uniform(0.0, 1.55),
    "log_mass": Uniform(7.5, 13.0),
    "log_z": Uniform(-2.6, 0.3),
    "age": Uniform(0.01, 13.7),
    "tau": LogUniform(0.1, 10.0),
    **{f"kappa{i}": Uniform(0.0, 1.0) for i in range(1, 10)},
    "f_burst": Uniform(0.0, 1.0),
    "t_burst": Uniform(0.01, 13.27),
    "av": Uniform(0.0, 3.0),
    "tau_bc": Uniform(0.0, 3.0),
    "tau_ism": Uniform(0.0, 3.0),
    "n_dust": Uniform(-3.0, 1.0),
    "log_u": Uniform(-4.0, -1.0),
    "qpah": Uniform(0.1, 4.58),
    "umin": Uniform(0.1, 20.0),
    "gamma": Uniform(0.0, 1.0),
    "f_agn": LogUniform(1e-5, 3.0),          # Leja et al. (2018), Prospector's fagn
}

POPSED_PARAMS: tuple[str, ...] = ("redshift", "log_mass", "log_z", "kappa1", "kappa2", "kappa3",
                                  "f_burst", "t_burst", "tau_bc", "tau_ism", "n_dust")


def default_prior(param_names: Sequence[str]) -> Prior:
    """The default prior over ``param_names`` (in that order)."""
    names = [param_names] if isinstance(param_names, str) else list(param_names)
    unknown = [n for n in names if n not in DEFAULT_PRIORS]
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
                             f"known names are {', '.join(DEFAULT_PRIORS)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"duplicate parameter names in {names}")
    return Prior({n: DEFAULT_PRIORS[n] for n in names})


def popsed_prior() -> Prior:
    """PopSED (Li et al. 2024, Table 1) prior of the default model, in ``POPSED_PARAMS`` order."""
    return default_prior(POPSED_PARAMS)
