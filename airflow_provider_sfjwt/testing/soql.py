"""SOQL text to a query tree: the tokenizer and the parser (no schema needed).

Parsed: ``SELECT`` fields, one-level relationship paths (``Owner.Name``), ``FIELDS(ALL|STANDARD|
CUSTOM)``, ``COUNT()``, the aggregate functions ``COUNT``, ``COUNT_DISTINCT``, ``SUM``, ``AVG``,
``MIN``, ``MAX`` with aliases, ``FROM``, ``WHERE`` (``= != <> < > <= >=``, ``LIKE``, ``IN``,
``NOT IN``, ``AND/OR/NOT``, parentheses; string, number, ``NULL``, boolean, date, datetime and
relative date literals), ``WITH SECURITY_ENFORCED|USER_MODE|SYSTEM_MODE``, ``GROUP BY``,
``HAVING``, ``ORDER BY ... ASC|DESC NULLS FIRST|LAST``, ``LIMIT``, ``OFFSET``.

SOQL that Salesforce accepts but the emulator does not evaluate (sub-queries, semi-joins,
``TYPEOF``, date and conversion functions, ``GROUP BY ROLLUP|CUBE``, ``INCLUDES``, ``USING
SCOPE``, ``FOR VIEW``, ...) raises :class:`NotEmulated`, which names the feature; the emulator
answers it with 501, never with a syntax error a client would blame on its query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import soql_dates

if TYPE_CHECKING:
    import datetime as dt

    from .schema import Field
    from .store import Store, Table

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,|:)
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
    "group",
    "having",
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
    "with",
    "using",
    "for",
    "includes",
    "excludes",
    "typeof",
}
AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max")
_FUNCTIONS_NOT_EMULATED = {
    "calendar_month",
    "calendar_quarter",
    "calendar_year",
    "day_in_month",
    "day_in_week",
    "day_in_year",
    "day_only",
    "fiscal_month",
    "fiscal_quarter",
    "fiscal_year",
    "hour_in_day",
    "week_in_month",
    "week_in_year",
    "converttimezone",
    "tolabel",
    "convertcurrency",
    "format",
    "grouping",
    "distance",
    "geolocation",
}


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is the REST errorCode (status 400)."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotEmulated(SoqlError):
    """Valid SOQL the emulator does not evaluate; ``feature`` names it."""

    status = 501

    def __init__(self, feature: str) -> None:
        super().__init__(
            "NOT_IMPLEMENTED", f"The Salesforce emulator does not emulate {feature} in SOQL."
        )
        self.feature = feature


@dataclass
class Tok:
    kind: str
    value: Any
    text: str
    pos: int


@dataclass
class Ref:
    """A field path as written in the query, bound to the schema by ``soql_schema.resolve``."""

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

    @property
    def target(self) -> Field:
        """The field whose values the path reads (the parent's field for ``Owner.Name``)."""
        found = self.parent_field or self.field
        assert found is not None, "resolve() binds every Ref"
        return found


@dataclass
class Agg:
    """An aggregate function in SELECT, HAVING or ORDER BY: ``COUNT(Id) cnt``."""

    func: str
    ref: Ref | None  # None for COUNT()
    pos: int
    text: str
    alias: str | None = None
    key: str = ""  # the result's key (alias, or expr0, expr1, ...), set by resolve


@dataclass
class Query:
    soql: str
    sobject: str
    fields: list[Ref] = field(default_factory=list)  # plain (non-aggregate) select items
    items: list[Ref | Agg] = field(default_factory=list)  # the select list, in order
    count: bool = False  # SELECT COUNT()
    where: Any = None
    group_by: list[Ref] = field(default_factory=list)
    having: Any = None
    order: list[tuple[Ref | Agg, bool, bool]] = field(default_factory=list)  # desc, nulls_first
    limit: int | None = None
    offset: int = 0
    offset_pos: int = 0
    table: Table | None = None
    store: Store | None = None
    today: dt.date | None = None

    @property
    def aggregates(self) -> list[Agg]:
        return [item for item in self.items if isinstance(item, Agg)]

    @property
    def aggregate(self) -> bool:
        """True for queries answering AggregateResult rows (aggregates or GROUP BY)."""
        return bool(self.group_by or self.aggregates)


def _tokenize(soql: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN_RE.match(soql, pos)
        if not m:
            raise malformed(soql, pos, soql[pos : pos + 10].split(" ")[0])
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
            if low.split(":")[0] in soql_dates.NAMES:
                toks.append(Tok("datekw", low, text, pos))
            elif low in _KEYWORDS:
                toks.append(Tok("kw", low, text, pos))
            else:
                toks.append(Tok("ident", text, text, pos))
        pos = m.end()
    toks.append(Tok("eof", None, "<EOF>", len(soql)))
    return toks


def located(soql: str, pos: int, message: str) -> str:
    """Salesforce's query error text: the query, a caret under ``pos``, row and column."""
    line = soql.replace("\n", " ")
    return f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{message}"


def malformed(soql: str, pos: int, token: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", located(soql, pos, f"unexpected token: {token}"))


class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.toks = _tokenize(soql)
        self.i = 0

    def peek(self, ahead: int = 0) -> Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, tok: Tok | None = None) -> SoqlError:
        tok = tok or self.peek()
        return malformed(self.soql, tok.pos, tok.text)

    def kw(self, word: str) -> bool:
        t = self.peek()
        if t.kind == "kw" and t.value == word:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.kw(word):
            raise self.fail()

    def is_op(self, op: str, ahead: int = 0) -> bool:
        t = self.peek(ahead)
        return t.kind == "op" and t.value == op

    def expect_op(self, op: str) -> None:
        t = self.next()
        if t.kind != "op" or t.value != op:
            raise self.fail(t)

    def ident(self) -> Tok:
        t = self.next()
        if t.kind != "ident":
            raise self.fail(t)
        return t

    def ref(self) -> Ref:
        t = self.ident()
        return Ref(tuple(t.value.split(".")), t.pos)

    def comma(self) -> bool:
        if self.is_op(","):
            self.i += 1
            return True
        return False

    # ------------------------------------------------------------------ clauses
    def parse(self) -> Query:
        self.expect_kw("select")
        q = Query(self.soql, "")
        self.select_list(q)
        self.expect_kw("from")
        q.sobject = self.ident().value
        if self.peek().kind == "ident":  # an alias of the object (FROM Account a)
            raise NotEmulated("object aliases in FROM")
        if self.kw("using"):
            raise NotEmulated("USING SCOPE")
        if self.kw("where"):
            q.where = self.expr(having=False)
        if self.kw("with"):
            mode = self.next()
            if mode.kind != "ident":
                raise self.fail(mode)
            if mode.value.lower() not in ("security_enforced", "user_mode", "system_mode"):
                raise NotEmulated(f"WITH {mode.value}")
        if self.kw("group"):
            self.expect_kw("by")
            if self.peek().kind == "ident" and self.peek().value.lower() in ("rollup", "cube"):
                raise NotEmulated(f"GROUP BY {self.peek().value.upper()}")
            q.group_by.append(self.ref())
            while self.comma():
                q.group_by.append(self.ref())
        if self.kw("having"):
            q.having = self.expr(having=True)
        if self.kw("order"):
            self.expect_kw("by")
            self.order_list(q)
        if self.kw("limit"):
            q.limit = self.count_value()
        if self.peek().kind == "kw" and self.peek().value == "offset":
            q.offset_pos = self.next().pos
            q.offset = self.count_value()
        if self.kw("for"):
            raise NotEmulated(f"FOR {self.peek().text.upper()}")
        if self.peek().kind != "eof":
            raise self.fail()
        return q

    def count_value(self) -> int:
        t = self.next()
        if t.kind != "number" or not isinstance(t.value, int) or t.value < 0:
            raise self.fail(t)
        return int(t.value)

    def select_list(self, q: Query) -> None:
        if self.is_function("count") and self.is_op(")", 2):
            self.i += 3
            q.count = True
            if not self.peek().kind == "kw":
                raise self.fail()
            return
        while True:
            t = self.peek()
            if t.kind == "op" and t.value == "(":
                raise NotEmulated("sub-queries (parent-to-child relationship queries)")
            if t.kind == "kw" and t.value == "typeof":
                raise NotEmulated("TYPEOF")
            if t.kind == "ident" and t.value.lower() == "fields" and self.is_op("(", 1):
                self.i += 2
                which = self.ident()
                if which.value.upper() not in ("ALL", "STANDARD", "CUSTOM"):
                    raise self.fail(which)
                self.expect_op(")")
                marker = Ref((f"FIELDS({which.value.upper()})",), t.pos)
                q.fields.append(marker)
                q.items.append(marker)
            elif self.is_function():
                item = self.function()
                if self.peek().kind == "ident":
                    item.alias = self.next().value
                q.items.append(item)
            else:
                ref = self.ref()
                q.fields.append(ref)
                q.items.append(ref)
            if not self.comma():
                return

    def is_function(self, name: str | None = None) -> bool:
        t = self.peek()
        return (
            t.kind == "ident" and self.is_op("(", 1) and (name is None or t.value.lower() == name)
        )

    def function(self) -> Agg:
        """``FUNC(field)`` or ``COUNT()``; only the aggregate functions are emulated."""
        name = self.next()
        func = name.value.lower()
        if func in _FUNCTIONS_NOT_EMULATED:
            raise NotEmulated(f"the function {name.value.upper()}()")
        if func not in AGGREGATES:
            raise self.fail(name)
        self.expect_op("(")
        ref = None
        if not (func == "count" and self.is_op(")")):
            if self.is_function():
                inner = self.peek()
                raise NotEmulated(f"the function {inner.value.upper()}()")
            ref = self.ref()
        close = self.next()
        if close.kind != "op" or close.value != ")":
            raise self.fail(close)
        text = self.soql[name.pos : close.pos + 1]
        return Agg(func, ref, name.pos, text)

    def order_list(self, q: Query) -> None:
        while True:
            item: Ref | Agg = self.function() if self.is_function() else self.ref()
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
            q.order.append((item, desc, nulls_first))
            if not self.comma():
                return

    # ------------------------------------------------------------------ conditions
    # expr := and_expr (OR and_expr)*
    def expr(self, having: bool) -> Any:
        left = self.and_expr(having)
        while self.kw("or"):
            left = ("or", left, self.and_expr(having))
        return left

    def and_expr(self, having: bool) -> Any:
        left = self.not_expr(having)
        while self.kw("and"):
            left = ("and", left, self.not_expr(having))
        return left

    def not_expr(self, having: bool) -> Any:
        if self.kw("not"):
            return ("not", self.not_expr(having))
        if self.is_op("("):
            self.i += 1
            e = self.expr(having)
            self.expect_op(")")
            return e
        return self.condition(having)

    def condition(self, having: bool) -> Any:
        if self.is_function():
            left: Ref | Agg = self.function()
            if not having:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    located(
                        self.soql,
                        left.pos,
                        "Aggregate functions are not allowed in the WHERE clause; use HAVING",
                    ),
                )
        else:
            left = self.ref()
        t = self.next()
        if t.kind == "kw" and t.value in ("includes", "excludes"):
            raise NotEmulated(t.value.upper())
        if t.kind == "kw" and t.value in ("in", "not"):
            negate = t.value == "not"
            if negate:
                self.expect_kw("in")
            self.expect_op("(")
            if self.peek().kind == "kw" and self.peek().value == "select":
                raise NotEmulated("semi-joins and anti-joins (IN / NOT IN a sub-query)")
            values = [self.literal()]
            while self.comma():
                values.append(self.literal())
            self.expect_op(")")
            return ("notin" if negate else "in", left, values)
        if t.kind == "kw" and t.value == "like":
            lit = self.literal()
            if lit[0] != "string":
                raise self.fail()
            return ("like", left, lit)
        if t.kind == "op" and t.value in ("=", "!=", "<>", "<", ">", "<=", ">="):
            op = "!=" if t.value == "<>" else t.value
            return ("cmp", op, left, self.literal())
        raise self.fail(t)

    def literal(self) -> tuple[str, Any]:
        t = self.next()
        if t.kind in ("string", "number", "date", "datetime"):
            return (t.kind, t.value)
        if t.kind == "datekw":
            name, _, n = t.value.partition(":")
            if soql_dates.needs_number(name) != bool(n):
                raise self.fail(t)
            return ("datekw", (name, int(n or 0)))
        if t.kind == "kw" and t.value in ("null", "true", "false"):
            return ("null", None) if t.value == "null" else ("bool", t.value == "true")
        if t.kind == "op" and t.value == ":":
            raise SoqlError(
                "MALFORMED_QUERY",
                located(self.soql, t.pos, "Bind variables only allowed in Apex code"),
            )
        raise self.fail(t)


def parse(soql: str) -> Query:
    """Parse ``soql`` (no schema needed); raises SoqlError(MALFORMED_QUERY) or NotEmulated."""
    if not soql or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statement cannot be empty")
    return _Parser(soql).parse()
