"""``sedinfer posterior``: column maps, chunked and resumable runs, bad input, Dask, the command line."""

from __future__ import annotations

import json

import astropy.units as u
import h5py
import numpy as np
import pytest
import torch
from astropy.table import Table

from sedinfer import cli
from sedinfer.catalog import read_catalog, write_catalog
from sedinfer.errors import CatalogError, SedinferError
from sedinfer.posterior import runner
from sedinfer.posterior.columns import column_map
from sedinfer.posterior.sed import SDSS_BANDS, SEDConfig, train_sed_posterior
from sedinfer.posterior.train import TrainConfig
from sedinfer.simulate import simulate_catalog

N_ROWS, N_SAMPLES, SEED = 24, 40, 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    sp = train_sed_posterior(SEDConfig(n_simulations=3000, train=TrainConfig(max_epochs=2)), progress=False)
    return sp, str(sp.save(tmp_path_factory.mktemp("model") / "tiny.pt"))


@pytest.fixture(scope="module")
def cat():
    table = simulate_catalog(N_ROWS, seed=5, progress=False)
    table["id"] = np.arange(1000, 1000 + N_ROWS)           # ids that are not row numbers
    return table


@pytest.fixture(scope="module")
def cmap():
    return column_map(SDSS_BANDS, needs_redshift=True)


@pytest.fixture(scope="module")
def reference(tiny, cat, cmap, tmp_path_factory):
    """One unchunked serial run (Parquet in, Parquet out, samples kept) that other runs must equal."""
    d = tmp_path_factory.mktemp("ref")
    write_catalog(cat, d / "cat.parquet")
    summary = runner.run_posterior(d / "cat.parquet", d / "out.parquet", cmap, model=tiny[1],
                                   n_samples=N_SAMPLES, seed=SEED, save_samples=d / "s.h5", progress=False)
    return summary, read_catalog(d / "out.parquet"), d


def cli_main(argv) -> int:
    return cli.main([str(a) for a in argv])


