"""What ``sfjwt objects`` lists: the org's replicable objects, their size and cursor field.

Writing a replication DAG starts with a list of objects; this answers which objects can be read
and how: the row count (``SELECT COUNT()``, the number that decides REST or Bulk), the cursor
field changes are read by (``SystemModstamp`` when the object has it), and fields a replication
treats specially (formula, compound and base64 fields). It runs from a terminal, never while a
DAG is parsed: each object costs a describe and a count.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from .client import SalesforceClient
from .errors import ApiError, UnexpectedResponseError

__all__ = ["CURSOR_FIELDS", "ObjectInfo", "cursor_field", "replicable_objects"]

CURSOR_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
"""Cursor fields in order of preference: SystemModstamp moves on every write, system writes
included; LastModifiedDate misses system writes; CreatedDate sees only new rows."""


@dataclass(frozen=True)
class ObjectInfo:
    """One row of ``sfjwt objects``."""

    name: str
    label: str
    rows: int | None
    cursor_field: str | None
    fields: int
    formula_fields: int
    compound_fields: int
    base64_fields: int

    @property
    def mode(self) -> str:
        """The replication mode this object supports: incremental needs a cursor field."""
        return "incremental" if self.cursor_field else "full"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mode": self.mode}


def cursor_field(describe: dict[str, Any]) -> str | None:
    """The best cursor field the object has, or ``None`` (then only full runs work)."""
    names = {str(f.get("name", "")).lower() for f in describe.get("fields", [])}
    return next((c for c in CURSOR_FIELDS if c.lower() in names), None)


def _candidates(client: SalesforceClient, patterns: Sequence[str]) -> list[dict[str, Any]]:
    body = client.get_json("sobjects")
    listed = body.get("sobjects") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise UnexpectedResponseError("GET sobjects answered without an sobjects list")
    out = []
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        if not item.get("queryable", False) or item.get("replicateable") is False:
            continue
        name = item["name"]
        if patterns and not any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns):
            continue
        out.append(item)
    return sorted(out, key=lambda o: o["name"].lower())


def replicable_objects(
    client: SalesforceClient, patterns: Sequence[str] = (), *, counts: bool = True
) -> Iterator[ObjectInfo]:
    """Every queryable, replicable object (matching a glob of ``patterns``, if given), in name
    order, as it is described: one describe and, with ``counts``, one ``COUNT()`` each."""
    for item in _candidates(client, patterns):
        name = item["name"]
        describe = client.get_json(f"sobjects/{quote(name)}/describe")
        fields = [f for f in describe.get("fields", []) if isinstance(f, dict)]
        rows = None
        if counts:
            try:
                rows = client.count(f"SELECT COUNT() FROM {name}")
            except ApiError as exc:  # some objects refuse an unfiltered query
                if exc.status != 400:
                    raise
        yield ObjectInfo(
            name=name,
            label=str(item.get("label") or name),
            rows=rows,
            cursor_field=cursor_field(describe),
            fields=len(fields),
            formula_fields=sum(1 for f in fields if f.get("calculated")),
            compound_fields=sum(1 for f in fields if f.get("type") in ("address", "location")),
            base64_fields=sum(1 for f in fields if f.get("type") == "base64"),
        )
