"""Amortized SED posteriors (SEDFLOW): training sets, training and the shipped models.

A :class:`~sedinfer.posterior.sed_config.SEDConfig` (its own module, re-exported here) names
everything a model depends on: bands, forward model, prior, noise model, redshift mode, band
dropout, simulation count, flow and optimiser settings, seed. :func:`train_sed_posterior`
simulates (θ, x) with :func:`sedinfer.simulate.simulate_photometry` — the same model and noise
as ``sedinfer simulate`` — and fits the flow. Everything needed to use the model afterwards is
stored in the :class:`~sedinfer.posterior.Posterior`'s metadata under ``"sed"``, so one file
describes the model; :class:`sedinfer.posterior.galaxies.SEDPosterior` wraps it for catalogs.
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch

from sedinfer.errors import ParameterError
from sedinfer.posterior.encoding import context_names, dropout_mask, encode
from sedinfer.posterior.galaxies import SEDPosterior
from sedinfer.posterior.sed_config import SDSS_BANDS, SEDConfig
from sedinfer.posterior.support import SUPPORT_SEED_OFFSET, SupportModel, fit_support
from sedinfer.posterior.train import train

OOD_QUANTILES = (0.0005, 0.9995)  # per-feature training range beyond which a row is flagged


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
    (``theta_full``, ``flux``, ``noisy``, ``sigma`` in maggies, ``observed`` mask), and
    ``inference_prior`` (the flux-limited histogram as a dict, or None for the prior box).

    With a flux-limited ``config.inference_prior`` (a
    :class:`~sedinfer.posterior.flux_limited.FluxLimitedPrior` histogram), (z, log M) are drawn
    from it and the other parameters from the prior box.
    """
    from sedinfer.filters import Filters
    from sedinfer.posterior.flux_limited import FluxLimitedPrior
    from sedinfer.simulate import simulate_photometry

    n = config.n_simulations if n is None else int(n)
    seed = config.seed if seed is None else int(seed)
    model, noise = config.build_model(), config.build_noise()
    if tuple(noise.bands) != config.bands:
        raise ParameterError(f"the noise model's bands {list(noise.bands)} differ from bands "
                             f"{list(config.bands)}")
    filters = Filters(list(config.bands))
    generator = torch.Generator().manual_seed(seed)
    theta, joint = None, None
    if (config.inference_prior or {}).get("kind") == "flux_limited_histogram":
        joint = FluxLimitedPrior.from_dict(config.inference_prior)
        for name, edges in (("redshift", joint.z_edges), ("log_mass", joint.log_mass_edges)):
            box = model.prior[name]
            if edges[0] < box.low or edges[-1] > box.high:
                raise ParameterError(f"inference_prior covers {name} {edges[0]:g}-{edges[-1]:g}, outside "
                                     f"the model's prior box [{box.low:g}, {box.high:g}]")
        theta = model.prior.sample((n,), generator=generator, dtype=torch.float64)
        z, log_mass = joint.sample(n, generator)
        theta[:, model.param_names.index("redshift")] = z
        theta[:, model.param_names.index("log_mass")] = log_mass
    theta_full, flux, noisy, sigma = simulate_photometry(model, filters, noise, n, generator,
                                                         progress=progress, theta=theta,
                                                         redraw_negative=config.redraw_negative)
    observed = dropout_mask(n, len(config.bands), config.band_dropout, generator)
    beta = softening_maggies(noise, len(config.bands), seed)
    spec = config.redshift_mode == "spec"
    z = theta_full[:, model.param_names.index("redshift")]
    x = encode(noisy.float(), sigma.float(), beta, z if spec else None, observed)
    layout, keep = _layout(config, model)
    info = {**layout, "softening": beta, "theta_full": theta_full, "flux": flux, "noisy": noisy,
            "sigma": sigma, "observed": observed, "model": model, "noise": noise,
            "inference_prior": joint.to_dict() if joint is not None else None}
    return theta_full[:, keep].float(), x, info


def cached_training_set(config: SEDConfig, checkpoint: str | os.PathLike | None, progress: bool = True):
    """:func:`training_set` of ``config``, kept beside a training ``checkpoint`` as
    ``<checkpoint>.trainset.pt`` (θ, x, softening; ≈ 110 MB for 10⁶ simulations) so that a
    training resumed in another process skips the simulation. A file made for another config is
    replaced. Without a checkpoint, the set is simulated."""
    from pathlib import Path

    from sedinfer.atomic import save_torch

    if checkpoint is None:
        return training_set(config, progress=progress)
    path = Path(checkpoint).with_suffix(".trainset.pt")
    key = json.dumps(config.to_dict(), sort_keys=True)
    if path.exists():
        saved = torch.load(path, weights_only=True)
        if saved.get("config_json") == key:
            info = _cached_info(config, saved)
            return saved["theta"], saved["x"], info
    theta, x, info = training_set(config, progress=progress)
    save_torch({"config_json": key, "theta": theta, "x": x, "softening": info["softening"],
                "inference_prior_json": json.dumps(info["inference_prior"])}, path)
    return theta, x, info


