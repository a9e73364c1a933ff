"""The `salesforce_jwt` connection form and its Test button, as a platform engineer uses them.

Admin > Connections > Add, choose "Salesforce (JWT Bearer)", check the form against the design's
field table, paste a PEM key, save, press Test; then break the consumer key and press Test again.
Texts are compared with what the provider declares (``CONN_FIELDS``), field names and relabels
with the design (docs/design.md), so a drift in either shows up here.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
import ui  # scripts/ui.py, put on sys.path by conftest.py
from playwright.sync_api import Locator, Page, expect

from airflow_provider_sfjwt import CONN_FIELDS, DEFAULT_API_VERSION

CONN_ID = "salesforce_ui_test"
TYPE_NAME = "Salesforce (JWT Bearer)"
# docs/design.md, "The connection type salesforce_jwt", and the optional fields the README adds
DESIGN_EXTRA_FIELDS = {
    "consumer_key",
    "audience",
    "private_key",
    "private_key_ref",
    "certificate",
    "api_version",
    "request_timeout",
    "max_retries",
    "max_api_usage_percent",
    "ca_bundle",
    "token_cache",
    "cert_expiry_warning_days",
    "instance_domains",
}
STANDARD_FIELDS = {  # form name: (label, placeholder)
    "host": ("Login URL", "https://login.salesforce.com"),
    "login": ("Username", "integration.user@example.com"),
    "password": ("Key passphrase", "only for an encrypted private key"),
}
SENSITIVE_INPUTS = ("password", "element_private_key")
TOAST_VIEWPORT = {"width": 1280, "height": 600}


def field(dialog: Locator, name: str) -> Locator:
    """A form input by its name: ``host``/``login``/``password`` or ``element_<extra key>``."""
    return dialog.locator(f'[name="{name}"]')


def label_of(dialog: Locator, name: str) -> str:
    # The UI's <label for> does not point at the extra fields' inputs, so go through the
    # enclosing field group instead of get_by_label.
    group = field(dialog, name).locator("xpath=ancestor::*[@role='group'][1]")
    return group.locator("label").first.inner_text().replace("*", "").strip()


def open_add_connection(page: Page) -> Locator:
    """Admin > Connections > Add Connection, through the menus a person clicks."""
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    page.get_by_role("button", name="Add Connection").click()
    return page.get_by_role("dialog")


def choose_salesforce(page: Page, dialog: Locator, conn_id: str) -> None:
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_role("combobox", name="Connection Type").click()
    page.keyboard.type("Salesforce (JWT")
    page.get_by_role("option", name=TYPE_NAME).click()
    expect(field(dialog, "host")).to_be_visible()


def open_extra_fields(dialog: Locator) -> None:
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    expect(field(dialog, "element_consumer_key")).to_be_visible()


def paste(page: Page, target: Locator, text: str) -> None:
    """A real clipboard paste (Ctrl+V), as a person pastes a key into the password input."""
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    target.click()
    page.keyboard.press("Control+V")


def row(page: Page, conn_id: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_text(conn_id, exact=True))


def shoot_toast(page: Page, path) -> None:
    """Screenshot once the toast has finished sliding in (a small window keeps it readable)."""
    page.wait_for_timeout(800)
    page.screenshot(path=path)


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_form_shows_the_design_fields_with_labels_help_defaults_and_masking(
    page: Page, airflow_ui: ui.AirflowUI, screenshots
) -> None:
    dialog = open_add_connection(page)
    choose_salesforce(page, dialog, "salesforce_form_check")

    for name, (label, placeholder) in STANDARD_FIELDS.items():
        assert label_of(dialog, name) == label
        expect(field(dialog, name)).to_have_attribute("placeholder", placeholder)
    for hidden in ("port", "schema"):
        expect(field(dialog, hidden)).to_have_count(0)
    field(dialog, "host").fill("https://mycompany.my.salesforce.com")
    field(dialog, "login").fill("integration.user@mycompany.com")
    dialog.screenshot(path=screenshots / "connection-form-standard.png")

    open_extra_fields(dialog)
    assert set(CONN_FIELDS) == DESIGN_EXTRA_FIELDS
    for key, spec in CONN_FIELDS.items():
        name = f"element_{key}"
        expect(field(dialog, name)).to_be_visible()
        assert label_of(dialog, name) == spec["label"]
        expect(field(dialog, name)).to_have_accessible_description(spec["description"])
        default = spec["schema"].get("default")
        expect(field(dialog, name)).to_have_value("" if default is None else str(default))
    expect(field(dialog, "element_api_version")).to_have_value(DEFAULT_API_VERSION)

    for name in SENSITIVE_INPUTS:
        expect(field(dialog, name)).to_have_attribute("type", "password")

    # Filled in as for the README picture: the pasted key shows as dots only.
    field(dialog, "element_consumer_key").fill(ui.CONSUMER_KEY)
    paste(page, field(dialog, "element_private_key"), airflow_ui.key_pem)
    # Tall enough for the whole dialog (13 extra fields), which the picture shows in one piece.
    page.set_viewport_size({"width": 1400, "height": 2400})
    dialog.screenshot(path=screenshots / "connection-form.png")


def test_pasted_key_saves_and_test_button_connects(
    page: Page, airflow_ui: ui.AirflowUI, screenshots
) -> None:
    page.set_viewport_size(TOAST_VIEWPORT)
    dialog = open_add_connection(page)
    choose_salesforce(page, dialog, CONN_ID)
    field(dialog, "host").fill(airflow_ui.emulator.url)
    field(dialog, "login").fill(ui.USERNAME)
    open_extra_fields(dialog)
    field(dialog, "element_consumer_key").fill(ui.CONSUMER_KEY)
    key = field(dialog, "element_private_key")
    paste(page, key, airflow_ui.key_pem)
    # A single-line input flattens the pasted PEM; the provider must accept it as it is.
    pasted = key.input_value()
    assert "\n" not in pasted and pasted.startswith("-----BEGIN PRIVATE KEY-----")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(row(page, CONN_ID)).to_be_visible()

    exchanges = airflow_ui.emulator.stats.token_exchanges
    row(page, CONN_ID).get_by_role("button", name="Test Connection").click()
    success = page.get_by_text(f"Connected to {airflow_ui.emulator.url} as {ui.USERNAME}")
    expect(
        success,
        "no success message; a 'Bad Request' here means the provider's Airflow plugin "
        "(entry point airflow.plugins: salesforce_jwt) is not installed",
    ).to_be_visible()
    assert airflow_ui.emulator.stats.token_exchanges > exchanges  # the real exchange happened
    shoot_toast(page, screenshots / "connection-test.png")

    # The key never comes back to the browser: not in the list, not in the edit form.
    row(page, CONN_ID).get_by_role("button", name="Edit Connection").click()
    edit = page.get_by_role("dialog")
    open_extra_fields(edit)
    assert field(edit, "element_private_key").input_value() == "***"
    html = page.content()
    assert not [line for line in pem_body_lines(airflow_ui.key_pem) if line in html]


@pytest.fixture
def saved_connection(airflow_ui: ui.AirflowUI) -> str:
    """``CONN_ID`` as the previous test saves it, created over the REST API if it is missing."""
    token = _api_token(airflow_ui.url)
    conn = airflow_ui.emulator.connection(
        username=ui.USERNAME, consumer_key=ui.CONSUMER_KEY, private_key_pem=airflow_ui.key_pem
    )
    body = {"connection_id": CONN_ID, **conn, "extra": json.dumps(conn["extra"])}
    request = urllib.request.Request(
        f"{airflow_ui.url}/api/v2/connections/{CONN_ID}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        urllib.request.urlopen(
            urllib.request.Request(
                f"{airflow_ui.url}/api/v2/connections",
                data=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            ),
            timeout=10,
        ).close()
    return CONN_ID


def _api_token(url: str) -> str:
    request = urllib.request.Request(
        f"{url}/auth/token",
        data=json.dumps({"username": ui.ADMIN_USER, "password": ui.ADMIN_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def test_wrong_consumer_key_shows_the_mapped_hint_not_a_trace(
    page: Page, saved_connection: str, screenshots
) -> None:
    page.set_viewport_size(TOAST_VIEWPORT)
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    row(page, saved_connection).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    open_extra_fields(dialog)
    field(dialog, "element_consumer_key").fill("3MVG9NOSUCHAPP.wrong")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()

    row(page, saved_connection).get_by_role("button", name="Test Connection").click()
    hint = page.get_by_text(re.compile("What it usually means"))
    expect(hint).to_be_visible()
    toast = page.get_by_role("status").filter(has_text="What it usually means")
    text = toast.inner_text()
    assert "invalid_client_id" in text, text
    assert "consumer key" in text.lower(), text
    assert "Traceback" not in text and 'File "' not in text, text
    shoot_toast(page, screenshots / "connection-test-failed.png")
