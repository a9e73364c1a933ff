"""Call an Apex REST endpoint, and save a large REST answer to a file instead of XCom.

``SalesforceRestOperator`` sends any REST or Apex REST request with the provider's token reuse,
retries and re-authentication. Small answers come back in XCom as ``{"status", "body"}``; with
``output_path`` the body is streamed to a file and XCom holds only ``{"status", "path",
"bytes"}`` (a describe of Account is hundreds of kilobytes, too much for the metadata DB).

The Apex class behind ``/services/apexrest/AccountHealth`` is yours to write in the org, e.g.::

    @RestResource(urlMapping='/AccountHealth')
    global with sharing class AccountHealth {
        @HttpPost global static Map<String, Object> score(String industry) { ... }
    }
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_sfjwt.operators import SalesforceRestOperator

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "output_dir": Param(OUTPUT_DIR, type="string"),
        "industry": Param("Technology", type="string"),
    },
    tags=["salesforce", "example"],
)
def salesforce_apex_rest():
    score = SalesforceRestOperator(
        task_id="score_accounts",
        method="POST",
        endpoint="/services/apexrest/AccountHealth",
        json={"industry": "{{ params.industry }}"},
    )
    describe = SalesforceRestOperator(
        task_id="describe_account_to_file",
        endpoint="sobjects/Account/describe",
        output_path="{{ params.output_dir }}/account_describe.json",
    )

    @task
    def report(score: dict, describe: dict) -> None:
        print(f"Apex answered HTTP {score['status']}: {score['body']}")
        print(f"Account describe: {describe['bytes']:,} bytes in {describe['path']}")

    report(score.output, describe.output)


salesforce_apex_rest()
