"""The configuration of an amortized SED posterior: :class:`SEDConfig`.

A frozen, validated dataclass naming everything a trained model depends on — bands, forward
model keyword arguments, prior, noise model, redshift mode (``"spec"``: z is given and conditions
the flow; ``"phot"``: z is inferred), band dropout, simulation count, flow and optimiser settings,
seed — and three noise/prior choices of issue 20:

- ``redraw_negative`` (default False): keep the training noise as drawn (negative fluxes), as
  ``sedinfer simulate`` does; True is PopSED's redraw of negative fluxes.
- ``sigma_factor_range`` (default None): (u_lo, u_hi) to draw each training σ as the noise
  model's σ times a log-uniform factor on that range (:class:`sedinfer.noise.ScaledNoiseModel`),
  e.g. (1/3, 3), so catalogs with other errors are inside the training support.
- ``inference_prior`` (default None, the prior box; ``{"kind": "box"}`` says so): a flux-limited
  p(z, log M) histogram (:class:`sedinfer.posterior.flux_limited.FluxLimitedPrior` dict, built by
  ``scripts/flux_limited_prior.py``) from which the training set draws (z, log M).

Models saved before these settings existed were trained with the redraw:
:func:`saved_config` fills in :data:`SAVED_DEFAULTS` for keys a saved config lacks.

The config is saved inside every model file (:meth:`SEDConfig.to_dict`) and read back by
:class:`sedinfer.posterior.galaxies.SEDPosterior` and :func:`sedinfer.posterior.sed.training_set`;
a leaf of both, so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sedinfer.errors import ParameterError
from sedinfer.posterior.flow import FlowConfig
from sedinfer.posterior.train import TrainConfig

SDSS_BANDS = ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0")
"""The five SDSS bands, in wavelength order (sedpy names)."""


@dataclass(frozen=True)
class SEDConfig:
    """Everything that defines a trained SED posterior (saved inside the model file)."""

    bands: tuple[str, ...] = SDSS_BANDS
    redshift_mode: str = "spec"
    model: dict = field(default_factory=dict)          # SPSModel keyword arguments
    prior: dict | None = None                           # Prior.to_dict(); None: the model's default
    noise: dict | None = None                           # noise model dict; None: default_noise_model
    n_simulations: int = 1_000_000
    band_dropout: float = 0.1
    seed: int = 0
    flow: FlowConfig = FlowConfig()
    train: TrainConfig = TrainConfig()
    redraw_negative: bool = False                       # PopSED's redraw of negative noisy fluxes
    sigma_factor_range: tuple[float, float] | None = None  # log-uniform σ factor (u_lo, u_hi)
    inference_prior: dict | None = None                 # None / {"kind": "box"} or flux-limited histogram

    def __post_init__(self) -> None:
        if self.redshift_mode not in ("spec", "phot"):
            raise ParameterError(f"redshift_mode must be 'spec' or 'phot', got {self.redshift_mode!r}")
        if not 0 <= self.band_dropout < 1:
            raise ParameterError(f"band_dropout must be in [0, 1), got {self.band_dropout}")
        if self.n_simulations < 100:
            raise ParameterError(f"n_simulations must be >= 100, got {self.n_simulations}")
        object.__setattr__(self, "bands", tuple(self.bands))
        if not isinstance(self.redraw_negative, bool):
            raise ParameterError(f"redraw_negative must be true or false, got {self.redraw_negative!r}")
        if self.sigma_factor_range is not None:
            try:
                lo, hi = (float(v) for v in self.sigma_factor_range)
            except (TypeError, ValueError):
                raise ParameterError(f"sigma_factor_range must be [low, high], got "
                                     f"{self.sigma_factor_range!r}") from None
            if not (0 < lo <= 1 <= hi < float("inf")):
                raise ParameterError(f"sigma_factor_range must satisfy 0 < low <= 1 <= high, "
                                     f"got [{lo}, {hi}]")
            object.__setattr__(self, "sigma_factor_range", (lo, hi))
        if self.inference_prior is not None:
            from sedinfer.posterior.flux_limited import check_prior_spec

            object.__setattr__(self, "inference_prior", check_prior_spec(self.inference_prior, self.bands))

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(bands=list(self.bands), flow=self.flow.to_dict(), train=asdict(self.train))
        if self.sigma_factor_range is not None:
            out["sigma_factor_range"] = list(self.sigma_factor_range)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> SEDConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown SED posterior settings {unknown}; expected some of "
                                 f"{sorted(known)}")
        data = dict(data)
        if "flow" in data:
            data["flow"] = FlowConfig.from_dict(data["flow"])
        if "train" in data:
            data["train"] = TrainConfig(**data["train"])
        return cls(**data)

    # ------------------------------------------------------------------ components
    def build_model(self):
        from sedinfer.priors import Prior
        from sedinfer.sps.model import SPSModel

        prior = Prior.from_dict(self.prior) if self.prior else None
        return SPSModel(**self.model, prior=prior)

    def build_noise(self):
        """The training noise model: ``noise`` (or the default depth model), widened by
        ``sigma_factor_range`` when set."""
        from sedinfer.noise import ScaledNoiseModel, default_noise_model, from_dict

        base = from_dict(self.noise) if self.noise else default_noise_model(self.bands)
        if self.sigma_factor_range is None:
            return base
        return ScaledNoiseModel(base.bands, base, self.sigma_factor_range)


#: Values of settings added after models were first shipped, as those models were trained.
SAVED_DEFAULTS = {"redraw_negative": True}


def saved_config(data: dict) -> dict:
    """A config dict read from a saved model, with :data:`SAVED_DEFAULTS` for missing keys."""
    return {**SAVED_DEFAULTS, **data}


__all__ = ["SEDConfig", "SDSS_BANDS", "SAVED_DEFAULTS", "saved_config"]
