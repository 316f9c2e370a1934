"""End to end on a tiny synthetic mock table: autoencoder, resume, predictor, metrics, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sedinfer.spectra.instrument import sdss_wave_aa
from sedinfer.spectra.train_ir import add_train_arguments, run_train


def write_mock(path, n: int = 40, seed: int = 0) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    wave = sdss_wave_aa()
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
    meta = {"format": "sedinfer-ir-mock", "format_version": 1, "wave_obs_aa": wave.tolist()}
    pq.write_table(pa.table(cols).replace_schema_metadata({b"sedinfer": json.dumps(meta).encode()}), path)


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
