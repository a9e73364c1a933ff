"""Progress lines: how often they come, what they say, and where long work logs them (ingest
uploads and polls, deferred Bulk polls in the triggerer)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from airflow_provider_sfjwt.salesforce.bulk import BulkJobs, ingest_file
from airflow_provider_sfjwt.salesforce.progress import Progress, duration
from airflow_provider_sfjwt.testing.wiring import CONN_ID
from airflow_provider_sfjwt.triggers.bulk import SalesforceBulkJobTrigger

from .test_bulk_ingest import write_contacts

log = logging.getLogger("tests.progress")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(emu):
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    return SalesforceJWTHook(CONN_ID).get_conn()


def test_lines_come_first_then_at_most_every_few_seconds_then_last(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    clock = Clock()
    progress = Progress(log, "Export", "rows", total=10_000, every=5.0, clock=clock)
    for _ in range(40):  # 40 steps of 250 rows, a quarter of a second apart
        clock.now += 0.25
        progress.add(250)
    progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # the first step, 5 s later, the end
    assert lines[0] == "Export: 250 of 10,000 rows (2 %), 1,000 rows/s, 0 s so far, about 10 s left"
    assert lines[1].startswith("Export: 5,250 of 10,000 rows (52 %), 1,000 rows/s, 5 s so far")
    assert lines[2] == "Export: 10,000 of 10,000 rows (100 %), 1,000 rows/s, 10 s so far"
    progress.finish()
    assert len(caplog.records) == 3  # nothing new, nothing logged


def test_without_a_total_lines_show_count_and_rate(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    clock = Clock()
    progress = Progress(log, "Upload", "records", clock=clock, started=clock.now - 2)
    progress.add(500)
    assert caplog.records[-1].getMessage() == "Upload: 500 records, 250 records/s, 2 s so far"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (59, "59 s"), (200, "3 min 20 s"), (7_500, "2 h 05 min")]
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_ingest_logs_parts_uploaded_and_records_processed(client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_sfjwt.salesforce.bulk")
    source = tmp_path / "contacts.csv"
    write_contacts(source, 300)
    size = source.stat().st_size
    summary = ingest_file(
        client,
        "Contact",
        "upsert",
        source,
        external_id_field="External_Id__c",
        max_upload_bytes=size // 2,
        poll_interval=0.01,
        timeout=30,
    )
    lines = [r.getMessage() for r in caplog.records]
    uploads = [line for line in lines if ": uploaded part " in line]
    assert len(uploads) == len(summary["job_ids"]) >= 2
    assert uploads[-1].endswith(f"300 records in {len(summary['job_ids'])} part(s) so far")
    first = summary["job_ids"][0]
    processed = [
        line for line in lines if line.startswith(f"Bulk ingest job {first}: JobComplete, ")
    ]
    assert processed and processed[0].endswith(" records processed")


def test_deferred_polls_log_state_and_records_processed(emu, client, capsys):
    """The trigger logs through its own (structlog) logger, as Airflow's triggerer expects; in a
    test process that logger writes to stdout."""
    emu.generate_accounts(1_234)
    job_id = BulkJobs(client).create_query("SELECT Id FROM Account")
    trigger = SalesforceBulkJobTrigger(CONN_ID, [job_id], "query", 0.01)

    async def first_event() -> dict:
        return (await anext(trigger.run())).payload

    event = asyncio.run(first_event())
    assert event["status"] == "success" and event["jobs"][0]["apiVersion"] == 66.0
    out = capsys.readouterr().out
    assert f"Bulk query job {job_id}: InProgress, 0 records processed" in out
    assert f"Bulk query job {job_id}: JobComplete, 1,234 records processed" in out
    assert "Next poll in 0.0 s" in out
