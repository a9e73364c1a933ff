"""Fidelity of the API surface: versions served and retired, describe's field properties,
compound and formula fields, and what is not emulated saying so."""

from __future__ import annotations

import pytest
import requests
from fidelity import FIDELITY, hook_refused, provider_client, refused, simple_salesforce

pytestmark = FIDELITY

DESCRIBE_KEYS = {
    "aggregatable", "aiPredictionField", "autoNumber", "byteLength", "calculated",
    "calculatedFormula", "cascadeDelete", "caseSensitive", "compoundFieldName", "controllerName",
    "createable", "custom", "defaultValue", "defaultValueFormula", "defaultedOnCreate",
    "dependentPicklist", "deprecatedAndHidden", "digits", "displayLocationInDecimal", "encrypted",
    "externalId", "extraTypeInfo", "filterable", "filteredLookupInfo",
    "formulaTreatNullNumberAsZero", "groupable", "highScaleNumber", "htmlFormatted", "idLookup",
    "inlineHelpText", "label", "length", "mask", "maskType", "name", "nameField", "namePointing",
    "nillable", "permissionable", "picklistValues", "polymorphicForeignKey", "precision",
    "queryByDistance", "referenceTargetField", "referenceTo", "relationshipName",
    "relationshipOrder", "restrictedDelete", "restrictedPicklist", "scale", "searchPrefilterable",
    "soapType", "sortable", "type", "unique", "updateable", "writeRequiresMasterRead",
}  # fmt: skip


def test_every_served_version_and_the_retired_ones(emu, salesforce_emulator, ssf):
    emu.generate_accounts(2)
    assert ssf.sf_version == "59.0" and ssf.query("SELECT Id FROM Account")["totalSize"] == 2
    listed = [
        v["version"]
        for v in requests.get(emu.url + "/services/data/", verify=emu.ca_cert_path).json()
    ]
    assert listed == [f"{n}.0" for n in range(31, 69)]
    oldest = simple_salesforce(salesforce_emulator, version="31.0")
    assert oldest.query("SELECT Id FROM Account")["totalSize"] == 2
    for retired in ("30.0", "21.0", "20.0"):
        old = simple_salesforce(salesforce_emulator, version=retired)
        status, code, message, _ = refused(lambda o=old: o.query("SELECT Id FROM Account"))
        assert (status, code) == (410, "UNSUPPORTED_API_VERSION") and "31.0" in message
    future = simple_salesforce(salesforce_emulator, version="69.0")
    assert refused(lambda: future.query("SELECT Id FROM Account"))[:2] == (404, "NOT_FOUND")
    assert (
        provider_client(salesforce_emulator, api_version="31.0").count(
            "SELECT COUNT() FROM Account"
        )
        == 2
    )
    retired = provider_client(salesforce_emulator, api_version="30.0")
    status, code, message = hook_refused(lambda: retired.count("SELECT COUNT() FROM Account"))
    assert (status, code) == (410, "UNSUPPORTED_API_VERSION") and "31.0" in message


def test_describe_reports_every_field_property(emu, ssf, hook):
    fields = {f["name"]: f for f in ssf.Account.describe()["fields"]}
    for f in fields.values():
        assert set(f) >= DESCRIBE_KEYS, f["name"]
    name, desc = fields["Name"], fields["Description"]
    assert (name["nameField"], name["byteLength"], name["length"], name["groupable"]) == (
        True, 765, 255, True,
    )  # fmt: skip
    assert (desc["filterable"], desc["sortable"], desc["groupable"], desc["byteLength"]) == (
        False, False, False, 96000,
    )  # fmt: skip
    assert (desc["extraTypeInfo"], desc["htmlFormatted"], desc["caseSensitive"]) == (
        "plaintextarea", False, False,
    )  # fmt: skip
    revenue = fields["AnnualRevenue"]
    assert (revenue["precision"], revenue["scale"], revenue["groupable"]) == (18, 0, False)
    assert (revenue["aggregatable"], revenue["soapType"]) == (True, "xsd:double")
    active = fields["Active__c"]
    assert (active["defaultValue"], active["defaultedOnCreate"], active["nillable"]) == (
        False, True, False,
    )  # fmt: skip
    formula = fields["Days_Since_Last_Activity__c"]
    assert (formula["calculated"], formula["calculatedFormula"]) == (
        True,
        "TODAY() - LastActivityDate",
    )
    assert (formula["createable"], formula["updateable"], formula["groupable"]) == (
        False,
        False,
        False,
    )
    assert fields["OwnerId"]["polymorphicForeignKey"] is False
    assert fields["Id"]["idLookup"] and not fields["Phone"]["idLookup"]
    assert hook.get_conn().describe("Account")["fields"] == ssf.Account.describe()["fields"]


