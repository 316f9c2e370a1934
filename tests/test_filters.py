"""Tests of sedinfer.filters: loading, aliases, errors and reference photometry."""

from __future__ import annotations

import numpy as np
import pytest
from sedpy import observate

from sedinfer.errors import FilterError
from sedinfer.filters import FILTER_GROUPS, VEGA_TO_AB, FilterCurve, Filters, available_filters
from sedinfer.units import AB_ZEROPOINT_FNU_CGS, C_AA_PER_S

WAVE = np.geomspace(900.0, 4.0e5, 200_000)  # Å, covers GALEX FUV to WISE W4


def flat_ab_flam(wave: np.ndarray) -> np.ndarray:
    """f_λ (erg/s/cm²/Å) of a flat f_ν = 3631 Jy spectrum."""
    return AB_ZEROPOINT_FNU_CGS * C_AA_PER_S / wave**2


@pytest.mark.parametrize("group", ["sdss", "wise", "galex", "2mass", "hsc", "lsst", "decam"])
def test_flat_fnu_gives_one_maggy(group):
    filters = Filters(group)
    maggies = filters.maggies_from_spectrum(WAVE, flat_ab_flam(WAVE))
    np.testing.assert_allclose(maggies, 1.0, atol=1e-4)


def test_flat_fnu_numerator_matches_exact_ab_norm():
    """On a fine grid the trapezoid numerator converges to the exact ab_norm."""
    filters = Filters(["sdss", "wise", "galex", "2mass", "hsc"])
    trap = np.zeros_like(WAVE)
    trap[:-1] += 0.5 * np.diff(WAVE)
    trap[1:] += 0.5 * np.diff(WAVE)
    num = filters.transmission_on(WAVE) @ (flat_ab_flam(WAVE) * WAVE * trap)
    np.testing.assert_allclose(num / filters.ab_norm, 1.0, atol=1e-4)


def test_agrees_with_sedpy_getsed_on_power_law():
    filters = Filters(["sdss", "wise", "galex", "2mass", "hsc"])
    flam = np.stack([1e-16 * (WAVE / 5000.0) ** p for p in (-2.5, -1.0, 0.5)])  # (3, L)
    ours = -2.5 * np.log10(filters.maggies_from_spectrum(WAVE, flam))
    theirs = observate.getSED(WAVE, flam, filterlist=observate.load_filters(list(filters.names)))
    assert ours.shape == (3, len(filters))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_single_spectrum_shape_and_batch_consistency():
    filters = Filters("sdss")
    flam = 1e-17 * (WAVE / 5000.0) ** -1.5
    one = filters.maggies_from_spectrum(WAVE, flam)
    batch = filters.maggies_from_spectrum(WAVE, np.stack([flam, 2 * flam]))
    assert one.shape == (5,) and batch.shape == (2, 5)
    np.testing.assert_allclose(batch, np.stack([one, 2 * one]), rtol=1e-12)


def test_spectrum_not_covering_band_raises():
    wave = np.linspace(3000.0, 9000.0, 1000)
    with pytest.raises(FilterError, match="wise_w1"):
        Filters(["sdss_r0", "wise_w1"]).maggies_from_spectrum(wave, np.ones_like(wave))


def test_group_aliases_expand():
    assert Filters("sdss").names == FILTER_GROUPS["sdss"]
    assert Filters("2MASS").names == ("twomass_J", "twomass_H", "twomass_Ks")
    assert Filters(["twomass"]).names == Filters("2mass").names
    assert Filters("lsst").names[0] == "lsst_baseline_u"
    mixed = Filters(["galex", "sdss_r0", "wise"])
    assert mixed.names == ("galex_FUV", "galex_NUV", "sdss_r0", "wise_w1", "wise_w2", "wise_w3", "wise_w4")
    for names in FILTER_GROUPS.values():
        assert set(names) <= set(available_filters())


def test_unknown_name_suggests_close_match():
    with pytest.raises(FilterError) as info:
        Filters(["sdss_r0", "sdss_rr0"])
    msg = str(info.value)
    assert "sdss_rr0" in msg and "'sdss_r0'" in msg and "available_filters()" in msg
    with pytest.raises(FilterError, match="twomass_Ks"):
        Filters("twomass_ks")


def test_missing_file_and_duplicates_raise(tmp_path):
    with pytest.raises(FilterError, match="does not exist"):
        Filters(str(tmp_path / "nope.txt"))
    with pytest.raises(FilterError, match="sdss_r0"):
        Filters(["sdss", "sdss_r0"])


