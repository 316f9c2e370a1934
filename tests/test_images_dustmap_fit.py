"""``sedinfer dustmap fit`` (issue 18 §6-8): outputs, bad input, priors, resuming and Dask chunks.

Fits run with a few iterations and ``--prior none`` (or tiny untrained priors): these tests check
the interface, not the quality of the fit (tests/test_images_fit.py does that).
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from sedinfer.images import cli
from sedinfer.images.fits_io import write_cube_fits, write_view_fits
from sedinfer.images.instrument import HSC_BANDS, hsc_instrument
from sedinfer.images.runner import (
    PRIOR_FILES,
    SHIPPED_PRIOR_DIR,
    FitSettings,
    PriorSpec,
    data_path,
    run_dustmap_fit,
)
from sedinfer.images.simulate import SimulationConfig, simulate_galaxies

FAST = ["--prior", "none", "--max-steps", "4", "--min-steps", "1", "--no-progress"]
OUT_HDUS = ("HOST", "DUST", "ATTEN", "MODEL", "RESID", "MASK", "SED")
HEADER_KEYS = ("NBAND", "BAND1", "DELTA", "A0MEAN", "COVFRAC", "FLUXUNIT", "FLUX1", "FLUX5", "ABAND1",
               "REDSHIFT", "PRIOR", "NITER", "CONVERGD", "CHI2", "NPIX", "NMASKED", "VAREST", "CUTX0",
               "CUTY0", "PSFSRC")


def faint_seds(theta: np.ndarray) -> np.ndarray:
    """nJy (N, 5): a power law in the HSC pivots (as tests/test_images_fit.py)."""
    lam = np.array([4791.0, 6214.0, 7689.0, 8903.0, 9772.0]) / 6000.0
    slope = np.log10(theta[:, 3:4] * 1e3) - 2.5
    return 10 ** (theta[:, 1:2] - 6.0) * lam[None] ** slope


@pytest.fixture(scope="module")
def views():
    inst = hsc_instrument()
    return inst, simulate_galaxies([0, 1, 2], 5, inst, faint_seds, SimulationConfig(n_views=1))


@pytest.fixture()
def sims(views, tmp_path):
    """Three simulated galaxies written as ``sedinfer dustmap simulate`` writes them."""
    inst, vs = views
    folder = tmp_path / "in"
    for v in vs:
        write_view_fits(folder / f"{v.name}.fits", v, psf=inst.psf.numpy())
    return folder, vs


def fit(*argv) -> int:
    return cli.main(["fit", *map(str, argv)])


def summary(out) -> dict:
    return json.loads((out / "run.json").read_text())


def test_round_trip_of_simulated_files_writes_every_output(sims, tmp_path):
    folder, vs = sims
    out = tmp_path / "out"
    assert fit(folder, "--bands", "hsc", "--out", out, *FAST) == 0
    run = summary(out)
    assert run["n_inputs"] == 3 and run["n_ok"] == 3 and run["status"] == "complete"
    assert [g["name"] for g in run["galaxies"]] == [v.name for v in vs]
    for v in vs:
        path = out / f"{v.name}.dustmap.fits"
        with fits.open(path) as hdul:
            head = hdul[0].header
            for key in HEADER_KEYS:
                assert key in head, key
            assert [h.name for h in hdul[1:]] == list(OUT_HDUS)
            assert head["PRIOR"].startswith("none") and head["NITER"] == 4 and head["CONVERGD"] is False
            assert head["REDSHIFT"] == pytest.approx(v.galaxy.redshift)
            np.testing.assert_allclose(hdul["ATTEN"].data, -2.5 * np.log10(hdul["DUST"].data), rtol=1e-4,
                                       atol=1e-5)
            assert hdul["MODEL"].data.shape == (5, 64, 64)
            assert hdul["HOST"].data.sum() == pytest.approx(1, 1e-4)
            for hdu in hdul[1:]:
                if hdu.data is not None and hdu.is_image:
                    assert np.isfinite(hdu.data).all(), hdu.name
        record = json.loads((out / f"{v.name}.dustmap.json").read_text())
        assert record["ok"] and len(record["sed_njy"]) == 5 and record["units"]["sed_njy"] == "nJy"
        assert record["truth"]["delta"] == pytest.approx(v.galaxy.delta)
        assert -1 <= record["truth"]["pearson_dust"] <= 1
        png = out / f"{v.name}.dustmap.png"
        assert png.stat().st_size <= 300_000
    assert not [p for p in out.iterdir() if p.name.startswith(".")]        # no temporary files left


def test_units_written_are_read_by_astropy_without_warnings(sims, tmp_path):
    folder, vs = sims
    out = tmp_path / "out"
    assert fit(folder / f"{vs[0].name}.fits", "--out", out, "--no-figures", *FAST) == 0   # bands from header
    path = out / f"{vs[0].name}.dustmap.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # UnitsWarning (or any) fails the test
        with fits.open(path) as hdul:
            units = {h.name: u.Unit(h.header["BUNIT"]) for h in hdul[1:] if "BUNIT" in h.header}
            assert units == {"ATTEN": u.mag, "MODEL": u.nJy, "RESID": u.nJy}
            assert u.Unit(hdul[0].header["FLUXUNIT"]) == u.nJy
        sed = Table.read(path, hdu="SED")
    assert sed["FLUX"].unit == u.nJy and sed["WAVE"].unit == u.AA and sed["ATTEN"].unit == u.mag
    assert list(sed["BAND"]) == list(HSC_BANDS)


def _cube(size=64, seed=0, amp=300.0, n_band=5, sigma=2.0):
    rng = np.random.default_rng(seed)
    y, x = np.indices((size, size)) - size // 2
    source = amp * np.exp(-(x**2 / 2 + y**2) / (2 * 4.0**2))
    image = source[None] * np.linspace(1, 2, n_band)[:, None, None]
    image = image + sigma * rng.standard_normal((n_band, size, size))
    return image, np.full_like(image, sigma**2)


def test_bad_inputs_are_per_galaxy_failures_with_reasons(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    z = {"REDSHIFT": 0.1}
    img, var = _cube()
    write_cube_fits(folder / "good.fits", img, var, HSC_BANDS, z)
    nan = img.copy()
    nan[2, 30:33, 30:33] = np.nan
    write_cube_fits(folder / "nan_pixels.fits", nan, var, HSC_BANDS, z)
    i4, v4 = _cube(n_band=4)                                  # a bare cube: no band names in the file
    fits.HDUList([fits.PrimaryHDU(header=fits.Header(z)), fits.ImageHDU(i4, name="SCI"),
                  fits.ImageHDU(v4, name="VAR")]).writeto(folder / "four_bands.fits")
    write_cube_fits(folder / "other_bands.fits", img, var, ("hsc_g", "hsc_r", "hsc_i", "hsc_z", "hsc_z"), z)
    zero = var.copy()
    zero[1, :2, :5] = 0.0
    zero[3, 0, 0] = -1.0
    write_cube_fits(folder / "zero_var.fits", img, zero, HSC_BANDS, z)
    empty, _ = _cube(amp=0.0)
    write_cube_fits(folder / "empty.fits", empty, var, HSC_BANDS, z)
    small, vsmall = _cube(size=40)
    write_cube_fits(folder / "small.fits", small, vsmall, HSC_BANDS, z)
    (folder / "garbage.fits").write_bytes(b"not a FITS file at all" * 50)
    write_cube_fits(folder / "no_redshift.fits", img, var, HSC_BANDS)
    out = tmp_path / "out"
    assert fit(folder, "--bands", "hsc", "--out", out, "--no-figures", *FAST) == 2
    run = summary(out)
    rows = {g["name"]: g for g in run["galaxies"]}
    assert len(rows) == run["n_inputs"] == 9                 # every input listed, none skipped
    assert rows["good"]["ok"] and rows["nan_pixels"]["ok"]
    reasons = {name: r["reason"] for name, r in rows.items() if not r["ok"]}
    assert set(reasons) == {"four_bands", "other_bands", "zero_var", "empty", "small", "garbage",
                            "no_redshift"}
    assert "4 band images but 5 bands" in reasons["four_bands"]
    assert "differ from the bands asked for" in reasons["other_bands"]
    assert "HDU VAR" in reasons["zero_var"] and "11 pixels" in reasons["zero_var"]
    assert "empty image" in reasons["empty"]
    assert "40 x 40" in reasons["small"] and "64 x 64" in reasons["small"]
    assert "not a readable FITS" in reasons["garbage"]
    assert "--redshift" in reasons["no_redshift"]
    for name in reasons:                                      # a JSON per failure, no FITS output
        assert not json.loads((out / f"{name}.dustmap.json").read_text())["ok"]
        assert not (out / f"{name}.dustmap.fits").exists()
    with fits.open(out / "nan_pixels.dustmap.fits") as hdul:
        assert hdul[0].header["NMASKED"] == 9 and hdul["MASK"].data.sum() == 9
        for hdu in hdul[1:6]:
            assert np.isfinite(hdu.data).all(), hdu.name
        assert (hdul["RESID"].data[2, 30:33, 30:33] == 0).all()
    missing = tmp_path / "missing.fits"                      # a path that does not exist is a failure too
    assert fit(missing, "--bands", "hsc", "--out", tmp_path / "o2", "--no-figures", *FAST) == 2
    assert "no FITS file" in summary(tmp_path / "o2")["galaxies"][0]["reason"]


def test_a_nan_pixel_does_not_change_the_fit_elsewhere(tmp_path):
    folder = tmp_path / "in"
    img, var = _cube(seed=3)
    nan = img.copy()
    nan[1, 20:23, 40:43] = np.nan
    write_cube_fits(folder / "clean.fits", img, var, HSC_BANDS, {"REDSHIFT": 0.1})
    write_cube_fits(folder / "masked.fits", nan, var, HSC_BANDS, {"REDSHIFT": 0.1})
    out = tmp_path / "out"
    assert fit(folder, "--out", out, "--prior", "none", "--max-steps", "150", "--no-figures",
               "--no-progress") == 0
    with fits.open(out / "clean.dustmap.fits") as a, fits.open(out / "masked.dustmap.fits") as b:
        keep = b["MASK"].data == 0
        assert (~keep).sum() == 9
        diff = np.abs(a["MODEL"].data - b["MODEL"].data)[keep] / np.sqrt(var[keep])
        assert np.isfinite(b["MODEL"].data).all() and np.isfinite(b["RESID"].data).all()
        assert diff.max() < 0.1                               # far below the noise (sigma)
        assert b[0].header["FLUX2"] == pytest.approx(a[0].header["FLUX2"], rel=2e-3)


def test_variance_estimate_per_band_hdus_and_centred_cut(tmp_path):
    img, var = _cube(size=80, sigma=3.0)
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["REDSHIFT"] = 0.05
    hdus += [fits.ImageHDU(img[b].astype(np.float32), name=band) for b, band in enumerate(HSC_BANDS)]
    path = tmp_path / "planes.fits"
    fits.HDUList(hdus).writeto(path)
    out = tmp_path / "out"
    assert fit(path, "--bands", "hsc", "--out", out, "--no-figures", *FAST) == 0
    with fits.open(out / "planes.dustmap.fits") as hdul:
        head = hdul[0].header
        assert head["VAREST"] is True and "MAD" in head["VARRULE"] and head["VARSRC"] == "estimated"
        assert (head["CUTY0"], head["CUTX0"]) == (8, 8) and "HSC default" in head["PSFSRC"]
    record = json.loads((out / "planes.dustmap.json").read_text())
    assert record["input_shape"] == [80, 80] and record["variance_estimated"]


def test_default_prior_fails_clearly_without_shipped_weights(sims, tmp_path, capsys):
    if all((data_path(SHIPPED_PRIOR_DIR) / n).is_file() for n in PRIOR_FILES["conditional"]):
        pytest.skip("the priors ship in this installation")
    folder, _ = sims
    out = tmp_path / "out"
    assert fit(folder, "--bands", "hsc", "--out", out) == 2
    err = capsys.readouterr().err
    assert "not trained yet" in err and "--prior none" in err and "--prior-dir" in err
    assert not out.exists()                                   # nothing fitted silently
    assert fit(folder, "--out", out, "--prior-dir", tmp_path) == 2
    assert "dust_given_host.pt" in capsys.readouterr().err


def test_demo_fits_the_shipped_cubes(tmp_path):
    out = tmp_path / "d"
    assert fit("--demo", "--prior", "none", "--out", out, "--max-steps", "2", "--min-steps", "1",
               "--no-figures", "--no-progress") == 0
    run = json.loads((out / "run.json").read_text())
    shipped = sorted(p.stem for p in data_path("demo", "dustmap").glob("*.fits"))
    assert len(shipped) >= 2 and sorted(g["name"] for g in run["galaxies"]) == shipped
    assert all(g["ok"] for g in run["galaxies"])


def test_demo_without_shipped_cubes_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import sedinfer.images.shipped as shipped

    monkeypatch.setattr(shipped, "data_path", lambda *parts: tmp_path / "nothing")
    assert fit("--demo", "--prior", "none", "--out", tmp_path / "d") == 2
    assert "ships no example cubes" in capsys.readouterr().err


def test_prior_dir_with_tiny_untrained_priors(sims, tmp_path, capsys):
    from sedinfer.images.prior import build_prior
    from sedinfer.images.unet import UNetConfig

    tiny = UNetConfig(base_channels=8, channel_mult=(1, 2), emb_dim=16, groups=4)
    pdir = tmp_path / "priors"
    build_prior("host", tiny).save(pdir / "host.pt")
    build_prior("dust_given_host", tiny).save(pdir / "dust_given_host.pt")
    folder, vs = sims
    out = tmp_path / "out"
    assert fit(folder / f"{vs[0].name}.fits", "--out", out, "--prior-dir", pdir, "--max-steps", "3",
               "--min-steps", "1", "--no-figures", "--no-progress") == 0
    with fits.open(out / f"{vs[0].name}.dustmap.fits") as hdul:
        assert hdul[0].header["PRIOR"] == "conditional: host.pt + dust_given_host.pt"
    record = json.loads((out / f"{vs[0].name}.dustmap.json").read_text())
    assert len(record["priors"]["dust"]["sha256"]) == 64
    assert fit(folder, "--out", tmp_path / "o2", "--prior", "unconditional", "--prior-dir", pdir) == 2
    build_prior("host", tiny).save(pdir / "dust.pt")          # the wrong kind of prior under dust.pt
    assert fit(folder, "--out", tmp_path / "o2", "--prior", "unconditional", "--prior-dir", pdir) == 2
    assert "expected 'host' and 'dust'" in capsys.readouterr().err
    (pdir / "dust.pt").write_bytes(b"garbage")
    assert fit(folder, "--out", tmp_path / "o2", "--prior", "unconditional", "--prior-dir", pdir) == 2
    assert "not a readable sedinfer score prior" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
    # Python: prior objects passed in directly
    spec = PriorSpec.from_objects(build_prior("host", tiny), build_prior("dust", tiny))
    settings = FitSettings(config=cli_config(3), figures=False)
    res = run_dustmap_fit([folder / f"{vs[1].name}.fits"], tmp_path / "o3", settings, spec, progress=False)
    assert res.n_ok == 1


def cli_config(steps: int):
    from sedinfer.images.fit import FitConfig

    return FitConfig(max_steps=steps, min_steps=1)


def test_resume_skips_finished_galaxies_and_chunks(sims, tmp_path):
    folder, vs = sims
    out = tmp_path / "out"
    settings = FitSettings(config=cli_config(2), figures=False)
    first = run_dustmap_fit([folder], out, settings, chunk=1, progress=False)
    assert (first.n_ok, first.n_chunks, first.n_chunks_skipped) == (3, 3, 0)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.dustmap.*")}
    (out / f"{vs[1].name}.dustmap.json").unlink()             # as if killed before galaxy 1 finished
    again = run_dustmap_fit([folder], out, settings, chunk=1, progress=False)
    assert (again.n_resumed, again.n_chunks_skipped, again.n_ok) == (2, 2, 3)
    for v in (vs[0], vs[2]):
        for suffix in (".dustmap.fits", ".dustmap.json"):
            assert (out / f"{v.name}{suffix}").stat().st_mtime_ns == stamps[v.name + suffix]
    rows = summary(out)["galaxies"]
    assert [r["resumed"] for r in rows] == [True, False, True] and all(r["ok"] for r in rows)
    with pytest.raises(ValueError, match="other settings"):   # a different fit is not mixed in
        run_dustmap_fit([folder], out, FitSettings(config=cli_config(3), figures=False), progress=False)
    redo = run_dustmap_fit([folder], out, FitSettings(config=cli_config(3), figures=False), overwrite=True,
                           progress=False)
    assert redo.n_resumed == 0 and redo.n_ok == 3


def test_failed_galaxies_are_kept_unless_retried(tmp_path):
    folder = tmp_path / "in"
    empty, var = _cube(amp=0.0)
    write_cube_fits(folder / "empty.fits", empty, var, HSC_BANDS, {"REDSHIFT": 0.1})
    settings = FitSettings(config=cli_config(2), figures=False)
    assert run_dustmap_fit([folder], tmp_path / "o", settings, progress=False).n_failed == 1
    again = run_dustmap_fit([folder], tmp_path / "o", settings, progress=False)
    assert again.n_resumed == 1 and again.n_failed == 1
    assert run_dustmap_fit([folder], tmp_path / "o", settings, retry_failed=True,
                           progress=False).n_resumed == 0


def test_dask_chunks_give_the_serial_result(sims, tmp_path):
    pytest.importorskip("distributed")
    folder, vs = sims
    settings = FitSettings(config=cli_config(3), figures=False, batch=2)
    serial = run_dustmap_fit([folder], tmp_path / "serial", settings, chunk=2, progress=False)
    dask = run_dustmap_fit([folder], tmp_path / "dask", settings, chunk=2, scheduler="local", workers=1,
                           processes=False, progress=False)
    assert serial.n_ok == dask.n_ok == 3 and dask.n_chunks == 2
    for v in vs:
        a = json.loads((tmp_path / "serial" / f"{v.name}.dustmap.json").read_text())
        b = json.loads((tmp_path / "dask" / f"{v.name}.dustmap.json").read_text())
        np.testing.assert_allclose(a["sed_njy"], b["sed_njy"], rtol=1e-6)
    assert summary(tmp_path / "dask")["scheduler"] == "local"


def test_band_presets_and_parser_defaults():
    from sedinfer.images.fit import FitConfig

    assert cli.parse_bands("hsc") == HSC_BANDS
    assert cli.parse_bands("hsc_g, hsc_r") == ("hsc_g", "hsc_r")
    assert cli.parse_bands(None) is None
    d = FitConfig()
    assert cli.FIT_DEFAULTS == {k: getattr(d, k) for k in cli.FIT_DEFAULTS}


def test_duplicate_names_are_refused(sims, tmp_path, capsys):
    folder, vs = sims
    other = tmp_path / "copy"
    other.mkdir()
    os.link(folder / f"{vs[0].name}.fits", other / f"{vs[0].name}.fits")
    assert fit(folder, other, "--out", tmp_path / "o", *FAST) == 2
    assert "same name" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_simulate_output_round_trip(tmp_path):
    """``dustmap simulate`` (SPS SEDs, ~15 s CPU) then ``dustmap fit`` on its folder."""
    sim = tmp_path / "sim"
    assert cli.main(["simulate", "--n", "1", "--views", "1", "--seed", "2", "--out", str(sim)]) == 0
    out = tmp_path / "out"
    assert fit(sim, "--bands", "hsc", "--out", out, *FAST) == 0
    run = summary(out)
    assert run["n_ok"] == 1 and (out / f"{run['galaxies'][0]['name']}.dustmap.fits").is_file()


def test_the_top_level_cli_can_wire_fit_as_a_step(sims, tmp_path):
    """What sedinfer.cli needs: a 'fit' entry in the dustmap steps finds add_fit_arguments / run_fit."""
    import argparse

    from sedinfer import cli as top

    parser = argparse.ArgumentParser(prog="sedinfer dustmap")
    top._add_steps(parser, "dustmap", {"fit": ("fit dust maps", "sedinfer.images.cli")})
    folder, _ = sims
    args = parser.parse_args(["fit", str(folder), "--out", str(tmp_path / "o"), "--no-figures", *FAST])
    assert args.run(args) == 0


def test_an_interrupted_run_leaves_no_partial_outputs_and_resumes(sims, tmp_path, monkeypatch):
    import sedinfer.images.figure as figure

    folder, vs = sims
    out = tmp_path / "out"
    real, calls = figure.dustmap_figure, []

    def dies_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt                           # killed while galaxy 2 was being written
        return real(*args, **kwargs)

    monkeypatch.setattr(figure, "dustmap_figure", dies_on_the_second)
    settings = FitSettings(config=cli_config(2))
    with pytest.raises(KeyboardInterrupt):
        run_dustmap_fit([folder], out, settings, chunk=3, progress=False)
    assert (out / f"{vs[0].name}.dustmap.json").is_file()
    assert not (out / f"{vs[1].name}.dustmap.json").exists()  # not marked complete
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(figure, "dustmap_figure", real)
    again = run_dustmap_fit([folder], out, settings, chunk=3, progress=False)
    assert again.n_resumed == 1 and again.n_ok == 3 and again.n_chunks_skipped == 0
