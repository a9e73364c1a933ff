"""Replication of one object: windows, field choice, deletions, schema drift, formula refresh,
against the emulator (plain core calls; the Airflow side is in test_replicate_dags.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.errors import DeletesUnavailableError, SchemaChangedError
from airflow_provider_sfjwt.salesforce.replicate import ReplicationSpec, Replicator, spec_from
from airflow_provider_sfjwt.salesforce.replicate_fields import plan_fields, schema_changes
from airflow_provider_sfjwt.salesforce.replicate_window import Window, replication_window

from .replication_support import UTC, at, compare, live_rows, merged_lake

pq = pytest.importorskip("pyarrow.parquet")

HOUR = dt.timedelta(hours=1)
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
"""For the pure tests; the emulator tests use ``start`` (three days back, so the org's clock
moved there is never ahead of this machine's)."""


@pytest.fixture
def start() -> dt.datetime:
    return dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=3)


def key(moment: dt.datetime) -> str:
    return f"{moment:%Y%m%dT%H%M%SZ}"


BULK = {"poll_interval": 0.01}


# --- the window -------------------------------------------------------------------------------


def test_window_is_the_interval_widened_by_the_lookback():
    w = replication_window(T0, T0 + HOUR, T0 + 2 * HOUR)
    assert w == Window(T0 - dt.timedelta(minutes=10), T0 + HOUR)
    assert w.where("SystemModstamp") == (
        "SystemModstamp >= 2026-03-01T09:50:00Z AND SystemModstamp < 2026-03-01T11:00:00Z"
    )


def test_window_stops_safety_lag_before_now_and_reads_everything_the_first_time():
    now = T0 + dt.timedelta(minutes=61)
    w = replication_window(T0, T0 + HOUR, now, from_beginning=True)
    assert w == Window(None, T0 + dt.timedelta(minutes=59))
    assert w.where("SystemModstamp") == "SystemModstamp < 2026-03-01T10:59:00Z"


def test_window_refuses_what_would_lose_rows():
    with pytest.raises(ValueError, match="at least safety_lag"):
        replication_window(
            T0, T0 + HOUR, T0 + 2 * HOUR, lookback=dt.timedelta(0), safety_lag=dt.timedelta(1)
        )
    with pytest.raises(ValueError, match="has not begun"):
        replication_window(T0, T0 + HOUR, T0 + dt.timedelta(minutes=1))
    with pytest.raises(ValueError, match="time zone"):
        replication_window(T0.replace(tzinfo=None), T0 + HOUR, T0 + 2 * HOUR)


def test_spec_checks_every_option_before_any_call():
    with pytest.raises(ValueError, match="formula_fields must be one of"):
        ReplicationSpec("Account", formula_fields="sometimes")
    with pytest.raises(ValueError, match="on_schema_change must be one of"):
        ReplicationSpec("Account", on_schema_change="ignore")
    with pytest.raises(ValueError, match="API name"):
        ReplicationSpec("Account; DROP")
    spec = spec_from("Account", lookback=900, safety_lag=60, fields="Id, Name")
    assert (spec.lookback, spec.fields) == (dt.timedelta(minutes=15), ("Id", "Name"))


# --- fields from describe ---------------------------------------------------------------------


def _describe(*fields: dict) -> dict:
    base = [
        {"name": "Id", "type": "id"},
        {"name": "IsDeleted", "type": "boolean"},
        {"name": "SystemModstamp", "type": "datetime"},
    ]
    return {"name": "Thing__c", "fields": base + list(fields)}


DESCRIBE = _describe(
    {"name": "Name", "type": "string"},
    {"name": "ShipAddress__c", "type": "address"},
    {"name": "ShipCity__c", "type": "string", "compoundFieldName": "ShipAddress__c"},
    {"name": "ShipLatitude__c", "type": "double", "compoundFieldName": "ShipAddress__c"},
    {"name": "Body__c", "type": "base64"},
    {"name": "Score__c", "type": "double", "calculated": True},
)


def test_all_fields_expand_compounds_and_leave_base64_out_of_bulk():
    plan = plan_fields("Thing__c", DESCRIBE, formula_fields="include")
    assert plan.columns == [
        "Id",
        "IsDeleted",
        "SystemModstamp",
        "Name",
        "ShipCity__c",
        "ShipLatitude__c",
        "Score__c",
    ]
    assert plan.types["ShipLatitude__c"] == "double"
    assert set(plan.excluded) == {"ShipAddress__c", "Body__c"}
    assert "components (ShipCity__c, ShipLatitude__c)" in plan.excluded["ShipAddress__c"]
    rest = plan_fields("Thing__c", DESCRIBE, bulk_possible=False, formula_fields="exclude")
    assert "Body__c" in rest.columns and "Score__c" not in rest.columns
    assert plan.select("Thing__c").startswith("SELECT Id, IsDeleted, SystemModstamp, Name, ")


