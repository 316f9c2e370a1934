"""SDSS spec files: the grid, masking, normalisation and bad input (real DR18 files from ppxf)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from sedinfer.spectra import SpectrumFileError, read_sdss, sdss_instrument, sdss_wave_aa
from sedinfer.spectra.batch import NORM_WINDOW_REST_AA
from sedinfer.spectra.instrument import SDSS_NPIX


def _ppxf_dir() -> Path:
    """The two SDSS DR18 spec files shipped in the ppxf wheel (a test-only dependency: dev extra)."""
    return Path(str(resources.files("ppxf") / "spectra"))


@pytest.fixture(scope="module")
def ppxf_files() -> list[Path]:
    d = _ppxf_dir()
    return [d / "NGC3522_SDSS_DR18.fits", d / "NGC3073_SDSS_DR18.fits"]


def test_grid_formula():
    wave = sdss_wave_aa()
    assert wave.shape == (SDSS_NPIX,) == (3921,)
    i = np.array([0, 1, 1000, 3920])
    np.testing.assert_allclose(wave[i], 10 ** (3.578 + 1e-4 * i), rtol=1e-13)
    np.testing.assert_allclose(np.diff(np.log10(wave)), 1e-4, rtol=1e-9)
    inst = sdss_instrument()
    assert inst.pixel_kms == pytest.approx(69.03, abs=0.01)          # c ln10 1e-4
    assert inst.lsf_sigma_kms == pytest.approx(299792.458 / 2000 / 2.35482, rel=1e-5)


def test_real_files_redshift_class_grid_and_mask(ppxf_files):
    batch = read_sdss(ppxf_files)
    assert len(batch) == 2 and batch.ok.all()
    assert list(batch.id) == ["2488-54149-0001", "0945-52652-0470"]
    for row, path in enumerate(ppxf_files):
        with fits.open(path) as h:
            t, spec = h[1].data, h[2].data
            assert batch.z[row] == pytest.approx(float(spec["Z"][0]), rel=1e-6)
            assert batch.z_err[row] == pytest.approx(float(spec["Z_ERR"][0]), rel=1e-6)
            assert batch.spec_class[row] == str(spec["CLASS"][0]).strip()
            idx = np.rint((t["loglam"].astype(np.float64) - 3.578) / 1e-4).astype(int)
            # on the grid to a small fraction of a pixel
            assert np.abs((t["loglam"] - 3.578) / 1e-4 - idx).max() < 0.02
            # pipeline-flagged pixels and pixels outside the file's coverage are masked
            assert batch.mask[row, idx[t["and_mask"] != 0]].all()
            outside = np.setdiff1d(np.arange(SDSS_NPIX), idx)
            assert outside.size > 0 and batch.mask[row, outside].all()
            assert (batch.ivar_norm[row][batch.mask[row]] == 0).all()
            # unmasked pixels hold the file's values divided by the normalisation
            good = ~batch.mask[row, idx]
            np.testing.assert_allclose(batch.flux_flam_1e17[row, idx[good]], t["flux"][good], rtol=1e-5)
            np.testing.assert_allclose(batch.ivar_flam_1e17[row, idx[good]], t["ivar"][good], rtol=1e-4)
    assert batch.spec_class.tolist() == ["GALAXY", "STAR"]
    # the [O I] 5577 sky line is masked in both, although only one file flags it
    sky = np.abs(batch.wave_obs_aa - 5578.9) < 3
    assert batch.mask[:, sky].all()
    # measured LSF (median wdisp): R ~ 2000
    assert np.all((batch.lsf_sigma_kms > 50) & (batch.lsf_sigma_kms < 75))


def test_normalisation_is_one_in_the_window(ppxf_files):
    batch = read_sdss(ppxf_files)
    for row in range(len(batch)):
        rest = batch.wave_obs_aa / (1 + batch.z[row])
        win = (rest >= NORM_WINDOW_REST_AA[0]) & (rest <= NORM_WINDOW_REST_AA[1]) & ~batch.mask[row]
        assert win.sum() > 300
        assert np.median(batch.flux_norm[row, win]) == pytest.approx(1.0, abs=1e-6)
        raw = batch.flux_flam_1e17[row, win]
        assert batch.norm_flam_1e17[row] == pytest.approx(np.median(raw), rel=1e-5)


def test_batch_select_and_tensors(ppxf_files):
    batch = read_sdss(ppxf_files)
    one = batch.select([1])
    assert len(one) == 1 and one.id[0] == batch.id[1] and one.flux_norm.shape == (1, 3921)
    t = batch.tensors()
    assert t["flux_norm"].shape == (2, 3921) and t["mask"].dtype.is_floating_point is False
    assert bool((t["ivar_norm"][t["mask"]] == 0).all())
    with pytest.raises(ValueError, match="z has shape"):
        type(batch)(**{**batch.__dict__, "z": batch.z[:1]})


def test_directory_glob_and_single_file(ppxf_files):
    one = read_sdss(ppxf_files[0])
    assert len(one) == 1
    by_glob = read_sdss(str(ppxf_files[0].parent / "NGC3*_SDSS_DR18.fits"))
    assert sorted(by_glob.id) == sorted(read_sdss(ppxf_files).id)
    with pytest.raises(SpectrumFileError, match="no SDSS spec files"):
        read_sdss(ppxf_files[0].parent)     # the ppxf folder has no spec-*.fits names
    with pytest.raises(SpectrumFileError, match="no such spectrum file"):
        read_sdss("/nonexistent/spec-0000-00000-0000.fits")


def _copy(src: Path, dst: Path, edit) -> Path:
    with fits.open(src) as h:
        hdus = fits.HDUList([h[0].copy(), h[1].copy(), h[2].copy()])
    edit(hdus)
    hdus.writeto(dst)
    return dst


def test_non_sdss_grid_raises(ppxf_files, tmp_path):
    def shift(h):
        h[1].data["loglam"] = h[1].data["loglam"] + 0.5e-4      # half a pixel off
    bad = _copy(ppxf_files[0], tmp_path / "spec-0001-00001-0001.fits", shift)
    with pytest.raises(SpectrumFileError, match="not the SDSS grid"):
        read_sdss(bad)
    batch = read_sdss([ppxf_files[0], bad], strict=False)
    assert batch.ok.tolist() == [True, False] and "not the SDSS grid" in batch.reason[1]

    def coarse(h):
        ll = h[1].data["loglam"].astype(np.float64)
        h[1].data["loglam"] = ll[0] + 2 * (ll - ll[0])                # step 2e-4
    with pytest.raises(SpectrumFileError, match="median step 0.0002"):
        read_sdss(_copy(ppxf_files[0], tmp_path / "spec-coarse.fits", coarse))
    not_fits = tmp_path / "spec-0002-00002-0002.fits"
    not_fits.write_text("hello")
    with pytest.raises(SpectrumFileError, match="not a readable FITS"):
        read_sdss(not_fits)


@pytest.mark.parametrize("case, reason", [
    ("all_masked", "every pixel is masked"),
    ("nan_flux", "flux is NaN"),
    ("no_z", "no redshift"),
    ("z_too_high", "unmasked pixels in rest-frame"),
])
def test_bad_spectra_get_ok_false_with_reason(ppxf_files, tmp_path, case, reason):
    def edit(h):
        if case == "all_masked":
            h[1].data["and_mask"][:] = 1
        elif case == "nan_flux":
            h[1].data["flux"][:] = np.nan
        elif case == "no_z":
            h[2].data["Z"][:] = np.nan
        else:
            h[2].data["Z"][:] = 0.9      # rest-frame window beyond the grid
    bad = _copy(ppxf_files[0], tmp_path / f"spec-{case}.fits", edit)
    batch = read_sdss([bad, ppxf_files[1]])
    assert batch.ok.tolist() == [False, True]
    assert reason in batch.reason[0]
    assert np.isnan(batch.norm_flam_1e17[0]) and batch.mask[0].all() and (batch.ivar_norm[0] == 0).all()
