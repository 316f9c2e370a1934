"""Mock galaxy populations for validating population inference (PopSED, Li et al. 2024, §4.1).

The parent population has a redshift–mass joint p(z, log M) ∝ dV_c/dz · φ(log M) (a
parametric stellar mass function times the comoving volume), and the other SPS parameters
drawn independently from PopSED Table 2. A survey then observes it: photometry through the
SPS model, noise from a noise model, and a flux limit (GAMA: r < 19.8) plus S/N > 1 in every
band. The flux limit is what correlates z and mass in the observed catalog.

::

    mock = make_mock_catalog(model, filters, n_galaxies=10_000, seed=0)
    mock.mags, mock.mag_errs        # (N, B) observed AB magnitudes and 1σ errors
    mock.theta                      # (N, D) true parameters of the observed galaxies
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.priors import Prior, TruncatedNormal, Uniform

#: PopSED Table 2 (the typo "μ = 0.9" of log Z read as σ = 0.9): parameters other than z, mass.
TABLE2 = {
    "kappa1": TruncatedNormal(0.5, 0.3, 0.0, 1.0),
    "kappa2": Uniform(0.0, 1.0),
    "kappa3": Uniform(0.0, 1.0),
    "t_burst": TruncatedNormal(12.0, 7.0, 1e-2, 13.27),
    "f_burst": TruncatedNormal(0.1, 0.7, 0.0, 1.0),
    "log_z": TruncatedNormal(-1.2, 0.9, -2.6, 0.3),
    "n_dust": TruncatedNormal(2.0, 2.0, -3.0, 1.0),
    "tau_bc": TruncatedNormal(1.0, 0.8, 0.0, 3.0),
    "tau_ism": TruncatedNormal(0.6, 0.8, 0.0, 3.0),
}


@dataclass(frozen=True)
class DoubleSchechter:
    """Double Schechter stellar mass function φ(log M) [Mpc⁻³ dex⁻¹].

    Default: GAMA z < 0.06 (Baldry et al. 2012): log M* = 10.66, φ1* = 3.96e-3, α1 = -0.35,
    φ2* = 0.79e-3, α2 = -1.47.
    """

    log_mstar: float = 10.66
    phi1: float = 3.96e-3
    alpha1: float = -0.35
    phi2: float = 0.79e-3
    alpha2: float = -1.47

    def __call__(self, log_mass: np.ndarray) -> np.ndarray:
        x = 10.0 ** (np.asarray(log_mass, dtype=np.float64) - self.log_mstar)
        return (
            math.log(10)
            * np.exp(-x)
            * (self.phi1 * x ** (self.alpha1 + 1) + self.phi2 * x ** (self.alpha2 + 1))
        )


def _inverse_cdf_sampler(grid: np.ndarray, density: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draws from a tabulated density on ``grid`` (trapezoid CDF, linear inverse)."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return np.interp(u, cdf / cdf[-1], grid)


@dataclass(frozen=True)
class MockPopulation:
    """The parent population of a mock: ranges of z and log M, mass function, Table 2 for the rest."""

    z_range: tuple[float, float] = (0.01, 0.6)
    log_mass_range: tuple[float, float] = (8.0, 12.5)
    mass_function: DoubleSchechter = field(default_factory=DoubleSchechter)
    others: dict[str, Any] = field(default_factory=lambda: dict(TABLE2))

    def __post_init__(self) -> None:
        (z0, z1), (m0, m1) = self.z_range, self.log_mass_range
        if not (0 <= z0 < z1 and m0 < m1):
            raise ParameterError(
                f"need 0 <= z_range[0] < z_range[1] and log_mass_range[0] < [1], got "
                f"{self.z_range}, {self.log_mass_range}"
            )

    def sample(self, model: Any, n: int, rng: np.random.Generator) -> torch.Tensor:
        """θ (n, D) in ``model.param_names`` order (float64)."""
        names = list(model.param_names)
        missing = sorted(set(names) - set(self.others) - {"redshift", "log_mass"})
        if missing:
            raise ParameterError(f"the mock population has no distribution for {missing}")
        theta = np.empty((n, len(names)))
        z, log_mass = self.sample_redshift_mass(model.cosmo.cosmology, n, rng)
        theta[:, names.index("redshift")], theta[:, names.index("log_mass")] = z, log_mass
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        for name in names:
            if name not in ("redshift", "log_mass"):
                theta[:, names.index(name)] = (
                    self.others[name].sample((n,), generator=gen, dtype=torch.float64).numpy()
                )
        return torch.as_tensor(theta)

    def sample_redshift_mass(self, cosmology: Any, n: int, rng: np.random.Generator
                             ) -> tuple[np.ndarray, np.ndarray]:
        """n draws of (z, log M) from p(z, log M) ∝ dV_c/dz (astropy ``cosmology``) · φ(log M)."""
        z_grid = np.linspace(*self.z_range, 2001)
        dvdz = cosmology.differential_comoving_volume(z_grid).value
        m_grid = np.linspace(*self.log_mass_range, 2001)
        z = _inverse_cdf_sampler(z_grid, dvdz, rng.random(n))
        return z, _inverse_cdf_sampler(m_grid, self.mass_function(m_grid), rng.random(n))

    def prior(self, model: Any) -> Prior:
        """The parent population's independent-marginal box (mass and z uniform over their ranges)."""
        return model.prior.replace(
            redshift=Uniform(*self.z_range),
            log_mass=Uniform(*self.log_mass_range),
            **{k: v for k, v in self.others.items() if k in model.param_names},
        )


