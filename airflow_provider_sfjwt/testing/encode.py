"""Fast serialisation of query results to REST JSON records and Bulk API 2.0 CSV.

Serving speed decides whether benchmarks measure the client or the emulator, so rows are encoded
column by column (one list comprehension per column, C-level string joins per row) instead of
building a dict per record and calling ``json.dumps``.

CSV choice (documented in README_EMULATOR.md): like Salesforce's Bulk API 2.0 results, the header
and every non-null value are double-quoted, embedded quotes are doubled, null is an empty unquoted
field, booleans are ``true``/``false``, datetimes use ``2026-01-31T12:00:00.000Z`` and lines end
with LF. Any RFC 4180 reader gets the same values back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from .soql import Query, Ref
from .store import Table

_enc = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _jval(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if type(v) is str:
        return _enc(v)
    if type(v) in (int, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else "null"
    return json.dumps(v, ensure_ascii=False, default=str)


def _cval(v: Any) -> str:
    if v is None:
        return ""
    if v is True:
        return '"true"'
    if v is False:
        return '"false"'
    s = (
        v
        if type(v) is str
        else (json.dumps(v, default=str) if isinstance(v, dict | list) else str(v))
    )
    return '"' + s.replace('"', '""') + '"'


def take(col: list[Any], rows: Sequence[int]) -> list[Any]:
    """``[col[i] for i in rows]`` at C speed, and a plain slice for contiguous ranges."""
    if isinstance(rows, range) and rows.step == 1:
        return col[rows.start : rows.stop]
    return list(map(col.__getitem__, rows))


def _ref_values(table: Table, ref: Ref, rows: Sequence[int]) -> list[Any]:
    assert ref.field is not None
    base = take(table.cols[ref.field.name], rows)
    if ref.parent is None:
        return base
    pindex = ref.parent.index.get
    pcol = ref.parent.cols[ref.parent_field.name]  # type: ignore[union-attr]
    return [None if (j := pindex(p)) is None else pcol[j] for p in base]


def json_records(table: Table, q: Query, rows: Sequence[int], version: str) -> str:
    """The ``records`` array of a REST query page, as a JSON string."""
    if not rows:
        return "[]"
    url = f"/services/data/v{version}/sobjects/{table.name}/"
    parts = [f'{{"attributes":{{"type":{_enc(table.name)},"url":"{url}%s"}}']
    specs: list[tuple[Ref, list[Ref]]] = []  # plain field: (ref, []); relationship: (head, members)
    by_rel: dict[str, list[Ref]] = {}
    for ref in q.fields:
        assert ref.field is not None
        if ref.parent is None:
            specs.append((ref, []))
            parts.append(f',"{ref.field.name}":%s')
            continue
        rel = ref.field.relationship_name or ""
        if rel in by_rel:
            by_rel[rel].append(ref)
            continue
        by_rel[rel] = [ref]
        specs.append((ref, by_rel[rel]))
        parts.append(f',"{rel}":%s')
    cols: list[list[str]] = [take(table.cols["Id"], rows)]
    for ref, members in specs:
        if members:
            cols.append(_nested(table, ref, members, rows, version))
        else:
            values = _ref_values(table, ref, rows)
            cols.append([_enc(v) if type(v) is str else _jval(v) for v in values])
    template = "".join(parts) + "}"
    return "[" + ",".join(map(template.__mod__, zip(*cols, strict=False))) + "]"


def _nested(
    table: Table, head: Ref, members: list[Ref], rows: Sequence[int], version: str
) -> list[str]:
    parent = head.parent
    assert parent is not None and head.field is not None
    pindex = parent.index
    pcols = [(m.parent_field.name, parent.cols[m.parent_field.name]) for m in members]  # type: ignore[union-attr]
    url = f"/services/data/v{version}/sobjects/{parent.name}/"
    memo: dict[Any, str] = {None: "null"}

    def build(pid: Any) -> str:
        j = pindex.get(pid)
        if j is None:
            memo[pid] = "null"
            return "null"
        body = ",".join(f'"{name}":{_jval(col[j])}' for name, col in pcols)
        out = f'{{"attributes":{{"type":"{parent.name}","url":"{url}{pid}"}},{body}}}'
        memo[pid] = out
        return out

    base = take(table.cols[head.field.name], rows)
    return [memo[p] if p in memo else build(p) for p in base]


def csv_header(q: Query, delimiter: str = ",", eol: str = "\n") -> str:
    return delimiter.join('"' + ref.name + '"' for ref in q.fields) + eol


_NULL = "\x1f\x1e\x1d"  # stands for null while the C csv writer runs, then removed
_QUOTED_NULL = '"' + _NULL + '"'


class _Memo(dict):
    """parent id -> value, computed on first use; ``map(memo.__getitem__, ids)`` runs in C."""

    def __init__(self, compute: Any) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.compute(key)
        return value


def csv_rows(
    table: Table, q: Query, rows: Sequence[int], delimiter: str = ",", eol: str = "\n"
) -> str:
    """CSV lines (no header) for ``rows``; see the module docstring for the quoting rules.

    The C csv writer quotes every field (QUOTE_ALL); nulls travel as a sentinel that is then
    replaced by an empty unquoted field (what Python 3.12's QUOTE_NOTNULL does natively).
    """
    if not rows:
        return ""
    cols = []
    memos: dict[str, list[Any]] = {}
    for ref in q.fields:
        assert ref.field is not None
        f = ref.parent_field or ref.field
        if ref.parent is None:
            values = take(table.cols[ref.field.name], rows)
        else:
            # one parent lookup per relationship and distinct parent id, shared by its columns
            key = ref.field.name
            if key not in memos:
                pindex = ref.parent.index.get
                memos[key] = list(map(_Memo(pindex).__getitem__, take(table.cols[key], rows)))
            pcol = ref.parent.cols[f.name]
            values = [None if j is None else pcol[j] for j in memos[key]]
        if f.type == "boolean":
            values = ["true" if v is True else "false" if v is False else _cnull(v) for v in values]
        elif f.type == "datetime":
            values = [
                v[:23] + "Z" if type(v) is str and v.endswith("+0000") else _cnull(v)
                for v in values
            ]
        elif f.type in ("double", "currency", "int", "percent"):
            # repr() of numbers is the costly part of CSV writing; values repeat a lot
            values = list(map(_Memo(_cnum).__getitem__, values))
        elif None in values:
            values = [_NULL if v is None else v for v in values]
        cols.append(values)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator=eol)
    writer.writerows(zip(*cols, strict=False))
    return buf.getvalue().replace(_QUOTED_NULL, "")


def _cnum(v: Any) -> str:
    return _NULL if v is None else str(v)


def _cnull(v: Any) -> Any:
    return _NULL if v is None else v
