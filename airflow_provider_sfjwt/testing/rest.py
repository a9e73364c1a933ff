"""REST resources under ``/services/data/vNN.N/``: versions, limits, sObjects, query, collections."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import encode, soql, writes
from .ids import QUERY_LOCATOR_PREFIX, normalize_id
from .store import STANDARD_SCHEMAS, Field, Table
from .transport import ErrorReply, Request, Response

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

NOT_FOUND = "The requested resource does not exist"
CURSOR_TTL = 15 * 60
MAX_CURSORS = 500
_SEASONS = ("Winter", "Spring", "Summer")


def release_label(version: str) -> str:
    idx = int(float(version)) - 62
    return f"{_SEASONS[idx % 3]} '{25 + idx // 3}"


def versions(emu: SalesforceEmulator) -> Response:
    return Response.json(
        200,
        [
            {"label": release_label(v), "url": f"/services/data/v{v}", "version": v}
            for v in emu.api_versions
        ],
    )


def resources(version: str) -> dict[str, str]:
    base = f"/services/data/v{version}"
    names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs", "search", "tooling")
    return {n: f"{base}/{n}" for n in names}


def limits(emu: SalesforceEmulator) -> dict[str, Any]:
    used = emu.stats.api_calls if not emu.faults.quota_exhausted else emu.daily_api_limit
    q = emu.bulk.counts()
    return {
        "DailyApiRequests": {
            "Max": emu.daily_api_limit,
            "Remaining": max(0, emu.daily_api_limit - used),
        },
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": max(0, 10000 - q["query"])},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": max(0, 15000 - q["ingest"])},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
        "SingleEmailMessage": {"Max": 5000, "Remaining": 5000},
    }


def _table(emu: SalesforceEmulator, name: str) -> Table:
    t = emu.store.get(name)
    if t is None and any(k.lower() == name.lower() for k in STANDARD_SCHEMAS):
        t = emu.store.table(name)
    if t is None:
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    return t


def _sobject_summary(t: Table, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{t.name}"
    return {
        "name": t.name,
        "label": t.name.replace("__c", "").replace("_", " "),
        "labelPlural": t.name.replace("__c", "").replace("_", " ") + "s",
        "keyPrefix": t.prefix,
        "custom": t.name.endswith("__c"),
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "undeletable": True,
        "layoutable": True,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


def sobjects(emu: SalesforceEmulator, req: Request, parts: list[str]) -> Response:
    version = req.version or ""
    for name in STANDARD_SCHEMAS:
        emu.store.table(name)
    if len(parts) == 1:
        objs = sorted(emu.store.tables.values(), key=lambda t: t.name)
        return Response.json(
            200,
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [_sobject_summary(t, version) for t in objs],
            },
        )
    t = _table(emu, parts[1])
    if len(parts) == 2:
        if req.method == "POST":
            return _create_one(emu, req, t)
        _allow(req, "GET", "HEAD", "POST")
        return Response.json(
            200, {"objectDescribe": _sobject_summary(t, version), "recentItems": []}
        )
    if len(parts) == 3 and parts[2] == "describe":
        _allow(req, "GET", "HEAD")
        body = _sobject_summary(t, version)
        body["fields"] = [_describe_field(t, f) for f in t.fields.values()]
        body["childRelationships"] = [
            {
                "childSObject": other.name,
                "field": f.name,
                "relationshipName": other.name + "s"
                if not other.name.endswith("__c")
                else other.name[:-3] + "__r",
                "cascadeDelete": False,
            }
            for other in emu.store.tables.values()
            for f in other.fields.values()
            if f.reference_to == t.name
        ]
        return Response.json(200, body)
    if len(parts) == 3:
        return _one_record(emu, req, t, parts[2])
    if len(parts) == 4:
        return _by_external_id(emu, req, t, parts[2], urllib.parse.unquote(parts[3]))
    raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)


def _by_external_id(
    emu: SalesforceEmulator, req: Request, t: Table, field: str, value: str
) -> Response:
    """GET / PATCH (upsert) ``/sobjects/{Object}/{ExternalIdField}/{value}``."""
    f = t.field(field)
    if f is None or not (f.external_id or f.name == "Id"):
        raise ErrorReply(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field}",
        )
    row = (
        t.unique_index(f.name).get(value)
        if f.name != "Id"
        else t.index.get(normalize_id(value) or "")
    )
    if row is not None and (row in t.purged or t.cols["IsDeleted"][row]):
        row = None
    if req.method in ("GET", "HEAD"):
        if row is None:
            raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
        return Response.json(200, _record_json(emu, t, row, req.version or "", None))
    _allow(req, "GET", "HEAD", "PATCH")
    body = req.json()
    if not isinstance(body, dict):
        raise ErrorReply(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    body = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
    with emu.store.lock:
        try:
            if row is None:
                values = writes.plan_create(emu.store, t, {**body, f.name: value}, writes.Batch())
                rid = writes.apply_create(t, values, emu.now_datetime(), _owner(req))
                return Response.json(
                    201, {"id": rid, "success": True, "errors": [], "created": True}
                )
            row, values = writes.plan_update(emu.store, t, t.cols["Id"][row], body, writes.Batch())
            rid = writes.apply_update(t, row, values, emu.now_datetime())
        except writes.Rejected as exc:
            raise ErrorReply(400, exc.error.code, exc.error.message, exc.error.fields) from None
    return Response.json(200, {"id": rid, "success": True, "errors": [], "created": False})


def _describe_field(t: Table, f: Field) -> dict[str, Any]:
    """Field describe; picklists list the values present in the data (what a real org defines)."""
    out = f.describe()
    if f.type == "picklist":
        values = sorted({v for v in t.cols[f.name] if isinstance(v, str)})[:1000]
        out["picklistValues"] = [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in values
        ]
    return out


def _allow(req: Request, *methods: str) -> None:
    if req.method not in methods:
        raise ErrorReply(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{req.method}' not allowed. Allowed are {','.join(methods)}",
        )


def _record_json(
    emu: SalesforceEmulator, t: Table, row: int, version: str, fields: list[str] | None
) -> dict[str, Any]:
    rid = t.cols["Id"][row]
    out: dict[str, Any] = {
        "attributes": {"type": t.name, "url": f"/services/data/v{version}/sobjects/{t.name}/{rid}"}
    }
    names = fields or list(t.cols)
    for name in names:
        f = t.field(name)
        if f is None:
            raise ErrorReply(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{t.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            )
        out[f.name] = t.cols[f.name][row]
    return out


def _one_record(emu: SalesforceEmulator, req: Request, t: Table, record_id: str) -> Response:
    rid = normalize_id(record_id)
    row = t.index.get(rid) if rid else None
    if row is None:
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    deleted = bool(t.cols["IsDeleted"][row])
    if req.method in ("GET", "HEAD"):
        if deleted:
            raise ErrorReply(404, "ENTITY_IS_DELETED", "entity is deleted")
        fields = [f for f in req.query.get("fields", "").split(",") if f.strip()] or None
        return Response.json(200, _record_json(emu, t, row, req.version or "", fields))
    if req.method == "PATCH":
        body = req.json()
        if not isinstance(body, dict):
            raise ErrorReply(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        with emu.store.lock:
            try:
                row, values = writes.plan_update(emu.store, t, rid, body, writes.Batch())
            except writes.Rejected as exc:
                raise ErrorReply(400, exc.error.code, exc.error.message, exc.error.fields) from None
            writes.apply_update(t, row, values, emu.now_datetime())
        return Response.empty(204)
    if req.method == "DELETE":
        with emu.store.lock:
            if deleted:
                raise ErrorReply(404, "ENTITY_IS_DELETED", "entity is deleted")
            t.soft_delete(row, emu.now_datetime())
        return Response.empty(204)
    _allow(req, "GET", "HEAD", "PATCH", "DELETE")
    raise AssertionError


def _create_one(emu: SalesforceEmulator, req: Request, t: Table) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise ErrorReply(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    with emu.store.lock:
        try:
            values = writes.plan_create(emu.store, t, body, writes.Batch())
        except writes.Rejected as exc:
            raise ErrorReply(400, exc.error.code, exc.error.message, exc.error.fields) from None
        rid = writes.apply_create(t, values, emu.now_datetime(), _owner(req))
    return Response.json(201, {"id": rid, "success": True, "errors": []})


def _owner(req: Request) -> str | None:
    return req.session.user.user_id if req.session is not None else None


# --------------------------------------------------------------------------- query


@dataclass
class Cursor:
    locator: str
    query: soql.Query
    rows: Sequence[int]
    batch: int
    all_rows: bool
    last_used: float


class Cursors:
    """Open query locators: the evaluated row list is kept, pages are slices of it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[str, Cursor] = {}

    def add(self, q: soql.Query, rows: Sequence[int], batch: int, all_rows: bool) -> Cursor:
        now = time.monotonic()
        loc = QUERY_LOCATOR_PREFIX + secrets.token_hex(8)[:12].upper() + "AAA"
        cur = Cursor(loc, q, rows, batch, all_rows, now)
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


