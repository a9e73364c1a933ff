"""Written field values: turned into the stored form of their describe type, or refused.

Salesforce checks every value against the field's type and length on every write path, and the
three APIs agree on what they accept; only the shape of the refusal differs:

- REST and sObject Collections bodies are JSON bound to typed fields: a value the JSON reader
  cannot bind (``"abc"`` for a number, ``"maybe"`` for a checkbox, ``"31/01/1990"`` for a date)
  fails the whole request with 400 ``JSON_PARSER_ERROR`` "Cannot deserialize instance of int from
  VALUE_STRING value abc or request may be missing a required field at [line:1, column:27]".
- Bulk API 2.0 CSV cells are text: such a cell fails that row with
  ``INVALID_TYPE_ON_FIELD_IN_RECORD`` in ``sf__Error``.
- A value of the right type that breaks a field rule (too long, not an e-mail address, not in a
  restricted picklist, too many digits) fails that record on every API with the same code:
  ``STRING_TOO_LONG``, ``INVALID_EMAIL_ADDRESS``, ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``,
  ``NUMBER_OUTSIDE_VALID_RANGE``.

Stored forms: text as ``str``, ``int``, ``float`` for double/currency/percent, ``bool``, dates as
``YYYY-MM-DD`` and datetimes as ``2026-01-31T12:00:00.000+0000`` (UTC).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from .schema import TEXT_TYPES, Field, field_label

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_EMAIL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_INT_LIMIT = 2**31
_CSV_TRUE = ("true", "1", "yes")
_CSV_FALSE = ("false", "0", "no")


@dataclass
class WriteError:
    """One refused record: ``statusCode``, message and fields, as every API reports it."""

    code: str
    message: str
    fields: list[str] = dc_field(default_factory=list)

    def rest(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def bulk(self) -> str:
        """Bulk API 2.0 ``sf__Error`` text, e.g. ``REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --``."""
        return f"{self.code}:{self.message}:{','.join(self.fields)} --"


class Rejected(Exception):
    """A record refused by a field or record rule (the request goes on with the others)."""

    def __init__(self, error: WriteError) -> None:
        super().__init__(error.message)
        self.error = error


class Undeserializable(Exception):
    """A JSON value Salesforce's JSON reader cannot bind to the field's type."""

    def __init__(self, field: Field, value: Any) -> None:
        super().__init__(field.name)
        self.field, self.value = field, value

    def message(self, body: bytes) -> str:
        """Salesforce's text, with the position of the value in ``body`` (the request)."""
        token, shown = _token(self.value)
        line, column = _position(body, self.field.name, self.value)
        return (
            f"Cannot deserialize instance of {self.field.type} from {token} value {shown} "
            f"or request may be missing a required field at [line:{line}, column:{column}]"
        )


