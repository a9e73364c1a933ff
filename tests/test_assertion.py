"""The JWT assertion, checked by a verifier that shares no code with PyJWT (joserfc)."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError
from joserfc.jwk import RSAKey

from airflow_provider_sfjwt.salesforce.auth import (
    MAX_ASSERTION_LIFETIME,
    build_assertion,
)
from airflow_provider_sfjwt.salesforce.keys import certificate_to_pem
from airflow_provider_sfjwt.salesforce.settings import parse_connection

CONSUMER_KEY = "3MVG9TESTCONSUMERKEY"
USERNAME = "integration@example.com"
AUDIENCE = "https://login.salesforce.com"


def verify(assertion: str, cert_pem: bytes, iss=CONSUMER_KEY, sub=USERNAME, aud=AUDIENCE) -> dict:
    """What Salesforce does with an assertion, written against joserfc instead of PyJWT."""
    key = RSAKey.import_key(cert_pem)
    token = jose_jwt.decode(assertion, key, algorithms=["RS256"])
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": iss},
        sub={"essential": True, "value": sub},
        aud={"essential": True, "value": aud},
        exp={"essential": True},
    )
    registry.validate(token.claims)
    if token.claims["exp"] > time.time() + MAX_ASSERTION_LIFETIME + 5:
        raise InvalidClaimError("exp")
    return token.claims


@pytest.fixture
def settings(keypair):
    return parse_connection(
        host="https://login.salesforce.com",
        login=USERNAME,
        password=None,
        extra={"consumer_key": CONSUMER_KEY, "private_key": keypair.pem.replace("\n", "\\n")},
    )


def _assertion(settings, **overrides):
    args = dict(
        private_key=settings.load_private_key(),
        consumer_key=settings.consumer_key,
        username=settings.username,
        audience=settings.audiences[0],
    )
    overrides = dict(overrides)
    offset = overrides.pop("now_offset", None)
    if offset is not None:  # relative to when the test runs, not when it was collected
        overrides["now"] = time.time() + offset
    args.update(overrides)
    return build_assertion(**args)


def test_assertion_is_accepted_by_an_independent_verifier(settings, keypair):
    claims = verify(_assertion(settings), certificate_to_pem(keypair.cert))
    assert claims["iss"] == CONSUMER_KEY
    assert claims["sub"] == USERNAME
    assert claims["aud"] == AUDIENCE
    assert time.time() < claims["exp"] <= time.time() + MAX_ASSERTION_LIFETIME


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"consumer_key": "3MVG9OTHERAPP"}, InvalidClaimError),
        ({"username": "someone.else@example.com"}, InvalidClaimError),
        ({"audience": "https://test.salesforce.com"}, InvalidClaimError),
        ({"now_offset": -600}, ExpiredTokenError),
        ({"now_offset": 600}, InvalidClaimError),
    ],
    ids=["iss", "sub", "aud", "exp-past", "exp-far-future"],
)
def test_verifier_rejects_wrong_claims(settings, keypair, overrides, error):
    with pytest.raises(error):
        verify(_assertion(settings, **overrides), certificate_to_pem(keypair.cert))


def test_verifier_rejects_another_keys_signature(settings, keypair, other_keypair):
    with pytest.raises(BadSignatureError):
        verify(
            _assertion(settings, private_key=other_keypair.key), certificate_to_pem(keypair.cert)
        )


def test_verifier_rejects_a_tampered_payload(settings, keypair):
    header, payload, signature = _assertion(settings).split(".")
    forged = _assertion(settings, username="admin@example.com").split(".")[1]
    with pytest.raises(BadSignatureError):
        verify(
            f"{header}.{forged}.{signature}",
            certificate_to_pem(keypair.cert),
            sub="admin@example.com",
        )


def test_lifetime_is_bounded_by_salesforce_maximum(settings):
    with pytest.raises(ValueError):
        _assertion(settings, lifetime=MAX_ASSERTION_LIFETIME + 1)


def test_header_is_rs256(settings):
    import base64
    import json

    header = json.loads(base64.urlsafe_b64decode(_assertion(settings).split(".")[0] + "=="))
    assert header["alg"] == "RS256"
