"""pytest plugin (entry point ``pytest11: sfjwt_emulator``): the ``salesforce_emulator`` fixture.

pytest loads this module in every test run wherever the provider is installed, so it imports
nothing heavy: the emulator (and its HTTP server, JWT and crypto imports) is loaded by the
fixture, when a test asks for it.

The fixture yields an :class:`~.wiring.EmulatorHandle`: a started emulator with a Connected App,
an approved user and a key pair. For the test's duration it sets
``AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT`` (hooks and operators under test find the emulator with
the default connection id; Airflow itself is not imported) and ``SFJWT_TOKEN_CACHE_DIR`` (tokens
go to a temporary store, never to the user's real ``~/.cache/sfjwt/tokens``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .wiring import EmulatorHandle

TOKEN_DIR_ENV = "SFJWT_TOKEN_CACHE_DIR"
"""The provider's token store directory variable (``salesforce.token_store.DIR_ENV``); not
imported from there to keep this module light."""


MARKER = "salesforce_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): SalesforceEmulator options for the salesforce_emulator fixture "
        "of the marked tests, e.g. tls=True (clients that only speak https) or page_size=200.",
    )


@pytest.fixture
def salesforce_emulator(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmulatorHandle]:
    """A started emulator wired to the ``salesforce_jwt_default`` Airflow connection.

    ``@pytest.mark.salesforce_emulator(tls=True, ...)`` on a test, class or module passes
    options to the emulator (any ``SalesforceEmulator`` argument)."""
    from .emulator import SalesforceEmulator
    from .wiring import conn_env_var, wire

    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    monkeypatch.setenv(TOKEN_DIR_ENV, str(tmp_path_factory.mktemp("sfjwt-tokens") / "store"))
    with SalesforceEmulator(**options) as emu:
        handle = wire(emu, **({"ca_bundle": emu.ca_cert_path} if emu.ca_cert_path else {}))
        monkeypatch.setenv(conn_env_var(handle.conn_id), json.dumps(handle.conn))
        yield handle
