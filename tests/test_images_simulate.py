"""Simulated dusty galaxies of issue 18 §2: seeding, the truth's physics, the two host variants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sedinfer.images.galaxies import View, draw_galaxy, redshift_for_size, shen_late_type_r50_kpc
from sedinfer.images.instrument import hsc_instrument
from sedinfer.images.simulate import SimulationConfig, covering_fraction, simulate_galaxies

FACE_ON = View(0.0, 0.0)
EDGE_ON = View(np.pi / 2, 0.0)


def fake_seds(theta: np.ndarray) -> np.ndarray:
    """nJy (N, 5): older populations redder (a power law in the HSC pivot wavelengths)."""
    lam = np.array([4791.0, 6214.0, 7689.0, 8903.0, 9772.0]) / 6000.0
    slope = np.log10(theta[:, 3:4] * 1e3) - 2.5                   # age 10 Myr: -1.5, 10 Gyr: +1.5
    return 10 ** (theta[:, 1:2] - 4.0) * lam[None] ** slope


@pytest.fixture(scope="module")
def inst():
    return hsc_instrument()


@pytest.fixture(scope="module")
def both(inst):
    cfg = SimulationConfig(n_views=2, variants=("fiducial", "monochromatic"))
    return simulate_galaxies([3], 11, inst, fake_seds, cfg)


def test_same_seed_same_galaxy_independent_of_batch(inst):
    cfg = SimulationConfig(n_views=1)
    a = simulate_galaxies([0, 1], 5, inst, fake_seds, cfg)
    b = simulate_galaxies([1], 5, inst, fake_seds, cfg)
    for key in ("image", "host", "transmission", "host_cube"):
        np.testing.assert_array_equal(getattr(a[1], key), getattr(b[0], key))
    c = simulate_galaxies([1], 6, inst, fake_seds, cfg)
    assert not np.allclose(a[1].host, c[0].host)


def test_truth_is_normalised_and_consistent(both):
    for v in both:
        assert v.host.sum() == pytest.approx(1.0) and (v.host >= 0).all()
        assert (v.transmission > 0).all() and (v.transmission <= 1).all()
        np.testing.assert_allclose(v.sed_njy, v.host_cube.sum((1, 2)), rtol=1e-12)
        k = v.extra["ratio"]
        np.testing.assert_allclose(v.scene, v.host_cube * v.transmission[None] ** k[:, None, None],
                                   rtol=1e-10)
        assert v.image.shape == (5, 64, 64) and v.variance.shape == (5, 64, 64)


def test_monochromatic_variant_has_constant_colours(both):
    fid = [v for v in both if v.variant == "fiducial"][0]
    mono = [v for v in both if v.variant == "monochromatic"][0]
    np.testing.assert_array_equal(fid.transmission, mono.transmission)
    np.testing.assert_allclose(mono.sed_njy, fid.sed_njy, rtol=1e-12)
    bright = mono.host > 1e-3 * mono.host.max()
    colour = mono.host_cube[0][bright] / mono.host_cube[2][bright]
    assert np.ptp(colour) < 1e-9 * colour.mean()
    fid_colour = fid.host_cube[0][bright] / fid.host_cube[2][bright]
    assert np.ptp(np.log(fid_colour)) > 0.05          # bulge, disk and knots differ in colour


def test_dust_free_galaxy_has_unit_transmission(inst):
    def no_dust(g):
        return dataclasses.replace(g, tau0=0.0, knots=dataclasses.replace(g.knots, tau=0 * g.knots.tau))

    (v,) = simulate_galaxies([2], 1, inst, fake_seds, SimulationConfig(n_views=1), views=[FACE_ON],
                             edit=no_dust)
    np.testing.assert_allclose(v.transmission, 1.0, atol=1e-12)
    np.testing.assert_allclose(v.scene, v.host_cube, rtol=1e-10)
    assert v.covering_fraction == 0.0 and v.a0_mean_mag == pytest.approx(0.0, abs=1e-10)


def test_edge_on_disk_has_a_mid_plane_dust_lane(inst):
    def dusty(g):
        return dataclasses.replace(g, tau0=4.0, covering_target=1.0, arm_amplitude=0.0, bulge_fraction=0.05)

    (v,) = simulate_galaxies([4], 2, inst, fake_seds, SimulationConfig(n_views=1), views=[EDGE_ON],
                             edit=dusty)
    c = 32
    mid, above = v.transmission[c, c - 3:c + 4], v.transmission[c + 4, c - 3:c + 4]
    assert (mid < above).all() and mid.mean() < 0.5
    # the same galaxy face-on is attenuated less
    (f,) = simulate_galaxies([4], 2, inst, fake_seds, SimulationConfig(n_views=1), views=[FACE_ON],
                             edit=dusty)
    assert f.a0_mean_mag < v.a0_mean_mag


def test_covering_follows_the_requested_range(inst):
    low = SimulationConfig(n_views=1, covering_range=(0.02, 0.05))
    high = SimulationConfig(n_views=1, covering_range=(0.95, 1.0))

    def thick(g):   # enough dust everywhere for the target to be reachable
        return dataclasses.replace(g, tau0=3.0)

    lo = simulate_galaxies([0, 1, 2], 3, inst, fake_seds, low, views=[FACE_ON], edit=thick)
    hi = simulate_galaxies([0, 1, 2], 3, inst, fake_seds, high, views=[FACE_ON], edit=thick)
    for a, b in zip(lo, hi, strict=True):
        assert a.extra["proxy_covering"] == pytest.approx(a.galaxy.covering_target, abs=0.02)
        assert a.covering_fraction < 0.35 < 0.8 < b.covering_fraction <= 1.0


def test_covering_fraction_definition():
    host = np.array([[0.5, 0.3], [0.2, 0.0]])
    d = np.array([[1.0, 10 ** (-0.4 * 0.1)], [10 ** (-0.4 * 0.04), 0.1]])
    assert covering_fraction(host, d) == pytest.approx(0.3)


def test_galaxy_draws_in_documented_ranges():
    gals = [draw_galaxy(np.random.default_rng([9, i])) for i in range(200)]
    delta = np.array([g.delta for g in gals])
    assert -0.8 <= delta.min() < -0.6 and 0.2 < delta.max() <= 0.4
    r50_pix = np.array([1.678 * g.disk_h_kpc / g.kpc_per_arcsec / 0.168 for g in gals])
    assert 3.0 - 1e-6 <= r50_pix.min() and r50_pix.max() <= 10.0 + 1e-6
    assert all(0.005 <= g.redshift <= 0.5 for g in gals)
    # Shen et al. (2003) late types: ~2.7 kpc at 1e10 M_sun (median over the scatter)
    rng = np.random.default_rng(0)
    r50 = [shen_late_type_r50_kpc(10.0, rng) for _ in range(2000)]
    assert np.median(r50) == pytest.approx(2.66, rel=0.05)
    assert np.isnan(redshift_for_size(1e-3, 100.0))


@pytest.mark.slow
def test_sps_component_colours(inst):
    from sedinfer.images.seds import sps_sed_function

    f = sps_sed_function(inst.filters)
    theta = np.array([[0.1, 10.0, 0.1, 10.0, 1.0, -2.5], [0.1, 10.0, -0.3, 0.02, 10.0, -2.5]])
    g_i = -2.5 * np.log10(f(theta)[:, 0] / f(theta)[:, 2])
    assert g_i[0] > 0.8 and g_i[1] < 0.3          # old bulge red, 20 Myr knot blue


def test_training_pairs(inst):
    from sedinfer.images.simulate import simulate_pairs

    pairs = simulate_pairs(1, 4, inst, fake_seds, SimulationConfig(n_views=2), start=7)
    assert pairs["host"].shape == (2, 64, 64) and pairs["dust"].dtype == np.float32
    assert list(pairs["index"]) == [7, 7] and list(pairs["view"]) == [0, 1]
    np.testing.assert_allclose(pairs["host"].sum((1, 2)), 1.0, rtol=1e-5)


def test_thin_dust_layer_transmits_the_front_half_of_the_disk():
    # a dust layer much thinner than the stars: D = 1/2 + 1/2 exp(-τ_face), at any inclination
    # with τ along the sight line = τ_face / cos i
    from sedinfer.images.dust3d import PLANE_GRID, los_extent_kpc, view_transmission

    gal = draw_galaxy(np.random.default_rng([0, 5]))
    gal = dataclasses.replace(gal, tau0=2.0, dust_hz_kpc=0.02 * gal.disk_hz_kpc,
                              knots=dataclasses.replace(gal.knots, tau=0 * gal.knots.tau))
    kpc_pix = 0.168 * gal.kpc_per_arcsec
    ones = np.ones((PLANE_GRID, PLANE_GRID))
    for inc in (0.0, np.deg2rad(60.0)):
        view = View(float(inc), 0.0)
        knots = np.zeros((len(gal.knots.tau), 64, 64))
        d = view_transmission(gal, view, (64, 64), kpc_pix, ones, los_extent_kpc(gal), knots)["disk"]
        for col in (32, 36, 40):               # along the major axis: disk-plane radius = offset
            r = abs(col - 32) * kpc_pix
            tau = gal.tau0 * np.exp(-r / gal.dust_h_kpc) / np.cos(inc)
            assert d[32, col] == pytest.approx(0.5 + 0.5 * np.exp(-tau), abs=0.02)