def assert_same(a: Table, b: Table, id_a: str = "id", id_b: str = "id") -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a[id_a], b[id_b])
    for name in a.colnames:
        if name == id_a:
            continue
        if a[name].dtype.kind == "f":
            np.testing.assert_allclose(a[name], b[name], rtol=2e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_output_rows_ids_summaries_and_samples(tiny, cat, reference):
    summary, out, d = reference
    sp = tiny[0]
    assert len(out) == N_ROWS and summary.n_rows == N_ROWS
    np.testing.assert_array_equal(out["id"], cat["id"])
    assert {"log_mstar", "sfr_100myr"} <= set(sp.names)
    for name in sp.names:
        p16, p50, p84 = (np.asarray(out[f"{name}_{q}"]) for q in ("p16", "p50", "p84"))
        assert np.all(p16 <= p50) and np.all(p50 <= p84), name
    assert out["log_mstar_p50"].unit == u.Unit("dex(Msun)")
    assert out["ok"].all() and summary.n_failed == 0
    assert json.loads(out.meta["names"]) == list(sp.names) and out.meta["seed"] == SEED
    assert not (d / "out.parquet.parts").exists()
    with h5py.File(d / "s.h5") as fh:
        samples = fh["samples"][:]
        assert samples.shape == (N_ROWS, N_SAMPLES, len(sp.names)) and samples.dtype == np.float32
        np.testing.assert_array_equal(fh["id"][:], cat["id"])
        assert [n.decode() for n in fh["names"][:]] == list(sp.names) == list(fh.attrs["names"])
    k = sp.names.index("log_mass")
    np.testing.assert_allclose(np.median(samples[:, :, k], axis=1), out["log_mass_p50"], rtol=1e-5)
    # summaries are consistent with the truth of the simulation (a loose statistical check)
    inside = (cat["log_mstar"] > out["log_mstar_p16"] - 1.0) & (cat["log_mstar"] < out["log_mstar_p84"] + 1.0)
    assert inside.mean() > 0.7


def test_row_seeding_reproduces_flow_sampling_and_ignores_batch(tiny):
    post = tiny[0].posterior
    gen = torch.Generator().manual_seed(1)
    x = post.x_mean + post.x_std * torch.randn(5, post.context_dim, generator=gen)
    seeds = runner.row_seeds(SEED, 10, 5)
    assert len(set(seeds.tolist())) == 5 and np.array_equal(seeds, runner.row_seeds(SEED, 10, 5))
    one = post.sample(x[2:3], 30, row_seeds=seeds[2:3])
    assert torch.equal(one, post.sample(x[2:3], 30, seed=int(seeds[2])))   # same base noise, same flow
    batch = post.sample(x, 30, row_seeds=seeds, batch_size=90)              # rows in batches of 3
    torch.testing.assert_close(batch[2:3], one, rtol=1e-5, atol=1e-6)


def test_chunked_csv_and_fits_equal_unchunked(tiny, cat, cmap, reference, tmp_path):
    ref = reference[1]
    write_catalog(cat, tmp_path / "cat.csv")
    s = runner.run_posterior(tmp_path / "cat.csv", tmp_path / "a.parquet", cmap, model=tiny[1],
                             n_samples=N_SAMPLES, seed=SEED, chunk_rows=7, progress=False)
    assert s.n_chunks == 4
    assert_same(ref, read_catalog(tmp_path / "a.parquet"))
    write_catalog(cat, tmp_path / "cat.fits")
    runner.run_posterior(tmp_path / "cat.fits", tmp_path / "b.fits", cmap, model=tiny[1], n_samples=N_SAMPLES,
                         seed=SEED, chunk_rows=5, progress=False)
    assert_same(ref, read_catalog(tmp_path / "b.fits"))
    other = runner.run_posterior(tmp_path / "cat.fits", tmp_path / "c.fits", cmap, model=tiny[1],
                                 n_samples=N_SAMPLES, seed=SEED + 1, progress=False)
    assert other.n_rows == N_ROWS
    assert not np.allclose(read_catalog(tmp_path / "c.fits")["log_mass_p50"], ref["log_mass_p50"])


def test_worker_processes_equal_one_process(tiny, cmap, reference, tmp_path):
    """Chunks spread over local worker processes (finishing in any order) give the serial answer."""
    s = runner.run_posterior(reference[2] / "cat.parquet", tmp_path / "w.parquet", cmap, model=tiny[1],
                             n_samples=N_SAMPLES, seed=SEED, chunk_rows=5, workers=2,
                             save_samples=tmp_path / "w.h5", progress=False)
    assert s.n_chunks == 5 and s.n_rows == N_ROWS
    assert_same(reference[1], read_catalog(tmp_path / "w.parquet"))
    with h5py.File(tmp_path / "w.h5") as a, h5py.File(reference[2] / "s.h5") as b:
        np.testing.assert_allclose(a["samples"][:], b["samples"][:], rtol=2e-5, atol=1e-6)
    with pytest.raises(SedinferError, match="workers must be a positive integer"):
        runner.run_posterior(reference[2] / "cat.parquet", tmp_path / "x.parquet", cmap, model=tiny[1],
                             n_samples=N_SAMPLES, workers=0, progress=False)


def test_interrupted_run_resumes_without_recomputing(tiny, cat, cmap, reference, tmp_path, monkeypatch):
    write_catalog(cat, tmp_path / "cat.parquet")
    real, calls = runner.process_chunk, []

    def crash_after_first(task):
        if calls:
            raise KeyboardInterrupt("killed")
        calls.append(task.index)
        return real(task)

    kwargs = dict(model=tiny[1], n_samples=N_SAMPLES, seed=SEED, chunk_rows=7, progress=False, workers=1)
    monkeypatch.setattr(runner, "process_chunk", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "o.parquet", cmap,
                             save_samples=tmp_path / "o.h5", **kwargs)
    parts = tmp_path / "o.parquet.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["manifest.json", "part_000000.parquet",
                                                       "part_000000.samples.npy"]
    assert not (tmp_path / "o.parquet").exists()
    with pytest.raises(CatalogError, match=r"different settings \(n_samples, seed\).*--restart"):
        runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "o.parquet", cmap,
                             save_samples=tmp_path / "o.h5", **{**kwargs, "seed": SEED + 1, "n_samples": 10})
    done = []
    monkeypatch.setattr(runner, "process_chunk", lambda task: done.append(task.index) or real(task))
    s = runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "o.parquet", cmap,
                             save_samples=tmp_path / "o.h5", **kwargs)
    assert done == [1, 2, 3] and s.n_resumed_rows == 7 and s.n_rows == N_ROWS
    assert_same(reference[1], read_catalog(tmp_path / "o.parquet"))
    with h5py.File(tmp_path / "o.h5") as a, h5py.File(reference[2] / "s.h5") as b:
        np.testing.assert_allclose(a["samples"][:], b["samples"][:], rtol=2e-5, atol=1e-6)
    assert not parts.exists()
    # --restart discards an earlier run's parts
    (parts / "junk").mkdir(parents=True)
    with pytest.raises(CatalogError, match="without a manifest"):
        runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "o.parquet", cmap, overwrite=True, **kwargs)
    runner.run_posterior(tmp_path / "cat.parquet", tmp_path / "o.parquet", cmap, restart=True, overwrite=True,
                         **kwargs)


