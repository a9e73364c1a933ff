"""Every operator failing in its own way, for the reliability leak scan (tests/reliability).

Each task ends in an error message that our code writes (Salesforce's error, a token-endpoint
hint, a key problem, a failure threshold), so the scan reads the texts a real failure produces
and checks that none holds a PEM line, the passphrase, an assertion or an access token.
Connections: ``salesforce_jwt_default`` (good), ``sf_wrong_app`` (unknown consumer key),
``sf_wrong_passphrase`` (encrypted key, wrong passphrase). ``SFJWT_OUTPUT_DIR`` is where files go.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceCollectionsOperator,
    SalesforceQueryOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.sensors import SalesforceSoqlSensor

OUT = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")
FAST = {"poll_interval": float(os.environ.get("SFJWT_BULK_POLL_INTERVAL", "5")), "job_timeout": 120}
NO_RETRY = {"retries": 0}


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def sfjwt_rel_failures():
    SalesforceQueryOperator(
        task_id="query_invalid_field",
        soql="SELECT Id, Nonexistent__c FROM Account",
        output_path=f"{OUT}/rel_invalid_field.csv",
        **NO_RETRY,
    )
    SalesforceQueryOperator(
        task_id="query_wrong_app",
        soql="SELECT Id FROM Account",
        output_path=f"{OUT}/rel_wrong_app.csv",
        salesforce_conn_id="sf_wrong_app",
        **NO_RETRY,
    )
    SalesforceRestOperator(
        task_id="rest_wrong_passphrase",
        endpoint="limits",
        salesforce_conn_id="sf_wrong_passphrase",
        **NO_RETRY,
    )
    SalesforceRestOperator(
        task_id="rest_not_found", endpoint="sobjects/NoSuchObject__c", **NO_RETRY
    )
    SalesforceCollectionsOperator(
        task_id="collections_refused",
        operation="insert",
        sobject="Account",
        records=[{"Description": "no Name, so REQUIRED_FIELD_MISSING"}] * 3,
        failed_records_path=f"{OUT}/rel_refused.csv",
        **NO_RETRY,
    )
    SalesforceSoqlSensor(
        task_id="sensor_times_out",
        soql="SELECT COUNT() FROM Account WHERE Name = 'never there'",
        poke_interval=0.2,
        timeout=1,
        **NO_RETRY,
    )
    SalesforceBulkQueryOperator(
        task_id="bulk_query_bad_soql",
        soql="SELECT Id, Nonexistent__c FROM Account",
        output_path=f"{OUT}/rel_bulk.csv",
        **FAST,
        **NO_RETRY,
    )

    @task
    def write_bad_contacts() -> str:
        path = Path(OUT) / "rel_contacts.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["FirstName", "LastName"])
            writer.writerows([["Ada", ""]] * 4)  # every row lacks the required LastName
        return str(path)

    SalesforceBulkIngestOperator(
        task_id="bulk_ingest_rejected",
        sobject="Contact",
        operation="insert",
        input_path=write_bad_contacts(),
        **FAST,
        **NO_RETRY,
    )


sfjwt_rel_failures()
