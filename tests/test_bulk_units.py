"""Bulk API 2.0 pieces that need no Salesforce: settings parsing, messages, serialisation."""

from __future__ import annotations

import importlib
from itertools import islice

import pytest

from airflow_provider_sfjwt.salesforce.bulk import (
    JobWatch,
    check_failed_records,
    failed_records_limit,
    poll_delays,
)
from airflow_provider_sfjwt.salesforce.bulk_csv import COUNT_SLICE_BYTES, count_line_ends
from airflow_provider_sfjwt.salesforce.errors import BulkJobError, TooManyFailedRecordsError


@pytest.mark.parametrize(
    ("setting", "submitted", "limit"),
    [
        (0, 1000, 0),
        (25, 1000, 25),
        ("25", 10, 25),
        ("5%", 1000, 50),
        (" 12.5% ", 80, 10),
        ("0%", 5, 0),
        (None, 9, None),
    ],
)
def test_max_failed_records_count_or_percent(setting, submitted, limit):
    assert failed_records_limit(setting, submitted) == limit


@pytest.mark.parametrize(
    "size", [0, 1, COUNT_SLICE_BYTES - 1, COUNT_SLICE_BYTES, COUNT_SLICE_BYTES + 1, 1 << 20]
)
def test_line_ends_are_counted_once_across_slice_edges(size):
    """A block is counted in slices: line ends on both sides of each edge count, once each."""
    edges = {0, size - 1, *range(COUNT_SLICE_BYTES - 1, size, COUNT_SLICE_BYTES)}
    edges |= {e + 1 for e in edges if e + 1 < size}
    block = bytes(10 if i in edges or i % 97 == 0 else 65 for i in range(size))
    assert count_line_ends(block) == block.count(b"\n")


@pytest.mark.parametrize("setting", ["-1", "ten", "150%", "%", "-5%"])
def test_bad_max_failed_records_names_the_setting(setting):
    with pytest.raises(ValueError, match="max_failed_records must be a count .* or a percentage"):
        failed_records_limit(setting, 100)


def _summary(failed: int) -> dict:
    return {
        "object": "Contact",
        "operation": "upsert",
        "records": 200,
        "processed": 200,
        "failed": failed,
        "failed_path": "/data/contacts.failedResults.csv",
        "first_errors": {"REQUIRED_FIELD_MISSING": failed},
    }


def test_failures_at_the_limit_pass_and_above_it_fail_with_file_and_codes():
    check_failed_records(_summary(10), "5%")
    check_failed_records(_summary(10), 10)
    with pytest.raises(TooManyFailedRecordsError) as err:
        check_failed_records(_summary(11), "5%")
    text = str(err.value)
    assert "rejected 11" in text and "max_failed_records=5% (10 records)" in text
    assert "/data/contacts.failedResults.csv" in text
    assert "REQUIRED_FIELD_MISSING x11" in text
    assert err.value.summary["failed"] == 11


def test_failed_and_aborted_states_raise_with_job_id_and_message():
    watch = JobWatch("query", ["750A", "750C"])
    watch.observe("750A", {"id": "750A", "state": "InProgress"})
    watch.observe("750C", {"id": "750C", "state": "JobComplete"})
    assert watch.pending == ["750A"]
    with pytest.raises(BulkJobError) as err:
        watch.observe("750A", {"id": "750A", "state": "Failed", "errorMessage": "bad SOQL"})
    assert "query job 750A ended Failed: bad SOQL" in str(err.value)
    assert err.value.job_id == "750A" and err.value.state == "Failed"
    assert watch.pending == []  # what is left pending is what the caller aborts: nothing
    with pytest.raises(BulkJobError, match="(?s)ingest job 750B ended Aborted .*What to do"):
        JobWatch("ingest", ["750B"]).observe("750B", {"id": "750B", "state": "Aborted"})


def test_polling_backs_off_to_a_ceiling():
    assert list(islice(poll_delays(2.0, 5.0), 5)) == [2.0, 3.0, 4.5, 5.0, 5.0]
    assert list(islice(poll_delays(0.0, 1.0), 3)) == [0.0, 0.0, 0.0]


def test_trigger_serialises_only_ids_and_timing():
    from airflow_provider_sfjwt.triggers.bulk import SalesforceBulkJobTrigger

    trigger = SalesforceBulkJobTrigger("sf_conn", ["750A", "750B"], "ingest", 0.5, 1234.0)
    classpath, kwargs = trigger.serialize()
    assert kwargs == {
        "salesforce_conn_id": "sf_conn",
        "job_ids": ["750A", "750B"],
        "kind": "ingest",
        "poll_interval": 0.5,
        "deadline": 1234.0,
    }
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    with pytest.raises(ValueError, match="kind must be"):
        SalesforceBulkJobTrigger("sf_conn", ["750A"], "batch")


def _bulk_query(**kwargs):
    from airflow_provider_sfjwt.operators import SalesforceBulkQueryOperator

    return SalesforceBulkQueryOperator(
        task_id="q", soql="SELECT Id FROM Account", output_path="/x.csv", **kwargs
    )


def test_deferral_follows_default_deferrable_and_is_the_default_only_when_unset(monkeypatch):
    """``[operators] default_deferrable`` is followed wherever Airflow reads it; only when it is
    set nowhere do the Bulk operators defer (their own default), and ``deferrable=`` wins."""
    from airflow_provider_sfjwt.compat import conf

    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    assert _bulk_query().deferrable is True
    assert _bulk_query(deferrable=False).deferrable is False
    # Values in airflow.cfg live in the parser's own sections, as conf.set puts them.
    conf.set("operators", "default_deferrable", "False")
    try:
        assert _bulk_query().deferrable is False
        assert _bulk_query(deferrable=True).deferrable is True
        conf.set("operators", "default_deferrable", "True")
        assert _bulk_query().deferrable is True
    finally:
        conf.remove_option("operators", "default_deferrable", remove_default=False)
    assert _bulk_query().deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    assert _bulk_query().deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "true")
    assert _bulk_query().deferrable is True


def test_deferral_lookup_runs_no_configured_command():
    """Task and DAG-parsing processes set ``sql_alchemy_conn_cmd = /bin/false`` so nothing there
    reaches the database; building an operator must not run configured commands."""
    from airflow_provider_sfjwt.compat import conf

    conf.set("database", "sql_alchemy_conn_cmd", "/bin/false")
    try:
        assert _bulk_query().deferrable is True
    finally:
        conf.remove_option("database", "sql_alchemy_conn_cmd", remove_default=False)


def test_default_deferrable_false_in_airflow_cfg_runs_in_the_worker(tmp_path):
    """A deployment without a triggerer that wrote ``default_deferrable = False`` in its
    airflow.cfg (a fresh process reading that file, as a worker does) must not defer."""
    import os
    import subprocess
    import sys

    home = tmp_path / "airflow"
    home.mkdir()
    (home / "airflow.cfg").write_text("[operators]\ndefault_deferrable = False\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)  # and no unit-test mode, which ignores airflow.cfg
    code = (
        "from airflow_provider_sfjwt.operators import SalesforceBulkIngestOperator as O;"
        "print(O(task_id='i', sobject='Account', operation='insert', input_path='/x.csv').deferrable)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_operators_template_their_inputs():
    from airflow_provider_sfjwt.operators import (
        SalesforceBulkIngestOperator,
        SalesforceBulkQueryOperator,
    )

    assert {"soql", "output_path", "format"} <= set(SalesforceBulkQueryOperator.template_fields)
    assert {"sobject", "input_path", "results_dir", "max_failed_records"} <= set(
        SalesforceBulkIngestOperator.template_fields
    )
