"""The column list of a SOQL SELECT, in the order the writers must emit it.

Salesforce returns each record as a JSON object whose key order is not a contract, and the REST
API omits nothing but nests relationship fields. A file's header, though, must follow the SELECT
as the user wrote it, so we read the field list from the query text itself instead of from the
first record (which may have a null relationship and so lack ``Owner.Name`` altogether).

Limits, on purpose (no describe call happens here):

* ``FIELDS(ALL|STANDARD|CUSTOM)`` cannot be expanded from the text: the whole list is then
  unknown and ``[]`` is returned; writers infer the columns from the first record instead.
* ``SELECT COUNT() FROM X`` returns no records, only ``totalSize``: ``[]``.
* Aggregate expressions without an alias are named ``expr0``, ``expr1``, ... in SELECT order,
  as Salesforce names them; an alias wins. In aggregate queries a grouped relationship field
  such as ``Owner.Name`` comes back under its last segment (``Name``), so that is the column.
* ``toLabel(f)``, ``FORMAT(f)``, ``convertCurrency(f)`` keep the field's name (or the alias).
* A sub-query ``(SELECT ... FROM Contacts)`` is one column named after the relationship
  (``Contacts``); its records are written as a JSON string.
* ``TYPEOF What WHEN Account THEN Phone ... ELSE Name END`` yields ``What.Phone``,
  ``What.Name``, ... (each field once, in order); absent fields are null for other types.
"""

from __future__ import annotations

import re

from .errors import InvalidInputError

__all__ = ["select_columns"]

# Functions that keep the field's own name in the result instead of exprN.
_NAME_KEEPING = {"tolabel", "format", "convertcurrency"}
# Functions that make a query an aggregate query.
_AGGREGATES = {"count", "count_distinct", "sum", "avg", "min", "max"}

_TOKEN = re.compile(
    r"""
    (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<open>\()
  | (?P<close>\))
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][\w.]*)
  | (?P<other>[^\s'(),A-Za-z_]+)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(text)]


def _select_list(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split the tokens between the top-level SELECT and FROM into items at top-level commas."""
    start = None
    for i, (kind, value) in enumerate(tokens):
        if kind == "word" and value.lower() == "select":
            start = i + 1
            break
    if start is None:
        raise InvalidInputError("not a SOQL SELECT statement: no SELECT keyword found")
    items: list[list[tuple[str, str]]] = [[]]
    depth = 0  # parentheses and TYPEOF ... END blocks
    for kind, value in tokens[start:]:
        low = value.lower() if kind == "word" else ""
        if depth == 0 and low == "from":
            break
        if kind == "open" or low == "typeof":
            depth += 1
        elif kind == "close" or (low == "end" and depth > 0):
            depth -= 1
        if depth == 0 and kind == "comma":
            items.append([])
            continue
        items[-1].append((kind, value))
    else:
        raise InvalidInputError("not a SOQL SELECT statement: no FROM after the field list")
    return [item for item in items if item]


def _typeof_columns(item: list[tuple[str, str]]) -> list[str]:
    """``TYPEOF What WHEN A THEN f1, f2 ELSE f3 END`` -> ``What.f1``, ``What.f2``, ``What.f3``."""
    words = [v for k, v in item if k in ("word", "comma")]
    relation = words[1] if len(words) > 1 else "TYPEOF"
    out: list[str] = []
    expecting_fields = False
    for value in words[2:]:
        low = value.lower()
        if low in ("then", "else"):
            expecting_fields = True
        elif low in ("when", "end"):
            expecting_fields = False
        elif expecting_fields and value != ",":
            name = f"{relation}.{value}"
            if name.lower() not in {c.lower() for c in out}:
                out.append(name)
    return out


def select_columns(soql: str) -> list[str]:
    """Return the SELECT list of ``soql`` as result column names, in order, case as written.

    ``"SELECT Id, Owner.Name FROM Contact"`` -> ``["Id", "Owner.Name"]``. Returns ``[]`` when
    the columns cannot be known from the text (``FIELDS(...)``) or there are none
    (``COUNT()``); see the module docstring for aggregates, sub-queries and TYPEOF.
    Raises ``ValueError`` when the text is not a SELECT.
    """
    tokens = _tokens(soql)
    if any(kind == "other" and ";" in value for kind, value in tokens):
        raise InvalidInputError(
            "SOQL has no statement separator, but this query has ';' outside a quoted string "
            "(did a templated value break out of its quotes?)"
        )
    items = _select_list(tokens)
    is_aggregate = re.search(r"\bgroup\s+by\b", soql, re.IGNORECASE) is not None
    for item in items:
        if len(item) >= 2 and item[0][0] == "word" and item[1][0] == "open":
            fn = item[0][1].lower()
            if fn == "fields":
                return []
            if fn in _AGGREGATES:
                is_aggregate = True
    if (
        len(items) == 1
        and [v.lower() for _, v in items[0][:3]] == ["count", "(", ")"]
        and len(items[0]) == 3
    ):
        return []

    columns: list[str] = []
    expr_index = 0
    for item in items:
        first_kind, first = item[0]
        if first_kind == "word" and first.lower() == "typeof":
            columns.extend(_typeof_columns(item))
            continue
        if first_kind == "open":
            # Sub-query: the relationship name follows its FROM.
            words = [v for k, v in item if k == "word"]
            lowered = [w.lower() for w in words]
            name = words[lowered.index("from") + 1] if "from" in lowered[:-1] else "subquery"
            columns.append(name)
            continue
        # Find where the expression ends: a trailing bare word after it is an alias.
        depth = 0
        end = 0
        for i, (kind, _value) in enumerate(item):
            if kind == "open":
                depth += 1
            elif kind == "close":
                depth -= 1
            if depth == 0 and (i == 0 or kind == "close"):
                end = i + 1
                if kind == "close":
                    break
        alias = item[end][1] if end < len(item) and item[end][0] == "word" else None
        is_call = len(item) > 1 and item[1][0] == "open"
        if is_call:
            fn = first.lower()
            if alias:
                columns.append(alias)
            elif fn in _NAME_KEEPING:
                inner = next(
                    (
                        v
                        for j, (k, v) in enumerate(item[2:end], start=2)
                        if k == "word" and (j + 1 >= len(item) or item[j + 1][0] != "open")
                    ),
                    first,
                )
                columns.append(inner.rsplit(".", 1)[-1] if is_aggregate else inner)
            else:
                columns.append(f"expr{expr_index}")
                expr_index += 1
            continue
        name = alias or first
        if is_aggregate and not alias:
            name = name.rsplit(".", 1)[-1]
        columns.append(name)
    return columns
