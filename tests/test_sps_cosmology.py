"""The cosmology table against astropy's own point-by-point integrals."""

import numpy as np
import pytest
import torch
from astropy.cosmology import WMAP9, LambdaCDM, Planck18

from sedinfer.sps.cosmology import CosmologyTable


@pytest.mark.parametrize("cosmology", [Planck18, WMAP9, LambdaCDM(70, 0.3, 0.6, Tcmb0=2.7, m_nu=[0, 0, 0.1])],
                         ids=["Planck18", "WMAP9", "curved"])
def test_table_matches_astropy(cosmology):
    table = CosmologyTable(cosmology, z_max=6.0)
    z = np.array([1e-3, 0.0123, 0.1, 0.5, 1.0, 2.345, 5.9])
    dl = table.luminosity_distance_mpc(torch.as_tensor(z)).numpy()
    age = table.age_gyr_at(torch.as_tensor(z)).numpy()
    # linear interpolation between grid points (dz = 1e-3) is the only approximation
    np.testing.assert_allclose(dl, cosmology.luminosity_distance(z).value, rtol=3e-5)
    np.testing.assert_allclose(age, cosmology.age(z).value, rtol=1e-6)
    on_grid = table.z[[1, 100, 2000, 5999]]
    idx = [1, 100, 2000, 5999]
    np.testing.assert_allclose(table.dl_mpc[idx], cosmology.luminosity_distance(on_grid).value, rtol=1e-10)
    np.testing.assert_allclose(table.age_gyr[idx], cosmology.age(on_grid).value, rtol=1e-10)
