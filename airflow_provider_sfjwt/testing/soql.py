"""A SOQL subset: parser, validation against the emulated schema, and evaluation to row indices.

Supported: ``SELECT`` fields (one-level relationship paths such as ``Owner.Name``), ``COUNT()``
and ``COUNT(field)``, ``FROM`` object, ``WHERE`` with ``= != <> < > <= >=``, ``AND/OR/NOT``,
parentheses, ``IN``/``NOT IN``, ``LIKE`` (``%`` and ``_``), ``NULL``, ``TRUE/FALSE``, quoted strings
with backslash escapes, numbers, date and datetime literals and the date literals ``TODAY``,
``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``; ``ORDER BY`` several fields
with ``ASC/DESC`` and ``NULLS FIRST/LAST``; ``LIMIT``; ``OFFSET``.

Errors carry Salesforce's error codes and message style, because clients map them to exceptions
(MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .store import STANDARD_SCHEMAS, Field, Store, Table, normalize_datetime

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "order",
    "by",
    "limit",
    "offset",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "null",
    "true",
    "false",
}
_NUMERIC = ("double", "currency", "int", "percent")
_DATE_KEYWORDS = ("today", "yesterday", "tomorrow", "last_n_days", "next_n_days")


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is the REST errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Tok:
    kind: str
    value: Any
    text: str
    pos: int


@dataclass
class Ref:
    """A field path as written in the query, resolved later against the schema."""

    path: tuple[str, ...]
    pos: int
    field: Field | None = None
    parent: Table | None = None  # set for relationship paths
    parent_field: Field | None = None

    @property
    def name(self) -> str:
        """The canonical column name (``Owner.Name`` for relationship paths)."""
        if self.parent_field is not None and self.field is not None:
            return f"{self.field.relationship_name}.{self.parent_field.name}"
        return self.field.name if self.field else ".".join(self.path)


@dataclass
class Query:
    soql: str
    sobject: str
    fields: list[Ref] = field(default_factory=list)
    count: bool = False  # SELECT COUNT()
    count_field: Ref | None = None  # SELECT COUNT(field)
    where: Any = None
    order: list[tuple[Ref, bool, bool]] = field(default_factory=list)  # ref, desc, nulls_first
    limit: int | None = None
    offset: int = 0
    table: Table | None = None


def _tokenize(soql: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN_RE.match(soql, pos)
        if not m:
            raise _malformed(soql, pos, soql[pos : pos + 10].split(" ")[0])
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "string":
            body = text[1:-1]
            value = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), "\\" + e.group(1)), body)
            toks.append(Tok("string", value, text, pos))
        elif kind == "number":
            is_float = "." in text or "e" in text.lower()
            toks.append(Tok("number", float(text) if is_float else int(text), text, pos))
        elif kind in ("date", "datetime", "op"):
            toks.append(Tok(kind, text, text, pos))
        elif kind == "ident":
            low = text.lower()
            if low.split(":")[0] in _DATE_KEYWORDS:
                toks.append(Tok("datekw", low, text, pos))
            elif low in _KEYWORDS:
                toks.append(Tok("kw", low, text, pos))
            else:
                toks.append(Tok("ident", text, text, pos))
        pos = m.end()
    toks.append(Tok("eof", None, "<EOF>", len(soql)))
    return toks


def _malformed(soql: str, pos: int, token: str) -> SoqlError:
    line = soql.replace("\n", " ")
    return SoqlError(
        "MALFORMED_QUERY",
        f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\nunexpected token: {token}",
    )


class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.toks = _tokenize(soql)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, tok: Tok | None = None) -> SoqlError:
        tok = tok or self.peek()
        return _malformed(self.soql, tok.pos, tok.text)

    def kw(self, word: str) -> bool:
        t = self.peek()
        if t.kind == "kw" and t.value == word:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.kw(word):
            raise self.fail()

    def expect_op(self, op: str) -> None:
        t = self.next()
        if t.kind != "op" or t.value != op:
            raise self.fail(t)

    def ident(self) -> Tok:
        t = self.next()
        if t.kind != "ident":
            raise self.fail(t)
        return t

    def parse(self) -> Query:
        self.expect_kw("select")
        q = Query(self.soql, "")
        t = self.peek()
        if t.kind == "ident" and t.value.lower() == "count" and self.toks[self.i + 1].value == "(":
            self.i += 2
            if self.peek().kind == "op" and self.peek().value == ")":
                q.count = True
            else:
                f = self.ident()
                q.count_field = Ref(tuple(f.value.split(".")), f.pos)
            self.expect_op(")")
        else:
            while True:
                t = self.peek()
                if t.kind == "op" and t.value == "(":
                    raise SoqlError(
                        "MALFORMED_QUERY", "Sub-queries are not supported by the emulator"
                    )
                f = self.ident()
                nxt = self.peek()
                if f.value.lower() == "fields" and nxt.kind == "op" and nxt.value == "(":
                    self.i += 1
                    which = self.ident().value.upper()
                    if which not in ("ALL", "STANDARD", "CUSTOM"):
                        raise self.fail(self.toks[self.i - 1])
                    self.expect_op(")")
                    q.fields.append(Ref((f"FIELDS({which})",), f.pos))
                else:
                    q.fields.append(Ref(tuple(f.value.split(".")), f.pos))
                if not (self.peek().kind == "op" and self.peek().value == ","):
                    break
                self.i += 1
        self.expect_kw("from")
        q.sobject = self.ident().value
        if self.kw("where"):
            q.where = self.expr()
        t = self.peek()
        if t.kind == "ident" and t.value.lower() == "with":  # WITH SECURITY_ENFORCED / USER_MODE
            self.i += 1
            mode = self.ident()
            if mode.value.lower() not in ("security_enforced", "user_mode", "system_mode"):
                raise self.fail(mode)
        if self.kw("order"):
            self.expect_kw("by")
            while True:
                f = self.ident()
                desc = False
                if self.kw("desc"):
                    desc = True
                else:
                    self.kw("asc")
                nulls_first = not desc
                if self.kw("nulls"):
                    if self.kw("first"):
                        nulls_first = True
                    else:
                        self.expect_kw("last")
                        nulls_first = False
                q.order.append((Ref(tuple(f.value.split(".")), f.pos), desc, nulls_first))
                if not (self.peek().kind == "op" and self.peek().value == ","):
                    break
                self.i += 1
        if self.kw("limit"):
            t = self.next()
            if t.kind != "number" or not isinstance(t.value, int) or t.value < 0:
                raise self.fail(t)
            q.limit = t.value
        if self.kw("offset"):
            t = self.next()
            if t.kind != "number" or not isinstance(t.value, int) or t.value < 0:
                raise self.fail(t)
            q.offset = t.value
        if self.peek().kind != "eof":
            raise self.fail()
        return q

    # expr := and_expr (OR and_expr)*
    def expr(self) -> Any:
        left = self.and_expr()
        while self.kw("or"):
            left = ("or", left, self.and_expr())
        return left

    def and_expr(self) -> Any:
        left = self.not_expr()
        while self.kw("and"):
            left = ("and", left, self.not_expr())
        return left

    def not_expr(self) -> Any:
        if self.kw("not"):
            return ("not", self.not_expr())
        t = self.peek()
        if t.kind == "op" and t.value == "(":
            self.i += 1
            e = self.expr()
            self.expect_op(")")
            return e
        return self.condition()

    def condition(self) -> Any:
        f = self.ident()
        ref = Ref(tuple(f.value.split(".")), f.pos)
        t = self.next()
        if t.kind == "kw" and t.value in ("in", "not"):
            negate = t.value == "not"
            if negate:
                self.expect_kw("in")
            self.expect_op("(")
            values = [self.literal()]
            while self.peek().kind == "op" and self.peek().value == ",":
                self.i += 1
                values.append(self.literal())
            self.expect_op(")")
            return ("notin" if negate else "in", ref, values)
        if t.kind == "kw" and t.value == "like":
            lit = self.literal()
            if lit[0] != "string":
                raise self.fail()
            return ("like", ref, lit)
        if t.kind == "op" and t.value in ("=", "!=", "<>", "<", ">", "<=", ">="):
            op = "!=" if t.value == "<>" else t.value
            return ("cmp", op, ref, self.literal())
        raise self.fail(t)

    def literal(self) -> tuple[str, Any]:
        t = self.next()
        if t.kind in ("string", "number", "date", "datetime"):
            return (t.kind, t.value)
        if t.kind == "datekw":
            return ("datekw", t.value)
        if t.kind == "kw" and t.value in ("null", "true", "false"):
            return ("null", None) if t.value == "null" else ("bool", t.value == "true")
        raise self.fail(t)


def parse(soql: str) -> Query:
    """Parse ``soql`` (no schema needed); raises SoqlError(MALFORMED_QUERY)."""
    if not soql or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statement cannot be empty")
    return _Parser(soql).parse()


# --------------------------------------------------------------------------- resolution


def _no_column(q: Query, ref: Ref, entity: str, name: str) -> SoqlError:
    line = q.soql.replace("\n", " ")
    return SoqlError(
        "INVALID_FIELD",
        f"\n{line}\n{' ' * ref.pos}^\nERROR at Row:1:Column:{ref.pos + 1}\n"
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def resolve_table(store: Store, name: str) -> Table:
    """The table a query names; standard objects exist even when empty."""
    t = store.get(name)
    if t is None and any(k.lower() == name.lower() for k in STANDARD_SCHEMAS):
        t = store.table(name)
    if t is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"\nFROM {name}\n     ^\nERROR at Row:1:Column:1\nsObject type '{name}' is not "
            "supported. If you are attempting to use a custom object, be sure to append the "
            "'__c' after the entity name. Please reference your WSDL or the describe call for "
            "the appropriate names.",
        )
    return t


def _resolve_ref(store: Store, q: Query, table: Table, ref: Ref) -> None:
    if len(ref.path) == 1 or (len(ref.path) == 2 and ref.path[0].lower() == table.name.lower()):
        name = ref.path[-1]
        f = table.field(name)
        if f is None:
            raise _no_column(q, ref, table.name, name)
        ref.field = f
        return
    if len(ref.path) != 2:
        raise SoqlError(
            "INVALID_FIELD",
            f"Relationship paths deeper than one level ({'.'.join(ref.path)}) are not "
            "supported by the emulator",
        )
    rel, name = ref.path
    f = table.relationship(rel)
    if f is None or not f.reference_to:
        raise SoqlError(
            "INVALID_FIELD",
            f"\n{q.soql}\n{' ' * ref.pos}^\nERROR at Row:1:Column:{ref.pos + 1}\n"
            f"Didn't understand relationship '{rel}' in field path. If you are attempting to use "
            "a custom relationship, be sure to append the '__r' after the custom relationship "
            "name. Please reference your WSDL or the describe call for the appropriate names.",
        )
    parent = store.table(f.reference_to)
    pf = parent.field(name)
    if pf is None:
        raise _no_column(q, ref, parent.name, name)
    ref.field, ref.parent, ref.parent_field = f, parent, pf


def _expand_fields(q: Query, table: Table) -> list[Ref]:
    """``FIELDS(ALL|STANDARD|CUSTOM)`` as the field list it stands for (ALL/CUSTOM need LIMIT 200)."""
    out: list[Ref] = []
    seen: set[str] = set()
    for ref in q.fields:
        marker = ref.path[0]
        if not marker.startswith("FIELDS("):
            out.append(ref)
            seen.add(".".join(ref.path).lower())
            continue
        which = marker[7:-1]
        if which != "STANDARD" and (q.limit is None or q.limit > 200):
            raise SoqlError(
                "MALFORMED_QUERY",
                f"The SOQL FIELDS function must have a LIMIT of at most 200 (FIELDS({which}))",
            )
        for f in table.fields.values():
            custom = f.name.endswith("__c")
            if (which == "CUSTOM" and not custom) or (which == "STANDARD" and custom):
                continue
            if f.name.lower() not in seen:
                seen.add(f.name.lower())
                out.append(Ref((f.name,), ref.pos))
    return out


def resolve(store: Store, q: Query) -> Query:
    """Bind every field path to the schema, raising INVALID_TYPE / INVALID_FIELD like Salesforce."""
    table = resolve_table(store, q.sobject)
    q.table = table
    q.sobject = table.name
    q.fields = _expand_fields(q, table)
    for ref in q.fields:
        _resolve_ref(store, q, table, ref)
    if q.count_field:
        _resolve_ref(store, q, table, q.count_field)
    for ref, _, _ in q.order:
        _resolve_ref(store, q, table, ref)
    _resolve_expr(store, q, table, q.where)
    return q


def _resolve_expr(store: Store, q: Query, table: Table, e: Any) -> None:
    if e is None:
        return
    if e[0] in ("and", "or"):
        _resolve_expr(store, q, table, e[1])
        _resolve_expr(store, q, table, e[2])
    elif e[0] == "not":
        _resolve_expr(store, q, table, e[1])
    else:
        ref = e[2] if e[0] == "cmp" else e[1]
        _resolve_ref(store, q, table, ref)
        ftype = (ref.parent_field or ref.field).type  # type: ignore[union-attr]
        lits = e[2] if e[0] in ("in", "notin") else [e[3] if e[0] == "cmp" else e[2]]
        for lit in lits:
            _check_literal(ref, ftype, lit)


def _check_literal(ref: Ref, ftype: str, lit: tuple[str, Any]) -> None:
    kind = lit[0]
    if kind == "null":
        return
    name = ref.path[-1]
    if ftype in _NUMERIC and kind != "number":
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{name}' must be of type "
            f"{'integer' if ftype == 'int' else 'double'} and should not be enclosed in quotes",
        )
    if ftype == "boolean" and kind != "bool":
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{name}' must be of type boolean and should "
            "not be enclosed in quotes",
        )
    if ftype in ("date", "datetime") and kind not in ("date", "datetime", "datekw"):
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{name}' must be of type {ftype} and should "
            "not be enclosed in quotes",
        )
    if ftype not in _NUMERIC + ("boolean", "date", "datetime") and kind not in ("string",):
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{name}' must be of type string and should "
            "be enclosed in quotes",
        )


# --------------------------------------------------------------------------- evaluation


def getter(store: Store, table: Table, ref: Ref) -> Callable[[int], Any]:
    """row index -> value of ``ref`` (following the relationship for ``Owner.Name``)."""
    assert ref.field is not None
    col = table.cols[ref.field.name]
    if ref.parent is None:
        return col.__getitem__
    pindex = ref.parent.index
    pcol = ref.parent.cols[ref.parent_field.name]  # type: ignore[union-attr]

    def get(i: int) -> Any:
        j = pindex.get(col[i])
        return None if j is None else pcol[j]

    return get


def _day_range(kw: str, today: dt.date) -> tuple[str, str]:
    base, _, num = kw.partition(":")
    if base == "today":
        a = b = today
    elif base == "yesterday":
        a = b = today - dt.timedelta(days=1)
    elif base == "tomorrow":
        a = b = today + dt.timedelta(days=1)
    elif base == "last_n_days":
        a, b = today - dt.timedelta(days=int(num or 0)), today
    else:
        a, b = today, today + dt.timedelta(days=int(num or 0))
    return a.isoformat(), b.isoformat()


def _literal_value(ftype: str, lit: tuple[str, Any]) -> Any:
    kind, v = lit
    if kind == "datetime":
        v = normalize_datetime(v)
        return v[:10] if ftype == "date" else v
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


def _compile(store: Store, table: Table, e: Any, today: dt.date) -> Callable[[int], bool]:
    op = e[0]
    if op == "and":
        a, b = _compile(store, table, e[1], today), _compile(store, table, e[2], today)
        return lambda i: a(i) and b(i)
    if op == "or":
        a, b = _compile(store, table, e[1], today), _compile(store, table, e[2], today)
        return lambda i: a(i) or b(i)
    if op == "not":
        a = _compile(store, table, e[1], today)
        return lambda i: not a(i)
    ref: Ref = e[2] if op == "cmp" else e[1]
    get = getter(store, table, ref)
    ftype = (ref.parent_field or ref.field).type  # type: ignore[union-attr]
    textual = ftype not in _NUMERIC + ("boolean", "date", "datetime")
    if op in ("in", "notin"):
        values = {_literal_value(ftype, lit) for lit in e[2]}
        if textual:
            values = {v.lower() if isinstance(v, str) else v for v in values}

            def member(i: int) -> bool:
                v = get(i)
                return (v.lower() if isinstance(v, str) else v) in values

        else:

            def member(i: int) -> bool:
                return get(i) in values

        return member if op == "in" else (lambda i: not member(i))
    if op == "like":
        pattern = _like_regex(e[2][1])
        rx = re.compile(pattern + r"\Z", re.IGNORECASE | re.DOTALL)

        def like(i: int) -> bool:
            v = get(i)
            return v is not None and rx.match(str(v)) is not None

        return like
    cmp, lit = e[1], e[3]
    if lit[0] == "null":
        if cmp == "=":
            return lambda i: get(i) is None
        if cmp == "!=":
            return lambda i: get(i) is not None
        return lambda i: False
    if lit[0] == "datekw":
        lo, hi = _day_range(lit[1], today)

        def in_days(i: int) -> bool:
            v = get(i)
            if v is None:
                return False
            d = v[:10]
            if cmp == "=":
                return lo <= d <= hi
            if cmp == "!=":
                return not lo <= d <= hi
            if cmp == "<":
                return d < lo
            if cmp == "<=":
                return d <= hi
            if cmp == ">":
                return d > hi
            return d >= lo

        return in_days
    value = _literal_value(ftype, lit)
    if textual and isinstance(value, str):
        value = value.lower()

        def norm(i: int) -> Any:
            v = get(i)
            return v.lower() if isinstance(v, str) else v

    else:
        norm = get
    if cmp == "=":
        return lambda i: norm(i) == value
    if cmp == "!=":
        return lambda i: norm(i) != value

    def ordered(i: int) -> bool:
        v = norm(i)
        if v is None:
            return False
        try:
            if cmp == "<":
                return v < value
            if cmp == ">":
                return v > value
            if cmp == "<=":
                return v <= value
            return v >= value
        except TypeError:
            return False

    return ordered


def execute(store: Store, q: Query, include_deleted: bool, today: dt.date) -> Sequence[int] | int:
    """Row indices matching ``q`` in result order (a range when nothing filters or sorts),
    or the count for ``COUNT()`` queries."""
    table = q.table
    assert table is not None
    rows: Sequence[int] = table.live(include_deleted)
    if q.where is not None:
        pred = _compile(store, table, q.where, today)
        rows = [i for i in rows if pred(i)]
    if q.count:
        n = len(rows) - q.offset
        n = max(0, n)
        return min(n, q.limit) if q.limit is not None else n
    if q.order:
        rows = list(rows)
        for ref, desc, nulls_first in reversed(q.order):
            get = getter(store, table, ref)
            nones = [i for i in rows if get(i) is None]
            present = [i for i in rows if get(i) is not None]

            def key(i: int, get: Callable[[int], Any] = get) -> Any:
                v = get(i)
                return v.lower() if isinstance(v, str) else v

            present.sort(key=key, reverse=desc)
            rows = nones + present if nulls_first else present + nones
    if q.offset or q.limit is not None:
        end = None if q.limit is None else q.offset + q.limit
        rows = rows[q.offset : end]
    return rows
