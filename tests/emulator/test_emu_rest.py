"""REST resources: versions, limits, sObjects, describe, record CRUD, query and queryAll paging."""

from __future__ import annotations

import gzip

import requests
from emu_helpers import V, api

from airflow_provider_sfjwt.testing import SalesforceEmulator


def test_versions_and_resources(emu, sf):
    versions = requests.get(emu.url + "/services/data/").json()
    assert [v["version"] for v in versions] == list(emu.api_versions)
    assert {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"} in versions
    res = sf.get(api(emu, "")).json()
    assert res["query"] == f"/services/data/v{V}/query"
    assert sf.get(emu.url + "/services/data/v41.0/limits").status_code == 200
    resp = sf.get(emu.url + "/services/data/v69.0/limits")  # not released yet
    assert resp.status_code == 404
    assert resp.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


def test_missing_or_unknown_bearer(emu):
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = requests.get(api(emu, "limits"), headers=headers)
        assert resp.status_code == 401
        assert resp.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
    assert emu.stats.api_calls == 0


def test_limits_and_usage_header(emu, sf):
    first = sf.get(api(emu, "limits"))
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    limits = sf.get(api(emu, "limits")).json()
    assert limits["DailyApiRequests"] == {"Max": 100000, "Remaining": 100000 - 2}
    assert "DailyBulkV2QueryJobs" in limits
    assert emu.stats.api_calls == 2


def test_sobjects_and_describe(emu, sf):
    emu.generate_contacts(20)
    names = {o["name"]: o for o in sf.get(api(emu, "sobjects")).json()["sobjects"]}
    assert names["Account"]["keyPrefix"] == "001" and names["Contact"]["keyPrefix"] == "003"
    desc = sf.get(api(emu, "sobjects/Account/describe")).json()
    fields = {f["name"]: f for f in desc["fields"]}
    assert fields["Id"]["type"] == "id"
    assert fields["Name"]["nillable"] is False
    assert fields["AnnualRevenue"]["type"] == "currency"
    assert fields["NumberOfEmployees"]["type"] == "int"
    assert fields["CreatedDate"]["type"] == "datetime" and not fields["CreatedDate"]["updateable"]
    assert fields["LastActivityDate"]["type"] == "date"
    assert fields["Active__c"]["type"] == "boolean" and fields["Active__c"]["custom"]
    assert fields["Description"]["type"] == "textarea"
    industries = {p["value"] for p in fields["Industry"]["picklistValues"]}
    assert industries >= {r["Industry"] for r in emu.records("Account") if r["Industry"]}
    assert fields["External_Id__c"]["externalId"] and fields["External_Id__c"]["unique"]
    owner = fields["OwnerId"]
    assert owner["type"] == "reference" and owner["referenceTo"] == ["User"]
    assert owner["relationshipName"] == "Owner"
    contact = {f["name"]: f for f in sf.get(api(emu, "sobjects/Contact/describe")).json()["fields"]}
    assert contact["AccountId"]["relationshipName"] == "Account"
    assert sf.get(api(emu, "sobjects/Nope__c/describe")).status_code == 404


def test_describe_of_loaded_custom_object_infers_types(emu, sf):
    emu.load(
        "Invoice__c",
        [
            {
                "Name": "A",
                "Amount__c": 1.5,
                "Qty__c": 3,
                "Paid__c": True,
                "Due__c": "2026-01-31",
                "Sent__c": "2026-01-31T10:00:00Z",
                "Account__c": "001000000000001",
            },
        ],
    )
    fields = {
        f["name"]: f for f in sf.get(api(emu, "sobjects/Invoice__c/describe")).json()["fields"]
    }
    assert fields["Amount__c"]["type"] == "double"
    assert fields["Qty__c"]["type"] == "int"
    assert fields["Paid__c"]["type"] == "boolean"
    assert fields["Due__c"]["type"] == "date"
    assert fields["Sent__c"]["type"] == "datetime"
    assert fields["Account__c"]["type"] == "reference"
    assert fields["Account__c"]["referenceTo"] == ["Account"]
    rec = emu.records("Invoice__c")[0]
    assert rec["Sent__c"] == "2026-01-31T10:00:00.000+0000"
    assert rec["Id"].startswith("a00") and len(rec["Id"]) == 18


def test_record_get_patch_delete_create(emu, sf):
    (rid,) = emu.load("Account", [{"Name": "Acme", "NumberOfEmployees": 5}])
    rec = sf.get(api(emu, f"sobjects/Account/{rid}")).json()
    assert rec["Name"] == "Acme" and rec["attributes"]["type"] == "Account"
    assert rec["attributes"]["url"] == f"/services/data/v{V}/sobjects/Account/{rid}"
    only = sf.get(api(emu, f"sobjects/Account/{rid}"), params={"fields": "Name"}).json()
    assert set(only) == {"attributes", "Name"}
    assert sf.get(api(emu, f"sobjects/Account/{rid[:15]}")).status_code == 200
    assert sf.patch(api(emu, f"sobjects/Account/{rid}"), json={"Name": "Acme 2"}).status_code == 204
    assert emu.records("Account")[0]["Name"] == "Acme 2"
    bad = sf.patch(api(emu, f"sobjects/Account/{rid}"), json={"Nope": 1})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    assert sf.delete(api(emu, f"sobjects/Account/{rid}")).status_code == 204
    gone = sf.get(api(emu, f"sobjects/Account/{rid}"))
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert emu.records("Account")[0]["IsDeleted"] is True
    missing = sf.get(api(emu, "sobjects/Account/001000000000000AAA"))
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    created = sf.post(api(emu, "sobjects/Account"), json={"Name": "New"})
    assert created.status_code == 201 and created.json()["success"] is True
    missing_name = sf.post(api(emu, "sobjects/Account"), json={"Phone": "1"})
    assert missing_name.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.put(api(emu, f"sobjects/Account/{rid}"), json={}).status_code == 405
    assert sf.get(api(emu, "sobjects/Account/describe")).json()["name"] == "Account"


def fetch_all(emu, sf, soql, kind="query", headers=None):
    resp = sf.get(api(emu, kind), params={"q": soql}, headers=headers or {})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    pages = [body]
    while not body["done"]:
        body = sf.get(emu.url + body["nextRecordsUrl"], headers=headers or {}).json()
        pages.append(body)
    return pages


def test_query_paging(emu, sf):
    emu.generate_accounts(4500)
    pages = fetch_all(emu, sf, "SELECT Id, Name, Owner.Name, AnnualRevenue FROM Account")
    assert [len(p["records"]) for p in pages] == [2000, 2000, 500]
    assert all(p["totalSize"] == 4500 for p in pages)
    first = pages[0]
    assert first["nextRecordsUrl"].startswith(f"/services/data/v{V}/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    ids = [r["Id"] for p in pages for r in p["records"]]
    assert len(set(ids)) == 4500
    rec = first["records"][0]
    assert list(rec) == ["attributes", "Id", "Name", "Owner", "AnnualRevenue"]
    assert rec["Owner"]["attributes"]["type"] == "User" and rec["Owner"]["Name"]
    # a page can be fetched again (a client retrying after a failure)
    again = sf.get(emu.url + first["nextRecordsUrl"]).json()
    assert again["records"] == pages[1]["records"]


def test_batch_size_header(emu, sf):
    emu.generate_accounts(1000)
    pages = fetch_all(
        emu, sf, "SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=300"}
    )
    assert [len(p["records"]) for p in pages] == [300, 300, 300, 100]
    pages = fetch_all(
        emu, sf, "SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=5"}
    )
    assert len(pages[0]["records"]) == 200  # clamped to Salesforce's minimum


