"""Bulk operators and their trigger against the emulator: deferral, on_kill, failure thresholds."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_sfjwt.compat import TaskDeferred
from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
)
from airflow_provider_sfjwt.salesforce.bulk import BulkJobs
from airflow_provider_sfjwt.salesforce.errors import (
    BulkJobError,
    BulkJobTimeoutError,
    TooManyFailedRecordsError,
)
from airflow_provider_sfjwt.testing.wiring import CONN_ID
from airflow_provider_sfjwt.triggers.bulk import SalesforceBulkJobTrigger

from .test_bulk_ingest import read_rows, write_contacts

FAST = {"poll_interval": 0.01, "job_timeout": 30}


@pytest.fixture
def client(emu):
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    return SalesforceJWTHook(CONN_ID).get_conn()


def run_trigger(trigger: SalesforceBulkJobTrigger) -> dict:
    async def first_event():
        return (await anext(trigger.run())).payload

    return asyncio.run(first_event())


def test_deferred_query_defers_then_downloads(emu, client, tmp_path):
    emu.generate_accounts(1_500)
    op = SalesforceBulkQueryOperator(
        task_id="q",
        soql="SELECT Id, Name FROM Account",
        output_path=str(tmp_path / "a.csv"),
        **FAST,
    )
    assert op.deferrable
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SalesforceBulkJobTrigger)
    assert deferred.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert set(kwargs) == {"salesforce_conn_id", "job_ids", "kind", "poll_interval", "deadline"}
    event = run_trigger(trigger)
    assert event["status"] == "success" and event["job_ids"] == kwargs["job_ids"]
    summary = op.execute_complete({}, event)
    assert summary["rows"] == 1_500 and summary["job_id"] == kwargs["job_ids"][0]
    assert len(read_rows(tmp_path / "a.csv")) == 1_500


def test_deferred_failure_raises_with_job_id_and_message(emu, client, tmp_path):
    emu.faults.fail_bulk_job(message="InvalidBatch : Query timed out")
    op = SalesforceBulkQueryOperator(
        task_id="q", soql="SELECT Id FROM Account", output_path=str(tmp_path / "a.csv"), **FAST
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    event = run_trigger(deferred.value.trigger)
    job_id = deferred.value.trigger.job_ids[0]
    assert event["status"] == "error" and event["job_id"] == job_id
    with pytest.raises(BulkJobError) as err:
        op.execute_complete({}, event)
    assert f"query job {job_id} ended Failed: InvalidBatch : Query timed out" in str(err.value)


def test_trigger_timeout_aborts_the_job(emu, client):
    job_id = BulkJobs(client).create_query("SELECT Id FROM Account")
    trigger = SalesforceBulkJobTrigger(CONN_ID, [job_id], "query", 0.01, deadline=time.time() - 1)
    event = run_trigger(trigger)
    assert event["status"] == "error" and event["timeout"] is True
    assert BulkJobs(client).get("query", job_id)["state"] == "Aborted"


def test_trigger_never_blocks_the_event_loop(emu, client):
    """Every poll is held 0.3 s by the emulator; a ticker must still run every few ms and
    asyncio's debug mode must see no callback slower than 50 ms."""
    emu.bulk_poll_transitions = 3
    job_id = BulkJobs(client).create_query("SELECT Id FROM Account")
    prefix = f"/services/data/v{client.api_version}/jobs/query/{job_id}"
    emu.faults.delay(prefix, 0.3, count=10)
    trigger = SalesforceBulkJobTrigger(CONN_ID, [job_id], "query", 0.01)
    slow: list[str] = []

    async def main() -> tuple[dict, float, int]:
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        # Building the client parses the RSA key, which holds the GIL for tens of ms in
        # cryptography; that is CPU, not a blocking call, so it happens before the probe.
        await trigger._get_jobs()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.05
        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        event = (await anext(trigger.run())).payload
        elapsed = time.perf_counter() - started
        done.set()
        await tick
        assert elapsed >= 0.9, "the delayed polls did not happen"
        return event, max(gaps), len(gaps)

    import logging

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Executing" in record.getMessage():
                slow.append(record.getMessage())

    handler = Catch()
    logging.getLogger("asyncio").addHandler(handler)
    try:
        event, worst_gap, ticks = asyncio.run(main())
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert event["status"] == "success"
    assert worst_gap < 0.15, f"event loop stalled for {worst_gap:.3f} s"
    assert ticks > 50
    assert slow == [], slow


