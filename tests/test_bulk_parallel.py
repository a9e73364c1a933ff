"""Bulk query results downloaded side by side (``resultPages``): the same file as one chunk after
the other, cut chunks fetched again, one re-login for every thread, the job's API version, the
locator loop where ``resultPages`` is missing, and progress lines with the job's totals."""

from __future__ import annotations

import csv
import json
import logging
import time

import pytest

from airflow_provider_sfjwt.salesforce.bulk import (
    BulkJobs,
    check_parallel_downloads,
    download_results,
    query_to_file,
)
from airflow_provider_sfjwt.salesforce.bulk.parallel import first_result_pages, iter_result_parts
from airflow_provider_sfjwt.salesforce.bulk_csv import CsvJoiner, CsvResultStream
from airflow_provider_sfjwt.salesforce.errors import ApiError, SalesforceError
from airflow_provider_sfjwt.testing.wiring import CONN_ID
from tests.polling import wait_for
from tests.test_client_rest import make_client

WIDE = "SELECT Id, Name, Description, BillingCity, Industry, AnnualRevenue, Owner.Name FROM Account"
FAST = {"poll_interval": 0.01, "timeout": 30}


@pytest.fixture
def client(emu):
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    return SalesforceJWTHook(CONN_ID).get_conn()


def read_rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))[1:]


def finished_job(client, soql: str = WIDE) -> tuple[str, dict]:
    jobs = BulkJobs(client, poll_interval=0.01)
    job_id = jobs.create_query(soql)
    return job_id, jobs.wait("query", job_id, timeout=30)


def gets(emu, job_id: str, resource: str) -> int:
    return emu.stats.requests[f"GET /services/data/v66.0/jobs/query/{job_id}/{resource}"]


@pytest.fixture
def chunked(emu):
    """23,456 Accounts served in chunks of 2,000: twelve result URLs, three resultPages answers."""
    emu.generate_accounts(23_456)
    emu.bulk.default_max_records = 2_000
    return emu


