"""The pytest fixture, the standalone command and the data generator."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from emu_helpers import CK, USER, assertion, exchange

from airflow_provider_sfjwt.testing import EmulatorHandle, SalesforceEmulator, shared_key_pair
from airflow_provider_sfjwt.testing.cli import build_parser, start_from_args
from airflow_provider_sfjwt.testing.pytest_plugin import TOKEN_DIR_ENV


def test_fixture_is_ready_to_use(salesforce_emulator):
    handle = salesforce_emulator
    assert isinstance(handle, EmulatorHandle) and isinstance(handle.emulator, SalesforceEmulator)
    assert handle.conn_id == "salesforce_jwt_default" and handle.url == handle.emulator.url
    conn = json.loads(os.environ["AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT"])
    assert conn == handle.conn
    assert conn["conn_type"] == "salesforce_jwt" and conn["host"] == handle.url
    assert conn["login"] == handle.username
    assert conn["extra"]["consumer_key"] == handle.consumer_key
    assert conn["extra"]["private_key"] == handle.private_key_pem
    assert handle.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert handle.emulator.identity.apps[handle.consumer_key] is handle.app
    keys = shared_key_pair()
    assert handle.certificate_pem == keys.certificate_pem
    claims = {"iss": handle.consumer_key, "sub": handle.username, "aud": handle.url}
    resp = exchange(handle.emulator, assertion(keys, **claims))
    assert resp.status_code == 200


def test_fixture_tokens_go_to_a_temporary_store(salesforce_emulator, tmp_path_factory):
    """The provider's token store follows SFJWT_TOKEN_CACHE_DIR, which the fixture points at a
    directory of pytest's temporary tree: a test never writes to ~/.cache/sfjwt/tokens."""
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
    from airflow_provider_sfjwt.salesforce import token_store

    store = Path(os.environ[token_store.DIR_ENV])
    assert TOKEN_DIR_ENV == token_store.DIR_ENV
    assert store.parent.name.startswith("sfjwt-tokens")
    assert store.is_relative_to(tmp_path_factory.getbasetemp())
    SalesforceJWTHook(salesforce_emulator.conn_id).get_conn().limits()
    assert salesforce_emulator.emulator.stats.token_exchanges == 1
    assert [p.suffix for p in store.iterdir() if p.suffix == ".token"] == [".token"]


def test_the_plugin_loads_no_emulator_module():
    """pytest imports the plugin in every run; the emulator is imported only by the fixture."""
    code = (
        "import sys, airflow_provider_sfjwt.testing.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_sfjwt')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(
        [
            "airflow_provider_sfjwt",
            "airflow_provider_sfjwt.testing",
            "airflow_provider_sfjwt.testing.pytest_plugin",
        ]
    )


def test_connection_helper(emu):
    conn = emu.connection(private_key_pem=b"PEM", api_version="62.0")
    assert conn == {
        "conn_type": "salesforce_jwt",
        "host": emu.url,
        "login": USER,
        "password": None,
        "extra": {
            "consumer_key": CK,
            "private_key": "PEM",
            "api_version": "62.0",
        },
    }


def test_start_from_args_writes_private_files(tmp_path):
    args = build_parser().parse_args(
        ["--port", "0", "--accounts", "10", "--contacts", "5", "--key-dir", str(tmp_path / "k")]
    )
    emu, conn = start_from_args(args)
    try:
        key_file = conn["extra"]["private_key_ref"].removeprefix("file:")
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert "private_key" not in conn["extra"]
        assert len(emu.records("Account")) >= 10 and len(emu.records("Contact")) == 5
        assert requests.get(conn["host"] + "/services/data/").ok
    finally:
        emu.stop()


def test_module_entry_point_prints_connection(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_sfjwt.testing",
            "--port",
            "0",
            "--tls",
            "--accounts",
            "5",
            "--contacts",
            "0",
            "--key-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        assert "listening on https://127.0.0.1:" in text
        export = next(
            line for line in lines if line.startswith("export AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT=")
        )
        assert "private_key_ref" in export and "file:" in export
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_generator_is_deterministic_and_realistic():
    a, b = SalesforceEmulator(), SalesforceEmulator()
    for e in (a, b):
        e.generate_accounts(3000, seed=7)
        e.generate_contacts(500, seed=7)
    ra, rb = a.records("Account"), b.records("Account")
    assert ra == rb
    assert a.records("Contact") == b.records("Contact")
    assert len({r["External_Id__c"] for r in ra}) == 3000
    assert any(r["AnnualRevenue"] is None for r in ra) and any(
        isinstance(r["AnnualRevenue"], float) for r in ra
    )
    assert any(r["NumberOfEmployees"] is None for r in ra) and any(
        isinstance(r["NumberOfEmployees"], int) for r in ra
    )
    descs = [r["Description"] or "" for r in ra]
    assert (
        any("\n" in d for d in descs)
        and any('"' in d for d in descs)
        and any("," in d for d in descs)
    )
    assert any(not d.isascii() for d in descs) and any(not r["Name"].isascii() for r in ra)
    assert all(len(r["CreatedDate"]) == 28 and r["CreatedDate"].endswith(".000+0000") for r in ra)
    assert {type(r["Active__c"]) for r in ra} == {bool} and not any(r["IsDeleted"] for r in ra)
    users = {u["Id"] for u in a.records("User")}
    assert all(r["OwnerId"] in users for r in ra)
    contacts = a.records("Contact")
    assert all(c["LastName"] and c["Email"].endswith("@example.com") for c in contacts)
    assert sum(1 for c in contacts if c["AccountId"]) > 400
    other_seed = SalesforceEmulator()
    other_seed.generate_accounts(50, seed=8)
    assert [r["Name"] for r in other_seed.records("Account")] != [r["Name"] for r in ra[:50]]


def test_contacts_without_accounts_get_some():
    e = SalesforceEmulator()
    e.generate_contacts(100)
    assert len(e.records("Account")) == 20


@pytest.mark.skipif(os.environ.get("SFEMU_SKIP_MILLION") == "1", reason="skipped on request")
def test_a_million_accounts_fit_in_memory_and_time():
    proc = psutil.Process()
    before = proc.memory_info().rss
    e = SalesforceEmulator()
    t0 = time.monotonic()
    e.generate_accounts(1_000_000)
    elapsed = time.monotonic() - t0
    grown = proc.memory_info().rss - before
    assert elapsed < 60  # about 4 s on a quiet 2-core machine; generous for busy CI runners
    assert grown < 1.5 * 1024**3, f"{grown / 1e6:.0f} MB"
    assert e.store.get("Account").size == 1_000_000


def test_no_airflow_import():
    code = (
        "import sys, airflow_provider_sfjwt.testing, airflow_provider_sfjwt.testing.pytest_plugin, "
        "airflow_provider_sfjwt.testing.cli; "
        "print([m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