def test_on_kill_aborts_the_running_job(emu, client, tmp_path):
    emu.bulk_poll_transitions = 1_000  # the job would run "forever"
    op = SalesforceBulkQueryOperator(
        task_id="q",
        soql="SELECT Id FROM Account",
        output_path=str(tmp_path / "k.csv"),
        deferrable=False,
        poll_interval=0.02,
        job_timeout=30,
    )
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            op.execute({})
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not op._job_ids and time.monotonic() < deadline:
        time.sleep(0.01)
    assert op._job_ids, "the operator never created its job"
    op.on_kill()
    worker.join(10)
    job_id = op._job_ids[0]
    assert BulkJobs(client).get("query", job_id)["state"] == "Aborted"
    assert isinstance(outcome[0], BulkJobError) and outcome[0].state == "Aborted"
    assert not (tmp_path / "k.csv").exists()


def test_trigger_on_kill_aborts_pending_jobs(emu, client):
    emu.bulk_poll_transitions = 1_000
    job_id = BulkJobs(client).create_query("SELECT Id FROM Account")
    trigger = SalesforceBulkJobTrigger(CONN_ID, [job_id], "query", 0.01)

    async def main() -> None:
        task = asyncio.create_task(anext(trigger.run()))
        await asyncio.sleep(0.2)
        task.cancel()
        await trigger.on_kill()

    asyncio.run(main())
    assert BulkJobs(client).get("query", job_id)["state"] == "Aborted"


def ingest_op(source, tmp_path, deferrable, **kwargs):
    return SalesforceBulkIngestOperator(
        task_id="load",
        sobject="Contact",
        operation="upsert",
        external_id_field="External_Id__c",
        input_path=str(source),
        results_dir=str(tmp_path / "out"),
        deferrable=deferrable,
        **FAST,
        **kwargs,
    )


def run_ingest(op, deferrable):
    if not deferrable:
        return op.execute({})
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    return op.execute_complete({}, run_trigger(deferred.value.trigger))


@pytest.mark.parametrize("deferrable", [False, True])
def test_ingest_outcome_follows_max_failed_records(emu, tmp_path, deferrable):
    source = tmp_path / "c.csv"
    write_contacts(source, 40, bad_every=10)  # 4 of 40 fail: 10 %

    def run(limit):
        op = ingest_op(source, tmp_path, deferrable, max_failed_records=limit)
        return run_ingest(op, deferrable)

    with pytest.raises(TooManyFailedRecordsError) as err:
        run("5%")
    failed_path = tmp_path / "out" / "c.failedResults.csv"
    assert str(failed_path) in str(err.value) and "REQUIRED_FIELD_MISSING x4" in str(err.value)
    summary = run(4)
    assert (summary["records"], summary["failed"], summary["succeeded"]) == (40, 4, 36)
    assert summary["first_errors"] == {"REQUIRED_FIELD_MISSING": 4}
    assert all(r["sf__Error"] for r in read_rows(failed_path))
    assert summary["failed_path"] == str(failed_path)


def test_object_storage_paths_in_and_out(emu, tmp_path):
    """ObjectStoragePath (here file://, same code path as s3:// or gs://) for every file."""
    from airflow_provider_sfjwt.compat import ObjectStoragePath

    emu.generate_accounts(700)
    out = ObjectStoragePath(f"file://{tmp_path}/lake/accounts.csv")
    query = SalesforceBulkQueryOperator(
        task_id="q", soql="SELECT Id FROM Account", output_path=out, deferrable=False, **FAST
    )
    assert query.execute({})["rows"] == 700
    assert len(read_rows(tmp_path / "lake" / "accounts.csv")) == 700

    write_contacts(tmp_path / "contacts.csv", 20, bad_every=10)
    load = SalesforceBulkIngestOperator(
        task_id="load",
        sobject="Contact",
        operation="upsert",
        external_id_field="External_Id__c",
        input_path=ObjectStoragePath(f"file://{tmp_path}/contacts.csv"),
        results_dir=ObjectStoragePath(f"file://{tmp_path}/reports/"),
        max_failed_records=2,
        deferrable=False,
        **FAST,
    )
    summary = load.execute({})
    assert (summary["records"], summary["failed"]) == (20, 2)
    assert len(read_rows(tmp_path / "reports" / "contacts.failedResults.csv")) == 2
    assert len(read_rows(tmp_path / "reports" / "contacts.successfulResults.csv")) == 18


