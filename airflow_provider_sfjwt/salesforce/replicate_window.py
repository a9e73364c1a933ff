"""The time window one replication run reads, and the deletions Salesforce logged in it.

**Why a window wider than the interval.** ``SystemModstamp`` is stamped when a transaction
writes a row, but the row becomes visible only when the transaction commits. A long
transaction (a big data load, a slow trigger) can commit rows stamped minutes earlier, after a
run already read past that moment: read exactly ``[interval start, interval end)`` and those
rows are lost for good. So each run starts ``lookback`` before its interval, and the overlap
re-reads rows a later commit may have added. The cost is a few rows read twice, which the
merge (latest ``SystemModstamp`` per ``Id`` wins) makes harmless.

**Why never up to now.** Rows being committed right now are not all visible yet, so a run
never reads past ``now - safety_lag`` (now taken from Salesforce's own clock, when it is the
earlier one). A run that starts right at the end of its interval therefore leaves the last
moments to the next run, whose lookback covers them: ``lookback`` must be at least
``safety_lag``.

**Deletions.** Soft deletions are rows with ``IsDeleted = true``, which ``queryAll`` returns
while they sit in the Recycle Bin. Rows purged from it or hard-deleted vanish from every query;
only ``GET /sobjects/{Object}/deleted/`` still reports them, for about 15 days, to the minute.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from .client import SalesforceClient
from .errors import ApiError, DeletesUnavailableError, UnexpectedResponseError
from .soql_literals import soql_datetime

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_SAFETY_LAG",
    "DELETE_LOG_DAYS",
    "Window",
    "fetch_deleted",
    "parse_datetime",
    "replication_window",
    "server_now",
]

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK = dt.timedelta(minutes=10)
"""Ten minutes: Salesforce's longest synchronous Apex transaction lasts 10 minutes, so a row
stamped inside one commits at most that late; longer-running loads need a longer lookback."""
DEFAULT_SAFETY_LAG = dt.timedelta(minutes=2)
"""Two minutes: rows stamped in the last moments may still be committing, and the delete log
is kept to the minute, so the newest whole minute is left to the next run."""
DELETE_LOG_DAYS = 15
"""Salesforce keeps deletions for ``/deleted/`` about 15 days (less when the Recycle Bin was
emptied or a large delete log was purged)."""

_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_MINUTE = dt.timedelta(minutes=1)


def parse_datetime(value: Any, what: str) -> dt.datetime:
    """An aware UTC datetime from Salesforce's ISO strings (``...000+0000`` or ``...Z``)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what}: {value!r} has no time zone")
        return value.astimezone(dt.timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected an ISO datetime, got {type(value).__name__}")
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what}: {value[:40]!r} is not an ISO datetime") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what}: {value[:40]!r} has no time zone")
    return parsed.astimezone(dt.timezone.utc)


def server_now(response: requests.Response) -> dt.datetime | None:
    """Salesforce's clock from a response's ``Date`` header (``None`` if absent or garbled)."""
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Window:
    """``[start, end)`` on the cursor field; ``start`` ``None`` reads from the beginning."""

    start: dt.datetime | None
    end: dt.datetime

    def where(self, cursor_field: str) -> str:
        """The SOQL condition selecting the window's rows."""
        end = f"{cursor_field} < {soql_datetime(self.end)}"
        if self.start is None:
            return end
        return f"{cursor_field} >= {soql_datetime(self.start)} AND {end}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        start = data.get("start")
        return cls(
            parse_datetime(start, "window start") if start else None,
            parse_datetime(data["end"], "window end"),
        )


def replication_window(
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    now: dt.datetime,
    *,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
    safety_lag: dt.timedelta = DEFAULT_SAFETY_LAG,
    from_beginning: bool = False,
) -> Window:
    """The window a run of ``[interval_start, interval_end)`` reads at ``now``.

    ``[interval_start - lookback, min(interval_end, now - safety_lag))``, or from the beginning
    when ``from_beginning`` (nothing replicated yet at the destination). Raises ``ValueError``
    for an interval that has not begun ``safety_lag`` ago, or a lookback shorter than the lag.
    """
    for name, value in (("interval_start", interval_start), ("interval_end", interval_end)):
        if value.tzinfo is None:
            raise ValueError(f"{name} {value!r} has no time zone")
    if interval_end <= interval_start:
        raise ValueError(f"the interval ends ({interval_end}) before it starts ({interval_start})")
    if lookback < safety_lag:
        raise ValueError(
            f"lookback ({lookback}) must be at least safety_lag ({safety_lag}): a run that "
            "stops safety_lag before its interval's end leaves that tail to the next run's lookback"
        )
    if safety_lag < dt.timedelta(0):
        raise ValueError("safety_lag cannot be negative")
    horizon = now - safety_lag
    if interval_start >= horizon:
        raise ValueError(
            f"the interval starting {interval_start.isoformat()} has not begun {safety_lag} "
            f"ago (Salesforce's clock says {now.isoformat()}): nothing can be read yet"
        )
    end = min(interval_end, horizon)
    start = None if from_beginning else interval_start - lookback
    return Window(start, end)


