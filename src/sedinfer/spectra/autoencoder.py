"""A spender-like spectrum autoencoder with an explicit redshift (issue 17 §2).

Melchior et al. (2023, AJ 166, 74) and Liang et al. (2023, AJ 166, 75): an encoder maps an
observed, normalised spectrum y (N, M) to S latents s (:class:`~sedinfer.spectra.encoder.SpectrumEncoder`);
an MLP decoder maps s to a rest-frame spectrum x(λ_rest) (N, K) on a log-uniform grid wider and
finer than the data (covering the observed grid de-redshifted over 0 < z ≤ z_max); the model of
the data is

    ŷ = LSF ⊛ x(λ_obs / (1 + z)),

interpolated on the rest grid (:func:`~sedinfer.spectra.restframe.rest_to_observed`) and convolved
with the instrument's line-spread function (:meth:`sedinfer.spectra.Instrument.apply_lsf`). The
instrument stays outside the network (STYLE 12): the autoencoder holds an
:class:`~sedinfer.spectra.Instrument` rebuilt from its config. The decoder's hidden layers use
the gated activation of Alsing et al. (2020, ApJS 249, 5, eq. 8),
a(x) = [γ + (1 − γ) σ(β x)] x with learned β, γ per unit, as spender does.

Written from the papers, not with the ``spender`` package (see docs/infrared.md). Saved models
are one torch file of tensors and JSON-able fields (config, format version, metadata), read
with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sedinfer.atomic import load_versioned, save_torch
from sedinfer.spectra.encoder import SpectrumEncoder, mlp
from sedinfer.spectra.instrument import (
    SDSS_DLOGLAM,
    SDSS_LOGLAM0,
    SDSS_NPIX,
    SDSS_RESOLUTION,
    Instrument,
    sdss_instrument,
)
from sedinfer.spectra.instrument import lsf_sigma_kms as _lsf_sigma_kms
from sedinfer.spectra.restframe import rest_grid, rest_to_observed

FORMAT = "sedinfer-spectrum-autoencoder"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AutoencoderConfig:
    """Sizes of a :class:`SpectrumAutoencoder` and the observed grid it is trained for.

    Defaults are sized for 2 CPU cores (docs/infrared.md: about 10× cheaper per step than spender's
    SDSS model, same parts). ``dloglam_rest`` is the rest-frame pixel in log10 λ (SDSS: 10⁻⁴);
    ``z_max`` the largest redshift the rest grid covers; ``instrument_*`` describe the observed grid
    and its Gaussian LSF (default: SDSS, R = 2000).
    """

    n_latent: int = 6
    filters: tuple[int, int, int] = (24, 48, 96)
    kernel_sizes: tuple[int, int, int] = (5, 11, 21)
    encoder_hidden: tuple[int, ...] = (48, 32)
    dropout: float = 0.1
    decoder_hidden: tuple[int, ...] = (64, 256, 512)
    dloglam_rest: float = 0.8e-4
    z_max: float = 0.5
    instrument_name: str = "SDSS"
    loglam0: float = SDSS_LOGLAM0
    dloglam: float = SDSS_DLOGLAM
    n_pix: int = SDSS_NPIX
    lsf_sigma_kms: float = _lsf_sigma_kms(SDSS_RESOLUTION)

    def __post_init__(self) -> None:
        for name in ("filters", "kernel_sizes", "encoder_hidden", "decoder_hidden"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.n_latent < 1 or not 0 <= self.dropout < 1 or self.z_max <= 0 or self.dloglam_rest <= 0:
            raise ValueError(f"invalid AutoencoderConfig: {self}")

    @classmethod
    def for_instrument(cls, instrument: Instrument, **kw: Any) -> AutoencoderConfig:
        """A config on the grid and LSF of ``instrument`` (other fields from ``kw``)."""
        return cls(
            instrument_name=instrument.name,
            loglam0=instrument.loglam0,
            dloglam=instrument.dloglam,
            n_pix=instrument.n_pix,
            lsf_sigma_kms=instrument.lsf_sigma_kms,
            **kw,
        )

    def instrument(self) -> Instrument:
        """The :class:`Instrument` of this config (SDSS sky lines)."""
        base = sdss_instrument()
        return Instrument(
            self.instrument_name, self.loglam0, self.dloglam, self.n_pix, self.lsf_sigma_kms, base.sky_lines
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoencoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown AutoencoderConfig fields {sorted(unknown)} (newer sedinfer?)")
        return cls(**d)


class GatedActivation(nn.Module):
    """a(x) = [γ + (1 − γ) σ(β ⊙ x)] ⊙ x (Alsing et al. 2020, eq. 8), β, γ learned per unit."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.randn(width))
        self.gamma = nn.Parameter(torch.randn(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.gamma + (1 - self.gamma) * torch.sigmoid(self.beta * x)) * x


class SpectrumAutoencoder(nn.Module):
    """Encoder, rest-frame decoder and the explicit redshift + LSF to the observed grid.

    Spectra are normalised (``SpectrumBatch.flux_norm``, ``ivar_norm``), (N, M) on the config's
    grid; ``z`` (N,). ``wave_rest_aa`` (K,) is the decoder's grid.
    """

    def __init__(
        self, config: AutoencoderConfig | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.config = config = config or AutoencoderConfig()
        self.metadata = dict(metadata or {})
        self.instrument = config.instrument()
        self.loglam0_rest, n_rest = rest_grid(
            config.loglam0, config.dloglam, config.n_pix, config.z_max, config.dloglam_rest
        )
        self.encoder = SpectrumEncoder(
            config.n_latent, config.filters, config.kernel_sizes, config.encoder_hidden, config.dropout
        )
        self.decoder = mlp(config.n_latent, n_rest, config.decoder_hidden, GatedActivation)
        with torch.no_grad():
            self.decoder[-1].bias.fill_(1.0)  # normalised spectra are ≈ 1
        loglam_obs = config.loglam0 + config.dloglam * np.arange(config.n_pix, dtype=np.float64)
        self.register_buffer("loglam_obs", torch.as_tensor(loglam_obs, dtype=torch.float32), persistent=False)

    @property
    def n_rest(self) -> int:
        return self.decoder[-1].out_features

    @property
    def wave_rest_aa(self) -> np.ndarray:
        """Rest-frame wavelengths (Å) of the decoder's output, (K,)."""
        return 10.0 ** (self.loglam0_rest + self.config.dloglam_rest * np.arange(self.n_rest))

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check(
        self, flux: torch.Tensor, ivar: torch.Tensor | None = None, z: torch.Tensor | None = None
    ) -> None:
        m = self.config.n_pix
        if flux.ndim != 2 or flux.shape[-1] != m:
            raise ValueError(
                f"flux has shape {tuple(flux.shape)}; expected (N, {m}) on the "
                f"{self.config.instrument_name} grid"
            )
        if ivar is not None and ivar.shape != flux.shape:
            raise ValueError(f"ivar has shape {tuple(ivar.shape)}; expected {tuple(flux.shape)}")
        if z is not None:
            if z.shape != flux.shape[:1]:
                raise ValueError(f"z has shape {tuple(z.shape)}; expected ({flux.shape[0]},)")
            if (
                not bool(torch.isfinite(z).all())
                or bool((z < 0).any())
                or bool((z > self.config.z_max).any())
            ):
                raise ValueError(f"z must be finite and in [0, {self.config.z_max}] (the trained range)")

    def encode(self, flux: torch.Tensor, ivar: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (N, S) of normalised spectra ``flux``, ``ivar`` (N, M). ``z`` (N,) is only
        checked against the trained range: as in spender the encoder does not see it."""
        self._check(flux, ivar, z)
        weight = (ivar > 0).to(flux.dtype)
        return self.encoder(torch.where(ivar > 0, flux, torch.zeros_like(flux)), weight)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Rest-frame normalised spectra (N, K) on :attr:`wave_rest_aa` from latents (N, S)."""
        return self.decoder(latents)

    def observe(self, flux_rest: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Rest-frame spectra (N, K) as observed at ``z`` (N,): interpolated at λ_obs / (1 + z),
        then convolved with the LSF; (N, M)."""
        flux_obs, _ = rest_to_observed(
            flux_rest, self.loglam0_rest, self.config.dloglam_rest, self.loglam_obs.to(flux_rest.dtype), z
        )
        return self.instrument.apply_lsf(flux_obs)

    def forward(
        self, flux: torch.Tensor, ivar: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents (N, S), reconstruction ŷ (N, M) on the observed grid)."""
        s = self.encode(flux, ivar, z)
        return s, self.observe(self.decode(s), z)

    @torch.no_grad()
    def encode_arrays(
        self, flux: np.ndarray, ivar: np.ndarray, z: np.ndarray, batch_size: int = 512
    ) -> np.ndarray:
        """Latents (N, S) float32 of (N, M) arrays, ``batch_size`` spectra at a time, in eval mode."""
        was = self.training
        self.eval()
        out = [
            self.encode(
                *(
                    torch.as_tensor(np.asarray(a[i : i + batch_size], dtype=np.float32))
                    for a in (flux, ivar, z)
                )
            )
            for i in range(0, len(flux), batch_size)
        ]
        self.train(was)
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.n_latent), np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """One self-describing file: format, version, config, metadata (JSON), state dict."""
        import sedinfer

        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "sedinfer_version": sedinfer.__version__,
            "config": self.config.to_dict(),
            "metadata_json": json.dumps(self.metadata),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        return save_torch(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SpectrumAutoencoder:
        """Read a model written by :meth:`save` (no arbitrary pickles); in eval mode."""
        payload = load_versioned(path, FORMAT, FORMAT_VERSION, "spectrum autoencoder", device=device)
        model = cls(AutoencoderConfig.from_dict(payload["config"]), json.loads(payload["metadata_json"]))
        model.load_state_dict(payload["state_dict"])
        return model.to(device).eval()


__all__ = ["AutoencoderConfig", "FORMAT", "FORMAT_VERSION", "GatedActivation", "SpectrumAutoencoder"]
