"""Grouped matrix products used by the forward model (sedinfer.sps.batching)."""

import threading

import pytest
import torch

from sedinfer.sps.batching import cell_matmul, grouped_matmul, map_chunks


def _reference(x, cell, tables):
    return torch.stack([x[n] @ tables[cell[n]] for n in range(x.shape[0])])


@pytest.mark.parametrize("presorted", [True, False])
def test_cell_matmul_matches_per_row_products(presorted):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=gen, dtype=torch.float64)
    tables = torch.randn(5, 12, 7, generator=gen, dtype=torch.float64)
    cell = torch.randint(0, 5, (300,), generator=gen)
    cell[cell == 3] = 2                                   # a group with no rows
    if presorted:
        cell = torch.sort(cell)[0]
    want = _reference(x, cell, tables)
    torch.testing.assert_close(cell_matmul(x, cell, tables), want)
    with torch.inference_mode():
        torch.testing.assert_close(cell_matmul(x, cell, tables), want)
    torch.testing.assert_close(grouped_matmul(x, cell, tables), want)


def test_cell_matmul_gradients_match_dense():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    tables = torch.randn(3, 6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    cell = torch.randint(0, 3, (40,), generator=gen)
    assert torch.autograd.gradcheck(lambda a, t: cell_matmul(a, cell, t), (x, tables))


def test_map_chunks_keeps_order_modes_and_thread_count():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []

        def fn(c):
            seen.append((threading.get_ident(), torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
            return c * 10

        with torch.inference_mode():
            assert map_chunks(fn, list(range(7))) == [c * 10 for c in range(7)]
        assert {s[1:] for s in seen} == {(False, True)}          # the caller's mode, in every thread
        assert torch.get_num_threads() == 2                         # restored
        main = threading.get_ident()
        assert all(t != main for t, _, _ in seen)
        seen.clear()
        with torch.no_grad():
            map_chunks(fn, list(range(3)))
        assert {s[1:] for s in seen} == {(False, False)}
        seen.clear()
        map_chunks(fn, list(range(3)))                              # autograd on: in order, here
        assert [t for t, _, _ in seen] == [main] * 3 and all(s[1] for s in seen)
        seen.clear()
        worker = threading.Thread(target=lambda: torch.no_grad()(map_chunks)(fn, list(range(3))))
        worker.start()
        worker.join()                                                # from another thread: in order, there
        assert len({t for t, _, _ in seen}) == 1 and seen[0][0] != main
    finally:
        torch.set_num_threads(n)