def test_query_all_sees_deleted_rows(emu, sf):
    ids = emu.load("Account", [{"Name": f"A{i}"} for i in range(5)])
    sf.delete(api(emu, f"sobjects/Account/{ids[0]}"))
    q = "SELECT Id, IsDeleted FROM Account"
    assert fetch_all(emu, sf, q)[0]["totalSize"] == 4
    everything = fetch_all(emu, sf, q, kind="queryAll")[0]
    assert everything["totalSize"] == 5
    assert [r["IsDeleted"] for r in everything["records"]].count(True) == 1


def test_count_and_aggregate(emu, sf):
    emu.generate_accounts(50)
    body = sf.get(api(emu, "query"), params={"q": "SELECT COUNT() FROM Account"}).json()
    assert body == {"totalSize": 50, "done": True, "records": []}
    agg = sf.get(api(emu, "query"), params={"q": "SELECT COUNT(Id) FROM Account"}).json()
    assert agg["records"][0]["expr0"] == 50


def test_query_errors(emu, sf):
    def err(q):
        resp = sf.get(api(emu, "query"), params={"q": q})
        assert resp.status_code == 400
        return resp.json()[0]

    e = err("SELECT Foo FROM Account")
    assert (
        e["errorCode"] == "INVALID_FIELD"
        and "No such column 'Foo' on entity 'Account'" in e["message"]
    )
    assert err("SELECT Id FROM Nope__c")["errorCode"] == "INVALID_TYPE"
    assert err("SELECT Id FROM Account WHERE")["errorCode"] == "MALFORMED_QUERY"
    assert err("SELECT Id, FROM Account")["errorCode"] == "MALFORMED_QUERY"
    assert err("SELECT Id, Boss.Name FROM Account")["errorCode"] == "INVALID_FIELD"
    stale = sf.get(api(emu, "query/01gDEADBEEF0000AAA-2000"))
    assert stale.status_code == 400 and stale.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_relationship_null_and_values(emu, sf):
    (acc,) = emu.load("Account", [{"Name": 'Parent, "Inc"'}])
    emu.load("Contact", [{"LastName": "A", "AccountId": acc}, {"LastName": "B"}])
    body = sf.get(
        api(emu, "query"),
        params={"q": "SELECT LastName, Account.Name FROM Contact ORDER BY LastName"},
    ).json()
    assert body["records"][0]["Account"]["Name"] == 'Parent, "Inc"'
    assert body["records"][1]["Account"] is None


