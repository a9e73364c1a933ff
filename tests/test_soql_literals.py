"""SOQL literals: every value comes back from Salesforce's parser (the emulator's) unchanged."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from airflow_provider_sfjwt.salesforce.soql_literals import (
    soql_date,
    soql_datetime,
    soql_like,
    soql_quote,
)

TRICKY = [
    "O'Brien",
    "back\\slash",
    'say "hi"',
    "two\nlines\tand tab",
    "x' OR Name != '",
    "\\' OR Name != '",
    "Zürich – naïve",
    "50%_off",
]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Brien", "'O\\'Brien'"),
        ("a\\b", "'a\\\\b'"),
        ("l1\nl2", "'l1\\nl2'"),
        (None, "null"),
        (True, "true"),
        (42, "42"),
        (Decimal("12.50"), "12.50"),
        (2.5, "2.5"),
        (1e-7, "0.0000001"),
        (1e22, "10000000000000000000000"),
        (Decimal("1E+3"), "1000"),
        (dt.date(2026, 1, 31), "2026-01-31"),
        (
            dt.datetime(2026, 1, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2025-12-31T23:30:00Z",
        ),
        (["a", "b'c"], "('a', 'b\\'c')"),
        ({"b", "a"}, "('a', 'b')"),
    ],
)
def test_literals(value, literal):
    assert soql_quote(value) == literal


def test_values_without_a_literal_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        soql_datetime(dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="IN \\(\\) with no values"):
        soql_quote([])
    with pytest.raises(TypeError, match="no SOQL literal for a dict"):
        soql_quote({"a": 1})
    for no_number in (float("nan"), float("-inf"), Decimal("NaN"), Decimal("-Infinity")):
        with pytest.raises(ValueError, match="no SOQL literal"):
            soql_quote(no_number)
    with pytest.raises(ValueError, match="only the wildcards"):
        soql_like("x", after="%' OR Name != '")
    assert soql_date(dt.datetime(2026, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == "2026-02-03"


def test_each_value_matches_exactly_itself_in_salesforce(emu):
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    emu.load("Account", [{"Name": name} for name in [*TRICKY, "500 off", "other"]])
    client = SalesforceJWTHook().get_conn()

    def names(where: str) -> list[str]:
        return sorted(r["Name"] for r in client.query(f"SELECT Name FROM Account WHERE {where}"))

    for name in TRICKY:
        assert names(f"Name = {soql_quote(name)}") == [name]
    assert names(f"Name IN {soql_quote(TRICKY[:3])}") == sorted(TRICKY[:3])
    assert names(f"Name LIKE {soql_like('50%_', after='%')}") == ["50%_off"]
    # A literal % or _ matches only itself, not any run or any character.
    assert names(f"Name LIKE {soql_like('_', before='%', after='%')}") == ["50%_off"]
    assert names(f"Name LIKE {soql_like('%', before='%', after='%')}") == ["50%_off"]
    assert names(f"Name LIKE {soql_like('ric', before='%', after='%')}") == ["Zürich – naïve"]
    assert names(f"Name LIKE {soql_like('Zür', after='%')}") == ["Zürich – naïve"]


def test_numbers_round_trip_through_the_parser(emu):
    """Tiny and huge numbers reach Salesforce's parser as plain decimals, never an exponent."""
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    emu.load("Account", [{"Name": "small", "AnnualRevenue": 0.5}])
    client = SalesforceJWTHook().get_conn()
    for bound in (1e-7, Decimal("1E-7")):
        soql = f"SELECT Name FROM Account WHERE AnnualRevenue > {soql_quote(bound)}"
        assert [r["Name"] for r in client.query(soql)] == ["small"]
