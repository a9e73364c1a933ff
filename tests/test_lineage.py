"""OpenLineage: what the operators report, and what the OpenLineage provider emits for a real run.

The provider (``apache-airflow-providers-openlineage``, in the ``test`` extra) calls each
operator's ``get_openlineage_facets_on_complete``; the last test runs ``airflow dags test`` with
its file transport and reads the events it wrote.
"""

from __future__ import annotations

import json
import os

import pytest

from airflow_provider_sfjwt.compat import ObjectStoragePath, TaskDeferred
from airflow_provider_sfjwt.lineage import DatasetRef, file_dataset, salesforce_object
from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceCollectionsOperator,
    SalesforceQueryOperator,
)
from airflow_provider_sfjwt.testing import SalesforceEmulator

from .airflow_cli import REPO, migrated_home, run_airflow
from .test_bulk_ingest import write_contacts
from .test_bulk_operators import run_trigger


def test_dataset_names_follow_the_openlineage_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert file_dataset("out/a.csv") == DatasetRef("file", str(tmp_path / "out" / "a.csv"))
    assert file_dataset("file:///data/a.csv") == DatasetRef("file", "/data/a.csv")
    assert file_dataset("s3://aws_default@bucket/sf/a.csv", ["Id"]) == DatasetRef(
        "s3://bucket", "sf/a.csv", ("Id",)
    )
    assert file_dataset(ObjectStoragePath("gs://lake/raw/a.parquet")) == DatasetRef(
        "gs://lake", "raw/a.parquet"
    )
    assert salesforce_object("https://acme.my.salesforce.com", "Account") == DatasetRef(
        "salesforce://acme.my.salesforce.com", "Account"
    )


def names(datasets) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def org_namespace(emu) -> str:
    return "salesforce://" + emu.url.split("://", 1)[1]


def schema(dataset) -> list[str]:
    return [f.name for f in dataset.facets["schema"].fields]


def test_query_operator_reports_object_in_and_file_out(emu, tmp_path):
    emu.generate_accounts(30)
    op = SalesforceQueryOperator(
        task_id="q",
        soql="SELECT Id, Name, Owner.Name FROM Account WHERE Name != 'x'",
        output_path=str(tmp_path / "a.csv"),
    )
    assert op.get_openlineage_facets_on_complete(None) is None  # nothing ran yet
    op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    org = org_namespace(emu)
    assert names(lineage.inputs) == [(org, "Account")]
    assert names(lineage.outputs) == [("file", str(tmp_path / "a.csv"))]
    assert schema(lineage.outputs[0]) == ["Id", "Name", "Owner.Name"]


def test_bulk_query_deferred_reports_lineage_after_the_trigger(emu, tmp_path):
    emu.generate_contacts(20)
    op = SalesforceBulkQueryOperator(
        task_id="bq",
        soql="SELECT Id, LastName FROM Contact",
        output_path=str(tmp_path / "c.csv"),
        deferrable=True,
        poll_interval=0.01,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    assert op.get_openlineage_facets_on_complete(None) is None
    op.execute_complete({}, run_trigger(deferred.value.trigger))
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [name for _, name in names(lineage.inputs)] == ["Contact"]
    assert names(lineage.outputs) == [("file", str(tmp_path / "c.csv"))]
    assert schema(lineage.outputs[0]) == ["Id", "LastName"]


def test_loads_report_file_in_and_object_out(emu, tmp_path):
    source = tmp_path / "contacts.csv"
    write_contacts(source, 5)
    org = org_namespace(emu)
    collections = SalesforceCollectionsOperator(
        task_id="c",
        operation="upsert",
        sobject="Contact",
        external_id_field="External_Id__c",
        input_path=str(source),
    )
    bulk = SalesforceBulkIngestOperator(
        task_id="b",
        operation="upsert",
        sobject="Contact",
        external_id_field="External_Id__c",
        input_path=str(source),
        deferrable=False,
        poll_interval=0.01,
    )
    for op in (collections, bulk):
        op.execute({})
        lineage = op.get_openlineage_facets_on_complete(None)
        assert names(lineage.inputs) == [("file", str(source))]
        assert names(lineage.outputs) == [(org, "Contact")]
    inline = SalesforceCollectionsOperator(
        task_id="i", operation="insert", sobject="Account", records=[{"Name": "A"}]
    )
    inline.execute({})
    lineage = inline.get_openlineage_facets_on_complete(None)
    assert (lineage.inputs, names(lineage.outputs)) == ([], [(org, "Account")])


@pytest.mark.timeout(300)
def test_openlineage_provider_emits_our_datasets_for_a_dag_run(tmp_path, keypair):
    events_file = tmp_path / "openlineage.jsonl"
    with SalesforceEmulator() as emu:
        emu.add_app("3MVG9LINEAGE", keypair.cert_pem, ["lineage@example.com"])
        emu.generate_accounts(50)
        conn = emu.connection(
            username="lineage@example.com",
            consumer_key="3MVG9LINEAGE",
            private_key_pem=keypair.pem,
        )
        env = migrated_home(tmp_path / "home", REPO / "example_dags")
        env.update(
            AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT=json.dumps(conn),
            SFJWT_OUTPUT_DIR=str(tmp_path / "out"),
            AIRFLOW__OPENLINEAGE__NAMESPACE="sfjwt-tests",
            AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(
                {"type": "file", "log_file_path": str(events_file), "append": True}
            ),
        )
        emu.register_apex("POST", "AccountHealth", lambda req: (200, {"score": 7}))
        out = run_airflow(["dags", "test", "salesforce_extract_accounts"], env)
        rest = run_airflow(["dags", "test", "salesforce_apex_rest"], env)
        org = org_namespace(emu)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert rest.returncode == 0, (rest.stdout + rest.stderr)[-4000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    done = {
        e["job"]["name"]: e
        for e in events
        if e.get("eventType") == "COMPLETE" and e["job"]["name"].endswith("extract_accounts_csv")
    }
    assert done, f"no COMPLETE event for the CSV extract among {len(events)} events"
    event = next(iter(done.values()))
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [(org, "Account")]
    output = event["outputs"][0]
    assert (output["namespace"], output["name"]) == (
        "file",
        os.fspath(tmp_path / "out" / "accounts.csv"),
    )
    assert [f["name"] for f in output["facets"]["schema"]["fields"]][:3] == [
        "Id",
        "Name",
        "AccountNumber",
    ]
    # the REST operator that wrote Account's describe to a file reports both
    described = [
        e
        for e in events
        if e.get("eventType") == "COMPLETE"
        and e["job"]["name"].endswith("describe_account_to_file")
    ]
    assert described, f"no COMPLETE event for the REST operator among {len(events)} events"
    event = described[0]
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [(org, "Account")]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        ("file", os.fspath(tmp_path / "out" / "account_describe.json"))
    ]
