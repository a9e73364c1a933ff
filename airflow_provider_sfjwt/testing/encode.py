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

import json
from collections.abc import Sequence
from typing import Any

from . import soql_eval
from .soql import Query, Ref
from .store import Table

_enc = json.encoder.encode_basestring


# How each format spells the three singletons. Looked up only after an identity/type check:
# ``1 == True`` and ``0 == False`` hash alike, so a plain dict lookup would turn numbers into
# booleans. The Bulk CSV quotes booleans like any other value and leaves null as an empty,
# unquoted field (which a CSV reader tells apart from ``""``).
_JSON_SINGLETONS = {None: "null", True: "true", False: "false"}
_CSV_SINGLETONS = {None: "", True: '"true"', False: '"false"'}


def _jval(v: Any) -> str:
    if v is None or type(v) is bool:
        return _JSON_SINGLETONS[v]
    if type(v) is str:
        return _enc(v)
    if type(v) in (int, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else "null"
    return json.dumps(v, ensure_ascii=False, default=str)


def take(col: list[Any], rows: Sequence[int]) -> list[Any]:
    """``[col[i] for i in rows]`` at C speed, and a plain slice for contiguous ranges."""
    if isinstance(rows, range) and rows.step == 1:
        return col[rows.start : rows.stop]
    return list(map(col.__getitem__, rows))


def _ref_values(table: Table, q: Query, ref: Ref, rows: Sequence[int]) -> list[Any]:
    assert ref.field is not None
    if ref.target.virtual:
        return soql_eval.values(q, ref, rows)
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
        if ref.parent is None and ref.field.type == "id":
            parts.append(f',"{ref.field.name}":"%s"')  # ids need no escaping: reuse the raw column
            specs.append((ref, [ref]))
            continue
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
    ids = take(table.cols["Id"], rows)
    cols: list[list[str]] = [ids]
    for ref, members in specs:
        if members == [ref] and ref.parent is None:
            cols.append(ids)
        elif members and any(m.target.virtual for m in members):
            cols.append([_jval(v) for v in _nested_virtual(q, ref, members, rows, version)])
        elif members:
            cols.append(_nested(table, ref, members, rows, version))
        else:
            values = _ref_values(table, q, ref, rows)
            numeric = ref.field.type in ("double", "currency", "int", "percent")  # type: ignore[union-attr]
            if numeric or _repetitive(values):
                try:
                    cols.append(list(map(_Memo(_jval).__getitem__, values)))
                    continue
                except TypeError:
                    pass
            cols.append(
                [_enc(v) if type(v) is str else "null" if v is None else _jval(v) for v in values]
            )
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


def _nested_virtual(
    q: Query, head: Ref, members: list[Ref], rows: Sequence[int], version: str
) -> list[Any]:
    """Parent records (``{"attributes", field: value}`` or None) when a member is computed."""
    parent, table = head.parent, q.table
    assert parent is not None and table is not None and head.field is not None
    ids = take(table.cols[head.field.name], rows)
    reads = [(m.target.name, soql_eval.values(q, m, rows)) for m in members]
    out: list[Any] = []
    for k, pid in enumerate(ids):
        if pid is None or pid not in parent.index:
            out.append(None)
            continue
        url = f"/services/data/v{version}/sobjects/{parent.name}/{pid}"
        record: dict[str, Any] = {"attributes": {"type": parent.name, "url": url}}
        record.update((name, vals[k]) for name, vals in reads)
        out.append(record)
    return out


def csv_header(q: Query, delimiter: str = ",", eol: str = "\n") -> str:
    return delimiter.join('"' + ref.name + '"' for ref in q.fields) + eol


class _Memo(dict[Any, Any]):
    """value -> encoded cell, computed on first use; ``map(memo.__getitem__, values)`` runs in C."""

    def __init__(self, compute: Any) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.compute(key)
        return value


def _repetitive(values: list[Any]) -> bool:
    """True when a column repeats values (picklists, pooled dates, owners): worth memoising."""
    sample = values[:256]
    try:
        return len(set(sample)) * 2 < len(sample)
    except TypeError:  # unhashable values (dicts from load()): no memo
        return False


def _encode_column(values: list[Any], conv: Any, kind: str) -> list[str]:
    """Encode one column: memoised when values repeat (or are numbers), inline for strings."""
    if kind == "number" or _repetitive(values):
        try:
            return list(map(_Memo(conv).__getitem__, values))
        except TypeError:
            pass
    if kind == "datetime":
        return [
            '"' + v[:23] + 'Z"' if type(v) is str and v[-5:] == "+0000" else conv(v) for v in values
        ]
    if kind == "text":  # the common case (a string without quotes) inline, no function call
        return ['"' + v + '"' if type(v) is str and '"' not in v else conv(v) for v in values]
    return [conv(v) for v in values]


def _csv_cell(v: Any) -> str:
    if v is None or type(v) is bool:
        return _CSV_SINGLETONS[v]
    text = (
        v
        if type(v) is str
        else (json.dumps(v, default=str) if isinstance(v, dict | list) else str(v))
    )
    return '"' + text.replace('"', '""') + '"'


def _csv_datetime(v: Any) -> str:
    if type(v) is str and v.endswith("+0000"):
        return '"' + v[:23] + 'Z"'
    return _csv_cell(v)


def _parent_values(
    table: Table, ref: Ref, rows: Sequence[int], memos: dict[str, list[Any]]
) -> list[Any]:
    """Values of ``Rel.Field``: one parent lookup per relationship and distinct parent id."""
    assert ref.field is not None and ref.parent is not None and ref.parent_field is not None
    key = ref.field.name
    if key not in memos:
        memos[key] = list(map(_Memo(ref.parent.index.get).__getitem__, take(table.cols[key], rows)))
    pcol = ref.parent.cols[ref.parent_field.name]
    return [None if j is None else pcol[j] for j in memos[key]]


def csv_rows(
    table: Table, q: Query, rows: Sequence[int], delimiter: str = ",", eol: str = "\n"
) -> str:
    """CSV lines (no header) for ``rows``; see the module docstring for the quoting rules.

    Cells are encoded column by column; columns that repeat values go through a memo dict so a
    picklist value or a pooled date is quoted once per chunk, and rows are joined in C.
    """
    if not rows:
        return ""
    cols = []
    memos: dict[str, list[Any]] = {}
    for ref in q.fields:
        assert ref.field is not None
        f = ref.parent_field or ref.field
        if ref.target.virtual:
            values = soql_eval.values(q, ref, rows)
        elif ref.parent is None:
            values = take(table.cols[ref.field.name], rows)
        else:
            values = _parent_values(table, ref, rows, memos)
        if f.type == "datetime":
            cols.append(_encode_column(values, _csv_datetime, "datetime"))
        elif f.type in ("double", "currency", "int", "percent"):
            cols.append(_encode_column(values, _csv_cell, "number"))
        else:
            cols.append(_encode_column(values, _csv_cell, "text"))
    return eol.join(map(delimiter.join, zip(*cols, strict=True))) + eol
