"""WISE predictions for a batch of spectra: one row per spectrum, none dropped (issue 17 §7, §9).

:func:`predict_wise` takes a :class:`~sedinfer.spectra.SpectrumBatch` (``read_sdss`` or
``read_mock_table``), a trained :class:`~sedinfer.spectra.autoencoder.SpectrumAutoencoder` and
:class:`~sedinfer.spectra.predictor.WisePredictor`, and returns a table with ``id``, ``z``,
``latent_0`` … ``latent_5``, ``norm`` (10⁻¹⁷ erg/s/cm²/Å), ``w1_pred`` … ``w4_pred``,
``w1_pred_err`` … ``w4_pred_err`` (Vega mag), ``ok`` and ``reason``. A row the reader already
flagged keeps its reason; a missing or out-of-range redshift gets one; those rows have NaN
predictions. A batch on another wavelength grid raises ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from sedinfer.spectra.autoencoder import SpectrumAutoencoder
from sedinfer.spectra.batch import SpectrumBatch
from sedinfer.spectra.predictor import WisePredictor


def predict_wise(
    batch: SpectrumBatch, autoencoder: SpectrumAutoencoder, predictor: WisePredictor, batch_size: int = 512
):
    """The prediction table (a pandas DataFrame, one row per spectrum of ``batch``)."""
    import pandas as pd

    cfg = autoencoder.config
    wave = 10.0 ** (cfg.loglam0 + cfg.dloglam * np.arange(cfg.n_pix))
    if np.shape(batch.wave_obs_aa) != wave.shape or not np.allclose(batch.wave_obs_aa, wave, rtol=1e-6):
        raise ValueError(
            f"the spectra are not on the autoencoder's {cfg.instrument_name} grid "
            f"({cfg.n_pix} pixels from {wave[0]:.1f} A); got {np.size(batch.wave_obs_aa)} pixels"
        )
    n = len(batch)
    z = np.asarray(batch.z, dtype=np.float64)
    reason = np.array([str(r) for r in batch.reason], dtype=object)
    ok = np.asarray(batch.ok, dtype=bool).copy()
    bad_z = ok & ~(np.isfinite(z) & (z >= 0) & (z <= cfg.z_max))
    reason[bad_z] = [
        f"z = {v:.4g} outside the trained range [0, {cfg.z_max:g}]" if np.isfinite(v) else "no redshift"
        for v in z[bad_z]
    ]
    ok &= ~bad_z
    latents = np.full((n, cfg.n_latent), np.nan)
    mean = np.full((n, 4), np.nan)
    err = np.full((n, 4), np.nan)
    rows = np.flatnonzero(ok)
    if rows.size:
        s = autoencoder.encode_arrays(batch.flux_norm[rows], batch.ivar_norm[rows], z[rows], batch_size)
        latents[rows] = s
        mean[rows], err[rows] = predictor.predict(s, batch.norm_flam_1e17[rows], z[rows])
    cols = {"id": np.asarray(batch.id, dtype=str), "z": z}
    cols.update({f"latent_{j}": latents[:, j] for j in range(cfg.n_latent)})
    cols["norm"] = np.asarray(batch.norm_flam_1e17, dtype=np.float64)
    cols.update({f"w{b + 1}_pred": mean[:, b] for b in range(4)})
    cols.update({f"w{b + 1}_pred_err": err[:, b] for b in range(4)})
    cols.update({"ok": ok, "reason": reason.astype(str)})
    return pd.DataFrame(cols)


__all__ = ["predict_wise"]
