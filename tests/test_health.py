"""Certificate expiry in production: the hook's warning, the health-check operator and its DAG."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from airflow_provider_sfjwt.compat import AirflowFailException
from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.operators.health import SalesforceCredentialHealthOperator
from airflow_provider_sfjwt.salesforce import keys
from airflow_provider_sfjwt.salesforce.errors import UserNotApprovedError
from airflow_provider_sfjwt.testing.wiring import CONSUMER_KEY, USERNAME

CONN_ID = "sf_health"
HOOK_LOGGER = "airflow_provider_sfjwt.hooks.salesforce_jwt"


def certificate(keypair, days_left: float) -> str:
    """A certificate for the test key that expires ``days_left`` days from now."""
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)
    cert = keys.self_signed_certificate(
        keypair.key, "health-check", days=400 + days_left, not_before=start
    )
    return keys.certificate_to_pem(cert).decode()


def set_conn(monkeypatch, host, keypair, cert_pem=None, **extra) -> None:
    fields = {"consumer_key": CONSUMER_KEY, "private_key": keypair.pem, "max_retries": 0}
    if cert_pem:
        fields["certificate"] = cert_pem
    fields.update(extra)
    conn = {"conn_type": "salesforce_jwt", "host": host, "login": USERNAME, "extra": fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))


# --- the hook's warning, once per task -------------------------------------------------------


def hook_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == HOOK_LOGGER]


@pytest.mark.parametrize(
    ("days_left", "extra", "level", "words"),
    [
        (10.5, {}, logging.WARNING, ["expires in 10 days", "sfjwt keygen"]),
        (-3, {}, logging.WARNING, ["expired on", "past its rotation date", "--reuse-key"]),
        (100.5, {}, None, []),
        (100.5, {"cert_expiry_warning_days": 120}, logging.WARNING, ["expires in 100 days"]),
        (10.5, {"cert_expiry_warning_days": 5}, None, []),
    ],
)
def test_hook_warns_before_the_certificate_expires(
    monkeypatch, caplog, keypair, days_left, extra, level, words
):
    set_conn(
        monkeypatch,
        "https://acme.my.salesforce.com",
        keypair,
        certificate(keypair, days_left),
        **extra,
    )
    caplog.set_level(logging.INFO, logger=HOOK_LOGGER)
    hook = SalesforceJWTHook(CONN_ID)
    assert hook.settings is hook.settings  # the task using its hook again: still one line
    records = hook_records(caplog)
    if level is None:
        assert records == []
        return
    assert [r.levelno for r in records] == [level]
    message = records[0].getMessage()
    assert CONN_ID in message
    for word in words:
        assert word in message


def test_hook_warns_when_the_certificate_is_not_the_keys(
    monkeypatch, caplog, keypair, other_keypair
):
    set_conn(monkeypatch, "https://acme.my.salesforce.com", keypair, other_keypair.cert_pem)
    caplog.set_level(logging.INFO, logger=HOOK_LOGGER)
    assert SalesforceJWTHook(CONN_ID).settings.certificate_pem
    (record,) = hook_records(caplog)
    assert "does not belong to its private key" in record.getMessage()


# --- the operator ------------------------------------------------------------------------------


def run_operator(**kwargs) -> dict:
    op = SalesforceCredentialHealthOperator(task_id="check", salesforce_conn_id=CONN_ID, **kwargs)
    return op.execute(context={})


def test_healthy_credentials_pass_and_report_without_secrets(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu.url, keypair, certificate(keypair, 200.5))
    summary = run_operator()
    assert summary["certificate_days_left"] == 200
    assert summary["instance_url"] == emu.url
    assert summary["organization_id"] == emu.org_id
    assert summary["username"] == USERNAME
    assert emu.stats.token_exchanges == 1
    text = json.dumps(summary)
    for secret in [*emu.identity.sessions, *keys.pem_lines(keypair.pem)]:
        assert secret not in text


def test_fails_the_configured_number_of_days_ahead(monkeypatch, emu, keypair):
    cert = certificate(keypair, 20.5)
    set_conn(monkeypatch, emu.url, keypair, cert)
    with pytest.raises(AirflowFailException) as caught:
        run_operator()  # default: 30 days ahead
    message = str(caught.value)
    assert "expires in 20 days" in message
    assert "fails 30 days ahead" in message
    assert "--reuse-key" in message
    assert emu.stats.token_exchanges == 0  # failed before any network call
    assert run_operator(fail_days_before_expiry=14)["certificate_days_left"] == 20


def test_expired_certificate_fails_without_retry(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu.url, keypair, certificate(keypair, -1))
    with pytest.raises(AirflowFailException, match="expired on"):
        run_operator()


def test_certificate_of_another_key_fails(monkeypatch, emu, keypair, other_keypair):
    set_conn(monkeypatch, emu.url, keypair, other_keypair.cert_pem)
    with pytest.raises(AirflowFailException, match="does not belong"):
        run_operator()


def test_missing_certificate_fails_unless_not_required(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu.url, keypair)
    with pytest.raises(AirflowFailException, match="certificate field"):
        run_operator()
    summary = run_operator(require_certificate=False)
    assert "certificate_expires" not in summary
    assert summary["user_id"]


def test_login_failure_is_an_ordinary_failure_so_retries_apply(
    monkeypatch, emu, salesforce_emulator, keypair
):
    set_conn(monkeypatch, emu.url, keypair, certificate(keypair, 200.5))
    salesforce_emulator.app.revoke_user(USERNAME)
    with pytest.raises(UserNotApprovedError) as caught:
        run_operator()
    assert not isinstance(caught.value, AirflowFailException)
    assert "pre-authorized" in str(caught.value)
    assert run_operator(check_login=False)["certificate_days_left"] == 200


def test_example_dag_runs_daily_against_the_emulator(monkeypatch, emu, keypair):
    from .dag_support import load_dag, run_dag

    set_conn(monkeypatch, emu.url, keypair, certificate(keypair, 90.5))
    monkeypatch.setenv("SFJWT_CONN_ID", CONN_ID)
    dag = load_dag("salesforce_credential_health")
    assert dag.schedule == "@daily"
    run = run_dag("salesforce_credential_health")
    assert run.state == "success", run.failures
    summary = run.xcom("check_credentials")
    assert summary["certificate_days_left"] == 90
    assert summary["instance_url"] == emu.url


# --- an ended session and a real exchange ----------------------------------------------------


def test_userinfo_bad_oauth_token_is_an_ended_session_one_reexchange(monkeypatch, emu, keypair):
    """/services/oauth2/userinfo answers an ended session with 403 Bad_OAuth_Token, not the
    REST API's 401: it gets the same single re-exchange, then the call is repeated."""
    set_conn(monkeypatch, emu.url, keypair)
    client = SalesforceJWTHook(CONN_ID).get_conn()
    client.auth.token()
    emu.identity.revoke_all()  # the session ended (timeout, logout, admin)
    identity = client.identity()
    assert identity["preferred_username"] == USERNAME
    assert emu.stats.token_exchanges == 2
    assert emu.stats.statuses[403] == 1


def test_health_check_does_a_real_exchange_even_with_a_stored_token(monkeypatch, emu, keypair):
    """A token another task stored must not stand in for the login the check is there to prove;
    its session having ended must not raise a false alarm either."""
    set_conn(monkeypatch, emu.url, keypair, certificate(keypair, 200.5))
    SalesforceJWTHook(CONN_ID).get_conn().limits()  # an earlier task stored a token
    assert emu.stats.token_exchanges == 1
    emu.identity.revoke_all()
    summary = run_operator()
    assert summary["user_id"]
    assert emu.stats.token_exchanges == 2
    assert 403 not in emu.stats.statuses  # its own fresh token, not the stored one
    run_operator()
    assert emu.stats.token_exchanges == 3  # every run logs in
