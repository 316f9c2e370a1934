"""SED-model baseline: an amortized posterior of the SPS parameters from an optical spectrum.

Jespersen et al. (*The optical and infrared are connected*, §4 and appendix F) compare their
empirical WISE predictor with SED codes (prospector, CIGALE) fitted to the optical alone, whose
posteriors are pushed through the SED model to W1–W4. This module is that comparison done with
the package's own model, where the truth is known (issue 17 §5): a conditional normalizing flow

    q(θ | s, log10 norm, z),

θ every SPS parameter except the redshift (which is known and enters as context), s the S
autoencoder latents of the spectrum (:meth:`SpectrumAutoencoder.encode`), norm its 5300–5850 Å
normalisation (10⁻¹⁷ erg/s/cm²/Å), trained by maximum likelihood on mocks drawn from the
**separable** prior (what SED codes assume: infrared parameters independent of the optical).
The flow is :class:`sedinfer.posterior.Posterior` (zuko, θ in its prior box through a logit
map) and is fitted by :func:`sedinfer.posterior.train` (resumable, checkpointed, seeded), on the
train and validation rows of the 70/10/20 split the WISE predictor uses
(:func:`~sedinfer.spectra.predictor.split_70_10_20`); the test rows are never seen.

Pushing the posterior draws to W1–W4 and scoring them is :mod:`sedinfer.spectra.sed_baseline_wise`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sedinfer.atomic import load_versioned, save_torch
from sedinfer.errors import ParameterError
from sedinfer.posterior.estimator import Posterior
from sedinfer.posterior.flow import FlowConfig
from sedinfer.posterior.train import TrainConfig, train
from sedinfer.spectra.predictor import split_70_10_20

FORMAT = "sedinfer-sed-baseline"
FORMAT_VERSION = 1
REDSHIFT = "redshift"


@dataclass(frozen=True)
class SEDBaselineConfig:
    """What a :class:`SEDBaseline` is: ``n_latent`` autoencoder latents (+ log10 norm + z) in,
    the ``flow`` architecture, the population ``prior_kind`` of its training mocks, and the
    ``split_seed`` / ``fractions`` of the 70/10/20 split it was trained on (train + validation)."""

    n_latent: int = 6
    flow: FlowConfig = FlowConfig()
    prior_kind: str = "separable"
    split_seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if self.n_latent < 1 or len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-9:
            raise ParameterError(f"invalid SEDBaselineConfig: {self}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flow": self.flow.to_dict(), "fractions": list(self.fractions)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SEDBaselineConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ParameterError(f"unknown SEDBaselineConfig fields {sorted(unknown)} (newer sedinfer?)")
        return cls(**{**d, "flow": FlowConfig.from_dict(d.get("flow", {}))})


def context_names(n_latent: int) -> tuple[str, ...]:
    """Names of the flow's context: ``s1`` … ``sS``, ``log10_norm``, ``z``."""
    return (*(f"s{i + 1}" for i in range(n_latent)), "log10_norm", "z")


def flow_context(latents, norm, z) -> torch.Tensor:
    """x (N, S + 2) float32 = (latents (N, S), log10 norm (N,), z (N,)); norm must be > 0."""
    s = torch.as_tensor(np.asarray(latents, dtype=np.float32))
    n = torch.as_tensor(np.asarray(norm, dtype=np.float64)).reshape(-1)
    zz = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1)
    if s.ndim != 2 or s.shape[0] != n.shape[0] or zz.shape[0] != n.shape[0]:
        raise ParameterError(f"latents (N, S), norm (N,) and z (N,) expected, got {tuple(s.shape)}, "
                             f"{tuple(n.shape)}, {tuple(zz.shape)}")
    if not bool((n > 0).all()):
        raise ParameterError("norm must be > 0 (the 5300-5850 A median flux)")
    return torch.cat([s, torch.log10(n).float()[:, None], zz[:, None]], dim=1)


def prior_box(prior) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, low, high) of the support of a :class:`~sedinfer.spectra.MockPrior` for every
    parameter but the redshift: the mock prior's own distribution where it has one (optical
    block, γ, f_agn ≥ 10⁻⁵), the SPS model's prior otherwise (log Z, q_PAH, U_min)."""
    model = prior.model
    names = tuple(n for n in prior.names if n != REDSHIFT)
    low, high = [], []
    for name in names:
        dist = prior.optical.distributions.get(name) if name in prior.optical.names else None
        if name == "gamma":
            dist = prior.gamma
        dist = dist or model.prior[name]
        lo, hi = float(dist.low), float(dist.high)
        if name == "f_agn":
            lo = max(lo, 1e-5)
        low.append(lo)
        high.append(hi)
    return names, np.array(low), np.array(high)


