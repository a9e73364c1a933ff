"""The ``salesforce_jwt`` connection form and Test button as Airflow's own API server serves them.

Whatever Airflow release runs the suite (3.0 and 3.1 build the form from the hook's methods, 3.2
and 3.3 from the provider info), an ``airflow api-server`` is started and asked what the UI asks:
``GET /ui/connections/hook_meta`` for the form, ``POST /api/v2/connections/test`` for the Test
button. So these compare the declaration with what Airflow made of it, not with itself.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from packaging.version import Version

from airflow_provider_sfjwt import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_sfjwt.compat import AIRFLOW_VERSION
from airflow_provider_sfjwt.testing import SalesforceEmulator

from .airflow_cli import REPO, ApiServer, migrated_home

ADMIN, PASSWORD = "admin", "form-test-password"
CONSUMER_KEY = "3MVG9FORMTEST.consumer"
USERNAME = "form.user@example.com"
# hook_meta's name for each standard field the form declares something about
STANDARD = {
    "host": "host",
    "login": "login",
    "password": "password",
    "port": "port",
    "schema": "url_schema",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """Airflow's REST API as the UI calls it: JSON, with a bearer token of the admin user."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""
        self.token = self.call("POST", "/auth/token", {"username": ADMIN, "password": PASSWORD})[
            "access_token"
        ]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = requests.request(
            method, self.base + path, json=body, headers=headers, timeout=120
        )
        assert response.ok, f"{method} {path}: HTTP {response.status_code} {response.text[:500]}"
        return response.json()


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("form_home")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN: PASSWORD}))
    env = migrated_home(home, REPO / "example_dags")
    env.update(
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__CORE__AUTH_MANAGER=(
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ADMIN}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET="form-test-jwt-secret-0123456789abcdef",
    )
    with ApiServer(env, _free_port()) as server:
        yield Api(server.base)


@pytest.fixture(scope="module")
def served_form(api_server: Api) -> dict[str, Any]:
    hooks = api_server.call("GET", "/ui/connections/hook_meta")
    forms = [h for h in hooks if h["connection_type"] == "salesforce_jwt"]
    assert len(forms) == 1, [h["connection_type"] for h in hooks]
    return forms[0]


def test_airflow_serves_every_declared_field(served_form):
    assert served_form["hook_name"] == "Salesforce (JWT Bearer)"
    extra = served_form["extra_fields"]
    assert extra, f"Airflow {AIRFLOW_VERSION} serves no salesforce_jwt fields"
    assert set(extra) == set(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        served = extra[name]
        assert served["schema"]["title"] == spec["label"], name
        assert served["description"] == spec["description"], name
        assert served["value"] == spec["schema"].get("default"), name
        assert set(served["schema"]["type"]) == set(spec["schema"]["type"]), name


def test_only_the_key_is_sensitive(served_form):
    sensitive = {
        name
        for name, served in served_form["extra_fields"].items()
        if served["schema"].get("format") == "password"
    }
    assert sensitive == {"private_key"}


def test_standard_fields_are_relabelled_and_hidden(served_form):
    standard = served_form["standard_fields"]
    for field, label in UI_FIELD_BEHAVIOUR["relabeling"].items():
        assert standard[STANDARD[field]]["title"] == label, field
    for field, placeholder in UI_FIELD_BEHAVIOUR["placeholders"].items():
        assert standard[STANDARD[field]]["placeholder"] == placeholder, field
    hidden = set(UI_FIELD_BEHAVIOUR["hidden-fields"]) - {"extra"}  # the raw JSON is not a field
    assert hidden == {"schema", "port"}
    for field in hidden:
        assert standard[STANDARD[field]]["hidden"] is True, field
    assert standard["host"]["hidden"] is False


@pytest.fixture(scope="module")
def emulator(keypair: Any) -> Iterator[SalesforceEmulator]:
    emu = SalesforceEmulator()
    emu.start()
    try:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME])
        yield emu
    finally:
        emu.stop()


def _form_body(emulator: SalesforceEmulator, keypair: Any, **extra: Any) -> dict[str, Any]:
    """What the form posts when Test is pressed: its fields, the extras as a JSON string."""
    conn = emulator.connection(
        username=USERNAME, consumer_key=CONSUMER_KEY, private_key_pem=keypair.pem, **extra
    )
    return {
        "connection_id": "salesforce_form_test",
        "conn_type": conn["conn_type"],
        "host": conn["host"],
        "login": conn["login"],
        "extra": json.dumps(conn["extra"]),
    }


def test_test_button_reports_the_org(api_server, emulator, keypair):
    answer = api_server.call("POST", "/api/v2/connections/test", _form_body(emulator, keypair))
    assert answer["status"] is True, answer
    assert answer["message"].startswith(f"Connected to {emulator.url} as {USERNAME}")


def test_test_button_shows_the_fix_for_a_wrong_consumer_key(api_server, emulator, keypair):
    body = _form_body(emulator, keypair)
    body["extra"] = json.dumps({**json.loads(body["extra"]), "consumer_key": "3MVG9WRONG"})
    answer = api_server.call("POST", "/api/v2/connections/test", body)
    assert answer["status"] is False
    assert "consumer key" in answer["message"].lower()
    assert "BEGIN" not in answer["message"]


@pytest.mark.skipif(
    Version("3.1") > AIRFLOW_VERSION,
    reason="Airflow 3.0's UI has no Test button, and its route tests only the values it is sent",
)
def test_test_button_of_a_stored_connection(api_server, emulator, keypair):
    """The connection list's Test: it posts the connection as listed (key and passphrase
    redacted, ``port: 0``); Airflow puts the stored secrets back (3.1+), and on 3.3.1/3.3.2 the
    provider's plugin keeps ``port: 0`` from blocking that."""
    body = _form_body(emulator, keypair)
    body["connection_id"] = "salesforce_stored_test"
    api_server.call("POST", "/api/v2/connections", body)
    listed = api_server.call("GET", "/api/v2/connections/salesforce_stored_test")
    assert json.loads(listed["extra"])["private_key"] == "***"
    answer = api_server.call("POST", "/api/v2/connections/test", {**listed, "port": 0})
    assert answer["status"] is True, answer
    assert answer["message"].startswith(f"Connected to {emulator.url} as {USERNAME}")