def test_named_fields_keep_the_merge_keys_and_are_checked():
    plan = plan_fields("Thing__c", DESCRIBE, ["name", "ShipAddress__c", "Id"])
    assert plan.columns == [
        "Id",
        "IsDeleted",
        "SystemModstamp",
        "Name",
        "ShipCity__c",
        "ShipLatitude__c",
    ]
    with pytest.raises(ValueError, match="has no field 'Nope__c'"):
        plan_fields("Thing__c", DESCRIBE, ["Nope__c"])
    with pytest.raises(ValueError, match="cursor_field"):
        plan_fields("Thing__c", _describe(), cursor_field="LastModifiedDate")
    formulas = plan_fields("Thing__c", DESCRIBE, formulas_only=True)
    assert formulas.columns == ["Id", "Score__c"]


def test_schema_changes_name_added_removed_and_retyped_fields():
    changes = schema_changes(
        {"Id": "id", "Old__c": "string", "Amount__c": "string"},
        {"Id": "id", "Amount__c": "double", "New__c": "date"},
    )
    assert changes.as_dict() == {
        "added": {"New__c": "date"},
        "removed": {"Old__c": "string"},
        "retyped": {"Amount__c": ["string", "double"]},
    }
    assert str(changes) == (
        "added New__c (date); removed Old__c (string); retyped Amount__c (string -> double)"
    )
    assert not schema_changes(None, {"Id": "id"})


# --- against the emulator ---------------------------------------------------------------------


@pytest.fixture
def client(emu):
    client = SalesforceJWTHook().get_conn()
    client.auth.token()  # exchanged on the real clock; the tests then move the org's clock
    return client


def test_compound_fields_through_bulk(emu, client, tmp_path, start):
    """Bulk refuses BillingAddress; the replication reads its components, typed, the same
    columns a REST run reads."""
    at(emu, start - HOUR)
    emu.load(
        "Account",
        [
            {
                "Name": "Geo",
                "BillingCity": "Zürich",
                "BillingLatitude": 47.37,
                "BillingLongitude": 8.54,
            },
            {"Name": "No address"},
        ],
    )
    at(emu, start + HOUR)
    bulk_run = Replicator(client, ReplicationSpec("Account", api="bulk"), tmp_path / "bulk")
    result = bulk_run.run(start, start + HOUR, **BULK)
    assert result["api"] == "bulk" and result["rows"] == 2
    assert "BillingAddress" not in result["columns"]
    assert {"BillingCity", "BillingLatitude", "BillingLongitude"} <= set(result["columns"])
    assert emu.stats.bulk_query_jobs == 1
    table = pq.read_table(result["data_path"])
    assert str(table.schema.field("BillingLatitude").type) == "double"
    rows = {r["Name"]: r for r in table.to_pylist()}
    assert (rows["Geo"]["BillingCity"], rows["Geo"]["BillingLatitude"]) == ("Zürich", 47.37)
    rest_run = Replicator(client, ReplicationSpec("Account", api="rest"), tmp_path / "rest")
    rest = rest_run.run(start, start + HOUR)
    assert rest["columns"] == result["columns"]
    assert pq.read_table(rest["data_path"]).schema == table.schema


def test_auto_chooses_bulk_above_the_threshold(emu, client, tmp_path, start):
    at(emu, start + dt.timedelta(minutes=5))
    emu.load("Account", [{"Name": f"A{i}"} for i in range(12)])
    at(emu, start + HOUR + dt.timedelta(minutes=5))
    folder = tmp_path / "Account"
    Replicator(client, ReplicationSpec("Account"), folder).run(
        start - HOUR, start
    )  # first: all before start
    small = Replicator(client, ReplicationSpec("Account", bulk_threshold=12), folder)
    assert small.run(start, start + HOUR, **BULK)["api"] == "rest"
    big = Replicator(client, ReplicationSpec("Account", bulk_threshold=11), folder)
    result = big.run(start, start + HOUR, **BULK)
    assert (result["api"], result["count"], result["rows"]) == ("bulk", 12, 12)


