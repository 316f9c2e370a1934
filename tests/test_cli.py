"""Tests of the command line (sedinfer.cli) and of sedinfer.simulate.simulate_catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sedinfer import __version__, cli
from sedinfer.catalog import FLUX_UNIT, read_catalog
from sedinfer.errors import FilterError, ParameterError
from sedinfer.filters import FILTER_GROUPS
from sedinfer.noise import default_noise_model
from sedinfer.simulate import simulate_catalog
from sedinfer.sps.derived import DERIVED_NAMES
from sedinfer.sps.model import SPSModel

SDSS = FILTER_GROUPS["sdss"]


@pytest.fixture(scope="module")
def model() -> SPSModel:
    return SPSModel()


@pytest.fixture(scope="module")
def mock_parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "mock.parquet"
    assert cli.main(["simulate", "--n", "200", "--filters", "sdss", "--out", str(path), "--seed", "42",
                     "--no-progress"]) == 0
    return path


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sedinfer: error: "), err
    assert "Traceback" not in err


# ------------------------------------------------------------------------ simulate_catalog
def test_simulate_catalog_columns_units_meta(model):
    t = simulate_catalog(30, "sdss", model=model, seed=3, progress=False)
    expected = ["id", *model.param_names, *DERIVED_NAMES, *(f"flux_{b}" for b in SDSS),
                *(f"flux_err_{b}" for b in SDSS), *(f"flux_true_{b}" for b in SDSS)]
    assert t.colnames == expected and len(t) == 30
    assert t["id"].dtype == np.int64 and list(t["id"]) == list(range(30))
    assert t["flux_sdss_r0"].unit == FLUX_UNIT and t["flux_err_sdss_r0"].unit == FLUX_UNIT
    assert str(t["t_burst"].unit) == "Gyr" and t["redshift"].unit is None
    assert np.all(np.asarray(t["flux_err_sdss_r0"]) > 0)
    lo, hi = (b.numpy() for b in model.prior.bounds())
    for j, name in enumerate(model.param_names):
        assert np.all((t[name] >= lo[j]) & (t[name] <= hi[j])), name
    meta = t.meta
    assert meta["seed"] == 3 and meta["sedinfer_version"] == __version__
    assert json.loads(meta["filters"]) == list(SDSS)
    assert json.loads(meta["model_config"]) == model.config.to_dict()
    assert json.loads(meta["prior"]) == model.prior.to_dict()
    assert json.loads(meta["noise_model"])["bands"] == list(SDSS)
    # the noiseless fluxes are the model's photometry of the true parameters
    theta = torch.as_tensor(np.stack([t[n] for n in model.param_names], -1))
    nmgy = model.photometry(theta, list(SDSS), units="nmgy").numpy()
    np.testing.assert_allclose(np.stack([t[f"flux_true_{b}"] for b in SDSS], -1), nmgy, rtol=1e-5)


def test_simulate_catalog_same_seed_same_table(model):
    a = simulate_catalog(40, ["sdss_g0", "wise_w1"], model=model, seed=7, progress=False)
    b = simulate_catalog(40, "sdss_g0,wise_w1", model=model, seed=7, chunk_size=16, progress=False)
    c = simulate_catalog(40, ["sdss_g0", "wise_w1"], model=model, seed=8, progress=False)
    assert a.meta == b.meta
    for name in a.colnames:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, err_msg=name)
    assert not np.allclose(a["redshift"], c["redshift"])
    fresh = simulate_catalog(5, "sdss_r0", model=model, progress=False)
    assert isinstance(fresh.meta["seed"], int)


def test_simulate_catalog_errors(model):
    with pytest.raises(ParameterError, match="n must be a positive integer"):
        simulate_catalog(0, model=model)
    with pytest.raises(ParameterError, match="chunk_size"):
        simulate_catalog(5, model=model, chunk_size=0)
    with pytest.raises(ParameterError, match="noise model's bands"):
        simulate_catalog(5, "sdss", model=model, noise=default_noise_model(["sdss_r0"]))
    with pytest.raises(FilterError, match="sdss_q0"):
        simulate_catalog(5, "sdss_q0", model=model)


# ------------------------------------------------------------------------------ the CLI
def test_simulate_parquet(mock_parquet, model):
    t = read_catalog(mock_parquet)
    assert len(t) == 200
    for name in ["id", *model.param_names, *DERIVED_NAMES]:
        assert name in t.colnames
    for band in SDSS:
        for prefix in ("flux_", "flux_err_", "flux_true_"):
            assert t[prefix + band].unit == FLUX_UNIT
    assert t.meta["seed"] == 42
    assert json.loads(t.meta["model_config"])["sfh"] == "nmf"


def test_same_seed_reproduces(mock_parquet, tmp_path, capsys):
    again = tmp_path / "again.parquet"
    code, out, _ = run(["simulate", "--n", 200, "--out", again, "--seed", 42, "--chunk-size", 64], capsys)
    assert code == 0
    assert "200 rows" in out and str(again) in out and len(out.strip().splitlines()) == 1
    a, b = read_catalog(mock_parquet), read_catalog(again)
    assert a.meta == b.meta
    for name in a.colnames:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("ext", ["fits", "csv"])
def test_simulate_other_formats(tmp_path, capsys, ext):
    path = tmp_path / f"mock.{ext}"
    code, _, err = run(["simulate", "--n", 30, "--filters", "sdss_r0,wise_w1", "--out", path,
                        "--seed", 1, "--no-progress"], capsys)
    assert code == 0, err
    t = read_catalog(path)
    assert len(t) == 30
    assert {"flux_sdss_r0", "flux_err_wise_w1", "flux_true_wise_w1", "log_mass"} <= set(t.colnames)


def test_unknown_filter_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "x.parquet"
    code, _, err = run(["simulate", "--n", 10, "--filters", "sdss_r0,bogus_band", "--out", out], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "bogus_band" in err
    assert not out.exists()


@pytest.mark.parametrize("n", ["0", "-5", "ten"])
def test_bad_n(tmp_path, capsys, n):
    code, _, err = run(["simulate", "--n", n, "--out", tmp_path / "x.parquet"], capsys)
    assert code == 2 and "--n" in err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    path = tmp_path / "exists.csv"
    path.write_text("a\n1\n")
    code, _, err = run(["simulate", "--n", 5, "--out", path], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "--overwrite" in err and path.read_text() == "a\n1\n"
    code, _, err = run(["simulate", "--n", 5, "--out", path, "--overwrite", "--seed", 0], capsys)
    assert code == 0, err
    assert len(read_catalog(path)) == 5


def test_bad_output_extension_fails_fast(tmp_path, capsys):
    code, _, err = run(["simulate", "--n", 5, "--out", tmp_path / "x.txt"], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert ".parquet" in err


def test_version_info_filters(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"sedinfer {__version__}"
    code, out, _ = run(["filters"], capsys)
    assert code == 0 and "sdss_r0" in out and "wise" in out and "acs_wfc_f435w" in out
    code, out, _ = run(["info"], capsys)
    assert code == 0
    assert all(name in out for name in SPSModel().param_names) and "Uniform" in out
    code, _, err = run([], capsys)
    assert code == 2 and "usage" in err


def test_unexpected_error_exit_1_and_debug(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "COMMANDS", [cli.Command("boom", "fails", lambda p: None, boom)])
    code, _, err = run(["boom"], capsys)
    assert code == 1
    assert_one_line_error(err)
    assert "kaboom" in err and "--debug" in err
    code, _, err = run(["boom", "--debug"], capsys)
    assert code == 1 and "Traceback" in err
    code, _, err = run(["--debug", "boom"], capsys)
    assert code == 1 and "Traceback" in err


@pytest.mark.slow
def test_python_m_entry_point(tmp_path):
    out = tmp_path / "mock.ecsv"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "sedinfer", "simulate", "--n", "50", "--out", str(out),
                           "--seed", "5", "--no-progress"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert "50 rows" in proc.stdout
    t = read_catalog(out)
    assert len(t) == 50 and t.meta["seed"] == 5 and t["flux_sdss_r0"].unit == FLUX_UNIT


def test_ir_and_dustmap_simulate_are_cli_steps(tmp_path, capsys):
    from sedinfer.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["ir", "simulate", "--n", "3", "--out", str(tmp_path / "ir.parquet")])
    assert callable(args.run) and args.n == 3
    args = parser.parse_args(["dustmap", "simulate", "--n", "1", "--out", str(tmp_path / "dm")])
    assert callable(args.run) and args.views == 3
    assert cli.main(["ir"]) == 2                           # a group needs its step
    assert "STEP" in capsys.readouterr().err


def test_dustmap_without_a_step_means_fit():
    from sedinfer.cli import _with_default_step

    assert _with_default_step(["dustmap", "a.fits", "-o", "d"]) == ["dustmap", "fit", "a.fits", "-o", "d"]
    assert _with_default_step(["--debug", "dustmap", "--demo"]) == ["--debug", "dustmap", "fit", "--demo"]
    assert _with_default_step(["dustmap", "simulate", "--n", "1"]) == ["dustmap", "simulate", "--n", "1"]
    assert _with_default_step(["dustmap", "--help"]) == ["dustmap", "--help"]
    assert _with_default_step(["posterior", "x.fits"]) == ["posterior", "x.fits"]