def test_bad_rows_are_kept_with_reasons(tiny, cat, cmap, reference, tmp_path, capsys):
    bad = cat.copy()
    bad["flux_sdss_u0"][0] = np.nan                      # masked band, row still fine
    bad["flux_sdss_g0"][1] = -abs(bad["flux_sdss_g0"][1])  # negative flux: kept, fine
    bad["flux_err_sdss_r0"][2] = 0.0                     # error <= 0: reported
    bad["flux_err_sdss_i0"][3] = -1.0
    bad["redshift"][4] = 5.0                             # outside the trained range
    bad["redshift"][5] = np.nan
    for band in SDSS_BANDS:
        bad[f"flux_{band}"][6] = np.inf                  # nothing left
    write_catalog(bad, tmp_path / "bad.parquet")
    assert cli_main(["posterior", tmp_path / "bad.parquet", "--out", tmp_path / "o.parquet",
                     "--model", tiny[1], "--samples", N_SAMPLES, "--seed", SEED, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "5 row(s) could not be processed" in printed
    assert "id=1002: flux_err_sdss_r0=0 is not > 0" in printed
    out = read_catalog(tmp_path / "o.parquet")
    assert len(out) == N_ROWS
    np.testing.assert_array_equal(out["id"], cat["id"])
    assert list(out["ok"][:8]) == [True, True, False, False, False, False, False, True]
    assert out["masked_bands"][0] == "sdss_u0" and out["masked_bands"][1] == ""
    assert "flux_err_sdss_i0=-1 is not > 0" in out["reason"][3]
    assert "outside the trained range" in out["reason"][4] and "redshift=nan" in out["reason"][5]
    assert "no band with finite flux and error" in out["reason"][6]
    assert np.isnan(out["log_mass_p50"][2]) and np.isfinite(out["log_mass_p50"][1])
    assert_same(reference[1][7:], out[7:])                # the other rows are untouched


def test_missing_columns_and_bad_options(tiny, cat, cmap, tmp_path, capsys):
    cut = cat.copy()
    cut.remove_columns(["flux_err_sdss_z0", "redshift"])
    write_catalog(cut, tmp_path / "cut.parquet")
    with pytest.raises(CatalogError, match=r"lacks column\(s\) redshift, flux_err_sdss_z0; expected id: id; "
                                           r"redshift: redshift; sdss_u0: flux_sdss_u0 ± flux_err_sdss_u0"):
        runner.run_posterior(tmp_path / "cut.parquet", tmp_path / "o.parquet", cmap, model=tiny[1])
    assert cli_main(["posterior", tmp_path / "cut.parquet", "--out", tmp_path / "o.parquet",
                     "--model", tiny[1]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks column(s) redshift, flux_err_sdss_z0" in err
    write_catalog(cat, tmp_path / "cat.parquet")
    for argv, message in ((["--out", tmp_path / "o.csv"], "must be Parquet"),
                          (["--out", tmp_path / "o.parquet", "--save-samples", tmp_path / "s.npy"], ".h5"),
                          (["--out", tmp_path / "o.parquet", "--flux-cols", "a,b"], "lists 2 flux column"),
                          (["--out", tmp_path / "o.parquet", "--model", tmp_path / "none.pt"], "neither")):
        assert cli_main(["posterior", tmp_path / "cat.parquet", "--model", tiny[1], *argv]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "taken.parquet").touch()
    assert cli_main(["posterior", tmp_path / "cat.parquet", "--out", tmp_path / "taken.parquet",
                     "--model", tiny[1]]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_column_maps_from_options_toml_andcolumn_units(tiny, cat, reference, tmp_path):
    renamed = Table({"objid": cat["id"], "z": cat["redshift"]})
    for band in SDSS_BANDS:
        short = band[5]
        flux = u.Quantity(cat[f"flux_{band}"])
        renamed[f"cmodel_{short}"] = flux.to(u.uJy, u.zero_point_flux(3631 * u.Jy))
        renamed[f"{short}_err"] = cat[f"flux_err_{band}"]
    write_catalog(renamed, tmp_path / "r.fits")
    errs = [f"{b[5]}_err" for b in SDSS_BANDS]
    by_options = column_map(SDSS_BANDS, True, id_col="objid", redshift_col="z",
                            flux_cols=",".join(f"cmodel_{b[5]}" for b in SDSS_BANDS), err_cols=errs)
    toml = tmp_path / "cols.toml"
    toml.write_text('id = "objid"\nredshift = "z"\nflux_pattern = "cmodel_{band}"\n'
                    '[flux]\n' + "".join(f'{b} = "cmodel_{b[5]}"\n' for b in SDSS_BANDS) +
                    '[flux_err]\n' + "".join(f'{b} = "{b[5]}_err"\n' for b in SDSS_BANDS))
    assert column_map(SDSS_BANDS, True, toml=toml) == by_options
    _, flux, _, _ = by_options.arrays(read_catalog(tmp_path / "r.fits"))
    np.testing.assert_allclose(flux[:, 2], cat["flux_sdss_r0"], rtol=1e-6)   # µJy converted to nmgy
    runner.run_posterior(tmp_path / "r.fits", tmp_path / "o.parquet", by_options, model=tiny[1],
                         n_samples=N_SAMPLES, seed=SEED, progress=False)
    assert_same(reference[1], read_catalog(tmp_path / "o.parquet"), id_b="objid")
    pattern = column_map(SDSS_BANDS, False, flux_cols="f_{band}", err_cols="e_{band}")
    assert pattern.flux[0] == "f_sdss_u0" and pattern.redshift is None
    toml.write_text('id = "objid"\nfluxes = "x"\n')
    with pytest.raises(CatalogError, match="unknown key"):
        column_map(SDSS_BANDS, True, toml=toml)
    renamed["u_err"].unit = u.mag
    with pytest.raises(CatalogError, match="'u_err' has unit mag which is not a flux density"):
        by_options.arrays(renamed)


@pytest.mark.slow
def test_dask_local_cluster_equals_serial(tiny, cmap, reference, tmp_path):
    s = runner.run_posterior(reference[2] / "cat.parquet", tmp_path / "d.parquet", cmap, model=tiny[1],
                             n_samples=N_SAMPLES, seed=SEED, chunk_rows=5, scheduler="local", workers=1,
                             processes=True, save_samples=tmp_path / "d.h5", progress=False)
    assert s.n_chunks == 5
    assert_same(reference[1], read_catalog(tmp_path / "d.parquet"))
    with h5py.File(tmp_path / "d.h5") as a, h5py.File(reference[2] / "s.h5") as b:
        np.testing.assert_allclose(a["samples"][:], b["samples"][:], rtol=2e-5, atol=1e-6)


def test_cli_end_to_end_and_demo(tiny, cat, reference, tmp_path, capsys, monkeypatch):
    write_catalog(cat, tmp_path / "cat.csv")
    argv = ["posterior", tmp_path / "cat.csv", "--out", tmp_path / "o.fits", "--model", tiny[1],
            "--samples", N_SAMPLES, "--seed", SEED, "--chunk-rows", 9, "--save-samples", tmp_path / "o.h5",
            "--no-progress"]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{N_ROWS} rows, 0 failed" in printed and "rows/s" in printed
    assert_same(reference[1], read_catalog(tmp_path / "o.fits"))
    with h5py.File(tmp_path / "o.h5") as fh:
        assert fh["samples"].shape == (N_ROWS, N_SAMPLES, len(tiny[0].names))
    monkeypatch.chdir(tmp_path)
    assert cli_main(["posterior", "--demo", "--model", tiny[1], "--samples", "8", "--no-progress"]) == 0
    assert "posterior_demo_recovery.png" in capsys.readouterr().out
    demo = read_catalog(tmp_path / "posterior_demo.parquet")
    assert len(demo) == 300 and (tmp_path / "posterior_demo_recovery.png").stat().st_size > 10_000
