"""Loading records and generating realistic Account / Contact / User rows.

The generator is built for a million rows in a few seconds and a few hundred megabytes: every
column is drawn in one call from a pool of shared values (``random.choices``), and only the values
that must be unique (ids, names, external ids, emails) are new strings. The rows are meant to trip
writers up the way real data does: commas, quotes, newlines and non-ASCII text in descriptions
and names, nulls in every optional column, floats and ints, dates and datetimes.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any

from .ids import normalize_id
from .schema import ACCOUNT_TYPES, INDUSTRIES, TIERS
from .store import Store, Table, infer_field, normalize_date, normalize_datetime

_ADJ = [
    "Blue",
    "Northern",
    "Global",
    "Pacific",
    "Summit",
    "Silver",
    "Red",
    "Bright",
    "United",
    "Prime",
    "Golden",
    "Atlas",
    "Apex",
    "Evergreen",
    "Pioneer",
    "Metro",
    "Coastal",
    "Alpine",
    "Vertex",
    "Crescent",
    "Iron",
    "Cedar",
    "Harbor",
    "Quantum",
    "Lunar",
    "Granite",
    "Swift",
    "Noble",
    "Royal",
    "Urban",
]
_NOUN = [
    "Harbor",
    "Ridge",
    "Systems",
    "Logistics",
    "Foods",
    "Dynamics",
    "Analytics",
    "Energy",
    "Labs",
    "Partners",
    "Holdings",
    "Networks",
    "Media",
    "Robotics",
    "Textiles",
    "Pharma",
    "Freight",
    "Capital",
    "Brewing",
    "Motors",
    "Software",
    "Foundry",
    "Outfitters",
    "Medical",
    "Airlines",
    "Bakery",
    "Consulting",
    "Minerals",
    "Insurance",
    "Studios",
]
_SUFFIX = ("Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Corp.", "& Co.", "plc", "AG", "K.K.", "Group", "")
_SPECIAL_NAMES = (
    "Müller & Söhne GmbH",
    "Société Générale de Café",
    "株式会社サンプル商事",
    "O'Brien, Walsh & Partners",
    'The "Best" Widgets Company',
    "Łódź Tools S.A.",
    "Zürich Ventures AG",
    "Smith, Jones, and Brown LLP",
    "Café Olé; Ltd",
    "Ærø Fisk ApS",
)
_CITIES = (  # city, country, state, postal code
    ("San Francisco", "United States", "CA", "94105"),
    ("New York", "United States", "NY", "10001"),
    ("London", "United Kingdom", None, "EC2V 7HH"),
    ("Zürich", "Switzerland", "ZH", "8001"),
    ("São Paulo", "Brazil", "SP", "01310-100"),
    ("Kraków", "Poland", None, "31-042"),
    ("東京", "Japan", "東京都", "100-0005"),
    ("Paris", "France", None, "75001"),
    ("Toronto", "Canada", "ON", "M5H 2N2"),
    ("Sydney", "Australia", "NSW", "2000"),
    ("Bengaluru", "India", "KA", "560001"),
    ("Berlin", "Germany", "BE", "10117"),
)
_STREETS = ("Market Street", "Main St", "High Street", "Rue de Rivoli", "Bahnhofstrasse")
_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "José",
    "Zoë",
    "Øystein",
    "François",
    "Aoife",
    "Siobhán",
    "Łukasz",
    "Renée",
    "Chloé",
    "Mateo",
    "Yuki",
    "Amara",
    "Noah",
    "Priya",
]
_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Nguyen",
    "O'Neil",
    "Müller",
    "García",
    "Smith-Jones",
    "Kowalski",
    "Tanaka",
    "Dubois",
    "Rossi",
    "Okafor",
    "Andersson",
    "Novák",
    "Ödegaard",
    "Fernández",
    "Chen",
]
_TITLES = ("CEO", "CFO", "VP, Sales", "Director of IT", "Buyer", "Engineer", "Analyst", None, None)
_FRAGMENTS = (
    "Key account, renewal due in Q3",
    'Prefers "email only" contact',
    "Met at Dreamforce; follow up re: pricing",
    "Multi-line note:\nline two\nline three",
    "Windows line break\r\nsecond line",
    "Unicode: naïve café – ünïcödé ✓ 🚀",
    "Semicolons; pipes | tabs\there",
    "Trailing comma,",
    "Backslash \\ and 'single quotes'",
    "Plain description",
)


def _ascii(text: str) -> str:
    table = str.maketrans("éèëöüøóáíñłõçãåæ'", "eeeouooainlocaaa_")
    out = text.lower().translate(table)
    return "".join(ch for ch in out if ch.isascii() and (ch.isalnum() or ch in "._-")) or "x"


def _datetime_pool(rng: random.Random, count: int, start: dt.datetime, days: int) -> list[str]:
    out = []
    for _ in range(count):
        t = start + dt.timedelta(seconds=rng.randrange(days * 86400))
        out.append(t.strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
    return out


def _date_pool(start: dt.date, days: int) -> list[str]:
    return [(start + dt.timedelta(days=d)).isoformat() for d in range(days)]


def _with_nulls(pool: list[Any], null_share: float) -> tuple[list[Any], list[float]]:
    weights = [(1.0 - null_share) / len(pool)] * len(pool) + [null_share]
    return pool + [None], weights


def _descriptions(rng: random.Random, count: int) -> list[str]:
    out = []
    for k in range(count):
        parts = rng.sample(_FRAGMENTS, rng.randint(1, 3))
        out.append(f"#{k}: " + ", ".join(parts))
    return out


def _system_columns(created: list[Any], n: int) -> dict[str, list[Any]]:
    """The audit columns of ``n`` generated rows: live, never modified after ``created``."""
    return {
        "IsDeleted": [False] * n,
        "CreatedDate": created,
        "LastModifiedDate": created,
        "SystemModstamp": created,
    }


def ensure_owners(store: Store, seed: int = 0, count: int = 20) -> list[str]:
    """A fixed set of active Users that generated rows are owned by (so Owner.Name works)."""
    users = store.table("User")
    existing = [
        users.cols["Id"][i]
        for i in range(users.size)
        if (users.cols["Username"][i] or "").startswith("owner")
        and (users.cols["Username"][i] or "").endswith("@example.com.emulator")
    ]
    if existing:
        return existing
    rng = random.Random(f"owners-{seed}")
    ids = users.new_ids(count)
    first = [rng.choice(_FIRST) for _ in range(count)]
    last = [rng.choice(_LAST) for _ in range(count)]
    created = _datetime_pool(rng, count, dt.datetime(2018, 1, 1), 365)
    users.append_columns(
        {
            "Id": ids,
            "Username": [f"owner{k}@example.com.emulator" for k in range(count)],
            "FirstName": first,
            "LastName": last,
            "Name": [f"{f} {la}" for f, la in zip(first, last, strict=False)],
            "Email": [f"owner{k}@example.com" for k in range(count)],
            "IsActive": [True] * count,
            **_system_columns(created, count),
        },
        count,
    )
    return ids


def generate_accounts(store: Store, n: int, seed: int = 0) -> list[str]:
    """Append ``n`` deterministic, realistic Account rows; returns nothing heavy (first ids)."""
    owners = ensure_owners(store, seed)
    with store.lock:
        t = store.table("Account")
        rng = random.Random(f"accounts-{seed}")
        start = t.counter
        ids = t.new_ids(n)
        a = rng.choices(_ADJ, k=n)
        b = rng.choices(_NOUN, k=n)
        c = rng.choices(_SUFFIX, k=n)
        names = [f"{x} {y} {z}".rstrip() for x, y, z in zip(a, b, c, strict=False)]
        for j in rng.sample(range(n), min(n, max(1, n // 40))):
            names[j] = rng.choice(_SPECIAL_NAMES)
        numbers, w = _with_nulls([f"AC-{k:06d}" for k in range(5000)], 0.1)
        industries, wi = _with_nulls(list(INDUSTRIES), 0.08)
        revenue, wr = _with_nulls([round(rng.lognormvariate(15, 2), 2) for _ in range(4000)], 0.15)
        employees, we = _with_nulls([int(rng.lognormvariate(4, 1.8)) for _ in range(3000)], 0.2)
        created = _datetime_pool(rng, 20000, dt.datetime(2019, 1, 1), 2700)
        activity, wa = _with_nulls(_date_pool(dt.date(2024, 1, 1), 900), 0.4)
        descs, wd = _with_nulls(_descriptions(rng, 3000), 0.5)
        phones, wp = _with_nulls([f"+1 (415) 555-{k:04d}" for k in range(2000)], 0.2)
        city_idx = rng.choices(range(len(_CITIES)), k=n)
        tiers, wt = _with_nulls(list(TIERS), 0.3)
        streets, ws = _with_nulls([f"{k} {_STREETS[k % 5]}" for k in range(1, 400)], 0.1)
        created_col = rng.choices(created, k=n)
        cols: dict[str, list[Any]] = {
            "Id": ids,
            "Name": names,
            "AccountNumber": rng.choices(numbers, w, k=n),
            "Industry": rng.choices(industries, wi, k=n),
            "Type": rng.choices(ACCOUNT_TYPES, k=n),
            "Tier__c": rng.choices(tiers, wt, k=n),
            "AnnualRevenue": rng.choices(revenue, wr, k=n),
            "NumberOfEmployees": rng.choices(employees, we, k=n),
            "Phone": rng.choices(phones, wp, k=n),
            "BillingStreet": rng.choices(streets, ws, k=n),
            "BillingCity": [_CITIES[k][0] for k in city_idx],
            "BillingState": [_CITIES[k][2] for k in city_idx],
            "BillingPostalCode": [_CITIES[k][3] for k in city_idx],
            "BillingCountry": [_CITIES[k][1] for k in city_idx],
            "Description": rng.choices(descs, wd, k=n),
            "LastActivityDate": rng.choices(activity, wa, k=n),
            "Active__c": rng.choices((True, False), (4, 1), k=n),
            "OwnerId": rng.choices(owners, k=n),
            "External_Id__c": [f"ACC-{k:09d}" for k in range(start, start + n)],
            **_system_columns(created_col, n),
        }
        t.append_columns(cols, n)
    return ids[:10]


def generate_contacts(store: Store, n: int, seed: int = 0) -> list[str]:
    """Append ``n`` Contacts linked to existing Accounts (a few are generated when none exist)."""
    owners = ensure_owners(store, seed)
    accounts = store.table("Account")
    if not accounts.size:
        generate_accounts(store, max(1, n // 5), seed)
    with store.lock:
        acc_ids = [accounts.cols["Id"][i] for i in accounts.live(False)]
        t = store.table("Contact")
        rng = random.Random(f"contacts-{seed}")
        start = t.counter
        ids = t.new_ids(n)
        fi = rng.choices(range(len(_FIRST)), k=n)
        li = rng.choices(range(len(_LAST)), k=n)
        first_slug = [_ascii(x) for x in _FIRST]
        last_slug = [_ascii(x) for x in _LAST]
        first = [_FIRST[k] for k in fi]
        last = [_LAST[k] for k in li]
        nums = range(start, start + n)
        created = _datetime_pool(rng, 20000, dt.datetime(2020, 1, 1), 2300)
        created_col = rng.choices(created, k=n)
        birth, wb = _with_nulls(_date_pool(dt.date(1950, 1, 1), 18000), 0.5)
        activity, wa = _with_nulls(_date_pool(dt.date(2024, 1, 1), 900), 0.5)
        descs, wd = _with_nulls(_descriptions(rng, 2000), 0.7)
        acc_pool, wacc = _with_nulls(acc_ids, 0.05)
        cols: dict[str, list[Any]] = {
            "Id": ids,
            "FirstName": first,
            "LastName": last,
            "Name": [f"{f} {la}" for f, la in zip(first, last, strict=False)],
            "Email": [
                f"{first_slug[a]}.{last_slug[b]}.{k}@example.com"
                for a, b, k in zip(fi, li, nums, strict=False)
            ],
            "Phone": rng.choices([f"+44 20 7946 {k:04d}" for k in range(3000)] + [None], k=n),
            "Title": rng.choices(_TITLES, k=n),
            "AccountId": rng.choices(acc_pool, wacc, k=n),
            "Birthdate": rng.choices(birth, wb, k=n),
            "HasOptedOutOfEmail": rng.choices((True, False), (1, 9), k=n),
            "Description": rng.choices(descs, wd, k=n),
            "LastActivityDate": rng.choices(activity, wa, k=n),
            "OwnerId": rng.choices(owners, k=n),
            "External_Id__c": [f"CON-{k:09d}" for k in nums],
            **_system_columns(created_col, n),
        }
        t.append_columns(cols, n)
    return ids[:10]


def coerce(table: Table, name: str, value: Any) -> Any:
    """A loaded/written value in the stored form of its field (canonical dates, 18-char ids)."""
    if value is None:
        return None
    f = table.field(name)
    if f is None:
        return value
    if f.type == "datetime":
        return normalize_datetime(value) or value
    if f.type == "date":
        return normalize_date(value) or value
    if f.type in ("id", "reference"):
        return normalize_id(value) or value
    if f.type in ("double", "currency") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def load_records(
    store: Store, sobject: str, records: Iterable[dict[str, Any]], now: str, owner_id: str | None
) -> list[str]:
    """Insert (or overwrite by Id) records given by field API names; returns their ids."""
    rows = [r for r in records]
    with store.lock:
        t = store.table(sobject)
        keys: dict[str, str] = {}
        for r in rows:
            for k in r:
                if k != "attributes" and k not in keys:
                    keys[k] = k
        canon: dict[str, str] = {}
        for k in keys:
            f = t.field(k)
            if f is None:
                f = t.add_field(infer_field(k, (r.get(k) for r in rows)))
            if f.virtual:
                raise ValueError(
                    f"{t.name}.{f.name} is computed when read (formula or compound field); "
                    "load its source fields instead"
                )
            canon[k] = f.name
        out: list[str] = []
        for r in rows:
            values = {canon[k]: coerce(t, canon[k], v) for k, v in r.items() if k in canon}
            rid = values.get("Id")
            if rid is not None and rid in t.index:
                i = t.index[rid]
                for k, v in values.items():
                    t.set(i, k, v)
                out.append(rid)
                continue
            if rid is None:
                rid = values["Id"] = t.new_ids(1)[0]
            values.setdefault("IsDeleted", False)
            values.setdefault("CreatedDate", now)
            values.setdefault("LastModifiedDate", values["CreatedDate"])
            values.setdefault("SystemModstamp", values["LastModifiedDate"])
            if "ownerid" in t.fields and owner_id:
                values.setdefault("OwnerId", owner_id)
            if t.name in ("Contact", "User") and "Name" not in values:
                parts = [values.get("FirstName"), values.get("LastName")]
                values["Name"] = " ".join(p for p in parts if p) or None
            if values["IsDeleted"]:
                t.deleted += 1
            t.append_row(values)
            out.append(rid)
    return out
