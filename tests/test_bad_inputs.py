"""Every bad connection input is refused before any HTTP request, naming the field and the fix."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.errors import ConfigurationError
from airflow_provider_sfjwt.salesforce.keys import pem_lines, private_key_to_pem

CONSUMER_KEY = "3MVG9BADINPUTTEST"
USERNAME = "integration@example.com"
CONN_ID = "sf_bad_input"


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def CASES(kp):
    """(id, connection overrides, field named, words in the message)."""
    encrypted = private_key_to_pem(kp.key, "right-passphrase").decode()
    return [
        ("no-consumer-key", {"extra": {"consumer_key": ""}}, "consumer_key", ["Consumer Key"]),
        ("no-username", {"login": ""}, "login", ["Username"]),
        ("username-not-email", {"login": "just a name"}, "login", ["user@example.com"]),
        (
            "key-and-ref",
            {"extra": {"private_key_ref": "env:SOMEWHERE"}},
            "private_key",
            ["both set", "exactly one"],
        ),
        ("no-key", {"extra": {"private_key": ""}}, "private_key", ["both empty", "file:/path"]),
        (
            "ref-file-missing",
            {"extra": {"private_key": "", "private_key_ref": "file:/no/such/key.pem"}},
            "private_key_ref",
            ["/no/such/key.pem", "does not exist"],
        ),
        (
            "ref-env-missing",
            {"extra": {"private_key": "", "private_key_ref": "env:SFJWT_NOT_SET_ANYWHERE"}},
            "private_key_ref",
            ["SFJWT_NOT_SET_ANYWHERE"],
        ),
        (
            "ref-variable-missing",
            {"extra": {"private_key": "", "private_key_ref": "variable:sfjwt_no_such_variable"}},
            "private_key_ref",
            ["sfjwt_no_such_variable", "does not exist"],
        ),
        ("not-a-pem", {"extra": {"private_key": "hello"}}, "private_key", ["not a PEM"]),
        (
            "ec-key",
            {"extra": {"private_key": _pem(ec.generate_private_key(ec.SECP256R1()))}},
            "private_key",
            ["EC key", "RSA"],
        ),
        (
            "dsa-key",
            {"extra": {"private_key": _pem(dsa.generate_private_key(2048))}},
            "private_key",
            ["DSA key"],
        ),
        (
            "rsa-1024",
            {"extra": {"private_key": _pem(rsa.generate_private_key(65537, 1024))}},
            "private_key",
            ["1024 bits", "2048"],
        ),
        (
            "encrypted-no-passphrase",
            {"extra": {"private_key": encrypted}},
            "password",
            ["encrypted", "Key passphrase"],
        ),
        (
            "wrong-passphrase",
            {"password": "not-the-passphrase", "extra": {"private_key": encrypted}},
            "password",
            ["wrong passphrase"],
        ),
        (
            "http-remote",
            {"host": "http://login.salesforce.com"},
            "host",
            ["https://login.salesforce.com"],
        ),
        (
            "lightning-ui-host",
            {"host": "https://acme.lightning.force.com"},
            "host",
            ["UI host", "https://acme.my.salesforce.com"],
        ),
        (
            "sandbox-lightning-ui-host",
            {"host": "https://acme--uat.sandbox.lightning.force.com"},
            "host",
            ["https://acme--uat.sandbox.my.salesforce.com"],
        ),
        (
            "url-with-credentials",
            {"host": "https://user:pw@login.salesforce.com"},
            "host",
            ["user name or password"],
        ),
        ("bad-audience", {"extra": {"audience": "production"}}, "audience", ["not a URL"]),
        ("bad-timeout", {"extra": {"request_timeout": "soon"}}, "request_timeout", ["number"]),
    ]


def test_each_bad_input_fails_before_the_network(monkeypatch, emu, keypair):
    cases = CASES(keypair)
    seen = []
    for case_id, overrides, field, words in cases:
        extra = {"consumer_key": CONSUMER_KEY, "private_key": keypair.pem}
        extra.update(overrides.get("extra", {}))
        conn = {
            "conn_type": "salesforce_jwt",
            "host": overrides.get("host", emu.url),
            "login": overrides.get("login", USERNAME),
            "password": overrides.get("password"),
            "extra": extra,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        with pytest.raises(ConfigurationError) as caught:
            SalesforceJWTHook(CONN_ID).get_conn()
        err = caught.value
        assert err.field == field, (case_id, str(err))
        for word in words:
            assert word.lower() in str(err).lower(), (case_id, word, str(err))
        ok, message = SalesforceJWTHook(CONN_ID).test_connection()
        assert not ok and message == str(err), case_id
        for line in pem_lines(keypair.pem):
            assert line not in str(err) and line not in repr(err)
        seen.append(case_id)
    assert emu.stats.token_exchanges == 0
    assert emu.stats.api_calls == 0
    assert len(seen) == len(cases)
