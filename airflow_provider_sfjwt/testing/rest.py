"""REST resources under ``/services/data/``: versions, the resource list, limits and sObjects
(describe, records by Id and by external id, the replication resources)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import TYPE_CHECKING, Any

from . import replication, values, writes
from .ids import normalize_id
from .schema import STANDARD_SCHEMAS
from .store import Table
from .transport import ErrorReply, Request, Response

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

NOT_FOUND = "The requested resource does not exist"
_SEASONS = ("Winter", "Spring", "Summer")
SERVED_RESOURCES = ("limits", "query", "queryAll", "sobjects")
"""What ``/services/data/vNN.N/`` advertises: the resources this emulator serves (Salesforce's
list is longer; clients that follow it must not be sent where nothing answers)."""


def release_label(version: str) -> str:
    """``62.0`` -> ``Winter '25``: three releases a year, v31.0 was Summer '14."""
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
    return {n: f"{base}/{n}" for n in SERVED_RESOURCES}


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


def table_for(emu: SalesforceEmulator, name: str) -> Table:
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
    t = table_for(emu, parts[1])
    if len(parts) == 2:
        if req.method == "POST":
            return _create_one(emu, req, t)
        allow(req, "GET", "HEAD", "POST")
        return Response.json(
            200, {"objectDescribe": _sobject_summary(t, version), "recentItems": []}
        )
    if len(parts) == 3 and parts[2] == "describe":
        allow(req, "GET", "HEAD")
        body = _sobject_summary(t, version)
        body["fields"] = [f.describe() for f in t.fields.values()]
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
    if len(parts) == 3 and parts[2] in ("deleted", "updated"):
        allow(req, "GET", "HEAD")
        answer = replication.deleted if parts[2] == "deleted" else replication.updated
        return answer(emu, req, t)
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
        return Response.json(200, record_json(emu, t, row, req.version or "", None))
    allow(req, "GET", "HEAD", "PATCH")
    body = req.json()
    if not isinstance(body, dict):
        raise ErrorReply(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    for key in body:
        if key.lower() in (f.name.lower(), "id"):
            # Salesforce: "Do not specify Id or an external ID field in the request body".
            raise ErrorReply(
                400,
                "INVALID_FIELD",
                f"The {key} field should not be specified in the sobject data.",
                [key],
            )
    if row is None and req.query.get("updateOnly", "").lower() == "true":
        raise ErrorReply(404, "NOT_FOUND", NOT_FOUND)
    with emu.store.lock:
        try:
            if row is None:
                written = writes.plan_create(emu.store, t, {**body, f.name: value}, writes.Batch())
                rid = writes.apply_create(t, written, emu.now_datetime(), owner(req))
                return Response.json(
                    201, {"id": rid, "success": True, "errors": [], "created": True}
                )
            rid = t.cols["Id"][row]
            row, written = writes.plan_update(emu.store, t, rid, body, writes.Batch())
            rid = writes.apply_update(t, row, written, emu.now_datetime())
        except values.Rejected as exc:
            raise ErrorReply(400, exc.error.code, exc.error.message, exc.error.fields) from None
        except values.Undeserializable as exc:
            raise parser_error(exc, req) from None
    return Response.json(200, {"id": rid, "success": True, "errors": [], "created": False})


def allow(req: Request, *methods: str) -> None:
    if req.method not in methods:
        raise ErrorReply(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{req.method}' not allowed. Allowed are {','.join(methods)}",
        )


def record_json(
    emu: SalesforceEmulator, t: Table, row: int, version: str, fields: list[str] | None
) -> dict[str, Any]:
    rid = t.cols["Id"][row]
    out: dict[str, Any] = {
        "attributes": {"type": t.name, "url": f"/services/data/v{version}/sobjects/{t.name}/{rid}"}
    }
    day = today(emu)
    for name in fields or [f.name for f in t.fields.values()]:
        f = t.field(name)
        if f is None:
            raise ErrorReply(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{t.name}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        out[f.name] = t.value(f, row, emu.store, day)
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
        return Response.json(200, record_json(emu, t, row, req.version or "", fields))
    if req.method == "PATCH":
        body = req.json()
        if not isinstance(body, dict):
            raise ErrorReply(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        with emu.store.lock:
            try:
                row, written = writes.plan_update(emu.store, t, rid, body, writes.Batch())
            except values.Rejected as exc:
                raise ErrorReply(400, exc.error.code, exc.error.message, exc.error.fields) from None
            except values.Undeserializable as exc:
                raise parser_error(exc, req) from None
            writes.apply_update(t, row, written, emu.now_datetime())
        return Response.empty(204)
    if req.method == "DELETE":
        with emu.store.lock:
            if deleted:
                raise ErrorReply(404, "ENTITY_IS_DELETED", "entity is deleted")
            t.soft_delete(row, emu.now_datetime())
        return Response.empty(204)
    allow(req, "GET", "HEAD", "PATCH", "DELETE")
    raise AssertionError


def _create_one(emu: SalesforceEmulator, req: Request, t: Table) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise ErrorReply(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    with emu.store.lock:
        try:
            written = writes.plan_create(emu.store, t, body, writes.Batch())
        except values.Rejected as exc:
            raise ErrorReply(400, exc.error.code, exc.error.message, exc.error.fields) from None
        except values.Undeserializable as exc:
            raise parser_error(exc, req) from None
        rid = writes.apply_create(t, written, emu.now_datetime(), owner(req))
    return Response.json(201, {"id": rid, "success": True, "errors": []})


def owner(req: Request) -> str | None:
    return req.session.user.user_id if req.session is not None else None


def today(emu: SalesforceEmulator) -> dt.date:
    """The server's date (UTC), for date literals and formulas."""
    return dt.datetime.fromtimestamp(emu.now(), dt.timezone.utc).date()


def parser_error(exc: values.Undeserializable, req: Request) -> ErrorReply:
    """400 JSON_PARSER_ERROR for a value the JSON body cannot bind, with its position."""
    return ErrorReply(400, "JSON_PARSER_ERROR", exc.message(req.body))
