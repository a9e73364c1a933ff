"""Keep an hourly, typed lake copy of several Salesforce objects, deletions included.

One task per object (``salesforce_replication_group``): each run reads the rows changed in its
data interval (plus a 10-minute lookback for late commits), writes them as Parquet under
``<lake>/<Object>/data/``, the deletions Salesforce logged under ``<lake>/<Object>/deleted/``,
and a schema snapshot; the first run into an empty folder reads the whole object. Each task's
outlet is its object's folder as an Asset: ``salesforce_replicated_account_report`` runs when
Account has landed. The README's "Replicating objects" shows how to merge the files.

Where the copy goes: ``SFJWT_LAKE_DIR`` (default ``$SFJWT_OUTPUT_DIR/lake``, else
``/tmp/sfjwt_output/lake``), read when the DAG is parsed since Assets are static; an object-storage prefix (``s3://lake/salesforce``, with
``storage_conn_id``) works the same. ``SFJWT_BULK_POLL_INTERVAL`` sets the first Bulk poll.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_sfjwt.operators import salesforce_replication_group

LAKE = os.environ.get("SFJWT_LAKE_DIR") or os.path.join(
    os.environ.get("SFJWT_OUTPUT_DIR", "/tmp/sfjwt_output"), "lake"
)
POLL_INTERVAL = float(os.environ.get("SFJWT_BULK_POLL_INTERVAL", "5"))
BULK_THRESHOLD = int(os.environ.get("SFJWT_BULK_THRESHOLD", "50000"))


@dag(
    # Every hour, for the hour that just ended: the run at 13:00 covers [12:00, 13:00); a manual
    # run covers the hour that ended last. (A plain "@hourly" gives Airflow 3 runs without a
    # data interval, which replication needs.)
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["salesforce", "example", "replication"],
)
def salesforce_replicate_objects():
    salesforce_replication_group(
        {
            "Account": {"formula_fields": "include"},  # its formula read as of each run
            "Contact": {},
            "User": {"fields": ["Id", "Username", "Name", "Email", "IsActive"]},
        },
        output_prefix=LAKE,
        poll_interval=POLL_INTERVAL,
        bulk_threshold=BULK_THRESHOLD,
    )


salesforce_replicate_objects()