class SEDBaseline(nn.Module):
    """q(θ | latents, log10 norm, z) with ``.sample``, ``.log_prob``, ``.save`` and :meth:`load`.

    ``posterior``: the :class:`~sedinfer.posterior.Posterior` over the parameters
    ``param_names`` (every SPS parameter but the redshift) given :func:`flow_context`;
    ``model_param_names``: the SPS model's full parameter order (redshift included), used to
    rebuild θ for the SPS model (:meth:`full_theta`); ``metadata``: JSON-able (training mock,
    autoencoder, history).
    """

    def __init__(self, posterior: Posterior, config: SEDBaselineConfig, model_param_names,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.posterior, self.config = posterior, config
        self.model_param_names = tuple(model_param_names)
        self.metadata = dict(metadata or {})
        missing = [n for n in posterior.param_names if n not in self.model_param_names]
        if REDSHIFT not in self.model_param_names or missing:
            raise ParameterError(f"model parameters {self.model_param_names} must hold {REDSHIFT!r} and "
                                 f"every posterior parameter (missing {missing})")
        if posterior.context_dim != config.n_latent + 2:
            raise ParameterError(f"the posterior takes {posterior.context_dim} context features; a "
                                 f"{config.n_latent}-latent baseline needs {config.n_latent + 2}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.posterior.param_names

    @property
    def low(self) -> torch.Tensor:
        return self.posterior.low

    @property
    def high(self) -> torch.Tensor:
        return self.posterior.high

    def sample(self, latents, norm, z, n: int, seed: int = 0, rows=None,
               batch_size: int = 8192) -> torch.Tensor:
        """``n`` draws of θ (N, n, D) per galaxy, in the prior box. Reproducible: row i's draws
        depend only on (``seed``, ``rows[i]``) (default ``rows`` = 0 … N − 1), not on the batch."""
        x = flow_context(latents, norm, z)
        rows = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64)
        seeds = [(int(seed) * 1_000_003 + int(r)) % (2**62) for r in rows]
        return self.posterior.sample(x, n, batch_size=batch_size, row_seeds=seeds)

    def log_prob(self, theta, latents, norm, z) -> torch.Tensor:
        """log q(θ | spectrum) (N,) in θ's own units; θ (N, D); −inf outside the box."""
        return self.posterior.log_prob(torch.as_tensor(theta, dtype=torch.float32),
                                       flow_context(latents, norm, z))

    def full_theta(self, draws: torch.Tensor, z) -> torch.Tensor:
        """θ in the SPS model's order (..., D_model) from draws (N, K, D) or (N, D) and z (N,)."""
        zz = torch.as_tensor(np.asarray(z, dtype=np.float32), dtype=draws.dtype).reshape(-1)
        zz = zz.reshape(-1, *([1] * (draws.ndim - 2))).expand(*draws.shape[:-1])
        cols = {n: draws[..., i] for i, n in enumerate(self.param_names)}
        cols[REDSHIFT] = zz
        return torch.stack([cols[n] for n in self.model_param_names], -1)

    def save(self, path: str | os.PathLike) -> Path:
        """One self-describing file: format, version, config, names, metadata (JSON), tensors."""
        import sedinfer

        post = self.posterior
        payload = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "sedinfer_version": sedinfer.__version__,
            "config": self.config.to_dict(), "param_names": list(post.param_names),
            "context_names": list(post.context_names), "model_param_names": list(self.model_param_names),
            "posterior_metadata_json": json.dumps(post.metadata), "metadata_json": json.dumps(self.metadata),
            "state_dict": {k: v.detach().cpu() for k, v in post.state_dict().items()},
        }
        return save_torch(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SEDBaseline:
        """Read a baseline written by :meth:`save` (``weights_only``; no arbitrary pickles)."""
        payload = load_versioned(path, FORMAT, FORMAT_VERSION, "SED baseline", device=device)
        config = SEDBaselineConfig.from_dict(payload["config"])
        s = payload["state_dict"]
        post = Posterior(s["low"], s["high"], s["x_mean"], s["x_std"], s["u_mean"], s["u_std"], config.flow,
                         payload["param_names"], payload["context_names"],
                         json.loads(payload["posterior_metadata_json"]))
        post.load_state_dict(s)
        return cls(post.to(device).eval(), config, payload["model_param_names"],
                   json.loads(payload["metadata_json"])).eval()


# --------------------------------------------------------------------------- data
@dataclass
class EncodedMock:
    """The usable rows of a mock table, in :class:`~sedinfer.spectra.training_data.SpectraArrays`
    order (the rows ``train_ir`` splits): ``id``; ``latents`` (N, S); ``norm`` (N,); ``z`` (N,);
    ``theta`` (N, D_model) true parameters in ``param_names`` order; ``mag``, ``sigma`` (N, 4)
    ``wNmpro``, ``wNsigmpro`` (Vega; σ NaN = non-detection); ``true_vega`` (N, 4) noiseless;
    ``info`` the table's ``sedinfer`` metadata."""

    id: np.ndarray
    latents: np.ndarray
    norm: np.ndarray
    z: np.ndarray
    theta: np.ndarray
    param_names: tuple[str, ...]
    mag: np.ndarray
    sigma: np.ndarray
    true_vega: np.ndarray
    info: dict[str, Any]

    def __len__(self) -> int:
        return len(self.id)

    def select(self, rows) -> EncodedMock:
        rows = np.asarray(rows)
        return replace(self, **{k: getattr(self, k)[rows] for k in
                                ("id", "latents", "norm", "z", "theta", "mag", "sigma", "true_vega")})


def read_by_id(path: str | os.PathLike, ids: np.ndarray, columns: list[str]) -> np.ndarray:
    """(N, len(columns)) float64 of a Parquet table's rows with ``ids``, in that order (null → NaN)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["id", *columns])
    where = {v: i for i, v in enumerate(table.column("id").to_numpy(zero_copy_only=False).astype(str))}
    missing = [i for i in ids[:5] if i not in where]
    if missing:
        raise ParameterError(f"{os.fspath(path)!r} has no rows with ids {missing}")
    take = np.array([where[i] for i in ids], dtype=np.int64)
    out = np.empty((len(take), len(columns)))
    for j, c in enumerate(columns):
        out[:, j] = table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)[take]
    return out


def encode_mock(path: str | os.PathLike, autoencoder, limit: int | None = None,
                batch_size: int = 512) -> EncodedMock:
    """Encode the usable spectra of a mock table (``sedinfer ir simulate``) and gather their true
    parameters and WISE photometry (:class:`EncodedMock`)."""
    from sedinfer.spectra.io import open_mock_table
    from sedinfer.spectra.training_data import SpectraArrays
    from sedinfer.spectra.wise import wise_columns

    data = SpectraArrays.from_mock_table(path, z_max=autoencoder.config.z_max, limit=limit)
    latents = autoencoder.encode_arrays(data.flux, data.ivar, data.z, batch_size=batch_size)
    info = open_mock_table(path)[1]
    names = tuple(info["param_names"])
    w = wise_columns()
    true = [f"w{b}mag_true" for b in range(1, 5)]
    cols = read_by_id(path, data.id, [*names, *w["mpro"], *w["sigmpro"], *true])
    d = len(names)
    sigma = cols[:, d + 4:d + 8]
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, np.nan)
    return EncodedMock(data.id, latents, np.asarray(data.norm_flam_1e17, np.float64),
                       data.z.astype(np.float64), cols[:, :d], names, cols[:, d:d + 4], sigma,
                       cols[:, d + 8:d + 12], info)


# --------------------------------------------------------------------------- training
def train_sed_baseline(data: EncodedMock, box: tuple, config: SEDBaselineConfig = SEDBaselineConfig(),
                       train_config: TrainConfig = TrainConfig(),
                       checkpoint: str | os.PathLike | None = None, max_hours: float | None = None,
                       progress: bool = False, metadata: dict[str, Any] | None = None
                       ) -> tuple[SEDBaseline, bool]:
    """Fit q(θ | s, log10 norm, z) to the train and validation rows of ``data``'s 70/10/20 split
    (:func:`split_70_10_20` with ``config.split_seed``, as the WISE predictor); early stopping on
    the validation rows. ``box = (names, low, high)`` (:func:`prior_box`). With ``checkpoint``
    the run resumes; with ``max_hours`` it stops after the epoch that exhausts the budget.
    Returns (the baseline with the best-validation weights so far, whether training finished)."""
    names, low, high = box
    if data.latents.shape[1] != config.n_latent:
        raise ParameterError(f"{data.latents.shape[1]} latents, config expects {config.n_latent}")
    missing = [n for n in names if n not in data.param_names]
    if missing:
        raise ParameterError(f"the mock has no true parameters {missing}")
    kind = data.info.get("prior_kind")
    if kind not in (None, config.prior_kind):
        raise ParameterError(f"the training mock has prior {kind!r}; the config says {config.prior_kind!r}")
    split = split_70_10_20(len(data), config.split_seed, config.fractions)
    rows = np.concatenate([split["train"], split["val"]])
    cols = [data.param_names.index(n) for n in names]
    theta = torch.as_tensor(data.theta[rows][:, cols], dtype=torch.float32)
    x = flow_context(data.latents[rows], data.norm[rows], data.z[rows])
    val = np.arange(len(split["train"]), len(rows))
    post = train(theta, x, (low, high), flow=config.flow, config=train_config, param_names=names,
                 context_names=context_names(config.n_latent), device="cpu", checkpoint=checkpoint,
                 progress=progress, validation_rows=val,
                 max_seconds=None if max_hours is None else 3600.0 * max_hours)
    done = post.metadata["stopped"] != "time budget"
    meta = {"prior_kind": kind, "n_rows": len(data),
            "n_train": len(split["train"]), "n_val": len(split["val"]), "n_test_held_out": len(split["test"]),
            "finished": done, **(metadata or {})}
    return SEDBaseline(post, config, data.param_names, meta), done


def bounds_ok(theta: torch.Tensor, baseline: SEDBaseline) -> bool:
    """True when every draw lies in the baseline's prior box."""
    return bool(((theta >= baseline.low) & (theta <= baseline.high)).all())


__all__ = ["FORMAT", "FORMAT_VERSION", "EncodedMock", "SEDBaseline", "SEDBaselineConfig", "bounds_ok",
           "context_names", "encode_mock", "flow_context", "prior_box", "read_by_id",
           "train_sed_baseline"]
