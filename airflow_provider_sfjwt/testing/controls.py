"""Test-side controls of the emulated org's data (mixed into ``SalesforceEmulator``).

Besides loading and generating rows, these set up what incremental replication must survive and
no client API can produce on demand: a row committed late (its ``SystemModstamp`` earlier than
rows already read), a system write (``SystemModstamp`` moves, ``LastModifiedDate`` does not), a
formula field whose value changes while neither timestamp does, deletions, undeletions, an
emptied Recycle Bin, and a delete log that dropped its oldest entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import data
from .ids import normalize_id
from .schema import Field, Formula
from .store import Store, Table, normalize_datetime

if TYPE_CHECKING:
    from .auth import User

Stamp = str | dt.datetime


class OrgData:
    """Reached as methods of the emulator: ``emu.load(...)``, ``emu.delete_records(...)``, ..."""

    store: Store
    admin: User

    def now_datetime(self) -> str:  # provided by SalesforceEmulator
        raise NotImplementedError

    # ------------------------------------------------------------------ rows
    def load(
        self,
        sobject: str,
        records: Iterable[dict[str, Any]],
        modstamp: Stamp | None = None,
    ) -> list[str]:
        """Insert records keyed by field API names (Ids assigned when absent); returns the ids.

        Unknown fields are added to the schema with a type guessed from the values. Test data
        is loaded as given (no write rules apply). ``modstamp`` gives the new rows that
        ``CreatedDate``, ``LastModifiedDate`` and ``SystemModstamp`` instead of now: a value
        before rows already served plays a long transaction that commits late.
        """
        now = self.now_datetime() if modstamp is None else _stamp(modstamp)
        return data.load_records(self.store, sobject, records, now, self.admin.user_id)

    def generate_accounts(self, n: int, seed: int = 0) -> None:
        """Append ``n`` realistic Accounts (deterministic per seed; 1M rows in a few seconds)."""
        data.generate_accounts(self.store, n, seed)

    def generate_contacts(self, n: int, seed: int = 0) -> None:
        """Append ``n`` realistic Contacts linked to existing Accounts."""
        data.generate_contacts(self.store, n, seed)

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every stored record of ``sobject`` (soft-deleted ones with ``IsDeleted: True``);
        stored fields only (formula and compound fields are computed when queried)."""
        t = self.store.get(sobject)
        if t is None:
            return []
        return [t.row(i) for i in range(t.size) if i not in t.purged]

    def _rows(self, sobject: str, ids: Iterable[str]) -> tuple[Table, list[int]]:
        t = self.store.get(sobject)
        if t is None:
            raise KeyError(f"no {sobject} records in the emulator")
        rows = []
        for rid in ids:
            row = t.index.get(normalize_id(rid) or "")
            if row is None:
                raise KeyError(f"no {sobject} record {rid} in the emulator")
            rows.append(row)
        return t, rows

    # ------------------------------------------------------------------ timestamps
    def system_update(
        self, sobject: str, ids: Iterable[str], values: dict[str, Any] | None = None
    ) -> None:
        """A write by the system (a recalculation, a background job): ``values`` are stored as
        given and ``SystemModstamp`` moves to now, ``LastModifiedDate`` does not."""
        now = self.now_datetime()
        with self.store.lock:
            t, rows = self._rows(sobject, ids)
            fields = {name: t.field(name) for name in values or {}}
            for name, f in fields.items():
                if f is None or f.virtual:
                    raise KeyError(f"{sobject}.{name} is not a stored field")
            for row in rows:
                for name, f in fields.items():
                    assert f is not None and values is not None
                    t.set(row, f.name, data.coerce(t, f.name, values[name]))
                t.set(row, "SystemModstamp", now)

    # ------------------------------------------------------------------ deletion
    def delete_records(self, sobject: str, ids: Iterable[str]) -> None:
        """Delete records as a user does: to the Recycle Bin (queryAll sees them with
        ``IsDeleted = true``; ``/deleted/`` reports them)."""
        now = self.now_datetime()
        with self.store.lock:
            t, rows = self._rows(sobject, ids)
            for row in rows:
                t.soft_delete(row, now)

    def undelete(self, sobject: str, ids: Iterable[str]) -> None:
        """Restore records from the Recycle Bin (both timestamps move; they leave ``/deleted/``)."""
        now = self.now_datetime()
        with self.store.lock:
            t, rows = self._rows(sobject, ids)
            for row in rows:
                t.undelete(row, now)

    def empty_recycle_bin(self, sobject: str | None = None) -> int:
        """Purge deleted records (of ``sobject``, or of every object) for good: they vanish
        from queryAll while ``/deleted/`` still reports them. Returns how many were purged."""
        now = self.now_datetime()
        count = 0
        with self.store.lock:
            tables = [self.store.get(sobject)] if sobject else list(self.store.tables.values())
            for t in tables:
                if t is None:
                    continue
                flags = t.cols["IsDeleted"]
                for row in [i for i in range(t.size) if flags[i] and i not in t.purged]:
                    t.purge(row, now)
                    count += 1
        return count

    def expire_delete_log(self, sobject: str, before: Stamp) -> None:
        """Drop delete-log entries older than ``before``, as Salesforce's background purge of
        a large delete log does: ``/deleted/`` reports ``earliestDateAvailable`` = ``before``,
        the sign that a replicator which last synced earlier has to resync."""
        floor = _stamp(before)
        with self.store.lock:
            t = self.store.table(sobject)
            t.delete_log = {rid: when for rid, when in t.delete_log.items() if when >= floor}
            t.log_floor = floor

    # ------------------------------------------------------------------ metadata
    def add_formula_field(
        self,
        sobject: str,
        name: str,
        field_type: str,
        formula: str,
        compute: Formula,
        **describe: Any,
    ) -> Field:
        """Add a formula field: describe reports it ``calculated`` with ``calculatedFormula``
        ``formula``; queries evaluate ``compute(row)`` on read (``row["Field"]``,
        ``row["Parent.Field"]``, ``row.today``), so its value changes without either timestamp
        moving. ``describe`` sets other properties (``length``, ``precision``, ``label`` ...)."""
        f = Field(
            name,
            field_type,
            createable=False,
            updateable=False,
            formula=formula,
            compute=compute,
            **describe,
        )
        with self.store.lock:
            t = self.store.table(sobject)
            if t.field(name) is not None:
                raise ValueError(f"{sobject}.{name} exists already")
            return t.add_field(f)

    def define_picklist(
        self,
        sobject: str,
        field_name: str,
        values: Iterable[str],
        restricted: bool = False,
        default: str | None = None,
    ) -> Field:
        """Make ``field_name`` a picklist with this value set (added as a text field when it
        does not exist). A restricted picklist refuses other values on every write API with
        ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``; an unrestricted one stores them, and
        describe keeps listing only the defined values."""
        with self.store.lock:
            t = self.store.table(sobject)
            f = t.field(field_name)
            if f is None:
                f = t.add_field(Field(field_name, "picklist"))
            new = replace(
                f, type="picklist", picklist=tuple(values), restricted=restricted, default=default
            )
            t.fields[f.name.lower()] = new
            t.version += 1
            t.forget_field_lists()
            return new


def _stamp(value: Stamp) -> str:
    stamp = normalize_datetime(value)
    if stamp is None:
        raise ValueError(f"not a datetime: {value!r}")
    return stamp
