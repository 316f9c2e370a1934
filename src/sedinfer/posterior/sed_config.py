"""The configuration of an amortized SED posterior: :class:`SEDConfig`.

A frozen, validated dataclass naming everything a trained model depends on — bands, forward
model keyword arguments, prior, noise model, redshift mode (``"spec"``: z is given and conditions
the flow; ``"phot"``: z is inferred), band dropout, simulation count, flow and optimiser settings,
seed. It is saved inside every model file (:meth:`SEDConfig.to_dict`) and read back by
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

    def __post_init__(self) -> None:
        if self.redshift_mode not in ("spec", "phot"):
            raise ParameterError(f"redshift_mode must be 'spec' or 'phot', got {self.redshift_mode!r}")
        if not 0 <= self.band_dropout < 1:
            raise ParameterError(f"band_dropout must be in [0, 1), got {self.band_dropout}")
        if self.n_simulations < 100:
            raise ParameterError(f"n_simulations must be >= 100, got {self.n_simulations}")
        object.__setattr__(self, "bands", tuple(self.bands))

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(bands=list(self.bands), flow=self.flow.to_dict(), train=asdict(self.train))
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
        from sedinfer.noise import default_noise_model, from_dict

        return from_dict(self.noise) if self.noise else default_noise_model(self.bands)


__all__ = ["SEDConfig", "SDSS_BANDS"]
