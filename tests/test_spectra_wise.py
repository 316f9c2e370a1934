"""WISE Vega magnitudes, zero points and AllWISE-style non-detections."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer.filters import VEGA_TO_AB
from sedinfer.noise import default_noise_model
from sedinfer.spectra import WISE_BANDS, observe_wise
from sedinfer.spectra.wise import ab_to_vega, catalog_entries, jy_to_vega, vega_to_ab, vega_to_jy
from sedinfer.units import WISE_LIMIT_5SIGMA_VEGA, WISE_ZEROPOINT_JY


def test_vega_round_trips_and_offsets():
    mag = np.array([[10.0, 11.0, 8.0, 6.0], [16.9, 16.0, 11.5, 8.0]])
    np.testing.assert_allclose(jy_to_vega(vega_to_jy(mag)), mag, atol=1e-12)
    np.testing.assert_allclose(ab_to_vega(vega_to_ab(mag)), mag, atol=1e-12)
    np.testing.assert_allclose(vega_to_ab(np.zeros(4)), [2.699, 3.339, 5.174, 6.620])
    # zero point -> AB through 3631 Jy agrees with the Jarrett et al. offsets to < 0.07 mag (W3)
    via_jy = -2.5 * np.log10(vega_to_jy(mag) / 3631.0)
    diff = via_jy - vega_to_ab(mag)
    np.testing.assert_allclose(diff[0], [-0.016, -0.019, 0.068, -0.016], atol=2e-3)
    # AllWISE 5σ limits: 0.054, 0.071, 0.73, 5.0 mJy
    lim = np.array([WISE_LIMIT_5SIGMA_VEGA[b] for b in WISE_BANDS])
    np.testing.assert_allclose(vega_to_jy(lim) * 1e3, [0.054, 0.071, 0.73, 5.0], rtol=0.06)
    assert list(WISE_ZEROPOINT_JY) == list(WISE_BANDS)


def test_offsets_match_sedpy_vega_spectrum():
    from sedpy import observate

    sedpy = -np.array([f.ab_to_vega for f in observate.load_filters(list(WISE_BANDS))])
    np.testing.assert_allclose(sedpy, [VEGA_TO_AB[b] for b in WISE_BANDS], atol=0.04)


def test_catalog_entries_detections_and_limits():
    flux = np.array([[1e-6, 0.0, -1e-8, 3e-7]])
    sigma = np.full((1, 4), 1e-7)
    mpro, sig, snr, det = catalog_entries(flux, sigma)
    assert det.tolist() == [[True, False, False, True]]
    assert np.isnan(sig[0, 1:3]).all() and np.isfinite(sig[0, [0, 3]]).all()
    assert sig[0, 0] == pytest.approx(1.0857 * 0.1, rel=1e-3)
    # upper limit: magnitude of max(f, 0) + 2σ
    assert mpro[0, 1] == pytest.approx(-2.5 * np.log10(2e-7) - VEGA_TO_AB["wise_w2"])
    assert mpro[0, 2] == pytest.approx(-2.5 * np.log10(2e-7) - VEGA_TO_AB["wise_w3"])
    with pytest.raises(ValueError, match="sigma_maggies"):
        catalog_entries(flux, np.zeros((1, 4)))


def test_observe_wise_noise_at_the_depth_and_at_zero_flux():
    noise = default_noise_model(list(WISE_BANDS), snr_scatter=0.0)
    # the package's AllWISE depths (AB) are the Vega limits plus the offsets, rounded to 0.05 mag
    lim_vega = np.array([WISE_LIMIT_5SIGMA_VEGA[b] for b in WISE_BANDS])
    np.testing.assert_allclose(noise.mag_lim_5sigma.numpy(), vega_to_ab(lim_vega), atol=0.05)
    at_limit = 10 ** (-0.4 * noise.mag_lim_5sigma.numpy())
    n = 20000
    f = torch.as_tensor(np.tile(at_limit, (n, 1)))
    w = observe_wise(f, torch.Generator().manual_seed(0), noise)
    pull = (w.flux_maggies - f.numpy()) / w.sigma_maggies
    np.testing.assert_allclose(pull.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(pull.std(0), 1.0, atol=0.03)
    np.testing.assert_allclose(np.median(w.snr, 0), 5.0, atol=0.1)
    assert (w.detected.mean(0) > 0.99).all()
    zero = observe_wise(torch.zeros(n, 4, dtype=torch.float64), torch.Generator().manual_seed(1), noise)
    np.testing.assert_allclose(zero.detected.mean(0), 1 - 0.97725, atol=0.006)      # P(N(0,1) > 2)
    assert np.isnan(zero.sigmpro_vega[~zero.detected]).all()
    assert np.isfinite(zero.mpro_vega).all()
