"""Bulk API 2.0 query jobs against the emulator: streamed results, failures, resumption."""

from __future__ import annotations

import csv

import pytest

from airflow_provider_sfjwt.salesforce.bulk import (
    BulkJobs,
    download_results,
    query_to_file,
    wait_for_deletions,
)
from airflow_provider_sfjwt.salesforce.errors import ApiError, BulkJobError, BulkJobTimeoutError
from airflow_provider_sfjwt.testing.wiring import CONN_ID

SOQL = "SELECT Id, Name, AnnualRevenue, NumberOfEmployees, Active__c, CreatedDate, Owner.Name FROM Account"
FAST = {"poll_interval": 0.01, "timeout": 30}


@pytest.fixture
def client(emu):
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    return SalesforceJWTHook(CONN_ID).get_conn()


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_csv_streams_every_chunk_once_with_one_header(emu, client, tmp_path):
    emu.generate_accounts(2_345)
    jobs: list[str] = []
    result = query_to_file(
        client, SOQL, tmp_path / "a.csv", max_records=500, on_job=jobs.append, **FAST
    )
    header, rows = read_csv(tmp_path / "a.csv")
    assert result["rows"] == len(rows) == 2_345
    assert result["job_id"] == jobs[0]
    assert header == result["columns"] == [
        "Id", "Name", "AnnualRevenue", "NumberOfEmployees", "Active__c", "CreatedDate", "Owner.Name"
    ]  # fmt: skip
    assert len({r[0] for r in rows}) == 2_345
    rest_ids = {r["Id"] for r in client.query("SELECT Id FROM Account")}
    assert {r[0] for r in rows} == rest_ids
    wait_for_deletions()  # the job is deleted in the background once the file is published
    with pytest.raises(ApiError) as gone:
        BulkJobs(client).get("query", jobs[0])
    assert gone.value.status == 404


def test_keep_job_leaves_the_job_in_salesforce(emu, client, tmp_path):
    emu.generate_accounts(10)
    result = query_to_file(
        client, "SELECT Id FROM Account", tmp_path / "k.csv", keep_job=True, **FAST
    )
    assert BulkJobs(client).get("query", result["job_id"])["state"] == "JobComplete"


def test_jsonl_and_parquet_are_typed_from_describe(emu, client, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    emu.generate_accounts(1_200)
    jl = query_to_file(client, SOQL, tmp_path / "a.jsonl", "jsonl", max_records=400, **FAST)
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    assert jl["rows"] == len(lines) == 1_200
    first = json.loads(lines[0])
    assert set(first) == set(jl["columns"])
    assert isinstance(first["Active__c"], bool)
    assert first["NumberOfEmployees"] is None or isinstance(first["NumberOfEmployees"], int)

    pa = query_to_file(client, SOQL, tmp_path / "a.parquet", "parquet", max_records=400, **FAST)
    table = pq.read_table(tmp_path / "a.parquet")
    assert pa["rows"] == table.num_rows == 1_200
    types = {f.name: str(f.type) for f in table.schema}
    assert types["AnnualRevenue"] == "double"
    assert types["NumberOfEmployees"] == "int64"
    assert types["Active__c"] == "bool"
    assert types["CreatedDate"].startswith("timestamp")
    assert types["Owner.Name"] == "string"


def test_failed_job_names_the_job_and_salesforces_message(emu, client, tmp_path):
    emu.faults.fail_bulk_job(message="InvalidBatch : Failed to process query: INVALID_FIELD")
    jobs: list[str] = []
    with pytest.raises(BulkJobError) as err:
        query_to_file(client, SOQL, tmp_path / "f.csv", on_job=jobs.append, **FAST)
    text = str(err.value)
    assert f"query job {jobs[0]} ended Failed" in text
    assert "InvalidBatch : Failed to process query: INVALID_FIELD" in text
    assert "What to do" in text
    assert not (tmp_path / "f.csv").exists()


def test_aborted_job_is_reported_with_its_id(emu, client, tmp_path):
    emu.faults.abort_bulk_job()
    jobs: list[str] = []
    with pytest.raises(BulkJobError) as err:
        query_to_file(client, SOQL, tmp_path / "x.csv", on_job=jobs.append, **FAST)
    assert err.value.state == "Aborted" and err.value.job_id == jobs[0]
    assert f"query job {jobs[0]} ended Aborted" in str(err.value)


def test_session_revoked_between_locator_pages_keeps_the_exact_count(emu, client, tmp_path):
    emu.generate_accounts(5_000)
    job_id = BulkJobs(client).create_query("SELECT Id, Name FROM Account")
    BulkJobs(client, poll_interval=0.01).wait("query", job_id, timeout=30)
    exchanges = emu.stats.token_exchanges
    emu.faults.revoke_sessions(after_calls=2)  # before the 3rd of 5 pages
    result = download_results(client, job_id, tmp_path / "r.csv", max_records=1_000)
    _, rows = read_csv(tmp_path / "r.csv")
    assert result["rows"] == len(rows) == 5_000
    assert len({r[0] for r in rows}) == 5_000
    assert emu.stats.token_exchanges == exchanges + 1
    assert emu.stats.statuses[401] == 1


def test_chunk_cut_mid_body_is_fetched_again_without_loss_or_duplicates(emu, client, tmp_path):
    """Cuts land after 1.2 MB, past the first 1 MiB block already written: the re-fetched
    chunk must skip exactly the bytes already delivered."""
    emu.generate_accounts(45_000)
    job_id = BulkJobs(client).create_query(
        "SELECT Id, Name, Description, BillingCity, Industry, Owner.Name FROM Account"
    )
    BulkJobs(client, poll_interval=0.01).wait("query", job_id, timeout=30)
    clean = download_results(client, job_id, tmp_path / "clean.csv", max_records=15_000)
    assert (tmp_path / "clean.csv").stat().st_size > 3 * 1_300_000  # every chunk exceeds the cut
    prefix = f"/services/data/v{client.api_version}/jobs/query/{job_id}/results"
    emu.faults.reset_connection(prefix, count=2, after_bytes=1_200_000)
    injected = emu.stats.faults_injected
    again = download_results(client, job_id, tmp_path / "again.csv", max_records=15_000)
    assert emu.stats.faults_injected == injected + 2
    assert again["rows"] == clean["rows"] == 45_000
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_timeout_aborts_the_job(emu, client, tmp_path):
    emu.generate_accounts(10)
    jobs: list[str] = []
    with pytest.raises(BulkJobTimeoutError) as err:
        query_to_file(
            client, SOQL, tmp_path / "t.csv", poll_interval=0.01, timeout=0, on_job=jobs.append
        )
    assert "timeout" in str(err.value)
    assert BulkJobs(client).get("query", jobs[0])["state"] == "Aborted"


def test_query_all_includes_deleted_rows(emu, client, tmp_path):
    emu.generate_accounts(20)
    victim = next(client.query("SELECT Id FROM Account LIMIT 1"))["Id"]
    client.request("DELETE", f"sobjects/Account/{victim}")
    live = query_to_file(client, "SELECT Id FROM Account", tmp_path / "live.csv", **FAST)
    every = query_to_file(
        client, "SELECT Id FROM Account", tmp_path / "all.csv", include_deleted=True, **FAST
    )
    assert (live["rows"], every["rows"]) == (19, 20)
