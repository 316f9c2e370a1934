"""Mocks keep the Gaussian noise as drawn: pulls (f − f_true)/σ have mean 0 and std 1 per band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sedinfer.noise import default_noise_model
from sedinfer.priors import Prior, Uniform
from sedinfer.simulate import simulate_catalog, simulate_photometry

BANDS = ("sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0")


class _Filters:
    names = BANDS


class _FaintModel:
    """Stand-in forward model: fluxes from 0.1x to 10x the 5σ depth flux (many negative draws)."""

    param_names = ("a",)
    dtype = torch.float64
    device = torch.device("cpu")
    prior = Prior({"a": Uniform(-1.0, 1.0)})

    def photometry(self, theta, filters, units, chunk_size):
        depth = torch.tensor([22.0, 22.2, 22.2, 21.3, 20.5], dtype=torch.float64)
        return 10.0 ** (-0.4 * depth) * 10.0 ** theta.expand(-1, len(BANDS))


def _pulls(noisy, flux, sigma) -> np.ndarray:
    return ((noisy - flux) / sigma).numpy()


@pytest.mark.parametrize("redraw", [False, True])
def test_simulate_photometry_keeps_noise_as_drawn_by_default(redraw):
    noise = default_noise_model(BANDS)
    gen = torch.Generator().manual_seed(5)
    kwargs = {"redraw_negative": True} if redraw else {}
    _, flux, noisy, sigma = simulate_photometry(_FaintModel(), _Filters(), noise, 20_000, gen,
                                                progress=False, **kwargs)
    pull = _pulls(noisy, flux, sigma)
    if redraw:           # the explicit PopSED option: no negatives, pulls biased
        assert (noisy >= 0).all()
        assert (pull.mean(0) > 0.05).all()
    else:
        assert (noisy < 0).sum() > 1000
        np.testing.assert_allclose(pull.mean(0), 0.0, atol=0.03)
        np.testing.assert_allclose(pull.std(0), 1.0, atol=0.03)


@pytest.mark.slow
def test_simulate_catalog_pulls_have_mean_zero_std_one_per_band():
    table = simulate_catalog(10_000, seed=3, progress=False)
    assert table.meta["noise_redraw_negative"] is False
    for b in BANDS:
        pull = (np.asarray(table[f"flux_{b}"]) - np.asarray(table[f"flux_true_{b}"])) / np.asarray(
            table[f"flux_err_{b}"])
        assert abs(pull.mean()) < 0.03, b
        assert abs(pull.std() - 1.0) < 0.03, b
    assert (np.asarray(table["flux_sdss_u0"]) < 0).any()