def test_compound_address_field(emu, ssf, hook, tmp_path):
    (rid,) = emu.load(
        "Account",
        [{"Name": "Addressed", "BillingStreet": "1 Market St", "BillingCity": "San Francisco",
          "BillingPostalCode": "94105", "BillingCountry": "United States"}],
    )  # fmt: skip
    fields = {f["name"]: f for f in ssf.Account.describe()["fields"]}
    address = fields["BillingAddress"]
    assert (address["type"], address["soapType"], address["createable"]) == (
        "address",
        "urn:address",
        False,
    )
    assert address["filterable"] is False and address["compoundFieldName"] is None
    for part in (
        "BillingStreet",
        "BillingCity",
        "BillingState",
        "BillingPostalCode",
        "BillingCountry",
        "BillingLatitude",
        "BillingLongitude",
        "BillingGeocodeAccuracy",
    ):
        assert fields[part]["compoundFieldName"] == "BillingAddress", part  # fmt: skip
    (row,) = ssf.query(f"SELECT BillingAddress FROM Account WHERE Id = '{rid}'")["records"]
    assert row["BillingAddress"] == {
        "city": "San Francisco", "country": "United States", "geocodeAccuracy": None,
        "latitude": None, "longitude": None, "postalCode": "94105", "state": None,
        "street": "1 Market St",
    }  # fmt: skip
    assert ssf.Account.get(rid)["BillingAddress"]["city"] == "San Francisco"
    status, code, _, _ = refused(lambda: ssf.Account.update(rid, {"BillingAddress": {"city": "x"}}))
    assert (status, code) == (400, "INVALID_FIELD_FOR_INSERT_UPDATE")
    status, code, message = hook_refused(
        lambda: hook.bulk_query_to_file(
            "SELECT Id, BillingAddress FROM Account", tmp_path / "a.csv", poll_interval=0.01
        )
    )
    assert (status, code, message) == (
        400,
        "API_ERROR",
        "Selecting compound data not supported in Bulk Query",
    )
    parts = hook.bulk_query_to_file(
        "SELECT Id, BillingCity, BillingPostalCode FROM Account",
        tmp_path / "b.csv",
        poll_interval=0.01,
    )
    assert parts["rows"] == 1 and "94105" in (tmp_path / "b.csv").read_text()


@pytest.mark.parametrize(
    ("path", "method", "feature"),
    [
        ("/services/data/v59.0/search/?q=FIND+%7Bacme%7D", "GET", "SOSL search"),
        ("/services/data/v59.0/parameterizedSearch/?q=acme", "GET", "SOSL search"),
        ("/services/data/v59.0/tooling/query/?q=SELECT+Id+FROM+ApexClass", "GET", "Tooling API"),
        ("/services/async/59.0/job", "POST", "Bulk API 1.0"),
        ("/services/Soap/m/59.0", "POST", "Metadata API"),
        ("/services/Soap/u/59.0", "POST", "SOAP API"),
        ("/services/data/v59.0/composite", "POST", "Composite requests"),
        ("/services/data/v59.0/composite/tree/Account", "POST", "Composite requests"),
        ("/services/data/v59.0/analytics/reports", "GET", "Reports and Dashboards API"),
    ],
)
def test_what_is_not_emulated_says_so(emu, ssf, hook, path, method, feature):
    status, code, message, _ = refused(
        lambda: ssf._call_salesforce(method, emu.url + path, name=path)  # noqa: SLF001
    )
    assert (status, code) == (501, "NOT_IMPLEMENTED") and feature in message
    assert "does not emulate" in message
    status, code, message = hook_refused(lambda: hook.get_conn().request(method, path))
    assert (status, code) == (501, "NOT_IMPLEMENTED") and feature in message


def test_soql_the_emulator_does_not_evaluate_says_so(emu, ssf, hook):
    for soql, feature in [
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "sub-queries"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "semi-joins"),
        ("SELECT CALENDAR_YEAR(CreatedDate), COUNT(Id) FROM Account GROUP BY CALENDAR_YEAR(CreatedDate)", "CALENDAR_YEAR"),
        ("SELECT Industry, COUNT(Id) FROM Account GROUP BY ROLLUP(Industry)", "ROLLUP"),
        ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Account", "TYPEOF"),
        ("SELECT Id FROM Account USING SCOPE Mine", "USING SCOPE"),
        ("SELECT Id FROM Account WHERE Industry INCLUDES ('Banking')", "INCLUDES"),
        ("SELECT a.Name FROM Account a", "object aliases"),
        ("SELECT Account.Owner.Name FROM Contact", "relationship paths deeper than one level"),
        ("SELECT toLabel(Industry) FROM Account", "TOLABEL"),
        ("SELECT convertCurrency(AnnualRevenue) FROM Account", "CONVERTCURRENCY"),
    ]:  # fmt: skip
        status, code, message, _ = refused(lambda s=soql: ssf.query(s))
        assert (status, code) == (501, "NOT_IMPLEMENTED") and feature in message, soql
        assert "unexpected token" not in message
        status, code, message = hook_refused(lambda s=soql: list(hook.query(s)))
        assert (status, code) == (501, "NOT_IMPLEMENTED") and feature in message, soql


def test_sharing_is_not_emulated_every_user_reads_and_writes_every_record(
    emu, salesforce_emulator, ssf
):
    """No sharing rules, field-level security, triggers or validation rules: another user of
    the app reads and changes a record it does not own."""
    other = "someone.else@emulator.example.com"
    salesforce_emulator.app.usernames.add(other)
    emu.add_user(other)
    rid = ssf.Account.create({"Name": "Mine"})["id"]
    theirs = simple_salesforce(salesforce_emulator, username=other)
    mine = {r["Username"]: r["Id"] for r in emu.records("User")}
    (row,) = theirs.query(f"SELECT Name, OwnerId FROM Account WHERE Id = '{rid}'")["records"]
    assert (row["Name"], row["OwnerId"]) == ("Mine", mine[salesforce_emulator.username])
    assert theirs.Account.update(rid, {"Name": "Theirs now"}) == 204
    assert ssf.Account.get(rid)["Name"] == "Theirs now"


def test_the_resource_list_advertises_only_what_is_served(emu, ssf, hook):
    listed = ssf.restful("")
    assert set(listed) == {"limits", "query", "queryAll", "sobjects"}
    for name, url in listed.items():
        response = hook.get_conn().request(
            "GET", url, params={"q": "SELECT Id FROM Account"} if "query" in name else None
        )
        assert response.status_code == 200, name