def test_curves_are_clean_and_attributes_consistent():
    filters = Filters(["sdss", "wise", "galex", "2mass", "hsc", "lsst", "decam"])
    for i, curve in enumerate(filters):
        assert curve is filters[i] is filters[curve.name]
        assert curve.wave_aa.dtype == np.float64 and np.all(np.diff(curve.wave_aa) > 0)
        assert np.all(curve.trans >= 0)
        pos = np.flatnonzero(curve.trans > 0)
        assert pos[0] <= 1 and pos[-1] >= curve.trans.size - 2  # at most one zero point per end
        assert filters.wave_min_aa[i] < filters.pivot_wave_aa[i] < filters.wave_max_aa[i]
        with pytest.raises(ValueError):
            curve.trans[0] = 1.0
    piv = {f.name: f.wave_pivot for f in observate.load_filters(list(filters.names))}
    np.testing.assert_allclose(filters.pivot_wave_aa, [piv[n] for n in filters.names], rtol=1e-4)
    assert filters.ab_norm.shape == (len(filters),) and np.all(filters.ab_norm > 0)
    assert "sdss_g0" in filters and "sdss_q0" not in filters and filters.index("wise_w2") == 6
    assert repr(Filters("galex")) == "Filters(['galex_FUV', 'galex_NUV'])"


def test_trimming_keeps_one_zero_per_end():
    curve = FilterCurve.from_arrays("box", [5, 1, 2, 3, 4, 6, 7], [0, 0, 0, 1, 2, 0, -1])
    np.testing.assert_array_equal(curve.wave_aa, [2, 3, 4, 5])
    np.testing.assert_array_equal(curve.trans, [0, 1, 2, 0])
    with pytest.raises(FilterError, match="box"):
        FilterCurve.from_arrays("box", [1, 2, 3], [0, 0, 0])


def test_two_column_file(tmp_path):
    path = tmp_path / "my_box.dat"
    wave = np.linspace(4000.0, 6000.0, 201)
    trans = np.where((wave > 4500) & (wave < 5500), 0.8, 0.0)
    np.savetxt(path, np.column_stack([wave, trans]), header="wavelength_AA transmission")
    filters = Filters([str(path), "sdss_r0"])
    assert filters.names == ("my_box", "sdss_r0")
    assert filters[0].wave_aa[0] == pytest.approx(4500.0) and filters[0].wave_aa[-1] == pytest.approx(5500.0)
    assert Filters(path) == Filters(str(path))
    # exact pivot of a box from 4510 to 5490 Å with linear ramps of 10 Å either side
    assert 4900 < filters.pivot_wave_aa[0] < 5000
    np.testing.assert_allclose(filters.maggies_from_spectrum(WAVE, flat_ab_flam(WAVE)), 1.0, atol=1e-6)
    bad = tmp_path / "bad.txt"
    bad.write_text("4000 0.1 \n5000\n")
    with pytest.raises(FilterError, match="bad.txt"):
        Filters(str(bad))


def test_equality_and_hash(tmp_path):
    a, b = Filters("sdss"), Filters(["sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"])
    assert a == b and hash(a) == hash(b) and a.digest == b.digest
    assert {a: 1}[b] == 1
    assert a != Filters(["sdss_g0", "sdss_u0", "sdss_r0", "sdss_i0", "sdss_z0"])
    assert a != Filters("hsc") and a != "sdss"
    # same name, different curve -> different set
    wave = np.array([4000.0, 4500.0, 5000.0, 5500.0])
    one = Filters(FilterCurve.from_arrays("x", wave, [0.0, 1.0, 1.0, 0.0]))
    two = Filters(FilterCurve.from_arrays("x", wave, [0.0, 1.0, 0.9, 0.0]))
    assert one != two and one.digest != two.digest


def test_vega_offsets():
    wise = Filters("wise")
    np.testing.assert_allclose(wise.vega_to_ab(), [2.699, 3.339, 5.174, 6.620])
    np.testing.assert_allclose(Filters("2mass").vega_to_ab(), [0.91, 1.39, 1.85])
    np.testing.assert_allclose(wise.vega_to_ab(["twomass_Ks", "wise_w1"]), [1.85, 2.699])
    assert wise.vega_to_ab("twomass_H").shape == (1,)
    assert set(VEGA_TO_AB) == set(FILTER_GROUPS["wise"] + FILTER_GROUPS["2mass"])
    with pytest.raises(FilterError, match="sdss_r0"):
        Filters(["wise_w1", "sdss_r0"]).vega_to_ab()


def test_available_filters():
    names = available_filters()
    assert "sdss_r0" in names and "wise_w4" in names and names == sorted(names)
