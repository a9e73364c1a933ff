"""The REST client and the extract engine against the emulator: faults mid-flight, files, quota.

Everything here is real HTTP on loopback; faults are injected by the emulator, so the client's
retry, re-auth and streaming code runs exactly as in production.
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import threading
import time

import pytest

from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import (
    QuotaGuardError,
    RequestLimitExceededError,
    RetriesExhaustedError,
)
from airflow_provider_sfjwt.salesforce.extract import (
    column_types,
    from_object,
    long_lived_objects_frozen,
    prefetched,
    query_to_file,
)
from airflow_provider_sfjwt.salesforce.retry import RetryPolicy
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.testing.keys import shared_key_pair

API = "/services/data/v66.0"
QUERY = f"{API}/query"
ACCOUNT_SOQL = "SELECT Id, Name, AnnualRevenue FROM Account"


def make_client(emu, max_retries: int = 3, **extra) -> SalesforceClient:
    conn = emu.connection(private_key_pem=shared_key_pair().private_key_pem, **extra)
    settings = parse_connection(
        host=conn["host"], login=conn["login"], password=None, extra=conn["extra"]
    )
    retry = RetryPolicy(max_retries=max_retries, backoff_base=0.01, backoff_max=0.05)
    return SalesforceClient(settings, retry=retry)


def emulator_ids(emu, sobject: str = "Account") -> list[str]:
    return [r["Id"] for r in emu.records(sobject)]


@pytest.fixture
def accounts(emu):
    """2,000 Accounts: ten pages of 200 with ``batch_size=200``."""
    emu.generate_accounts(2000)
    return emu


def test_session_revoked_mid_query_yields_every_record_once(accounts):
    client = make_client(accounts)
    client.auth.token()
    accounts.faults.revoke_sessions(after_calls=5)
    ids = [r["Id"] for r in client.query("SELECT Id FROM Account", batch_size=200)]
    assert len(ids) == 2000
    assert len(set(ids)) == 2000
    assert set(ids) == set(emulator_ids(accounts))
    assert accounts.stats.token_exchanges == 2


def test_connection_reset_mid_page_is_retried(accounts):
    client = make_client(accounts)
    # Pages after the first are GETs on the locator URL under /query/.
    accounts.faults.reset_connection(f"{QUERY}/", count=2, after_bytes=500)
    ids = [r["Id"] for r in client.query("SELECT Id, Name FROM Account", batch_size=200)]
    assert len(ids) == len(set(ids)) == 2000
    assert accounts.stats.faults_injected == 2


def test_503_with_retry_after_then_success(emu):
    emu.generate_accounts(3)
    client = make_client(emu)
    client.auth.token()
    emu.faults.fail(QUERY, 503, count=1, retry_after=1)
    started = time.monotonic()
    assert client.count("SELECT COUNT() FROM Account") == 3
    assert time.monotonic() - started >= 1.0  # Retry-After honoured, not the 10 ms backoff
    assert emu.stats.paths[QUERY] == 2


def test_429_storm_gives_up_after_the_bound(emu):
    client = make_client(emu, max_retries=3)
    client.auth.token()
    emu.faults.fail(QUERY, 429, count=50)
    with pytest.raises(RetriesExhaustedError) as caught:
        client.count("SELECT COUNT() FROM Account")
    message = str(caught.value)
    assert "HTTP 429" in message and "4 tries" in message and "max_retries (now 3)" in message
    assert emu.stats.paths[QUERY] == 4  # the first try and 3 retries


def test_request_limit_exceeded_stops_without_retrying(emu):
    client = make_client(emu, max_retries=5)
    client.auth.token()
    emu.faults.exhaust_quota()
    with pytest.raises(RequestLimitExceededError) as caught:
        client.count("SELECT COUNT() FROM Account")
    assert emu.stats.paths[QUERY] == 1
    message = str(caught.value)
    assert "REQUEST_LIMIT_EXCEEDED" in message and "24-hour API request limit" in message


def test_quota_guard_stops_above_the_configured_share(emu):
    emu.daily_api_limit = 10
    client = make_client(emu, max_api_usage_percent=50)
    client.auth.token()
    done = 0
    with pytest.raises(QuotaGuardError) as caught:
        for _ in range(20):
            client.count("SELECT COUNT() FROM Account")
            done += 1
    assert client.api_usage is not None and client.api_usage.percent >= 50
    assert done == client.api_usage.used  # it stopped at the first call at or above 50 %
    assert "max_api_usage_percent of 50 %" in str(caught.value)


def test_api_usage_is_logged_once_per_client(emu, caplog):
    client = make_client(emu)
    with caplog.at_level(logging.INFO, logger="airflow_provider_sfjwt.salesforce.client"):
        for _ in range(3):
            client.count("SELECT COUNT() FROM Account")
    usage_lines = [r for r in caplog.records if "Salesforce API usage" in r.getMessage()]
    assert len(usage_lines) == 1
    assert "daily API requests" in usage_lines[0].getMessage()


def test_failed_extract_leaves_no_file(emu, tmp_path):
    emu.generate_accounts(4100)  # three pages of 2,000
    client = make_client(emu, max_retries=1)
    client.auth.token()
    target = tmp_path / "out" / "accounts.csv"
    emu.faults.fail(f"{QUERY}/", 500, count=10)  # the first page is written, the second fails
    with pytest.raises(RetriesExhaustedError):
        query_to_file(client, ACCOUNT_SOQL, target)
    assert emu.stats.paths[QUERY] == 1 and emu.stats.faults_injected == 2
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary part left behind either


def test_failed_extract_keeps_the_previous_good_file(accounts, tmp_path):
    client = make_client(accounts, max_retries=0)
    target = tmp_path / "accounts.csv"
    target.write_text("previous,good,file\n")
    accounts.faults.exhaust_quota()
    with pytest.raises(RequestLimitExceededError):
        query_to_file(client, ACCOUNT_SOQL, target)
    assert target.read_text() == "previous,good,file\n"


TRICKY = [
    {"Name": 'Comma, "quotes" and, more', "Description": "line one\nline two", "Phone": None},
    {"Name": "Windows\r\nbreak", "Description": "Ünïcödé ✓ 🚀 東京", "Phone": "+1 (415) 555-0100"},
    {"Name": "Trailing comma,", "Description": '""', "Phone": ""},
    {"Name": "  spaces kept  ", "Description": "tab\there; semicolon", "Phone": "'quoted'"},
]


def _as_csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_csv_round_trips_through_the_csv_module(emu, tmp_path):
    emu.load("Account", TRICKY)
    emu.generate_accounts(300)  # generated names and descriptions carry commas, quotes, unicode
    client = make_client(emu)
    soql = (
        "SELECT Id, Name, Description, Phone, AnnualRevenue, NumberOfEmployees, Active__c, "
        "Owner.Name, CreatedDate FROM Account"
    )
    path = tmp_path / "accounts.csv"
    result = query_to_file(client, soql, path)
    assert result["rows"] == 304
    assert result["columns"] == [
        "Id",
        "Name",
        "Description",
        "Phone",
        "AnnualRevenue",
        "NumberOfEmployees",
        "Active__c",
        "Owner.Name",
        "CreatedDate",
    ]
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert header == result["columns"]
    expected = []
    for record in client.query(soql):
        owner = record.get("Owner") or {}
        flat = {**record, "Owner.Name": owner.get("Name")}
        expected.append([_as_csv_text(flat[c]) for c in header])
    assert rows == expected
    names = {row[1] for row in rows}
    assert {t["Name"] for t in TRICKY} <= names  # CR LF, quotes and commas survived


def test_jsonl_keeps_json_types(emu, tmp_path):
    emu.load("Account", TRICKY)
    client = make_client(emu)
    path = tmp_path / "a.jsonl"
    query_to_file(client, "SELECT Name, Phone, Owner.Name FROM Account", path, "jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [x["Name"] for x in lines] == [t["Name"] for t in TRICKY]
    assert lines[0]["Phone"] is None and set(lines[0]) == {"Name", "Phone", "Owner.Name"}


def test_parquet_is_typed_from_describe(emu, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    emu.generate_accounts(500)
    client = make_client(emu)
    soql = (
        "SELECT Id, Name, AnnualRevenue, NumberOfEmployees, Active__c, LastActivityDate, "
        "CreatedDate, Owner.Name FROM Account"
    )
    result = query_to_file(client, soql, tmp_path / "a.parquet", "parquet")
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.num_rows == result["rows"] == 500
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "Id": "string",
        "Name": "string",
        "AnnualRevenue": "double",
        "NumberOfEmployees": "int64",
        "Active__c": "bool",
        "LastActivityDate": "date32[day]",
        "CreatedDate": "timestamp[ms, tz=UTC]",
        "Owner.Name": "string",
    }


def test_column_types_follow_relationships(emu):
    client = make_client(emu)
    soql = "SELECT Name, Account.Name, Account.AnnualRevenue, expr0 FROM Contact"
    types = column_types(client, soql, ["Name", "Account.Name", "Account.AnnualRevenue", "x"])
    assert types == {
        "Name": "string",
        "Account.Name": "string",
        "Account.AnnualRevenue": "currency",
    }


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        ("SELECT Id FROM Account", "Account"),
        ("select id, (select id from Contacts) from Account where Name = 'x FROM y'", "Account"),
        ("SELECT COUNT() FROM Contact WHERE Email != null", "Contact"),
        ("not soql", None),
    ],
)
def test_from_object(soql, expected):
    assert from_object(soql) == expected


def test_prefetched_keeps_order_and_fetches_one_ahead():
    fetched: list[int] = []

    def source():
        for i in range(5):
            fetched.append(i)
            yield i

    seen = []
    for item in prefetched(source()):
        seen.append(item)
        time.sleep(0.01)
        assert len(fetched) <= item + 2  # at most one item ahead of the consumer
    assert seen == [0, 1, 2, 3, 4]


def test_prefetched_raises_the_source_error_and_closes_on_early_exit():
    closed = threading.Event()

    def failing():
        yield 1
        raise RuntimeError("page 2 failed")

    with pytest.raises(RuntimeError, match="page 2 failed"):
        list(prefetched(failing()))

    def endless():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    for _ in prefetched(endless()):
        break
    assert closed.is_set()


def test_gc_freeze_is_undone_and_never_undoes_someone_elses():
    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with long_lived_objects_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
