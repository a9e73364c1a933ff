"""The SOQL subset, evaluated directly against a store (the HTTP layer is covered elsewhere)."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_sfjwt.testing import encode, soql, soql_eval, soql_schema
from airflow_provider_sfjwt.testing.data import load_records
from airflow_provider_sfjwt.testing.store import Store

NOW = "2026-06-01T12:00:00.000+0000"


@pytest.fixture
def store() -> Store:
    s = Store()
    load_records(
        s,
        "Account",
        [
            {
                "Name": "Acme",
                "Industry": "Banking",
                "AnnualRevenue": 1000.0,
                "NumberOfEmployees": 10,
                "Active__c": True,
                "LastActivityDate": "2026-05-31",
                "CreatedDate": "2026-06-01T08:00:00Z",
            },
            {
                "Name": "beta it's",
                "Industry": "Retail",
                "AnnualRevenue": None,
                "NumberOfEmployees": 200,
                "Active__c": False,
                "LastActivityDate": None,
                "CreatedDate": "2025-01-01T00:00:00Z",
            },
            {
                "Name": "Gamma 100%",
                "Industry": None,
                "AnnualRevenue": 5e6,
                "NumberOfEmployees": None,
                "Active__c": True,
                "LastActivityDate": "2020-01-01",
                "CreatedDate": "2024-01-01T00:00:00Z",
            },
            {
                "Name": "delta_x",
                "Industry": "Banking",
                "AnnualRevenue": 50.0,
                "NumberOfEmployees": 3,
                "Active__c": False,
                "LastActivityDate": "2026-06-01",
                "CreatedDate": "2026-05-20T00:00:00Z",
            },
        ],
        NOW,
        None,
    )
    return s


def names(store: Store, where: str, order: str = "ORDER BY Name") -> list[str]:
    q = soql_schema.resolve(store, soql.parse(f"SELECT Name FROM Account {where} {order}"))
    t = q.table
    rows = soql_eval.execute(store, q, False, dt.date(2026, 6, 1))
    return [t.cols["Name"][i] for i in rows]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("WHERE Industry = 'banking'", ["Acme", "delta_x"]),
        ("WHERE Industry != 'Banking'", ["beta it's", "Gamma 100%"]),
        ("WHERE Industry <> 'Banking'", ["beta it's", "Gamma 100%"]),
        ("WHERE Industry = null", ["Gamma 100%"]),
        ("WHERE Industry != NULL", ["Acme", "beta it's", "delta_x"]),
        ("WHERE AnnualRevenue > 100", ["Acme", "Gamma 100%"]),
        ("WHERE AnnualRevenue >= 1000 AND AnnualRevenue <= 5000000.0", ["Acme", "Gamma 100%"]),
        ("WHERE NumberOfEmployees < 11", ["Acme", "delta_x"]),
        ("WHERE Active__c = TRUE", ["Acme", "Gamma 100%"]),
        ("WHERE Active__c = false", ["beta it's", "delta_x"]),
        ("WHERE NOT Active__c = true", ["beta it's", "delta_x"]),
        ("WHERE Name LIKE 'a%'", ["Acme"]),
        ("WHERE Name LIKE '%100\\%'", ["Gamma 100%"]),
        ("WHERE Name LIKE 'delta\\_%'", ["delta_x"]),
        ("WHERE Name LIKE '_eta%'", ["beta it's"]),
        ("WHERE Name = 'beta it\\'s'", ["beta it's"]),
        ("WHERE Industry IN ('Retail', 'banking')", ["Acme", "beta it's", "delta_x"]),
        ("WHERE Industry NOT IN ('Retail')", ["Acme", "delta_x", "Gamma 100%"]),
        (
            "WHERE (Industry = 'Banking' OR Industry = 'Retail') AND Active__c = false",
            ["beta it's", "delta_x"],
        ),
        (
            "WHERE Industry = 'Banking' OR Industry = 'Retail' AND Active__c = true",
            ["Acme", "delta_x"],
        ),
        ("WHERE LastActivityDate >= 2026-05-31", ["Acme", "delta_x"]),
        ("WHERE LastActivityDate = TODAY", ["delta_x"]),
        ("WHERE LastActivityDate = YESTERDAY", ["Acme"]),
        ("WHERE LastActivityDate = LAST_N_DAYS:7", ["Acme", "delta_x"]),
        ("WHERE CreatedDate > 2026-01-01T00:00:00Z", ["Acme", "delta_x"]),
        ("WHERE CreatedDate < 2025-01-01T00:00:01.000+00:00", ["beta it's", "Gamma 100%"]),
        ("WHERE CreatedDate = TODAY", ["Acme"]),
        ("WHERE Owner.Name != null", []),
    ],
)
def test_where(store, where, expected):
    assert names(store, where) == sorted(expected, key=str.lower)


def test_order_limit_offset(store):
    assert names(store, "", "ORDER BY AnnualRevenue DESC") == [
        "Gamma 100%",
        "Acme",
        "delta_x",
        "beta it's",
    ]
    assert names(store, "", "ORDER BY AnnualRevenue ASC") == [
        "beta it's",
        "delta_x",
        "Acme",
        "Gamma 100%",
    ]
    assert names(store, "", "ORDER BY AnnualRevenue ASC NULLS LAST") == [
        "delta_x",
        "Acme",
        "Gamma 100%",
        "beta it's",
    ]
    assert names(store, "", "ORDER BY Industry, Name DESC") == [
        "Gamma 100%",
        "delta_x",
        "Acme",
        "beta it's",
    ]
    assert names(store, "", "ORDER BY Name LIMIT 2") == ["Acme", "beta it's"]
    assert names(store, "", "ORDER BY Name LIMIT 2 OFFSET 1") == ["beta it's", "delta_x"]


def test_count(store):
    q = soql_schema.resolve(store, soql.parse("select count() from account where Active__c = true"))
    assert soql_eval.execute(store, q, False, dt.date.today()) == 2


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SELECT FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'x", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account ORDER Name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name", "MALFORMED_QUERY"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "NOT_IMPLEMENTED"),
        ("", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Nope = 1", "INVALID_FIELD"),
        ("SELECT Id FROM Account ORDER BY Nope", "INVALID_FIELD"),
        ("SELECT Owner.Nope FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Active__c = 'true'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE CreatedDate > 'x'", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_errors(store, text, code):
    with pytest.raises(soql.SoqlError) as caught:
        soql_schema.resolve(store, soql.parse(text))
    assert caught.value.code == code


def test_malformed_message_points_at_the_token(store):
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse("SELECT Id FROM Account WHERE")
    assert "ERROR at Row:1:Column:29" in caught.value.message
    assert "unexpected token: <EOF>" in caught.value.message


def test_case_insensitive_names_return_canonical_ones(store):
    q = soql_schema.resolve(
        store, soql.parse("select name, ANNUALREVENUE, owner.name from ACCOUNT")
    )
    assert [r.name for r in q.fields] == ["Name", "AnnualRevenue", "Owner.Name"]
    assert q.sobject == "Account"


def test_csv_encoding(store):
    load_records(store, "Account", [{"Name": 'Say "hi",\nbye', "Active__c": True}], NOW, None)
    q = soql_schema.resolve(
        store, soql.parse("SELECT Name, Industry, Active__c, CreatedDate FROM Account")
    )
    rows = soql_eval.execute(store, q, False, dt.date.today())
    text = encode.csv_header(q) + encode.csv_rows(q.table, q, rows)
    lines = text.split("\n")
    assert lines[0] == '"Name","Industry","Active__c","CreatedDate"'
    assert lines[1] == '"Acme","Banking","true","2026-06-01T08:00:00.000Z"'
    assert lines[3] == '"Gamma 100%",,"true","2024-01-01T00:00:00.000Z"'
    assert '"Say ""hi"",\nbye",,"true",' in text
    assert text.endswith("\n") and "\r" not in text


def test_fields_function(store):
    q = soql_schema.resolve(store, soql.parse("SELECT FIELDS(STANDARD) FROM Account"))
    names = [r.name for r in q.fields]
    assert "Name" in names and "Id" in names and "Active__c" not in names
    q = soql_schema.resolve(store, soql.parse("SELECT Id, FIELDS(CUSTOM) FROM Account LIMIT 200"))
    assert [r.name for r in q.fields] == [
        "Id",
        "Active__c",
        "Tier__c",
        "Days_Since_Last_Activity__c",
        "External_Id__c",
    ]
    with pytest.raises(soql.SoqlError) as caught:
        soql_schema.resolve(store, soql.parse("SELECT FIELDS(ALL) FROM Account"))
    assert caught.value.code == "MALFORMED_QUERY"


def test_scientific_numbers_and_with_clause(store):
    assert names(store, "WHERE AnnualRevenue >= 1e6") == ["Gamma 100%"]
    assert names(store, "WHERE AnnualRevenue < 1.5E3 WITH SECURITY_ENFORCED") == ["Acme", "delta_x"]