def _page(emu: SalesforceEmulator, cur: Cursor, start: int, version: str, kind: str) -> Response:
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
        head += f',"nextRecordsUrl":"/services/data/v{version}/{kind}/{cur.locator}-{end}"'
    return Response.raw_json(200, head + ',"records":' + records + "}")


def query(emu: SalesforceEmulator, req: Request, parts: list[str]) -> Response:
    _allow(req, "GET", "HEAD")
    version = req.version or ""
    kind = parts[0]
    all_rows = kind == "queryAll"
    if len(parts) == 2:
        loc, _, offset = parts[1].rpartition("-")
        cur = emu.cursors.get(loc) if loc else None
        if cur is None or not offset.isdigit() or int(offset) > len(cur.rows):
            raise ErrorReply(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return _page(emu, cur, int(offset), version, kind)
    if len(parts) != 1:
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    text = req.query.get("q")
    if text is None:
        raise ErrorReply(400, "MALFORMED_QUERY", "A query string has to be specified")
    q = run_parse(emu, text)
    result = soql.execute(emu.store, q, all_rows, _today(emu))
    if isinstance(result, int):
        return Response.json(200, {"totalSize": result, "done": True, "records": []})
    if q.count_field is not None:
        return Response.json(
            200,
            {
                "totalSize": 1,
                "done": True,
                "records": [{"attributes": {"type": "AggregateResult"}, "expr0": len(result)}],
            },
        )
    cur = emu.cursors.add(q, result, _batch_size(emu, req), all_rows)
    return _page(emu, cur, 0, version, kind)


def run_parse(emu: SalesforceEmulator, text: str) -> soql.Query:
    try:
        return soql.resolve(emu.store, soql.parse(text))
    except soql.SoqlError as exc:
        raise ErrorReply(400, exc.code, exc.message) from None


def _today(emu: SalesforceEmulator) -> dt.date:
    return dt.datetime.fromtimestamp(emu.now(), dt.timezone.utc).date()


# --------------------------------------------------------------------------- sObject Collections

MAX_COLLECTION = 200


def _too_many() -> ErrorReply:
    return ErrorReply(
        400,
        "EXCEEDED_ID_LIMIT",
        "record limit reached. cannot submit more than 200 records into this call",
    )


def collections(emu: SalesforceEmulator, req: Request, parts: list[str]) -> Response:
    if len(parts) < 2 or parts[1] != "sobjects":
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    if req.method == "DELETE" and len(parts) == 2:
        return _collection_delete(emu, req)
    if req.method == "GET" and len(parts) == 3:
        return _collection_get(emu, req, parts[2])
    if req.method == "PATCH" and len(parts) == 4:
        return _collection_write(emu, req, "upsert", parts[2], parts[3])
    if len(parts) == 2 and req.method in ("POST", "PATCH"):
        return _collection_write(
            emu, req, "create" if req.method == "POST" else "update", None, None
        )
    _allow(req, "POST", "PATCH", "DELETE", "GET")
    raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)


