"""Drivers for the fidelity suite: simple-salesforce (a client nobody here wrote) and this
provider's hook, both against the same TLS emulator (simple-salesforce only speaks https).

Each fidelity test states what Salesforce answers (status, errorCode, shape) and checks that a
real client sees exactly that. ``pytestmark = FIDELITY`` in a module gives its tests a TLS
emulator whose Bulk jobs finish on the first poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import ApiError
from airflow_provider_sfjwt.salesforce.retry import RetryPolicy
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.testing import EmulatorHandle

FIDELITY = pytest.mark.salesforce_emulator(tls=True, bulk_poll_transitions=1)
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def simple_salesforce(
    handle: EmulatorHandle, version: str | None = None, username: str | None = None
) -> Salesforce:
    """A simple-salesforce client on a token exchanged with the handle's key (its default API
    version, 59.0, unless ``version`` is given) for the handle's user (or ``username``)."""
    session = requests.Session()
    session.verify = handle.emulator.ca_cert_path
    session.trust_env = False
    claims = {
        "iss": handle.consumer_key,
        "sub": username or handle.username,
        "aud": handle.url,
        "exp": int(time.time()) + 170,
    }
    assertion = jwt.encode(claims, handle.private_key_pem, algorithm="RS256")
    token = session.post(
        handle.url + "/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": assertion},
        timeout=10,
    ).json()
    options: dict[str, Any] = {"version": version} if version else {}
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        **options,
    )


@pytest.fixture
def ssf(salesforce_emulator: EmulatorHandle) -> Salesforce:
    return simple_salesforce(salesforce_emulator)


def provider_client(handle: EmulatorHandle, **extra: Any) -> SalesforceClient:
    """This provider's client on a connection to the handle's emulator with ``extra`` settings
    (``api_version="31.0"``), no retries: refusals are final."""
    conn = handle.conn
    settings = parse_connection(
        host=conn["host"], login=conn["login"], password=None, extra={**conn["extra"], **extra}
    )
    return SalesforceClient(settings, retry=RetryPolicy(max_retries=0))


@pytest.fixture
def hook(salesforce_emulator: EmulatorHandle) -> SalesforceJWTHook:
    """The provider's hook on the fixture's connection (no retries: refusals are final)."""
    return SalesforceJWTHook(salesforce_emulator.conn_id)


def refused(call: Callable[[], Any]) -> tuple[int, str, str, dict[str, Any]]:
    """``(status, errorCode, message, first error)`` of the error simple-salesforce raises."""
    with pytest.raises(SalesforceError) as caught:
        call()
    first = caught.value.content[0]
    return caught.value.status, first["errorCode"], first["message"], dict(first)


def hook_refused(call: Callable[[], Any]) -> tuple[int, str, str]:
    """``(status, errorCode, message)`` of the ApiError the provider raises."""
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.error_code, caught.value.message
