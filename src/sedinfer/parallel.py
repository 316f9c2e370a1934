"""Worker processes for the commands that spread work: local process pools and Dask clusters.

:func:`process_map` runs tasks in this process and spawned local workers (``sedinfer posterior``
without ``--scheduler``). Processes rather than torch threads: an OpenMP team waits at every kernel
for its slowest thread, so two threads stall when another program holds one core, while two
processes that each take the next chunk when they finish only lose the busy core's share.

``--scheduler ADDRESS`` connects to a running Dask scheduler; ``--scheduler local`` starts a
:class:`distributed.LocalCluster` of single-threaded workers (``workers``, default: the number of
CPUs) for the duration of the job. The same option serves ``sedinfer posterior`` (catalog chunks)
and ``sedinfer population`` (ensemble members).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def dask_client(scheduler: str, workers: int | None = None, processes: bool = True) -> Iterator[Any]:
    """A connected :class:`distributed.Client`; a LocalCluster started for ``"local"`` is closed after."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=processes, dashboard_address=None)
    client = Client(cluster if cluster is not None else scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()





def restore_malloc_defaults() -> None:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_`` in a worker process (glibc only; a no-op elsewhere).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``. Any explicit threshold turns
    off glibc's dynamic mmap threshold, so every tensor above 128 kB is mapped and unmapped again:
    measured here, the SPS photometry of 1024 galaxies with its gradient took 0.30 s per call in a
    worker against 0.06 s in a plain process, and a population training step ~8x longer. Raising
    the mmap and trim thresholds (``mallopt``) at the start of a task restores the plain speed.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        return


def default_workers(cap: int = 8) -> int:
    """Local worker processes by default: the CPUs this process may use, at most ``cap`` (each
    holds its own copy of the model, ~1 GB for the SED posteriors)."""
    from sedinfer.threads import available_cpus

    return max(1, min(cap, available_cpus()))


def process_map(function: Callable[[Any], Any], tasks: Iterable[Any], processes: int) -> Iterator[Any]:
    """``function(task)`` for each task in ``processes`` processes: this one and ``processes - 1``
    spawned workers, yielded as they finish (not in task order).

    Workers are spawned, not forked: a child forked from a process whose OpenMP team (torch's
    intra-op pool) has run hangs at its first parallel kernel. A spawned worker needs a few seconds
    to import and load what ``function`` needs, so this process never waits for one: it works on
    a task itself whenever every worker has two queued, and at the end it takes back the queued
    tasks no worker has started. A single task runs here without starting any worker, and a
    worker slowed by another program on its core simply finishes fewer tasks. ``function`` must
    be a module-level function."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    it = iter(tasks)
    first = next(it, _END)
    second = next(it, _END) if first is not _END else _END
    if processes <= 1 or second is _END:
        for task in (first, second):
            if task is not _END:
                yield function(task)
        yield from map(function, it)
        return
    window = 2 * (processes - 1)
    pool = ProcessPoolExecutor(max_workers=processes - 1, mp_context=mp.get_context("spawn"))
    queued: dict = {pool.submit(function, second): second}
    try:
        yield function(first)
        for task in it:
            yield from _collect(queued, [f for f in queued if f.done()])
            if len(queued) < window:
                queued[pool.submit(function, task)] = task
            else:
                yield function(task)
        while queued:
            for future in [f for f in queued if f.cancel()]:     # not started by any worker: do it here
                yield function(queued.pop(future))
            if queued:
                done, _ = wait(list(queued), return_when=FIRST_COMPLETED)
                yield from _collect(queued, done)
    finally:                              # on an error or an interrupt, do not wait for queued tasks
        pool.shutdown(wait=not queued, cancel_futures=True)


_END = object()


def _collect(queued: dict, done) -> Iterator[Any]:
    for future in done:
        del queued[future]
        yield future.result()


def dask_map(function: Callable[[Any], Any], tasks: Iterable[Any], scheduler: str,
             workers: int | None = None, processes: bool = True) -> Iterator[Any]:
    """``function(task)`` for each task on a Dask cluster (:func:`dask_client`), yielded as they
    finish, with at most 2 tasks per worker queued (memory stays bounded for long task lists)."""
    from distributed import as_completed

    with dask_client(scheduler, workers, processes) as client:
        window = 2 * max(1, len(client.scheduler_info()["workers"]))
        pending = as_completed()
        for task in tasks:
            pending.add(client.submit(function, task, pure=False))
            while pending.count() >= window:
                yield next(pending).result()
        for future in pending:
            yield future.result()


__all__ = ["dask_client", "dask_map", "default_workers", "process_map", "restore_malloc_defaults"]