# --- the delete log -------------------------------------------------------------------------


def _minute_floor(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _minute_ceil(moment: dt.datetime) -> dt.datetime:
    floor = _minute_floor(moment)
    return floor if floor == moment else floor + _MINUTE


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def fetch_deleted(
    client: SalesforceClient,
    sobject: str,
    window: Window,
    now: dt.datetime,
) -> Iterator[tuple[str, dt.datetime]]:
    """``(Id, deletedDate)`` of every deletion Salesforce logged in ``window`` (widened to whole
    minutes, the log's precision).

    Raises :class:`DeletesUnavailableError` when the window starts before what the delete log
    still holds (older than 15 days, or purged: ``earliestDateAvailable``), and when Salesforce
    has not yet covered the window's end (``latestDateCovered``), which a retry resolves.
    A window with more deletions than Salesforce answers at once (``EXCEEDED_ID_LIMIT``) is
    read in halves.
    """
    if window.start is None:
        return
    start, end = _minute_floor(window.start), _minute_ceil(window.end)
    if end - start < _MINUTE:
        end = start + _MINUTE
    oldest = dt.datetime.combine(
        (now - dt.timedelta(days=DELETE_LOG_DAYS)).date(), dt.time(), tzinfo=dt.timezone.utc
    )
    if start < oldest:
        raise DeletesUnavailableError(
            f"deletions of {sobject} from {start.isoformat()} are no longer kept by Salesforce "
            f"(its delete log holds about {DELETE_LOG_DAYS} days, back to {oldest.date()}): "
            "hard-deleted rows of this window cannot be known"
        )
    yield from _deleted_between(client, sobject, start, end, window.end)


def _deleted_between(
    client: SalesforceClient,
    sobject: str,
    start: dt.datetime,
    end: dt.datetime,
    must_cover: dt.datetime,
) -> Iterator[tuple[str, dt.datetime]]:
    try:
        body = client.get_json(
            f"sobjects/{quote(sobject)}/deleted/",
            params={"start": _stamp(start), "end": _stamp(end)},
        )
    except ApiError as exc:
        if exc.error_code == "INVALID_REPLICATION_DATE":
            raise DeletesUnavailableError(
                f"Salesforce refused the deletions window of {sobject} from "
                f"{start.isoformat()}: {exc.message}"
            ) from None
        if exc.error_code == "EXCEEDED_ID_LIMIT" and end - start >= 2 * _MINUTE:
            middle = _minute_floor(start + (end - start) / 2)
            log.info("More deletions than one answer holds; reading %s in two halves", sobject)
            yield from _deleted_between(client, sobject, start, middle, middle)
            yield from _deleted_between(client, sobject, middle, end, must_cover)
            return
        raise
    if not isinstance(body, dict) or not isinstance(body.get("deletedRecords"), list):
        raise UnexpectedResponseError(
            f"GET sobjects/{sobject}/deleted/ answered without a deletedRecords list; "
            "the delete log of this window cannot be trusted"
        )
    earliest = body.get("earliestDateAvailable")
    if earliest and parse_datetime(earliest, "earliestDateAvailable") > start:
        raise DeletesUnavailableError(
            f"Salesforce's delete log of {sobject} starts at {earliest}, after this window's "
            f"start {start.isoformat()}: deletions before it were purged and cannot be known"
        )
    covered = body.get("latestDateCovered")
    if covered and parse_datetime(covered, "latestDateCovered") < min(must_cover, end):
        raise DeletesUnavailableError(
            f"Salesforce's delete log of {sobject} covers only up to {covered}, before this "
            f"window's end {must_cover.isoformat()}; run the task again in a few minutes"
        )
    for item in body["deletedRecords"]:
        record_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(record_id, str) or not _ID.match(record_id):
            raise UnexpectedResponseError(
                f"GET sobjects/{sobject}/deleted/ listed a malformed record id {record_id!r}"
            )
        yield record_id, parse_datetime(item.get("deletedDate"), "deletedDate")
