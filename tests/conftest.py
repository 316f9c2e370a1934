"""Shared fixtures: models and filter sets are built once per test session (plans are cached)."""

from __future__ import annotations

import pytest
import torch

import sedinfer as si


@pytest.fixture(scope="session")
def sdss():
    return si.Filters("sdss")


@pytest.fixture(scope="session")
def sdss_wise():
    return si.Filters(["sdss", "wise"])


@pytest.fixture(scope="session")
def default_model():
    return si.SPSModel()


@pytest.fixture(scope="session")
def full_model():
    return si.SPSModel(nebular=True, dust_emission=True)


@pytest.fixture(scope="session")
def full_model64():
    return si.SPSModel(nebular=True, dust_emission=True).double()


@pytest.fixture()
def gen():
    return torch.Generator().manual_seed(1234)


#: the smallest spectrum autoencoder the spectra tests train and run (AutoencoderConfig keywords)
TINY_AUTOENCODER = dict(filters=(4, 8, 8), kernel_sizes=(3, 5, 7), encoder_hidden=(8,),
                        decoder_hidden=(16, 32), dloglam_rest=1e-4, dropout=0.0)
