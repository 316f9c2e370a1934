"""Amortized SED posteriors (SEDFLOW): training sets, training and the shipped models.

A :class:`SEDConfig` names everything a model depends on: bands, forward model, prior, noise
model, redshift mode (``"spec"``: z is given and conditions the flow; ``"phot"``: z is inferred),
band dropout, simulation count, flow and optimiser settings, seed. :func:`train_sed_posterior`
simulates (θ, x) with :func:`sedinfer.simulate.simulate_photometry` — the same model and noise
as ``sedinfer simulate`` — and fits the flow. Everything needed to use the model afterwards is
stored in the :class:`~sedinfer.posterior.Posterior`'s metadata under ``"sed"``, so one file
describes the model; :class:`sedinfer.posterior.galaxies.SEDPosterior` wraps it for catalogs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import torch

from sedinfer.errors import ParameterError
from sedinfer.posterior.encoding import context_names, dropout_mask, encode
from sedinfer.posterior.flow import FlowConfig
from sedinfer.posterior.train import TrainConfig, train

SDSS_BANDS = ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0")
OOD_QUANTILES = (0.0005, 0.9995)  # per-feature training range beyond which a row is flagged


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


def softening_maggies(noise, n_bands: int, seed: int = 0) -> torch.Tensor:
    """Asinh softening β per band: the median σ at zero flux under the noise model (maggies)."""
    zero = torch.zeros(4001, n_bands, dtype=torch.float64)
    sigma = noise.sample_sigma(zero, generator=torch.Generator().manual_seed(seed))
    return sigma.median(0).values.to(torch.float32)


def training_set(config: SEDConfig, n: int | None = None, seed: int | None = None, progress: bool = True):
    """Simulate ``n`` (default ``config.n_simulations``) training pairs.

    Returns ``(theta, x, info)``: θ (n, D) over the inferred parameters (the model's, without
    redshift in spectroscopic mode), x (n, C) the flow context with band dropout applied, and
    ``info`` with the parameter/context names, prior box, softening and the raw simulation
    (``theta_full``, ``flux``, ``noisy``, ``sigma`` in maggies, ``observed`` mask).
    """
    from sedinfer.filters import Filters
    from sedinfer.simulate import simulate_photometry

    n = config.n_simulations if n is None else int(n)
    seed = config.seed if seed is None else int(seed)
    model, noise = config.build_model(), config.build_noise()
    if tuple(noise.bands) != config.bands:
        raise ParameterError(f"the noise model's bands {list(noise.bands)} differ from bands "
                             f"{list(config.bands)}")
    generator = torch.Generator().manual_seed(seed)
    theta_full, flux, noisy, sigma = simulate_photometry(model, Filters(list(config.bands)), noise, n,
                                                         generator, progress=progress)
    observed = dropout_mask(n, len(config.bands), config.band_dropout, generator)
    beta = softening_maggies(noise, len(config.bands), seed)
    spec = config.redshift_mode == "spec"
    z = theta_full[:, model.param_names.index("redshift")]
    x = encode(noisy.float(), sigma.float(), beta, z if spec else None, observed)
    keep = [i for i, name in enumerate(model.param_names) if not (spec and name == "redshift")]
    low, high = model.prior.bounds()
    info = {"param_names": tuple(model.param_names[i] for i in keep),
            "context_names": context_names(config.bands, spec), "low": low[keep], "high": high[keep],
            "softening": beta, "theta_full": theta_full, "flux": flux, "noisy": noisy, "sigma": sigma,
            "observed": observed, "model": model, "noise": noise}
    return theta_full[:, keep].float(), x, info


def feature_ranges(x: torch.Tensor, bands: tuple[str, ...], names: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-feature training range [q_lo, q_hi] (:data:`OOD_QUANTILES`) of the context features,
    over the rows where the feature's band was observed; the redshift over all rows."""
    probs = torch.tensor(OOD_QUANTILES, dtype=torch.float64)
    ranges = {}
    for i in range(len(bands)):
        seen = x[:1_000_000, 3 * i + 2] > 0.5
        for j in (3 * i, 3 * i + 1):
            q = torch.quantile(x[:1_000_000, j][seen].double(), probs)
            ranges[names[j]] = [float(q[0]), float(q[1])]
    if names[-1] == "redshift":
        q = torch.quantile(x[:1_000_000, -1].double(), probs)
        ranges["redshift"] = [float(q[0]), float(q[1])]
    return ranges


def train_sed_posterior(config: SEDConfig = SEDConfig(), checkpoint: str | os.PathLike | None = None,
                        device=None, progress: bool = True):
    """Simulate the training set of ``config``, train the flow, return a ``SEDPosterior``."""
    from sedinfer import __version__
    from sedinfer.posterior.galaxies import SEDPosterior

    theta, x, info = training_set(config, progress=progress)
    model = info["model"]
    sed_meta = {
        "config": config.to_dict(), "model_config": model.config.to_dict(),
        "prior": model.prior.to_dict(), "noise": info["noise"].to_dict(),
        "softening_maggies": info["softening"].tolist(),
        "feature_ranges": feature_ranges(x, config.bands, info["context_names"]),
        "redshift_range": [float(model.prior["redshift"].low), float(model.prior["redshift"].high)],
        "sedinfer_version": __version__,
    }
    post = train(theta, x, (info["low"], info["high"]), flow=config.flow, config=config.train,
                 param_names=info["param_names"], context_names=info["context_names"],
                 metadata={"sed": json.loads(json.dumps(sed_meta))}, device=device, checkpoint=checkpoint,
                 progress=progress)
    return SEDPosterior(post)


__all__ = ["SEDConfig", "SDSS_BANDS", "training_set", "train_sed_posterior", "softening_maggies",
           "feature_ranges"]
