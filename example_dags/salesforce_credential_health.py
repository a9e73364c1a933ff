"""Daily credential health check: fails 30 days before the Salesforce certificate expires.

The JWT Bearer flow stops on the day the certificate uploaded to the app expires. This DAG turns
that date into an ordinary task failure a month ahead, so whatever already alerts the team about
failed tasks (failure e-mails, an ``on_failure_callback`` to Slack or PagerDuty) is the reminder.
It also logs in and calls ``/userinfo`` once a day, which catches a revoked pre-authorisation, a
frozen integration user or a replaced certificate before the nightly pipelines do.

The connection needs its ``certificate`` field (the PEM uploaded to the app, or a reference):
``sfjwt connection --cert app.crt ...`` puts it there. ``SFJWT_CERT_FAIL_DAYS`` changes the
30-day margin; ``SFJWT_CONN_ID`` the connection.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import dag

from airflow_provider_sfjwt.operators.health import SalesforceCredentialHealthOperator

CONN_ID = os.environ.get("SFJWT_CONN_ID", "salesforce_jwt_default")
FAIL_DAYS = int(os.environ.get("SFJWT_CERT_FAIL_DAYS", "30"))


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["salesforce", "example", "monitoring"],
)
def salesforce_credential_health():
    SalesforceCredentialHealthOperator(
        task_id="check_credentials",
        salesforce_conn_id=CONN_ID,
        fail_days_before_expiry=FAIL_DAYS,
    )


salesforce_credential_health()
