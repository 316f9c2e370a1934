"""How many CPU threads torch may use for a job, and a scope that sets and restores it.

Default: one intra-op thread per process (:data:`DEFAULT_THREADS`). The work of a catalog run is
many small kernels (flow layers on a few thousand rows, the SPS model's derived quantities), which
gain little from intra-op threads but suffer badly from oversubscription: OpenMP teams wait at
every kernel for a thread the OS has given to another process. Measured on a 2-core machine with
one other busy process, ``sedinfer posterior`` on 1000 galaxies took 337 s with torch's default
(2 threads, and :func:`sedinfer.sps.batching.map_chunks` running chunks in 2 Python threads) against
42 s with one thread (issue 20). More threads pay only on an otherwise idle machine; to use many
cores, run several single-threaded processes (``--scheduler local --workers N``) instead.

:func:`torch_threads` sets ``torch.set_num_threads`` for the duration of a ``with`` block and
restores the previous value afterwards (so library calls leave no global change behind).
:func:`sedinfer.sps.batching.map_chunks` spreads chunks over ``torch.get_num_threads()`` threads,
so one thread also runs its chunks in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sedinfer.errors import ParameterError

DEFAULT_THREADS = 1
"""torch intra-op threads per process unless ``--threads`` / ``threads=`` says otherwise."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> int:
    """``threads`` as a positive int (None: :data:`DEFAULT_THREADS`); else :class:`ParameterError`."""
    if threads is None:
        return DEFAULT_THREADS
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParameterError(f"threads must be a positive integer, got {threads!r}")
    return threads


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` torch intra-op threads (None: :data:`DEFAULT_THREADS`);
    the previous count is restored on exit. Yields the count in use."""
    import torch

    n = check_threads(threads)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


__all__ = ["DEFAULT_THREADS", "available_cpus", "check_threads", "torch_threads"]
