"""Extract only the Accounts changed in each run's data interval, optionally for some industries.

The incremental pattern: each scheduled run reads the records whose ``SystemModstamp`` falls in
its data interval, so runs neither overlap nor leave gaps, and a backfill of a past day reads that
day again. Values reach the SOQL through the provider's macros, never pasted as raw text:
``soql_datetime`` writes Airflow's interval bounds as SOQL dateTime literals (UTC), and
``soql_quote`` turns the ``industries`` param into a safe ``IN (...)`` list, whatever quotes or
backslashes it holds. Trigger with ``{"industries": ["Banking", "Energy"]}`` to filter.

Files: ``<output_dir>/accounts_changed_<first day of the data>.csv`` (``output_dir`` param, default
``$SFJWT_OUTPUT_DIR`` or ``/tmp/sfjwt_output``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag

from airflow_provider_sfjwt.operators import SalesforceQueryOperator

OUTPUT_DIR = os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output")

# A run triggered by hand without a logical date has no data interval: it reads the day before
# it was triggered instead.
CHANGED_ACCOUNTS_SOQL = """
{%- set end = data_interval_end | default(dag_run.run_after, true) -%}
{%- set start = data_interval_start | default(end - macros.timedelta(days=1), true) -%}
SELECT Id, Name, Industry, SystemModstamp
FROM Account
WHERE SystemModstamp >= {{ macros.salesforce_jwt.soql_datetime(start) }}
  AND SystemModstamp < {{ macros.salesforce_jwt.soql_datetime(end) }}
{%- if params.industries %}
  AND Industry IN {{ macros.salesforce_jwt.soql_quote(params.industries) }}
{%- endif %}
ORDER BY SystemModstamp
"""


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "output_dir": Param(OUTPUT_DIR, type="string", description="directory or URI"),
        "industries": Param([], type="array", description="only these industries (empty: all)"),
    },
    tags=["salesforce", "example"],
)
def salesforce_incremental_extract():
    SalesforceQueryOperator(
        task_id="extract_changed_accounts",
        soql=CHANGED_ACCOUNTS_SOQL,
        output_path="{{ params.output_dir }}/accounts_changed_{{ (data_interval_start | "
        "default(dag_run.run_after - macros.timedelta(days=1), true)) | ds }}.csv",
    )


salesforce_incremental_extract()
