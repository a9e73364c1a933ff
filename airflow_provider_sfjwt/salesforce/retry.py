"""Retrying: the policy as data, and the one loop that applies it.

Every place that retries - the REST client, the token exchange, a Bulk result download that broke
off, a REST answer cut mid-body, records refused for a passing reason - follows the same rules:
exponential backoff with full jitter (so parallel tasks do not retry in lockstep), ``Retry-After``
honoured, at most ``max_retries`` retries, a warning per retry and an error that says what to do
when they run out. The loop is written once, in :meth:`RetryPolicy.attempts`:

.. code-block:: python

    for attempt in policy.attempts("GET limits"):
        with attempt:
            ...  # raise Retryable(...) for a failure worth another try

It works in plain functions and in generators alike (a download that yields blocks resumes inside
the same loop), which a callback-style ``run(fn)`` could not.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

from .bounds import whole_number

__all__ = [
    "check_transient_retries",
    "DEFAULT_TRANSIENT_RETRIES",
    "TRANSIENT_ERROR_CODES",
    "TRANSIENT_STATUSES",
    "Attempt",
    "Refused",
    "RetryPolicy",
    "Retryable",
    "parse_retry_after",
    "resend_refused",
    "transient_codes",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERROR_CODES = ("UNABLE_TO_LOCK_ROW",)
"""Per-record error codes that are about the moment, not the data: another transaction (a
trigger, a flow, a parallel load) held the record or its parent. Such records are sent again."""
DEFAULT_TRANSIENT_RETRIES = 3


def check_transient_retries(value: int) -> int:
    """``value`` if it can be a ``transient_retries`` setting: 0 (never resend) or more."""
    return whole_number(
        "transient_retries", value, 0, meaning="0: never send refused records again"
    )


def transient_codes(codes: str | Collection[str]) -> frozenset[str]:
    """The error codes to treat as transient; one code may be given as a plain string."""
    return frozenset([codes] if isinstance(codes, str) else codes)


class Retryable(Exception):
    """Raised inside an attempt: this try failed for a reason that another try may not meet.

    ``reason`` goes into the retry warning; ``retry_after`` is the server's ``Retry-After``, if
    any; ``exhausted`` builds the error raised when no retry is left (it is given the number of
    tries made), so each caller keeps a message that says what to do in its own terms.
    """

    def __init__(
        self,
        reason: str,
        *,
        exhausted: Callable[[int], BaseException],
        retry_after: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exhausted = exhausted
        self.retry_after = retry_after


class Attempt:
    """One try; as a context manager it catches :class:`Retryable` and lets all else through."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.failure: Retryable | None = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Retryable):
            self.failure = exc
            return True
        return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; :meth:`attempts` applies it."""

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    statuses: frozenset[int] = field(default=TRANSIENT_STATUSES)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after:
            seconds = parse_retry_after(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    def attempts(self, what: str) -> Iterator[Attempt]:
        """Tries of ``what``, until one ends without :class:`Retryable`.

        After a failed try: with retries left, wait (:meth:`delay`) and log a warning naming
        ``what`` and the reason; without, raise the failure's ``exhausted`` error.
        """
        number = 0
        while True:
            attempt = Attempt(number)
            yield attempt
            failure = attempt.failure
            if failure is None:
                return
            if number >= self.max_retries:
                raise failure.exhausted(number + 1) from None
            wait = self.delay(number, failure.retry_after)
            number += 1
            log.warning(
                "%s: %s; retry %d/%d in %.1f s",
                what,
                failure.reason,
                number,
                self.max_retries,
                wait,
            )
            time.sleep(wait)

    def run(self, what: str, attempt: Callable[[int], T]) -> T:
        """``attempt(number)`` under :meth:`attempts`; its result once a try succeeds."""
        results: list[T] = []
        for each in self.attempts(what):
            with each:
                results.append(attempt(each.number))
        return results[0]


def parse_retry_after(value: str) -> float | None:
    """``Retry-After`` is either delta-seconds or an HTTP date."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


@dataclass(frozen=True)
class Refused(Generic[T]):
    """Records refused for a transient reason: what to send again, how many, with which codes."""

    records: T
    count: int
    codes: Collection[str]


def resend_refused(
    policy: RetryPolicy,
    rounds: int,
    what: str,
    how: str,
    refused: Callable[[], Refused[T] | None],
    send: Callable[[T], None],
) -> int:
    """Send again, up to ``rounds`` times, the records refused for a transient reason.

    Each round asks ``refused()`` what the previous answer refused that way (``None`` when
    nothing), waits with the policy's backoff, logs ``what``, the count, the codes and ``how``
    they are sent again, and calls ``send``. Returns how many records were sent again in all.
    Both sObject Collections (records of one chunk) and Bulk ingest (rows of finished jobs,
    loaded in new jobs) resend this way; only what "refused" and "send" mean differs.
    """
    resent = 0
    for number in range(rounds):
        again = refused()
        if again is None or not again.count:
            break
        wait = policy.delay(number)
        log.warning(
            "%s: %d record(s) refused with %s; %s in %.1f s (%d/%d)",
            what,
            again.count,
            ", ".join(sorted(again.codes)),
            how,
            wait,
            number + 1,
            rounds,
        )
        time.sleep(wait)
        send(again.records)
        resent += again.count
    return resent
