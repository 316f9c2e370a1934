"""Intrinsic parameters of simulated dusty disk galaxies, drawn from a seeded numpy Generator.

Every number is a physical size, ratio or age; views (inclination, position angle) are drawn
apart (:func:`draw_views`) so that one intrinsic galaxy can be seen from three directions, like
NIHAO's viewing angles. The ranges and their sources are listed in ``docs/dustmaps.md``:

* total stellar mass formed log M ~ U(9.5, 11) M_sun; bulge mass fraction ~ Beta(2, 2.5) (mean
  0.44), which with the bulge's higher M/L gives light fractions B/T ≈ 0-0.5 in i, most below 0.3
  (disk galaxies: Gadotti 2009, Simard et al. 2011);
* disk half-mass radius from the late-type size-mass relation of Shen et al. (2003, Eq. 18:
  R = 0.1 kpc M^0.14 (1 + M / 3.98e10)^0.25, log-normal scatter σ_lnR = 0.34 + 0.13/(1 + (M/M₀)²)),
  exponential scale length h_R = R₅₀ / 1.678;
* bulge effective radius r_e / h_R ~ N(0.22, 0.09) clipped to [0.08, 0.5] (Courteau, de Jong &
  Broeils 1996); bulge intrinsic axis ratio q₀ ~ U(0.5, 0.9);
* stellar disk sech² scale height h_z / h_R ~ U(0.08, 0.2) (h_R/h_z = 7.3 ± 2.2, Kregel, van der
  Kruit & de Grijs 2002);
* dust disk: h_dR / h_R ~ U(1.0, 1.6) and h_dz / h_z ~ U(0.3, 0.8) (≈ 1.4 and ≈ 0.5 in Xilouris
  et al. 1999); face-on central optical depth at λ₀ τ₀ log-uniform in [0.1, 10] (Xilouris et al.
  1999: τ_V ≈ 0.5-1; Driver et al. 2007: τ_B ≈ 3.8), 10 % of galaxies nearly dust-free
  (τ₀ < 0.1); curve slope δ ~ U(-0.8, 0.4) (Kriek & Conroy 2013; Salim, Boquien & Lee 2018);
* dust patchiness: m = 2 logarithmic spiral arms of pitch angle U(10°, 30°) and a Gaussian random
  field of correlation length U(0.2, 0.6) h_R, thresholded to a face-on target covering fraction
  U(0.02, 1) (the views' measured coverings are higher: inclined sight lines cross more dust);
* star-forming knots: 5-30 per galaxy on the arms, 3D Gaussians of σ = U(0.03, 0.08) h_R
  (0.1-0.25 kpc for h_R = 3 kpc, the size of giant H II complexes), together
  10^U(-3.5, -2.5) of the disk mass, each in its own dust clump of central column τ log-uniform
  in [0.05, 5] at λ₀ (birth clouds, Charlot & Fall 2000);
* stellar populations (delayed-τ SFHs): bulge age U(8, 12) Gyr, τ U(0.3, 1.5) Gyr, log Z/Z_sun
  U(-0.1, 0.2); disk age U(5, 10) Gyr, τ U(3, 15) Gyr, log Z U(-0.5, 0); knots age U(5, 50) Myr,
  τ = 10 Gyr (constant SFR), log Z U(-0.5, 0), log U U(-3, -2);
* redshift: set so that the disk R₅₀ covers U_log(3, 10) pixels of the stamp (a resolved-galaxy
  cutout selection), Planck18 angular-diameter distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

LOG_MASS_RANGE = (9.5, 11.0)
DELTA_RANGE = (-0.8, 0.4)
COVERING_RANGE = (0.02, 1.0)
R50_PIX_RANGE = (3.0, 10.0)
EXP_R50_PER_H = 1.678
"""Half-light radius of an exponential disk in scale lengths."""


@dataclass(frozen=True)
class Knots:
    """Star-forming knots in the disk frame: ``xyz_kpc`` (K, 3), ``sigma_kpc`` (K,), ``tau`` (K,)
    (central column of each knot's dust clump at λ₀), ``flux_share`` (K,) summing to 1."""

    xyz_kpc: np.ndarray
    sigma_kpc: np.ndarray
    tau: np.ndarray
    flux_share: np.ndarray


@dataclass(frozen=True)
class Galaxy:
    """One intrinsic simulated galaxy (sizes in kpc, ages in Gyr, log Z in dex of Z_sun)."""

    redshift: float
    kpc_per_arcsec: float
    log_mass: float
    bulge_fraction: float
    disk_h_kpc: float
    disk_hz_kpc: float
    bulge_re_kpc: float
    bulge_q0: float
    dust_h_kpc: float
    dust_hz_kpc: float
    tau0: float
    delta: float
    arm_pitch_rad: float
    arm_phase_rad: float
    arm_amplitude: float
    field_length_kpc: float
    covering_target: float
    knot_mass_fraction: float
    knots: Knots
    sps_bulge: dict = field(default_factory=dict)
    sps_disk: dict = field(default_factory=dict)
    sps_knots: dict = field(default_factory=dict)
    field_seed: int = 0


@lru_cache(maxsize=1)
def _distance_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    z = np.linspace(0.002, 0.8, 800)
    return z, Planck18.angular_diameter_distance(z).to_value("kpc")


def kpc_per_arcsec(redshift: float) -> float:
    """Proper kpc per arcsec at ``redshift`` (Planck18)."""
    z, da = _distance_table()
    return float(np.interp(redshift, z, da)) * np.pi / 648000.0


def redshift_for_size(size_kpc: float, size_arcsec: float) -> float:
    """Redshift at which ``size_kpc`` subtends ``size_arcsec`` (Planck18, z in [0.002, 0.8],
    where the angular size decreases with z); NaN if out of that range."""
    z, da = _distance_table()
    theta = size_kpc / da * 648000.0 / np.pi
    if not theta[-1] <= size_arcsec <= theta[0]:
        return float("nan")
    return float(np.interp(size_arcsec, theta[::-1], z[::-1]))


def shen_late_type_r50_kpc(log_mass: float, rng: np.random.Generator) -> float:
    """Half-mass radius of a late-type galaxy (Shen et al. 2003, Eq. 18 and its scatter)."""
    m = 10.0**log_mass
    m0 = 3.98e10
    r = 0.1 * m**0.14 * (1.0 + m / m0) ** (0.39 - 0.14)
    sigma_ln = 0.34 + (0.47 - 0.34) / (1.0 + (m / m0) ** 2)
    return float(r * np.exp(sigma_ln * rng.standard_normal()))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def draw_knots(rng: np.random.Generator, h_kpc: float, hz_kpc: float, pitch: float, phase: float
               ) -> Knots:
    """Knot positions on the two spiral arms (radius ~ Gamma(2) h_R, azimuth scatter 0.3 rad)."""
    n = int(rng.integers(5, 31))
    radius = rng.gamma(2.0, h_kpc, n).clip(0.2 * h_kpc, 4.0 * h_kpc)
    arm = rng.integers(0, 2, n) * np.pi
    phi = phase + arm + np.log(radius / h_kpc) / np.tan(pitch) + 0.3 * rng.standard_normal(n)
    z = 0.3 * hz_kpc * rng.laplace(size=n)
    xyz = np.stack([radius * np.cos(phi), radius * np.sin(phi), z], -1)
    share = rng.dirichlet(np.ones(n))
    return Knots(xyz, h_kpc * rng.uniform(0.03, 0.08, n), _log_uniform(rng, 0.05, 5.0, n), share)


def draw_galaxy(rng: np.random.Generator, pixel_scale_arcsec: float = 0.168,
                covering_range: tuple[float, float] = COVERING_RANGE,
                delta_range: tuple[float, float] = DELTA_RANGE) -> Galaxy:
    """Draw one intrinsic galaxy; redshift chosen so its disk R₅₀ spans 3-10 pixels."""
    log_mass = rng.uniform(*LOG_MASS_RANGE)
    z = float("nan")
    while not 0.005 <= z <= 0.5:
        r50 = shen_late_type_r50_kpc(log_mass, rng)
        r50_pix = _log_uniform(rng, *R50_PIX_RANGE)
        z = redshift_for_size(r50, r50_pix * pixel_scale_arcsec)
    h = r50 / EXP_R50_PER_H
    hz = h * rng.uniform(0.08, 0.2)
    pitch = np.deg2rad(rng.uniform(10.0, 30.0))
    phase = rng.uniform(0.0, 2 * np.pi)
    tau0 = rng.uniform(0.0, 0.1) if rng.uniform() < 0.1 else float(_log_uniform(rng, 0.1, 10.0))
    knots = draw_knots(rng, h, hz, pitch, phase)
    t_bulge = rng.uniform(8.0, 12.0)
    return Galaxy(
        redshift=z, kpc_per_arcsec=kpc_per_arcsec(z), log_mass=log_mass,
        bulge_fraction=float(rng.beta(2.0, 2.5)), disk_h_kpc=h, disk_hz_kpc=hz,
        bulge_re_kpc=h * float(np.clip(rng.normal(0.22, 0.09), 0.08, 0.5)),
        bulge_q0=rng.uniform(0.5, 0.9), dust_h_kpc=h * rng.uniform(1.0, 1.6),
        dust_hz_kpc=hz * rng.uniform(0.3, 0.8), tau0=tau0, delta=rng.uniform(*delta_range),
        arm_pitch_rad=pitch, arm_phase_rad=phase, arm_amplitude=rng.uniform(0.0, 1.0),
        field_length_kpc=h * rng.uniform(0.2, 0.6), covering_target=rng.uniform(*covering_range),
        knot_mass_fraction=float(10.0 ** rng.uniform(-3.5, -2.5)), knots=knots,
        sps_bulge={"age": t_bulge, "tau": rng.uniform(0.3, 1.5), "log_z": rng.uniform(-0.1, 0.2),
                   "log_u": -2.5},
        sps_disk={"age": rng.uniform(5.0, 10.0), "tau": rng.uniform(3.0, 15.0),
                  "log_z": rng.uniform(-0.5, 0.0), "log_u": -2.5},
        sps_knots={"age": rng.uniform(0.005, 0.05), "tau": 10.0, "log_z": rng.uniform(-0.5, 0.0),
                   "log_u": rng.uniform(-3.0, -2.0)},
        field_seed=int(rng.integers(0, 2**31 - 1)),
    )


@dataclass(frozen=True)
class View:
    """A viewing direction: inclination (0 face-on, π/2 edge-on) and position angle, radians."""

    inclination_rad: float
    position_angle_rad: float


def draw_views(rng: np.random.Generator, n: int = 3) -> list[View]:
    """``n`` isotropic viewing directions (cos i ~ U(0, 1), PA ~ U(0, π))."""
    cos_i = rng.uniform(0.0, 1.0, n)
    pa = rng.uniform(0.0, np.pi, n)
    return [View(float(np.arccos(c)), float(p)) for c, p in zip(cos_i, pa, strict=True)]


__all__ = ["Galaxy", "Knots", "View", "draw_galaxy", "draw_views", "draw_knots", "kpc_per_arcsec",
           "redshift_for_size", "shen_late_type_r50_kpc", "LOG_MASS_RANGE", "DELTA_RANGE",
           "COVERING_RANGE"]
