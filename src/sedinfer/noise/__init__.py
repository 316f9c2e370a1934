"""Photometric noise models p(σ | f) for forward-simulating observed fluxes.

Three models share one interface (:class:`NoiseModel`): ``bands``, ``sample_sigma``,
``add_noise``, ``save`` / ``load`` and a readable ``repr``. Fluxes are in maggies (AB),
tensors of shape (..., B).

- :class:`SNRNoiseModel`: PopSED's p(SNR | f), fitted on a catalog (Li et al. 2024, §2.2).
- :class:`SigmaNoiseModel`: SEDFLOW's p(σ | f), fitted on a catalog (Hahn & Melchior 2022, eq. 5).
- :class:`DepthNoiseModel`: sky-limited noise from 5σ depths plus a calibration floor;
  :func:`default_noise_model` fills in published depths of common surveys.
- :class:`ScaledNoiseModel`: any of these with σ times a log-uniform factor (errors spanning a
  range around the base model, for posterior training sets).

:meth:`NoiseModel.sigma_floor` is the lower quantile of p(σ | f), the model's error floor.

:func:`anti_annealing_factor` gives PopSED's noise-reduction schedule R(t) (§2.5), to pass as
``scale``. :func:`load` reads any saved model.
"""

from __future__ import annotations

from pathlib import Path

from sedinfer.errors import ParameterError
from sedinfer.noise.base import NoiseModel, RedrawStats, anti_annealing_factor, read_json
from sedinfer.noise.depth import (
    DEFAULT_DEPTHS,
    DepthNoiseModel,
    SurveyDepth,
    default_depth,
    default_noise_model,
)
from sedinfer.noise.scaled import ScaledNoiseModel
from sedinfer.noise.sigma import SigmaNoiseModel
from sedinfer.noise.snr import SNRNoiseModel

__all__ = [
    "DEFAULT_DEPTHS",
    "DepthNoiseModel",
    "NoiseModel",
    "RedrawStats",
    "SNRNoiseModel",
    "ScaledNoiseModel",
    "SigmaNoiseModel",
    "SurveyDepth",
    "anti_annealing_factor",
    "default_depth",
    "default_noise_model",
    "from_dict",
    "load",
]

_KINDS: dict[str, type[NoiseModel]] = {cls.kind: cls for cls in (SNRNoiseModel, SigmaNoiseModel,
                                                                  DepthNoiseModel, ScaledNoiseModel)}


def from_dict(data: dict) -> NoiseModel:
    """A noise model from its ``to_dict()`` form, whatever its kind."""
    cls = _KINDS.get(data.get("kind"))
    if cls is None:
        raise ParameterError(f"noise model kind {data.get('kind')!r} is unknown; expected one of "
                             f"{sorted(_KINDS)}")
    return cls.from_dict(data)


def load(path: str | Path) -> NoiseModel:
    """Read a noise model saved by ``save``, whatever its kind."""
    try:
        return from_dict(read_json(path))
    except ParameterError as exc:
        raise ParameterError(f"noise-model file {str(path)!r}: {exc}") from None
