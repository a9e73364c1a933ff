"""TLS mode, and the fidelity test: simple-salesforce works against the emulator unchanged.

simple-salesforce always builds https URLs from the instance host, so the emulator runs with
``tls=True`` and the client's requests session trusts ``emu.ca_cert_path``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
import requests
from emu_helpers import CK, USER, assertion, exchange
from simple_salesforce import Salesforce

from airflow_provider_sfjwt.testing import SalesforceEmulator


@pytest.fixture(scope="module")
def tls_emu(keys) -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(tls=True, bulk_poll_transitions=2) as e:
        e.add_app(CK, keys.certificate_pem, [USER])
        e.generate_accounts(4500, seed=3)
        e.generate_contacts(300, seed=3)
        yield e


@pytest.fixture(scope="module")
def simple_sf(tls_emu, keys) -> Salesforce:
    token = exchange(tls_emu, assertion(keys, aud=tls_emu.url), verify=tls_emu.ca_cert_path).json()
    session = requests.Session()
    session.verify = tls_emu.ca_cert_path
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version="66.0",
        session=session,
    )


def test_tls_serves_https_with_its_ca(tls_emu, keys):
    assert tls_emu.url.startswith("https://127.0.0.1:")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_emu.url + "/services/data/", timeout=5)
    ok = requests.get(tls_emu.url + "/services/data/", verify=tls_emu.ca_cert_path, timeout=5)
    assert ok.status_code == 200
    local = tls_emu.url.replace("127.0.0.1", "localhost")
    assert requests.get(local + "/services/data/", verify=tls_emu.ca_cert_path, timeout=5).ok
    token = exchange(tls_emu, assertion(keys), verify=tls_emu.ca_cert_path)
    assert token.json()["instance_url"] == tls_emu.url


def test_query_all_iter_over_several_pages(simple_sf, tls_emu):
    soql = "SELECT Id, Name, AnnualRevenue, Owner.Name, CreatedDate FROM Account"
    records = list(simple_sf.query_all_iter(soql))
    assert len(records) == 4500
    assert len({r["Id"] for r in records}) == 4500
    stored = {r["Id"]: r for r in tls_emu.records("Account")}
    users = {r["Id"]: r for r in tls_emu.records("User")}
    for rec in records[::97]:
        row = stored[rec["Id"]]
        assert rec["Name"] == row["Name"] and rec["AnnualRevenue"] == row["AnnualRevenue"]
        assert rec["Owner"]["Name"] == users[row["OwnerId"]]["Name"]
        assert rec["CreatedDate"] == row["CreatedDate"]
    assert tls_emu.stats.paths["/services/data/v66.0/query/"] == 1  # simple-salesforce adds a slash
    assert sum(1 for p in tls_emu.stats.paths if "/query/01g" in p) == 2
    deleted = simple_sf.query("SELECT COUNT() FROM Account", include_deleted=True)
    assert deleted["totalSize"] == 4500


def test_bulk2_query_download(simple_sf, tls_emu):
    soql = "SELECT Id, Name, Description, HasOptedOutOfEmail, Account.Name FROM Contact"
    chunks = list(simple_sf.bulk2.Contact.query(soql, max_records=120, wait=0.01))
    assert len(chunks) == 3
    rows = [row for chunk in chunks for row in list(csv.DictReader(io.StringIO(chunk)))]
    assert len(rows) == 300
    stored = {r["Id"]: r for r in tls_emu.records("Contact")}
    accounts = {r["Id"]: r for r in tls_emu.records("Account")}
    for row in rows:
        rec = stored[row["Id"]]
        assert row["Name"] == rec["Name"]
        assert row["Description"] == (rec["Description"] or "")
        assert row["HasOptedOutOfEmail"] == ("true" if rec["HasOptedOutOfEmail"] else "false")
        parent = accounts.get(rec["AccountId"])
        assert row["Account.Name"] == (parent["Name"] if parent else "")


def test_collections_through_restful(simple_sf, tls_emu):
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Name": "Fidelity One", "External_Id__c": "FID-1"},
            {"attributes": {"type": "Account"}, "Name": "Fidelity Two", "NumberOfEmployees": 2},
            {"attributes": {"type": "Account"}, "NumberOfEmployees": 3},
        ],
    }
    results = simple_sf.restful("composite/sobjects", method="POST", json=body)
    assert [r["success"] for r in results] == [True, True, False]
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    found = simple_sf.query(
        "SELECT Id, Name FROM Account WHERE Name LIKE 'Fidelity%' ORDER BY Name"
    )
    assert [r["Name"] for r in found["records"]] == ["Fidelity One", "Fidelity Two"]
    upsert = simple_sf.restful(
        "composite/sobjects/Account/External_Id__c",
        method="PATCH",
        json={
            "records": [
                {
                    "attributes": {"type": "Account"},
                    "External_Id__c": "FID-1",
                    "Name": "Fidelity Uno",
                }
            ]
        },
    )
    assert upsert == [{"id": results[0]["id"], "success": True, "errors": [], "created": False}]
    deleted = simple_sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": f"{results[0]['id']},{results[1]['id']}"},
    )
    assert all(r["success"] for r in deleted)
    left = simple_sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Fidelity%'")
    assert left["totalSize"] == 0


def test_sobject_crud_and_describe(simple_sf):
    created = simple_sf.Account.create({"Name": "Via SObject API"})
    assert created["success"]
    simple_sf.Account.update(created["id"], {"Name": "Renamed"})
    assert simple_sf.Account.get(created["id"])["Name"] == "Renamed"
    fields = {f["name"] for f in simple_sf.Account.describe()["fields"]}
    assert {"Id", "Name", "OwnerId", "External_Id__c"} <= fields
    assert simple_sf.Account.upsert("External_Id__c/SS-1", {"Name": "Upserted"}) == 201
    assert simple_sf.Account.upsert("External_Id__c/SS-1", {"Name": "Upserted again"}) == 200
    assert simple_sf.Account.get_by_custom_id("External_Id__c", "SS-1")["Name"] == "Upserted again"
    simple_sf.Account.delete(created["id"])
    assert (
        simple_sf.query(f"SELECT COUNT() FROM Account WHERE Id = '{created['id']}'")["totalSize"]
        == 0
    )
