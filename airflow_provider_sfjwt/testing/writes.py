"""Record writes shared by the REST sObject endpoints, sObject Collections and Bulk ingest.

Each operation validates like Salesforce (unknown field, read-only field, required field, the
value's type, length and field rules - see :mod:`.values` -, unique external id, unknown /
deleted / malformed id) and returns per-record errors in Salesforce's ``statusCode``
vocabulary, so the three APIs report identical failures for identical input. Every write moves
``LastModifiedDate`` and ``SystemModstamp`` to the server's now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import values
from .ids import normalize_id
from .schema import Field
from .store import Store, Table
from .values import Rejected, WriteError

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


def decode(table: Table, record: dict[str, Any]) -> None:
    """Bind a JSON record's values to their field types; raises ``values.Undeserializable``.

    sObject Collections bind the whole body before writing anything: one unbindable value
    fails the request, not just its record."""
    for key, value in record.items():
        f = table.field(key) if key != "attributes" else None
        if f is not None:
            values.from_json(f, value)


def foreign_key(store: Store, reference: Field, parent_field: str, key: Any) -> str:
    """The Id of the ``reference.reference_to`` record whose ``parent_field`` (an external id
    field, or Id) is ``key``: how a write sets a lookup by external id on every API."""
    parent = store.table(reference.reference_to or "")
    pf = parent.field(parent_field)
    if pf is not None and pf.name == "Id":
        return normalize_id(key) or str(key)
    row = parent.unique_index(pf.name).get(key) if pf is not None and pf.external_id else None
    if row is None or pf is None:
        raise Rejected(
            WriteError(
                "INVALID_FIELD",
                f"Foreign key external ID: {key} not found for field {parent_field} in entity "
                f"{parent.name}",
                [],
            )
        )
    return str(parent.cols["Id"][row])


def _values(
    store: Store, table: Table, record: dict[str, Any], creating: bool, typed: bool
) -> dict[str, Any]:
    """The record's values by canonical field name, checked; ``typed``: already in stored
    form (Bulk CSV cells), else JSON values (raises ``values.Undeserializable``). A nested
    ``{"Account": {"External_Id__c": "A-1"}}`` sets the lookup by the parent's external id."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        f = table.field(key)
        reference = table.relationship(key) if f is None and isinstance(value, dict) else None
        if reference is not None:
            keys = [k for k in value if k != "attributes"]
            if len(keys) != 1:
                raise Rejected(
                    WriteError(
                        "INVALID_FIELD",
                        f"The relationship {key} must name exactly one external id field",
                        [key],
                    )
                )
            out[reference.name] = foreign_key(store, reference, keys[0], value[keys[0]])
            continue
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
        if not typed:
            value = values.from_json(f, value)
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
        if value is None and f.type == "boolean":
            value = False  # a checkbox is never null
        if value is None and not f.nillable:
            raise Rejected(
                WriteError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name]
                )
            )
        values.check(f, value)
        out[f.name] = value
    return out


def _check_references(store: Store, table: Table, written: dict[str, Any]) -> None:
    for name, value in written.items():
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


def _check_unique(table: Table, written: dict[str, Any], row: int | None, batch: Batch) -> None:
    for f in table.fields_where("unique"):
        if written.get(f.name) is None:
            continue
        value = written[f.name]
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


def _claim(table: Table, written: dict[str, Any], row: int, batch: Batch) -> None:
    for f in table.fields_where("unique"):
        if written.get(f.name) is not None:
            batch.claimed.setdefault(f.name, {})[written[f.name]] = row


def _derive(table: Table, written: dict[str, Any], row: int | None) -> None:
    if table.name in ("Contact", "User") and ("FirstName" in written or "LastName" in written):

        def cur(name: str) -> Any:
            if name in written:
                return written[name]
            return table.cols[name][row] if row is not None else None

        written["Name"] = " ".join(p for p in (cur("FirstName"), cur("LastName")) if p) or None


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


def plan_create(
    store: Store, table: Table, record: dict[str, Any], batch: Batch, typed: bool = False
) -> dict[str, Any]:
    checked = _values(store, table, record, creating=True, typed=typed)
    missing = [f.name for f in table.fields_where("required") if checked.get(f.name) in (None, "")]
    if missing:
        raise Rejected(
            WriteError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        )
    _check_references(store, table, checked)
    _check_unique(table, checked, None, batch)
    _claim(table, checked, -1, batch)
    return checked


def apply_create(table: Table, written: dict[str, Any], now: str, owner_id: str | None) -> str:
    rid = table.new_ids(1)[0]
    row = dict(written)
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
    store: Store,
    table: Table,
    record_id: Any,
    record: dict[str, Any],
    batch: Batch,
    typed: bool = False,
) -> tuple[int, dict[str, Any]]:
    row = find(table, record_id)
    checked = _values(store, table, record, creating=False, typed=typed)
    _check_references(store, table, checked)
    _check_unique(table, checked, row, batch)
    _claim(table, checked, row, batch)
    return row, checked


def apply_update(table: Table, row: int, written: dict[str, Any], now: str) -> str:
    _derive(table, written, row)
    for name, value in written.items():
        table.set(row, name, value)
    table.set(row, "LastModifiedDate", now)
    table.set(row, "SystemModstamp", now)
    table.version += 1
    return str(table.cols["Id"][row])


def plan_delete(table: Table, record_id: Any) -> int:
    return find(table, record_id)