@pytest.mark.parametrize("policy", ["evolve", "fail"])
def test_schema_drift(emu, client, tmp_path, policy, start):
    folder = tmp_path / "Contact"
    at(emu, start - HOUR)
    emu.load("Contact", [{"LastName": "Before"}])
    at(emu, start + dt.timedelta(minutes=30))
    spec = ReplicationSpec("Contact", on_schema_change=policy)
    first = Replicator(client, spec, folder).run(start - HOUR, start)
    assert first["schema_changes"] == {} and first["from_beginning"]
    emu.load("Contact", [{"LastName": "After", "Loyalty__c": 3.5}])  # a new custom field
    at(emu, start + 2 * HOUR)
    replicator = Replicator(client, spec, folder)
    if policy == "fail":
        with pytest.raises(SchemaChangedError, match=r"added Loyalty__c \(double\)"):
            replicator.run(start, start + HOUR)
        assert not (folder / "data" / f"{key(start)}.parquet").exists()
        snapshot = json.loads((folder / "_schema.json").read_text())
        assert "Loyalty__c" not in snapshot["fields"]
        return
    result = replicator.run(start, start + HOUR)
    assert result["schema_changes"] == {
        "added": {"Loyalty__c": "double"},
        "removed": {},
        "retyped": {},
    }
    manifest = json.loads((folder / "runs" / f"{key(start)}.json").read_text())
    assert manifest["schema_changes"]["added"] == {"Loyalty__c": "double"}
    assert json.loads((folder / "_schema.json").read_text())["fields"]["Loyalty__c"] == "double"
    lake = merged_lake(folder)  # old files lack the column; the merge reads them by name
    assert {r["LastName"]: r["Loyalty__c"] for r in lake.values()} == {"Before": None, "After": 3.5}


def test_hard_delete_window_older_than_the_delete_log(emu, client, tmp_path):
    """A backfill of an interval older than Salesforce's 15-day delete log fails and says why,
    unless told to skip; nothing of the run's deletions is invented."""
    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old = now - dt.timedelta(days=20)
    folder = tmp_path / "Account"
    Replicator(client, ReplicationSpec("Account"), folder).run(now - 2 * HOUR, now - HOUR)
    with pytest.raises(DeletesUnavailableError, match="15 days") as info:
        Replicator(client, ReplicationSpec("Account"), folder).run(old, old + HOUR)
    assert "on_deletes_unavailable='skip'" in str(info.value)
    assert not (folder / "runs" / f"{old:%Y%m%dT%H%M%SZ}.json").exists()
    skip = ReplicationSpec("Account", on_deletes_unavailable="skip")
    result = Replicator(client, skip, folder).run(old, old + HOUR)
    assert result["deleted"] is None and "15 days" in result["deletes_skipped"]
    assert not (folder / "deleted" / f"{old:%Y%m%dT%H%M%SZ}.parquet").exists()


def test_purged_delete_log_is_reported_not_ignored(emu, client, tmp_path):
    """Salesforce purges a large delete log early (earliestDateAvailable moves): the window
    that starts before it cannot be trusted."""
    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    folder = tmp_path / "Account"
    Replicator(client, ReplicationSpec("Account"), folder).run(now - 4 * HOUR, now - 3 * HOUR)
    emu.expire_delete_log("Account", now - 2 * HOUR)
    with pytest.raises(DeletesUnavailableError, match="earliest|purged"):
        Replicator(client, ReplicationSpec("Account"), folder).run(now - 3 * HOUR, now - 2 * HOUR)


def test_deletions_and_undeletions_reach_the_merged_copy(emu, client, tmp_path, start):
    at(emu, start - HOUR)
    keep, soft, hard, back = emu.load(
        "Account", [{"Name": n} for n in ("keep", "soft", "hard", "back")]
    )
    at(emu, start + dt.timedelta(minutes=3))
    folder = tmp_path / "Account"
    Replicator(client, ReplicationSpec("Account"), folder).run(start - HOUR, start)
    at(emu, start + dt.timedelta(minutes=10))
    emu.delete_records("Account", [soft, hard, back])
    at(emu, start + dt.timedelta(minutes=20))
    emu.empty_recycle_bin("Account")  # 'hard' and friends vanish from queryAll
    emu.load("Account", [{"Name": "back"}])  # unrelated new row
    at(emu, start + HOUR + dt.timedelta(minutes=5))
    result = Replicator(client, ReplicationSpec("Account"), folder).run(start, start + HOUR)
    assert result["deleted"] == 3
    deleted = pq.read_table(result["deleted_path"]).to_pylist()
    assert {r["Id"] for r in deleted} == {soft, hard, back}
    assert str(pq.read_table(result["deleted_path"]).schema.field("deletedDate").type).startswith(
        "timestamp"
    )
    types = json.loads((folder / "_schema.json").read_text())["fields"]
    outcome = compare(merged_lake(folder), live_rows(client, "Account", types), types)
    assert (outcome["missing"], outcome["stale"], outcome["resurrected"]) == (0, 0, 0), outcome
    assert keep in merged_lake(folder)