def test_csv_is_byte_identical_to_the_sequential_download(chunked, client, tmp_path):
    job_id, info = finished_job(client)
    one = download_results(client, job_id, tmp_path / "one.csv", parallel_downloads=1, job=info)
    assert gets(chunked, job_id, "resultPages") == 0  # one after the other: the locator loop
    assert gets(chunked, job_id, "results") == 12
    five = download_results(client, job_id, tmp_path / "five.csv", job=info)
    assert gets(chunked, job_id, "resultPages") == 3  # five URLs per answer, nextRecordsUrl twice
    assert gets(chunked, job_id, "results") == 24
    assert one["rows"] == five["rows"] == 23_456
    assert one["columns"] == five["columns"]
    assert (tmp_path / "five.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def test_jsonl_and_parquet_match_the_sequential_conversion(chunked, client, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    job_id, info = finished_job(client)
    for fmt in ("jsonl", "parquet"):
        kw = {"format": fmt, "soql": WIDE, "job": info}
        one = download_results(client, job_id, tmp_path / f"one.{fmt}", parallel_downloads=1, **kw)
        three = download_results(
            client, job_id, tmp_path / f"three.{fmt}", parallel_downloads=3, **kw
        )
        assert one["rows"] == three["rows"] == 23_456
    assert (tmp_path / "three.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert pq.read_table(tmp_path / "three.parquet").equals(pq.read_table(tmp_path / "one.parquet"))
    assert json.loads((tmp_path / "one.jsonl").read_text().splitlines()[0])["Id"]


def test_chunks_cut_mid_body_are_fetched_again_by_their_result_url(emu, client, tmp_path):
    """Cuts land after 1.2 MB, past the first 1 MiB block already handed on: the chunk fetched
    again from its resultUrl must skip exactly the bytes already delivered."""
    emu.generate_accounts(45_000)
    emu.bulk.default_max_records = 15_000
    job_id, info = finished_job(client)
    clean = download_results(client, job_id, tmp_path / "clean.csv", parallel_downloads=1, job=info)
    assert (tmp_path / "clean.csv").stat().st_size > 3 * 1_300_000  # every chunk exceeds the cut
    emu.faults.reset_connection(
        f"/services/data/v66.0/jobs/query/{job_id}/results", count=2, after_bytes=1_200_000
    )
    injected = emu.stats.faults_injected
    again = download_results(client, job_id, tmp_path / "again.csv", job=info)
    assert emu.stats.faults_injected == injected + 2
    assert gets(emu, job_id, "results") == 3 + 3 + 2  # two chunks fetched twice
    assert again["rows"] == clean["rows"] == 45_000
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_a_revoked_session_costs_one_exchange_for_all_threads(chunked, client, tmp_path):
    job_id, info = finished_job(client)
    exchanges = chunked.stats.token_exchanges
    chunked.faults.revoke_sessions(after_calls=3)  # resultPages and two chunks, then 401s
    result = download_results(client, job_id, tmp_path / "r.csv", job=info)
    ids = [row[0] for row in read_rows(tmp_path / "r.csv")]
    assert result["rows"] == len(ids) == len(set(ids)) == 23_456
    assert chunked.stats.token_exchanges == exchanges + 1
    assert chunked.stats.statuses[401] >= 1


def test_results_are_read_with_the_jobs_api_version(chunked, client, tmp_path):
    """A job made under v66.0 read by a connection on v62.0: Salesforce answers 409 to results
    requested with another version, so the job's own version is used."""
    job_id, info = finished_job(client)
    older = make_client(chunked, api_version="62.0")
    result = download_results(older, job_id, tmp_path / "v.csv", job=info)
    assert result["rows"] == 23_456
    assert gets(chunked, job_id, "resultPages") == 3
    assert not any(path.startswith("/services/data/v62.0/jobs") for path in chunked.stats.paths)
    with pytest.raises(ApiError) as mismatch:  # without the job's version: the 409 is reported
        download_results(older, job_id, tmp_path / "x.csv", job={"state": "JobComplete"})
    assert mismatch.value.status == 409 and "API version 66.0" in str(mismatch.value)
    assert not (tmp_path / "x.csv").exists()


def test_jobs_before_api_58_are_read_with_the_locator_loop(emu, tmp_path):
    emu.generate_accounts(5_000)
    emu.bulk.default_max_records = 2_000
    v57 = make_client(emu, api_version="57.0")
    result = query_to_file(v57, "SELECT Id, Name FROM Account", tmp_path / "a.csv", **FAST)
    assert result["rows"] == 5_000
    assert not any(path.endswith("/resultPages") for path in emu.stats.paths)
    assert (
        emu.stats.requests[f"GET /services/data/v57.0/jobs/query/{result['job_id']}/results"] == 3
    )


def test_a_missing_result_pages_resource_falls_back_to_the_locator_loop(chunked, client, tmp_path):
    job_id, info = finished_job(client)
    pages = f"/services/data/v66.0/jobs/query/{job_id}/resultPages"
    chunked.faults.fail(pages, 404, error_code="NOT_FOUND")
    result = download_results(client, job_id, tmp_path / "f.csv", job=info)
    assert result["rows"] == 23_456 and gets(chunked, job_id, "results") == 12
    assert chunked.stats.requests[f"GET {pages}"] == 1


def hostile_pages(emu, job_id: str, answer: dict) -> None:
    pages = f"/services/data/v66.0/jobs/query/{job_id}/resultPages"
    emu.faults.fail(pages, 200, count=5, body=json.dumps(answer))


def test_a_result_url_of_another_resource_is_refused(chunked, client, tmp_path):
    job_id, info = finished_job(client)
    hostile_pages(
        chunked,
        job_id,
        {"resultPages": [{"resultUrl": "/services/data/v66.0/sobjects/User"}], "done": True},
    )
    with pytest.raises(SalesforceError, match="not this job's results"):
        download_results(client, job_id, tmp_path / "h.csv", job=info)
    assert "/services/data/v66.0/sobjects/User" not in chunked.stats.paths
    assert not (tmp_path / "h.csv").exists()


def test_a_repeating_next_records_url_is_refused(chunked, client, tmp_path):
    job_id, info = finished_job(client)
    base = f"/services/data/v66.0/jobs/query/{job_id}"
    hostile_pages(
        chunked,
        job_id,
        {
            "resultPages": [],
            "nextRecordsUrl": f"{base}/resultPages?locator=LOOP",
            "done": False,
        },
    )
    with pytest.raises(SalesforceError, match="same nextRecordsUrl twice"):
        download_results(client, job_id, tmp_path / "l.csv", job=info)


def test_the_documented_next_record_url_spelling_is_followed(chunked, client, tmp_path):
    """Salesforce's page for resultPages names the continuation ``nextRecordUrl`` in its field
    table and ``nextRecordsUrl`` in its example: either one is followed to the same file."""
    job_id, info = finished_job(client)
    sequential = download_results(
        client, job_id, tmp_path / "s.csv", parallel_downloads=1, job=info
    )
    first = dict(client.get_json(f"/services/data/v66.0/jobs/query/{job_id}/resultPages"))
    first["nextRecordUrl"] = first.pop("nextRecordsUrl")
    assert first["done"] is False and first["nextRecordUrl"]
    chunked.faults.fail(
        f"/services/data/v66.0/jobs/query/{job_id}/resultPages", 200, body=json.dumps(first)
    )
    result = download_results(client, job_id, tmp_path / "p.csv", job=info)
    assert result["rows"] == sequential["rows"] == 23_456
    assert gets(chunked, job_id, "resultPages") == 1 + 3  # ours above, then the three answers
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()


def test_no_more_than_parallel_downloads_chunks_are_in_flight(chunked, client):
    """While the writer holds chunk 0 unread, three chunks are requested, not all twelve; the
    next one starts only once the writer has taken one."""
    job_id, info = finished_job(client)
    first = first_result_pages(client, job_id, "66.0")
    assert first is not None
    parts = iter_result_parts(client, job_id, first, 3)
    try:
        held = next(parts)
        assert wait_for(lambda: gets(chunked, job_id, "results") >= 3, 60)
        time.sleep(0.5)  # room for a downloader that does not wait for the writer
        assert gets(chunked, job_id, "results") == 3
        assert held.records == 2_000 and len(b"".join(held.iter_bytes())) > 0
        following = next(parts)
        assert following.number == 1
        assert wait_for(lambda: gets(chunked, job_id, "results") >= 4, 60)
        time.sleep(0.2)
        assert gets(chunked, job_id, "results") == 4
    finally:
        parts.close()


MEASURE_DOWNLOAD = """
import json, sys, tracemalloc
from airflow_provider_sfjwt.salesforce.bulk import BulkJobs, download_results
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.settings import parse_connection
conn = json.loads(sys.argv[1])
settings = parse_connection(host=conn["host"], login=conn["login"], password=None, extra=conn["extra"])
client = SalesforceClient(settings)
jobs = BulkJobs(client, poll_interval=0.01)
job_id = jobs.create_query(sys.argv[3])
info = jobs.wait("query", job_id, timeout=60)
tracemalloc.start()
result = download_results(client, job_id, sys.argv[2], parallel_downloads=int(sys.argv[4]), job=info)
print(json.dumps({"rows": result["rows"], "peak": tracemalloc.get_traced_memory()[1]}))
"""


def test_memory_holds_a_few_blocks_per_chunk_in_flight_never_a_whole_chunk(emu, tmp_path):
    """Four chunks of about 6.5 MB downloaded four at a time, measured in a process of its own
    (the emulator stays here): the peak is bounded by the blocks each chunk may hold ahead of
    the writer, far below the chunks themselves."""
    import subprocess
    import sys

    from airflow_provider_sfjwt.salesforce.bulk.parallel import PART_BLOCK_BYTES, PART_BUFFER_BLOCKS
    from airflow_provider_sfjwt.testing.keys import shared_key_pair

    emu.generate_accounts(200_000)
    emu.bulk.default_max_records = 50_000
    conn = emu.connection(private_key_pem=shared_key_pair().private_key_pem)
    target = tmp_path / "m.csv"
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_DOWNLOAD, json.dumps(conn), str(target), WIDE, "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["rows"] == 200_000
    size = target.stat().st_size
    assert size > 24_000_000  # every chunk is several blocks long
    # per chunk in flight: its queued blocks, the one being handed on and the one being read
    assert measured["peak"] < 4 * (PART_BUFFER_BLOCKS + 2) * PART_BLOCK_BYTES < size / 1.5


class Chunk:
    """A result chunk as Salesforce would hand it over: its announced count and its bytes,
    counting their line ends as a real chunk does."""

    def __init__(self, number: int, records: int, body: bytes) -> None:
        self.job_id, self.number, self.records, self.body = "750x", number, records, body
        self.line_ends = 0

    def iter_bytes(self):
        for start in range(0, len(self.body), 7):
            block = self.body[start : start + 7]
            self.line_ends += block.count(b"\n")
            yield block


def test_each_chunk_is_checked_against_its_announced_count():
    head = b'"Id","Note"\n'
    good = Chunk(0, 2, head + b'"1","a"\n"2","two\nlines"\n')  # a value may span lines
    short = Chunk(1, 3, head + b'"3","c"\n"4","d"\n')
    joined = CsvResultStream([good, short])
    with pytest.raises(
        SalesforceError, match="chunk 1 .* announced 3 records .* holds only 2 lines"
    ):
        b"".join(joined)
    assert joined.rows == 2
    with pytest.raises(SalesforceError, match="announced 1 records .* but held 2"):
        list(CsvResultStream([good, Chunk(1, 1, head + b'"3","c"\n"4","d"\n')]).records())
    exact = CsvResultStream([good, Chunk(1, 2, head + b'"3","c"\n"4","d"\n')])
    assert [r["Note"] for r in exact.records()] == ["a", "two\nlines", "c", "d"]
    assert exact.rows == 4


def test_progress_lines_show_polls_and_rows_of_the_jobs_total(chunked, client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_sfjwt.salesforce.bulk")
    result = query_to_file(client, WIDE, tmp_path / "p.csv", **FAST)
    job_id = result["job_id"]
    lines = [r.getMessage() for r in caplog.records]
    assert f"Bulk query job {job_id}: InProgress, 0 records processed" in lines
    assert f"Bulk query job {job_id}: JobComplete, 23,456 records processed" in lines
    rows = [
        line for line in lines if line.startswith(f"Bulk query job {job_id}: ") and " of " in line
    ]
    assert rows[0].startswith(f"Bulk query job {job_id}: 2,000 of 23,456 rows (9 %), ")
    assert "rows/s" in rows[0] and "left" in rows[0]
    assert rows[-1].startswith(f"Bulk query job {job_id}: 23,456 of 23,456 rows (100 %), ")


def test_where_no_count_is_known_a_body_cut_inside_quotes_is_refused():
    """Ingest result files carry no record count: the joiner checks the quotes instead."""
    joiner = CsvJoiner()
    assert b"".join(joiner.body([b'"Id","Note"\n"1","a ""b""\nc"\n'], "ok")).count(b"\n") == 3
    with pytest.raises(SalesforceError, match="ends inside a quoted field"):
        b"".join(joiner.body([b'"Id","Note"\n"2","cut', b" here\n"], "failedResults"))


@pytest.mark.parametrize("value", [0, 21, True, 2.5, "5"])
def test_parallel_downloads_is_checked(value):
    with pytest.raises(ValueError, match="parallel_downloads"):
        check_parallel_downloads(value)


def test_a_failing_chunk_is_requested_again(chunked, client, tmp_path):
    job_id, info = finished_job(client)
    clean = download_results(client, job_id, tmp_path / "c.csv", parallel_downloads=1, job=info)
    chunked.faults.fail(f"/services/data/v66.0/jobs/query/{job_id}/results", 503, count=2)
    again = download_results(client, job_id, tmp_path / "a.csv", job=info)
    assert again["rows"] == clean["rows"] and chunked.stats.statuses[503] == 2
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()


DELETE_AT_EXIT = """
import atexit, json, os, sys, time
from airflow_provider_sfjwt.salesforce.bulk import query_to_file
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.settings import parse_connection
conn = json.loads(sys.argv[1])
settings = parse_connection(host=conn["host"], login=conn["login"], password=None, extra=conn["extra"])
result = query_to_file(SalesforceClient(settings), "SELECT Id FROM Account", sys.argv[2], poll_interval=0.01)
print(result["job_id"], time.time(), flush=True)
if sys.argv[3] == "forked-task":  # how an Airflow task process ends: exit handlers, then _exit
    atexit._run_exitfuncs()
    os._exit(0)
"""


@pytest.mark.parametrize("ending", ["interpreter-exit", "forked-task"])
def test_the_background_deletion_finishes_before_the_process_ends(emu, tmp_path, ending):
    import subprocess
    import sys

    from airflow_provider_sfjwt.testing.keys import shared_key_pair

    emu.generate_accounts(10)
    conn = emu.connection(private_key_pem=shared_key_pair().private_key_pem)
    emu.faults.delay("/services/data/v66.0/jobs/query/", 2.0, method="DELETE")
    done = subprocess.run(
        [sys.executable, "-c", DELETE_AT_EXIT, json.dumps(conn), str(tmp_path / "d.csv"), ending],
        capture_output=True,
        text=True,
        timeout=120,
    )
    ended = time.time()
    assert done.returncode == 0, done.stderr[-2000:]
    job_id, returned = done.stdout.split()[-2:]
    assert emu.stats.requests[f"DELETE /services/data/v66.0/jobs/query/{job_id}"] == 1
    assert emu.stats.statuses[204] == 1
    # query_to_file returned before the (slow) DELETE was answered; the process waited for it
    assert ended - float(returned) >= 2.0


def test_on_kill_deletes_a_query_job_that_had_finished(emu, client, tmp_path):
    from airflow_provider_sfjwt.operators import SalesforceBulkQueryOperator

    job_id, _ = finished_job(client, "SELECT Id FROM Account")
    op = SalesforceBulkQueryOperator(
        task_id="q", soql="SELECT Id FROM Account", output_path=str(tmp_path / "k.csv")
    )
    op._job_ids = [job_id]  # killed while downloading the finished job's results
    op.on_kill()
    with pytest.raises(ApiError) as gone:
        BulkJobs(client).get("query", job_id)
    assert gone.value.status == 404
