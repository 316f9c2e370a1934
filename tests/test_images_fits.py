"""FITS cubes of issue 18 §3 and §8: round trips, cut-outs, masks and clear errors on bad input."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from astropy.io import fits

from sedinfer.images.errors import ImageError
from sedinfer.images.fits_io import read_cube, write_cube_fits, write_view_fits
from sedinfer.images.instrument import hsc_instrument
from sedinfer.images.simulate import SimulationConfig, simulate_galaxies

BANDS = ("hsc_g", "hsc_r", "hsc_i", "hsc_z", "hsc_y")


def _galaxy_cube(size: int = 64, sigma: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.indices((size, size)) - size // 2
    source = 200.0 * np.exp(-(x**2 + y**2) / (2 * 3.0**2))
    image = source[None] * np.linspace(1, 2, 5)[:, None, None] + sigma * rng.standard_normal((5, size, size))
    return image, np.full_like(image, sigma**2)


def _fake_seds(theta: np.ndarray) -> np.ndarray:
    return np.tile(10 ** (theta[:, 1:2] - 4.0), (1, 5))


def test_cube_round_trip(tmp_path):
    image, var = _galaxy_cube()
    path = write_cube_fits(tmp_path / "a.fits", image, var, BANDS, {"OBJECT": "test"})
    cube = read_cube(path, BANDS)
    np.testing.assert_allclose(cube.image, image.astype(np.float32))
    np.testing.assert_allclose(cube.inv_var, 1.0 / var, rtol=1e-6)
    assert cube.bands == BANDS and cube.header["OBJECT"] == "test" and not cube.variance_estimated
    assert read_cube(path).bands == BANDS                      # bands from the header


def test_simulated_view_round_trip(tmp_path):
    inst = hsc_instrument()
    (view,) = simulate_galaxies([0], 0, inst, _fake_seds, SimulationConfig(n_views=1))
    path = write_view_fits(tmp_path / f"{view.name}.fits", view, psf=inst.psf.numpy())
    with fits.open(path) as hdul:
        h = hdul[0].header
        assert [h[f"BAND{i}"] for i in range(1, 6)] == list(BANDS)
        assert h["DELTA"] == pytest.approx(view.galaxy.delta)
        assert h["COVFRAC"] == pytest.approx(view.covering_fraction)
        assert h["A0MEAN"] == pytest.approx(view.a0_mean_mag)
        assert h["FLUX3"] == pytest.approx(view.sed_njy[2])
        np.testing.assert_allclose(hdul["HOST"].data, view.host, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(hdul["DUST"].data, view.transmission, rtol=1e-6)
        assert hdul["SCI"].data.shape == (5, 64, 64) and hdul["PSF"].data.shape == (5, 25, 25)
    cube = read_cube(path, BANDS)
    np.testing.assert_allclose(cube.image, view.image, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(cube.psf, inst.psf.numpy(), rtol=1e-5, atol=1e-9)


def test_bad_psf_hdu(tmp_path):
    image, var = _galaxy_cube()
    write_cube_fits(tmp_path / "p.fits", image, var, BANDS, psf=np.ones((4, 5, 5)))
    with pytest.raises(ImageError, match="PSF HDU must be"):
        read_cube(tmp_path / "p.fits", BANDS)


def test_one_hdu_per_band_and_variance_planes(tmp_path):
    image, var = _galaxy_cube()
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(image[i], name=b) for i, b in enumerate(BANDS)]
    hdus += [fits.ImageHDU(var[i], name=f"VAR_{b}") for i, b in enumerate(BANDS)]
    fits.HDUList(hdus).writeto(tmp_path / "planes.fits")
    cube = read_cube(tmp_path / "planes.fits", BANDS)
    np.testing.assert_allclose(cube.image, image)
    np.testing.assert_allclose(cube.inv_var, 1 / var)


def test_larger_image_is_cut_around_the_centre(tmp_path):
    image, var = _galaxy_cube(size=81)
    image[:, 40, 40] = 1e6                                       # the centre pixel of 81 x 81
    write_cube_fits(tmp_path / "big.fits", image, var, BANDS)
    cube = read_cube(tmp_path / "big.fits", BANDS)
    assert cube.image.shape == (5, 64, 64)
    assert cube.image[0, 32, 32] == pytest.approx(1e6)


def test_missing_variance_is_estimated_from_the_pixels(tmp_path):
    image, _ = _galaxy_cube(sigma=2.0)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, name="SCI")]).writeto(tmp_path / "nv.fits")
    cube = read_cube(tmp_path / "nv.fits", BANDS)
    assert cube.variance_estimated
    np.testing.assert_allclose(1 / cube.inv_var[:, 0, 0], 4.0, rtol=0.15)


def test_nan_pixels_are_masked(tmp_path):
    image, var = _galaxy_cube()
    image[1, 10, 12] = np.nan
    var[2, 5, 5] = np.inf
    write_cube_fits(tmp_path / "nan.fits", image, var, BANDS)
    cube = read_cube(tmp_path / "nan.fits", BANDS)
    assert cube.n_masked == 2 and cube.inv_var[1, 10, 12] == 0 and cube.inv_var[2, 5, 5] == 0
    assert np.isfinite(cube.image).all() and cube.image[1, 10, 12] == 0


@pytest.mark.parametrize(("edit", "match"), [
    ("bands", "4 band images but 5 bands"),
    ("small", "needs at least 64 x 64"),
    ("zero_var", "zero or negative variance"),
    ("neg_var", "zero or negative variance"),
    ("empty", "no source detected"),
    ("header_bands", "differ from the bands"),
])
def test_bad_input_errors(tmp_path, edit, match):
    image, var = _galaxy_cube(size=40 if edit == "small" else 64)
    bands = BANDS
    if edit == "bands":
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image[:4], name="SCI")]).writeto(tmp_path / "x.fits")
    else:
        if edit == "zero_var":
            var[0, 3, 3] = 0.0
        if edit == "neg_var":
            var[4, 30, 30] = -1.0
        if edit == "empty":
            image = np.random.default_rng(1).standard_normal(image.shape)
        write_cube_fits(tmp_path / "x.fits", image, var, BANDS)
        if edit == "header_bands":
            bands = ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0")
    with pytest.raises(ImageError, match=match):
        read_cube(tmp_path / "x.fits", bands)


def test_not_fits_and_missing_file(tmp_path):
    (tmp_path / "t.fits").write_text("not fits")
    with pytest.raises(ImageError, match="readable FITS"):
        read_cube(tmp_path / "t.fits")
    with pytest.raises(ImageError, match="no FITS file"):
        read_cube(tmp_path / "missing.fits")


def test_simulate_command(tmp_path, monkeypatch):
    from sedinfer.images import cli, simulate

    monkeypatch.setattr(simulate, "sps_sed_function", lambda filters: _fake_seds)
    parser = cli.add_simulate_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--n", "1", "--seed", "3", "--out", str(tmp_path / "sim"), "--views", "2",
                              "--variant", "both", "--pairs", str(tmp_path / "pairs.npz")])
    assert cli.run_simulate(args) == 0
    files = sorted(p.name for p in (tmp_path / "sim").glob("*.fits"))
    assert files == ["gal_s3_000000_v0.fits", "gal_s3_000000_v0_mono.fits",
                     "gal_s3_000000_v1.fits", "gal_s3_000000_v1_mono.fits"]
    pairs = np.load(tmp_path / "pairs.npz")
    assert pairs["host"].shape == (2, 64, 64) and pairs["dust"].shape == (2, 64, 64)
    manifest = (tmp_path / "sim" / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 5 and manifest[0].startswith("file,seed,index,view,variant")
