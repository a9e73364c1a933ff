"""Evaluating a resolved SOQL query: row indices in result order, or aggregate rows.

Plain queries return row indices (a ``range`` when nothing filters or sorts, so serving can slice
columns); ``GROUP BY`` / aggregate queries return their AggregateResult records. Formula and
compound fields have no stored column: :func:`getter` computes them per row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any

from . import soql_dates
from .soql import Agg, Query, Ref
from .store import Store, normalize_datetime

_TEXTUAL_EXCLUDED = ("double", "currency", "int", "percent", "boolean", "date", "datetime")


def getter(q: Query, ref: Ref) -> Callable[[int], Any]:
    """row index -> value of ``ref`` (following the relationship for ``Owner.Name``)."""
    table, store, today = q.table, q.store, q.today
    assert table is not None and store is not None and today is not None and ref.field is not None
    if ref.parent is None:
        return table.getter(ref.field, store, today)
    col = table.cols[ref.field.name]
    pindex = ref.parent.index
    pget = ref.parent.getter(ref.target, store, today)

    def get(i: int) -> Any:
        j = pindex.get(col[i])
        return None if j is None else pget(j)

    return get


def values(q: Query, ref: Ref, rows: Sequence[int]) -> list[Any]:
    """The values of ``ref`` for ``rows`` (the slow path for formula and compound fields)."""
    get = getter(q, ref)
    return [get(i) for i in rows]


def _literal_value(ftype: str, lit: tuple[str, Any]) -> Any:
    kind, v = lit
    if kind == "datetime":
        return normalize_datetime(v)
    if kind == "number" and ftype in ("double", "currency", "percent"):
        return float(v)
    return v


def _like_regex(text: str) -> str:
    """LIKE pattern to regex: ``%`` any run, ``_`` one character, ``\\%`` / ``\\_`` literal."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def _in_days(get: Callable[[int], Any], cmp: str, lo: str, hi: str) -> Callable[[int], bool]:
    """A relative date literal as a day range ``lo`` <= day < ``hi`` (ISO dates)."""

    def test(i: int) -> bool:
        v = get(i)
        if v is None:
            return False
        d = str(v)[:10]
        if cmp == "=":
            return lo <= d < hi
        if cmp == "!=":
            return not lo <= d < hi
        if cmp == "<":
            return d < lo
        if cmp == "<=":
            return d < hi
        if cmp == ">":
            return d >= hi
        return d >= lo

    return test


def _compare(get: Callable[[int], Any], cmp: str, value: Any) -> Callable[[int], bool]:
    if cmp == "=":
        return lambda i: get(i) == value
    if cmp == "!=":
        return lambda i: get(i) != value

    def ordered(i: int) -> bool:
        v = get(i)
        if v is None:
            return False
        try:
            if cmp == "<":
                return bool(v < value)
            if cmp == ">":
                return bool(v > value)
            if cmp == "<=":
                return bool(v <= value)
            return bool(v >= value)
        except TypeError:
            return False

    return ordered


def compile_filter(
    q: Query, e: Any, get_left: Callable[[Ref | Agg], Callable[[int], Any]]
) -> Callable[[int], bool]:
    """A predicate over row indices (WHERE) or group indices (HAVING) for condition ``e``."""
    op = e[0]
    if op in ("and", "or"):
        a, b = compile_filter(q, e[1], get_left), compile_filter(q, e[2], get_left)
        return (lambda i: a(i) and b(i)) if op == "and" else (lambda i: a(i) or b(i))
    if op == "not":
        a = compile_filter(q, e[1], get_left)
        return lambda i: not a(i)
    left: Ref | Agg = e[2] if op == "cmp" else e[1]
    raw = get_left(left)
    if isinstance(left, Agg):
        ftype = "int" if left.ref is None else left.ref.target.type
    else:
        ftype = left.target.type
    textual = ftype not in _TEXTUAL_EXCLUDED

    def get(i: int) -> Any:
        v = raw(i)
        return v.lower() if textual and isinstance(v, str) else v

    if op in ("in", "notin"):
        wanted = {_literal_value(ftype, lit) for lit in e[2]}
        if textual:
            wanted = {v.lower() if isinstance(v, str) else v for v in wanted}
        return (lambda i: get(i) in wanted) if op == "in" else (lambda i: get(i) not in wanted)
    if op == "like":
        rx = re.compile(_like_regex(e[2][1]) + r"\Z", re.IGNORECASE | re.DOTALL)
        return lambda i: (v := raw(i)) is not None and rx.match(str(v)) is not None
    cmp, lit = e[1], e[3]
    if lit[0] == "null":
        if cmp in ("=", "!="):
            return (lambda i: raw(i) is None) if cmp == "=" else (lambda i: raw(i) is not None)
        return lambda i: False
    if lit[0] == "datekw":
        assert q.today is not None
        lo, hi = soql_dates.day_range(lit[1][0], lit[1][1], q.today)
        return _in_days(raw, cmp, lo.isoformat(), hi.isoformat())
    value = _literal_value(ftype, lit)
    if textual and isinstance(value, str):
        value = value.lower()
    return _compare(get, cmp, value)


