"""SOQL literals from Python values, for templated queries.

SOQL has no bind variables: a value from a DAG param or XCom is pasted into the query text. A
quote or backslash in it then ends the string early and changes the query (``x' OR Name != '``
widens a read). :func:`soql_quote` writes any value as the literal Salesforce parses back to the
same value, using the escape sequences of the SOQL reference (``\\'``, ``\\\\``, ``\\n``, ...).
In DAGs the functions are Airflow macros: ``{{ macros.salesforce_jwt.soql_quote(params.name) }}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .errors import InvalidInputError

__all__ = ["soql_date", "soql_datetime", "soql_like", "soql_quote"]

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}


def _escape(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in text)


def soql_datetime(value: dt.datetime) -> str:
    """A dateTime literal in UTC (``2026-01-01T00:00:00Z``); Airflow's ``data_interval_start``
    works as it is. A naive datetime is refused: which zone it means is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{value!r} has no time zone, so the SOQL literal would be a guess; pass an aware "
            "datetime (Airflow's data_interval_start is one) or add tzinfo=datetime.timezone.utc"
        )
    utc = value.astimezone(dt.timezone.utc)
    fraction = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def soql_date(value: dt.date) -> str:
    """A date literal (``2026-01-31``)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat()


def soql_quote(value: Any) -> str:
    """``value`` as a SOQL literal: strings quoted and escaped, numbers and booleans bare,
    ``None`` as ``null``, datetimes and dates in SOQL's formats, and a list, tuple or set as a
    parenthesised list for ``IN (...)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return _number(value)
    if isinstance(value, dt.datetime):
        return soql_datetime(value)
    if isinstance(value, dt.date):
        return soql_date(value)
    if isinstance(value, str):
        return "'" + _escape(value, _ESCAPES) + "'"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return _in_list(items)
    raise TypeError(
        f"no SOQL literal for a {type(value).__name__}; pass a str, number, date or list"
    )


def _number(value: float | Decimal) -> str:
    """A decimal literal without exponent: SOQL reads ``1e-07`` or ``1E+3`` as no number at
    all, and NaN and infinities (float or Decimal) would be bare words in the query."""
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise InvalidInputError(f"{value!r} has no SOQL literal")
    return format(number, "f")


def _in_list(items: Iterable[Any]) -> str:
    literals = [soql_quote(item) for item in items]
    if not literals:
        raise InvalidInputError(
            "IN () with no values is not valid SOQL; skip the condition instead"
        )
    return "(" + ", ".join(literals) + ")"


def soql_like(value: str, before: str = "", after: str = "") -> str:
    """A quoted ``LIKE`` pattern matching ``value`` literally (its ``%`` and ``_`` escaped),
    with the wildcards ``before`` and ``after`` kept as wildcards:
    ``soql_like("50%_off", after="%")`` is ``'50\\%\\_off%'`` (starts with "50%_off")."""
    for wildcard in (before, after):
        if wildcard.strip("%_"):
            raise InvalidInputError(
                f"before/after take only the wildcards % and _, not {wildcard!r}"
            )
    return "'" + before + _escape(_escape(value, _ESCAPES), _LIKE_ESCAPES) + after + "'"
