"""SDSS + WISE mocks: broadening, noise, selection, normalisation, Parquet output."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from sedinfer.errors import CatalogError, ParameterError
from sedinfer.spectra import MockPrior, SpectralNoise, sdss_instrument, simulate_mocks
from sedinfer.spectra.batch import NORM_WINDOW_REST_AA
from sedinfer.spectra.cli import add_simulate_arguments, run_simulate
from sedinfer.spectra.io import read_mock_table, write_mock_table
from sedinfer.spectra.noise import flam_1e17_of_ab
from sedinfer.spectra.simulate import fibre_spectra

C_KMS = 299792.458


@pytest.fixture(scope="module")
def mocks(full_model):
    return (simulate_mocks(40, full_model, "coupled", seed=7),
            simulate_mocks(40, full_model, "separable", seed=7))


def test_velocity_broadening_adds_in_quadrature_and_conserves_flux(full_model):
    """Second moment of [O III] 5008 (no stellar absorption under it): σ_v = 300 minus
    σ_v = 50 gives 300² − 50² (the LSF and the pixel widths cancel); the line flux is kept."""
    inst = sdss_instrument()
    prior = MockPrior(full_model)
    theta = prior.sample(1, torch.Generator().manual_seed(0))["theta"].repeat(2, 1)
    names = full_model.param_names
    for k, v in {"redshift": 0.05, "log_mass": 10.0, "log_z": -0.5, "f_burst": 0.3, "t_burst": 0.005,
                 "tau_bc": 0.3, "tau_ism": 0.1, "log_u": -2.5}.items():
        theta[:, names.index(k)] = v
    flux = fibre_spectra(full_model, theta, torch.tensor([50.0, 300.0]), torch.ones(2), inst).numpy()
    v = C_KMS * np.log(inst.wave_obs_aa / (5008.24 * 1.05))
    side = ((v > 1500) & (v < 3000)) | ((v < -1500) & (v > -1800))      # [O III] 4960 is at -2870
    win = np.abs(v) < 1200
    m2, total = [], []
    for row in flux:
        cont = np.polyval(np.polyfit(v[side], row[side], 1), v[win])
        line = row[win] - cont
        total.append(line.sum())
        mean = (line * v[win]).sum() / line.sum()
        m2.append((line * (v[win] - mean) ** 2).sum() / line.sum())
    assert total[0] > 10 * np.abs(flux[0, side]).mean()      # a strong line
    assert total[1] == pytest.approx(total[0], rel=0.01)
    assert m2[1] - m2[0] == pytest.approx(300**2 - 50**2, rel=0.03)
    # the narrow line is as wide as the LSF and σ_v = 50 km/s together, plus pixels
    expected = 50**2 + inst.lsf_sigma_kms**2 + (2 * 0.5 * inst.pixel_kms) ** 2 / 12
    assert np.sqrt(m2[0]) == pytest.approx(np.sqrt(expected), rel=0.15)


def test_spectral_noise_pulls_and_reference_snr():
    noise = SpectralNoise()
    f_ref = noise.flux_ref_1e17
    assert f_ref == pytest.approx(flam_1e17_of_ab(18.7))
    true = torch.full((50, 3921), f_ref, dtype=torch.float64) * torch.linspace(0.1, 10, 50,
                                                                              dtype=torch.float64)[:, None]
    noisy, ivar, depth = noise.add_noise(true, torch.Generator().manual_seed(0))
    pull = ((noisy - true) * ivar.sqrt()).numpy()
    assert abs(pull.mean()) < 0.005 and pull.std() == pytest.approx(1.0, abs=0.005)
    flat = SpectralNoise(depth_scatter_dex=0.0)
    sig = flat.sigma(torch.tensor([[f_ref, 0.0, 100 * f_ref]], dtype=torch.float64))[0]
    assert float(f_ref / sig[0]) == pytest.approx(10.0)                  # S/N_ref at r_fibre = 18.7
    assert float(sig[1] / sig[0]) == pytest.approx(np.sqrt(0.5))         # sky term alone
    # bright end photon-limited: S/N grows as sqrt(f)
    assert float(100 * f_ref / sig[2]) == pytest.approx(10 * 100 / np.sqrt(0.5 * 100 + 0.5))
    with pytest.raises(ValueError, match="sky_fraction"):
        SpectralNoise(sky_fraction=0.0)


def test_mocks_selection_spectra_and_wise(mocks, full_model):
    coupled, separable = mocks
    inst = sdss_instrument()
    for cat in mocks:
        s = cat.spectra
        assert len(cat) == 40 and s.ok.all() and (cat.r_ab < 17.77).all()
        assert s.flux_norm.shape == (40, 3921) and np.array_equal(s.wave_obs_aa, inst.wave_obs_aa)
        assert s.mask[:, inst.sky_mask].all() and (s.ivar_norm[s.mask] == 0).all()
        np.testing.assert_allclose(s.z, cat.theta[:, 0])
        for i in range(40):      # normalisation: median 1 in the rest-frame window
            rest = s.wave_obs_aa / (1 + s.z[i])
            win = (rest >= NORM_WINDOW_REST_AA[0]) & (rest <= NORM_WINDOW_REST_AA[1]) & ~s.mask[i]
            assert np.median(s.flux_norm[i, win]) == pytest.approx(1.0, abs=1e-5)
        good = ~s.mask
        pull = (s.flux_flam_1e17 - cat.flux_true_1e17)[good] * np.sqrt(s.ivar_flam_1e17[good])
        assert abs(pull.mean()) < 0.01 and pull.std() == pytest.approx(1.0, abs=0.01)
        w = cat.wise
        assert w.mpro_vega.shape == (40, 4) and np.isnan(w.sigmpro_vega[~w.detected]).all()
        assert (w.detected[:, :2]).all()        # W1, W2 of r < 17.77 galaxies are bright
        assert ((cat.fiber_frac > 0) & (cat.fiber_frac <= 1)).all()
    # same seed: the same selected optical galaxies, infrared columns permuted
    ir = [full_model.param_names.index(n) for n in ("qpah", "umin", "gamma")]
    opt = [j for j in range(len(full_model.param_names)) if j not in ir]
    np.testing.assert_array_equal(coupled.theta[:, opt], separable.theta[:, opt])
    for j in ir:
        assert not np.array_equal(coupled.theta[:, j], separable.theta[:, j])
        np.testing.assert_array_equal(np.sort(coupled.theta[:, j]), np.sort(separable.theta[:, j]))


def test_mocks_are_reproducible(mocks, full_model):
    again = simulate_mocks(40, full_model, "coupled", seed=7)
    np.testing.assert_array_equal(again.spectra.flux_norm, mocks[0].spectra.flux_norm)
    np.testing.assert_array_equal(again.wise.mpro_vega, mocks[0].wise.mpro_vega)
    with pytest.raises(ParameterError, match="positive integer"):
        simulate_mocks(0, full_model)


def test_chunks_are_reproducible_and_written_in_row_groups(full_model, tmp_path):
    import pyarrow.parquet as pq

    from sedinfer.spectra.simulate import concat_mocks, iter_mocks

    chunks = list(iter_mocks(7, full_model, "separable", seed=3, chunk_galaxies=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    whole = simulate_mocks(7, full_model, "separable", seed=3, chunk_galaxies=3)
    np.testing.assert_array_equal(concat_mocks(chunks).spectra.flux_norm, whole.spectra.flux_norm)
    assert list(whole.spectra.id) == [f"mock-3-{i:07d}" for i in range(7)]
    path = write_mock_table(iter(chunks), tmp_path / "chunks.parquet", sdss_instrument())
    assert pq.ParquetFile(path).num_row_groups == 3
    spectra, table, _ = read_mock_table(path)
    assert table.column("id").to_pylist() == list(whole.spectra.id)
    np.testing.assert_allclose(spectra.flux_norm, whole.spectra.flux_norm, rtol=1e-5, atol=1e-6)
    with pytest.raises(CatalogError, match="no mock galaxies"):
        write_mock_table(iter([]), tmp_path / "empty.parquet", sdss_instrument())
    assert not (tmp_path / "empty.parquet").exists()


def test_parquet_round_trip(mocks, tmp_path):
    import pyarrow.parquet as pq

    cat = mocks[0]
    inst = sdss_instrument()
    path = write_mock_table(cat, tmp_path / "mock.parquet", inst, {"seed": 7})
    spectra, table, info = read_mock_table(path)
    np.testing.assert_allclose(info["wave_obs_aa"], inst.wave_obs_aa, rtol=1e-15)
    assert info["seed"] == 7 and info["instrument"]["n_pix"] == 3921
    np.testing.assert_allclose(spectra.flux_norm, cat.spectra.flux_norm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spectra.norm_flam_1e17, cat.spectra.norm_flam_1e17, rtol=1e-6)
    names = table.column_names
    for b in range(1, 5):
        for kind in ("mpro", "sigmpro", "snr"):
            assert f"w{b}{kind}" in names
    det = cat.wise.detected
    for b in range(4):
        col = table.column(f"w{b + 1}sigmpro")
        assert col.null_count == int((~det[:, b]).sum())
    assert pq.read_schema(path).field("flux_flam_1e17").type.list_size == 3921
    with pytest.raises(CatalogError, match="already exists"):
        write_mock_table(cat, path, inst)


def test_cli_runner(tmp_path, full_model):
    parser = add_simulate_arguments(argparse.ArgumentParser())
    out = tmp_path / "sim.parquet"
    args = parser.parse_args(["--n", "5", "--seed", "2", "--prior", "separable", "--out", str(out),
                              "--chunk", "2"])
    path = run_simulate(args, model=full_model)
    spectra, table, info = read_mock_table(path)
    assert table.num_rows == 5 and info["prior_kind"] == "separable" and info["prior"]["kind"] == "separable"
    want = {"id", "z", "flux_flam_1e17", "ivar_flam_1e17", "qpah", "w1mpro", "w4sigmpro"}
    assert want <= set(table.column_names)
    with pytest.raises(ParameterError, match="already exists"):
        run_simulate(args, model=full_model)
    with pytest.raises(SystemExit):
        parser.parse_args(["--n", "5", "--prior", "other", "--out", str(out)])
