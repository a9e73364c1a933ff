"""Fidelity of SOQL: what Salesforce refuses (literal types, OFFSET, duplicates, Id literals,
Bulk-only limits), what it serves (15-character Ids, aggregates, relative date literals) and
where queryAll pages point; through simple-salesforce and this provider's hook."""

from __future__ import annotations

import datetime as dt

import pytest
from fidelity import FIDELITY, hook_refused, refused

from airflow_provider_sfjwt.testing import soql_dates

pytestmark = FIDELITY

REFUSED = [
    ("SELECT Id FROM Account WHERE CreatedDate > 2020-01-01", "INVALID_FIELD",
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE LastActivityDate > 2020-01-01T00:00:00Z", "INVALID_FIELD",
     "value of filter criterion for field 'LastActivityDate' must be of type date and should not be enclosed in quotes"),
    ("SELECT Id FROM Account ORDER BY Name OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE",
     "Maximum SOQL offset allowed is 2000"),
    ("SELECT Id, Name, Id FROM Account", "INVALID_FIELD", "duplicate field selected: Id"),
    ("SELECT Id, FIELDS(ALL) FROM Account LIMIT 10", "INVALID_FIELD", "duplicate field selected: Id"),
    ("SELECT Id FROM Account WHERE Id = 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR",
     "invalid ID field: not-an-id"),
    ("SELECT Id FROM Account WHERE OwnerId IN ('005000000000000', 'x')",
     "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: x"),
    ("SELECT Id FROM Account WHERE Id LIKE '001%'", "INVALID_QUERY_FILTER_OPERATOR",
     "invalid operator on id field"),
    ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD",
     "field 'Description' can not be filtered in a query call"),
    ("SELECT Name FROM Account ORDER BY Description", "INVALID_FIELD",
     "field 'Description' can not be sorted in a query call"),
    ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY",
     "Field must be grouped or aggregated: Name"),
    ("SELECT AnnualRevenue, COUNT(Id) FROM Account GROUP BY AnnualRevenue", "INVALID_FIELD",
     "field 'AnnualRevenue' can not be grouped in a query call"),
    ("SELECT SUM(Name) FROM Account", "INVALID_FIELD",
     "field Name does not support aggregate operator SUM"),
    ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY",
     "The SOQL FIELDS function must have a LIMIT of at most 200"),
]  # fmt: skip


@pytest.mark.parametrize(("soql", "code", "message"), REFUSED)
def test_refused_like_salesforce(emu, ssf, hook, soql, code, message):
    emu.generate_accounts(3)
    status, got, text, _ = refused(lambda: ssf.query(soql))
    assert (status, got) == (400, code) and text.endswith("\n" + message)
    assert "ERROR at Row:1:Column:" in text  # Salesforce's located message shape
    status, got, text = hook_refused(lambda: list(hook.query(soql)))
    assert (status, got) == (400, code) and text.endswith(message)


BULK_REFUSED = [
    ("SELECT Id FROM Account ORDER BY Name OFFSET 5", "OFFSET not supported in Bulk Query"),
    ("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry", "GROUP BY not supported in Bulk Query"),
    ("SELECT COUNT() FROM Account", "Aggregate functions not supported in Bulk Query"),
    ("SELECT MAX(CreatedDate) FROM Account", "Aggregate functions not supported in Bulk Query"),
    ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Account", "TYPEOF not supported in Bulk Query"),
    ("SELECT Id, BillingAddress FROM Account", "Selecting compound data not supported in Bulk Query"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "Aggregate Relationships not supported in Bulk Query"),
]  # fmt: skip


@pytest.mark.parametrize(("soql", "message"), BULK_REFUSED)
def test_bulk_query_refuses_what_bulk_api_2_refuses(emu, ssf, hook, tmp_path, soql, message):
    emu.generate_accounts(3)
    status, code, text, _ = refused(lambda: list(ssf.bulk2.Account.query(soql, wait=0)))
    assert (status, code, text) == (400, "API_ERROR", message)
    status, code, text = hook_refused(
        lambda: hook.bulk_query_to_file(soql, tmp_path / "out.csv", poll_interval=0.01)
    )
    assert (status, code, text) == (400, "API_ERROR", message)
    assert not (tmp_path / "out.csv").exists()


