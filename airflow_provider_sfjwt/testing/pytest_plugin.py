"""pytest plugin (entry point ``pytest11: sfjwt_emulator``): the ``salesforce_emulator`` fixture.

The fixture yields a started emulator with a Connected App, an approved user and a key pair, and
sets ``AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT`` so hooks and operators under test find it with the
default connection id. Airflow itself is not imported: the connection travels as an env var.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .emulator import SalesforceEmulator
from .keys import shared_key_pair

CONN_ID = "salesforce_jwt_default"
USERNAME = "integration@emulator.example.com"
CONSUMER_KEY = "3MVG9emulator.consumer.key"


def conn_env_var(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


@pytest.fixture
def salesforce_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    """A started emulator wired to the ``salesforce_jwt_default`` Airflow connection.

    Attributes added for tests: ``conn_id``, ``username``, ``consumer_key``,
    ``private_key_pem`` (str), ``certificate_pem``, ``app`` and ``conn`` (the connection dict).
    """
    keys = shared_key_pair()
    emu = SalesforceEmulator()
    emu.start()
    try:
        emu.app = emu.add_app(CONSUMER_KEY, keys.certificate_pem, [USERNAME])  # type: ignore[attr-defined]
        emu.conn_id = CONN_ID  # type: ignore[attr-defined]
        emu.username = USERNAME  # type: ignore[attr-defined]
        emu.consumer_key = CONSUMER_KEY  # type: ignore[attr-defined]
        emu.private_key_pem = keys.private_key_pem  # type: ignore[attr-defined]
        emu.certificate_pem = keys.certificate_pem  # type: ignore[attr-defined]
        conn = emu.connection(
            CONN_ID,
            username=USERNAME,
            consumer_key=CONSUMER_KEY,
            private_key_pem=keys.private_key_pem,
        )
        emu.conn = conn  # type: ignore[attr-defined]
        monkeypatch.setenv(conn_env_var(CONN_ID), json.dumps(conn))
        yield emu
    finally:
        emu.stop()
