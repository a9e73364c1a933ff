"""Upsert Contacts with Bulk API 2.0 and keep Salesforce's verdict on every row as files.

Bulk loads partly succeed: Salesforce processes each record on its own and reports the rejected
ones with a reason. This DAG saves all three result sets next to the input
(``contacts_bulk.successfulResults.csv``, ``.failedResults.csv`` with the ``sf__Error`` column,
``.unprocessedrecords.csv``), tolerates up to 25 % rejected rows (``max_failed_records="25%"``)
and prints them; above that the task fails and names the failed-results file and the first
error codes. While Salesforce processes the job, the task waits deferred in the triggerer.

The first task stands in for an upstream export: it writes a CSV in which one row in ten (param
``bad_every``) lacks the required LastName. Point ``input_path`` at your own file instead (object
storage works too).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_sfjwt.operators import SalesforceBulkIngestOperator

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")
POLL_INTERVAL = float(os.environ.get("SFJWT_BULK_POLL_INTERVAL", "5"))


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "output_dir": Param(OUTPUT_DIR, type="string"),
        "rows": Param(200, type="integer", minimum=1),
        "bad_every": Param(
            10, type="integer", minimum=1, description="every Nth row lacks LastName"
        ),
    },
    tags=["salesforce", "example", "bulk"],
)
def bulk_upsert_with_failures():
    @task
    def prepare_input(params: dict) -> str:
        path = Path(params["output_dir"]) / "contacts_bulk.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["External_Id__c", "FirstName", "LastName", "Email", "Title"])
            for n in range(params["rows"]):
                bad = n % params["bad_every"] == params["bad_every"] - 1
                last = "" if bad else f"Example-{n}"  # REQUIRED_FIELD_MISSING
                title = 'Head of "Ops", EMEA' if n % 7 == 0 else "Buyer"
                writer.writerow([f"BULK-{n:06d}", "Ada", last, f"ada{n}@example.com", title])
        return str(path)

    load = SalesforceBulkIngestOperator(
        task_id="upsert_contacts",
        sobject="Contact",
        operation="upsert",
        external_id_field="External_Id__c",
        input_path=prepare_input(),
        max_failed_records="25%",
        poll_interval=POLL_INTERVAL,
        job_timeout=3600,
    )

    @task
    def report(summary: dict) -> None:
        print(
            f"{summary['operation']} {summary['object']}: {summary['succeeded']} succeeded, "
            f"{summary['failed']} rejected, {summary['unprocessed']} unprocessed of "
            f"{summary['records']} (jobs {', '.join(summary['job_ids'])})"
        )
        if summary["failed"]:
            print(f"First error codes: {summary['first_errors']}")
            with open(summary["failed_path"], encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    print(f"  {row['External_Id__c']}: {row['sf__Error']}")

    report(load.output)


bulk_upsert_with_failures()
