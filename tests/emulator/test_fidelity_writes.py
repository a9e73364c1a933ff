"""Fidelity of writes: values refused by type, length and field rules on REST, sObject
Collections and Bulk ingest alike; picklists as metadata; upsert and retrieve rules.

Salesforce binds REST and Collections bodies to typed fields (an unbindable value fails the
request: 400 JSON_PARSER_ERROR), reports Bulk CSV cells per row (INVALID_TYPE_ON_FIELD_IN_RECORD),
and applies the same field rules everywhere (STRING_TOO_LONG, INVALID_EMAIL_ADDRESS,
INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST). Each case runs through simple-salesforce and through
this provider's hook.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fidelity import FIDELITY, hook_refused, refused

pytestmark = FIDELITY

LONG_NAME = "N" * 300
VISITED = "2026-01-01T00:00:00.000+0000"

# (object, field, value refused, what the JSON reader calls the type, Bulk's error code)
BAD = [
    ("Account", "NumberOfEmployees", "abc", "int", "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ("Account", "AnnualRevenue", "lots", "currency", "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ("Account", "Active__c", "maybe", "boolean", "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ("Contact", "Birthdate", "31/01/1990", "date", "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ("Visit__c", "VisitedAt__c", "2017-10-17 00:00:00", "datetime", "INVALID_TYPE_ON_FIELD_IN_RECORD"),
]  # fmt: skip
RULES = [
    ("Account", "Name", LONG_NAME, "STRING_TOO_LONG", "Account Name: data value too large: "),
    ("Contact", "Email", "not-an-email", "INVALID_EMAIL_ADDRESS", "Email: invalid email address"),
    ("Account", "Tier__c", "Diamond", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
     "Tier: bad value for restricted picklist field: Diamond"),
    ("Account", "NumberOfEmployees", "123456789", "NUMBER_OUTSIDE_VALID_RANGE",
     "Employees: value outside of valid range on numeric field: 123456789"),
]  # fmt: skip
GOOD = [
    ("Account", "NumberOfEmployees", "12", 12),
    ("Account", "AnnualRevenue", "1.5", 1.5),
    ("Account", "Active__c", "true", True),
    ("Contact", "Birthdate", "1990-01-31", "1990-01-31"),
    ("Visit__c", "VisitedAt__c", "2017-10-17T09:30:00+02:00", "2017-10-17T07:30:00.000+0000"),
    ("Account", "Name", "N" * 255, "N" * 255),
    ("Contact", "Email", "ada@example.com", "ada@example.com"),
    ("Account", "Tier__c", "Gold", "Gold"),
    ("Account", "Industry", "Underwater Basket Weaving", "Underwater Basket Weaving"),
]
REQUIRED = {"Account": {"Name": "Acme"}, "Contact": {"LastName": "Lovelace"}, "Visit__c": {}}


@pytest.fixture(autouse=True)
def visits(emu):
    """A custom object with a datetime field (the standard objects have no writable one)."""
    emu.load("Visit__c", [{"Label__c": "seed", "VisitedAt__c": VISITED}])


def record(sobject: str, field: str, value: object) -> dict[str, object]:
    return {**REQUIRED[sobject], field: value}


def bulk_csv(tmp_path: Path, sobject: str, field: str, value: str) -> Path:
    path = tmp_path / f"{sobject}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        row = record(sobject, field, value)
        writer.writerow(list(row))
        writer.writerow(list(row.values()))
    return path


def stored(emu, sobject: str, field: str) -> list[object]:
    return [r[field] for r in emu.records(sobject)]


def bulk_failures(ssf, sobject: str, row: dict[str, object]) -> list[dict[str, str]]:
    """simple-salesforce's Bulk API 2.0 insert of one row; the failed-results rows."""
    bulk = getattr(ssf.bulk2, sobject)
    (result,) = bulk.insert(records=[row], wait=0)
    return list(csv.DictReader(io.StringIO(bulk.get_failed_records(result["job_id"]))))


def collection(sobject: str, *records: dict[str, object]) -> dict[str, object]:
    return {
        "allOrNone": False,
        "records": [{"attributes": {"type": sobject}, **r} for r in records],
    }


