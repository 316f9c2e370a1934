"""One prediction row per spectrum, with reasons for the rows that cannot be predicted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_AUTOENCODER
from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.batch import assemble
from sedinfer.spectra.predict_ir import predict_wise
from sedinfer.spectra.predictor import WisePredictor

TINY = AutoencoderConfig(**TINY_AUTOENCODER, n_pix=3921)


def batch(n: int = 5):
    wave = 10 ** (TINY.loglam0 + TINY.dloglam * np.arange(TINY.n_pix))
    rng = np.random.default_rng(0)
    flux = 3 + rng.standard_normal((n, TINY.n_pix)) * 0.1
    ivar = np.full_like(flux, 100.0)
    z = np.array([0.05, 0.1, 0.52, np.nan, 0.1])[:n]
    ivar[4] = 0  # every pixel masked
    return assemble(
        wave,
        flux,
        ivar,
        np.zeros_like(flux, bool),
        z,
        np.zeros(n),
        ["GALAXY"] * n,
        [f"s{i}" for i in range(n)],
        ["test"] * n,
    )


def test_one_row_per_spectrum_with_reasons():
    torch.manual_seed(0)
    ae, pred = SpectrumAutoencoder(TINY).eval(), WisePredictor()
    out = predict_wise(batch(), ae, pred)
    assert list(out["id"]) == [f"s{i}" for i in range(5)]
    assert list(out["ok"]) == [True, True, False, False, False]
    assert "outside the trained range" in out["reason"][2] and "redshift" in out["reason"][3]
    assert "masked" in out["reason"][4]
    assert np.isfinite(out.loc[:1, ["latent_0", "w1_pred", "w4_pred_err"]].to_numpy()).all()
    assert out.loc[2:, "w1_pred"].isna().all()
    assert out["norm"][0] == pytest.approx(3.0, rel=0.05)


def test_other_grid_raises():
    ae = SpectrumAutoencoder(AutoencoderConfig(**{**TINY.to_dict(), "n_pix": 3900}))
    with pytest.raises(ValueError, match="grid"):
        predict_wise(batch(), ae, WisePredictor())


def test_ir_predict_cli_on_real_sdss_files_and_missing_models(tmp_path, capsys):
    import pandas as pd

    from sedinfer.cli import main

    ppxf = pytest.importorskip("ppxf")           # dev dependency: ships two SDSS DR18 spec files
    from pathlib import Path

    files = sorted(str(p) for p in (Path(ppxf.__file__).parent / "spectra").glob("*SDSS_DR18.fits"))
    torch.manual_seed(0)
    models = tmp_path / "models"
    SpectrumAutoencoder(TINY).save(models / "autoencoder.pt")
    WisePredictor().save(models / "predictor.pt")
    out = tmp_path / "pred.parquet"
    assert main(["ir", "predict", *files, "--models", str(models), "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == len(files) == 2 and frame["ok"].all()
    assert np.isfinite(frame[[f"w{b}_pred" for b in range(1, 5)]].to_numpy()).all()
    assert main(["ir", "predict", *files, "--models", str(tmp_path / "none"), "--out",
                 str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "autoencoder.pt" in err and "sedinfer ir train" in err


# ------------------------------------------------------------------ streamed, resumable ir predict
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    SpectrumAutoencoder(TINY).save(folder / "autoencoder.pt")
    WisePredictor().save(folder / "predictor.pt")
    return folder


def test_streamed_chunks_equal_one_batch_and_resume(tmp_path, models, monkeypatch):
    import pandas as pd

    import sedinfer.spectra.predict_ir as pir
    from sedinfer.errors import CatalogError
    from sedinfer.spectra.io import read_mock_table
    from test_spectra_train_ir import write_mock

    mock = tmp_path / "mock.parquet"
    write_mock(mock, n=23, row_group_size=5)          # chunks of 7 straddle the row groups
    ae, pred = pir.cached_models(pir.ModelFiles.from_dir(models))
    whole = predict_wise(read_mock_table(mock)[0], ae, pred)
    out = tmp_path / "pred.parquet"
    real, calls = pir.predict_chunk, []

    def dies_at_chunk_2(task):
        if task.index == 2:
            raise RuntimeError("killed")
        calls.append(task.index)
        return real(task)

    monkeypatch.setattr(pir, "predict_chunk", dies_at_chunk_2)
    with pytest.raises(RuntimeError, match="killed"):
        pir.run_predict_survey([mock], out, models, chunk=7, progress=False)
    assert not out.exists() and sorted(p.name for p in (tmp_path / "pred.parquet.parts").glob("part_*")) == [
        "part_000000.parquet", "part_000001.parquet"]
    with pytest.raises(CatalogError, match="chunk"):                 # other settings: refused
        pir.run_predict_survey([mock], out, models, chunk=5, progress=False)
    monkeypatch.setattr(pir, "predict_chunk", lambda t: (calls.append(t.index), real(t))[1])
    summary = pir.run_predict_survey([mock], out, models, chunk=7, progress=False)
    assert calls == [0, 1, 2, 3] and summary.n_resumed_rows == 14 and summary.n_rows == 23
    assert not (tmp_path / "pred.parquet.parts").exists()
    frame = pd.read_parquet(out)
    assert list(frame["id"]) == list(whole["id"]) and list(frame.columns) == list(whole.columns)
    cols = [c for c in whole.columns if c not in ("id", "ok", "reason")]
    np.testing.assert_allclose(frame[cols].to_numpy(float), whole[cols].to_numpy(float), rtol=1e-5)


@pytest.mark.slow
def test_dask_scheduler_gives_the_same_rows(tmp_path, models):
    import pandas as pd

    pytest.importorskip("distributed")
    from sedinfer.spectra.predict_ir import run_predict_survey
    from test_spectra_train_ir import write_mock

    mock = tmp_path / "mock.parquet"
    write_mock(mock, n=9)
    a, b = tmp_path / "a.parquet", tmp_path / "b.fits"
    run_predict_survey([mock], a, models, chunk=4, progress=False)
    run_predict_survey([mock], b, models, chunk=4, scheduler="local", workers=1, processes=False,
                       progress=False)
    from sedinfer.catalog import read_catalog

    fa, fb = pd.read_parquet(a), read_catalog(b).to_pandas()
    assert list(fa["id"]) == list(fb["id"])
    np.testing.assert_allclose(fa["w1_pred"], fb["w1_pred"], rtol=1e-6)


def test_bad_spectra_each_keep_a_row_with_a_reason(tmp_path, models):
    """Every pixel masked, off the SDSS grid, NaN flux, no z, z beyond the trained range: ok=False."""
    import pandas as pd

    from sedinfer.cli import main
    from test_spectra_train_ir import write_spec_file

    n_pix = 3800
    some_nan = 10 + np.zeros(n_pix)
    some_nan[::7] = np.nan                                         # masked pixels, still usable
    cases = [({}, ""), ({"and_mask": np.ones(n_pix, np.int32)}, "every pixel is masked"),
             ({"loglam0": 3.58005}, "grid"), ({"flux": np.full(n_pix, np.nan)}, "NaN"),
             ({"z": np.nan}, "redshift"), ({"z": 0.7}, "outside the trained range"), ({"flux": some_nan}, "")]
    for i, (kw, _) in enumerate(cases):
        write_spec_file(tmp_path / f"spec-0266-51602-{i + 1:04d}.fits", fiber=i + 1, **kw)
    out = tmp_path / "pred.parquet"
    assert main(["ir", "predict", str(tmp_path), "--models", str(models), "--out", str(out), "--chunk", "3",
                 "--no-progress"]) == 0
    frame = pd.read_parquet(out)
    assert list(frame["id"]) == [f"0266-51602-{i + 1:04d}" for i in range(len(cases))]
    for (_, why), ok, reason in zip(cases, frame["ok"], frame["reason"], strict=True):
        assert ok == (why == "") and why in reason, reason
    assert frame.loc[~frame["ok"], "w1_pred"].isna().all() and frame.loc[frame["ok"], "w1_pred"].notna().all()


def test_table_on_another_grid_is_refused(tmp_path, models):
    from sedinfer.errors import ParameterError
    from sedinfer.spectra.predict_ir import run_predict_survey
    from test_spectra_train_ir import write_mock

    write_mock(tmp_path / "m.parquet", n=3, n_pix=3900)
    with pytest.raises(ParameterError, match="grid of 3900 pixels"):
        run_predict_survey([tmp_path / "m.parquet"], tmp_path / "p.parquet", models, progress=False)
