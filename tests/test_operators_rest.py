"""Operators, the SOQL sensor and the example DAGs against the emulator.

Operators run through ``execute({})`` (no metadata DB needed); the example DAGs run end to end
with ``dag.test()`` (see dag_support.py). The connection is the emulator fixture's
``AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT``.
"""

from __future__ import annotations

import csv
import json
import threading
from datetime import datetime, timezone

import pytest

from airflow_provider_sfjwt.compat import AirflowRescheduleException
from airflow_provider_sfjwt.operators import (
    SalesforceCollectionsOperator,
    SalesforceQueryOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.salesforce.errors import (
    ApiError,
    ResponseTooLargeError,
    TooManyFailedRecordsError,
)
from airflow_provider_sfjwt.salesforce.load import prepare_record
from airflow_provider_sfjwt.sensors import SalesforceSoqlSensor

from .dag_support import run_dag


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --- SalesforceQueryOperator ---------------------------------------------------------------


def test_query_operator_streams_to_file_and_returns_a_small_summary(emu, tmp_path):
    emu.generate_accounts(4500)  # three pages of 2,000
    target = tmp_path / "out" / "accounts.csv"
    op = SalesforceQueryOperator(
        task_id="extract",
        soql="SELECT Id, Name, Owner.Name FROM Account",
        output_path=str(target),
    )
    result = op.execute({})
    assert result == {
        "path": str(target),
        "rows": 4500,
        "columns": ["Id", "Name", "Owner.Name"],
        "format": "csv",
    }
    rows = read_csv(target)
    assert len(rows) == 4500 and all(r["Owner.Name"] for r in rows)
    assert len({r["Id"] for r in rows}) == 4500
    assert emu.stats.token_exchanges == 1


def test_query_operator_refuses_an_unknown_format_at_parse_time():
    with pytest.raises(ValueError, match="csv, jsonl, parquet"):
        SalesforceQueryOperator(
            task_id="q", soql="SELECT Id FROM Account", output_path="x", format="xlsx"
        )


def test_query_operator_include_deleted_uses_query_all(emu, tmp_path):
    emu.load("Account", [{"Name": "live"}, {"Name": "gone", "IsDeleted": True}])
    common = {"soql": "SELECT Name FROM Account", "format": "jsonl"}
    live = SalesforceQueryOperator(task_id="a", output_path=str(tmp_path / "a.jsonl"), **common)
    every = SalesforceQueryOperator(
        task_id="b", output_path=str(tmp_path / "b.jsonl"), include_deleted=True, **common
    )
    assert live.execute({})["rows"] == 1
    assert every.execute({})["rows"] == 2


def test_query_operator_bad_soql_fails_with_salesforce_words_and_no_file(emu, tmp_path):
    op = SalesforceQueryOperator(
        task_id="q", soql="SELECT Nope__c FROM Account", output_path=str(tmp_path / "x.csv")
    )
    with pytest.raises(ApiError) as caught:
        op.execute({})
    assert "INVALID_FIELD" in str(caught.value) and "field-level security" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_hook_query_to_file_writes_through_object_storage(emu, tmp_path):
    from airflow_provider_sfjwt.compat import ObjectStoragePath
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook, storage_path

    emu.generate_accounts(2500)
    hook = SalesforceJWTHook()
    target = ObjectStoragePath(f"file://{tmp_path}/lake/accounts.jsonl")
    result = hook.query_to_file("SELECT Id, Name FROM Account", target, format="jsonl")
    assert result["rows"] == 2500 and result["path"] == str(target)
    assert len(target.read_text().splitlines()) == 2500
    assert [p.name for p in target.parent.iterdir()] == ["accounts.jsonl"]
    assert storage_path("s3://bucket/key.csv").protocol == "s3"
    assert storage_path("/tmp/x.csv") == "/tmp/x.csv"


# --- SalesforceCollectionsOperator ---------------------------------------------------------


def write_contacts_csv(path, n: int, bad: dict[int, dict[str, str]]) -> None:
    """``n`` contacts; ``bad`` maps 1-based row numbers to overriding values."""
    fields = ["External_Id__c", "FirstName", "LastName", "Email", "Title", "AccountId"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in range(1, n + 1):
            record = {
                "External_Id__c": f"T-{row:05d}",
                "FirstName": "Zoë",
                "LastName": f"O'Brien, {row}",
                "Email": f"c{row}@example.com",
                "Title": 'Head of "Ops"',
                "AccountId": "",
            }
            record.update(bad.get(row, {}))
            writer.writerow(record)


def test_collections_partial_failure_writes_report_and_fails_over_the_limit(emu, tmp_path):
    source = tmp_path / "contacts.csv"
    bad = {10: {"LastName": ""}, 200: {"AccountId": "001000000000000AAA"}, 305: {"LastName": ""}}
    write_contacts_csv(source, 450, bad)
    report = tmp_path / "failed.csv"
    common = {
        "task_id": "load",
        "operation": "upsert",
        "sobject": "Contact",
        "external_id_field": "External_Id__c",
        "input_path": str(source),
        "failed_records_path": str(report),
    }
    calls = emu.stats.api_calls
    with pytest.raises(TooManyFailedRecordsError) as caught:
        SalesforceCollectionsOperator(max_failed_records=2, **common).execute({})
    message = str(caught.value)
    assert "refused 3 of 450" in message and "max_failed_records=2" in message
    assert str(report) in message
    assert caught.value.summary["failed"] == 3  # the summary travels with the error
    assert emu.stats.api_calls - calls == 3  # chunks of 200: 200 + 200 + 50

    failed = read_csv(report)
    assert [(r["sf__row"], r["sf__error_code"]) for r in failed] == [
        ("10", "REQUIRED_FIELD_MISSING"),
        ("200", "INVALID_CROSS_REFERENCE_KEY"),
        ("305", "REQUIRED_FIELD_MISSING"),
    ]
    assert failed[0]["sf__error_fields"] == "LastName"
    assert failed[1]["External_Id__c"] == "T-00200"  # the input row comes back as given
    assert failed[1]["Title"] == 'Head of "Ops"'
    assert failed[0]["sf__error_message"]

    # A percentage of the records sent, as for Bulk ingest: 0.5% of 450 allows 2.
    with pytest.raises(TooManyFailedRecordsError, match=r"max_failed_records=0.5% \(2 records\)"):
        SalesforceCollectionsOperator(max_failed_records="0.5%", **common).execute({})

    # Same file, higher tolerance: succeeds; the upsert does not duplicate what was loaded.
    summary = SalesforceCollectionsOperator(max_failed_records=3, **common).execute({})
    assert summary == {
        "operation": "upsert",
        "sobject": "Contact",
        "records": 450,
        "succeeded": 447,
        "failed": 3,
        "chunks": 3,
        "failed_records_path": str(report),
        "retried": 0,
    }
    contacts = [r for r in emu.records("Contact") if not r["IsDeleted"]]
    assert len(contacts) == 447
    assert {c["Title"] for c in contacts} == {'Head of "Ops"'}


def test_collections_clean_run_replaces_a_stale_report(emu, tmp_path):
    report = tmp_path / "failed.csv"
    report.write_text("sf__row,sf__error_code\n1,OLD\n")
    summary = SalesforceCollectionsOperator(
        task_id="ins",
        operation="insert",
        sobject="Account",
        records=[{"Name": "A"}, {"Name": "B"}],
        failed_records_path=str(report),
    ).execute({})
    assert (summary["succeeded"], summary["failed"]) == (2, 0)
    assert read_csv(report) == []


def test_collections_all_or_none_rolls_back_the_chunk(emu, tmp_path):
    report = tmp_path / "failed.jsonl"
    records = [{"LastName": f"L{i}"} for i in range(4)] + [{"FirstName": "no last name"}]
    summary = SalesforceCollectionsOperator(
        task_id="ins",
        operation="insert",
        sobject="Contact",
        records=records,
        all_or_none=True,
        failed_records_path=str(report),
        max_failed_records=5,
    ).execute({})
    assert (summary["succeeded"], summary["failed"]) == (0, 5)
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    codes = [x["sf__error_code"] for x in lines]
    assert codes.count("ALL_OR_NONE_OPERATION_ROLLED_BACK") == 4
    assert "REQUIRED_FIELD_MISSING" in codes
    assert emu.records("Contact") == []


def contacts(n: int) -> list[dict[str, str]]:
    return [{"LastName": f"Locked {i}", "External_Id__c": f"L-{i:04d}"} for i in range(n)]


def test_collections_locked_rows_are_sent_again_alone(emu, tmp_path, caplog):
    emu.faults.lock_rows(3)  # the first 3 records of the first chunk
    calls = emu.stats.api_calls
    summary = SalesforceCollectionsOperator(
        task_id="ups",
        operation="upsert",
        sobject="Contact",
        external_id_field="External_Id__c",
        records=contacts(450),
        failed_records_path=str(tmp_path / "failed.csv"),
    ).execute({})
    assert (summary["succeeded"], summary["failed"], summary["retried"]) == (450, 0, 3)
    assert emu.stats.api_calls - calls == 3 + 1  # three chunks, one resend of the 3 locked rows
    stored = [r["External_Id__c"] for r in emu.records("Contact")]
    assert sorted(stored) == [f"L-{i:04d}" for i in range(450)]  # each exactly once
    assert read_csv(tmp_path / "failed.csv") == []
    assert "3 record(s) refused with UNABLE_TO_LOCK_ROW; sending them again" in caplog.text


def test_collections_rows_still_locked_after_the_retries_are_reported(emu, tmp_path):
    emu.faults.lock_rows(1000)
    report = tmp_path / "failed.csv"
    records = [*contacts(2), {"FirstName": "no last name"}]
    with pytest.raises(TooManyFailedRecordsError, match="refused 3 of 3 records"):
        SalesforceCollectionsOperator(
            task_id="ins",
            operation="insert",
            sobject="Contact",
            records=records,
            failed_records_path=str(report),
            transient_retries=2,
        ).execute({})
    failed = read_csv(report)
    assert [(r["sf__row"], r["sf__error_code"]) for r in failed] == [
        ("1", "UNABLE_TO_LOCK_ROW"),
        ("2", "UNABLE_TO_LOCK_ROW"),
        ("3", "UNABLE_TO_LOCK_ROW"),
    ]
    assert emu.records("Contact") == []
    # transient_retries=0: one request, nothing sent again.
    calls = emu.stats.api_calls
    summary = SalesforceCollectionsOperator(
        task_id="ins",
        operation="insert",
        sobject="Contact",
        records=contacts(2),
        transient_retries=0,
        max_failed_records=2,
    ).execute({})
    assert (summary["failed"], summary["retried"], emu.stats.api_calls - calls) == (2, 0, 1)


def test_collections_lock_with_a_real_error_resends_only_the_locked_row(emu, tmp_path):
    emu.faults.lock_rows(1)
    report = tmp_path / "failed.csv"
    summary = SalesforceCollectionsOperator(
        task_id="ins",
        operation="insert",
        sobject="Contact",
        records=[*contacts(2), {"FirstName": "no last name"}],
        failed_records_path=str(report),
        max_failed_records=1,
        transient_error_codes="UNABLE_TO_LOCK_ROW",  # one code as a plain string
    ).execute({})
    assert (summary["succeeded"], summary["failed"], summary["retried"]) == (2, 1, 1)
    assert [(r["sf__row"], r["sf__error_code"]) for r in read_csv(report)] == [
        ("3", "REQUIRED_FIELD_MISSING")
    ]


def test_collections_all_or_none_resends_a_chunk_rolled_back_by_a_lock(emu):
    emu.faults.lock_rows(1)
    summary = SalesforceCollectionsOperator(
        task_id="ins",
        operation="insert",
        sobject="Contact",
        records=contacts(5),
        all_or_none=True,
    ).execute({})
    assert (summary["succeeded"], summary["failed"], summary["retried"]) == (5, 0, 5)
    assert len(emu.records("Contact")) == 5
    # A real error in the chunk: the rollback is not transient, nothing is sent again.
    emu.faults.lock_rows(1)
    summary = SalesforceCollectionsOperator(
        task_id="ins",
        operation="insert",
        sobject="Contact",
        records=[*contacts(2), {"FirstName": "no last name"}],
        all_or_none=True,
        max_failed_records=3,
    ).execute({})
    assert (summary["succeeded"], summary["failed"], summary["retried"]) == (0, 3, 0)
    assert len(emu.records("Contact")) == 5


def test_collections_delete_retries_a_locked_row(emu):
    ids = emu.load("Account", [{"Name": "x"}, {"Name": "y"}])
    emu.faults.lock_rows(1)
    summary = SalesforceCollectionsOperator(
        task_id="del", operation="delete", records=[{"Id": i} for i in ids]
    ).execute({})
    assert (summary["succeeded"], summary["failed"], summary["retried"]) == (2, 0, 1)
    assert all(r["IsDeleted"] for r in emu.records("Account"))


def test_collections_update_by_id(emu):
    ids = emu.load("Account", [{"Name": "old"}, {"Name": "old too"}])
    summary = SalesforceCollectionsOperator(
        task_id="upd",
        operation="update",
        sobject="Account",
        records=[{"Id": ids[0], "Name": 'new, "quoted"'}, {"Id": ids[1], "Name": "new 2"}],
    ).execute({})
    assert (summary["succeeded"], summary["failed"]) == (2, 0)
    assert [r["Name"] for r in emu.records("Account")] == ['new, "quoted"', "new 2"]


def test_collections_delete_by_id(emu):
    ids = emu.load("Account", [{"Name": "x"}, {"Name": "y"}])
    summary = SalesforceCollectionsOperator(
        task_id="del",
        operation="delete",
        records=[{"Id": ids[0]}, {"Id": ids[1]}, {"Id": "001000000000000AAA"}],
        max_failed_records=1,
    ).execute({})
    assert (summary["succeeded"], summary["failed"]) == (2, 1)
    assert all(r["IsDeleted"] for r in emu.records("Account"))


def test_csv_records_follow_bulk_conventions():
    row = {"LastName": "Ng", "Title": None, "Phone": "#N/A", "Account.External_Id__c": "A-1"}
    assert prepare_record(row, from_csv=True) == {
        "LastName": "Ng",
        "Phone": None,
        "Account": {"External_Id__c": "A-1"},
    }
    given = {"attributes": {"type": "Contact"}, "Title": None}
    assert prepare_record(given) == {"Title": None}  # JSON input: null means null


def test_collections_operator_checks_its_arguments():
    with pytest.raises(ValueError, match="transient_retries must be 0 or more"):
        SalesforceCollectionsOperator(
            task_id="x", operation="insert", sobject="Account", records=[], transient_retries=-1
        )
    with pytest.raises(ValueError, match="exactly one of input_path"):
        SalesforceCollectionsOperator(task_id="x", operation="insert", sobject="Account")
    with pytest.raises(ValueError, match="operation must be one of"):
        SalesforceCollectionsOperator(task_id="y", operation="merge", records=[])
    with pytest.raises(ValueError, match="update needs sobject"):
        SalesforceCollectionsOperator(task_id="u", operation="update", records=[])
    rendered = SalesforceCollectionsOperator(
        task_id="z", operation="insert", sobject="Account", records="[{'Name': 'x'}]"
    )
    with pytest.raises(TypeError, match="records=upstream.output"):
        rendered.execute({})


# --- SalesforceRestOperator ----------------------------------------------------------------


def test_rest_operator_calls_apex_and_returns_small_answers(emu):
    seen = []

    def health(req):
        seen.append(req.json())
        return 200, {"industry": req.json()["industry"], "score": 42}

    emu.register_apex("POST", "AccountHealth", health)
    result = SalesforceRestOperator(
        task_id="apex",
        method="POST",
        endpoint="/services/apexrest/AccountHealth",
        json={"industry": "Technology"},
    ).execute({})
    assert result == {"status": 200, "body": {"industry": "Technology", "score": 42}}
    assert seen == [{"industry": "Technology"}]


def test_rest_operator_large_answer_goes_to_a_file(emu, tmp_path):
    big = {"items": [{"n": i, "text": "x" * 100} for i in range(2000)]}  # ~230 KB
    emu.register_apex("GET", "Big", lambda req: (200, big))
    op = SalesforceRestOperator(task_id="big", endpoint="/services/apexrest/Big")
    with pytest.raises(ResponseTooLargeError, match="Set output_path"):
        op.execute({})
    target = tmp_path / "big.json"
    result = SalesforceRestOperator(
        task_id="big2", endpoint="/services/apexrest/Big", output_path=str(target)
    ).execute({})
    assert result == {"status": 200, "path": str(target), "bytes": target.stat().st_size}
    assert json.loads(target.read_text()) == big


def test_rest_operator_does_not_repeat_a_post_unless_told_it_is_idempotent(emu):
    calls = []
    emu.register_apex("POST", "Orders", lambda req: (calls.append(1) or 201, {"ok": True}))
    emu.faults.fail("/services/apexrest/Orders", 500, count=1)
    op = SalesforceRestOperator(task_id="p", method="POST", endpoint="/services/apexrest/Orders")
    with pytest.raises(ApiError, match="HTTP 500"):
        op.execute({})
    emu.faults.fail("/services/apexrest/Orders", 500, count=1)
    again = SalesforceRestOperator(
        task_id="p2", method="POST", endpoint="/services/apexrest/Orders", idempotent=True
    )
    assert again.execute({}) == {"status": 201, "body": {"ok": True}}
    assert len(calls) == 1


# --- SalesforceSoqlSensor ------------------------------------------------------------------


def test_sensor_waits_until_the_count_is_met(emu):
    sensor = SalesforceSoqlSensor(
        task_id="wait", soql="SELECT COUNT() FROM Contact WHERE Email != null", threshold=3
    )
    assert not sensor.poke({})
    emu.load("Contact", [{"LastName": f"L{i}", "Email": f"{i}@example.com"} for i in range(3)])
    done = sensor.poke({})
    assert done.is_done and done.xcom_value == {"count": 3}
    assert emu.stats.token_exchanges == 1  # one token for every poke


def test_sensor_poke_mode_waits_in_the_task(emu):
    loader = threading.Timer(
        0.5, emu.load, ("Contact", [{"LastName": "Late", "Email": "late@example.com"}])
    )
    sensor = SalesforceSoqlSensor(
        task_id="wait",
        soql="SELECT COUNT() FROM Contact WHERE Email != null",
        poke_interval=0.2,
        timeout=30,
    )
    loader.start()
    try:
        assert sensor.execute({}) == {"count": 1}
    finally:
        loader.cancel()
    assert emu.stats.token_exchanges == 1


class FirstTryTI:
    """The one thing reschedule mode asks of the task instance: when did waiting start."""

    def get_first_reschedule_date(self, context):
        return None


def test_sensor_reschedule_mode_frees_the_slot_until_met(emu):
    sensor = SalesforceSoqlSensor(
        task_id="wait",
        soql="SELECT COUNT() FROM Contact",
        mode="reschedule",
        poke_interval=300,
    )
    with pytest.raises(AirflowRescheduleException) as caught:
        sensor.execute({"ti": FirstTryTI()})
    wait = (caught.value.reschedule_date - datetime.now(timezone.utc)).total_seconds()
    assert 290 < wait <= 300
    emu.load("Contact", [{"LastName": "Now"}])
    assert sensor.execute({"ti": FirstTryTI()}) == {"count": 1}


@pytest.mark.parametrize(
    ("comparison", "threshold", "expected"),
    [(">=", 1, True), (">", 2, False), ("==", 2, True), ("!=", 2, False), ("<", 5, True)],
)
def test_sensor_comparisons(emu, comparison, threshold, expected):
    emu.load("Account", [{"Name": "a"}, {"Name": "b"}])
    sensor = SalesforceSoqlSensor(
        task_id="s",
        soql="SELECT COUNT() FROM Account",
        threshold=str(threshold),  # as a rendered template would give it
        comparison=comparison,
    )
    assert bool(sensor.poke({})) is expected


def test_sensor_rejects_an_unknown_comparison():
    with pytest.raises(ValueError, match="comparison must be one of"):
        SalesforceSoqlSensor(task_id="s", soql="SELECT COUNT() FROM Account", comparison="=>")


# --- example DAGs with dag.test() ----------------------------------------------------------


def test_example_extract_accounts(emu, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    emu.generate_accounts(4100)
    run = run_dag("salesforce_extract_accounts", conf={"output_dir": str(tmp_path)})
    assert run.state == "success", run.task_states
    summary = run.xcom("extract_accounts_csv")
    assert summary["rows"] == 4100 and summary["path"] == str(tmp_path / "accounts.csv")
    assert len(read_csv(tmp_path / "accounts.csv")) == 4100
    assert pq.read_table(tmp_path / "accounts.parquet").num_rows == 4100
    assert emu.stats.token_exchanges == 1


def test_example_upsert_contacts(emu, tmp_path):
    run = run_dag("salesforce_upsert_contacts", conf={"output_dir": str(tmp_path)})
    assert run.state == "success", run.task_states
    summary = run.xcom("upsert_contacts")
    assert (summary["succeeded"], summary["failed"]) == (3, 2)
    codes = [r["sf__error_code"] for r in read_csv(tmp_path / "contacts_failed.csv")]
    assert codes == ["REQUIRED_FIELD_MISSING", "INVALID_CROSS_REFERENCE_KEY"]


def test_example_wait_then_extract(emu, tmp_path):
    emu.generate_contacts(50)
    run = run_dag("salesforce_wait_then_extract", conf={"output_dir": str(tmp_path)})
    assert run.state == "success", run.task_states
    assert run.xcom("wait_for_contacts")["count"] > 0
    lines = (tmp_path / "contacts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == run.xcom("extract_contacts")["rows"] > 0


def test_example_apex_rest(emu, tmp_path):
    emu.register_apex("POST", "AccountHealth", lambda req: (200, {"score": 7}))
    run = run_dag("salesforce_apex_rest", conf={"output_dir": str(tmp_path)})
    assert run.state == "success", run.task_states
    assert run.xcom("score_accounts") == {"status": 200, "body": {"score": 7}}
    describe = json.loads((tmp_path / "account_describe.json").read_text())
    assert describe["name"] == "Account"


def test_example_incremental_extract_reads_its_interval_only(emu, tmp_path):
    day = datetime(2026, 3, 11, tzinfo=timezone.utc)  # @daily: the run of the 10th's data
    emu.load(
        "Account",
        [
            {"Name": "before", "Industry": "Banking", "SystemModstamp": "2026-03-09T23:59:59Z"},
            {
                "Name": 'O\'Brien \\ "Bank"',
                "Industry": "Banking",
                "SystemModstamp": "2026-03-10T00:00:00Z",
            },
            {"Name": "energy", "Industry": "Energy", "SystemModstamp": "2026-03-10T12:00:00Z"},
            {
                "Name": "quote",
                "Industry": "Bank' OR Name != '",
                "SystemModstamp": "2026-03-10T13:00:00Z",
            },
            {"Name": "after", "Industry": "Banking", "SystemModstamp": "2026-03-11T00:00:00Z"},
        ],
    )
    conf = {"output_dir": str(tmp_path), "industries": ["Banking", "Bank' OR Name != '"]}
    run = run_dag("salesforce_incremental_extract", conf=conf, logical_date=day)
    assert run.state == "success", run.task_states
    rows = read_csv(tmp_path / "accounts_changed_2026-03-10.csv")
    assert [r["Name"] for r in rows] == ['O\'Brien \\ "Bank"', "quote"]
    run = run_dag(
        "salesforce_incremental_extract", conf={"output_dir": str(tmp_path)}, logical_date=day
    )
    assert run.state == "success", run.task_states
    assert [r["Name"] for r in read_csv(tmp_path / "accounts_changed_2026-03-10.csv")] == [
        'O\'Brien \\ "Bank"',
        "energy",
        "quote",
    ]
