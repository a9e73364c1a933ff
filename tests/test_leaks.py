"""`airflow dags test` of a DAG that fails on purpose prints no key, passphrase, assertion or token.

The notes on Airflow 3 say `dags test` output is not redacted at all, so this checks that our own
code never puts a secret into a log line, exception or repr in the first place.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_sfjwt.salesforce.keys import pem_lines, private_key_to_pem
from airflow_provider_sfjwt.testing import SalesforceEmulator

from .airflow_cli import REPO, migrated_home, run_airflow, without_mask_requests

CONSUMER_KEY = "3MVG9LEAKPROBE"
USERNAME = "integration@example.com"
PASSPHRASE = "leak-probe-passphrase-42"


@pytest.mark.timeout(300)
def test_dags_test_output_has_no_secrets(tmp_path, keypair):
    encrypted = private_key_to_pem(keypair.key, PASSPHRASE).decode()
    with SalesforceEmulator() as emu:
        emu.add_app(
            consumer_key=CONSUMER_KEY, certificate_pem=keypair.cert_pem, usernames=[USERNAME]
        )
        emu.generate_accounts(10)

        def conn(consumer_key=CONSUMER_KEY, password=PASSPHRASE):
            return json.dumps(
                emu.connection(
                    username=USERNAME,
                    consumer_key=consumer_key,
                    private_key_pem=encrypted,
                    passphrase=password,
                    max_retries=0,
                )
            )

        env = migrated_home(tmp_path / "home", REPO / "tests" / "dags")
        env.update(
            AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT=conn(),
            AIRFLOW_CONN_SF_WRONG_APP=conn(consumer_key="3MVG9NOSUCHAPP"),
            AIRFLOW_CONN_SF_WRONG_PASSPHRASE=conn(password="not-the-passphrase"),
        )
        out = run_airflow(["dags", "test", "sfjwt_leak_probe"], env)
        tokens = list(emu.issued_tokens)
        assertions = list(emu.received_assertions)
    output = without_mask_requests(out.stdout + out.stderr)
    # The DAG ran and failed where it should, with our messages.
    assert "INVALID_FIELD" in output, output[-5000:]
    assert "invalid_client_id" in output
    assert "wrong passphrase" in output
    assert "connected:" in output
    assert tokens and assertions
    secrets = pem_lines(encrypted) + pem_lines(keypair.pem) + [PASSPHRASE] + tokens + assertions
    leaked = [s[:12] + "..." for s in secrets if s in output]
    assert not leaked, f"secrets in `airflow dags test` output: {leaked}"
