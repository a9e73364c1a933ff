"""Bulk API 2.0 query and ingest jobs over HTTP: states, CSV format, locators, result files."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
import zlib

import pytest
from emu_helpers import V, api

JOBS = "jobs/query"


def create_query(emu, sf, soql, operation="query", **extra):
    resp = sf.post(api(emu, JOBS), json={"operation": operation, "query": soql, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()


def poll(emu, sf, job_id, kind="query", times=10):
    states = []
    for _ in range(times):
        info = sf.get(api(emu, f"jobs/{kind}/{job_id}")).json()
        states.append(info["state"])
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info, states
    raise AssertionError(states)


def read_csv(text):
    return list(csv.reader(io.StringIO(text)))


def test_query_job_lifecycle_and_chunks(emu, sf):
    emu.generate_accounts(2500)
    job = create_query(
        emu, sf, "SELECT Id, Name, Owner.Name, AnnualRevenue, Active__c, Description FROM Account"
    )
    assert job["state"] == "UploadComplete" and job["id"].startswith("750")
    info, states = poll(emu, sf, job["id"])
    assert states == ["InProgress", "JobComplete"]
    assert info["numberRecordsProcessed"] == 2500 and info["jobType"] == "V2Query"
    rows, locator, chunks = [], None, []
    while locator != "null":
        params = {"maxRecords": 1000}
        if locator:
            params["locator"] = locator
        resp = sf.get(api(emu, f"{JOBS}/{job['id']}/results"), params=params)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
        locator = resp.headers["Sforce-Locator"]
        parsed = read_csv(resp.text)
        assert parsed[0] == [
            "Id",
            "Name",
            "Owner.Name",
            "AnnualRevenue",
            "Active__c",
            "Description",
        ]
        assert int(resp.headers["Sforce-NumberOfRecords"]) == len(parsed) - 1
        chunks.append((params.get("locator"), resp.text))
        rows.extend(parsed[1:])
    assert len(chunks) == 3 and len(rows) == 2500
    assert len({r[0] for r in rows}) == 2500
    assert {r[4] for r in rows} == {"true", "false"}
    assert all(r[2] for r in rows)  # Owner.Name filled
    assert any("\n" in r[5] for r in rows) and any('"' in r[5] for r in rows)
    # a chunk can be fetched again with its locator (retry after a failure)
    again = sf.get(
        api(emu, f"{JOBS}/{job['id']}/results"),
        params={"maxRecords": 1000, "locator": chunks[1][0]},
    )
    assert again.text == chunks[1][1]
    assert emu.stats.records_served >= 3500


def test_csv_format_exactly(emu, sf):
    emu.load(
        "Account",
        [
            {
                "Name": 'A "quoted", name\nwith newline',
                "AnnualRevenue": 1.5,
                "NumberOfEmployees": 7,
                "Active__c": True,
                "CreatedDate": "2026-01-31T12:00:00.000+0000",
            }
        ],
    )
    emu.load("Account", [{"Name": "Nulls"}])
    job = create_query(
        emu,
        sf,
        "SELECT Name, AnnualRevenue, NumberOfEmployees, Active__c, Industry, CreatedDate FROM Account ORDER BY Name",
    )
    poll(emu, sf, job["id"])
    text = sf.get(api(emu, f"{JOBS}/{job['id']}/results")).text
    assert text == (
        '"Name","AnnualRevenue","NumberOfEmployees","Active__c","Industry","CreatedDate"\n'
        '"A ""quoted"", name\nwith newline","1.5","7","true",,"2026-01-31T12:00:00.000Z"\n'
        '"Nulls",,,"false",,"' + emu.records("Account")[1]["CreatedDate"][:23] + 'Z"\n'
    )


def test_large_chunk_is_streamed_and_delimiters(emu, sf):
    emu.generate_accounts(45_000)
    job = create_query(
        emu, sf, "SELECT Id, Name FROM Account", columnDelimiter="PIPE", lineEnding="CRLF"
    )
    poll(emu, sf, job["id"])
    resp = sf.get(api(emu, f"{JOBS}/{job['id']}/results"), params={"maxRecords": 50_000})
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert resp.headers["Sforce-Locator"] == "null"
    lines = resp.text.split("\r\n")
    assert lines[0] == '"Id"|"Name"' and len(lines) == 45_002 and lines[-1] == ""


def test_a_gzip_result_chunk_is_one_member_compressed_once(emu, sf):
    """A streamed chunk asked for with gzip is a single gzip member holding the same bytes as the
    plain answer, and a second read sends the compressed blocks kept from the first."""
    emu.generate_accounts(45_000)
    job = create_query(emu, sf, "SELECT Id, Name FROM Account")
    poll(emu, sf, job["id"])
    url = api(emu, f"{JOBS}/{job['id']}/results")
    params = {"maxRecords": 50_000}
    plain = sf.get(url, params=params, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    emu.gzip = True
    bodies, sizes = [], []
    for _ in range(2):
        resp = sf.get(url, params=params, headers={"Accept-Encoding": "gzip"}, stream=True)
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        wire = resp.raw.read(decode_content=False)
        inflate = zlib.decompressobj(31)
        bodies.append(inflate.decompress(wire))
        assert inflate.eof and inflate.unused_data == b""  # one member, nothing after it
        assert gzip.decompress(wire) == bodies[-1]
        sizes.append(emu.cache.size)
    assert bodies[0] == bodies[1] == plain.content
    assert len(wire) < len(plain.content) // 3
    assert sizes[1] == sizes[0]  # the second read compressed nothing anew
    assert emu.cache.size > len(plain.content)  # the plain blocks and their compressed form


def test_query_all_job_and_result_pages(emu, sf):
    ids = emu.load("Account", [{"Name": f"A{i}"} for i in range(7)])
    sf.delete(api(emu, f"sobjects/Account/{ids[0]}"))
    job = create_query(emu, sf, "SELECT Id, IsDeleted FROM Account", operation="queryAll")
    poll(emu, sf, job["id"])
    emu.bulk.default_max_records = 1  # the server's chunk size: seven result URLs
    first = sf.get(api(emu, f"{JOBS}/{job['id']}/resultPages")).json()
    # Salesforce's documented shape: at most five result URLs, each a /results URL with a locator
    assert set(first) == {"resultPages", "nextRecordsUrl", "done"} and first["done"] is False
    assert len(first["resultPages"]) == 5
    base = f"/services/data/v{V}/{JOBS}/{job['id']}"
    assert all(set(p) == {"resultUrl"} for p in first["resultPages"])
    assert all(p["resultUrl"].startswith(f"{base}/results?locator=") for p in first["resultPages"])
    assert first["nextRecordsUrl"].startswith(f"{base}/resultPages?")
    second = sf.get(emu.url + first["nextRecordsUrl"]).json()
    assert len(second["resultPages"]) == 2
    assert second["done"] is True and second["nextRecordsUrl"] is None
    rows = []
    for page in first["resultPages"] + second["resultPages"]:
        chunk = sf.get(emu.url + page["resultUrl"])
        assert chunk.headers["Sforce-NumberOfRecords"] == "1"
        rows += read_csv(chunk.text)[1:]
    assert sorted(r[0] for r in rows) == sorted(ids) and {r[1] for r in rows} == {"true", "false"}


def test_result_pages_needs_api_58(emu, sf):
    emu.generate_accounts(3)
    old = f"{emu.url}/services/data/v57.0/{JOBS}"
    job = sf.post(old, json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    for _ in range(emu.bulk_poll_transitions):
        sf.get(f"{old}/{job['id']}")
    assert sf.get(f"{old}/{job['id']}/results").headers["Sforce-NumberOfRecords"] == "3"
    missing = sf.get(f"{old}/{job['id']}/resultPages")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"


def test_query_job_errors(emu, sf):
    bad = sf.post(api(emu, JOBS), json={"operation": "query", "query": "SELECT Nope FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDJOB"
    assert "INVALID_FIELD" in bad.json()[0]["message"]
    assert (
        sf.post(
            api(emu, JOBS), json={"operation": "insert", "query": "SELECT Id FROM Account"}
        ).status_code
        == 400
    )
    job = create_query(emu, sf, "SELECT Id FROM Account")
    early = sf.get(api(emu, f"{JOBS}/{job['id']}/results"))
    assert early.status_code == 409  # not complete yet
    poll(emu, sf, job["id"])
    other = sf.get(f"{emu.url}/services/data/v62.0/{JOBS}/{job['id']}/results")
    assert other.status_code == 409  # results must be read with the job's API version
    assert (
        sf.get(api(emu, f"{JOBS}/{job['id']}/results"), params={"locator": "!!"}).status_code == 400
    )
    assert sf.get(api(emu, f"{JOBS}/750000000000000AAA")).status_code == 404


def test_abort_delete_and_list(emu, sf):
    job = create_query(emu, sf, "SELECT Id FROM Account")
    aborted = sf.patch(api(emu, f"{JOBS}/{job['id']}"), json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    assert sf.get(api(emu, f"{JOBS}/{job['id']}")).json()["state"] == "Aborted"
    assert sf.patch(api(emu, f"{JOBS}/{job['id']}"), json={"state": "Aborted"}).status_code == 409
    listed = sf.get(api(emu, JOBS)).json()
    assert [j["id"] for j in listed["records"]] == [job["id"]] and listed["done"] is True
    assert sf.delete(api(emu, f"{JOBS}/{job['id']}")).status_code == 204
    assert sf.get(api(emu, f"{JOBS}/{job['id']}")).status_code == 404


def test_a_query_job_is_deleted_only_once_terminated(emu, sf):
    """Salesforce's "Delete a Query Job": 400 ``API_ERROR`` until the job is JobComplete,
    Aborted or Failed; the job stays."""
    job = create_query(emu, sf, "SELECT Id FROM Account")
    refused = sf.delete(api(emu, f"{JOBS}/{job['id']}"))
    assert refused.status_code == 400
    assert refused.json() == [
        {
            "errorCode": "API_ERROR",
            "message": "Error encountered when deleting the job because the job is not terminated",
        }
    ]
    assert sf.get(api(emu, f"{JOBS}/{job['id']}")).status_code == 200
    poll(emu, sf, job["id"])
    assert sf.delete(api(emu, f"{JOBS}/{job['id']}")).status_code == 204


def test_an_open_ingest_job_is_not_deleted(emu, sf):
    """Salesforce's "Delete a Job": only UploadComplete, JobComplete, Aborted or Failed."""
    job = sf.post(
        api(emu, "jobs/ingest"),
        json={"object": "Account", "operation": "insert", "contentType": "CSV"},
    ).json()
    refused = sf.delete(api(emu, f"jobs/ingest/{job['id']}"))
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "API_ERROR"
    sf.patch(api(emu, f"jobs/ingest/{job['id']}"), json={"state": "Aborted"})
    assert sf.delete(api(emu, f"jobs/ingest/{job['id']}")).status_code == 204


