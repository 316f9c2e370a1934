"""End to end on a tiny synthetic mock table: autoencoder, resume, predictor, metrics, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sedinfer.spectra.instrument import sdss_wave_aa
from sedinfer.spectra.train_ir import add_train_arguments, run_train


def write_spec_file(path, z=0.1, ra=150.0, dec=2.0, fiber=1, loglam0=3.58, n_pix=3800, flux=None,
                    and_mask=None, seed=0):
    """A small synthetic SDSS spec file (HDU 1 COADD, HDU 2 SPECOBJ with PLUG_RA/PLUG_DEC)."""
    from astropy.io import fits
    from astropy.table import Table

    rng = np.random.default_rng([seed, fiber])
    loglam = (loglam0 + 1e-4 * np.arange(n_pix)).astype(np.float32)
    lam = 10.0 ** loglam / (1 + (z if np.isfinite(z) else 0))
    f = 10 * (1 + 0.2 * (lam - 5500) / 3000) + rng.standard_normal(n_pix) * 0.2 if flux is None else flux
    coadd = Table({"loglam": loglam, "flux": np.asarray(f, np.float32),
                   "ivar": np.full(n_pix, 25.0, np.float32),
                   "and_mask": np.zeros(n_pix, np.int32) if and_mask is None else and_mask,
                   "wdisp": np.full(n_pix, 0.9, np.float32)})
    spec = Table({"Z": [z], "Z_ERR": [1e-5], "CLASS": ["GALAXY"], "PLATE": [266], "MJD": [51602],
                  "FIBERID": [fiber], "PLUG_RA": [ra], "PLUG_DEC": [dec]})
    head = fits.Header({"RA": ra + 1.0, "DEC": dec - 1.0, "PLUG_RA": ra, "PLUG_DEC": dec})  # RA: plate centre
    fits.HDUList([fits.PrimaryHDU(header=head), fits.table_to_hdu(coadd),
                  fits.table_to_hdu(spec)]).writeto(path, overwrite=True)
    return f"0266-51602-{fiber:04d}"


def write_mock(path, n: int = 40, seed: int = 0, row_group_size: int | None = None,
               n_pix: int | None = None) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    wave = sdss_wave_aa()[:n_pix]
    m = len(wave)
    z = rng.uniform(0.02, 0.3, n)
    norm = 10 ** rng.uniform(0, 1, n)
    lam = wave[None] / (1 + z[:, None])
    flux = norm[:, None] * (1 + 0.3 * (lam - 5500) / 3000 + rng.standard_normal((n, m)) / 20)
    ivar = np.full((n, m), 400.0) / norm[:, None] ** 2

    def col(a):
        return pa.FixedSizeListArray.from_arrays(pa.array(a.astype(np.float32).ravel()), m)

    cols = {
        "id": [f"g{i}" for i in range(n)],
        "z": z,
        "flux_flam_1e17": col(flux),
        "ivar_flam_1e17": col(ivar),
        "norm_flam_1e17": norm,
        "ok": np.ones(n, bool),
    }
    for b in range(4):
        mag = 12 + b - 2.5 * np.log10(norm) + 0.05 * rng.standard_normal(n)
        sig = np.full(n, 0.05)
        if b == 3:
            sig[: n // 2] = np.nan
        cols[f"w{b + 1}mpro"] = mag
        cols[f"w{b + 1}sigmpro"] = pa.array(sig, mask=~np.isfinite(sig))
    cols["z_err"] = np.zeros(n)
    cols["reason"] = [""] * n
    meta = {"format": "sedinfer-ir-mock", "format_version": 1, "wave_obs_aa": wave.tolist(),
            "instrument": {"lsf_sigma_kms": 63.7}}
    table = pa.table(cols).replace_schema_metadata({b"sedinfer": json.dumps(meta).encode()})
    pq.write_table(table, path, row_group_size=row_group_size)


@pytest.mark.slow
def test_train_resume_then_predictor_and_metrics(tmp_path):
    """~30 s on a loaded 2-core machine: full-size autoencoder steps, checkpoints and 9 figures."""
    import argparse

    write_mock(tmp_path / "mock.parquet")
    parser = add_train_arguments(argparse.ArgumentParser())
    argv = [
        str(tmp_path / "mock.parquet"),
        "--out-dir",
        str(tmp_path / "out"),
        "--max-steps",
        "2",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "1",
        "--threads",
        "1",
    ]
    first = run_train(parser.parse_args([*argv, "--max-hours", "1e-9"]), log=lambda m: None)
    assert first == {"done": False, "step": 1}
    metrics = run_train(parser.parse_args(argv), log=lambda m: None)
    assert metrics["done"] and metrics["autoencoder_steps"] == 2
    assert len(metrics["predictor_test"]["chi2_n"]) == 4 and metrics["n_test"] == 8
    assert metrics["predictor_test"]["detected_fraction"][3] < 1
    for name in (
        "autoencoder.pt",
        "predictor.pt",
        "metrics.json",
        "pp_w1.png",
        "chi_w4.png",
        "color_color.png",
    ):
        assert (tmp_path / "out" / name).is_file(), name


# ------------------------------------------------------------------ a user's spectra + WISE catalog
def tiny_config():
    from conftest import TINY_AUTOENCODER
    from sedinfer.spectra.autoencoder import AutoencoderConfig

    return AutoencoderConfig(**TINY_AUTOENCODER)


def wise_rows(ids, ra, dec, seed=0, null_w4=()):
    """Catalog columns for the given sources: Vega mags, null w4sigmpro for the ids in ``null_w4``."""
    rng = np.random.default_rng(seed)
    cols = {"id": list(ids), "ra": list(ra), "dec": list(dec)}
    for b in range(1, 5):
        cols[f"w{b}mpro"] = list(11 + b + 0.1 * rng.standard_normal(len(ids)))
        cols[f"w{b}sigmpro"] = [None if (b == 4 and i in null_w4) else 0.03 for i in ids]
    return cols


def write_csv(path, cols) -> None:
    names = list(cols)
    lines = [",".join(names)] + [",".join("" if cols[c][i] is None else str(cols[c][i]) for c in names)
                                 for i in range(len(cols[names[0]]))]
    path.write_text("\n".join(lines) + "\n")


def user_inputs(tmp_path, n_good=8):
    """Spec files (n_good usable, then one of each bad kind) and a CSV WISE catalog."""
    spec = tmp_path / "spec"
    spec.mkdir()
    ids, ra, dec = [], [], []
    for i in range(n_good):
        ids.append(write_spec_file(spec / f"spec-0266-51602-{i + 1:04d}.fits", z=0.02 + 0.03 * i,
                                   ra=150 + 0.01 * i, dec=2.0, fiber=i + 1))
        ra.append(150 + 0.01 * i + 0.5 / 3600)          # 0.5 arcsec off: a match
        dec.append(2.0)
    n_pix = 3800
    bad = {  # fiber: (keywords, expected reason)
        101: ({"and_mask": np.ones(n_pix, np.int32)}, "every pixel is masked"),
        102: ({"loglam0": 3.58005}, "grid"),
        103: ({"flux": np.full(n_pix, np.nan)}, "NaN"),
        104: ({"z": np.nan}, "no redshift"),
        105: ({"z": 0.7}, "outside"),
        106: ({}, "not in the WISE catalog"),
        107: ({}, "no WISE source within 2"),
    }
    for k, (fiber, (kw, _)) in enumerate(bad.items()):
        ident = write_spec_file(spec / f"spec-0266-51602-{fiber:04d}.fits", ra=151 + 0.01 * k, dec=3.0,
                                fiber=fiber, **kw)
        if fiber != 106:
            ids.append(ident)
            ra.append(151 + 0.01 * k + (3.0 / 3600 if fiber == 107 else 0))
            dec.append(3.0)
    cat = tmp_path / "wise.csv"
    write_csv(cat, wise_rows(ids, ra, dec, null_w4=ids[:3]))
    expect = {f"0266-51602-{f:04d}": r for f, (_, r) in bad.items()}
    return spec, cat, expect


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return user_inputs(tmp_path_factory.mktemp("user"))


def parse(argv):
    import argparse

    return add_train_arguments(argparse.ArgumentParser()).parse_args(argv)


@pytest.mark.parametrize("match", ["id", "radec"])
def test_training_set_keeps_a_row_per_spectrum_with_reasons(tmp_path, inputs, match):
    from sedinfer.spectra.train_ir import training_set

    spec, cat, expect = inputs
    ts = training_set(parse([str(spec), "--out-dir", str(tmp_path / "o"), "--wise", str(cat),
                             "--match", match, "--chunk", "4"]))
    rows = ts.rows.set_index("id")
    assert len(rows) == 8 + len(expect)
    assert rows["ok"].sum() == len(ts.data) == (9 if match == "id" else 8)   # id: 107 matches, 3" off
    for ident, why in expect.items():
        if (match, why) in (("id", "no WISE source within 2"), ("radec", "not in the WISE catalog")):
            continue                       # the id is in the catalog but 3" off / the position matches
        assert not rows.loc[ident, "ok"] and why in rows.loc[ident, "reason"], ident
    if match == "radec":
        assert rows.loc["0266-51602-0001", "sep_arcsec"] == pytest.approx(0.5, abs=0.01)
    # null w4sigmpro -> non-detection: sigma NaN (10^4 mag in the likelihood), the rest detected
    assert np.isnan(ts.sigma[:3, 3]).all() and np.isfinite(ts.sigma[3:]).all()
    assert list(rows["wise_detected_bands"][:3]) == [3, 3, 3]


def test_spec_files_need_a_wise_catalog_with_every_band(tmp_path):
    from sedinfer.errors import CatalogError, ParameterError
    from sedinfer.spectra.train_ir import training_set

    spec, cat, _ = user_inputs(tmp_path, n_good=1)
    with pytest.raises(ParameterError, match="--wise"):
        training_set(parse([str(spec), "--out-dir", str(tmp_path / "o")]))
    text = cat.read_text().splitlines()
    keep = [i for i, c in enumerate(text[0].split(",")) if c not in ("w3sigmpro", "w4mpro")]
    (tmp_path / "cut.csv").write_text("\n".join(",".join(r.split(",")[i] for i in keep) for r in text))
    with pytest.raises(CatalogError, match="w4mpro, w3sigmpro"):
        training_set(parse([str(spec), "--out-dir", str(tmp_path), "--wise", str(tmp_path / "cut.csv")]))


def test_ir_train_on_spec_files_then_predict(tmp_path, inputs):
    """Tiny autoencoder, 2 steps, resumed; the predictor trained; ir predict on the same files."""
    import pandas as pd

    from sedinfer.cli import main
    from sedinfer.errors import ParameterError
    from sedinfer.spectra.train_ir import ROWS_FILE

    spec, cat, expect = inputs
    out = tmp_path / "models"
    argv = [str(spec), "--out-dir", str(out), "--wise", str(cat), "--match", "radec", "--max-steps", "2",
            "--batch-size", "4", "--checkpoint-every", "1", "--threads", "1", "--no-figures"]
    log = [].append
    assert run_train(parse([*argv, "--max-hours", "1e-9"]), log=log, model_config=tiny_config()) == {
        "done": False, "step": 1}
    metrics = run_train(parse(argv), log=log, model_config=tiny_config())
    assert metrics["done"] and metrics["n_spectra"] == 8
    rows = pd.read_parquet(out / ROWS_FILE)
    assert len(rows) == 8 + len(expect) and rows["ok"].sum() == 8
    cut = [str(p) for p in sorted(spec.glob("*.fits"))[:3]]     # other inputs: no silent resume
    with pytest.raises(ParameterError, match="other inputs"):
        run_train(parse([*cut, *argv[1:]]), log=log, model_config=tiny_config())
    pred = tmp_path / "pred.parquet"
    assert main(["ir", "predict", str(spec), "--models", str(out), "--out", str(pred), "--chunk", "5",
                 "--no-progress"]) == 0
    frame = pd.read_parquet(pred)
    assert len(frame) == 8 + len(expect) and frame["ok"].sum() == 8 + 2    # unmatched spectra predict fine