@pytest.mark.parametrize("deferrable", [False, True])
def test_ingest_loads_locked_rows_again_in_a_new_job(emu, client, tmp_path, deferrable, caplog):
    source = tmp_path / "c.csv"
    write_contacts(source, 40, bad_every=10)  # rows 0, 10, 20, 30 lack LastName
    emu.faults.lock_rows(3)  # rows 0, 1, 2 of the job are locked
    summary = run_ingest(ingest_op(source, tmp_path, deferrable, max_failed_records=4), deferrable)
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (40, 36, 4)
    assert summary["retried"] == 3 and len(summary["job_ids"]) == 2
    assert summary["first_errors"] == {"REQUIRED_FIELD_MISSING": 4}
    failed = read_rows(tmp_path / "out" / "c.failedResults.csv")
    # Row 0 was locked, loaded again, then refused for its data: it is reported once, as that.
    assert sorted(r["External_Id__c"] for r in failed) == [
        "T-000000",
        "T-000010",
        "T-000020",
        "T-000030",
    ]
    assert all(r["sf__Error"].startswith("REQUIRED_FIELD_MISSING") for r in failed)
    succeeded = read_rows(tmp_path / "out" / "c.successfulResults.csv")
    assert len(succeeded) == 36 and {"T-000001", "T-000002"} <= {
        r["External_Id__c"] for r in succeeded
    }
    assert failed[0]["Title"] == "Buyer" and 'Head of "Ops",\nEMEA' in {
        r["Title"] for r in succeeded
    }  # the re-sent rows keep their quoted, multi-line values
    stored = client.query("SELECT External_Id__c FROM Contact WHERE External_Id__c LIKE 'T-%'")
    assert len({r["External_Id__c"] for r in stored}) == 36
    assert "3 record(s) refused with UNABLE_TO_LOCK_ROW; loading them again" in caplog.text


@pytest.mark.parametrize("deferrable", [False, True])
def test_ingest_rows_locked_through_every_round_count_as_failed(emu, tmp_path, deferrable):
    source = tmp_path / "c.csv"
    write_contacts(source, 10)
    emu.faults.lock_rows(1000)
    op = ingest_op(source, tmp_path, deferrable, transient_retries=2)
    with pytest.raises(TooManyFailedRecordsError, match="UNABLE_TO_LOCK_ROW x10"):
        run_ingest(op, deferrable)
    failed = read_rows(tmp_path / "out" / "c.failedResults.csv")
    assert len(failed) == 10  # from the last round only, not 10 per round
    assert {r["sf__Error"].split(":")[0] for r in failed} == {"UNABLE_TO_LOCK_ROW"}
    assert len(op._job_ids) == 3  # the first job and two rounds, all known to on_kill

    none = ingest_op(source, tmp_path, deferrable, transient_retries=0, max_failed_records=10)
    summary = run_ingest(none, deferrable)
    assert (summary["failed"], summary["retried"], len(summary["job_ids"])) == (10, 0, 1)


@pytest.mark.parametrize("ending", ["fail", "abort", "timeout"])
def test_worker_wait_and_trigger_judge_a_job_alike(emu, client, ending):
    """The worker's wait and the trigger run the same poll rounds (JobWatch.poll_round): a job
    that fails, is aborted or runs out of time ends both in the same error, word for word but
    for the job id, and both abort what they leave unfinished."""

    def start() -> str:
        job_id = BulkJobs(client).create_query("SELECT Id FROM Account")
        if ending == "fail":
            emu.faults.fail_bulk_job(job_id, message="InvalidBatch : Query timed out")
        elif ending == "abort":
            emu.faults.abort_bulk_job(job_id)
        return job_id

    timeout = -1.0 if ending == "timeout" else 30.0
    worker_job = start()
    with pytest.raises(BulkJobError) as raised:
        BulkJobs(client, poll_interval=0.01).wait("query", worker_job, timeout=timeout)
    worker_error = raised.value

    trigger_job = start()
    trigger = SalesforceBulkJobTrigger(
        CONN_ID, [trigger_job], "query", 0.01, deadline=time.time() + timeout
    )
    with pytest.raises(BulkJobError) as raised:
        SalesforceBulkQueryOperator(
            task_id="q", soql="SELECT Id FROM Account", output_path="unused.csv", **FAST
        ).execute_complete({}, run_trigger(trigger))
    trigger_error = raised.value

    assert type(trigger_error) is type(worker_error)
    assert isinstance(worker_error, BulkJobTimeoutError) == (ending == "timeout")
    assert str(trigger_error).replace(trigger_job, "<job>") == str(worker_error).replace(
        worker_job, "<job>"
    )
    assert "What to do" in str(worker_error)
    states = {BulkJobs(client).get("query", job)["state"] for job in (worker_job, trigger_job)}
    assert states == ({"Failed"} if ending == "fail" else {"Aborted"})