@dataclass
class MockCatalog:
    """Observed galaxies of a mock survey (arrays of the selected rows) and how they were made."""

    bands: tuple[str, ...]
    param_names: tuple[str, ...]
    theta: np.ndarray  # (N, D) true parameters
    flux: np.ndarray  # (N, B) noiseless fluxes [maggies]
    mags: np.ndarray  # (N, B) observed AB magnitudes
    mag_errs: np.ndarray  # (N, B) 1σ errors [mag]
    n_parent: int  # parent galaxies drawn to select these
    selection: dict[str, Any]

    def to_table(self):
        """An astropy Table: observed ``mag_<band>``/``magerr_<band>`` and true ``true_<param>``."""
        from astropy.table import Table

        t = Table(meta={"bands": list(self.bands), "n_parent": self.n_parent, "selection": self.selection})
        for j, b in enumerate(self.bands):
            t[f"mag_{b}"] = self.mags[:, j].astype(np.float32)
            t[f"magerr_{b}"] = self.mag_errs[:, j].astype(np.float32)
        for j, p in enumerate(self.param_names):
            t[f"true_{p}"] = self.theta[:, j]
        return t


def make_mock_catalog(
    model: Any,
    filters: Any,
    n_galaxies: int = 10_000,
    *,
    population: MockPopulation | None = None,
    noise: Any = None,
    limit_band: str | None = "sdss_r0",
    limit_mag: float = 19.8,
    min_snr: float = 1.0,
    seed: int = 0,
    chunk: int = 50_000,
) -> MockCatalog:
    """Draw parent galaxies until ``n_galaxies`` pass the survey selection.

    Selection: observed (noisy) magnitude in ``limit_band`` < ``limit_mag`` (no flux limit with
    ``limit_band=None``) and S/N > ``min_snr`` in every band. ``noise``: a noise model over the
    filters (default: :func:`sedinfer.noise.default_noise_model`, SDSS depths).
    """
    from sedinfer.noise import default_noise_model

    population = population or MockPopulation()
    bands = tuple(filters.names)
    if limit_band is not None and limit_band not in bands:
        raise ParameterError(f"limit_band {limit_band!r} is not one of the filters {list(bands)}")
    noise = noise or default_noise_model(bands)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    parts, n_parent, n_kept = [], 0, 0
    while n_kept < n_galaxies:
        theta = population.sample(model, chunk, rng)
        with torch.no_grad():
            flux = model.photometry(theta.to(model.dtype), filters, units="maggies").double()
        noisy, sigma = noise.add_noise(flux, gen, redraw_negative=False)
        noisy, sigma = noisy.double(), sigma.double()
        keep = (noisy > min_snr * sigma).all(1)
        if limit_band is not None:
            keep &= -2.5 * torch.log10(noisy[:, bands.index(limit_band)].clamp_min(1e-300)) < limit_mag
        parts.append((theta[keep], flux[keep], noisy[keep], sigma[keep]))
        n_parent += chunk
        n_kept += int(keep.sum())
    theta, flux, noisy, sigma = (torch.cat(x)[:n_galaxies].numpy() for x in zip(*parts, strict=True))
    if n_kept > n_galaxies:  # parent count in proportion to the rows kept
        n_parent = int(round(n_parent * n_galaxies / n_kept))
    mags = -2.5 * np.log10(noisy)
    return MockCatalog(
        bands,
        tuple(model.param_names),
        theta,
        flux,
        mags,
        2.5 / math.log(10) * sigma / noisy,
        n_parent,
        {"band": limit_band, "limit_mag": limit_mag, "min_snr": min_snr, "seed": seed},
    )


__all__ = ["DoubleSchechter", "MockCatalog", "MockPopulation", "TABLE2", "make_mock_catalog"]