@pytest.mark.parametrize(("sobject", "field", "value", "kind", "bulk_code"), BAD)
def test_a_value_its_type_refuses_is_refused_by_every_api(
    emu, ssf, hook, tmp_path, sobject, field, value, kind, bulk_code
):
    before = stored(emu, sobject, field)
    bad = record(sobject, field, value)
    want = f"Cannot deserialize instance of {kind} from VALUE_STRING value {value} or request"
    status, code, message, _ = refused(lambda: getattr(ssf, sobject).create(bad))
    assert (status, code) == (400, "JSON_PARSER_ERROR") and message.startswith(want)
    assert message.endswith(f"at [line:1, column:{len(json.dumps(bad))}]")  # after the value
    body = collection(sobject, REQUIRED[sobject], bad)
    status, code, message, _ = refused(
        lambda: ssf.restful("composite/sobjects", method="POST", json=body)
    )
    assert (status, code) == (400, "JSON_PARSER_ERROR") and message.startswith(want)
    status, code, message = hook_refused(
        lambda: hook.get_conn().request("POST", f"sobjects/{sobject}", json=bad)
    )
    assert (status, code) == (400, "JSON_PARSER_ERROR") and message.startswith(want)
    status, code, message = hook_refused(
        lambda: list(hook.get_conn().collections("insert", [REQUIRED[sobject], bad], sobject))
    )
    assert (status, code) == (400, "JSON_PARSER_ERROR") and message.startswith(want)
    (failed,) = bulk_failures(ssf, sobject, bad)
    assert failed["sf__Error"].startswith(f"{bulk_code}:") and value in failed["sf__Error"]
    summary = hook.bulk_ingest_file(
        sobject, "insert", bulk_csv(tmp_path, sobject, field, value), poll_interval=0.01
    )
    assert summary["failed"] == 1 and set(summary["first_errors"]) == {bulk_code}
    assert stored(emu, sobject, field) == before  # not even the good Collections record


@pytest.mark.parametrize(("sobject", "field", "value", "code", "words"), RULES)
def test_a_field_rule_refuses_the_record_with_the_same_code_everywhere(
    emu, ssf, hook, tmp_path, sobject, field, value, code, words
):
    before = stored(emu, sobject, field)
    bad = record(sobject, field, value)
    status, got, message, first = refused(lambda: getattr(ssf, sobject).create(bad))
    assert (status, got, first["fields"]) == (400, code, [field]) and message.startswith(words)
    body = collection(sobject, REQUIRED[sobject], bad)
    results = ssf.restful("composite/sobjects", method="POST", json=body)
    assert results[0]["success"] and not results[1]["success"]  # per record, in order
    assert results[1]["errors"] == [{"statusCode": code, "message": message, "fields": [field]}]
    assert hook_refused(lambda: hook.get_conn().request("POST", f"sobjects/{sobject}", json=bad))[
        :2
    ] == (
        400,
        code,
    )
    ((_, answers),) = hook.get_conn().collections("insert", [REQUIRED[sobject], bad], sobject)
    assert [a["success"] for a in answers] == [True, False] and answers[1]["errors"] == (
        results[1]["errors"]
    )
    (failed,) = bulk_failures(ssf, sobject, bad)
    assert failed["sf__Error"] == f"{code}:{message}:{field} --"
    summary = hook.bulk_ingest_file(
        sobject, "insert", bulk_csv(tmp_path, sobject, field, value), poll_interval=0.01
    )
    assert summary["failed"] == 1 and set(summary["first_errors"]) == {code}
    assert stored(emu, sobject, field).count(value) == before.count(value)


@pytest.mark.parametrize(("sobject", "field", "value", "kept"), GOOD)
def test_what_salesforce_accepts_every_api_accepts_alike(
    emu, ssf, hook, tmp_path, sobject, field, value, kept
):
    good = record(sobject, field, value)
    assert getattr(ssf, sobject).create(good)["success"]
    body = collection(sobject, good)
    assert ssf.restful("composite/sobjects", method="POST", json=body)[0]["success"]
    assert hook.get_conn().request("POST", f"sobjects/{sobject}", json=good).status_code == 201
    ((_, answers),) = hook.get_conn().collections("insert", [good], sobject)
    assert answers[0]["success"]
    assert bulk_failures(ssf, sobject, good) == []
    summary = hook.bulk_ingest_file(
        sobject, "insert", bulk_csv(tmp_path, sobject, field, value), poll_interval=0.01
    )
    assert summary["failed"] == 0
    assert stored(emu, sobject, field).count(kept) == 6  # the same stored value each time


