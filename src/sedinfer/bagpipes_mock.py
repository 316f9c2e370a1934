"""Mock photometric catalogs simulated by bagpipes (Carnall et al. 2018), a different SPS code.

They test what happens when sedinfer's forward model is *not* the one that made the data
(misspecification): the truth is bagpipes' own stellar mass (``model_galaxy.sfh.stellar_mass``,
the BC03 surviving mass), SFR (``sfh.sfr``, averaged over bagpipes' ``config.sfr_timescale`` =
100 Myr) and redshift.

The galaxies: a delayed-τ SFH plus a burst, Calzetti or Charlot & Fall dust (bagpipes "CF00"),
Cloudy nebular lines and continuum at log U, one metallicity; z and formed mass from the same
parent as :class:`sedinfer.population.mock.MockPopulation` (p(z, log M) ∝ dV/dz · φ(log M)); the
other parameters from :data:`BAGPIPES_PRIOR`. Photometry through sedinfer's filter curves (written
as files for bagpipes), in bagpipes' own cosmology (FlatΛCDM, H0 = 70, Ωm = 0.3); noise from a
sedinfer noise model (default: SDSS depths), kept as drawn (negative fluxes allowed); a survey
selection (default r < 19.8 and S/N > 1 in every band, as the Table-2 mock).

bagpipes costs ~10 ms per galaxy, too much for the ~20 parent galaxies drawn per selected one. So
parents are first screened with sedinfer's matched model (delayed+burst, Calzetti, nebular) at
``screen_margin`` (1 mag) beyond the limit: only a galaxy that bagpipes would put ≥ 1 mag brighter
than sedinfer could be lost, far more than the codes differ (≤ 0.1 mag, docs/bagpipes_crosscheck.md).
The selection itself is then made on bagpipes' noisy photometry.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sedinfer.errors import ParameterError
from sedinfer.units import maggies_to_nmgy, ujy_to_maggies

#: ranges of the non-(z, mass) parameters: uniform unless said (age and τ in Gyr)
BAGPIPES_PRIOR = {
    "log_z": (-1.0, 0.3),           # log10 Z/Z☉, uniform
    "age_frac": (0.1, 0.98),        # delayed-τ age as a fraction of the age of the Universe at z
    "log_tau": (-1.0, 1.0),         # log10 τ / Gyr
    "f_burst": (0.0, 0.2),          # burst share of the formed mass
    "log_t_burst": (-2.0, 0.3),     # log10 burst age / Gyr (below the delayed-τ age)
    "av": (0.0, 1.5),               # V-band attenuation (Calzetti A_V; CF: A_V of the ISM)
    "log_u": (-3.5, -2.0),          # ionisation parameter
}
DUST = ("calzetti", "cf")
#: bagpipes "CF00" (bagpipes 1.x has no type "CF"): birth clouds η = 2 times A_V for ages < t_bc =
#: 10 Myr, power-law index n = 0.7
CF_ETA, CF_N, T_BC_GYR = 2.0, 0.7, 0.01


def import_bagpipes() -> Any:
    """bagpipes, imported without its start-up chatter."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import bagpipes
    return bagpipes


def bagpipes_cosmology() -> Any:
    """The cosmology bagpipes uses (``bagpipes.config.cosmo``)."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=70.0, Om0=0.3)


def write_filter_files(filters: Any, directory: str | Path) -> list[str]:
    """sedinfer's filter curves as two-column (λ [Å], transmission) files for bagpipes; the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in filters:
        path = directory / f"{c.name}.dat"
        np.savetxt(path, np.column_stack([c.wave_aa, c.trans]))
        paths.append(str(path))
    return paths


def draw_parameters(n: int, rng: np.random.Generator, cosmo: Any, z_range=(0.01, 0.6),
                    log_mass_range=(8.0, 12.5)) -> dict[str, np.ndarray]:
    """n parent galaxies: z, log formed mass, and :data:`BAGPIPES_PRIOR` draws (arrays (n,))."""
    from sedinfer.population.mock import MockPopulation

    parent = MockPopulation(z_range=tuple(z_range), log_mass_range=tuple(log_mass_range))
    z, log_mass = parent.sample_redshift_mass(cosmo, n, rng)
    out = {"redshift": z, "log_mass": log_mass}
    for name, (lo, hi) in BAGPIPES_PRIOR.items():
        out[name] = rng.uniform(lo, hi, n)
    out["age"] = out.pop("age_frac") * cosmo.age(out["redshift"]).value
    out["tau"] = 10 ** out.pop("log_tau")
    out["t_burst"] = np.minimum(10 ** out.pop("log_t_burst"), 0.9 * out["age"])
    return out


def components(p: dict[str, np.ndarray], i: int, dust: str) -> dict[str, Any]:
    """bagpipes ``model_components`` of galaxy i of the draws ``p``."""
    mass, f, metal = 10 ** p["log_mass"][i], p["f_burst"][i], 10 ** p["log_z"][i]
    comp = {"redshift": float(p["redshift"][i]), "t_bc": T_BC_GYR,
            "delayed": {"age": float(p["age"][i]), "tau": float(p["tau"][i]),
                        "massformed": math.log10((1 - f) * mass), "metallicity": metal},
            "nebular": {"logU": float(p["log_u"][i])}}
    if f > 0:
        comp["burst"] = {"age": float(p["t_burst"][i]), "massformed": math.log10(f * mass),
                         "metallicity": metal}
    if dust == "calzetti":
        comp["dust"] = {"type": "Calzetti", "Av": float(p["av"][i])}
    else:
        comp["dust"] = {"type": "CF00", "Av": float(p["av"][i]), "eta": CF_ETA, "n": CF_N}
    return comp