def _sort(rows: list[Any], keyed: list[tuple[Callable[[Any], Any], bool, bool]]) -> list[Any]:
    """Stable multi-key sort with Salesforce's null placement (NULLS FIRST unless DESC)."""
    for get, desc, nulls_first in reversed(keyed):
        nones = [i for i in rows if get(i) is None]
        present = [i for i in rows if get(i) is not None]

        def key(i: Any, get: Callable[[Any], Any] = get) -> Any:
            v = get(i)
            return v.lower() if isinstance(v, str) else v

        present.sort(key=key, reverse=desc)
        rows = nones + present if nulls_first else present + nones
    return rows


def execute(store: Store, q: Query, include_deleted: bool, today: dt.date) -> Sequence[int] | int:
    """Row indices matching ``q`` in result order (a range when nothing filters or sorts),
    or the count for ``COUNT()`` queries (for aggregate queries: the rows to aggregate)."""
    table = q.table
    assert table is not None
    q.store, q.today = store, today
    rows: Sequence[int] = table.live(include_deleted)
    if q.where is not None:
        pred = compile_filter(q, q.where, lambda ref: getter(q, ref))  # type: ignore[arg-type]
        rows = [i for i in rows if pred(i)]
    if q.count:
        n = max(0, len(rows) - q.offset)
        return min(n, q.limit) if q.limit is not None else n
    if q.aggregate:  # ordered, limited and offset per group by aggregate()
        return rows
    if q.order:
        keyed = [(getter(q, ref), desc, first) for ref, desc, first in q.order]  # type: ignore[arg-type]
        rows = _sort(list(rows), keyed)
    if q.offset or q.limit is not None:
        end = None if q.limit is None else q.offset + q.limit
        rows = rows[q.offset : end]
    return rows


def _aggregate(agg: Agg, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if agg.func == "count":
        return len(values) if agg.ref is None else len(present)
    if agg.func == "count_distinct":
        return len({v.lower() if isinstance(v, str) else v for v in present})
    if not present:
        return None
    if agg.func == "sum":
        return sum(present)
    if agg.func == "avg":
        return sum(present) / len(present)
    return min(present) if agg.func == "min" else max(present)


def aggregate(q: Query, rows: Sequence[int]) -> list[dict[str, Any]]:
    """AggregateResult records for a GROUP BY / aggregate query over the matching ``rows``."""
    group_gets = [getter(q, ref) for ref in q.group_by]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in rows:
        groups.setdefault(tuple(g(i) for g in group_gets), []).append(i)
    if not q.group_by and not groups:
        groups[()] = []
    aggs: dict[str, Agg] = {}
    for agg in q.aggregates:
        aggs.setdefault(agg.text.lower(), agg)
    for item, _, _ in q.order:
        if isinstance(item, Agg):
            aggs.setdefault(item.text.lower(), item)
    extra = _having_aggs(q.having)
    for agg in extra:
        aggs.setdefault(agg.text.lower(), agg)
    names = [ref.name.lower() for ref in q.group_by]
    reads = {text: None if a.ref is None else getter(q, a.ref) for text, a in aggs.items()}
    results: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for key, members in groups.items():
        computed: dict[str, Any] = {}
        for text, a in aggs.items():
            read = reads[text]
            computed[text] = (
                len(members) if read is None else _aggregate(a, list(map(read, members)))
            )
        results.append((dict(zip(names, key, strict=True)), computed))

    def value_of(item: Ref | Agg) -> Callable[[int], Any]:
        if isinstance(item, Agg):
            text = item.text.lower()
            return lambda k: results[k][1][text]
        name = item.name.lower()
        return lambda k: results[k][0][name]

    order = list(range(len(results)))
    if q.having is not None:
        pred = compile_filter(q, q.having, value_of)
        order = [k for k in order if pred(k)]
    if q.order:
        order = _sort(order, [(value_of(item), desc, first) for item, desc, first in q.order])
    if q.offset or q.limit is not None:
        end = None if q.limit is None else q.offset + q.limit
        order = order[q.offset : end]
    out = []
    for k in order:
        record: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
        for item in q.items:
            if isinstance(item, Agg):
                record[item.key] = results[k][1][item.text.lower()]
            else:
                record[item.target.name] = results[k][0][item.name.lower()]
        out.append(record)
    return out


def _having_aggs(e: Any) -> list[Agg]:
    if e is None:
        return []
    if e[0] in ("and", "or"):
        return _having_aggs(e[1]) + _having_aggs(e[2])
    if e[0] == "not":
        return _having_aggs(e[1])
    left = e[2] if e[0] == "cmp" else e[1]
    return [left] if isinstance(left, Agg) else []
