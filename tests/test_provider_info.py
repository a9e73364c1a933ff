"""The provider as Airflow sees it: entry point, schemas, connection form metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_sfjwt import get_provider_info

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
    from airflow.sdk._shared.secrets_masker.secrets_masker import should_hide_value_for_key

    for name, spec in fields.items():
        if spec["schema"].get("format") != "password":
            assert not should_hide_value_for_key(name) or "default" not in spec["schema"], name


def test_entry_point_is_registered():
    eps = entry_points(group="apache_airflow_provider")
    assert any(ep.value == "airflow_provider_sfjwt:get_provider_info" for ep in eps)


def test_airflow_discovers_the_hook():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks
    info = hooks["salesforce_jwt"]
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
