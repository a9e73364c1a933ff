"""Column-oriented record storage for the emulator, with each object's delete log.

Why columns: a million Python dicts cost well over a gigabyte, while one list per field costs
8 bytes per cell (values such as picklist entries and dates are shared objects). Columns also make
serving fast: a page of results is a slice of each column, encoded column by column.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .ids import KEY_PREFIXES, custom_prefix, fast_ids, normalize_id
from .schema import STANDARD_SCHEMAS, Field, Row, standard_fields

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def now_datetime(now: float) -> str:
    """Salesforce's REST datetime format: ``2026-01-31T12:00:00.000+0000``."""
    t = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def normalize_datetime(value: object) -> str | None:
    """Any ISO datetime (or datetime object) as Salesforce's canonical string, None if not one."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
    if not isinstance(value, str):
        return None
    if len(value) == 28 and value.endswith("+0000") and value[10] == "T":
        return value
    m = _DATETIME_RE.match(value)
    if not m:
        return None
    day, hh, mm, ss, frac, tz = m.groups()
    base = dt.datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss or '00'}")
    if frac:
        base = base.replace(microsecond=int(frac.ljust(6, "0")))
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        base = base - sign * offset
    return base.strftime("%Y-%m-%dT%H:%M:%S.") + f"{base.microsecond // 1000:03d}+0000"


def normalize_date(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _DATE_RE.match(value):
        return value
    return None


def infer_field(name: str, values: Iterable[Any]) -> Field:
    """Guess a plausible describe type from loaded values (first non-null ones)."""
    sample = []
    for v in values:
        if v is not None:
            sample.append(v)
            if len(sample) >= 50:
                break
    kind = "string"
    ref = None
    if sample:
        v = sample[0]
        if isinstance(v, bool):
            kind = "boolean"
        elif isinstance(v, int):
            kind = "int"
        elif isinstance(v, float):
            kind = "double"
        elif isinstance(v, dt.datetime):
            kind = "datetime"
        elif isinstance(v, dt.date):
            kind = "date"
        elif isinstance(v, str):
            if all(isinstance(s, str) and _DATE_RE.match(s) for s in sample):
                kind = "date"
            elif all(isinstance(s, str) and _DATETIME_RE.match(s) for s in sample):
                kind = "datetime"
            elif name.endswith(("Id", "__c")) and all(normalize_id(s) for s in sample):
                kind = "reference"
                prefix = sample[0][:3]
                ref = next((k for k, p in KEY_PREFIXES.items() if p == prefix), None)
            elif "@" in v and name.lower().endswith("email"):
                kind = "email"
            elif any("\n" in s or len(s) > 255 for s in sample if isinstance(s, str)):
                kind = "textarea"
    if name.endswith("Id") and kind == "string" and not sample:
        kind = "string"
    rel = None
    if kind == "reference":
        rel = name[:-2] if name.endswith("Id") else name[:-3] + "__r"
    return Field(
        name,
        kind,
        reference_to=ref,
        relationship_name=rel,
        external_id=name.lower() == "external_id__c",
        unique=name.lower() == "external_id__c",
        length=32000 if kind == "textarea" else 255,
    )


@dataclass
class Table:
    """One sObject: schema, columns (one list per stored field), an id -> row index map and
    the delete log.

    The delete log (id -> deletedDate) is what ``/sobjects/{Object}/deleted/`` reports: a row
    enters it when deleted, stays in it when purged from the Recycle Bin (or hard-deleted) and
    leaves it when undeleted; ``log_floor`` is the moment entries before it were dropped.
    """

    name: str
    prefix: str
    fields: dict[str, Field] = field(default_factory=dict)  # lower-case name -> Field
    cols: dict[str, list[Any]] = field(default_factory=dict)  # canonical name -> values
    index: dict[str, int] = field(default_factory=dict)
    size: int = 0
    deleted: int = 0
    purged: set[int] = field(default_factory=set)
    counter: int = 1
    version: int = 0
    delete_log: dict[str, str] = field(default_factory=dict)
    log_floor: str | None = None
    _unique: dict[str, dict[Any, int]] = field(default_factory=dict)

    def field(self, name: str) -> Field | None:
        return self.fields.get(name.lower())

    def fields_where(self, kind: str) -> list[Field]:
        """Fields that are ``required``, ``unique`` or ``boolean``, cached (writes check them per row)."""
        cache: dict[str, list[Field]] = self.__dict__.setdefault("_kinds", {})
        found = cache.get(kind)
        if found is None:
            if kind == "boolean":
                found = [
                    f for f in self.fields.values() if f.type == "boolean" and f.name != "IsDeleted"
                ]
            else:
                found = [f for f in self.fields.values() if getattr(f, kind)]
            cache[kind] = found
        return found

    def add_field(self, f: Field) -> Field:
        existing = self.fields.get(f.name.lower())
        if existing:
            return existing
        self.fields[f.name.lower()] = f
        self.forget_field_lists()
        self.version += 1
        if not f.virtual:
            self.cols[f.name] = [self._default(f.name)] * self.size
        return f

    def forget_field_lists(self) -> None:
        """Drop the cached ``fields_where`` lists (after a field was added or redefined)."""
        self.__dict__.pop("_kinds", None)

    def getter(self, f: Field, store: Store, today: dt.date) -> Callable[[int], Any]:
        """row index -> value of ``f``: its column, or computed for formula/address fields."""
        if not f.virtual:
            return self.cols[f.name].__getitem__
        compute = f.compute
        if compute is not None:
            return lambda i: compute(Row(store, self, i, today))
        parts = [(key, self.cols[name]) for key, name in f.components]

        def address(i: int) -> dict[str, Any] | None:
            found = {key: col[i] for key, col in parts}
            return found if any(v is not None for v in found.values()) else None

        return address

    def value(self, f: Field, i: int, store: Store, today: dt.date) -> Any:
        return self.getter(f, store, today)(i)

    def _default(self, name: str) -> Any:
        """Checkbox (boolean) fields are never null in Salesforce: they default to false."""
        f = self.fields.get(name.lower())
        return False if f is not None and f.type == "boolean" else None

    def relationship(self, rel: str) -> Field | None:
        """The reference field whose relationship name is ``rel`` (case-insensitive)."""
        low = rel.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == low:
                return f
        return None

    def new_ids(self, count: int) -> list[str]:
        ids = fast_ids(self.prefix, self.counter, count)
        self.counter += count
        return ids

    def unique_index(self, name: str) -> dict[Any, int]:
        """value -> row for a unique field, built on first use and kept up to date by writes."""
        idx = self._unique.get(name)
        if idx is None:
            col = self.cols[name]
            purged = self.purged
            idx = {v: i for i, v in enumerate(col) if v is not None and i not in purged}
            self._unique[name] = idx
        return idx

    def append_columns(self, columns: dict[str, list[Any]], count: int) -> None:
        """Add ``count`` rows given as whole columns (fast path of load and the generator)."""
        for name, col in self.cols.items():
            new = columns.get(name)
            if new is None:
                col.extend([self._default(name)] * count)
            else:
                col.extend(new)
        ids = columns["Id"]
        start = self.size
        self.index.update(zip(ids, range(start, start + count), strict=False))
        self.size += count
        for uname, uidx in self._unique.items():
            for i, v in enumerate(columns.get(uname) or (), start):
                if v is not None:
                    uidx[v] = i
        self.version += 1

    def append_row(self, values: dict[str, Any]) -> int:
        i = self.size
        for name, col in self.cols.items():
            value = values.get(name)
            col.append(self._default(name) if value is None else value)
        self.index[values["Id"]] = i
        self.size += 1
        for uname, uidx in self._unique.items():
            v = values.get(uname)
            if v is not None:
                uidx[v] = i
        self.version += 1
        return i

    def set(self, i: int, name: str, value: Any) -> None:
        col = self.cols[name]
        uidx = self._unique.get(name)
        if uidx is not None:
            old = col[i]
            if old is not None and uidx.get(old) == i:
                del uidx[old]
            if value is not None:
                uidx[value] = i
        col[i] = value
        self.version += 1

    def row(self, i: int) -> dict[str, Any]:
        return {name: col[i] for name, col in self.cols.items()}

    def live(self, include_deleted: bool) -> range | list[int]:
        """Row indices visible to a query (queryAll also sees soft-deleted rows)."""
        if not self.purged and (include_deleted or not self.deleted):
            return range(self.size)
        purged = self.purged
        if include_deleted:
            return [i for i in range(self.size) if i not in purged]
        return [i for i, d in enumerate(self.cols["IsDeleted"]) if not d and i not in purged]

    def soft_delete(self, i: int, now: str) -> None:
        """Move row ``i`` to the Recycle Bin: queryAll still sees it, the delete log has it."""
        if not self.cols["IsDeleted"][i]:
            self.cols["IsDeleted"][i] = True
            self.deleted += 1
            self.cols["SystemModstamp"][i] = self.cols["LastModifiedDate"][i] = now
            self.delete_log[self.cols["Id"][i]] = now
            self.version += 1

    def undelete(self, i: int, now: str) -> None:
        """Restore row ``i`` from the Recycle Bin (it leaves the delete log)."""
        if self.cols["IsDeleted"][i] and i not in self.purged:
            self.cols["IsDeleted"][i] = False
            self.deleted -= 1
            self.cols["SystemModstamp"][i] = self.cols["LastModifiedDate"][i] = now
            self.delete_log.pop(self.cols["Id"][i], None)
            self.version += 1

    def purge(self, i: int, now: str) -> None:
        """Delete row ``i`` for good (hard delete, emptied Recycle Bin): gone from queryAll,
        still in the delete log (with its first deletion date)."""
        if i in self.purged:
            return
        if self.cols["IsDeleted"][i]:
            self.deleted -= 1
        self.delete_log.setdefault(self.cols["Id"][i], now)
        self.purged.add(i)
        self.index.pop(self.cols["Id"][i], None)
        for uname, uidx in self._unique.items():
            v = self.cols[uname][i]
            if v is not None and uidx.get(v) == i:
                del uidx[v]
        self.version += 1


class Store:
    """All sObjects of the emulated org, behind one lock for writers."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}  # lower-case name -> Table
        self.lock = threading.RLock()
        self._custom = 0

    def get(self, name: str) -> Table | None:
        return self.tables.get(name.lower())

    def table(self, name: str) -> Table:
        """The table for ``name``, created with a standard or empty schema on first use."""
        t = self.tables.get(name.lower())
        if t is not None:
            return t
        with self.lock:
            t = self.tables.get(name.lower())
            if t is not None:
                return t
            std = next((k for k in STANDARD_SCHEMAS if k.lower() == name.lower()), None)
            canonical = std or name
            prefix = KEY_PREFIXES.get(canonical)
            if prefix is None:
                prefix = custom_prefix(self._custom)
                self._custom += 1
            t = Table(canonical, prefix)
            for f in standard_fields(canonical):
                t.add_field(f)
            self.tables[canonical.lower()] = t
            return t

    def table_for_id(self, record_id: str) -> Table | None:
        prefix = record_id[:3]
        return next((t for t in self.tables.values() if t.prefix == prefix), None)