def test_deleting_a_query_job_writes_nothing_to_disk(emu, sf, tmp_path, monkeypatch):
    """A query job has no files; its DELETE (which a client may send while the emulator stops)
    must not make the ingest files' temporary directory, which would then outlive the emulator."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    job = create_query(emu, sf, "SELECT Id FROM Account")
    poll(emu, sf, job["id"])
    assert sf.delete(api(emu, f"{JOBS}/{job['id']}")).status_code == 204
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- ingest


def ingest(emu, sf, operation, data, obj="Account", **extra):
    job = sf.post(
        api(emu, "jobs/ingest"),
        json={
            "object": obj,
            "operation": operation,
            "contentType": "CSV",
            "lineEnding": "LF",
            **extra,
        },
    )
    assert job.status_code == 200, job.text
    job = job.json()
    assert (
        job["state"] == "Open"
        and job["contentUrl"] == f"services/data/v{V}/jobs/ingest/{job['id']}/batches"
    )
    put = sf.put(emu.url + "/" + job["contentUrl"], data=data, headers={"Content-Type": "text/csv"})
    assert put.status_code == 201, put.text
    closed = sf.patch(api(emu, f"jobs/ingest/{job['id']}"), json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    info, _ = poll(emu, sf, job["id"], kind="ingest", times=200)
    return info


def results(emu, sf, job_id, which):
    return read_csv(sf.get(api(emu, f"jobs/ingest/{job_id}/{which}")).text)


def test_ingest_insert_with_failures(emu, sf):
    data = (
        "Name,AnnualRevenue,Active__c,External_Id__c,Description\n"
        'Good One,12.5,true,X1,"multi\nline, ""quoted"""\n'
        ",5,false,X2,missing name\n"
        "Bad Number,abc,true,X3,\n"
        "Dup,1,true,X1,\n"
        "Nulls,#N/A,,X5,\n"
    )
    info = ingest(emu, sf, "insert", data.encode())
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 5 and info["numberRecordsFailed"] == 3
    ok = results(emu, sf, info["id"], "successfulResults")
    assert ok[0] == [
        "sf__Id",
        "sf__Created",
        "Name",
        "AnnualRevenue",
        "Active__c",
        "External_Id__c",
        "Description",
    ]
    assert [r[2] for r in ok[1:]] == ["Good One", "Nulls"] and ok[1][1] == "true"
    assert ok[1][6] == 'multi\nline, "quoted"'
    failed = results(emu, sf, info["id"], "failedResults")
    assert failed[0][:2] == ["sf__Id", "sf__Error"]
    errors = [r[1] for r in failed[1:]]
    assert errors[0] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    assert errors[1].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")
    assert errors[2].startswith("DUPLICATE_VALUE:duplicate value found: External_Id__c")
    assert results(emu, sf, info["id"], "unprocessedrecords") == [
        ["Name", "AnnualRevenue", "Active__c", "External_Id__c", "Description"]
    ]
    stored = {r["Name"]: r for r in emu.records("Account")}
    assert stored["Good One"]["AnnualRevenue"] == 12.5 and stored["Good One"]["Active__c"] is True
    assert stored["Nulls"]["AnnualRevenue"] is None


