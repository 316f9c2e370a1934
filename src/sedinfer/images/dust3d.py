"""Transmission images D of a simulated galaxy from absorption along each line of sight.

Stars and dust are 3D distributions in the disk frame (X, Y in the disk plane, Z its normal).
A view of inclination i and position angle PA maps an image point (x', y') (x' the projected
major axis) and depth s (towards the observer) to X = x', Y = y' cos i - s sin i,
Z = y' sin i + s cos i, the convention of galsim's ``InclinedExponential``.

For each pixel the line of sight is cut into cells (uniform in s, plus cells spaced geometrically
in height away from the disk mid-plane crossing, so that a thin dust layer is resolved at every
inclination); the dust's vertical profile is averaged exactly over each cell. In a cell of
optical depth τ_c the mean transmission of uniformly mixed stars and dust is (1 - e^-τ_c)/τ_c,
times e^-τ of everything in front. A component c of emissivity j_c is transmitted by

    D_c = Σ_cells j_c Δs T_cell / Σ_cells j_c Δs

(with a uniform emissivity 1e-6 × max j_c added, so that D is defined where there is no light).
The stellar components: the sech² exponential disk of galsim's InclinedExponential, an oblate
Hernquist (1990) bulge (projected ≈ de Vaucouleurs, r_e = 1.8153 a), and knots. The dust: an
exponential disk exp(-R/h_dR - |Z|/h_dz) with a patchiness mask M(X, Y) in [0, 1] (spiral arms +
Gaussian random field, thresholded), and one Gaussian clump per knot, concentric with it and of
the same width, so a knot's light is transmitted by (1 - e^-T)/T of its clump column T (exact for
a Gaussian source mixed with a Gaussian cloud of equal width) and by everything in front of it.
Clumps in front of diffuse light act as thin screens at the knot's depth.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.special import erf

from sedinfer.images.galaxies import Galaxy, View

N_UNIFORM = 48
N_MIDPLANE = 48
PLANE_GRID = 128


def _transmission_mean(tau: np.ndarray) -> np.ndarray:
    """(1 - e^-τ)/τ, 1 at τ = 0."""
    out = np.ones_like(tau)
    big = tau > 1e-8
    out[big] = -np.expm1(-tau[big]) / tau[big]
    return out


def los_extent_kpc(gal: Galaxy) -> float:
    """Half-length of the lines of sight and of the dust plane grid, kpc."""
    return 6.0 * max(gal.disk_h_kpc, gal.dust_h_kpc)


def patchiness_field(gal: Galaxy) -> tuple[np.ndarray, float]:
    """Unthresholded dust field on the disk-plane grid (PLANE_GRID², ±extent kpc): a unit-variance
    Gaussian random field mixed with m = 2 logarithmic arms. Returns (field, extent_kpc)."""
    ext = los_extent_kpc(gal)
    n = PLANE_GRID
    rng = np.random.default_rng(gal.field_seed)
    k = np.fft.fftfreq(n, d=2 * ext / n) * 2 * np.pi
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    white = np.fft.fft2(rng.standard_normal((n, n)))
    g = np.real(np.fft.ifft2(white * np.exp(-0.5 * k2 * gal.field_length_kpc**2)))
    g = (g - g.mean()) / max(g.std(), 1e-12)
    x = (np.arange(n) + 0.5) / n * 2 * ext - ext
    xx, yy = np.meshgrid(x, x, indexing="xy")
    r = np.hypot(xx, yy).clip(1e-3 * gal.disk_h_kpc)
    phi = np.arctan2(yy, xx)
    arms = np.sqrt(2.0) * np.cos(2 * (phi - gal.arm_phase_rad - np.log(r / gal.disk_h_kpc)
                                      / np.tan(gal.arm_pitch_rad)))
    a = gal.arm_amplitude
    return np.sqrt(1 - a**2) * g + a * arms, ext


def threshold_mask(field: np.ndarray, threshold: float, width: float = 0.3) -> np.ndarray:
    """Mask in [0, 1]: 0 below ``threshold``, rising linearly to 1 over ``width`` (no dust at all
    where the field is below the threshold, soft edges above)."""
    return np.clip((field - threshold) / width, 0.0, 1.0)


def _plane_lookup(values: np.ndarray, ext: float, xk: np.ndarray, yk: np.ndarray) -> np.ndarray:
    n = values.shape[0]
    col = (xk + ext) / (2 * ext) * n - 0.5
    row = (yk + ext) / (2 * ext) * n - 0.5
    return map_coordinates(values, [row.ravel(), col.ravel()], order=1, mode="nearest").reshape(xk.shape)


def bulge_density(x: np.ndarray, y: np.ndarray, z: np.ndarray, gal: Galaxy) -> np.ndarray:
    """Oblate Hernquist emissivity (arbitrary normalisation)."""
    a = gal.bulge_re_kpc / 1.8153
    m = np.sqrt(x**2 + y**2 + (z / gal.bulge_q0) ** 2 + (0.02 * a) ** 2)
    return 1.0 / (m * (m + a) ** 3)


def disk_density(x: np.ndarray, y: np.ndarray, z: np.ndarray, gal: Galaxy) -> np.ndarray:
    """sech² exponential disk emissivity (arbitrary normalisation)."""
    return np.exp(-np.hypot(x, y) / gal.disk_h_kpc) / np.cosh(z / gal.disk_hz_kpc) ** 2


def _mean_exp_abs(z_lo: np.ndarray, z_hi: np.ndarray, h: float) -> np.ndarray:
    """Mean of exp(-|Z|/h) over [z_lo, z_hi] (exact; the midpoint value for very short cells)."""
    def antiderivative(z):
        return np.sign(z) * h * -np.expm1(-np.abs(z) / h)

    width = z_hi - z_lo
    short = np.abs(width) < 1e-6 * h
    mean = (antiderivative(z_hi) - antiderivative(z_lo)) / np.where(short, 1.0, width)
    return np.where(short, np.exp(-np.abs(0.5 * (z_lo + z_hi)) / h), mean)


def smooth_dust_opacity(x, y, z_lo, z_hi, gal: Galaxy, mask_plane: np.ndarray, ext: float) -> np.ndarray:
    """Mean optical depth per kpc at λ₀ of the smooth, patchy dust disk in cells whose mid-points
    are at (x, y) in the disk plane and which span heights z_lo … z_hi (the vertical profile is
    averaged exactly, so a dust layer thinner than a cell keeps its column)."""
    kappa0 = gal.tau0 / (2.0 * gal.dust_hz_kpc)
    vertical = _mean_exp_abs(z_lo, z_hi, gal.dust_hz_kpc)
    return kappa0 * np.exp(-np.hypot(x, y) / gal.dust_h_kpc) * vertical * _plane_lookup(mask_plane, ext, x, y)


def image_coordinates(shape: tuple[int, int], kpc_per_pixel: float, view: View
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(x', y') in kpc of the pixel centres, x' along the projected major axis; the galaxy
    centre at pixel (H // 2, W // 2)."""
    h, w = shape
    y, x = np.meshgrid((np.arange(h) - h // 2) * kpc_per_pixel, (np.arange(w) - w // 2) * kpc_per_pixel,
                       indexing="ij")
    c, s = np.cos(view.position_angle_rad), np.sin(view.position_angle_rad)
    return x * c + y * s, -x * s + y * c


def project_knots(gal: Galaxy, view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Knot centres in the image plane (x, y) kpc (not rotated to the major axis) and depth s."""
    ci, si = np.cos(view.inclination_rad), np.sin(view.inclination_rad)
    X, Y, Z = gal.knots.xyz_kpc.T
    xp, yp, s = X, Y * ci + Z * si, -Y * si + Z * ci
    c, sn = np.cos(view.position_angle_rad), np.sin(view.position_angle_rad)
    return xp * c - yp * sn, xp * sn + yp * c, s


def knot_images(gal: Galaxy, view: View, shape: tuple[int, int], kpc_per_pixel: float) -> np.ndarray:
    """Pixel-integrated Gaussian image of each knot, unit sum over the plane: (K, H, W)."""
    kx, ky, _ = project_knots(gal, view)
    sig = gal.knots.sigma_kpc[:, None] * np.sqrt(2.0)
    h, w = shape
    ex = (np.arange(w + 1) - w // 2 - 0.5) * kpc_per_pixel
    ey = (np.arange(h + 1) - h // 2 - 0.5) * kpc_per_pixel
    gx = np.diff(erf((ex[None] - kx[:, None]) / sig), axis=1) / 2.0
    gy = np.diff(erf((ey[None] - ky[:, None]) / sig), axis=1) / 2.0
    return gy[:, :, None] * gx[:, None, :]


def _los_cells(xp: np.ndarray, yp: np.ndarray, gal: Galaxy, view: View, ext: float):
    """Cell midpoints s (H, W, N) and lengths, uniform cells plus cells around the mid-plane."""
    ci, si = np.cos(view.inclination_rad), np.sin(view.inclination_rad)
    uniform = np.broadcast_to(np.linspace(-ext, ext, N_UNIFORM + 1), xp.shape + (N_UNIFORM + 1,))
    zmax = 4.0 * gal.disk_hz_kpc
    if ci > 1e-3:
        s0 = -yp * si / ci
        half = np.geomspace(1e-3 * min(gal.dust_hz_kpc, gal.disk_hz_kpc), zmax, N_MIDPLANE // 2)
        dz = np.concatenate([-half[::-1], [0.0], half]) / ci        # geometric away from Z = 0
        refined = np.clip(s0[..., None] + dz, -ext, ext)
    else:
        refined = np.broadcast_to(np.linspace(-ext, ext, N_MIDPLANE + 1), xp.shape + (N_MIDPLANE + 1,))
    edges = np.sort(np.concatenate([uniform, refined], -1), -1)
    return 0.5 * (edges[..., 1:] + edges[..., :-1]), np.diff(edges, axis=-1), edges


def view_transmission(gal: Galaxy, view: View, shape: tuple[int, int], kpc_per_pixel: float,
                      mask_plane: np.ndarray, ext: float, knots: np.ndarray) -> dict[str, np.ndarray]:
    """Transmissions at λ₀ of the bulge, disk and each knot: ``{"bulge": (H, W), "disk": (H, W),
    "knots": (K, H, W)}``, and the total column ``"tau_column"`` (H, W) along each line of sight."""
    xp, yp = image_coordinates(shape, kpc_per_pixel, view)
    s, ds, edges = _los_cells(xp, yp, gal, view, ext)
    ci, si = np.cos(view.inclination_rad), np.sin(view.inclination_rad)
    X = np.broadcast_to(xp[..., None], s.shape)
    Y = yp[..., None] * ci - s * si
    Z = yp[..., None] * si + s * ci
    z_edges = yp[..., None] * si + edges * ci
    tau_cell = smooth_dust_opacity(X, Y, z_edges[..., :-1], z_edges[..., 1:], gal, mask_plane, ext) * ds
    cum = np.cumsum(tau_cell[..., ::-1], -1)[..., ::-1]                     # this cell and nearer ones
    ahead = cum - tau_cell                                                  # cells nearer the observer
    # knot clumps: thin screens at the knot's depth, column T_k(pixel) = τ_k × its projected Gaussian
    kx, ky, ks = project_knots(gal, view)
    sig = gal.knots.sigma_kpc
    area = knots * (2 * np.pi * sig[:, None, None] ** 2) / kpc_per_pixel**2   # peak-normalised
    clump_col = gal.knots.tau[:, None, None] * area                           # (K, H, W)
    behind = s[None] < ks[:, None, None, None]                                # (K, H, W, N)
    ahead = ahead + np.einsum("khw,khwn->hwn", clump_col, behind)
    t_cell = np.exp(-ahead) * _transmission_mean(tau_cell)
    out = {}
    for name, dens in (("bulge", bulge_density), ("disk", disk_density)):
        rho = dens(X, Y, Z, gal)
        j, floor = rho * ds, 1e-6 * rho.max() * ds
        out[name] = ((j + floor) * t_cell).sum(-1) / (j + floor).sum(-1)
    # each knot: its own clump (mixed), the diffuse dust and the clumps in front of it
    smooth_ahead = np.stack([_interp_los(s, cum, sk) for sk in ks])
    other = np.einsum("jhw,kj->khw", clump_col, (ks[None, :] > ks[:, None]).astype(float))
    out["knots"] = _transmission_mean(clump_col) * np.exp(-smooth_ahead - other)
    out["tau_column"] = tau_cell.sum(-1) + clump_col.sum(0)
    return out


def _interp_los(s: np.ndarray, cum_ahead: np.ndarray, s_k: float) -> np.ndarray:
    """Smooth optical depth in front of depth ``s_k`` for every pixel, (H, W)."""
    idx = (s < s_k).sum(-1).clip(0, s.shape[-1] - 1)
    return np.take_along_axis(cum_ahead, idx[..., None], -1)[..., 0]


__all__ = ["patchiness_field", "threshold_mask", "view_transmission", "knot_images",
           "image_coordinates", "project_knots", "los_extent_kpc", "bulge_density", "disk_density"]
