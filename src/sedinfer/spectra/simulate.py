"""SDSS-like mock spectra and the same galaxies' WISE photometry, from the package's SPS model.

For each galaxy of a :class:`~sedinfer.spectra.MockPrior` draw:

1. **selection**: the Main Galaxy Sample limit r < 17.77 (Strauss et al. 2002, AJ 124, 1810),
   applied to the model's total r-band AB magnitude as a stand-in for the extinction-corrected
   Petrosian magnitude (which misses ≲ 0.2 mag of a de Vaucouleurs profile; Blanton et al. 2001).
   Draws are repeated until N galaxies pass. The separable prior permutes the infrared columns
   *after* this selection, so both priors have the same selected marginals;
2. **spectrum**: :meth:`sedinfer.SPSModel.spectrum` (stars, nebular lines and continuum, dust
   attenuation and emission, IGM), unbroadened, on the instrument grid oversampled 4 times
   (flux-conserving pixel means of the model's 2·10⁻⁴-in-ln λ rest pixels), then the instrument
   step :meth:`~sedinfer.spectra.Instrument.observe`: a Gaussian of σ = √(σ_v² + σ_LSF²) in
   ln λ, which is the velocity dispersion followed by the constant-velocity LSF (a Gaussian in
   ln λ has the same width in the rest and observed frames, and Gaussians add in quadrature),
   and the mean over each instrument pixel. (The model's own ``veldisp_kms`` is not used: in
   float32 it finds almost none of its log-uniform segment and leaves the spectrum unbroadened.)
3. **fibre**: the spectrum is scaled by a fibre fraction, lognormal around 1/3 with 0.1 dex
   scatter (the 3″ fibre holds about a third of an MGS galaxy's light; Brinchmann et al. 2004,
   MNRAS 351, 1151), while WISE sees the whole galaxy; the fraction is kept as a truth column;
4. **noise**: :class:`~sedinfer.spectra.SpectralNoise` per pixel; sky-line pixels are masked
   (ivar 0); the spectrum is normalised like a real one (:func:`~sedinfer.spectra.normalise`);
5. **WISE**: :func:`~sedinfer.spectra.observe_wise` on the model's W1–W4 fluxes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.filters import Filters
from sedinfer.spectra.batch import SpectrumBatch, assemble
from sedinfer.spectra.instrument import Instrument, sdss_instrument
from sedinfer.spectra.noise import SpectralNoise
from sedinfer.spectra.priors import Couplings, MockPrior
from sedinfer.spectra.wise import WISE_BANDS, WisePhotometry, observe_wise

OVERSAMPLE: int = 4
"""Model sub-pixels per instrument pixel before broadening (17 km/s for SDSS)."""


@dataclass(frozen=True)
class MockConfig:
    """Selection and fibre settings of the mocks (module docstring)."""

    r_limit_ab: float = 17.77
    fiber_frac_median: float = 1.0 / 3.0
    fiber_frac_scatter_dex: float = 0.1
    max_draws_per_galaxy: int = 1000
    chunk_size: int = 512

    def __post_init__(self) -> None:
        if not 0 < self.fiber_frac_median <= 1 or self.fiber_frac_scatter_dex < 0:
            raise ParameterError(f"fiber_frac_median must be in (0, 1] and fiber_frac_scatter_dex >= 0, got "
                                 f"{self.fiber_frac_median}, {self.fiber_frac_scatter_dex}")


@dataclass
class MockCatalog:
    """N simulated galaxies: ``spectra`` (masked, normalised), the true parameters ``theta``
    (N, D) in ``param_names`` order, truth columns (N,) ``veldisp_kms``, ``fiber_frac``,
    ``depth_factor``, ``r_ab`` (total r, AB), ``derived`` (log_mstar, log_ssfr, …), the noiseless
    fibre spectra ``flux_true_1e17`` (N, M), ``wise`` photometry, and ``prior_kind``."""

    spectra: SpectrumBatch
    theta: np.ndarray
    param_names: tuple[str, ...]
    veldisp_kms: np.ndarray
    fiber_frac: np.ndarray
    depth_factor: np.ndarray
    r_ab: np.ndarray
    derived: dict[str, np.ndarray]
    flux_true_1e17: np.ndarray
    wise: WisePhotometry
    prior_kind: str

    def __len__(self) -> int:
        return len(self.spectra)


def select_galaxies(model, prior: MockPrior, n: int, generator: torch.Generator,
                    config: MockConfig | None = None) -> dict[str, torch.Tensor]:
    """Coupled draws with total r < ``config.r_limit_ab``: ``theta`` (n, D), ``veldisp_kms`` and
    ``r_ab`` (n,). Raises ``ParameterError`` when the acceptance is too low to finish."""
    config = config or MockConfig()
    r_band = Filters(["sdss_r0"])
    kept: dict[str, list[torch.Tensor]] = {"theta": [], "veldisp_kms": [], "r_ab": []}
    have, tried, batch = 0, 0, max(64, 2 * n)
    while have < n:
        if tried >= config.max_draws_per_galaxy * n:
            raise ParameterError(f"only {have} of {tried} prior draws pass r < {config.r_limit_ab}; the "
                                 "prior puts too few galaxies above the selection limit")
        draw = prior.sample_coupled(batch, generator)
        r = model.photometry(draw["theta"], r_band, units="mag")[:, 0].to(torch.float64)
        ok = torch.isfinite(r) & (r < config.r_limit_ab)
        for k, v in (("theta", draw["theta"]), ("veldisp_kms", draw["veldisp_kms"]), ("r_ab", r)):
            kept[k].append(v[ok])
        have += int(ok.sum())
        tried += batch
        rate = max(have / tried, 1.0 / config.max_draws_per_galaxy)
        batch = int(min(max(64, math.ceil(1.2 * (n - have) / rate)), 20 * n + 64))
    return {k: torch.cat(v)[:n] for k, v in kept.items()}


def fibre_spectra(model, theta: torch.Tensor, veldisp_kms: torch.Tensor, fiber_frac: torch.Tensor,
                  instrument: Instrument, chunk_size: int = 512, oversample: int = OVERSAMPLE
                  ) -> torch.Tensor:
    """Noiseless fibre spectra (N, M) in 10⁻¹⁷ erg/s/cm²/Å on the instrument grid.

    The SPS spectrum is computed unbroadened on the instrument grid oversampled ``oversample``
    times, convolved with a Gaussian of σ = √(σ_v² + σ_LSF²) in ln λ and averaged onto the
    instrument pixels (:meth:`Instrument.observe`), then scaled by ``fiber_frac`` (N,).
    """
    fine = instrument.fine_wave_aa(oversample)
    out = []
    for s in range(0, theta.shape[0], chunk_size):
        _, flam = model.spectrum(theta[s:s + chunk_size], fine, units="flam")
        out.append(instrument.observe(flam.to(torch.float64) * 1e17, oversample,
                                      veldisp_kms[s:s + chunk_size].to(torch.float64)))
    return torch.cat(out) * fiber_frac.to(torch.float64).unsqueeze(-1)


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n must be a positive integer, got {n!r}")
    return int(n)


def chunk_seed(seed: int, chunk: int) -> int:
    """The torch seed of chunk ``chunk`` of a run seeded ``seed`` (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(chunk)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def simulate_chunk(n: int, model, prior: MockPrior, generator: torch.Generator, first_id: int = 0,
                   id_prefix: str = "mock", instrument: Instrument | None = None,
                   noise: SpectralNoise | None = None, wise_noise=None,
                   config: MockConfig | None = None) -> MockCatalog:
    """``n`` mock galaxies drawn with ``generator`` (module docstring for the steps); ids are
    ``f"{id_prefix}-{first_id + i:07d}"``."""
    n = _check_n(n)
    inst = instrument or sdss_instrument()
    noise = noise or SpectralNoise()
    config = config or MockConfig()
    sel = select_galaxies(model, prior, n, generator, config)
    theta = sel["theta"] if prior.kind == "coupled" else prior.separate(sel["theta"], generator)
    scatter = config.fiber_frac_scatter_dex * torch.randn(n, generator=generator, dtype=torch.float64)
    frac = (config.fiber_frac_median * 10**scatter).clamp(0.02, 1.0)
    true = fibre_spectra(model, theta, sel["veldisp_kms"], frac, inst, config.chunk_size)
    noisy, ivar, depth = noise.add_noise(true, generator)
    mask = np.broadcast_to(inst.sky_mask, true.shape)
    z = theta[:, model.param_names.index("redshift")].numpy()
    ids = np.array([f"{id_prefix}-{first_id + i:07d}" for i in range(n)])
    spectra = assemble(inst.wave_obs_aa, noisy.numpy(), ivar.numpy(), mask, z, np.zeros(n),
                       np.full(n, "GALAXY"), ids, np.full(n, "mock"), None,
                       np.full(n, inst.lsf_sigma_kms))
    wise_true = model.photometry(theta, Filters(list(WISE_BANDS)), units="maggies").to(torch.float64)
    wise = observe_wise(wise_true, generator, wise_noise)
    derived = {k: v.to(torch.float64).numpy() for k, v in model.derived(theta).items()}
    return MockCatalog(spectra, theta.numpy(), tuple(model.param_names), sel["veldisp_kms"].numpy(),
                       frac.numpy(), depth.numpy(), sel["r_ab"].numpy(), derived,
                       true.numpy().astype(np.float32), wise, prior.kind)


def iter_mocks(n: int, model, prior_kind: str = "coupled", seed: int = 0,
               instrument: Instrument | None = None, noise: SpectralNoise | None = None,
               wise_noise=None, config: MockConfig | None = None, couplings: Couplings | None = None,
               z_max: float = 0.5, chunk_galaxies: int = 2000) -> Iterator[MockCatalog]:
    """``n`` mock galaxies in chunks of ``chunk_galaxies`` (memory bounded: a 2000-galaxy chunk
    did not raise the 1.46 GB peak RSS of building the model's plans, measured), chunk k drawn
    with :func:`chunk_seed` (seed, k); ids ``mock-<seed>-<i>``.
    The separable prior permutes the infrared columns within each chunk."""
    n, step = _check_n(n), _check_n(chunk_galaxies)
    prior = MockPrior(model, prior_kind, couplings=couplings, z_max=z_max)
    for k, start in enumerate(range(0, n, step)):
        gen = torch.Generator().manual_seed(chunk_seed(seed, k))
        yield simulate_chunk(min(step, n - start), model, prior, gen, start, f"mock-{seed}", instrument,
                             noise, wise_noise, config)


def concat_mocks(chunks: list[MockCatalog]) -> MockCatalog:
    """One catalog from several (same model, prior kind and grid)."""
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    spectra = SpectrumBatch(first.spectra.wave_obs_aa, **{
        f: np.concatenate([getattr(c.spectra, f) for c in chunks]) for f in
        ("flux_norm", "ivar_norm", "mask", "norm_flam_1e17", "z", "z_err", "spec_class", "id", "ok", "reason",
         "source", "lsf_sigma_kms")})
    wise = WisePhotometry(**{f: np.concatenate([getattr(c.wise, f) for c in chunks]) for f in
                             ("mpro_vega", "sigmpro_vega", "snr", "detected", "flux_maggies", "sigma_maggies",
                              "true_vega")})
    cat = {f: np.concatenate([getattr(c, f) for c in chunks]) for f in
           ("theta", "veldisp_kms", "fiber_frac", "depth_factor", "r_ab", "flux_true_1e17")}
    derived = {k: np.concatenate([c.derived[k] for c in chunks]) for k in first.derived}
    return MockCatalog(spectra, cat["theta"], first.param_names, cat["veldisp_kms"], cat["fiber_frac"],
                       cat["depth_factor"], cat["r_ab"], derived, cat["flux_true_1e17"], wise,
                       first.prior_kind)


def simulate_mocks(n: int, model, prior_kind: str = "coupled", seed: int = 0,
                   instrument: Instrument | None = None, noise: SpectralNoise | None = None,
                   wise_noise=None, config: MockConfig | None = None,
                   couplings: Couplings | None = None, z_max: float = 0.5,
                   chunk_galaxies: int = 2000) -> MockCatalog:
    """``n`` SDSS + WISE mock galaxies under the ``prior_kind`` (``"coupled"`` or ``"separable"``)
    population prior, reproducible from ``seed``: :func:`iter_mocks` gathered in memory."""
    return concat_mocks(list(iter_mocks(n, model, prior_kind, seed, instrument, noise, wise_noise, config,
                                        couplings, z_max, chunk_galaxies)))


__all__ = ["MockCatalog", "MockConfig", "chunk_seed", "concat_mocks", "fibre_spectra", "iter_mocks",
           "select_galaxies", "simulate_chunk", "simulate_mocks"]
