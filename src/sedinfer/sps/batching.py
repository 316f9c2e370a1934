"""Grouped matrix products without a Python loop over galaxies.

Many kernels apply, to each galaxy, a small matrix chosen by a discrete index: the redshift
interval of the filter projection, the (Z, log U) cell of the nebular grid, the (q_PAH, U_min)
cell of the dust-emission grid. :func:`grouped_matmul` sorts the galaxies by group, packs them
into zero-padded blocks of ``block`` rows that share one group and runs a single batched
matrix product of fixed inner shape; it is differentiable in ``x`` and ``tables``.

:func:`map_chunks` runs independent chunks of a batch in parallel CPU threads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def map_chunks(fn: Callable[[T], R], chunks: Sequence[T], parallel: bool = True) -> list[R]:
    """``[fn(c) for c in chunks]``, on CPU spread over ``torch.get_num_threads()`` Python threads.

    Each thread runs whole chunks with one intra-op thread: the many small element-wise kernels
    of a chunk scale poorly with intra-op threads, whole chunks side by side scale better.
    Used only without autograd and from the main thread (so concurrent callers in other threads
    never change torch's thread count under each other); otherwise, or with ``parallel`` False
    or one thread, the chunks run in order here. The caller's grad/inference mode is carried
    into the threads and torch's thread count is restored afterwards. Results keep the order
    of ``chunks``.
    """
    workers = min(torch.get_num_threads(), len(chunks))
    if (not parallel or workers < 2 or torch.is_grad_enabled()
            or threading.current_thread() is not threading.main_thread()):
        return [fn(c) for c in chunks]
    inference = torch.is_inference_mode_enabled()

    def call(chunk: T) -> R:
        torch.set_num_threads(1)
        with torch.inference_mode(inference), torch.no_grad():
            return fn(chunk)

    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="sedinfer-chunk") as pool:
            return list(pool.map(call, chunks))
    finally:
        torch.set_num_threads(threads)


def grouped_matmul(x: torch.Tensor, group: torch.Tensor, tables: torch.Tensor, block: int | None = None,
                   transposed: bool = False) -> torch.Tensor:
    """``out[n] = x[n] @ tables[group[n]]``.

    x (N, I), group (N,) int64 in [0, G), tables (G, I, O) — or (G, O, I) with
    ``transposed=True`` (the fast layout when O is small). ``block`` rows per padded block;
    by default the largest power of two not above the mean group size (8 to 128). Returns (N, O).
    """
    n, width = x.shape
    g_sorted, order = torch.sort(group)
    ids, counts = torch.unique_consecutive(g_sorted, return_counts=True)
    if block is None:
        block = int(2 ** math.floor(math.log2(max(n / max(len(ids), 1), 1.0))))
        block = min(max(block, 8), 128)
    n_sub = (counts + block - 1) // block
    first_sub = torch.cumsum(n_sub, 0) - n_sub
    first_row = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n, device=x.device) - torch.repeat_interleave(first_row, counts)
    slot_sorted = torch.repeat_interleave(first_sub, counts) * block + rank
    slot = torch.empty_like(slot_sorted).scatter_(0, order, slot_sorted)    # slot of each row of x
    # gather (fast) rather than scatter: padding slots read row 0 and their outputs are ignored
    source = torch.zeros(int(n_sub.sum()) * block, dtype=torch.long, device=x.device)
    source[slot] = torch.arange(n, device=x.device)
    packed = x.index_select(0, source).view(-1, block, width)
    mats = tables.index_select(0, torch.repeat_interleave(ids, n_sub))
    if transposed:
        mats = mats.transpose(1, 2)
    out = torch.bmm(packed, mats).reshape(-1, mats.shape[-1])
    return out.index_select(0, slot)


def cell_matmul(x: torch.Tensor, cell: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """``out[n] = x[n] @ tables[cell[n]]`` for a few large groups: one dense product per group.

    x (N, I), cell (N,) int64, tables (G, I, O). Rows already sorted by ``cell`` (as the model's
    chunks are) are used in place and, without autograd, written straight into the output.
    """
    order = None
    if cell.numel() > 1 and not bool((cell[1:] >= cell[:-1]).all()):
        cell, order = torch.sort(cell, stable=True)
        x = x.index_select(0, order)
    ids, counts = torch.unique_consecutive(cell, return_counts=True)
    bounds = [0, *torch.cumsum(counts, 0).tolist()]
    parts = list(zip(ids.tolist(), bounds[:-1], bounds[1:], strict=True))
    if torch.is_grad_enabled() and (x.requires_grad or tables.requires_grad):
        out = torch.cat([x[a:b] @ tables[g] for g, a, b in parts]) if parts else x @ tables[0]
    else:
        out = torch.empty(x.shape[0], tables.shape[-1], dtype=x.dtype, device=x.device)
        for g, a, b in parts:
            torch.mm(x[a:b], tables[g], out=out[a:b])
    return out if order is None else torch.empty_like(out).index_copy(0, order, out)


def cell_index(x: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval index i (x in [grid[i], grid[i+1]], clamped) and the linear weight of the upper
    node, for x (N,) on a sorted grid (G,). Constant beyond the ends."""
    g = grid.to(x.dtype)
    xc = x.clamp(g[0], g[-1])
    i = (torch.searchsorted(g, xc.detach().contiguous(), right=True) - 1).clamp(0, len(g) - 2)
    return i, (xc - g[i]) / (g[i + 1] - g[i])