def test_fifteen_character_ids_work_everywhere(emu, ssf, hook, tmp_path):
    ids = emu.load("Account", [{"Name": "Fifteen"}, {"Name": "Other"}])
    short = ids[0][:15]
    assert ssf.Account.get(short)["Name"] == "Fifteen"
    for soql in (
        f"SELECT Name FROM Account WHERE Id = '{short}'",
        f"SELECT Name FROM Account WHERE Id IN ('{short}', '{ids[1]}') AND Id != '{ids[1][:15]}'",
    ):
        assert [r["Name"] for r in ssf.query(soql)["records"]] == ["Fifteen"]
        assert [r["Name"] for r in hook.query(soql)] == ["Fifteen"]
    ssf.Account.update(short, {"Name": "Renamed"})
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Id": short,
                                              "Phone": "+1 555 0100"}]}  # fmt: skip
    (result,) = ssf.restful("composite/sobjects", method="PATCH", json=body)
    assert result["success"] and result["id"] == ids[0]  # answered in the 18-character form
    (kept,) = [r for r in emu.records("Account") if r["Id"] == ids[0]]
    assert (kept["Name"], kept["Phone"]) == ("Renamed", "+1 555 0100")
    (contact_id,) = emu.load("Contact", [{"LastName": "Child", "AccountId": ids[0]}])
    soql = f"SELECT LastName FROM Contact WHERE AccountId = '{short}'"
    assert [r["LastName"] for r in ssf.query(soql)["records"]] == ["Child"]
    assert ssf.restful("composite/sobjects", method="DELETE", params={"ids": contact_id[:15]})[0][
        "success"
    ]
    (result,) = ssf.bulk2.Account.update(records=[{"Id": short, "Phone": "1"}], wait=0)
    assert result["numberRecordsProcessed"] == 1 and result["numberRecordsFailed"] == 0
    rows = tmp_path / "update.csv"
    rows.write_text(f"Id,Phone\n{ids[1][:15]},2\n")
    assert hook.bulk_ingest_file("Account", "update", rows, poll_interval=0.01)["failed"] == 0
    assert {r["Id"]: r["Phone"] for r in emu.records("Account")} == {ids[0]: "1", ids[1]: "2"}


def test_aggregates_with_aliases_group_by_and_having(emu, ssf, hook):
    emu.load(
        "Account",
        [
            {"Name": "A1", "Industry": "Banking", "AnnualRevenue": 10.0, "NumberOfEmployees": 5},
            {"Name": "A2", "Industry": "Banking", "AnnualRevenue": 30.0, "NumberOfEmployees": 7},
            {"Name": "A3", "Industry": "Retail", "AnnualRevenue": 5.0, "NumberOfEmployees": None},
            {"Name": "A4", "Industry": None, "AnnualRevenue": None, "NumberOfEmployees": 1},
        ],
    )
    soql = (
        "SELECT Industry, COUNT(Id) cnt, COUNT_DISTINCT(Name), SUM(AnnualRevenue) total, "
        "AVG(AnnualRevenue), MIN(Name) lowest, MAX(NumberOfEmployees) FROM Account "
        "GROUP BY Industry HAVING COUNT(Id) >= 1 ORDER BY COUNT(Id) DESC, Industry NULLS LAST"
    )
    result = ssf.query(soql)
    assert (result["totalSize"], result["done"]) == (3, True) and "nextRecordsUrl" not in result
    rows = [{k: v for k, v in r.items() if k != "attributes"} for r in result["records"]]
    assert rows[0] == {
        "Industry": "Banking",
        "cnt": 2,
        "expr0": 2,
        "total": 40.0,
        "expr1": 20.0,
        "lowest": "A1",
        "expr2": 7,
    }
    assert [r["Industry"] for r in rows] == ["Banking", "Retail", None]
    assert result["records"][0]["attributes"] == {"type": "AggregateResult"}
    having = "SELECT Industry FROM Account GROUP BY Industry HAVING COUNT(Id) > 1"
    assert [r["Industry"] for r in hook.query(having)] == ["Banking"]
    whole = ssf.query("SELECT COUNT(Id), SUM(NumberOfEmployees) staff FROM Account")["records"]
    assert [(r["expr0"], r["staff"]) for r in whole] == [(4, 13)]
    assert ssf.query("SELECT COUNT() FROM Account WHERE Industry = 'Banking'")["totalSize"] == 2


def _today(emu) -> dt.date:
    return dt.datetime.fromtimestamp(emu.now(), dt.timezone.utc).date()


