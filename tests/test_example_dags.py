"""Every example DAG loads on the running Airflow, and one runs end to end through its CLI.

Part of the smoke run on every supported Airflow release (``make smoke``): the DAG bag is how the
dag processor sees the files, and ``airflow dags test`` of the Bulk extract exercises the hook,
an operator, deferral and the trigger (which ``dags test`` runs in line) and the Parquet writer.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_sfjwt.compat import dag_bag
from airflow_provider_sfjwt.testing import SalesforceEmulator

from .airflow_cli import REPO, migrated_home, run_airflow
from .dag_support import EXAMPLE_DAGS


def test_every_example_dag_loads():
    files = sorted(EXAMPLE_DAGS.glob("*.py"))
    bag = dag_bag(EXAMPLE_DAGS, bundle_path=EXAMPLE_DAGS)
    assert not bag.import_errors, bag.import_errors
    assert sorted(bag.dag_ids) == [path.stem for path in files]
    assert len(files) >= 9


@pytest.mark.timeout(300)
def test_bulk_extract_runs_through_airflow_dags_test(tmp_path, keypair):
    import pyarrow.parquet as pq

    with SalesforceEmulator(bulk_processing_seconds=1.0) as emu:
        emu.add_app("3MVG9SMOKE", keypair.cert_pem, ["smoke@example.com"])
        emu.generate_accounts(120)
        conn = emu.connection(
            username="smoke@example.com", consumer_key="3MVG9SMOKE", private_key_pem=keypair.pem
        )
        env = migrated_home(tmp_path / "home", REPO / "example_dags")
        env.update(
            AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT=json.dumps(conn),
            SFJWT_OUTPUT_DIR=str(tmp_path / "out"),
            SFJWT_BULK_POLL_INTERVAL="0.2",
        )
        out = run_airflow(["dags", "test", "bulk_extract_parquet"], env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "running trigger in line" in log.lower()  # it deferred, and the trigger ran
    (parquet,) = (tmp_path / "out").glob("accounts_*.parquet")
    assert pq.read_metadata(parquet).num_rows == 120