def test_picklist_values_are_metadata_not_data(emu, ssf, hook):
    """An unrestricted picklist stores an unknown value but describe does not grow; a
    restricted one refuses it on every API."""
    described = {f["name"]: f for f in ssf.Account.describe()["fields"]}
    industries = [p["value"] for p in described["Industry"]["picklistValues"]]
    ssf.Account.create({"Name": "Basket Co", "Industry": "Underwater Basket Weaving"})
    fields = {f["name"]: f for f in ssf.Account.describe()["fields"]}
    assert [p["value"] for p in fields["Industry"]["picklistValues"]] == industries
    assert "Underwater Basket Weaving" not in industries
    assert fields["Industry"]["restrictedPicklist"] is False
    assert fields["Tier__c"]["restrictedPicklist"] is True
    assert [p["value"] for p in fields["Tier__c"]["picklistValues"]] == [
        "Platinum",
        "Gold",
        "Silver",
        "Bronze",
    ]
    described = {f["name"]: f for f in hook.get_conn().describe("Account")["fields"]}
    assert described["Industry"]["picklistValues"] == fields["Industry"]["picklistValues"]
    emu.define_picklist("Account", "Type", ["Prospect", "Customer"], restricted=True)
    status, code, message, _ = refused(lambda: ssf.Account.create({"Name": "x", "Type": "Other"}))
    assert (status, code) == (400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    assert message == "Account Type: bad value for restricted picklist field: Other"


def test_upsert_refuses_the_external_id_in_the_body(emu, ssf, hook):
    """ "Do not specify Id or an external ID field in the request body or an error is generated."""
    ssf.Account.upsert("External_Id__c/EXT-1", {"Name": "First"})
    status, code, message, first = refused(
        lambda: ssf.Account.upsert(
            "External_Id__c/EXT-1", {"Name": "Again", "External_Id__c": "EXT-1"}
        )
    )
    assert (status, code, first["fields"]) == (400, "INVALID_FIELD", ["External_Id__c"])
    assert "External_Id__c" in message
    for repeated in ({"External_Id__c": "EXT-1"}, {"Id": "001000000000000"}):
        status, code, _ = hook_refused(
            lambda r=repeated: hook.get_conn().request(
                "PATCH", "sobjects/Account/External_Id__c/EXT-1", json={"Name": "Again", **r}
            )
        )
        assert (status, code) == (400, "INVALID_FIELD"), repeated
    assert [r["Name"] for r in emu.records("Account") if r["External_Id__c"] == "EXT-1"] == [
        "First"
    ]


def test_collections_retrieve_needs_ids_and_fields(emu, ssf, hook):
    (rid,) = emu.load("Account", [{"Name": "Kept"}])
    status, code, message, _ = refused(
        lambda: ssf.restful("composite/sobjects/Account", params={"ids": rid})
    )
    assert (status, code) == (400, "MISSING_ARGUMENT") and "fields" in message
    status, code, message, _ = refused(
        lambda: ssf.restful("composite/sobjects/Account", params={"fields": "Name"})
    )
    assert (status, code) == (400, "MISSING_ARGUMENT") and "ids" in message
    got = ssf.restful(
        "composite/sobjects/Account", params={"ids": f"{rid},001000000000000", "fields": "Name"}
    )
    assert [r and r["Name"] for r in got] == ["Kept", None]
    status, code, _ = hook_refused(
        lambda: hook.get_conn().request("POST", "composite/sobjects/Account", json={"ids": [rid]})
    )
    assert (status, code) == (400, "MISSING_ARGUMENT")
    posted = (
        hook.get_conn()
        .request("POST", "composite/sobjects/Account", json={"ids": [rid[:15]], "fields": ["Name"]})
        .json()
    )
    assert posted[0]["Name"] == "Kept" and posted[0]["attributes"]["type"] == "Account"


def test_lookups_set_by_the_parents_external_id_on_every_api(emu, ssf, hook, tmp_path):
    (account,) = emu.load("Account", [{"Name": "Parent", "External_Id__c": "ACC-1"}])
    by_key = {"LastName": "Rest", "Account": {"External_Id__c": "ACC-1"}}
    ssf.Contact.create(by_key)
    client = hook.get_conn()
    ((_, results),) = client.collections(
        "insert",
        [{"LastName": "Collection", "Account": {"External_Id__c": "ACC-1"}},
         {"LastName": "Orphan", "Account": {"External_Id__c": "NOPE"}}],
        sobject="Contact",
    )  # fmt: skip
    assert [r["success"] for r in results] == [True, False]
    assert results[1]["errors"][0] == {
        "statusCode": "INVALID_FIELD",
        "message": "Foreign key external ID: NOPE not found for field External_Id__c in entity "
        "Account",
        "fields": [],
    }
    rows = tmp_path / "contacts.csv"
    rows.write_text("LastName,Account.External_Id__c\nBulk,ACC-1\n")
    assert hook.bulk_ingest_file("Contact", "insert", rows, poll_interval=0.01)["failed"] == 0
    linked = {r["LastName"]: r["AccountId"] for r in emu.records("Contact")}
    assert linked == {"Rest": account, "Collection": account, "Bulk": account}
