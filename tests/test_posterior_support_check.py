"""The reference χ² detector of scripts/posterior_support_check.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    path = ROOT / "scripts" / "posterior_support_check.py"
    spec = importlib.util.spec_from_file_location("support_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nearest_template_chi2_fits_the_amplitude_and_respects_redshift():
    chi2 = _script().nearest_template_chi2
    rng = np.random.default_rng(0)
    templates = rng.uniform(1.0, 10.0, size=(300, 5))
    err = np.full((4, 5), 0.1)
    flux = np.stack([3.0 * templates[7], 0.5 * templates[100], -templates[5], templates[9] + [0, 0, 1, 0, 0]])
    got = chi2(flux, err, templates, chunk=3)
    np.testing.assert_allclose(got[:2], 0.0, atol=1e-9)        # scaled copies of a template
    assert got[2] == pytest.approx(np.sum((flux[2] / 0.1) ** 2), rel=1e-12)   # negative: amplitude 0
    assert 0 < got[3] <= 100.0                                  # one band 10 sigma off at most
    # by brute force over amplitudes for one galaxy
    a = np.linspace(0, 5, 50001)[:, None, None]
    brute = (((flux[3] - a * templates[None]) / 0.1) ** 2).sum(-1).min()
    assert abs(got[3] - brute) < 1e-3 * brute
    z_t = np.linspace(0, 1, 300)
    near = chi2(flux[:1], err[:1], templates, np.array([z_t[7]]), z_t, dz=1e-6)
    far = chi2(flux[:1], err[:1], templates, np.array([z_t[7] + 0.5]), z_t, dz=1e-6)
    assert near[0] < 1e-9 and far[0] > 1.0


def test_flag_rates_by_shift_significance():
    rows = _script().by_significance(np.array([0.5, 2.0, 4.0, 7.0, 12.0, 50.0]),
                                     np.array([False, True, True, False, True, True]))
    assert [r["n"] for r in rows] == [2, 1, 1, 2]
    assert [r["ood"] for r in rows] == [0.5, 1.0, 0.0, 1.0]
    assert rows[-1]["sigma_high"] is None and rows[0]["sigma_low"] == 0.0
    empty = _script().by_significance(np.array([1.0]), np.array([True]))
    assert empty[1]["n"] == 0 and empty[1]["ood"] is None
