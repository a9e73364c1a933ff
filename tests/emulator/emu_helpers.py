"""Helpers and fixtures for the emulator's own tests: signed assertions, a logged-in session.

The emulator itself is the suite's ``emu`` fixture (``tests/conftest.py``). Everything talks real
HTTP on loopback; assertions are signed with PyJWT directly so these tests depend only on the
emulator, not on the provider's client.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests

from airflow_provider_sfjwt.testing import (
    KeyPair,
    SalesforceEmulator,
    new_key_pair,
    shared_key_pair,
)
from airflow_provider_sfjwt.testing.wiring import CONSUMER_KEY as CK
from airflow_provider_sfjwt.testing.wiring import USERNAME as USER

V = "66.0"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="session")
def keys() -> KeyPair:
    return shared_key_pair()


@pytest.fixture(scope="session")
def other_keys() -> KeyPair:
    return new_key_pair("other")


def assertion(
    keys: KeyPair,
    aud: str = "https://login.salesforce.com",
    iss: str = CK,
    sub: str = USER,
    exp: Any = "default",
    **extra: Any,
) -> str:
    claims: dict[str, Any] = {"iss": iss, "sub": sub, "aud": aud, **extra}
    if exp == "default":
        claims["exp"] = int(time.time()) + 170
    elif exp is not None:
        claims["exp"] = exp
    return jwt.encode(claims, keys.private_key_pem, algorithm="RS256")


def exchange(emu: SalesforceEmulator, token_assertion: str, **kw: Any) -> requests.Response:
    return requests.post(
        emu.url + "/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": token_assertion},
        timeout=10,
        **kw,
    )


def login(emu: SalesforceEmulator, keys: KeyPair, **kw: Any) -> requests.Session:
    resp = exchange(emu, assertion(keys), **kw)
    assert resp.status_code == 200, resp.text
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + resp.json()["access_token"]
    return s


@pytest.fixture
def sf(emu: SalesforceEmulator, keys: KeyPair) -> requests.Session:
    """A requests session with a valid bearer token for ``emu``."""
    return login(emu, keys)


def api(emu: SalesforceEmulator, path: str) -> str:
    return f"{emu.url}/services/data/v{V}/{path.lstrip('/')}"
