"""Contract tests of the spectrum autoencoder: shapes, explicit redshift, masks, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_AUTOENCODER
from sedinfer.spectra.ae_losses import (
    consistency_loss,
    fidelity_chi2,
    similarity_loss,
    spectral_dissimilarity,
)
from sedinfer.spectra.autoencoder import AutoencoderConfig, SpectrumAutoencoder
from sedinfer.spectra.instrument import sdss_wave_aa
from sedinfer.spectra.restframe import observed_to_rest, rest_grid, shift_redshift

TINY = dict(TINY_AUTOENCODER, n_pix=400)


def tiny_model(seed: int = 0, **kw) -> SpectrumAutoencoder:
    torch.manual_seed(seed)
    return SpectrumAutoencoder(AutoencoderConfig(**{**TINY, **kw}))


def spectra(n: int, m: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    flux = 1 + 0.1 * torch.randn(n, m, generator=g)
    ivar = torch.full((n, m), 50.0)
    z = 0.4 * torch.rand(n, generator=g)
    return flux, ivar, z


def test_shapes_and_default_size():
    m = tiny_model()
    f, w, z = spectra(5, 400)
    s, y = m(f, w, z)
    assert s.shape == (5, 6) and y.shape == (5, 400)
    assert m.decode(s).shape == (5, m.n_rest) and len(m.wave_rest_aa) == m.n_rest
    big = SpectrumAutoencoder()
    # rest grid covers the SDSS grid de-redshifted over 0 <= z <= 0.5, on finer pixels
    wave = sdss_wave_aa()
    assert big.wave_rest_aa[0] < wave[0] / 1.5 and big.wave_rest_aa[-1] > wave[-1]
    assert big.config.dloglam_rest < big.config.dloglam
    assert 3e6 < big.n_parameters < 5e6


def test_bad_input_raises():
    m = tiny_model()
    f, w, z = spectra(2, 400)
    with pytest.raises(ValueError, match="grid"):
        m.encode(f[:, :300], w[:, :300], z)
    with pytest.raises(ValueError, match="trained range"):
        m.encode(f, w, torch.tensor([0.1, 0.7]))


@pytest.mark.parametrize("z", [0.0, 0.1, 0.25, 0.45])
def test_redshift_puts_a_line_at_lambda_1_plus_z(z):
    m = SpectrumAutoencoder(AutoencoderConfig(dropout=0.0))
    lam0 = 5007.0
    rest = torch.as_tensor(np.exp(-0.5 * ((m.wave_rest_aa - lam0) / 1.0) ** 2), dtype=torch.float32)[None]
    obs = m.observe(rest, torch.tensor([z]))[0].numpy()
    wave = sdss_wave_aa()
    # sub-pixel peak position from a parabola through the three highest pixels
    i = int(np.argmax(obs))
    a, b, c = obs[i - 1 : i + 2]
    frac = 0.5 * (a - c) / (a - 2 * b + c)
    peak = 10 ** (3.578 + 1e-4 * (i + frac))
    assert abs(peak / (lam0 * (1 + z)) - 1) < 2e-5  # < 0.1 pixel (2.3e-4 in ln λ)
    # the LSF spreads the line: FWHM ≈ 2.3548 σ(LSF ⊕ line) in pixels
    assert np.sum(obs > obs.max() / 2) >= 2
    assert wave[0] < peak < wave[-1]


def test_rest_grid_and_round_trip_of_resampling():
    lo, n = rest_grid(3.578, 1e-4, 3921, 0.5, 1e-4)
    assert lo < 3.578 - np.log10(1.5) and lo + 1e-4 * (n - 1) > 3.578 + 1e-4 * 3920
    loglam = torch.as_tensor(3.578 + 1e-4 * np.arange(3921))
    flux = torch.sin(loglam * 300)[None].double()
    ivar = torch.ones_like(flux)
    ivar[0, 100:110] = 0
    f2, w2 = shift_redshift(flux, ivar, 1e-4, torch.tensor([0.1]).double(), torch.tensor([0.3]).double())
    # f_new(λ) = f(λ (1 + z) / (1 + z_new)), masked pixels stay masked and the shifted-in end is masked
    u = np.log10(1.1 / 1.3) / 1e-4
    j = np.arange(3921)
    expect = np.interp(j + u, j, flux[0].numpy())
    good = w2[0].numpy() > 0
    assert good.sum() > 3000 and np.allclose(f2[0].numpy()[good], expect[good], atol=2e-3)
    assert not good[: int(-u) - 1].any()
    rest_f, rest_w = observed_to_rest(
        flux, ivar, 3.578, 1e-4, loglam - np.log10(1.2), torch.tensor([0.2]).double()
    )
    assert np.allclose(rest_f[0, 200:3000].numpy(), flux[0, 200:3000].numpy(), atol=1e-6)
    assert (rest_w[0, 100:110] == 0).all()


def test_masked_pixels_do_not_change_the_fidelity_loss():
    f, w, _ = spectra(3, 400)
    model = torch.ones(3, 400)
    base = fidelity_chi2(f, w, model)
    w2, f2 = w.clone(), f.clone()
    w2[:, 50:80] = 0
    f2[:, 50:80] = 1e6  # garbage under the mask
    f2[0, 55] = float("nan")
    keep = torch.ones(400, dtype=torch.bool)
    keep[50:80] = False
    expect = fidelity_chi2(f[:, keep], w[:, keep], model[:, keep])
    got = fidelity_chi2(f2, w2, model)
    assert torch.allclose(got, expect) and not torch.allclose(got, base)


def test_encoder_sees_masks_not_masked_values():
    m = tiny_model()
    m.eval()
    f, w, z = spectra(2, 400)
    w[:, 10:20] = 0
    f2 = f.clone()
    f2[:, 10:20] = 123.0
    assert torch.allclose(m.encode(f, w, z), m.encode(f2, w, z))


def test_similarity_and_consistency_losses():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(16, 6, generator=g)
    assert float(consistency_loss(s, s)) == pytest.approx(0.0, abs=1e-7)
    assert float(consistency_loss(s, s + torch.randn(16, 6, generator=g))) > 0.2
    spec = torch.randn(16, 50, generator=g)
    d_y = spectral_dissimilarity(spec, torch.ones(16, 50))
    assert torch.allclose(d_y, d_y.T, atol=1e-5) and torch.allclose(torch.diag(d_y), torch.zeros(16))
    # latents whose distances match the spectra's cost less than unrelated latents
    matched = similarity_loss(spec, d_y * 50 / 50)
    unrelated = similarity_loss(torch.randn(16, 6, generator=g), d_y)
    assert float(matched) < float(unrelated)


def test_save_load_round_trip(tmp_path):
    m = tiny_model(seed=4)
    m.metadata["note"] = "test"
    m.eval()
    f, w, z = spectra(4, 400)
    s, y = m(f, w, z)
    path = m.save(tmp_path / "ae.pt")
    m2 = SpectrumAutoencoder.load(path)
    s2, y2 = m2(f, w, z)
    assert torch.equal(s, s2) and torch.equal(y, y2)
    assert m2.config == m.config and m2.metadata == {"note": "test"}
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "sedinfer-spectrum-autoencoder" and payload["format_version"] == 1
