"""The replication example DAG run hour after hour with the scheduler's data intervals
(``dag.test`` at consecutive logical dates, the org's clock just after each interval), its
Assets starting the downstream DAG, and the operators' OpenLineage."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.lineage import DatasetRef
from airflow_provider_sfjwt.operators import (
    SalesforceReplicateObjectOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.operators.replicate import object_asset, schema_facet

from .dag_support import run_dag
from .replication_support import UTC, at, compare, live_rows, merged_lake

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def lake(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("SFJWT_LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("SFJWT_BULK_POLL_INTERVAL", "0.01")
    monkeypatch.setenv("SFJWT_BULK_THRESHOLD", "20")  # the busy hour goes through Bulk
    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    SalesforceJWTHook().get_conn().auth.token()  # exchanged on the real clock
    return tmp_path / "lake"


def asset_events(uri: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .count()
        )


def queued_for(dag_id: str) -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count()


def test_hourly_replication_dag_over_scheduler_intervals(emu, lake, caplog):
    base = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 6 * HOUR
    client = SalesforceJWTHook().get_conn()
    at(emu, base - HOUR)
    emu.generate_accounts(40)
    emu.generate_contacts(30)
    summaries = []
    for k in range(3):
        start = base + k * HOUR
        at(emu, start + dt.timedelta(minutes=20))
        if k == 1:
            emu.load("Account", [{"Name": f"Busy {i}"} for i in range(25)])
            accounts = [r["Id"] for r in emu.records("Account") if not r["IsDeleted"]]
            emu.delete_records("Account", accounts[:3])
            emu.empty_recycle_bin("Account")
        if k == 2:
            contacts = [r["Id"] for r in emu.records("Contact") if not r["IsDeleted"]]
            emu.delete_records("Contact", contacts[:2])
            emu.load("Contact", [{"LastName": "New"}])
        at(emu, start + HOUR + dt.timedelta(minutes=4))
        run = run_dag("salesforce_replicate_objects", logical_date=start + HOUR)  # run at the end
        assert run.state == "success", run.task_states
        summaries.append(run.xcom("replicate_salesforce.Account"))
        contact = run.xcom("replicate_salesforce.Contact")
        assert contact["key"] == f"{start:%Y%m%dT%H%M%SZ}"
        assert contact["window"]["end"] == (start + HOUR).isoformat()
    first, busy, last = summaries
    assert first["from_beginning"] and first["window"]["start"] is None
    assert busy["api"] == "bulk" and busy["deleted"] == 3
    assert "running trigger in line" in caplog.text  # the Bulk wait was deferred
    assert busy["window"]["start"] == (base + HOUR - dt.timedelta(minutes=10)).isoformat()
    assert last["api"] == "rest"
    for sobject in ("Account", "Contact"):
        folder = lake / sobject
        types = json.loads((folder / "_schema.json").read_text())["fields"]
        outcome = compare(merged_lake(folder), live_rows(client, sobject, types), types)
        assert (outcome["missing"], outcome["stale"], outcome["resurrected"]) == (0, 0, 0), outcome
        assert len(list((folder / "data").iterdir())) == 3
    user = json.loads((lake / "User" / "_schema.json").read_text())["fields"]
    assert set(user) == {
        "Id",
        "IsDeleted",
        "SystemModstamp",
        "Username",
        "Name",
        "Email",
        "IsActive",
    }
    # each run told the Account Asset it landed; the downstream DAG is queued, and runs
    account = object_asset(str(lake), "Account")
    assert asset_events(account.uri) == 3
    assert queued_for("salesforce_replicated_account_report") == 1
    report = run_dag("salesforce_replicated_account_report")
    assert report.state == "success", report.task_states
    assert report.xcom("report") == {
        "runs": 3,
        "latest": f"{base + 2 * HOUR:%Y%m%dT%H%M%SZ}",
        "rows": last["rows"],
    }


def test_group_declares_one_static_asset_per_object(lake):
    from .dag_support import load_dag

    dag = load_dag("salesforce_replicate_objects")
    outlets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks}
    assert outlets == {
        f"replicate_salesforce.{name}": [f"file://{lake}/{name}"]
        for name in ("Account", "Contact", "User")
    }


def test_bad_options_fail_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="on_deletes_unavailable must be one of"):
        SalesforceReplicateObjectOperator(
            task_id="x", sobject="Account", output_path="/tmp/x", on_deletes_unavailable="maybe"
        )


def test_operator_lineage_carries_types_and_schema_changes(emu, tmp_path):
    at(emu, dt.datetime.now(UTC) - HOUR)
    emu.generate_accounts(5)
    at(emu, dt.datetime.now(UTC))
    op = SalesforceReplicateObjectOperator(
        task_id="Account",
        sobject="Account",
        output_path=str(tmp_path / "Account"),
        deferrable=False,
    )
    end = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    op.execute({"data_interval_start": end - HOUR, "data_interval_end": end})
    lineage = op.get_openlineage_facets_on_complete(None)
    org = "salesforce://" + emu.url.split("://", 1)[1]
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(org, "Account")]
    data = lineage.outputs[0]
    assert (data.namespace, data.name) == ("file", str(tmp_path / "Account" / "data"))
    fields = {f.name: f.type for f in data.facets["schema"].fields}
    assert fields["SystemModstamp"] == "datetime" and fields["BillingCity"] == "string"
    columns, types, notes = schema_facet(
        ["Id", "New__c"],
        {"Id": "id", "New__c": "date"},
        {"added": {"New__c": "date"}, "removed": {"Old__c": "string"}, "retyped": {}},
    )
    assert columns == ["Id", "New__c", "Old__c"] and types["Old__c"] == "string"
    assert notes["New__c"] == "added since the last run" and "removed" in notes["Old__c"]


def test_rest_operator_reports_lineage_when_it_writes_a_file(emu, tmp_path):
    emu.generate_accounts(3)
    target = tmp_path / "describe.json"
    op = SalesforceRestOperator(
        task_id="describe", endpoint="sobjects/Account/describe", output_path=str(target)
    )
    assert op.get_openlineage_facets_on_complete(None) is None
    op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    org = "salesforce://" + emu.url.split("://", 1)[1]
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(org, "Account")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(target))]
    query = SalesforceRestOperator(
        task_id="q",
        endpoint="query",
        query_params={"q": "SELECT Id FROM Contact"},
        output_path=str(tmp_path / "q.json"),
    )
    query.execute({})
    assert query.get_openlineage_facets_on_complete(None).inputs[0].name == "Contact"
    inline = SalesforceRestOperator(task_id="limits", endpoint="limits")
    inline.execute({})
    assert inline.get_openlineage_facets_on_complete(None) is None  # nothing written, no lineage


def test_rest_lineage_names_other_resources_by_path():
    from airflow_provider_sfjwt.lineage import salesforce_resource

    ref = salesforce_resource("https://acme.my.salesforce.com", "/services/apexrest/Orders/v1")
    assert ref == DatasetRef("salesforce://acme.my.salesforce.com", "services/apexrest/Orders/v1")


def test_a_run_without_a_data_interval_says_which_schedule_to_use(tmp_path):
    """Airflow 3's plain cron schedules give runs a single moment: the task says what to use."""
    op = SalesforceReplicateObjectOperator(
        task_id="Account", sobject="Account", output_path=str(tmp_path)
    )
    moment = dt.datetime(2026, 1, 1, 13, tzinfo=UTC)
    with pytest.raises(ValueError, match="CronDataIntervalTimetable"):
        op.execute({"data_interval_start": moment, "data_interval_end": moment})
    assert not list(tmp_path.iterdir())


def test_a_manual_run_without_logical_date_replicates_the_last_ended_interval(emu, lake):
    """What the Trigger button does without a logical date: the run covers the interval Airflow
    infers for that moment, so it writes the same files as that interval's scheduled run."""
    from types import SimpleNamespace

    from .dag_support import load_dag

    dag = load_dag("salesforce_replicate_objects")
    op = dag.get_task("replicate_salesforce.Contact")
    run_after = dt.datetime.now(UTC).replace(minute=17, second=0, microsecond=0)
    hour = run_after.replace(minute=0)
    context = {"dag": dag, "dag_run": SimpleNamespace(run_after=run_after), "ti": None}
    result = op.execute(context)
    assert result["key"] == f"{hour - HOUR:%Y%m%dT%H%M%SZ}"
    assert result["window"]["end"] == hour.isoformat()
