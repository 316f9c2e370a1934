"""Tests of the packaged NMF SFH bases (src/sedinfer/data/nmf_sfh_bases.csv).

The bases are made by scripts/make_nmf_bases.py (see docs/nmf_bases.md): four non-negative
densities s_i(x) on normalised lookback time x = t_lookback / t_age in [0, 1], each with unit
integral, ordered s1 (most recent) ... s4 (oldest) as in PopSED eq. 1.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

CSV = resources.files("sedinfer") / "data" / "nmf_sfh_bases.csv"


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    with resources.as_file(CSV) as path:
        return np.loadtxt(path, delimiter=",", comments="#")


def _trapz(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(x)).sum(-1)


def test_shape_and_grid(table):
    assert table.ndim == 2 and table.shape[1] == 5
    x = table[:, 0]
    assert len(x) >= 400
    assert x[0] == 0.0 and x[-1] == 1.0
    assert np.all(np.diff(x) > 0)
    assert np.all(np.isfinite(table))


def test_bases_non_negative(table):
    assert np.all(table[:, 1:] >= 0.0)


def test_unit_integral(table):
    x, bases = table[:, 0], table[:, 1:].T
    np.testing.assert_allclose(_trapz(bases, x), 1.0, atol=1e-4)


def test_ordered_youngest_to_oldest(table):
    x, bases = table[:, 0], table[:, 1:].T
    mean_x = _trapz(bases * x, x)
    assert np.all(np.diff(mean_x) > 0), mean_x
    assert mean_x[0] < 0.5 < mean_x[-1]


def test_header_documents_provenance():
    head = [ln for ln in CSV.read_text().splitlines() if ln.startswith("#")]
    text = "\n".join(head)
    for word in ("make_nmf_bases.py", "seed", "NMF", "x,s1,s2,s3,s4"):
        assert word in text


def test_consumer_reads_it():
    """sedinfer.sps.sfh.nmf_bases turns the densities into cumulative curves ending at 1."""
    sfh = pytest.importorskip("sedinfer.sps.sfh")
    x, cum = sfh.nmf_bases()
    assert cum.shape == (4, len(x))
    np.testing.assert_allclose(cum[:, -1], 1.0)
    assert np.all(np.diff(cum, axis=1) >= 0)
