"""Two tasks that log the connection's secrets on purpose (used by the executor leak test).

Each task logs its access token, the key passphrase and every line of the private key, as a
careless DAG author might. The first task exchanges the token; the second, a process of its own
on the same machine, takes it from the token store. In an executor run the task log files must
show none of them: every path that yields a secret registers it with Airflow's masker.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import dag, task

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.keys import pem_lines

log = logging.getLogger(__name__)


def log_secrets(step: str) -> None:
    hook = SalesforceJWTHook()
    token = hook.get_conn().auth.token()
    log.info("secret-probe %s access token: %s", step, token.access_token)
    print(f"secret-probe {step} printed token: {token.access_token}")
    log.info("secret-probe %s passphrase: %s", step, hook.settings.passphrase)
    for number, line in enumerate(pem_lines(hook.settings.private_key_pem)):
        log.info("secret-probe %s key line %d: %s", step, number, line)


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def sfjwt_secret_log_probe():
    @task
    def exchanges_the_token():
        log_secrets("first")

    @task
    def takes_the_stored_token():
        log_secrets("second")

    exchanges_the_token() >> takes_the_stored_token()


sfjwt_secret_log_probe()
