"""Token exchange against the emulator: success, every token error and its hint, the cache."""

from __future__ import annotations

import json
import re
import threading

import pytest
from requests.adapters import HTTPAdapter

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce import errors
from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE
from airflow_provider_sfjwt.salesforce.client import SalesforceClient, make_session
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.testing import SalesforceEmulator
from airflow_provider_sfjwt.testing.wiring import CONSUMER_KEY, USERNAME

CONN_ID = "sf_auth_test"


def set_conn(monkeypatch, emu, keypair, conn_id=CONN_ID, password=None, **extra):
    fields = {"consumer_key": CONSUMER_KEY, "private_key": keypair.pem, "max_retries": 0}
    fields.update(extra)
    conn = {
        "conn_type": "salesforce_jwt",
        "host": emu.url,
        "login": USERNAME,
        "password": password,
        "extra": fields,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_test_connection_reports_instance_user_and_version(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    ok, message = SalesforceJWTHook(CONN_ID).test_connection()
    assert ok, message
    assert message == f"Connected to {emu.url} as {USERNAME}, API v66.0"


def test_fifty_hook_calls_cause_one_exchange(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    for _ in range(50):
        SalesforceJWTHook(CONN_ID).get_conn().limits()
    assert emu.stats.token_exchanges == 1
    assert TOKEN_CACHE.exchanges == 1


def test_eight_threads_on_a_cold_cache_cause_one_exchange(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    emu.faults.delay("/services/oauth2/token", 0.3)  # widen the race window
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def work():
        try:
            hook = SalesforceJWTHook(CONN_ID)
            assert hook.settings.username == USERNAME  # parse before the race
            barrier.wait()
            hook.get_conn().limits()
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    assert emu.stats.token_exchanges == 1


def test_revoked_session_causes_exactly_one_reexchange(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    hooks = [SalesforceJWTHook(CONN_ID) for _ in range(8)]
    hooks[0].get_conn().limits()
    assert emu.stats.token_exchanges == 1
    emu.faults.revoke_sessions()
    barrier = threading.Barrier(8)
    results: list[object] = []

    def work(hook):
        barrier.wait()
        results.append(hook.get_conn().limits())

    threads = [threading.Thread(target=work, args=(h,)) for h in hooks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    assert emu.stats.token_exchanges == 2


TOKEN_ERROR_CASES = [
    # (error, description, status, exception type, words the hint must contain)
    (
        "invalid_grant",
        "user hasn't approved this consumer",
        400,
        errors.UserNotApprovedError,
        ["pre-authorized", "permission set", "Username"],
    ),
    (
        "invalid_grant",
        "user is not admin approved to access this app",
        400,
        errors.UserNotApprovedError,
        ["pre-authorized", "profile"],
    ),
    (
        "invalid_app_access",
        "user is not admin approved to access this app",
        400,
        errors.UserNotApprovedError,
        ["pre-authorized"],
    ),
    (
        "invalid_grant",
        "audience is invalid",
        400,
        errors.AudienceInvalidError,
        ["https://test.salesforce.com", "sandbox", "audience"],
    ),
    (
        "invalid_grant",
        "invalid assertion",
        400,
        errors.InvalidAssertionError,
        ["certificate", "consumer_key", "clock"],
    ),
    (
        "invalid_grant",
        "expired access/refresh token",
        400,
        errors.ExpiredAssertionError,
        ["clock", "NTP"],
    ),
    (
        "invalid_grant",
        "authentication failure",
        400,
        errors.AuthenticationFailureError,
        ["Login IP Ranges", "Login Hours", "frozen"],
    ),
    (
        "invalid_client_id",
        "client identifier invalid",
        400,
        errors.InvalidClientIdError,
        ["consumer_key", "2 to 10 minutes"],
    ),
    (
        "invalid_client",
        "invalid client credentials",
        400,
        errors.InvalidClientError,
        ["Enable JWT Bearer Flow"],
    ),
    (
        "app_not_found",
        "External client app is not installed in this org",
        400,
        errors.AppNotFoundError,
        ["External Client App", "My Domain"],
    ),
    (
        "unsupported_grant_type",
        "grant type not supported",
        400,
        errors.UnsupportedGrantTypeError,
        ["proxy"],
    ),
    ("inactive_user", "user is inactive", 400, errors.InactiveUserError, ["API Enabled"]),
    ("inactive_org", "org is locked", 400, errors.InactiveOrgError, ["locked"]),
    (
        "rate_limit_exceeded",
        "ip/user rate limit exceeded",
        400,
        errors.LoginRateExceededError,
        ["3,600"],
    ),
    ("server_error", "maintenance", 503, errors.TokenEndpointError, ["status.salesforce.com"]),
]


@pytest.mark.parametrize(
    "error, description, status, exc_type, words",
    TOKEN_ERROR_CASES,
    ids=[f"{c[0]}:{c[1][:24]}" for c in TOKEN_ERROR_CASES],
)
def test_every_token_error_maps_to_a_type_and_a_hint(
    monkeypatch, emu, keypair, error, description, status, exc_type, words
):
    set_conn(monkeypatch, emu, keypair)
    emu.faults.token_error(error, description, status=status)
    with pytest.raises(errors.AuthenticationError) as caught:
        SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    exc = caught.value
    assert type(exc) is exc_type
    text = str(exc)
    assert f"{error}: {description}" in text  # Salesforce's words, verbatim
    assert "What it usually means:" in text
    for word in words:
        assert word.lower() in text.lower(), (word, text)
    ok, message = SalesforceJWTHook(CONN_ID).test_connection()
    assert not ok
    assert message == text


def test_html_body_is_reported_as_not_a_token_endpoint(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    emu.faults.token_error("x", "y", status=502, html=True)
    with pytest.raises(errors.TokenEndpointError) as caught:
        SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    assert "HTML" in str(caught.value)
    assert "HTTP 502" in str(caught.value)


def test_non_json_body(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    emu.faults.fail("/services/oauth2/token", 400, body="plain words, no json")
    with pytest.raises(errors.TokenEndpointError) as caught:
        SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    assert "not JSON" in str(caught.value)


def test_token_endpoint_5xx_is_retried_then_succeeds(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair, max_retries=3)
    emu.faults.fail("/services/oauth2/token", 503, count=2, retry_after=0)
    token = SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    assert token.instance_url == emu.url


def test_timeout_names_the_setting(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair, request_timeout=1)
    emu.faults.delay("/services/oauth2/token", 3)
    with pytest.raises(errors.TokenEndpointUnreachableError) as caught:
        SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    assert "timed out" in str(caught.value)
    assert "request_timeout" in str(caught.value)


def test_tls_failure_names_the_ca_bundle(monkeypatch, keypair):
    with SalesforceEmulator(tls=True) as emu:
        emu.add_app(
            consumer_key=CONSUMER_KEY, certificate_pem=keypair.cert_pem, usernames=[USERNAME]
        )
        set_conn(monkeypatch, emu, keypair)
        with pytest.raises(errors.TokenEndpointUnreachableError) as caught:
            SalesforceJWTHook(CONN_ID).get_conn().auth.token()
        assert "TLS" in str(caught.value)
        assert "REQUESTS_CA_BUNDLE" in str(caught.value)
        # With the emulator's CA configured, the same connection works.
        TOKEN_CACHE.clear()
        set_conn(monkeypatch, emu, keypair, ca_bundle=str(emu.ca_cert_path))
        assert SalesforceJWTHook(CONN_ID).test_connection()[0]


def test_clock_skew_is_named_in_the_error(monkeypatch, emu, keypair):
    set_conn(monkeypatch, emu, keypair)
    emu.clock_skew = -600  # Salesforce's clock 10 minutes behind ours: exp looks far in the future
    with pytest.raises(errors.InvalidAssertionError) as caught:
        SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    text = str(caught.value)
    # The Date header has one-second resolution.
    assert re.search(r"Salesforce's clock is (599|600|601) s behind this machine's", text), text
    assert "NTP" in text


def test_wrong_certificate_is_invalid_assertion(monkeypatch, emu, keypair, other_keypair):
    set_conn(monkeypatch, emu, other_keypair)
    with pytest.raises(errors.InvalidAssertionError) as caught:
        SalesforceJWTHook(CONN_ID).get_conn().auth.token()
    assert "invalid_grant: invalid assertion" in str(caught.value)


def test_external_client_app_wants_my_domain_audience(monkeypatch, keypair):
    with SalesforceEmulator() as emu:
        emu.add_app(
            consumer_key=CONSUMER_KEY,
            certificate_pem=keypair.cert_pem,
            usernames=[USERNAME],
            kind="external",
        )
        set_conn(monkeypatch, emu, keypair)  # derived audience = the Login URL itself
        assert SalesforceJWTHook(CONN_ID).test_connection()[0]
        TOKEN_CACHE.clear()
        set_conn(monkeypatch, emu, keypair, audience="https://login.salesforce.com")
        with pytest.raises(errors.AppNotFoundError) as caught:
            SalesforceJWTHook(CONN_ID).get_conn().auth.token()
        assert "Audiences tried: https://login.salesforce.com" in str(caught.value)


def test_secrets_are_registered_with_the_masker(monkeypatch, emu, keypair):
    from airflow_provider_sfjwt.compat import redact
    from airflow_provider_sfjwt.salesforce.keys import pem_lines, private_key_to_pem

    passphrase = "masked-passphrase-123"
    encrypted = private_key_to_pem(keypair.key, passphrase).decode()
    set_conn(monkeypatch, emu, keypair, password=passphrase, private_key=encrypted)
    hook = SalesforceJWTHook(CONN_ID)
    token = hook.get_conn().auth.token()
    assert redact(token.access_token) == "***"
    assert redact(passphrase) == "***"
    for line in pem_lines(encrypted):
        assert redact(f"leak {line}") == "leak ***"
    assert token.access_token not in repr(token)
    assert "PRIVATE" not in repr(hook.settings)


class _DnsToEmulator(HTTPAdapter):
    """Resolves a real-looking My Domain host to the emulator (a network stand-in, not a mock)."""

    def __init__(self, host: str, emulator_url: str) -> None:
        super().__init__()
        self.host, self.emulator_url = host, emulator_url

    def send(self, request, **kwargs):
        request.url = request.url.replace(self.host, self.emulator_url, 1)
        return super().send(request, **kwargs)


@pytest.mark.parametrize(
    "my_domain, sandbox, fallback",
    [
        ("https://acme.my.salesforce.com", False, "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", True, "https://test.salesforce.com"),
    ],
)
def test_my_domain_audience_falls_back_once_and_is_remembered(
    keypair, my_domain, sandbox, fallback
):
    """A Connected App that refuses the My Domain audience gets one retry with login/test."""
    with SalesforceEmulator() as emu:
        emu.add_app(
            consumer_key=CONSUMER_KEY,
            certificate_pem=keypair.cert_pem,
            usernames=[USERNAME],
            sandbox=sandbox,
        )
        # The org's instance is its My Domain too (https), which the session routes here.
        emu.faults.token_instance_url(my_domain)
        settings = parse_connection(
            host=my_domain,
            login=USERNAME,
            password=None,
            extra={"consumer_key": CONSUMER_KEY, "private_key": keypair.pem},
        )
        session = make_session()
        session.mount(my_domain, _DnsToEmulator(my_domain, emu.url))
        client = SalesforceClient(settings, session=session)
        token = client.auth.token()
        assert token.audience == fallback
        assert [a["aud"] for a in map(_claims, emu.received_assertions)] == [my_domain, fallback]
        # Remembered: after a revoked session the working audience is tried first.
        emu.faults.revoke_sessions()
        client.limits()
        assert _claims(emu.received_assertions[-1])["aud"] == fallback
        assert len(emu.received_assertions) == 3  # no second try of the refused audience
        assert emu.stats.token_exchanges == 2


def test_final_audience_error_names_every_audience_tried(keypair):
    with SalesforceEmulator() as emu:
        emu.add_app(
            consumer_key=CONSUMER_KEY, certificate_pem=keypair.cert_pem, usernames=[USERNAME]
        )
        my_domain = "https://acme.my.salesforce.com"
        settings = parse_connection(
            host=my_domain,
            login=USERNAME,
            password=None,
            extra={"consumer_key": CONSUMER_KEY, "private_key": keypair.pem, "max_retries": 0},
        )
        session = make_session()
        session.mount(my_domain, _DnsToEmulator(my_domain, emu.url))
        emu.faults.token_error("invalid_grant", "audience is invalid")
        with pytest.raises(errors.AudienceInvalidError) as caught:
            SalesforceClient(settings, session=session).auth.token()
    assert "Audiences tried: https://acme.my.salesforce.com, https://login.salesforce.com" in str(
        caught.value
    )


def _my_domain_client(emu, keypair, my_domain="https://acme.my.salesforce.com", **extra):
    settings = parse_connection(
        host=my_domain,
        login=USERNAME,
        password=None,
        extra={"consumer_key": CONSUMER_KEY, "private_key": keypair.pem, **extra},
    )
    emu.faults.token_instance_url(my_domain)  # the org's instance is its My Domain (https)
    session = make_session()
    session.mount(my_domain, _DnsToEmulator(my_domain, emu.url))
    return SalesforceClient(settings, session=session)


def test_derived_audience_falls_back_on_user_not_approved(keypair):
    """A wrong aud is reported to come back as "user hasn't approved this consumer": with a
    derived audience that answer moves on to login/test like an audience rejection."""
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME], audience_error="user_not_approved")
        token = _my_domain_client(emu, keypair).auth.token()
        assert token.audience == "https://login.salesforce.com"
        assert [_claims(a)["aud"] for a in emu.received_assertions] == [
            "https://acme.my.salesforce.com",
            "https://login.salesforce.com",
        ]


def test_user_not_approved_on_every_audience_says_a_wrong_audience_can_cause_it(keypair):
    """Not pre-authorised for real: both audiences answer the same, the error names both and
    keeps the pre-authorisation first, with the audience as a possible cause."""
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [])  # nobody pre-authorised
        emu.add_user(USERNAME)
        with pytest.raises(errors.UserNotApprovedError) as caught:
            _my_domain_client(emu, keypair).auth.token()
    text = str(caught.value)
    assert "Audiences tried: https://acme.my.salesforce.com, https://login.salesforce.com" in text
    assert caught.value.checks[0] == errors.CHECK_PREAUTHORIZED
    assert "a wrong audience" in text


def test_the_informative_error_wins_over_a_plain_audience_rejection(keypair):
    """The My Domain audience reaches the app, whose user is not approved; login.salesforce.com is
    then refused as an audience. The user-approval error is the one that says what to fix."""
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME], sandbox=True)  # refuses login
        emu.faults.token_error("invalid_grant", "user hasn't approved this consumer", count=1)
        with pytest.raises(errors.UserNotApprovedError) as caught:
            _my_domain_client(emu, keypair).auth.token()
        assert emu.stats.token_requests == 2
    assert "Audiences tried: https://acme.my.salesforce.com, https://login.salesforce.com" in str(
        caught.value
    )


def test_the_last_answer_that_reached_the_app_is_the_one_raised(keypair):
    """The My Domain audience is refused as "user hasn't approved"; login.salesforce.com then
    reaches the app and the user is inactive: that later, more specific error is raised."""
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME], audience_error="user_not_approved")
        emu.add_user(USERNAME, active=False)
        with pytest.raises(errors.AuthenticationFailureError) as caught:
            _my_domain_client(emu, keypair).auth.token()
    assert "Audiences tried: https://acme.my.salesforce.com, https://login.salesforce.com" in str(
        caught.value
    )


def test_explicit_audience_never_falls_back(keypair):
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME], audience_error="user_not_approved")
        client = _my_domain_client(emu, keypair, audience="https://acme.my.salesforce.com")
        with pytest.raises(errors.UserNotApprovedError):
            client.auth.token()
        assert len(emu.received_assertions) == 1


def _claims(assertion: str) -> dict:
    import base64

    payload = assertion.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
