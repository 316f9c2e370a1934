"""Population-level inference (PopSED, Li et al. 2024): the distribution of θ behind a catalog.

::

    pop = sedinfer.population.fit(mags, mag_errs, model=sedinfer.SPSModel(),
                                  filters=sedinfer.Filters("sdss"), n_flows=5)
    theta = pop.sample(10000)            # (10000, D), columns = model.param_names
    pop.save(path); pop = sedinfer.population.load(path)

Modules: :mod:`~sedinfer.population.config` (:class:`FitConfig` and the fixed recipe),
:mod:`~sedinfer.population.flow` (q(θ) over the prior box, starting uniform),
:mod:`~sedinfer.population.losses` (Sinkhorn and sliced Wasserstein losses, blur schedule),
:mod:`~sedinfer.population.forward` (θ → noisy asinh magnitudes, selection weights),
:mod:`~sedinfer.population.data` (catalog checks, noise model), :mod:`~sedinfer.population.support`
(is the catalog inside what the fit can model), :mod:`~sedinfer.population.train` (one flow's
training loop), :mod:`~sedinfer.population.fit` (the ensemble fit) and
:mod:`~sedinfer.population.ensemble` (:class:`Population`, save/load).
"""

from sedinfer.population.config import FitConfig
from sedinfer.population.ensemble import Population, load
from sedinfer.population.fit import PopulationWarning, fit
from sedinfer.population.flow import DEFAULT_POPULATION_FLOW, BoxFlow
from sedinfer.population.forward import ForwardModel, SoftMagnitudeLimit, make_simulator
from sedinfer.population.losses import BlurSchedule, population_loss, sinkhorn_loss, sliced_wasserstein_loss

__all__ = ["BlurSchedule", "BoxFlow", "DEFAULT_POPULATION_FLOW", "FitConfig", "ForwardModel", "Population",
           "PopulationWarning", "SoftMagnitudeLimit", "fit", "load", "make_simulator", "population_loss",
           "sinkhorn_loss", "sliced_wasserstein_loss"]
