"""Progress of long work as log lines a person can follow in the task log.

An extract of millions of rows or a Bulk job of an hour should not sit silent between "started"
and "done". :class:`Progress` logs how far it is, out of how much when the total is known, at
what rate and how long it should still take: once at the first step (so the total shows at
once), then at most every :data:`EVERY` seconds, and once at the end. The lines go through the
standard ``logging`` module, which Airflow routes into the task log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["EVERY", "Progress", "duration"]

EVERY = 5.0
"""Seconds between two progress lines of one piece of work (the first and last always log)."""


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``: short enough for a log line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass(eq=False)
class Progress:
    """Counts units of work and logs where it stands.

    :param log: the logger of the module doing the work.
    :param what: the work, as the start of each line (``"REST query"``, ``"Bulk query job 750..."``).
    :param unit: what is counted (``"rows"``, ``"records"``, ``"bytes"``).
    :param total: how many there are, when known (``None``: lines show no share or time left).
    :param every: seconds between lines.
    :param clock: the clock lines are timed on.
    :param started: when the work began, on ``clock`` (default: now); rates count from there.
    """

    log: logging.Logger
    what: str
    unit: str = "rows"
    total: int | None = None
    every: float = EVERY
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    done: int = field(default=0, init=False)
    _logged_at: float | None = field(default=None, init=False)
    _logged_done: int = field(default=-1, init=False)
    _since: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._since = self.clock() if self.started is None else self.started

    def add(self, count: int) -> None:
        """``count`` more units are done; log if a line is due."""
        self.done += count
        now = self.clock()
        if self._logged_at is None or now - self._logged_at >= self.every:
            self._line(now)

    def finish(self) -> None:
        """Log the final count, unless the last line already showed it."""
        if self.done != self._logged_done:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        self._logged_at = now
        self._logged_done = self.done
        elapsed = now - self._since
        rate = self.done / elapsed if elapsed > 0 else 0.0
        count = f"{self.done:,}"
        if self.total is not None:
            share = 100.0 * self.done / self.total if self.total else 100.0
            count += f" of {self.total:,} {self.unit} ({share:.0f} %)"
        else:
            count += f" {self.unit}"
        parts = [count, f"{rate:,.0f} {self.unit}/s", f"{duration(elapsed)} so far"]
        if self.total is not None and rate > 0 and self.done < self.total:
            parts.append(f"about {duration((self.total - self.done) / rate)} left")
        self.log.info("%s: %s", self.what, ", ".join(parts))
