"""Salesforce-like record ids.

Real ids are 15 case-sensitive characters (3-character key prefix naming the object type, then
the pod and a counter) plus a 3-character suffix that encodes the case of the first 15, so that the
18-character form survives case-insensitive tools (Excel, some databases). Clients sometimes compare
or normalise ids, so the emulator computes the suffix exactly like Salesforce does.
"""

from __future__ import annotations

import re

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Case": "500",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "Product2": "01t",
    "Organization": "00D",
}
ORG_PREFIX = "00D"
QUERY_LOCATOR_PREFIX = "01g"
BULK_JOB_PREFIX = "750"

POD = "5g"


def checksum_suffix(id15: str) -> str:
    """The 3-character case-encoding suffix of a 15-character id."""
    out = []
    for chunk in range(3):
        bits = 0
        for pos, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << pos
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


def make_id(prefix: str, number: int) -> str:
    """An 18-character id for counter ``number`` under key ``prefix``."""
    id15 = f"{prefix}{POD}{number:010d}"
    return id15 + checksum_suffix(id15)


def fast_ids(prefix: str, start: int, count: int) -> list[str]:
    """Many ids at once: the counter part is digits, so the suffix depends only on the prefix."""
    head = f"{prefix}{POD}"
    suffix = checksum_suffix(head + "0000000000")
    return [f"{head}{n:010d}{suffix}" for n in range(start, start + count)]


def normalize_id(value: object) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not an id."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    if len(value) == 15:
        return value + checksum_suffix(value)
    if checksum_suffix(value[:15]) != value[15:]:
        return None
    return value


def custom_prefix(index: int) -> str:
    """Key prefixes for objects the emulator does not know: a00, a01, ... like custom objects."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "a" + alphabet[(index // 62) % 62] + alphabet[index % 62]
