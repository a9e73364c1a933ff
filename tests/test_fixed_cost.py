"""What every task pays before its first request: secrets registered with Airflow's masker once
each and in one call, the key parsed once per process."""

from __future__ import annotations

import os

import pytest

from airflow_provider_sfjwt.compat import redact
from airflow_provider_sfjwt.hooks import salesforce_jwt
from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook, register_secrets
from airflow_provider_sfjwt.salesforce.keys import pem_lines
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.testing.wiring import CONN_ID


@pytest.fixture
def masker_calls(monkeypatch):
    """Every call the hook module makes to Airflow's ``mask_secret`` (which still runs)."""
    calls: list[object] = []
    real = salesforce_jwt.mask_secret

    def spy(secret, name=None):
        calls.append(secret)
        real(secret, name)

    monkeypatch.setattr(salesforce_jwt, "mask_secret", spy)
    return calls


def test_a_hooks_secrets_go_to_the_masker_in_one_call_shortest_first(emu, masker_calls):
    hook = SalesforceJWTHook(CONN_ID)
    pem = hook.settings.private_key_pem
    assert len(masker_calls) == 1
    batch = masker_calls[0]
    assert isinstance(batch, list) and set(batch) == {*pem_lines(pem), pem}
    assert [len(s) for s in batch] == sorted(len(s) for s in batch)
    for line in pem_lines(pem):
        assert redact(f"key line {line}!") == "key line ***!"


def test_each_secret_is_registered_once_per_process(emu, masker_calls):
    SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    first = len(masker_calls)  # the key's batch, the assertion, the token
    SalesforceJWTHook(CONN_ID).get_conn().auth.token()  # same key, same cached token
    assert len(masker_calls) == first
    register_secrets("a-new-secret-value", "a-shorter-secret")
    register_secrets("a-new-secret-value")
    assert masker_calls[first:] == [["a-shorter-secret", "a-new-secret-value"]]
    assert redact("x a-new-secret-value y") == "x *** y"


def test_a_forked_process_registers_again(masker_calls, monkeypatch):
    """Airflow resets the masker of each task process it forks; registration must not trust
    what the parent process registered."""
    register_secrets("registered-by-the-parent")
    monkeypatch.setattr(salesforce_jwt, "_registered_pid", os.getpid() + 1)  # as after a fork
    register_secrets("registered-by-the-parent")
    assert masker_calls == ["registered-by-the-parent", "registered-by-the-parent"]


def test_the_key_is_parsed_once_per_process(emu):
    conn = emu.connection(private_key_pem=SalesforceJWTHook(CONN_ID).settings.private_key_pem)
    fields = {
        "host": conn["host"],
        "login": conn["login"],
        "password": None,
        "extra": conn["extra"],
    }
    one, two = parse_connection(**fields), parse_connection(**fields)
    assert one is not two and one.load_private_key() is two.load_private_key()
