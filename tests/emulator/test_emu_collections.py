"""sObject Collections: create, update, upsert, delete, the 200 limit, allOrNone, error codes."""

from __future__ import annotations

from emu_helpers import USER, api


def acc(**fields):
    return {"attributes": {"type": "Account"}, **fields}


def codes(results):
    return [r["errors"][0]["statusCode"] if r["errors"] else None for r in results]


def test_create_in_request_order_with_errors(emu, sf):
    body = {
        "allOrNone": False,
        "records": [
            acc(Name="One", External_Id__c="E1", AnnualRevenue=10),
            acc(Phone="555"),
            acc(Name="Three", Nope__c=1),
            acc(Name="Dup", External_Id__c="E1"),
            {"Name": "no type"},
            acc(Name="Bad ref", OwnerId="garbage"),
            acc(Name="Unknown ref", OwnerId="005000000000099AAA"),
            acc(Name="Read only", CreatedDate="2020-01-01T00:00:00Z"),
            acc(Name="Six"),
        ],
    }
    results = sf.post(api(emu, "composite/sobjects"), json=body).json()
    assert [r["success"] for r in results] == [
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert codes(results) == [
        None,
        "REQUIRED_FIELD_MISSING",
        "INVALID_FIELD",
        "DUPLICATE_VALUE",
        "INVALID_TYPE",
        "MALFORMED_ID",
        "INVALID_CROSS_REFERENCE_KEY",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        None,
    ]
    assert results[1]["errors"][0]["fields"] == ["Name"]
    assert results[1]["errors"][0]["message"] == "Required fields are missing: [Name]"
    assert results[0]["id"].startswith("001") and len(results[0]["id"]) == 18
    stored = {r["Name"]: r for r in emu.records("Account")}
    assert set(stored) == {"One", "Six"}
    assert stored["One"]["AnnualRevenue"] == 10.0 and stored["One"]["Active__c"] is False
    assert stored["One"]["OwnerId"] == emu.identity.users[USER].user_id
    q = sf.get(
        api(emu, "query"), params={"q": "SELECT Name FROM Account WHERE External_Id__c = 'E1'"}
    )
    assert q.json()["records"][0]["Name"] == "One"


def test_all_or_none_rolls_back(emu, sf):
    body = {"allOrNone": True, "records": [acc(Name="A"), acc(), acc(Name="C")]}
    results = sf.post(api(emu, "composite/sobjects"), json=body).json()
    assert codes(results) == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "REQUIRED_FIELD_MISSING",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert emu.records("Account") == []
    ok = sf.post(
        api(emu, "composite/sobjects"), json={"allOrNone": True, "records": [acc(Name="A")]}
    )
    assert ok.json()[0]["success"] is True


def test_duplicate_inside_one_request(emu, sf):
    body = {"records": [acc(Name="A", External_Id__c="X"), acc(Name="B", External_Id__c="X")]}
    results = sf.post(api(emu, "composite/sobjects"), json=body).json()
    assert codes(results) == [None, "DUPLICATE_VALUE"]


def test_more_than_200_records(emu, sf):
    resp = sf.post(api(emu, "composite/sobjects"), json={"records": [acc(Name="x")] * 201})
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    ids = ",".join(["001000000000001AAA"] * 201)
    assert sf.delete(api(emu, "composite/sobjects"), params={"ids": ids}).status_code == 400


def test_update(emu, sf):
    a, b = emu.load("Account", [{"Name": "A"}, {"Name": "B"}])
    sf.delete(api(emu, f"sobjects/Account/{b}"))
    body = {
        "records": [
            acc(Id=a, Name="A2"),
            acc(Id=b, Name="B2"),
            acc(Id="001000000000777AAA", Name="?"),
            acc(Id="bad", Name="?"),
            acc(Name="no id"),
            acc(Id=a, Nope="x"),
        ]
    }
    results = sf.patch(api(emu, "composite/sobjects"), json=body).json()
    assert codes(results) == [
        None,
        "ENTITY_IS_DELETED",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
        "MISSING_ARGUMENT",
        "INVALID_FIELD",
    ]
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert emu.records("Account")[0]["Name"] == "A2"


def test_contact_name_follows_first_and_last_name(emu, sf):
    (cid,) = emu.load("Contact", [{"FirstName": "Ada", "LastName": "Byron"}])
    sf.patch(
        api(emu, "composite/sobjects"),
        json={"records": [{"attributes": {"type": "Contact"}, "Id": cid, "LastName": "Lovelace"}]},
    )
    assert emu.records("Contact")[0]["Name"] == "Ada Lovelace"
    missing = sf.post(
        api(emu, "composite/sobjects"),
        json={"records": [{"attributes": {"type": "Contact"}, "FirstName": "No last name"}]},
    ).json()
    assert codes(missing) == ["REQUIRED_FIELD_MISSING"]


def test_upsert_by_external_id(emu, sf):
    emu.load("Account", [{"Name": "Old", "External_Id__c": "K1"}])
    body = {
        "records": [
            acc(Name="New name", External_Id__c="K1"),
            acc(Name="Fresh", External_Id__c="K2"),
            acc(Name="No key"),
        ]
    }
    results = sf.patch(api(emu, "composite/sobjects/Account/External_Id__c"), json=body).json()
    assert [r.get("created") for r in results[:2]] == [False, True]
    assert codes(results) == [None, None, "MISSING_ARGUMENT"]
    names = sorted(r["Name"] for r in emu.records("Account"))
    assert names == ["Fresh", "New name"]
    again = sf.patch(api(emu, "composite/sobjects/Account/External_Id__c"), json=body).json()
    assert [r.get("created") for r in again[:2]] == [False, False]
    assert len(emu.records("Account")) == 2
    bad = sf.patch(api(emu, "composite/sobjects/Account/Name"), json=body)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


def test_delete(emu, sf):
    a, b = emu.load("Account", [{"Name": "A"}, {"Name": "B"}])
    results = sf.delete(
        api(emu, "composite/sobjects"),
        params={"ids": f"{a},{b},{b},001000000000777AAA,xyz", "allOrNone": "false"},
    ).json()
    assert codes(results) == [
        None,
        None,
        "ENTITY_IS_DELETED",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
    ]
    assert [r["IsDeleted"] for r in emu.records("Account")] == [True, True]
    c, d = emu.load("Account", [{"Name": "C"}, {"Name": "D"}])
    rolled = sf.delete(
        api(emu, "composite/sobjects"), params={"ids": f"{c},{a}", "allOrNone": "true"}
    ).json()
    assert codes(rolled) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "ENTITY_IS_DELETED"]
    assert not emu.records("Account")[2]["IsDeleted"]


