"""Multi-band galaxy images with dust: the image model and simulated galaxies (issue 18 §1-2).

Siegel & Melchior, "Galaxy Dust Maps with Conditional Score Models": a cube Y (B, H, W) is
Y_b = PSF_b ⊛ [F_b S D^K_b(δ)] + noise. Modules, one concept each:

* :mod:`~sedinfer.images.curve` — k(λ, δ)/k(λ₀, δ) per band (Calzetti / Noll / Kriek & Conroy);
* :mod:`~sedinfer.images.psf` — Gaussian and Moffat PSFs, differentiable FFT convolution;
* :mod:`~sedinfer.images.instrument` — bands, pixel scale, PSFs and noise (HSC defaults);
* :mod:`~sedinfer.images.scene` — Eqs. 6-8 as pure tensor functions and :class:`ImageModel`;
* :mod:`~sedinfer.images.galaxies`, :mod:`~sedinfer.images.hosts`, :mod:`~sedinfer.images.seds`,
  :mod:`~sedinfer.images.dust3d`, :mod:`~sedinfer.images.simulate` — simulated galaxies;
* :mod:`~sedinfer.images.sde`, :mod:`~sedinfer.images.unet`, :mod:`~sedinfer.images.prior` — score
  priors s(S), s(D), s(D | S) (issue 18 §3); :mod:`~sedinfer.images.train_prior` — their training;
* :mod:`~sedinfer.images.fit` — the MAP fit of Eq. 3 (issue 18 §4);
* :mod:`~sedinfer.images.fits_io` — FITS cubes in and out; :mod:`~sedinfer.images.cli` — the
  ``dustmap simulate`` and ``dustmap fit`` commands' arguments and runners;
* :mod:`~sedinfer.images.runner` — fitting many cutouts in resumable (Dask) chunks (issue 18 §6-8):
  :mod:`~sedinfer.images.inputs` (finding and reading the cubes, why an input cannot be used),
  :mod:`~sedinfer.images.prior_choice` (``--prior`` / ``--prior-dir``, weight hashes),
  :mod:`~sedinfer.images.settings` (:class:`FitSettings`), :mod:`~sedinfer.images.shipped` (the
  package's prior and demo folders), :mod:`~sedinfer.images.chunk` (fitting one chunk),
  :mod:`~sedinfer.images.output` (the ``.dustmap.fits`` / JSON outputs) and
  :mod:`~sedinfer.images.figure` (the per-galaxy figure);
* :mod:`~sedinfer.images.validation` — recovery metrics on simulated galaxies, their bins and a
  per-galaxy result store (issue 18 §5); :mod:`~sedinfer.images.validation_run` (the resumable
  run) and :mod:`~sedinfer.images.validation_figures` (Figs. 2-3).

Nothing heavy is imported here (galsim and astropy load on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "ImageModel": "sedinfer.images.scene",
    "render_scene": "sedinfer.images.scene",
    "Instrument": "sedinfer.images.instrument",
    "hsc_instrument": "sedinfer.images.instrument",
    "simulate_galaxies": "sedinfer.images.simulate",
    "simulate_pairs": "sedinfer.images.simulate",
    "SimulationConfig": "sedinfer.images.simulate",
    "read_cube": "sedinfer.images.fits_io",
    "write_cube_fits": "sedinfer.images.fits_io",
    "ImageError": "sedinfer.images.errors",
    "VESDE": "sedinfer.images.sde",
    "HostPrior": "sedinfer.images.prior",
    "DustPrior": "sedinfer.images.prior",
    "ConditionalDustPrior": "sedinfer.images.prior",
    "build_prior": "sedinfer.images.prior",
    "load_prior": "sedinfer.images.prior",
    "PriorTrainConfig": "sedinfer.images.train_prior",
    "train_prior": "sedinfer.images.train_prior",
    "FitConfig": "sedinfer.images.fit",
    "FitResult": "sedinfer.images.fit",
    "fit_map": "sedinfer.images.fit",
    "run_dustmap_fit": "sedinfer.images.runner",
    "FitSettings": "sedinfer.images.settings",
    "PriorSpec": "sedinfer.images.prior_choice",
    "resolve_priors": "sedinfer.images.prior_choice",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), "load" if name == "load_prior" else name)
    raise AttributeError(f"module 'sedinfer.images' has no attribute {name!r}")
