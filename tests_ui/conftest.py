"""Browser tests: Debian's Chromium, driven by Playwright, against the stack `make ui` starts.

Separate from ``tests/`` so ``make test`` needs no browser; ``make test-ui`` installs Chromium from
Debian (scripts/ui_setup.sh) and Playwright from PyPI. Playwright's own browser download is never
used: the launch names ``/usr/bin/chromium`` (override with ``SFJWT_CHROMIUM``), and every launch
gets a fresh temporary profile (Playwright's default; it refuses a ``--user-data-dir`` argument).

Screenshots go to ``.ui/test/screenshots``; ``--screenshots docs/images`` refreshes the README's.
A failing test also leaves ``.ui/test/failures/<test>.png`` and the Airflow logs in ``.ui/test``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".ui" / "test"
sys.path.insert(0, str(REPO / "scripts"))

import ui  # noqa: E402  (scripts/ui.py: the `make ui` driver)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        default=str(WORK / "screenshots"),
        help="directory for the screenshots the tests take (docs/images refreshes the README's)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def airflow_ui() -> Iterator[ui.AirflowUI]:
    """The emulator and Airflow, started once for the session and always stopped."""
    with ui.AirflowUI(work=WORK, accounts=3000) as stack:
        yield stack


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = os.environ.get("SFJWT_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"{executable} not found: run scripts/ui_setup.sh (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(
    browser: Browser, airflow_ui: ui.AirflowUI, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A logged-in page in a fresh context (its own cookies and clipboard permission)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=airflow_ui.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(airflow_ui.url)
    page.get_by_label("Username").fill(ui.ADMIN_USER)
    page.get_by_label("Password").fill(ui.ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{airflow_ui.url}/")
    yield page
    if request.node.stash.get(_FAILED, False):
        failures = WORK / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=failures / f"{request.node.name}.png", full_page=True)
    context.close()


@pytest.fixture(scope="session")
def screenshots(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.getoption("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path
