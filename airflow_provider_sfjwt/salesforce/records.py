"""Records as rows: Salesforce's nested JSON records flattened to one value per column.

Column names follow the SOQL SELECT list (see :func:`.soql.select_columns`); relationship fields
are flattened to dotted names (``Owner.Name``), ``attributes`` is dropped, and compound fields
(addresses, geolocations) and sub-query results become compact JSON strings in CSV and Parquet
and stay nested JSON in JSONL. Every writer turns records into rows through this module, so the
three formats always agree on columns and values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

__all__ = ["flatten_record", "infer_columns"]

_MISSING = object()
COMPOUND_TYPES = frozenset({dict, list})


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case (SOQL is case-insensitive)."""
    if name in mapping:
        return name
    low = name.lower()
    for key in mapping:
        if isinstance(key, str) and key.lower() == low:
            return key
    return None


def strip_attributes(value: Any) -> Any:
    """Drop Salesforce ``attributes`` and unwrap sub-query results to their record lists."""
    if isinstance(value, dict):
        if "records" in value and "totalSize" in value:
            return [strip_attributes(r) for r in value.get("records") or []]
        return {k: strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(v) for v in value]
    return value


def json_cell(value: Any) -> str:
    return json.dumps(strip_attributes(value), ensure_ascii=False, separators=(",", ":"))


class Flattener:
    """Turns a record into one value per column, fast for the common case.

    Salesforce returns every selected field, in its canonical case, in every record, so after
    the first record the top-level keys are fetched with one ``itemgetter`` call (C speed). Case
    differences between the SOQL text and the response, dotted relationship paths and flat
    dotted keys (records parsed from Bulk CSV) are resolved on the slow path, which also learns
    the canonical key names for the next records.
    """

    def __init__(self, columns: Sequence[str], nested: bool = False) -> None:
        self.columns = list(columns)
        self.nested = nested  # JSONL keeps compound values as JSON objects
        self._paths = [c.split(".") for c in self.columns]
        self._keys = [p[0] for p in self._paths]
        self._walk = [(i, p[1:]) for i, p in enumerate(self._paths) if len(p) > 1]
        self._getter = self._make_getter()

    def _make_getter(self) -> Any:
        if not self._keys:
            return lambda record: ()
        getter = itemgetter(*self._keys)
        if len(self._keys) == 1:
            return lambda record: (getter(record),)
        return getter

    def _resolve(self, record: Mapping[str, Any]) -> None:
        """Learn how each column maps onto this record's keys."""
        changed = False
        for i, column in enumerate(self.columns):
            path = self._paths[i]
            if self._keys[i] in record:
                continue
            flat = _find_key(record, column) if len(path) > 1 else None
            if flat is not None:
                self._paths[i] = [flat]
                self._keys[i] = flat
                changed = True
                continue
            key = _find_key(record, path[0])
            if key is not None:
                path[0] = key
                self._keys[i] = key
                changed = True
        if changed:
            self._walk = [(i, p[1:]) for i, p in enumerate(self._paths) if len(p) > 1]
            self._getter = self._make_getter()

    def values(self, record: Mapping[str, Any]) -> list[Any]:
        try:
            values = list(self._getter(record))
        except KeyError:
            self._resolve(record)
            values = [record.get(k) for k in self._keys]
        except TypeError as exc:
            raise TypeError(f"expected a record dict, got {type(record).__name__}") from exc
        for i, rest in self._walk:
            value = values[i]
            if value is None:  # null relationship: every field below it is null
                continue
            for j, part in enumerate(rest):
                if not isinstance(value, dict):
                    value = None
                    break
                found = value.get(part, _MISSING)
                if found is _MISSING:
                    key = _find_key(value, part)
                    if key is None:
                        value = None
                        break
                    rest[j] = key
                    found = value[key]
                value = found
            values[i] = value
        if not COMPOUND_TYPES.isdisjoint(map(type, values)):
            for i, value in enumerate(values):
                if type(value) in (dict, list):
                    values[i] = strip_attributes(value) if self.nested else json_cell(value)
        return values


def flatten_record(record: Mapping[str, Any], columns: Sequence[str]) -> list[Any]:
    """One value per column from a REST record: the row a file writer emits.

    ``attributes`` is ignored, dotted columns follow nested relationship objects (a null parent
    gives ``None``), key matching ignores case because SOQL may be written in another case than
    Salesforce's canonical field names, and compound fields (addresses, geolocations,
    sub-query results) become compact JSON strings. A column absent from the record is ``None``.
    """
    return Flattener(columns).values(record)


def infer_columns(record: Mapping[str, Any]) -> list[str]:
    """Column names from one record, for queries whose SELECT list is unknown (``FIELDS()``).

    Relationship objects (dicts carrying ``attributes``) are flattened to dotted names; compound
    fields stay one column. Caveat: a relationship that is null in this first record yields a
    single column (``Owner``) rather than its fields; name the columns explicitly when that
    matters.
    """
    columns: list[str] = []
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "attributes" in value:
            columns.extend(f"{key}.{sub}" for sub in infer_columns(value))
        else:
            columns.append(key)
    return columns
