"""Unit-flux images of the stellar components of a simulated galaxy in one view, drawn with galsim.

* disk: ``galsim.InclinedExponential`` (exponential in R, sech² in Z) of scale length h_R and
  height h_z, inclined by i about the x axis and rotated by the position angle;
* bulge: ``galsim.DeVaucouleurs`` (Sérsic n = 4) whose projected axis ratio is that of an oblate
  spheroid of intrinsic axis ratio q₀, q = √(cos² i + q₀² sin² i); galsim's ``half_light_radius``
  is the circularised one, r_e √q, so that r_e is the major-axis radius at every inclination;
  truncated at 8 r_e (unit flux inside) and drawn by real-space integration over the pixels
  (galsim's FFT of a sub-pixel Sérsic n = 4 needs 10⁴ × 10⁴ grids);
* knots: pixel-integrated Gaussians (:func:`sedinfer.images.dust3d.knot_images`).

All images are integrated over the pixels (galsim's default pixel convolution; FFT ringing below
zero, ~1e-9 of the flux, is clipped), PSF-free, and have
the galaxy centre at pixel (H // 2, W // 2); each component is normalised to unit flux over the
plane (the stamp may hold a little less).
"""

from __future__ import annotations

import numpy as np

from sedinfer.images.dust3d import knot_images
from sedinfer.images.galaxies import Galaxy, View

BULGE_TRUNC_RE = 8.0
"""The bulge profile is truncated at this many effective radii (keeps galsim's drawing fast)."""


def _draw(profile, shape: tuple[int, int], pixel_scale_arcsec: float, method: str = "auto") -> np.ndarray:
    import galsim

    image = galsim.ImageD(shape[1], shape[0], scale=pixel_scale_arcsec)
    profile.drawImage(image=image, use_true_center=False, method=method)
    return np.clip(image.array, 0.0, None)     # FFT drawing rings at the 1e-9 level below zero


def component_images(gal: Galaxy, view: View, shape: tuple[int, int], pixel_scale_arcsec: float
                     ) -> dict[str, np.ndarray]:
    """``{"bulge": (H, W), "disk": (H, W), "knots": (K, H, W)}``, each of unit total flux."""
    import galsim

    arcsec = 1.0 / gal.kpc_per_arcsec
    inc, pa = view.inclination_rad, view.position_angle_rad
    gsp = galsim.GSParams(maximum_fft_size=8192)
    disk = galsim.InclinedExponential(inc * galsim.radians, scale_radius=gal.disk_h_kpc * arcsec,
                                      scale_height=gal.disk_hz_kpc * arcsec, gsparams=gsp)
    q = float(np.sqrt(np.cos(inc) ** 2 + gal.bulge_q0**2 * np.sin(inc) ** 2))
    re_arcsec = gal.bulge_re_kpc * arcsec * np.sqrt(q)
    bulge = galsim.DeVaucouleurs(half_light_radius=re_arcsec, trunc=BULGE_TRUNC_RE * re_arcsec,
                                 gsparams=galsim.GSParams(realspace_relerr=1e-3))
    bulge = bulge.shear(q=q, beta=0.0 * galsim.radians)
    rot = pa * galsim.radians
    kpc_per_pixel = pixel_scale_arcsec * gal.kpc_per_arcsec
    return {"bulge": _draw(bulge.rotate(rot), shape, pixel_scale_arcsec, "real_space"),
            "disk": _draw(disk.rotate(rot), shape, pixel_scale_arcsec),
            "knots": knot_images(gal, view, shape, kpc_per_pixel)}


__all__ = ["component_images"]
