"""Upsert Contacts from a CSV file by external id, with a report of the rows Salesforce refused.

sObject Collections send 200 records per API request and answer per record, so a load can
partly succeed. Refused rows land in ``contacts_failed.csv`` with their input row number and
Salesforce's error code and message; the task fails only when more than ``max_failed_records``
were refused, so a handful of bad rows does not stop the pipeline but a broken file does.
For tens of thousands of rows, use ``SalesforceBulkIngestOperator`` instead.

The first task stands in for an upstream export: it writes a small CSV (two rows are bad on
purpose). Point ``input_path`` of the load task at your own file instead.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_sfjwt.operators import SalesforceCollectionsOperator

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"output_dir": Param(OUTPUT_DIR, type="string")},
    tags=["salesforce", "example"],
)
def salesforce_upsert_contacts():
    @task
    def prepare_input(params: dict) -> str:
        path = Path(params["output_dir"]) / "contacts_to_load.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        # An empty cell leaves the field unchanged (as in Bulk API CSV); two rows are bad.
        people = [
            ("Zoë", "Müller", "zoe.mueller@example.com", ""),
            ("José", "O'Neil", "jose.oneil@example.com", ""),
            ("Priya", "", "priya@example.com", ""),  # no LastName: REQUIRED_FIELD_MISSING
            ("Noah", "Chen", "noah.chen@example.com", "001000000000000AAA"),  # no such Account
            ("Aoife", "Kowalski", "aoife.k@example.com", ""),
        ]
        rows = [
            {
                "External_Id__c": f"EXAMPLE-{n:04d}",
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "Title": "Buyer, EMEA" if n % 2 else 'Head of "Ops"',
                "AccountId": account,
            }
            for n, (first, last, email, account) in enumerate(people)
        ]
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return str(path)

    load = SalesforceCollectionsOperator(
        task_id="upsert_contacts",
        operation="upsert",
        sobject="Contact",
        external_id_field="External_Id__c",
        input_path=prepare_input(),
        failed_records_path="{{ params.output_dir }}/contacts_failed.csv",
        max_failed_records=10,
    )

    @task
    def report(summary: dict) -> None:
        print(
            f"{summary['operation']} {summary['sobject']}: {summary['succeeded']} succeeded, "
            f"{summary['failed']} refused of {summary['records']}"
        )
        if summary["failed"]:
            with open(summary["failed_records_path"], encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    print(
                        f"  row {row['sf__row']}: {row['sf__error_code']} {row['sf__error_message']}"
                    )

    report(load.output)


salesforce_upsert_contacts()
