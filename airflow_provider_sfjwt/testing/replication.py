"""``GET /sobjects/{Object}/deleted/`` and ``/updated/``: the REST replication resources.

Both take a UTC window (``start``, ``end``; seconds are ignored) and answer the ids changed in it:
``updated`` the live records whose ``SystemModstamp`` falls in the window (at most 30 days back),
``deleted`` the delete log (at most 15 days back): records in the Recycle Bin and records purged
from it or hard-deleted, each with its ``deletedDate``. The window must span more than a minute;
more than 600,000 ids answer ``EXCEEDED_ID_LIMIT`` (narrow the window). ``latestDateCovered``
(never after now) is where the next window should start; ``earliestDateAvailable`` tells a
replicator that entries before it were dropped from the delete log (then it must resync).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .store import Table
from .transport import ErrorReply, Request, Response
from .values import parse_datetime

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

DELETED_DAYS = 15
UPDATED_DAYS = 30
MAX_IDS = 600_000


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _window(emu: SalesforceEmulator, req: Request, days: int) -> tuple[str, str, str]:
    """``start`` and the covered end (``min(end, now)``), to the minute, and the oldest start
    the resource accepts; refuses a window Salesforce refuses (INVALID_REPLICATION_DATE)."""
    bounds = []
    for name in ("start", "end"):
        raw = req.query.get(name)
        if not raw:
            raise ErrorReply(400, "MISSING_ARGUMENT", f"{name} parameter is required")
        stamp = parse_datetime(raw)
        if stamp is None:
            raise ErrorReply(
                400,
                "INVALID_REPLICATION_DATE",
                f"{name} is not a valid ISO 8601 dateTime (YYYY-MM-DDThh:mm:ss+hh:mm): {raw}",
            )
        bounds.append(dt.datetime.fromisoformat(stamp[:16]))
    start, end = bounds
    now = dt.datetime.fromtimestamp(emu.now(), dt.timezone.utc).replace(tzinfo=None)
    now = now.replace(second=0, microsecond=0)
    if end - start < dt.timedelta(minutes=1):
        raise ErrorReply(
            400,
            "INVALID_REPLICATION_DATE",
            "startDate must be at least one minute greater than endDate",
        )
    oldest = dt.datetime.combine(now.date() - dt.timedelta(days=days), dt.time())
    if start < oldest:
        raise ErrorReply(
            400,
            "INVALID_REPLICATION_DATE",
            f"startDate cannot be more than {days} days ago",
        )
    return _stamp(start), _stamp(min(end, now)), _stamp(oldest)


def _too_many() -> ErrorReply:
    return ErrorReply(
        400,
        "EXCEEDED_ID_LIMIT",
        f"More than {MAX_IDS} ids match: choose start and end dates that are closer together",
    )


def deleted(emu: SalesforceEmulator, req: Request, t: Table) -> Response:
    """``{"deletedRecords": [{"id", "deletedDate"}], "earliestDateAvailable", "latestDateCovered"}``."""
    start, covered, oldest = _window(emu, req, DELETED_DAYS)
    with emu.store.lock:
        found = [
            {"id": rid, "deletedDate": when}
            for rid, when in t.delete_log.items()
            if start <= when < covered
        ]
        floor = t.log_floor
    if len(found) > emu.replication_id_limit:
        raise _too_many()
    found.sort(key=lambda r: r["deletedDate"])
    body: dict[str, Any] = {
        "deletedRecords": found,
        "earliestDateAvailable": max(oldest, floor) if floor else oldest,
        "latestDateCovered": covered,
    }
    return Response.json(200, body)


def updated(emu: SalesforceEmulator, req: Request, t: Table) -> Response:
    """``{"ids": [...], "latestDateCovered"}``: live records whose SystemModstamp is in the window."""
    start, covered, _ = _window(emu, req, UPDATED_DAYS)
    with emu.store.lock:
        stamps, ids = t.cols["SystemModstamp"], t.cols["Id"]
        found = [ids[i] for i in t.live(False) if start <= stamps[i] < covered]
    if len(found) > emu.replication_id_limit:
        raise _too_many()
    return Response.json(200, {"ids": found, "latestDateCovered": covered})