def test_ingest_update_upsert_delete_hard_delete(emu, sf):
    a, b, c = emu.load(
        "Account", [{"Name": "A", "External_Id__c": "K1"}, {"Name": "B"}, {"Name": "C"}]
    )
    upd = ingest(emu, sf, "update", f"Id,Name\n{a},A2\n001000000000777AAA,X\n".encode())
    assert upd["numberRecordsFailed"] == 1
    assert results(emu, sf, upd["id"], "failedResults")[1][1].startswith(
        "INVALID_CROSS_REFERENCE_KEY"
    )
    ups = ingest(
        emu,
        sf,
        "upsert",
        b"External_Id__c,Name\nK1,A3\nK9,New\n",
        externalIdFieldName="External_Id__c",
    )
    ok = results(emu, sf, ups["id"], "successfulResults")
    assert [(r[1], r[3]) for r in ok[1:]] == [("false", "A3"), ("true", "New")]
    dele = ingest(emu, sf, "delete", f"Id\n{b}\n".encode())
    hard = ingest(emu, sf, "hardDelete", f"Id\n{c}\n".encode())
    assert dele["numberRecordsFailed"] == 0 and hard["numberRecordsFailed"] == 0
    recs = {r["Name"]: r for r in emu.records("Account")}
    assert recs["A3"]["External_Id__c"] == "K1" and recs["B"]["IsDeleted"] is True
    assert "C" not in recs and "New" in recs
    bad = sf.post(
        api(emu, "jobs/ingest"),
        json={"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"},
    )
    assert bad.status_code == 400