def _collection_get(emu: SalesforceEmulator, req: Request, sobject: str) -> Response:
    t = _table(emu, sobject)
    ids = [i for i in req.query.get("ids", "").split(",") if i]
    fields = [f for f in req.query.get("fields", "").split(",") if f]
    if len(ids) > MAX_COLLECTION:
        raise _too_many()
    out: list[Any] = []
    for rid in ids:
        n = normalize_id(rid)
        row = t.index.get(n) if n else None
        if row is None or t.cols["IsDeleted"][row]:
            out.append(None)
        else:
            out.append(_record_json(emu, t, row, req.version or "", fields or None))
    return Response.json(200, out)


def _collection_body(req: Request) -> tuple[bool, list[Any]]:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ErrorReply(400, "JSON_PARSER_ERROR", 'Expected {"allOrNone": bool, "records": [...]}')
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise _too_many()
    return bool(body.get("allOrNone", False)), records


def _record_type(record: Any) -> str | None:
    if isinstance(record, dict):
        attrs = record.get("attributes")
        if isinstance(attrs, dict) and isinstance(attrs.get("type"), str):
            return attrs["type"]
    return None


def _collection_write(
    emu: SalesforceEmulator, req: Request, op: str, sobject: str | None, ext_field: str | None
) -> Response:
    all_or_none, records = _collection_body(req)
    now = emu.now_datetime()
    owner = _owner(req)
    ext = None
    upsert_table = None
    if op == "upsert":
        upsert_table = _table(emu, sobject or "")
        ext = upsert_table.field(ext_field or "")
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise ErrorReply(
                400,
                "INVALID_FIELD",
                f"Field {ext_field} is not an External ID or indexed field for {upsert_table.name}",
            )
    results: list[dict[str, Any]] = []
    plans: list[Any] = []
    batch = writes.Batch()
    with emu.store.lock:
        for record in records:
            try:
                if emu.faults.take_row_lock():
                    raise writes.Rejected(writes.LOCKED)
                plan = _plan(emu, op, record, upsert_table, ext, batch)
                plans.append(plan)
                results.append({})
                if not all_or_none:
                    results[-1] = _apply(plan, now, owner)
            except writes.Rejected as exc:
                plans.append(None)
                res: dict[str, Any] = {"success": False, "errors": [exc.error.rest()]}
                if op == "update" and isinstance(record, dict) and record.get("Id"):
                    res["id"] = record["Id"]
                results.append(res)
        if all_or_none:
            if any(p is None for p in plans):
                for k, plan in enumerate(plans):
                    if plan is not None:
                        results[k] = {
                            "success": False,
                            "errors": [writes.ROLLED_BACK.rest()],
                        }
            else:
                results = [_apply(plan, now, owner) for plan in plans]
    return Response.json(200, results)


