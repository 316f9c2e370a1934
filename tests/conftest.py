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
