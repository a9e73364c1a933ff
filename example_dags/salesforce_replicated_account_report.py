"""Runs whenever the Account copy of ``salesforce_replicate_objects`` has landed.

Scheduled on the Account folder's Asset, so no sensor polls and no schedule guesses when the
replication is done. It reads the run manifests (``runs/*.json``) and reports what the latest
replication brought: a downstream model would merge the folder instead (README, "Merging the
files downstream").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from airflow_provider_sfjwt.operators.replicate import object_asset, object_folder

LAKE = os.environ.get("SFJWT_LAKE_DIR") or os.path.join(
    os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output"), "lake"
)


@dag(
    schedule=[object_asset(LAKE, "Account")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["salesforce", "example", "replication"],
)
def salesforce_replicated_account_report():
    @task
    def report() -> dict:
        runs = sorted(Path(object_folder(LAKE, "Account"), "runs").glob("2*.json"))
        if not runs:  # triggered by hand before anything landed
            return {"runs": 0}
        latest = json.loads(runs[-1].read_text())
        summary = {"runs": len(runs), "latest": latest["key"], "rows": latest["rows"]}
        print(f"Account replicated: {summary}")
        return summary

    report()


salesforce_replicated_account_report()
