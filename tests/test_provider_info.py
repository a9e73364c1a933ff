"""The provider as Airflow sees it: entry point, schemas, connection form metadata."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_sfjwt import CONN_FIELDS, UI_FIELD_BEHAVIOUR, get_provider_info
from airflow_provider_sfjwt.compat import provider_hooks, should_hide_value_for_key
from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.settings import TOKEN_CACHE_MODES

AIRFLOW_DIR = Path(airflow.__file__).parent


def _schema(name: str) -> dict:
    return json.loads((AIRFLOW_DIR / name).read_text())


def test_provider_info_matches_runtime_schema():
    jsonschema.validate(get_provider_info(), _schema("provider_info.schema.json"))


def test_connection_type_matches_provider_yaml_schema():
    """The runtime schema does not check conn-fields; provider.yaml's schema does."""
    yaml_schema = _schema("provider.yaml.schema.json")
    item_schema = yaml_schema["properties"]["connection-types"]["items"]
    resolver_schema = {**item_schema, "definitions": yaml_schema.get("definitions", {})}
    for item in get_provider_info()["connection-types"]:
        jsonschema.validate(item, resolver_schema)


def test_connection_form_fields_follow_the_design():
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "salesforce_jwt"
    assert conn_type["hook-name"] == "Salesforce (JWT Bearer)"
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["relabeling"] == {
        "host": "Login URL",
        "login": "Username",
        "password": "Key passphrase",
    }
    fields = conn_type["conn-fields"]
    assert set(fields) >= {
        "consumer_key",
        "audience",
        "private_key",
        "private_key_ref",
        "certificate",
        "api_version",
        "request_timeout",
        "max_retries",
    }
    assert fields["private_key"]["schema"]["format"] == "password"
    assert all(f["description"] for f in fields.values())
    # A non-secret field whose name contains a sensitive word would have its default shown as ***.
    for name, spec in fields.items():
        if spec["schema"].get("format") != "password":
            assert not should_hide_value_for_key(name) or "default" not in spec["schema"], name


def test_entry_point_is_registered():
    eps = entry_points(group="apache_airflow_provider")
    assert any(ep.value == "airflow_provider_sfjwt:get_provider_info" for ep in eps)


def test_airflow_discovers_the_hook():
    info = provider_hooks()["salesforce_jwt"]
    assert info is not None
    assert info.hook_class_name.endswith("SalesforceJWTHook")
    assert info.connection_testable


@pytest.mark.timeout(120)
def test_airflow_providers_list_shows_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    names = [p["package_name"] for p in json.loads(out.stdout[out.stdout.index("[{") :])]
    assert "airflow-provider-sfjwt" in names


def test_core_imports_no_airflow():
    """The core must stay usable without Airflow: import it in a process where airflow is absent."""
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'airflow' or name.startswith('airflow.'):\n"
        "            raise ImportError('airflow is blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import airflow_provider_sfjwt.salesforce as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'airflow_provider_sfjwt.salesforce.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('ok', sorted(m for m in sys.modules if m.startswith('airflow_provider_sfjwt.salesforce')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "airflow_provider_sfjwt.salesforce.client" in out.stdout
    assert "airflow_provider_sfjwt.salesforce.bulk.ingest" in out.stdout


def test_the_form_offers_every_connection_field_the_readme_documents():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## The `salesforce_jwt` connection", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("extra"):
            documented |= set(re.findall(r"`([a-z_]+)`", cells[0]))
    assert len(documented) >= 12
    (conn_type,) = get_provider_info()["connection-types"]
    assert set(conn_type["conn-fields"]) == documented


def test_form_defaults_are_what_the_hook_applies_to_an_empty_field(keypair):
    """What the form pre-fills is what an empty field means, so the two cannot drift."""
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    settings = parse_connection(
        host="https://login.salesforce.com",
        login="user@example.com",
        password=None,
        extra={"consumer_key": "3MVG9x", "private_key": keypair.pem},
    )
    for name, spec in CONN_FIELDS.items():
        if "default" in spec["schema"]:
            assert getattr(settings, name) == spec["schema"]["default"], name
    # token_cache has no form default (its name would have Airflow show "***"); empty means file
    assert "default" not in CONN_FIELDS["token_cache"]["schema"]
    assert settings.token_cache == CONN_FIELDS["token_cache"]["schema"]["examples"][0] == "file"
    assert set(CONN_FIELDS["token_cache"]["schema"]["examples"]) == set(TOKEN_CACHE_MODES)
    assert settings.max_api_usage_percent is None


def test_hook_form_methods_translate_the_one_declaration():
    """Airflow 3.0/3.1's form (WTForms fields from the hook) from the same CONN_FIELDS.

    What Airflow makes of these is asserted through its API server (test_connection_form.py);
    this pins the translation with the real WTForms classes, as ``airflow providers widgets``
    sees them.
    """
    from wtforms import IntegerField, PasswordField, StringField

    widgets = SalesforceJWTHook.get_connection_form_widgets()
    assert list(widgets) == list(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        field = widgets[name]
        expected = {
            "string": PasswordField if spec["schema"].get("format") == "password" else StringField,
            "integer": IntegerField,
        }[spec["schema"]["type"][0]]
        assert field.field_class is expected, name
        assert field.args[0] == spec["label"]
        assert field.kwargs["description"] == spec["description"]
        assert field.kwargs["default"] == spec["schema"].get("default")
    behaviour = SalesforceJWTHook.get_ui_field_behaviour()
    assert behaviour == {
        "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
    jsonschema.validate(behaviour, _schema("customized_form_field_behaviours.schema.json"))


def test_a_field_type_the_old_form_cannot_show_is_refused():
    from airflow_provider_sfjwt.compat import connection_form_widgets

    spec = {"label": "Ratio", "description": "d", "schema": {"type": ["number", "null"]}}
    with pytest.raises(ValueError, match="ratio.*no Airflow 3.0/3.1 form field"):
        connection_form_widgets({"ratio": spec})