def test_formula_refresh_reads_every_row_by_bulk(emu, client, tmp_path, start):
    at(emu, start)
    emu.load(
        "Account",
        [{"Name": "F", "LastActivityDate": (start.date() - dt.timedelta(days=9)).isoformat()}],
    )
    folder = tmp_path / "Account"
    spec = ReplicationSpec("Account", mode="formulas", api="auto", bulk_threshold=0)
    result = Replicator(client, spec, folder).run(start, start + HOUR, **BULK)
    assert result["api"] == "bulk" and result["columns"] == ["Id", "Days_Since_Last_Activity__c"]
    assert result["data_path"] == str(folder / "formulas.parquet")
    rows = pq.read_table(result["data_path"]).to_pylist()
    assert [r["Days_Since_Last_Activity__c"] for r in rows] == [9.0]
    assert not (folder / "_schema.json").exists()  # a refresh is not a replication run


def test_rerun_replaces_the_files_of_its_interval(emu, client, tmp_path, start):
    at(emu, start + dt.timedelta(minutes=30))
    emu.load("Account", [{"Name": "one"}])
    at(emu, start + HOUR + dt.timedelta(minutes=5))
    folder = tmp_path / "Account"
    replicator = Replicator(client, ReplicationSpec("Account"), folder)
    replicator.run(start - HOUR, start)
    first = replicator.run(start, start + HOUR)
    emu.load(
        "Account", [{"Name": "two"}], modstamp=start + dt.timedelta(minutes=40)
    )  # a late commit
    again = replicator.run(start, start + HOUR)
    assert (first["rows"], again["rows"]) == (1, 2)
    assert first["data_path"] == again["data_path"]
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        f"{key(start - HOUR)}.parquet",
        f"{key(start)}.parquet",
    ]
    assert not [p for p in folder.rglob(".*part-*")]  # no temporary file left behind


def test_layout_on_object_storage_paths(emu, client, tmp_path, start):
    """An ObjectStoragePath (what the operator makes of s3://...) gets the same layout."""
    from airflow_provider_sfjwt.compat import ObjectStoragePath

    at(emu, start + HOUR)
    folder = ObjectStoragePath(f"file://{tmp_path}/lake/Account")
    result = Replicator(client, ReplicationSpec("Account", format="jsonl"), folder).run(
        start, start + HOUR
    )
    assert result["data_path"].endswith(f"/lake/Account/data/{key(start)}.jsonl")
    assert (tmp_path / "lake" / "Account" / "_schema.json").exists()


def test_objects_lists_counts_and_cursor_fields(emu, tmp_path, capsys):
    from airflow_provider_sfjwt.cli import main

    emu.generate_accounts(7)
    assert main(["objects", "--match", "Account", "--match", "Cont*", "--json"]) == 0
    listed = {o["name"]: o for o in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"Account", "Contact"}
    account = listed["Account"]
    assert (account["rows"], account["cursor_field"], account["mode"]) == (
        7,
        "SystemModstamp",
        "incremental",
    )
    assert (account["compound_fields"], account["formula_fields"]) == (1, 1)
    assert main(["objects", "--match", "Account", "--no-counts"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == [
        "OBJECT",
        "ROWS",
        "CURSOR",
        "MODE",
        "FIELDS",
        "FORMULA",
        "COMPOUND",
        "BASE64",
    ]
    assert "Account" in text and "1 replicable objects" in text


def test_replication_reads_nothing_outside_its_window(emu, client, tmp_path: Path, start):
    at(emu, start - 3 * HOUR)
    emu.load("Account", [{"Name": "long ago"}])
    at(emu, start + dt.timedelta(minutes=20))
    emu.load("Account", [{"Name": "inside"}])
    at(emu, start + 2 * HOUR)
    emu.load("Account", [{"Name": "after"}])
    folder = tmp_path / "Account"
    (folder).mkdir()
    (folder / "_schema.json").write_text(json.dumps({"object": "Account", "fields": {}}))
    result = Replicator(client, ReplicationSpec("Account"), folder).run(start, start + HOUR)
    names = [r["Name"] for r in pq.read_table(result["data_path"]).to_pylist()]
    assert names == ["inside"]
