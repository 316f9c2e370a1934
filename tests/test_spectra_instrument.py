"""Instrument: LSF kernel (flux, width), sky lines in vacuum, grid checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer.spectra import SKY_LINES, sdss_instrument
from sedinfer.spectra.instrument import lsf_sigma_kms
from sedinfer.spectra.skylines import air_to_vacuum


def _moments(flux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.arange(flux.shape[-1], dtype=flux.dtype)
    total = flux.sum(-1)
    mean = (flux * x).sum(-1) / total
    var = (flux * (x - mean.unsqueeze(-1)) ** 2).sum(-1) / total
    return total, mean, var


def test_lsf_conserves_flux_and_has_the_expected_width():
    inst = sdss_instrument()
    flux = torch.zeros(3, inst.n_pix, dtype=torch.float64)
    flux[:, 2000] = 1.0                       # unresolved lines
    extra = torch.tensor([0.0, 100.0, 250.0], dtype=torch.float64)
    out = inst.apply_lsf(flux, extra)
    total, mean, var = _moments(out)
    torch.testing.assert_close(total, torch.ones(3, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(mean, torch.full((3,), 2000.0, dtype=torch.float64), atol=1e-5, rtol=0)
    expected = (inst.lsf_sigma_kms**2 + extra**2) / inst.pixel_kms**2
    torch.testing.assert_close(var, expected, rtol=2e-3, atol=0)
    # the R = 2000 LSF is 0.92 pixel
    assert float(var[0].sqrt()) == pytest.approx(0.922, abs=0.002)


def test_lsf_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expected \(N, 3921\)"):
        sdss_instrument().apply_lsf(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="resolution"):
        lsf_sigma_kms(0.0)


def test_sky_lines_in_vacuum_and_masked():
    # [O I] 5577.34 A in air is 5578.89 A in vacuum; Na D2 5889.95 -> 5891.58
    np.testing.assert_allclose(air_to_vacuum([5577.34, 5889.95, 6300.30]), [5578.89, 5891.58, 6302.05],
                               atol=0.02)
    inst = sdss_instrument()
    for line in SKY_LINES:
        near = np.abs(inst.wave_obs_aa - line.wave_vac_aa) < 0.5 * line.wave_vac_aa * 69.03 / 299792.458
        assert inst.sky_mask[near].all(), line.name
    # away from the lines nothing is masked; a line masks ±300 km/s ≈ ±4.3 pixels
    assert inst.sky_mask.sum() == pytest.approx(8 * 9 + 3, abs=6)
    assert not inst.sky_mask[(inst.wave_obs_aa > 6500) & (inst.wave_obs_aa < 9000)].any()


def test_pixel_index_checks_the_grid():
    inst = sdss_instrument()
    ll = inst.loglam[10:20].astype(np.float32)          # float32 as in the files
    np.testing.assert_array_equal(inst.pixel_index(ll), np.arange(10, 20))
    with pytest.raises(ValueError, match="not the SDSS grid"):
        inst.pixel_index(ll + 0.3e-4)
    with pytest.raises(ValueError, match="not the SDSS grid"):
        inst.pixel_index(ll[::-1])


def test_new_parts_are_reachable_from_the_top_level_package():
    import sedinfer as si

    assert callable(si.spectra.read_sdss) and si.images.__name__ == "sedinfer.images"
