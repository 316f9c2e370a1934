"""Local worker processes (:func:`sedinfer.parallel.process_map`)."""

import math
import os
import time

import pytest

from sedinfer.parallel import default_workers, process_map


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_every_task_once_and_the_work_shared():
    results = list(process_map(math.factorial, range(30), 2))
    assert sorted(results) == [math.factorial(k) for k in range(30)]
    pids = list(process_map(pid_after, [0.1] * 30, 2))
    assert os.getpid() in pids and len(set(pids)) == 2          # this process worked, and a worker did


def test_one_task_or_one_process_stays_here():
    assert list(process_map(pid_after, [0.0], 4)) == [os.getpid()]
    assert list(process_map(pid_after, [0.0] * 5, 1)) == [os.getpid()] * 5
    assert list(process_map(math.factorial, range(6), 1)) == [1, 1, 2, 6, 24, 120]   # in order, none lost
    assert 1 <= default_workers() <= 8


def test_an_error_in_a_worker_reaches_the_caller():
    with pytest.raises(ValueError, match="not defined for negative"):
        list(process_map(math.factorial, [3, 4, -1, 5, 6, 7], 2))