def test_gzip_when_asked(keys):
    with SalesforceEmulator(gzip=True) as e:
        e.add_app("ck", keys.certificate_pem, ["u@example.com"])
        e.generate_accounts(500)
        from emu_helpers import assertion, exchange

        token = exchange(e, assertion(keys, iss="ck", sub="u@example.com")).json()["access_token"]
        raw = requests.get(
            e.url + "/services/data/v66.0/query",
            params={"q": "SELECT Id, Name FROM Account"},
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
            stream=True,
        )
        assert raw.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(raw.raw.read())
        assert body.startswith(b'{"totalSize":500')


def test_stats_over_http(emu, sf):
    sf.get(api(emu, "limits"))
    stats = requests.get(emu.url + "/__emulator__/stats").json()
    assert stats["token_exchanges"] == 1 and stats["api_calls"] == 1
    assert stats["paths"][f"/services/data/v{V}/limits"] == 1
    emu.reset_stats()
    assert emu.stats.api_calls == 0 and emu.stats["paths"] == {}


def test_apex_rest(emu, sf):
    seen = []

    def handler(req):
        seen.append((req.method, req.path, req.query, req.json()))
        return 200, {"ok": True, "echo": req.json()}

    emu.register_apex("POST", "orders/*", handler)
    emu.register_apex("GET", "boom", lambda req: 1 / 0)
    emu.register_apex("DELETE", "orders/*", lambda req: (204, None))
    resp = sf.post(emu.url + "/services/apexrest/orders/42", params={"x": "1"}, json={"n": 1})
    assert resp.status_code == 200 and resp.json() == {"ok": True, "echo": {"n": 1}}
    assert seen == [("POST", "/services/apexrest/orders/42", {"x": "1"}, {"n": 1})]
    assert "Sforce-Limit-Info" in resp.headers
    assert sf.delete(emu.url + "/services/apexrest/orders/42").status_code == 204
    missing = sf.get(emu.url + "/services/apexrest/nothing")
    assert missing.status_code == 404
    assert missing.json() == [
        {"message": "Could not find a match for URL", "errorCode": "NOT_FOUND"}
    ]
    boom = sf.get(emu.url + "/services/apexrest/boom")
    assert boom.status_code == 500 and boom.json()[0]["errorCode"] == "APEX_ERROR"
    assert requests.get(emu.url + "/services/apexrest/orders/1").status_code == 401


def test_keep_alive_connection_reused(emu, sf):
    for _ in range(20):
        assert sf.get(api(emu, "limits")).status_code == 200
    assert len(emu.connections) == 1


def test_upsert_and_get_by_external_id(emu, sf):
    url = api(emu, "sobjects/Account/External_Id__c/EXT-1")
    created = sf.patch(url, json={"Name": "By key"})
    assert created.status_code == 201 and created.json()["created"] is True
    updated = sf.patch(url, json={"Name": "By key 2"})
    assert updated.status_code == 200 and updated.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    assert sf.get(url).json()["Name"] == "By key 2"
    assert sf.get(api(emu, "sobjects/Account/External_Id__c/nope")).status_code == 404
    assert sf.patch(api(emu, "sobjects/Account/Name/x"), json={}).status_code == 404
    missing = sf.patch(api(emu, "sobjects/Account/External_Id__c/EXT-2"), json={"Phone": "1"})
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_concurrent_clients_get_consistent_pages(emu, keys):
    import threading

    from emu_helpers import login

    emu.generate_accounts(9000)
    sessions = [login(emu, keys) for _ in range(6)]
    counts: list[int] = []
    errors: list[BaseException] = []

    def work(s):
        try:
            pages = fetch_all(emu, s, "SELECT Id, Name, Owner.Name FROM Account ORDER BY Name")
            counts.append(len({r["Id"] for p in pages for r in p["records"]}))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and counts == [9000] * 6
    assert emu.stats.token_exchanges == 6


def test_serialisation_cache_hits_and_invalidation(emu, sf):
    emu.generate_accounts(3000)
    soql = "SELECT Id, Name, Owner.Name FROM Account"
    first = fetch_all(emu, sf, soql)
    misses = emu.cache.misses
    again = fetch_all(emu, sf, soql)
    assert [p["records"] for p in again] == [p["records"] for p in first]
    assert emu.cache.misses == misses and emu.cache.hits >= 2
    rec = first[0]["records"][0]
    sf.patch(api(emu, f"sobjects/Account/{rec['Id']}"), json={"Name": "Changed"})
    assert fetch_all(emu, sf, soql)[0]["records"][0]["Name"] == "Changed"
    owner_id = next(r["OwnerId"] for r in emu.records("Account") if r["Id"] == rec["Id"])
    emu.load("User", [{"Id": owner_id, "Name": "New Owner Name"}])  # a parent change, too
    assert fetch_all(emu, sf, soql)[0]["records"][0]["Owner"]["Name"] == "New Owner Name"
