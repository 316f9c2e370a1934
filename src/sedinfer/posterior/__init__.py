"""Amortized posteriors: conditional normalizing flows q(θ | x) trained on simulations.

Generic engine (any simulator)::

    post = sedinfer.posterior.train(theta, x, bounds=(low, high))
    samples = post.sample(x_obs, 1000)      # (1000, D) for one x_obs, (M, 1000, D) for M rows
    post.log_prob(theta, x)
    post.save(path); post = sedinfer.posterior.load(path)

Galaxy SEDs (:mod:`sedinfer.posterior.sed`): training sets from the forward model, a noise model
and a prior; the shipped SDSS models; per-galaxy summaries; the density support test
(:mod:`sedinfer.posterior.support`) and the flux-limited inference prior
(:mod:`sedinfer.posterior.flux_limited`).
"""

from sedinfer.posterior.estimator import Posterior, load
from sedinfer.posterior.flow import FLOW_KINDS, FlowConfig, build_flow
from sedinfer.posterior.galaxies import InferenceResult, SEDPosterior
from sedinfer.posterior.sed import attach_support, build_support, train_sed_posterior
from sedinfer.posterior.sed_config import SEDConfig
from sedinfer.posterior.support import SupportModel
from sedinfer.posterior.train import TrainConfig, train

#: names whose modules pull in scipy.stats and matplotlib, imported on first use so that
#: ``sedinfer posterior`` (and each worker process it spawns) starts without them
_LAZY = {"calibration_report": "sedinfer.posterior.calibration",
         "pp_coverage": "sedinfer.posterior.validation", "sbc_ranks": "sedinfer.posterior.validation",
         "tarp_coverage": "sedinfer.posterior.validation"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Posterior", "load", "train", "FlowConfig", "TrainConfig", "FLOW_KINDS", "build_flow",
           "SEDPosterior", "SEDConfig", "InferenceResult", "train_sed_posterior", "calibration_report",
           "pp_coverage", "sbc_ranks", "tarp_coverage", "SupportModel", "build_support", "attach_support"]
