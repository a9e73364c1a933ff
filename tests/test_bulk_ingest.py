"""Bulk API 2.0 ingest against the emulator: split uploads, result files, failures, re-auth."""

from __future__ import annotations

import csv

import pytest

from airflow_provider_sfjwt.salesforce.bulk import BulkJobs, ingest_file
from airflow_provider_sfjwt.salesforce.errors import ApiError, TooManyFailedRecordsError
from airflow_provider_sfjwt.testing.wiring import CONN_ID

FAST = {"poll_interval": 0.01, "timeout": 30}


@pytest.fixture
def client(emu):
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    return SalesforceJWTHook(CONN_ID).get_conn()


def write_contacts(path, n: int, bad_every: int = 0) -> None:
    """Contacts keyed by External_Id__c; every ``bad_every``-th row lacks the required LastName."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["External_Id__c", "FirstName", "LastName", "Title"])
        for i in range(n):
            last = "" if bad_every and i % bad_every == 0 else f"Müller-{i}"
            writer.writerow(
                [f"T-{i:06d}", "Zoë", last, 'Head of "Ops",\nEMEA' if i % 5 else "Buyer"]
            )


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def contacts_in_salesforce(client) -> dict[str, str]:
    return {
        r["External_Id__c"]: r["LastName"]
        for r in client.query(
            "SELECT External_Id__c, LastName FROM Contact WHERE External_Id__c LIKE 'T-%'"
        )
    }


def test_upsert_saves_results_and_reports_partial_failure(client, tmp_path):
    source = tmp_path / "contacts.csv"
    write_contacts(source, 100, bad_every=10)
    summary = ingest_file(
        client, "Contact", "upsert", source, external_id_field="External_Id__c", **FAST
    )
    assert (summary["records"], summary["processed"], summary["failed"]) == (100, 100, 10)
    assert summary["succeeded"] == 90 and summary["unprocessed"] == 0
    assert summary["first_errors"] == {"REQUIRED_FIELD_MISSING": 10}
    failed = read_rows(summary["failed_path"])
    assert summary["failed_path"] == str(tmp_path / "contacts.failedResults.csv")
    assert len(failed) == 10 and all(
        r["sf__Error"].startswith("REQUIRED_FIELD_MISSING") for r in failed
    )
    assert {r["External_Id__c"] for r in failed} == {f"T-{i:06d}" for i in range(0, 100, 10)}
    succeeded = read_rows(summary["success_path"])
    assert len(succeeded) == 90 and all(
        r["sf__Id"] and r["sf__Created"] == "true" for r in succeeded
    )
    assert read_rows(summary["unprocessed_path"]) == []
    loaded = contacts_in_salesforce(client)
    assert len(loaded) == 90 and loaded["T-000001"] == "Müller-1"
    for job_id in summary["job_ids"]:  # deleted afterwards
        with pytest.raises(ApiError):
            BulkJobs(client).get("ingest", job_id)


def test_max_failed_records_fails_after_saving_the_report(client, tmp_path):
    source = tmp_path / "c.csv"
    write_contacts(source, 50, bad_every=5)  # 10 failures = 20 %
    with pytest.raises(TooManyFailedRecordsError) as err:
        ingest_file(
            client,
            "Contact",
            "upsert",
            source,
            external_id_field="External_Id__c",
            results_dir=tmp_path / "reports",
            max_failed_records="19%",
            **FAST,
        )
    failed_path = tmp_path / "reports" / "c.failedResults.csv"
    assert str(failed_path) in str(err.value)
    assert "REQUIRED_FIELD_MISSING x10" in str(err.value)
    assert len(read_rows(failed_path)) == 10
    ok = ingest_file(
        client,
        "Contact",
        "upsert",
        source,
        external_id_field="External_Id__c",
        results_dir=tmp_path / "reports",
        max_failed_records="20%",
        **FAST,
    )
    assert ok["failed"] == 10


def test_big_file_is_split_into_several_jobs_and_results_are_joined(client, tmp_path):
    source = tmp_path / "big.csv"
    write_contacts(source, 600, bad_every=100)
    size = source.stat().st_size
    summary = ingest_file(
        client,
        "Contact",
        "upsert",
        source,
        external_id_field="External_Id__c",
        max_upload_bytes=size // 4,
        **FAST,
    )
    assert len(summary["job_ids"]) >= 4
    assert (summary["records"], summary["processed"], summary["failed"]) == (600, 600, 6)
    succeeded = read_rows(summary["success_path"])
    assert len(succeeded) == 594
    assert len({r["External_Id__c"] for r in succeeded}) == 594
    assert len(contacts_in_salesforce(client)) == 594


def test_session_revoked_before_upload_resends_the_whole_part(emu, client, tmp_path):
    source = tmp_path / "c.csv"
    write_contacts(source, 300)
    client.auth.token()
    emu.faults.revoke_sessions(after_calls=1)  # the PUT of the CSV gets a 401
    summary = ingest_file(
        client, "Contact", "upsert", source, external_id_field="External_Id__c", **FAST
    )
    assert (summary["processed"], summary["failed"]) == (300, 0)
    assert len(contacts_in_salesforce(client)) == 300


def test_insert_then_delete_by_id(client, tmp_path):
    source = tmp_path / "ins.csv"
    write_contacts(source, 30)
    inserted = ingest_file(client, "Contact", "insert", source, **FAST)
    ids = [r["sf__Id"] for r in read_rows(inserted["success_path"])]
    assert len(ids) == 30
    delete_file = tmp_path / "del.csv"
    delete_file.write_text("Id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    deleted = ingest_file(client, "Contact", "delete", delete_file, **FAST)
    assert (deleted["processed"], deleted["failed"]) == (30, 0)
    assert contacts_in_salesforce(client) == {}


def test_bad_operation_is_refused_before_any_call(client, tmp_path):
    with pytest.raises(ValueError, match="operation must be one of insert, update, upsert"):
        ingest_file(client, "Contact", "merge", tmp_path / "none.csv")
    with pytest.raises(ValueError, match="upsert needs external_id_field"):
        ingest_file(client, "Contact", "upsert", tmp_path / "none.csv")


def test_header_only_file_loads_nothing_and_says_so(emu, client, tmp_path):
    source = tmp_path / "empty.csv"
    source.write_text("External_Id__c,LastName\n", encoding="utf-8")
    summary = ingest_file(client, "Contact", "upsert", source, external_id_field="External_Id__c")
    assert summary["job_ids"] == [] and summary["records"] == summary["processed"] == 0
    assert emu.stats.bulk_ingest_jobs == 0