def _token(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("VALUE_TRUE" if value else "VALUE_FALSE"), str(value).lower()
    if isinstance(value, int):
        return "VALUE_NUMBER_INT", str(value)
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT", repr(value)
    if isinstance(value, dict):
        return "START_OBJECT", "{"
    if isinstance(value, list):
        return "START_ARRAY", "["
    return "VALUE_STRING", str(value)


def _position(body: bytes, key: str, value: Any) -> tuple[int, int]:
    """Line and column (1-based) just after ``"key": value`` in the JSON text ``body``."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    for m in re.finditer(r'"' + re.escape(key) + r'"\s*:\s*', text):
        try:
            found, end = decoder.raw_decode(text, m.end())
        except ValueError:
            continue
        if found == value:
            line = text.count("\n", 0, end) + 1
            return line, end - (text.rfind("\n", 0, end) + 1) + 1
    return 1, 1


def parse_datetime(text: str) -> str | None:
    """``text`` as the canonical UTC datetime, if it is ISO 8601 with a ``T``; else None."""
    m = _DATETIME_RE.match(text)
    if not m:
        return None
    day, hh, mm, ss, frac, tz = m.groups()
    try:
        base = dt.datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss or '00'}")
    except ValueError:
        return None
    if frac:
        base = base.replace(microsecond=int(frac[:6].ljust(6, "0")))
    if tz and tz != "Z":
        digits = tz[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        base = base - offset if tz[0] == "+" else base + offset
    return base.strftime("%Y-%m-%dT%H:%M:%S.") + f"{base.microsecond // 1000:03d}+0000"


def _date(text: str) -> str | None:
    """``YYYY-MM-DD`` (a real day), or the day of an ISO datetime; else None."""
    if _DATE_RE.match(text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            return None
    stamp = parse_datetime(text)
    return stamp[:10] if stamp else None


def from_json(f: Field, value: Any) -> Any:
    """A JSON value for ``f`` in stored form; raises :class:`Undeserializable`."""
    if value is None:
        return None
    kind = f.type
    if isinstance(value, dict | list):
        raise Undeserializable(f, value)
    if kind in TEXT_TYPES or kind in ("id", "reference"):
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Undeserializable(f, value)
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INT_LIMIT:
            return value
        raise Undeserializable(f, value)
    if kind in ("double", "currency", "percent"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
            return float(value)
        raise Undeserializable(f, value)
    if kind in ("date", "datetime"):
        parsed = (
            (_date if kind == "date" else parse_datetime)(value) if isinstance(value, str) else None
        )
        if parsed is None:
            raise Undeserializable(f, value)
        return parsed
    return value


def from_csv(f: Field, raw: str) -> Any:
    """A Bulk CSV cell for ``f`` in stored form; refuses it like Salesforce (per row)."""
    kind = f.type
    text = raw.strip()
    parsed: Any = None
    if kind in TEXT_TYPES or kind in ("id", "reference"):
        return raw
    if kind == "boolean" and text.lower() in _CSV_TRUE + _CSV_FALSE:
        parsed = text.lower() in _CSV_TRUE
    elif kind == "int" and _NUMBER_RE.match(text) and float(text).is_integer():
        parsed = int(float(text))
        parsed = parsed if abs(parsed) < _INT_LIMIT else None
    elif kind in ("double", "currency", "percent") and _NUMBER_RE.match(text):
        parsed = float(text)
    elif kind == "date":
        parsed = _date(text)
    elif kind == "datetime":
        parsed = parse_datetime(text)
    elif kind not in ("boolean", "int", "double", "currency", "percent"):
        return raw
    if parsed is None:
        raise Rejected(
            WriteError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{field_label(f)}: value not of required type: {raw}",
                [f.name],
            )
        )
    return parsed


def check(f: Field, value: Any) -> None:
    """The field rules every API applies to a typed value (raises :class:`Rejected`)."""
    if value is None:
        return
    kind = f.type
    if kind in TEXT_TYPES and isinstance(value, str):
        if len(value) > f.length:
            raise Rejected(
                WriteError(
                    "STRING_TOO_LONG",
                    f"{field_label(f)}: data value too large: {value} (max length={f.length})",
                    [f.name],
                )
            )
        if kind == "email" and not _EMAIL_RE.match(value):
            raise Rejected(
                WriteError(
                    "INVALID_EMAIL_ADDRESS",
                    f"{field_label(f)}: invalid email address: {value}",
                    [f.name],
                )
            )
        if kind == "picklist" and f.restricted and value not in f.picklist:
            raise Rejected(
                WriteError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{field_label(f)}: bad value for restricted picklist field: {value}",
                    [f.name],
                )
            )
    elif kind in ("int", "double", "currency", "percent") and not _fits(f, value):
        raise Rejected(
            WriteError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{field_label(f)}: value outside of valid range on numeric field: {value}",
                [f.name],
            )
        )


def _fits(f: Field, value: Any) -> bool:
    """Digits left of the decimal point within the field's precision minus scale."""
    if f.type == "int":
        return bool(abs(value) < 10 ** (f.digits or 9))
    whole = (f.precision or 18) - f.scale
    return bool(abs(value) < 10**whole)