def _plan(
    emu: SalesforceEmulator,
    op: str,
    record: Any,
    upsert_table: Table | None,
    ext: Any,
    batch: writes.Batch,
) -> tuple[Any, ...]:
    sobject = _record_type(record)
    if sobject is None:
        raise writes.Rejected(
            writes.WriteError("INVALID_TYPE", "No SObject Type defined in record", [])
        )
    t = emu.store.get(sobject) if upsert_table is None else upsert_table
    if t is None and any(k.lower() == sobject.lower() for k in STANDARD_SCHEMAS):
        t = emu.store.table(sobject)
    if t is None:
        raise writes.Rejected(
            writes.WriteError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.", [])
        )
    if op == "create":
        return ("create", t, writes.plan_create(emu.store, t, record, batch))
    if op == "update":
        if not record.get("Id"):
            raise writes.Rejected(
                writes.WriteError("MISSING_ARGUMENT", "Id not specified in an update call", [])
            )
        body = {k: v for k, v in record.items() if k != "Id"}
        row, values = writes.plan_update(emu.store, t, record["Id"], body, batch)
        return ("update", t, row, values)
    value = record.get(ext.name)
    if value in (None, ""):
        raise writes.Rejected(
            writes.WriteError("MISSING_ARGUMENT", f"{ext.name} not specified", [])
        )
    row = (
        t.unique_index(ext.name).get(value)
        if ext.name != "Id"
        else t.index.get(normalize_id(value) or "")
    )
    if row is not None and row not in t.purged:
        body = {k: v for k, v in record.items() if k != "Id"}
        row, values = writes.plan_update(emu.store, t, t.cols["Id"][row], body, batch)
        return ("upsert-update", t, row, values)
    return ("upsert-create", t, writes.plan_create(emu.store, t, record, batch))


def _apply(plan: tuple[Any, ...], now: str, owner: str | None) -> dict[str, Any]:
    kind, t = plan[0], plan[1]
    if kind in ("create", "upsert-create"):
        rid = writes.apply_create(t, plan[2], now, owner)
        res: dict[str, Any] = {"id": rid, "success": True, "errors": []}
        if kind == "upsert-create":
            res["created"] = True
        return res
    rid = writes.apply_update(t, plan[2], plan[3], now)
    res = {"id": rid, "success": True, "errors": []}
    if kind == "upsert-update":
        res["created"] = False
    return res


def _collection_delete(emu: SalesforceEmulator, req: Request) -> Response:
    ids = [i for i in req.query.get("ids", "").split(",") if i]
    if not ids:
        raise ErrorReply(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(ids) > MAX_COLLECTION:
        raise _too_many()
    all_or_none = req.query.get("allOrNone", "false").lower() == "true"
    now = emu.now_datetime()
    results: list[dict[str, Any]] = []
    plans: list[Any] = []
    with emu.store.lock:
        for rid in ids:
            n = normalize_id(rid)
            t = emu.store.table_for_id(n) if n else None
            try:
                if emu.faults.take_row_lock():
                    raise writes.Rejected(writes.LOCKED)
                if n is None:
                    raise writes.Rejected(
                        writes.WriteError("MALFORMED_ID", f"malformed id {rid}", [])
                    )
                if t is None:
                    raise writes.Rejected(
                        writes.WriteError(
                            "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []
                        )
                    )
                row = writes.plan_delete(t, n)
                plans.append((t, row))
                results.append({"id": n, "success": True, "errors": []})
                if not all_or_none:
                    t.soft_delete(row, now)
            except writes.Rejected as exc:
                plans.append(None)
                results.append({"id": n or rid, "success": False, "errors": [exc.error.rest()]})
        if all_or_none:
            if any(p is None for p in plans):
                for k, p in enumerate(plans):
                    if p is not None:
                        results[k] = {
                            "id": results[k]["id"],
                            "success": False,
                            "errors": [writes.ROLLED_BACK.rest()],
                        }
            else:
                for t, row in plans:
                    t.soft_delete(row, now)
    return Response.json(200, results)
