"""Record writes shared by the REST sObject endpoints, sObject Collections and Bulk ingest.

Each operation validates like Salesforce (unknown field, read-only field, required field, unique
external id, unknown / deleted / malformed id) and returns per-record errors in Salesforce's
``statusCode`` vocabulary, so the three APIs report identical failures for identical input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .data import coerce
from .ids import normalize_id
from .store import Store, Table


@dataclass
class WriteError:
    code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def rest(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def bulk(self) -> str:
        """Bulk API 2.0 ``sf__Error`` text, e.g. ``REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --``."""
        return f"{self.code}:{self.message}:{','.join(self.fields)} --"


class Rejected(Exception):
    def __init__(self, error: WriteError) -> None:
        super().__init__(error.message)
        self.error = error


ROLLED_BACK = WriteError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)

LOCKED = WriteError(
    "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"
)


@dataclass
class Batch:
    """Uniqueness within one request: values claimed by earlier records of the same batch."""

    claimed: dict[str, dict[Any, int]] = field(default_factory=dict)


def _values(table: Table, record: dict[str, Any], creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        f = table.field(key)
        if f is None:
            raise Rejected(
                WriteError(
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {table.name}",
                    [key],
                )
            )
        if f.name == "Id":
            if creating:
                raise Rejected(
                    WriteError(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        "cannot specify Id in an insert call",
                        ["Id"],
                    )
                )
            continue
        if not (f.createable if creating else f.updateable):
            raise Rejected(
                WriteError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or permission set.",
                    [f.name],
                )
            )
        value = coerce(table, f.name, value)
        if f.type == "reference" and value is not None:
            rid = normalize_id(value)
            if rid is None:
                raise Rejected(
                    WriteError(
                        "MALFORMED_ID",
                        f"{f.label or f.name}: id value of incorrect type: {value}",
                        [f.name],
                    )
                )
            value = rid
        if value is None and not f.nillable and f.type != "boolean":
            raise Rejected(
                WriteError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name]
                )
            )
        out[f.name] = value
    return out


def _check_references(store: Store, table: Table, values: dict[str, Any]) -> None:
    for name, value in values.items():
        f = table.field(name)
        if f is None or f.type != "reference" or value is None or not f.reference_to:
            continue
        target = store.get(f.reference_to)
        if target is None or value not in target.index:
            raise Rejected(
                WriteError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    [name],
                )
            )


def _check_unique(table: Table, values: dict[str, Any], row: int | None, batch: Batch) -> None:
    for f in table.fields_where("unique"):
        if values.get(f.name) is None:
            continue
        value = values[f.name]
        owner = table.unique_index(f.name).get(value)
        other = batch.claimed.get(f.name, {}).get(value, owner)
        if other is not None and other != row:
            other_id = table.cols["Id"][other] if 0 <= other < table.size else ""
            raise Rejected(
                WriteError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {f.name} duplicates value on record with id: {other_id}",
                    [],
                )
            )


def _claim(table: Table, values: dict[str, Any], row: int, batch: Batch) -> None:
    for f in table.fields_where("unique"):
        if values.get(f.name) is not None:
            batch.claimed.setdefault(f.name, {})[values[f.name]] = row


def _derive(table: Table, values: dict[str, Any], row: int | None) -> None:
    if table.name in ("Contact", "User") and ("FirstName" in values or "LastName" in values):

        def cur(name: str) -> Any:
            if name in values:
                return values[name]
            return table.cols[name][row] if row is not None else None

        values["Name"] = " ".join(p for p in (cur("FirstName"), cur("LastName")) if p) or None


def find(table: Table, record_id: Any) -> int:
    """Row of a live record; raises the error Salesforce gives for malformed / unknown / deleted ids."""
    rid = normalize_id(record_id)
    if rid is None:
        raise Rejected(WriteError("MALFORMED_ID", f"malformed id {record_id}", []))
    row = table.index.get(rid)
    if row is None:
        raise Rejected(WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []))
    if table.cols["IsDeleted"][row]:
        raise Rejected(WriteError("ENTITY_IS_DELETED", "entity is deleted", []))
    return row


def plan_create(store: Store, table: Table, record: dict[str, Any], batch: Batch) -> dict[str, Any]:
    values = _values(table, record, creating=True)
    missing = [f.name for f in table.fields_where("required") if values.get(f.name) in (None, "")]
    if missing:
        raise Rejected(
            WriteError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        )
    _check_references(store, table, values)
    _check_unique(table, values, None, batch)
    _claim(table, values, -1, batch)
    return values


def apply_create(table: Table, values: dict[str, Any], now: str, owner_id: str | None) -> str:
    rid = table.new_ids(1)[0]
    row = dict(values)
    row["Id"] = rid
    row["IsDeleted"] = False
    row["CreatedDate"] = row["LastModifiedDate"] = row["SystemModstamp"] = now
    if "ownerid" in table.fields and row.get("OwnerId") is None and owner_id:
        row["OwnerId"] = owner_id
    for f in table.fields_where("boolean"):
        if row.get(f.name) is None:
            row[f.name] = False
    _derive(table, row, None)
    table.append_row(row)
    return rid


def plan_update(
    store: Store, table: Table, record_id: Any, record: dict[str, Any], batch: Batch
) -> tuple[int, dict[str, Any]]:
    row = find(table, record_id)
    values = _values(table, record, creating=False)
    _check_references(store, table, values)
    _check_unique(table, values, row, batch)
    _claim(table, values, row, batch)
    return row, values


def apply_update(table: Table, row: int, values: dict[str, Any], now: str) -> str:
    _derive(table, values, row)
    for name, value in values.items():
        table.set(row, name, value)
    table.set(row, "LastModifiedDate", now)
    table.set(row, "SystemModstamp", now)
    table.version += 1
    return table.cols["Id"][row]


def plan_delete(table: Table, record_id: Any) -> int:
    return find(table, record_id)
