"""How an emulator is wired to Airflow: the default org identity, the connection, the handle.

Shared by the pytest fixture and ``sfjwt emulator``, so a test and a developer's local Airflow
see the same consumer key, username and connection id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import App
    from .emulator import SalesforceEmulator

CONN_ID = "salesforce_jwt_default"
USERNAME = "integration@emulator.example.com"
CONSUMER_KEY = "3MVG9emulator.consumer.key"


def conn_env_var(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return "AIRFLOW_CONN_" + conn_id.upper()


@dataclass(frozen=True)
class EmulatorHandle:
    """A started emulator with one Connected App, its approved user and its key pair.

    What the ``salesforce_emulator`` fixture yields: the emulator itself (``emulator``: load
    data, inject faults, read ``stats``) and everything a test needs to reach it as Airflow
    would (``conn_id`` and the ``conn`` dict, the key and certificate, the ``app`` to rotate
    certificates on).
    """

    emulator: SalesforceEmulator
    app: App
    conn_id: str
    username: str
    consumer_key: str
    private_key_pem: str
    certificate_pem: str
    conn: dict[str, Any]

    @property
    def url(self) -> str:
        """The emulator's base URL (the connection's Login URL)."""
        return self.emulator.url


def wire(
    emulator: SalesforceEmulator,
    conn_id: str = CONN_ID,
    username: str = USERNAME,
    consumer_key: str = CONSUMER_KEY,
    **extra: Any,
) -> EmulatorHandle:
    """Register a Connected App with the process-wide test key pair on ``emulator`` (started)
    and describe the Airflow connection that reaches it; ``extra`` goes to the connection."""
    from .keys import shared_key_pair

    keys = shared_key_pair()
    app = emulator.add_app(consumer_key, keys.certificate_pem, [username])
    conn = emulator.connection(
        conn_id,
        username=username,
        consumer_key=consumer_key,
        private_key_pem=keys.private_key_pem,
        **extra,
    )
    return EmulatorHandle(
        emulator,
        app,
        conn_id,
        username,
        consumer_key,
        keys.private_key_pem,
        keys.certificate_pem,
        conn,
    )
