"""The NMF SFH kernel: the per-run interpolation equals the general one."""

import numpy as np
import pytest
import torch

import sedinfer as si
from sedinfer.sps import sfh as S


def _runs(n_runs: int, per_run: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    model = si.SPSModel()
    theta = model.prior.sample(n_runs * per_run, generator=g).double()
    theta[:, 0] = (torch.rand(n_runs, generator=g, dtype=torch.float64) * 1.5).repeat_interleave(per_run)
    return model.double(), theta


@pytest.mark.parametrize("n_runs, per_run", [(7, 50), (40, 2)])   # long runs, and the fallback
def test_runs_kernel_equals_general_kernel(n_runs, per_run):
    x, cum = S.nmf_bases()
    xp, fp = torch.as_tensor(x).contiguous(), torch.as_tensor(cum)
    g = torch.Generator().manual_seed(1)
    key = torch.rand(n_runs, generator=g, dtype=torch.float64).repeat_interleave(per_run)
    grid = torch.rand(1, 30, generator=g, dtype=torch.float64).sort(-1).values * 1.2
    xq = (grid / key[:, None]).clamp(0, 1)
    beta = torch.rand(len(key), 4, generator=g, dtype=torch.float64)
    beta = beta / beta.sum(-1, keepdim=True)
    fast = S._interp_mixture_runs(xq, key, xp, fp, beta)
    slow = S._interp_mixture(xq, xp, fp, beta)
    assert fast.shape == slow.shape
    assert torch.allclose(fast, slow, rtol=0, atol=1e-13)


def test_bin_weights_do_not_depend_on_row_order():
    """Sorted into runs of one redshift (the fast path) or shuffled (the general path), every
    galaxy gets the same SFH weights and derived quantities."""
    model, theta = _runs(6, 100)
    perm = torch.randperm(len(theta), generator=torch.Generator().manual_seed(2))
    w_runs = model.sfh_weights(model.parse(theta))
    w_mixed = model.sfh_weights(model.parse(theta[perm]))
    assert torch.allclose(w_runs[perm], w_mixed, rtol=1e-12, atol=0)     # M_sun per age bin
    d_runs, d_mixed = model.derived(theta), model.derived(theta[perm])
    for k in d_runs:
        np.testing.assert_allclose(d_runs[k][perm].numpy(), d_mixed[k].numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=k)
