"""Progress of long jobs: a tqdm bar on a terminal, plain timed lines otherwise.

When stderr is a terminal, :func:`progress` shows a tqdm bar. When it is not (a batch job, a
pipe, a log file), a bar would print nothing useful for minutes or fill the log with carriage
returns; :class:`ProgressLines` instead writes one line every ``interval`` seconds (default
:data:`INTERVAL_S`), when an update arrives, and a last line at the end::

    posterior: 3000/10000 galaxies, 12.3 s, 4.1 ms/galaxy, eta 29 s

Rates count only the items computed in this run (``skip`` marks resumed ones).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

INTERVAL_S = 10.0
"""Seconds between two progress lines when stderr is not a terminal."""


class ProgressLines:
    """Timed progress lines on ``stream``: ``update(n)`` after each piece of work, ``close()`` at the end."""

    def __init__(self, total: int | None, desc: str, unit: str = "galaxies", unit_one: str = "galaxy",
                 stream: TextIO | None = None, interval: float | None = None) -> None:
        self.total, self.desc, self.unit, self.unit_one = total, desc, unit, unit_one
        self.stream = stream if stream is not None else sys.stderr
        self.interval = INTERVAL_S if interval is None else float(interval)
        self.n = self.skipped = 0
        self.start = self.last = time.perf_counter()
        self._dirty = False

    def skip(self, n: int) -> None:
        """``n`` items done earlier (resumed): counted in the total, not in the rate."""
        self.n += int(n)
        self.skipped += int(n)
        self._dirty = True

    def update(self, n: int) -> None:
        self.n += int(n)
        self._dirty = True
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self._write(now)

    def line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        elapsed = now - self.start
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.desc}: {self.n}{of} {self.unit}, {elapsed:.1f} s"
        done = self.n - self.skipped
        if done > 0:
            per = elapsed / done
            text += f", {1e3 * per:.1f} ms/{self.unit_one}"
            if self.total is not None and self.n < self.total:
                text += f", eta {per * (self.total - self.n):.0f} s"
        return text

    def _write(self, now: float) -> None:
        print(self.line(now), file=self.stream, flush=True)
        self.last = now
        self._dirty = False

    def close(self) -> None:
        if self._dirty:
            self._write(time.perf_counter())

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Bar:
    """tqdm behind the same ``update`` / ``skip`` / ``close`` interface."""

    def __init__(self, total: int | None, desc: str, unit: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def skip(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent:
    def update(self, n: int) -> None:
        del n

    skip = update

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(total: int | None, desc: str, enabled: bool = True, unit: str = "galaxies",
             unit_one: str = "galaxy", stream: TextIO | None = None):
    """A progress reporter (context manager with ``update(n)``, ``skip(n)``, ``close()``).

    ``enabled`` False: silent. Otherwise a tqdm bar if ``stream`` (default stderr) is a terminal,
    else :class:`ProgressLines`.
    """
    if not enabled:
        return _Silent()
    stream = stream if stream is not None else sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        return _Bar(total, desc, unit)
    return ProgressLines(total, desc, unit, unit_one, stream)


__all__ = ["INTERVAL_S", "ProgressLines", "progress"]
