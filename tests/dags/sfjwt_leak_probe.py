"""A DAG that fails on purpose in every way a secret could escape (used by test_leaks.py)."""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import dag, task

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

log = logging.getLogger(__name__)


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def sfjwt_leak_probe():
    @task
    def good_then_bad_query():
        hook = SalesforceJWTHook()
        client = hook.get_conn()
        token = client.auth.token()
        log.info("hook=%r settings=%r token=%r", hook, hook.settings, token)
        print("connected:", hook.test_connection())
        list(hook.query("SELECT Nonexistent__c FROM Account"))

    @task
    def wrong_consumer_key():
        SalesforceJWTHook("sf_wrong_app").get_conn().auth.token()

    @task
    def wrong_passphrase():
        SalesforceJWTHook("sf_wrong_passphrase").get_conn()

    good_then_bad_query()
    wrong_consumer_key()
    wrong_passphrase()


sfjwt_leak_probe()