def test_retrieve(emu, sf):
    a, b = emu.load("Account", [{"Name": "A"}, {"Name": "B"}])
    got = sf.get(
        api(emu, "composite/sobjects/Account"),
        params={"ids": f"{a},001000000000777AAA", "fields": "Name"},
    ).json()
    assert got[0]["Name"] == "A" and got[1] is None


def test_malformed_json(emu, sf):
    resp = sf.post(
        api(emu, "composite/sobjects"), data="{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_lock_rows_refuses_the_next_records_and_writes_the_rest(emu, sf):
    emu.faults.lock_rows(2)
    body = {"allOrNone": False, "records": [acc(Name=n) for n in ("A", "B", "C")]}
    results = sf.post(api(emu, "composite/sobjects"), json=body).json()
    assert codes(results) == ["UNABLE_TO_LOCK_ROW", "UNABLE_TO_LOCK_ROW", None]
    assert results[0]["errors"][0]["message"].startswith("unable to obtain exclusive access")
    assert [r["Name"] for r in emu.records("Account")] == ["C"]
    again = sf.post(api(emu, "composite/sobjects"), json=body).json()
    assert codes(again) == [None, None, None]  # the locks were used up
    emu.faults.lock_rows(5)
    emu.faults.clear()
    assert codes(sf.post(api(emu, "composite/sobjects"), json=body).json()) == [None] * 3
