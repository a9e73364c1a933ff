"""``/query`` and ``/queryAll``: SOQL over REST, paged through query locators.

A plain query is evaluated once; its row list is kept under a locator and served in pages of
2,000 (``Sforce-Query-Options: batchSize`` between 200 and 2,000), each page's ``nextRecordsUrl``
under ``/query/`` for both resources, as Salesforce answers. Aggregate queries answer all their
AggregateResult rows at once (Salesforce gives GROUP BY results no locator).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import encode, soql, soql_eval, soql_schema
from .ids import QUERY_LOCATOR_PREFIX
from .rest import NOT_FOUND, allow, today
from .transport import ErrorReply, Request, Response

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

CURSOR_TTL = 15 * 60
MAX_CURSORS = 500


@dataclass
class Cursor:
    locator: str
    query: soql.Query
    rows: Sequence[int]
    batch: int
    last_used: float


class Cursors:
    """Open query locators: the evaluated row list is kept, pages are slices of it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[str, Cursor] = {}

    def add(self, q: soql.Query, rows: Sequence[int], batch: int) -> Cursor:
        now = time.monotonic()
        loc = QUERY_LOCATOR_PREFIX + secrets.token_hex(8)[:12].upper() + "AAA"
        cur = Cursor(loc, q, rows, batch, now)
        with self.lock:
            for key in [k for k, c in self.open.items() if now - c.last_used > CURSOR_TTL]:
                del self.open[key]
            if len(self.open) >= MAX_CURSORS:  # bound memory in long benchmark runs
                del self.open[min(self.open, key=lambda k: self.open[k].last_used)]
            self.open[loc] = cur
        return cur

    def get(self, loc: str) -> Cursor | None:
        with self.lock:
            cur = self.open.get(loc)
            if cur is not None:
                if time.monotonic() - cur.last_used > CURSOR_TTL:
                    del self.open[loc]
                    return None
                cur.last_used = time.monotonic()
            return cur


def _batch_size(emu: SalesforceEmulator, req: Request) -> int:
    size = emu.page_size
    opts = req.headers.get("Sforce-Query-Options", "")
    for part in opts.split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "batchsize":
            with contextlib.suppress(ValueError):
                size = max(200, min(2000, int(value.strip())))
    return size


def _page(emu: SalesforceEmulator, cur: Cursor, start: int, version: str) -> Response:
    q, table = cur.query, cur.query.table
    assert table is not None
    end = min(start + cur.batch, len(cur.rows))
    rows = cur.rows[start:end]
    records = emu.cached_block(
        "json", q, rows, (version,), lambda: encode.json_records(table, q, rows, version)
    )
    emu.stats.increment("records_served", end - start)
    done = "true" if end >= len(cur.rows) else "false"
    head = f'{{"totalSize":{len(cur.rows)},"done":{done}'
    if end < len(cur.rows):
        head += f',"nextRecordsUrl":"/services/data/v{version}/query/{cur.locator}-{end}"'
    return Response(200, b"".join((head.encode(), b',"records":', records, b"}")))


def query(emu: SalesforceEmulator, req: Request, parts: list[str]) -> Response:
    """``GET /query?q=``, ``GET /queryAll?q=`` and ``GET /query/{locator}-{offset}``."""
    allow(req, "GET", "HEAD")
    version = req.version or ""
    if len(parts) == 2:
        loc, _, offset = parts[1].rpartition("-")
        cur = emu.cursors.get(loc) if loc else None
        if cur is None or not offset.isdigit() or int(offset) > len(cur.rows):
            raise ErrorReply(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return _page(emu, cur, int(offset), version)
    if len(parts) != 1:
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    text = req.query.get("q")
    if text is None:
        raise ErrorReply(400, "MALFORMED_QUERY", "A query string has to be specified")
    q = parse(emu, text)
    result = soql_eval.execute(emu.store, q, parts[0] == "queryAll", today(emu))
    if isinstance(result, int):
        return Response.json(200, {"totalSize": result, "done": True, "records": []})
    if q.aggregate:
        records = soql_eval.aggregate(q, result)
        return Response.json(200, {"totalSize": len(records), "done": True, "records": records})
    cur = emu.cursors.add(q, result, _batch_size(emu, req))
    return _page(emu, cur, 0, version)


def parse(emu: SalesforceEmulator, text: str) -> soql.Query:
    """``text`` parsed and checked against the org's schema; refusals answer like Salesforce,
    SOQL the emulator does not evaluate answers 501 naming the feature."""
    try:
        return soql_schema.resolve(emu.store, soql.parse(text))
    except soql.SoqlError as exc:
        raise ErrorReply(exc.status, exc.code, exc.message) from None
