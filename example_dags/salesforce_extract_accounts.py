"""Extract every Account to CSV and Parquet, streamed page by page.

The everyday extract: one SOQL query, a file per format, the file appearing only when complete.
Memory stays at one page (2,000 records) whatever the row count, the token is exchanged once and
reused by both tasks in a worker process, and XCom receives only ``{"path", "rows", "columns",
"format"}``.

Where the files go: the ``output_dir`` param (set it when triggering), which defaults to the
``SFJWT_OUTPUT_DIR`` environment variable or ``/tmp/sfjwt_output``. Any object-storage URI works
too (``s3://bucket/salesforce``), using Airflow's connection for that store.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, Param, dag, task

from airflow_provider_sfjwt.operators import SalesforceQueryOperator

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")

ACCOUNTS_SOQL = """
SELECT Id, Name, AccountNumber, Industry, Type, AnnualRevenue, NumberOfEmployees,
       BillingCity, BillingCountry, Description, Active__c, Owner.Name, LastModifiedDate
FROM Account
"""


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"output_dir": Param(OUTPUT_DIR, type="string", description="directory or URI")},
    tags=["salesforce", "example"],
)
def salesforce_extract_accounts():
    to_csv = SalesforceQueryOperator(
        task_id="extract_accounts_csv",
        soql=ACCOUNTS_SOQL,
        output_path="{{ params.output_dir }}/accounts.csv",
        format="csv",
        outlets=[Asset("salesforce_accounts_csv")],
    )
    to_parquet = SalesforceQueryOperator(
        task_id="extract_accounts_parquet",
        soql=ACCOUNTS_SOQL,
        output_path="{{ params.output_dir }}/accounts.parquet",
        format="parquet",
    )

    @task
    def report(*extracts: dict) -> None:
        for extract in extracts:
            print(f"{extract['rows']:,} rows written to {extract['path']} ({extract['format']})")

    report(to_csv.output, to_parquet.output)


salesforce_extract_accounts()
