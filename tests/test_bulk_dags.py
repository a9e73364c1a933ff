"""The Bulk example DAGs run end to end with ``dag.test()`` against the emulator.

``dag.test()`` runs triggers inline, so the default (deferred) runs go through
``SalesforceBulkJobTrigger``; one run per DAG is repeated with deferral switched off.
"""

from __future__ import annotations

import csv

import pytest

from .dag_support import run_dag


@pytest.fixture
def bulk_env(emu, monkeypatch):
    monkeypatch.setenv("SFJWT_BULK_POLL_INTERVAL", "0.01")
    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    return emu


@pytest.mark.parametrize("deferrable", [True, False])
def test_bulk_extract_parquet(bulk_env, tmp_path, monkeypatch, caplog, deferrable):
    pq = pytest.importorskip("pyarrow.parquet")
    if not deferrable:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    bulk_env.generate_accounts(3_210)
    run = run_dag("bulk_extract_parquet", conf={"output_dir": str(tmp_path)})
    assert run.state == "success", run.task_states
    summary = run.xcom("extract_accounts")
    assert summary["rows"] == 3_210 and summary["format"] == "parquet"
    assert set(summary) == {"path", "rows", "job_id", "format", "columns"}
    table = pq.read_table(summary["path"])
    assert table.num_rows == 3_210
    assert str(table.schema.field("AnnualRevenue").type) == "double"
    assert bulk_env.stats.bulk_query_jobs == 1
    assert ("running trigger in line" in caplog.text) is deferrable


@pytest.mark.parametrize("deferrable", [True, False])
def test_bulk_upsert_with_failures(bulk_env, tmp_path, monkeypatch, caplog, deferrable):
    if not deferrable:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    run = run_dag("bulk_upsert_with_failures", conf={"output_dir": str(tmp_path), "rows": 200})
    assert run.state == "success", run.task_states
    summary = run.xcom("upsert_contacts")
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (200, 180, 20)
    assert summary["first_errors"] == {"REQUIRED_FIELD_MISSING": 20}
    with open(summary["failed_path"], newline="", encoding="utf-8") as fh:
        failed = list(csv.DictReader(fh))
    assert len(failed) == 20 and all("REQUIRED_FIELD_MISSING" in r["sf__Error"] for r in failed)
    assert bulk_env.stats.bulk_ingest_jobs == 1
    assert ("running trigger in line" in caplog.text) is deferrable


def test_bulk_upsert_fails_above_max_failed_records(bulk_env, tmp_path):
    """One row in three fails, the DAG tolerates 25 %: the load fails, the report stays."""
    run = run_dag(
        "bulk_upsert_with_failures",
        conf={"output_dir": str(tmp_path), "rows": 30, "bad_every": 3},
    )
    assert run.state == "failed"
    assert run.task_states["upsert_contacts"] == "failed"
    summary = run.xcom("upsert_contacts", key="ingest_summary")
    assert (summary["records"], summary["failed"]) == (30, 10)
    assert summary["failed_path"] == str(tmp_path / "contacts_bulk.failedResults.csv")
    with open(summary["failed_path"], newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 10