def test_ingest_lookup_by_parent_external_id_and_gzip(emu, sf):
    emu.load("Account", [{"Name": "Parent", "External_Id__c": "P1"}])
    data = gzip.compress(b"LastName,Account.External_Id__c\nKid,P1\nOrphan,P404\n")
    job = sf.post(api(emu, "jobs/ingest"), json={"object": "Contact", "operation": "insert"}).json()
    put = sf.put(
        api(emu, f"jobs/ingest/{job['id']}/batches"),
        data=data,
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert put.status_code == 201
    sf.patch(api(emu, f"jobs/ingest/{job['id']}"), json={"state": "UploadComplete"})
    info, _ = poll(emu, sf, job["id"], kind="ingest", times=200)
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 1
    kid = emu.records("Contact")[0]
    assert kid["AccountId"] == emu.records("Account")[0]["Id"]


def test_ingest_unknown_column_fails_job(emu, sf):
    info = ingest(emu, sf, "insert", b"Name,Bogus__c\nA,1\n")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert len(results(emu, sf, info["id"], "unprocessedrecords")) == 2


def test_ingest_upload_rules(emu, sf):
    job = sf.post(api(emu, "jobs/ingest"), json={"object": "Account", "operation": "insert"}).json()
    url = api(emu, f"jobs/ingest/{job['id']}/batches")
    assert sf.put(url, data=b"Name\nA\n", headers={"Content-Type": "text/csv"}).status_code == 201
    second = sf.put(url, data=b"Name\nB\n", headers={"Content-Type": "text/csv"})
    assert second.status_code == 409
    emu.ingest_max_bytes = 100
    job2 = sf.post(
        api(emu, "jobs/ingest"), json={"object": "Account", "operation": "insert"}
    ).json()
    big = sf.put(
        api(emu, f"jobs/ingest/{job2['id']}/batches"),
        data=b"Name\n" + b"x" * 500,
        headers={"Content-Type": "text/csv"},
    )
    assert big.status_code == 413
    chunked = sf.put(
        api(emu, f"jobs/ingest/{job2['id']}/batches"),
        data=iter([b"Name\n", b"y" * 300]),
        headers={"Content-Type": "text/csv"},
    )
    assert chunked.status_code == 413
    bad = sf.post(api(emu, "jobs/ingest"), json={"object": "Widget__c", "operation": "insert"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDENTITY"


def test_ingest_chunked_upload_and_abort(emu, sf):
    job = sf.post(api(emu, "jobs/ingest"), json={"object": "Account", "operation": "insert"}).json()
    body = iter([b"Name\n", b"A\n", b"B\n"])  # requests sends a generator with chunked encoding
    assert sf.put(api(emu, f"jobs/ingest/{job['id']}/batches"), data=body).status_code == 201
    aborted = sf.patch(api(emu, f"jobs/ingest/{job['id']}"), json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    assert results(emu, sf, job["id"], "unprocessedrecords") == [["Name"], ["A"], ["B"]]
    assert emu.records("Account") == []


@pytest.mark.parametrize("fault", ["fail", "abort"])
def test_bulk_job_faults(emu, sf, fault):
    if fault == "fail":
        emu.faults.fail_bulk_job(message="InvalidBatch : boom")
    else:
        emu.faults.abort_bulk_job()
    job = create_query(emu, sf, "SELECT Id FROM Account")
    info, _ = poll(emu, sf, job["id"])
    assert info["state"] == ("Failed" if fault == "fail" else "Aborted")
    if fault == "fail":
        assert info["errorMessage"] == "InvalidBatch : boom"
    # a fault for a specific existing ingest job
    ingest_job = sf.post(
        api(emu, "jobs/ingest"), json={"object": "Account", "operation": "insert"}
    ).json()
    getattr(emu.faults, f"{fault}_bulk_job")(ingest_job["id"])
    sf.put(api(emu, f"jobs/ingest/{ingest_job['id']}/batches"), data=b"Name\nA\n")
    sf.patch(api(emu, f"jobs/ingest/{ingest_job['id']}"), json={"state": "UploadComplete"})
    info, _ = poll(emu, sf, ingest_job["id"], kind="ingest")
    assert info["state"] == ("Failed" if fault == "fail" else "Aborted")
    assert results(emu, sf, ingest_job["id"], "unprocessedrecords") == [["Name"], ["A"]]
    assert emu.records("Account") == []
