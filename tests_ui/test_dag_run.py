"""Trigger the Bulk extract example from the UI and watch it: deferred while Salesforce works,
then a success, with the Parquet file on disk.

``bulk_extract_parquet`` creates a Bulk API 2.0 query job and defers to the triggerer; the
emulator takes ``AirflowUI.bulk_seconds`` to finish the job, long enough for the UI (which
refreshes every 3 s) to show the task as Deferred.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import ui  # scripts/ui.py, put on sys.path by conftest.py
from playwright.sync_api import Page, expect

DAG_ID = "bulk_extract_parquet"
BULK_TASK = "extract_accounts"


def test_bulk_extract_runs_from_the_ui_deferred_then_successful(
    page: Page, airflow_ui: ui.AirflowUI, screenshots
) -> None:
    page.set_viewport_size({"width": 1400, "height": 640})
    page.get_by_test_id("nav-dags-link").click()  # stable whatever the UI language loads
    page.get_by_role("link", name=DAG_ID, exact=True).click()
    trigger = page.get_by_role("button", name="Trigger Dag")
    expect(trigger).to_have_count(1)  # the DAG list (one per DAG) has been replaced
    trigger.click()
    page.get_by_role("dialog").get_by_role("button", name="Trigger").click()
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**")

    task = page.get_by_role("row").filter(has=page.get_by_role("link", name=BULK_TASK, exact=True))
    expect(
        task,
        "the Bulk task never showed Deferred: it waited in a worker slot instead of the "
        "triggerer. Is [operators] default_deferrable = false in .ui/test/airflow/airflow.cfg "
        "(Airflow writes it there on first start)? Task log: .ui/test/airflow/logs",
    ).to_contain_text("Deferred", timeout=90_000)
    page.screenshot(path=screenshots / "dag-run-deferred.png")

    expect(task).to_contain_text("Success", timeout=180_000)
    report = page.get_by_role("row").filter(has=page.get_by_role("link", name="report"))
    expect(report).to_contain_text("Success", timeout=60_000)
    page.wait_for_timeout(1_000)  # let the run header catch up with the last refresh
    page.screenshot(path=screenshots / "dag-run-success.png")

    (output,) = (airflow_ui.work / "output").glob("accounts_*.parquet")
    assert pq.read_metadata(output).num_rows == airflow_ui.accounts
