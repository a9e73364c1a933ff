"""Extract every Account with Bulk API 2.0 into a typed Parquet file, deferring while Salesforce works.

Use Bulk API 2.0 when an extract runs to hundreds of thousands of rows: Salesforce prepares the
result as a job, and while it does the task waits in the triggerer (deferred), not in a worker
slot. The results are then streamed chunk by chunk into Parquet, typed from describe (numbers,
booleans, dates and datetimes keep their types), so memory stays flat whatever the row count.
XCom gets ``{"job_id", "rows", "path", "format", "columns"}``; the job is deleted from Salesforce
afterwards.

Where the file goes: the ``output_dir`` param, defaulting to ``SFJWT_OUTPUT_DIR`` or
``/tmp/sfjwt_output``; an object-storage URI (``s3://bucket/salesforce``) works too.
``SFJWT_BULK_POLL_INTERVAL`` sets the first poll interval (Salesforce asks for a few seconds).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_sfjwt.operators import SalesforceBulkQueryOperator

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")
POLL_INTERVAL = float(os.environ.get("SFJWT_BULK_POLL_INTERVAL", "5"))

ACCOUNTS_SOQL = """
SELECT Id, Name, Industry, AnnualRevenue, NumberOfEmployees, Active__c, BillingCountry,
       Owner.Name, CreatedDate
FROM Account
"""


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"output_dir": Param(OUTPUT_DIR, type="string", description="directory or URI")},
    tags=["salesforce", "example", "bulk"],
)
def bulk_extract_parquet():
    extract = SalesforceBulkQueryOperator(
        task_id="extract_accounts",
        soql=ACCOUNTS_SOQL,
        output_path="{{ params.output_dir }}/accounts_{{ dag_run.run_after | ds_nodash }}.parquet",
        format="parquet",
        poll_interval=POLL_INTERVAL,
        job_timeout=3600,
    )

    @task
    def report(summary: dict) -> None:
        print(
            f"Bulk job {summary['job_id']}: {summary['rows']:,} rows, "
            f"{len(summary['columns'])} columns, written to {summary['path']}"
        )

    report(extract.output)


bulk_extract_parquet()