def _cached_info(config: SEDConfig, saved: dict) -> dict:
    """The ``info`` of :func:`training_set` that training needs, rebuilt for a cached set."""
    model = config.build_model()
    return {**_layout(config, model)[0], "softening": saved["softening"], "model": model,
            "noise": config.build_noise(), "inference_prior": json.loads(saved["inference_prior_json"])}


def _layout(config: SEDConfig, model) -> tuple[dict, list[int]]:
    """Names and prior box of the inferred parameters (redshift left out in spec mode) and the
    flow context, and the indices of the inferred parameters in ``model.param_names``."""
    spec = config.redshift_mode == "spec"
    keep = [i for i, name in enumerate(model.param_names) if not (spec and name == "redshift")]
    low, high = model.prior.bounds()
    return {"param_names": tuple(model.param_names[i] for i in keep),
            "context_names": context_names(config.bands, spec), "low": low[keep], "high": high[keep]}, keep


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


def train_sed_posterior(config: SEDConfig | None = None, checkpoint: str | os.PathLike | None = None,
                        device=None, progress: bool = True, support_simulations: int | None = None
                        ) -> SEDPosterior:
    """Simulate the training set of ``config`` (default ``SEDConfig()``), train the flow, build its
    support model (:func:`build_support` on ``support_simulations``
    fresh simulations, default min(200000, max(1000, n_simulations / 5)); 0 skips it) and
    return a ``SEDPosterior``."""
    from sedinfer import __version__

    config = SEDConfig() if config is None else config
    theta, x, info = cached_training_set(config, checkpoint, progress=progress)
    model = info["model"]
    sed_meta = {
        "config": config.to_dict(), "model_config": model.config.to_dict(),
        "prior": model.prior.to_dict(), "noise": info["noise"].to_dict(),
        "softening_maggies": info["softening"].tolist(),
        "feature_ranges": feature_ranges(x, config.bands, info["context_names"]),
        "redshift_range": [float(model.prior["redshift"].low), float(model.prior["redshift"].high)],
        "inference_prior": info["inference_prior"],
        "sedinfer_version": __version__,
    }
    post = train(theta, x, (info["low"], info["high"]), flow=config.flow, config=config.train,
                 param_names=info["param_names"], context_names=info["context_names"],
                 metadata={"sed": json.loads(json.dumps(sed_meta))}, device=device, checkpoint=checkpoint,
                 progress=progress)
    sed = SEDPosterior(post)
    if support_simulations is None:
        support_simulations = min(200_000, max(1000, config.n_simulations // 5))
    if support_simulations:
        attach_support(sed, build_support(sed, n=support_simulations, progress=progress))
    return sed


def build_support(posterior, n: int = 200_000, seed: int | None = None, n_components: int = 64,
                  quantile: float = 0.99, progress: bool = False) -> SupportModel:
    """A :class:`SupportModel` for a trained SED posterior from ``n`` fresh simulations of its own
    config (all bands observed; half fit the mixture, half set the thresholds). ``seed`` default:
    config seed + :data:`SUPPORT_SEED_OFFSET`."""
    if n < 200:
        raise ParameterError(f"n must be >= 200 simulations, got {n}")
    config = dataclasses.replace(SEDConfig.from_dict(posterior.meta["config"]), band_dropout=0.0)
    seed = config.seed + SUPPORT_SEED_OFFSET if seed is None else int(seed)
    _, x, _ = training_set(config, n=n, seed=seed, progress=progress)
    half = n // 2
    spec = config.redshift_mode == "spec"
    return fit_support(x[:half], x[half:], len(config.bands), spec, n_components, quantile,
                       seed=int(seed % (2**31)))


def attach_support(posterior, support: SupportModel) -> None:
    """Store ``support`` in the posterior's metadata (saved with it) and use it from now on."""
    posterior.posterior.metadata["sed"]["support"] = support.to_dict()
    posterior.meta["support"] = support.to_dict()
    posterior.support = support


__all__ = ["SEDConfig", "SDSS_BANDS", "training_set", "cached_training_set", "train_sed_posterior",
           "softening_maggies",
           "feature_ranges", "build_support", "attach_support"]
