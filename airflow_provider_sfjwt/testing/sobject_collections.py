"""sObject Collections (``/composite/sobjects``): create, update, upsert, delete and retrieve
up to 200 records per request (2,000 ids for a retrieve with a body), with ``allOrNone``.

The body is bound to the records' field types before anything is written: a value that cannot
be bound fails the whole request (400 ``JSON_PARSER_ERROR``), as Salesforce's JSON reader does;
every other refusal is per record, in request order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import values, writes
from .ids import normalize_id
from .rest import NOT_FOUND, allow, owner, parser_error, record_json, table_for
from .schema import STANDARD_SCHEMAS
from .store import Table
from .transport import ErrorReply, Request, Response
from .values import Rejected, WriteError

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

MAX_COLLECTION = 200
MAX_RETRIEVE = 2000  # ids in a retrieve with a request body


def _too_many(limit: int = MAX_COLLECTION) -> ErrorReply:
    return ErrorReply(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {limit} records into this call",
    )


def handle(emu: SalesforceEmulator, req: Request, parts: list[str]) -> Response:
    if len(parts) < 2 or parts[1] != "sobjects":
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    if req.method == "DELETE" and len(parts) == 2:
        return _collection_delete(emu, req)
    if req.method in ("GET", "POST") and len(parts) == 3:
        return _retrieve(emu, req, parts[2])
    if req.method == "PATCH" and len(parts) == 4:
        return _collection_write(emu, req, "upsert", parts[2], parts[3])
    if len(parts) == 2 and req.method in ("POST", "PATCH"):
        return _collection_write(
            emu, req, "create" if req.method == "POST" else "update", None, None
        )
    allow(req, "POST", "PATCH", "DELETE", "GET")
    raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)


def _retrieve(emu: SalesforceEmulator, req: Request, sobject: str) -> Response:
    """``GET ?ids=&fields=`` or ``POST {"ids": [...], "fields": [...]}``: both are required;
    an unknown or deleted id answers null in its place."""
    t = table_for(emu, sobject)
    if req.method == "POST":
        body = req.json()
        if not isinstance(body, dict):
            raise ErrorReply(400, "JSON_PARSER_ERROR", 'Expected {"ids": [...], "fields": [...]}')
        ids = [str(i) for i in body.get("ids") or []]
        fields = [str(f) for f in body.get("fields") or []]
        if len(ids) > MAX_RETRIEVE:
            raise _too_many(MAX_RETRIEVE)
    else:
        ids = [i for i in req.query.get("ids", "").split(",") if i]
        fields = [f for f in req.query.get("fields", "").split(",") if f]
    for name, given in (("ids", ids), ("fields", fields)):
        if not given:
            raise ErrorReply(400, "MISSING_ARGUMENT", f"{name} parameter is required")
    out: list[Any] = []
    for rid in ids:
        n = normalize_id(rid)
        row = t.index.get(n) if n else None
        if row is None or t.cols["IsDeleted"][row]:
            out.append(None)
        else:
            out.append(record_json(emu, t, row, req.version or "", fields))
    return Response.json(200, out)


def _collection_body(req: Request) -> tuple[bool, list[Any]]:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ErrorReply(400, "JSON_PARSER_ERROR", 'Expected {"allOrNone": bool, "records": [...]}')
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise _too_many()
    return bool(body.get("allOrNone", False)), records


def _record_table(emu: SalesforceEmulator, record: Any, upsert_table: Table | None) -> Table | None:
    """The table a record is written to (the URL's object for an upsert)."""
    if upsert_table is not None:
        return upsert_table
    sobject = _record_type(record)
    if sobject is None:
        return None
    t = emu.store.get(sobject)
    if t is None and any(k.lower() == sobject.lower() for k in STANDARD_SCHEMAS):
        t = emu.store.table(sobject)
    return t


def _record_type(record: Any) -> str | None:
    if isinstance(record, dict):
        attrs = record.get("attributes")
        if isinstance(attrs, dict) and isinstance(attrs.get("type"), str):
            return str(attrs["type"])
    return None


def _collection_write(
    emu: SalesforceEmulator, req: Request, op: str, sobject: str | None, ext_field: str | None
) -> Response:
    all_or_none, records = _collection_body(req)
    now = emu.now_datetime()
    who = owner(req)
    ext = None
    upsert_table = None
    if op == "upsert":
        upsert_table = table_for(emu, sobject or "")
        ext = upsert_table.field(ext_field or "")
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise ErrorReply(
                400,
                "INVALID_FIELD",
                f"Field {ext_field} is not an External ID or indexed field for {upsert_table.name}",
            )
    try:
        for record in records:
            t = _record_table(emu, record, upsert_table)
            if t is not None:
                writes.decode(t, record)
    except values.Undeserializable as exc:
        raise parser_error(exc, req) from None
    results: list[dict[str, Any]] = []
    plans: list[Any] = []
    batch = writes.Batch()
    with emu.store.lock:
        for record in records:
            try:
                if emu.faults.take_row_lock():
                    raise Rejected(writes.LOCKED)
                plan = _plan(emu, op, record, upsert_table, ext, batch)
                plans.append(plan)
                results.append({})
                if not all_or_none:
                    results[-1] = _apply(plan, now, who)
            except Rejected as exc:
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
                results = [_apply(plan, now, who) for plan in plans]
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
        raise Rejected(WriteError("INVALID_TYPE", "No SObject Type defined in record", []))
    t = _record_table(emu, record, upsert_table)
    if t is None:
        raise Rejected(
            WriteError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.", [])
        )
    if op == "create":
        return ("create", t, writes.plan_create(emu.store, t, record, batch))
    if op == "update":
        if not record.get("Id"):
            raise Rejected(WriteError("MISSING_ARGUMENT", "Id not specified in an update call", []))
        body = {k: v for k, v in record.items() if k != "Id"}
        row, written = writes.plan_update(emu.store, t, record["Id"], body, batch)
        return ("update", t, row, written)
    value = record.get(ext.name)
    if value in (None, ""):
        raise Rejected(WriteError("MISSING_ARGUMENT", f"{ext.name} not specified", []))
    match = (
        t.unique_index(ext.name).get(value)
        if ext.name != "Id"
        else t.index.get(normalize_id(value) or "")
    )
    if match is not None and match not in t.purged:
        body = {k: v for k, v in record.items() if k != "Id"}
        row, written = writes.plan_update(emu.store, t, t.cols["Id"][match], body, batch)
        return ("upsert-update", t, row, written)
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
                    raise Rejected(writes.LOCKED)
                if n is None:
                    raise Rejected(WriteError("MALFORMED_ID", f"malformed id {rid}", []))
                if t is None:
                    raise Rejected(
                        WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                    )
                row = writes.plan_delete(t, n)
                plans.append((t, row))
                results.append({"id": n, "success": True, "errors": []})
                if not all_or_none:
                    t.soft_delete(row, now)
            except Rejected as exc:
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
