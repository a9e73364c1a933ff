"""Fixtures shared by the reliability matrices: the cell recorder and a per-cell emulator."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from airflow_provider_sfjwt.testing import SalesforceEmulator
from airflow_provider_sfjwt.testing.keys import shared_key_pair
from airflow_provider_sfjwt.testing.wiring import CONN_ID, CONSUMER_KEY, USERNAME

from .recorder import RECORDER, Cell

TEST_ALL = bool(os.environ.get("SFJWT_TEST_ALL"))
"""Every cell and every slow run (CI, ``make reliability``); plain ``make test`` runs a slice
that keeps it within its time budget."""


@pytest.fixture
def cell(request: pytest.FixtureRequest) -> Iterator[Cell]:
    """The matrix cell this test fills in; pass/fail is set from pytest's verdict."""
    cell = RECORDER.new_cell()
    request.node._matrix_cell = cell
    started = time.monotonic()
    yield cell
    cell.seconds = round(time.monotonic() - started, 2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    cell = getattr(item, "_matrix_cell", None)
    if cell is None:
        return
    if report.when == "call":
        cell.status = "pass" if report.passed else "fail"
        if report.failed and not cell.outcome:
            cell.outcome = str(call.excinfo.value).splitlines()[0][:200] if call.excinfo else ""
    elif report.failed:
        cell.status = "fail"


def pytest_sessionfinish(session: pytest.Session) -> None:
    RECORDER.write()


def start_emulator(page_size: int = 2000, tls: bool = False) -> SalesforceEmulator:
    """A started emulator with one Connected App and its approved integration user."""
    keys = shared_key_pair()
    emu = SalesforceEmulator(page_size=page_size, tls=tls, bulk_poll_transitions=1)
    emu.start()
    emu.add_app(CONSUMER_KEY, keys.certificate_pem, [USERNAME])
    return emu


def connection(emu: SalesforceEmulator, **extra: object) -> dict:
    """The default connection for ``emu`` (fast retries unless ``extra`` says otherwise)."""
    keys = shared_key_pair()
    settings = {"max_retries": 3, "request_timeout": 10}
    settings.update(extra)
    return emu.connection(
        CONN_ID,
        username=USERNAME,
        consumer_key=CONSUMER_KEY,
        private_key_pem=keys.private_key_pem,
        **settings,
    )


def use_connection(monkeypatch: pytest.MonkeyPatch, conn: dict, conn_id: str = CONN_ID) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_" + conn_id.upper(), json.dumps(conn))
