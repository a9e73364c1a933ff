"""Check the Salesforce connection: one token exchange and one REST call, then print where we are.

The smallest useful DAG: it proves the key, the app and the user are set up (what `sfjwt doctor`
checks from a shell), from inside Airflow, with the worker's own network and secrets.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["salesforce", "example"],
)
def salesforce_connection_check():
    @task
    def connect() -> dict:
        hook = SalesforceJWTHook()
        ok, message = hook.test_connection()
        print(message)
        if not ok:
            raise RuntimeError(message)
        usage = hook.get_conn().api_usage
        return {"instance_url": hook.get_conn().instance_url, "api_usage": str(usage)}

    connect()


salesforce_connection_check()