@pytest.mark.parametrize(
    "literal",
    [
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
        "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "LAST_N_DAYS:10",
        "NEXT_N_DAYS:10", "N_DAYS_AGO:3", "NEXT_N_WEEKS:2", "LAST_N_WEEKS:2", "N_WEEKS_AGO:2",
        "NEXT_N_MONTHS:2", "LAST_N_MONTHS:2", "N_MONTHS_AGO:1", "THIS_QUARTER", "LAST_QUARTER",
        "NEXT_QUARTER", "NEXT_N_QUARTERS:2", "LAST_N_QUARTERS:2", "N_QUARTERS_AGO:1", "THIS_YEAR",
        "LAST_YEAR", "NEXT_YEAR", "NEXT_N_YEARS:2", "LAST_N_YEARS:2", "N_YEARS_AGO:1",
        "THIS_FISCAL_QUARTER", "LAST_FISCAL_QUARTER", "NEXT_FISCAL_QUARTER",
        "NEXT_N_FISCAL_QUARTERS:2", "LAST_N_FISCAL_QUARTERS:2", "N_FISCAL_QUARTERS_AGO:1",
        "THIS_FISCAL_YEAR", "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR", "NEXT_N_FISCAL_YEARS:2",
        "LAST_N_FISCAL_YEARS:2", "N_FISCAL_YEARS_AGO:1",
    ],
)  # fmt: skip
def test_relative_date_literals(emu, ssf, hook, literal):
    """Every documented literal; each ``=`` selects exactly the rows dated inside its range,
    ``<`` those before it and ``>`` those after it."""
    today = _today(emu)
    days = [today + dt.timedelta(days=d) for d in range(-800, 800, 3)]
    emu.load("Visit__c", [{"Name": d.isoformat(), "VisitDate__c": d.isoformat()} for d in days])
    name, _, n = literal.lower().partition(":")
    lo, hi = soql_dates.day_range(name, int(n or 0), today)
    for op, inside in (
        ("=", lambda d: lo <= d < hi),
        ("<", lambda d: d < lo),
        (">", lambda d: d >= hi),
    ):
        soql = f"SELECT Name FROM Visit__c WHERE VisitDate__c {op} {literal}"
        got = {r["Name"] for r in ssf.query_all(soql)["records"]}
        assert got == {d.isoformat() for d in days if inside(d)}, (literal, op)
    soql = f"SELECT Name FROM Visit__c WHERE VisitDate__c = {literal}"
    assert {r["Name"] for r in hook.query(soql)} == {d.isoformat() for d in days if lo <= d < hi}
    assert lo < hi


def test_relative_date_literal_ranges_follow_the_documentation():
    """Spot checks of the ranges the documentation defines (en_GB: weeks start on Monday)."""
    wed = dt.date(2026, 5, 13)
    day = dt.timedelta(days=1)
    assert soql_dates.day_range("last_n_days", 1, wed) == (wed - day, wed + day)  # incl. today
    assert soql_dates.day_range("next_n_days", 2, wed) == (wed + day, wed + 3 * day)
    assert soql_dates.day_range("n_days_ago", 3, wed) == (
        dt.date(2026, 5, 10),
        dt.date(2026, 5, 11),
    )
    assert soql_dates.day_range("this_week", 0, wed) == (dt.date(2026, 5, 11), dt.date(2026, 5, 18))
    assert soql_dates.day_range("last_n_months", 2, wed) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 5, 1),
    )
    assert soql_dates.day_range("this_quarter", 0, wed) == (
        dt.date(2026, 4, 1),
        dt.date(2026, 7, 1),
    )
    assert soql_dates.day_range("n_years_ago", 1, wed) == (dt.date(2025, 1, 1), dt.date(2026, 1, 1))
    assert soql_dates.day_range("last_90_days", 0, wed) == (wed - 90 * day, wed + day)


def test_query_all_pages_point_at_query(emu, ssf, hook):
    """Salesforce's queryAll answers ``nextRecordsUrl`` under /query/, not /queryAll/."""
    emu.generate_accounts(2500)
    page = ssf.restful("queryAll", params={"q": "SELECT Id FROM Account"})
    assert page["nextRecordsUrl"].startswith(f"/services/data/v{ssf.sf_version}/query/01g")
    assert len(ssf.query_all("SELECT Id FROM Account", include_deleted=True)["records"]) == 2500
    assert sum(1 for _ in hook.query("SELECT Id FROM Account", include_deleted=True)) == 2500