def _screen(p: dict[str, np.ndarray], filters: Any, band: int, cosmo: Any) -> np.ndarray:
    """Noiseless sedinfer AB magnitudes in one band of the matched model (delayed+burst, Calzetti)."""
    from sedinfer.sps.model import SPSModel

    model = SPSModel(sfh="delayed+burst", dust="calzetti", nebular=True, dust_emission=False, cosmology=cosmo)
    cols = {"redshift": p["redshift"], "log_mass": p["log_mass"], "log_z": p["log_z"], "age": p["age"],
            "tau": p["tau"], "f_burst": p["f_burst"], "t_burst": p["t_burst"], "av": p["av"],
            "log_u": p["log_u"]}
    theta = torch.as_tensor(np.column_stack([cols[k] for k in model.param_names]), dtype=model.dtype)
    with torch.no_grad():
        return model.photometry(theta, filters, units="mag")[:, band].double().numpy()


def make_bagpipes_catalog(n_galaxies: int, filters: Any = None, *, dust: str = "calzetti", seed: int = 0,
                          noise: Any = None, limit_band: str | None = "sdss_r0", limit_mag: float = 19.8,
                          min_snr: float = 1.0, screen_margin: float = 1.0, chunk: int = 20_000,
                          progress: bool = False):
    """An astropy Table of ``n_galaxies`` selected bagpipes galaxies: ``flux_<band>``,
    ``flux_err_<band>`` (nanomaggies, noisy as drawn), ``flux_true_<band>``, ``true_redshift``,
    ``true_log_mstar``, ``true_log_sfr_100myr`` and the input parameters (``bp_<name>``)."""
    from astropy.table import Table
    from tqdm.auto import tqdm

    from sedinfer.filters import Filters
    from sedinfer.noise import default_noise_model

    if dust not in DUST:
        raise ParameterError(f"dust must be one of {DUST}, got {dust!r}")
    filters = filters if isinstance(filters, Filters) else Filters(filters or "sdss")
    bands = tuple(filters.names)
    if limit_band is not None and limit_band not in bands:
        raise ParameterError(f"limit_band {limit_band!r} is not one of the filters {list(bands)}")
    noise = noise or default_noise_model(bands)
    cosmo, pipes = bagpipes_cosmology(), import_bagpipes()
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    j = bands.index(limit_band) if limit_band is not None else 0
    parts, n_parent, n_screened, n_kept = [], 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=n_galaxies, desc="bagpipes mock",
                                                    disable=None if progress else True) as bar:
        paths = write_filter_files(filters, tmp)
        galaxy = None
        while n_kept < n_galaxies:
            p = draw_parameters(chunk, rng, cosmo)
            n_parent += chunk
            todo = np.arange(chunk)
            if limit_band is not None:
                todo = np.flatnonzero(_screen(p, filters, j, cosmo) < limit_mag + screen_margin)
            n_screened += todo.size
            flux_ujy, mstar, sfr = np.empty((todo.size, len(bands))), np.empty(todo.size), np.empty(todo.size)
            for k, i in enumerate(todo):
                comp = components(p, i, dust)
                if galaxy is None:
                    galaxy = pipes.model_galaxy(comp, filt_list=paths, phot_units="mujy")
                else:
                    galaxy.update(comp)
                flux_ujy[k], mstar[k], sfr[k] = galaxy.photometry, galaxy.sfh.stellar_mass, galaxy.sfh.sfr
            flux = torch.as_tensor(ujy_to_maggies(flux_ujy), dtype=torch.float64)
            noisy, sigma = noise.add_noise(flux, gen, redraw_negative=False)
            noisy, sigma = noisy.double().numpy(), sigma.double().numpy()
            keep = (noisy > min_snr * sigma).all(1)
            if limit_band is not None:
                keep &= -2.5 * np.log10(np.clip(noisy[:, j], 1e-300, None)) < limit_mag
            sel = {name: v[todo][keep] for name, v in p.items()}
            parts.append((sel, flux.numpy()[keep], noisy[keep], sigma[keep], mstar[keep], sfr[keep]))
            n_kept += int(keep.sum())
            bar.update(min(int(keep.sum()), n_galaxies - bar.n))
    params = {name: np.concatenate([q[0][name] for q in parts])[:n_galaxies] for name in parts[0][0]}
    flux, noisy, sigma, mstar, sfr = (np.concatenate([q[i] for q in parts])[:n_galaxies] for i in range(1, 6))
    from importlib.metadata import version

    t = Table(meta={"simulator": f"bagpipes {version('bagpipes')}", "dust": dust,
                    "seed": seed, "n_parent": n_parent, "n_screened": n_screened,
                    "selection": f"{limit_band} < {limit_mag}, S/N > {min_snr}",
                    "screen_margin_mag": screen_margin})
    t["id"] = np.arange(len(mstar))
    for k, b in enumerate(bands):
        t[f"flux_{b}"] = maggies_to_nmgy(noisy[:, k])
        t[f"flux_err_{b}"] = maggies_to_nmgy(sigma[:, k])
        t[f"flux_true_{b}"] = maggies_to_nmgy(flux[:, k])
    t["true_redshift"] = params["redshift"]
    t["true_log_mstar"] = mstar
    t["true_log_sfr_100myr"] = np.log10(np.clip(sfr, 1e-30, None))
    for name in ("log_mass", "log_z", "age", "tau", "f_burst", "t_burst", "av", "log_u"):
        t[f"bp_{name}"] = params[name]
    return t


__all__ = ["BAGPIPES_PRIOR", "DUST", "bagpipes_cosmology", "components", "draw_parameters", "import_bagpipes",
           "make_bagpipes_catalog", "write_filter_files"]
