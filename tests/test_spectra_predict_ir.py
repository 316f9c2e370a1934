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
