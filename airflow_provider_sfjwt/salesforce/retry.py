"""Retry policy shared by the token exchange, the REST client and Bulk API calls.

Policy as data: which statuses are transient, how long to wait, how often. Waits use exponential
backoff with full jitter (so parallel tasks do not retry in lockstep) and honour ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Collection
from dataclasses import dataclass, field

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERROR_CODES = ("UNABLE_TO_LOCK_ROW",)
"""Per-record error codes that are about the moment, not the data: another transaction (a
trigger, a flow, a parallel load) held the record or its parent. Such records are sent again."""
DEFAULT_TRANSIENT_RETRIES = 3


def transient_codes(codes: str | Collection[str]) -> frozenset[str]:
    """The error codes to treat as transient; one code may be given as a plain string."""
    return frozenset([codes] if isinstance(codes, str) else codes)


@dataclass(frozen=True)
class RetryPolicy:
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

    def sleep(self, attempt: int, retry_after: str | None = None) -> float:
        wait = self.delay(attempt, retry_after)
        time.sleep(wait)
        return wait


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
