"""Wait until Salesforce has the records, then extract them.

A sensor counts Contacts with ``SELECT COUNT()`` (Salesforce returns the count, no records) and
lets the DAG go on once there are at least ``min_contacts``. ``mode="reschedule"`` frees the
worker slot between pokes, so waiting hours costs nothing but one API request per poke.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag

from airflow_provider_sfjwt.operators import SalesforceQueryOperator
from airflow_provider_sfjwt.sensors import SalesforceSoqlSensor

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "output_dir": Param(OUTPUT_DIR, type="string"),
        "min_contacts": Param(1, type="integer", minimum=0),
    },
    tags=["salesforce", "example"],
)
def salesforce_wait_then_extract():
    wait = SalesforceSoqlSensor(
        task_id="wait_for_contacts",
        soql="SELECT COUNT() FROM Contact WHERE Email != null",
        threshold="{{ params.min_contacts }}",
        comparison=">=",
        mode="reschedule",
        poke_interval=60,
        timeout=6 * 60 * 60,
    )
    extract = SalesforceQueryOperator(
        task_id="extract_contacts",
        soql="SELECT Id, FirstName, LastName, Email, Account.Name FROM Contact WHERE Email != null",
        output_path="{{ params.output_dir }}/contacts.jsonl",
        format="jsonl",
    )
    wait >> extract


salesforce_wait_then_extract()
