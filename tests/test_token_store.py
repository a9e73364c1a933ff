"""Tokens shared between processes: a DAG of many tasks (each its own process) logs in once.

Each "task" here is a fresh Python process running the core client against the emulator, with
the token store directory the autouse fixture gives every test (``SFJWT_TOKEN_CACHE_DIR``).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.salesforce.token_store import TokenStore

REPO = Path(__file__).resolve().parent.parent
TASK = """
import json, sys
from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.settings import parse_connection
c = json.loads(sys.stdin.read())
client = SalesforceClient(parse_connection(host=c["host"], login=c["login"], password=None, extra=c["extra"]))
rows = sum(1 for _ in client.query("SELECT Id FROM Account"))
print(json.dumps({"rows": rows, "exchanges": TOKEN_CACHE.exchanges}))
"""


def run_tasks(conn: dict, n: int) -> list[dict]:
    """Start ``n`` task processes at once (all wait on stdin), then let them go together."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TASK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(n)
    ]
    for proc in procs:
        proc.stdin.write(json.dumps(conn))
        proc.stdin.close()
    results = []
    for proc in procs:
        out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def store_dir() -> Path:
    return Path(os.environ["SFJWT_TOKEN_CACHE_DIR"])


def test_tasks_starting_together_share_one_login(salesforce_emulator):
    salesforce_emulator.emulator.generate_accounts(30)
    results = run_tasks(salesforce_emulator.conn, 6)
    assert [r["rows"] for r in results] == [30] * 6
    assert sorted(r["exchanges"] for r in results) == [0, 0, 0, 0, 0, 1]
    assert salesforce_emulator.emulator.stats.token_exchanges == 1
    # A later task reuses it too.
    assert run_tasks(salesforce_emulator.conn, 1)[0]["exchanges"] == 0
    assert salesforce_emulator.emulator.stats.token_exchanges == 1


def test_the_stored_token_is_private_and_encrypted(salesforce_emulator):
    run_tasks(salesforce_emulator.conn, 1)
    directory = store_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.glob("*.token"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    (token,) = salesforce_emulator.emulator.issued_tokens
    blob = files[0].read_bytes()
    assert token.encode() not in blob and salesforce_emulator.url.encode() not in blob


def test_a_revoked_token_is_replaced_once_for_everyone(salesforce_emulator):
    salesforce_emulator.emulator.generate_accounts(5)
    run_tasks(salesforce_emulator.conn, 1)
    salesforce_emulator.emulator.faults.revoke_sessions()
    first = run_tasks(salesforce_emulator.conn, 1)[0]
    assert (first["rows"], first["exchanges"]) == (5, 1)  # 401, then one new exchange
    assert run_tasks(salesforce_emulator.conn, 3) == [{"rows": 5, "exchanges": 0}] * 3
    assert salesforce_emulator.emulator.stats.token_exchanges == 2


def test_another_key_cannot_read_the_token_and_logs_in_for_itself(
    salesforce_emulator, other_keypair
):
    run_tasks(salesforce_emulator.conn, 1)
    salesforce_emulator.app.add_certificate(other_keypair.cert_pem)  # a rotated key, same identity
    rotated = json.loads(json.dumps(salesforce_emulator.conn))
    rotated["extra"]["private_key"] = other_keypair.pem
    assert run_tasks(rotated, 1)[0]["exchanges"] == 1
    assert run_tasks(rotated, 1)[0]["exchanges"] == 0
    assert salesforce_emulator.emulator.stats.token_exchanges == 2


def test_token_cache_process_shares_nothing(salesforce_emulator):
    conn = json.loads(json.dumps(salesforce_emulator.conn))
    conn["extra"]["token_cache"] = "process"
    assert [r["exchanges"] for r in run_tasks(conn, 3)] == [1, 1, 1]
    assert not store_dir().exists() or not list(store_dir().glob("*.token"))


def test_an_old_token_is_not_reused(salesforce_emulator):
    settings = parse_connection(**_fields(salesforce_emulator.conn))
    token = SalesforceClient(settings).auth.token()
    assert TokenStore(store_dir()).load(settings) == token
    assert TokenStore(store_dir(), max_age=0).load(settings) is None


def test_a_directory_open_to_others_is_not_used(salesforce_emulator, caplog):
    directory = store_dir()
    directory.mkdir(mode=0o700, parents=True)
    directory.chmod(0o777)
    with caplog.at_level(logging.WARNING):
        assert [r["exchanges"] for r in run_tasks(salesforce_emulator.conn, 2)] == [1, 1]
        SalesforceClient(parse_connection(**_fields(salesforce_emulator.conn))).auth.token()
    assert not list(directory.glob("*.token"))
    assert "is open to other users" in caplog.text and "chmod 700" in caplog.text


def test_connection_test_always_exchanges(salesforce_emulator):
    run_tasks(salesforce_emulator.conn, 1)
    ok, message = SalesforceJWTHook().test_connection()
    assert ok, message
    assert salesforce_emulator.emulator.stats.token_exchanges == 2  # not the stored token
    assert TOKEN_CACHE.exchanges == 0


def _fields(conn: dict) -> dict:
    return {"host": conn["host"], "login": conn["login"], "password": None, "extra": conn["extra"]}
