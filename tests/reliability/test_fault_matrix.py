"""Matrix 1: every operator against every fault the emulator can inject.

Rows are faults, columns are operators (see ``columns.py``). Each cell states its expected
outcome up front - success with exact counts, or a failure whose message names the cause - and
checks it against a fresh emulator: no lost or duplicated rows, no partial output file, and no
write sent twice where Salesforce would create duplicates (records are counted in the emulator).

Faults "on the data path" are aimed at the requests that carry the data: REST query pages 2+,
the Collections chunks, the REST resource, the sensor's query, a Bulk query job's result chunks
and a Bulk ingest job's upload (aimed the moment the job exists). Session revocations are placed
by position: before the first API call, half-way, and before the last one (the last page of a
REST query), counted from a clean baseline run of the same column.

Kept fast on purpose: 35 rows in pages of 10, ``max_retries=3``, ``Retry-After`` of 0.1 s,
``request_timeout=1`` only for the slow-response row, Bulk polls every 10 ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE
from airflow_provider_sfjwt.testing import SalesforceEmulator

from .columns import COLUMNS, PAGE_SIZE, Column, State, wait_until_stable
from .conftest import TEST_ALL, connection, start_emulator, use_connection

MAX_RETRIES = 3
RETRY_AFTER = 0.1
SLOW_SECONDS = 2.0  # beyond request_timeout=1, and long enough that a retry overtakes it
TOKEN_PATH = "/services/oauth2/token"


@dataclass(frozen=True)
class Expect:
    """A cell's expected outcome: success, or a failure whose message holds ``words``."""

    ok: bool
    words: tuple[str, ...] = ()
    writes_at_most: int | None = None  # records/calls that may have landed before a failure

    def text(self) -> str:
        if self.ok:
            return "success, exact counts"
        return "fails naming " + " / ".join(repr(w) for w in self.words)


OK = Expect(True)


@dataclass
class Run:
    """What a cell's checks can look at after the run."""

    emu: SalesforceEmulator
    column: Column
    state: State
    seconds: float
    baseline_calls: int
    succeeded: bool


@dataclass(frozen=True)
class Fault:
    key: str
    title: str
    install: Callable[[SalesforceEmulator, Column, State, int], None]
    expect: Callable[[Column], Expect]
    bulk_only: bool = False
    conn: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Run], None] | None = None
    columns: tuple[str, ...] = ()  # only these columns (the ones that meet the fault)


# --- where a fault goes --------------------------------------------------------------------


def aimed(inject: Callable[[SalesforceEmulator, str], None]):
    """Install ``inject(emu, prefix)`` on the column's data path (Bulk: once the job exists)."""

    def install(emu: SalesforceEmulator, column: Column, state: State, baseline: int) -> None:
        if not column.bulk:
            inject(emu, column.target)
            return
        fired: list[str] = []

        def on_job(job_id: str) -> None:
            if not fired:
                fired.append(job_id)
                inject(emu, column.job_target(job_id))  # type: ignore[attr-defined]

        state.on_job = on_job

    return install


def before(inject: Callable[[SalesforceEmulator], None]):
    def install(emu: SalesforceEmulator, column: Column, state: State, baseline: int) -> None:
        inject(emu)

    return install


def revoke_at(position: str):
    def install(emu: SalesforceEmulator, column: Column, state: State, baseline: int) -> None:
        after = {"start": 0, "mid": baseline // 2, "last": baseline - 1}[position]
        emu.faults.revoke_sessions(after_calls=after)

    return install


# --- expectations --------------------------------------------------------------------------

NOT_REPEATABLE = ("collections_insert", "rest_post")  # a POST that creates: never sent twice


def transient(status: int):
    """500/502 may have been processed: a create is not repeated. 429/503 were not: retried."""

    def expect(column: Column) -> Expect:
        if status in (500, 502) and column.key in NOT_REPEATABLE:
            return Expect(False, (f"HTTP {status}",), writes_at_most=0)
        return OK

    return expect


def cut_off(column: Column) -> Expect:
    """A reset or timeout after the request was sent: the write may have landed."""
    if column.key in NOT_REPEATABLE:
        return Expect(False, ("cut off", "not repeated"), writes_at_most=_first_chunk(column))
    return OK


def _first_chunk(column: Column) -> int:
    return 200 if column.key == "collections_insert" else 1


def failing(*words: str) -> Callable[[Column], Expect]:
    def expect(column: Column) -> Expect:
        return Expect(False, words, writes_at_most=0)

    return expect


def always_ok(column: Column) -> Expect:
    return OK


# --- extra checks --------------------------------------------------------------------------


def reauthenticated_once(run: Run) -> None:
    assert run.emu.stats.token_exchanges == 2, run.emu.stats.to_dict()


def waited_retry_after(count: int):
    """A retried cell took at least ``count`` Retry-After waits (a refused create did not wait)."""

    def check(run: Run) -> None:
        if run.succeeded:
            assert run.seconds >= count * RETRY_AFTER * 0.9, f"{run.seconds:.2f} s"

    return check


def no_api_call(run: Run) -> None:
    assert run.emu.stats.api_calls == 0, run.emu.stats.to_dict()


def one_exchange(run: Run) -> None:
    assert run.emu.stats.token_exchanges == 1, run.emu.stats.to_dict()


# --- the rows ------------------------------------------------------------------------------

INVALID_GRANTS = [
    ("user hasn't approved this consumer", "not pre-authorised"),
    ("user is not admin approved to access this app", "not pre-authorised"),
    ("audience is invalid", "audience"),
    ("invalid assertion", "certificate"),
    ("expired access/refresh token", "exp"),
    ("authentication failure", "inactive or frozen"),
]

FAULTS: list[Fault] = [
    Fault(
        "revoked_start",
        "Session revoked before the first API call",
        revoke_at("start"),
        always_ok,
        check=reauthenticated_once,
    ),
    Fault(
        "revoked_mid",
        "Session revoked half-way",
        revoke_at("mid"),
        always_ok,
        check=reauthenticated_once,
    ),
    Fault(
        "revoked_last",
        "Session revoked before the last API call (last page)",
        revoke_at("last"),
        always_ok,
        check=reauthenticated_once,
    ),
]
for _status in (500, 502, 503, 429):
    FAULTS.append(
        Fault(
            f"http{_status}_retry_after",
            f"HTTP {_status} x2 with Retry-After {RETRY_AFTER:g} s",
            aimed(
                lambda emu, prefix, s=_status: emu.faults.fail(
                    prefix, s, count=2, retry_after=RETRY_AFTER
                )
            ),
            transient(_status),
            check=waited_retry_after(2),
        )
    )
    FAULTS.append(
        Fault(
            f"http{_status}",
            f"HTTP {_status} x1 without Retry-After",
            aimed(lambda emu, prefix, s=_status: emu.faults.fail(prefix, s, count=1)),
            transient(_status),
        )
    )
FAULTS += [
    Fault(
        "http503_persistent",
        f"HTTP 503 beyond max_retries={MAX_RETRIES}",
        aimed(
            lambda emu, prefix: emu.faults.fail(
                prefix, 503, count=MAX_RETRIES + 1, retry_after=0.05
            )
        ),
        failing("still failed after", "max_retries"),
    ),
    Fault(
        "reset_mid_body",
        "Connection reset mid-body",
        aimed(lambda emu, prefix: emu.faults.reset_connection(prefix, count=1, after_bytes=60)),
        cut_off,
    ),
    Fault(
        "slow_response",
        f"Response slower ({SLOW_SECONDS:g} s) than request_timeout=1",
        aimed(lambda emu, prefix: emu.faults.delay(prefix, SLOW_SECONDS, count=1)),
        cut_off,
        conn={"request_timeout": 1},
    ),
    Fault(
        "token_down_then_back",
        "Token endpoint HTTP 503 x2, then back",
        before(lambda emu: emu.faults.fail(TOKEN_PATH, 503, count=2, retry_after=0.05)),
        always_ok,
        check=one_exchange,
    ),
    Fault(
        "token_reset_then_back",
        "Token endpoint connection reset, then back",
        before(lambda emu: emu.faults.reset_connection(TOKEN_PATH, count=1, after_bytes=10)),
        always_ok,
    ),
    Fault(
        "token_down",
        "Token endpoint down (HTML maintenance page) beyond retries",
        before(
            lambda emu: emu.faults.fail(
                TOKEN_PATH,
                503,
                count=50,
                retry_after=0.05,
                body="<html><body>Down for maintenance</body></html>",
            )
        ),
        failing("HTTP 503 with an HTML page", "status.salesforce.com"),
        check=no_api_call,
    ),
]
for _description, _meaning in INVALID_GRANTS:
    FAULTS.append(
        Fault(
            "invalid_grant_" + _description.split()[0] + "_" + _description.split()[-1],
            f"Token endpoint: invalid_grant '{_description}'",
            before(lambda emu, d=_description: emu.faults.token_error("invalid_grant", d)),
            failing(_description, _meaning, "What to check"),
            check=no_api_call,
        )
    )
FAULTS += [
    Fault(
        "invalid_client_id",
        "Token endpoint: invalid_client_id",
        before(
            lambda emu: emu.faults.token_error("invalid_client_id", "client identifier invalid")
        ),
        failing("client identifier invalid", "consumer_key"),
        check=no_api_call,
    ),
    Fault(
        "instance_other_host",
        "Token answer: instance_url on another host (http://127.0.0.2)",
        before(lambda emu: emu.faults.token_instance_url("http://127.0.0.2:9")),
        failing("127.0.0.2", "instance_domains", "was not used"),
        check=no_api_call,
    ),
    Fault(
        "instance_userinfo",
        "Token answer: instance_url with user:password@",
        before(lambda emu: emu.faults.token_instance_url(emu.url.replace("//", "//u:p@"))),
        failing("user name or password", "was not used"),
        check=no_api_call,
    ),
    Fault(
        "redirect_token",
        "Token POST answered 307 to another host (127.0.0.2)",
        before(
            lambda emu: emu.faults.redirect(
                TOKEN_PATH, "http://127.0.0.2:9" + TOKEN_PATH, status=307, count=1000
            )
        ),
        failing("HTTP 307 pointing at http://127.0.0.2", "never followed"),
        check=no_api_call,
    ),
    Fault(
        "redirect_api",
        "Data call answered 302 to another host (127.0.0.2)",
        aimed(lambda emu, prefix: emu.faults.redirect(prefix, "http://127.0.0.2:9/x", count=1000)),
        failing("HTTP 302 pointing at http://127.0.0.2", "never followed"),
    ),
    Fault(
        "huge_token",
        "Token answer of 300 MB",
        before(
            lambda emu: emu.faults.huge_body(
                TOKEN_PATH, 300 << 20, start=b'{"access_token":"', end=b'"}', count=1000
            )
        ),
        failing("over the 1,048,576-byte limit"),
        check=no_api_call,
    ),
    Fault(
        "huge_json",
        "JSON answer of 65 MB",
        aimed(
            lambda emu, prefix: emu.faults.huge_body(
                prefix, 65 << 20, start=b'{"records":[', fill=b"{},", count=1000
            )
        ),
        failing("over the 67,108,864-byte limit"),
        columns=("rest_query", "collections_insert", "collections_upsert", "sensor"),
    ),
    Fault(
        "repeating_cursor",
        "Cursor points at itself (nextRecordsUrl / Sforce-Locator repeats)",
        before(lambda emu: emu.faults.repeat_cursors()),
        failing("again"),
        columns=("rest_query", "bulk_query", "bulk_query_deferred"),
    ),
    Fault(
        "count_too_high",
        "Sforce-NumberOfRecords far above the rows sent",
        before(lambda emu: emu.faults.wrong_record_count(10**6)),
        failing("Sforce-NumberOfRecords", "nothing was written"),
        columns=("bulk_query", "bulk_query_deferred"),
    ),
    Fault(
        "csv_header_endless",
        "Bulk CSV header without a line end (3 MB)",
        aimed(
            lambda emu, prefix: emu.faults.huge_body(
                prefix, 3 << 20, fill=b"Id,", content_type="text/csv"
            )
        ),
        failing("no line end in its first"),
        columns=("bulk_query", "bulk_query_deferred"),
    ),
    Fault(
        "quota_exhausted",
        "Daily API quota exhausted (REQUEST_LIMIT_EXCEEDED)",
        before(lambda emu: emu.faults.exhaust_quota()),
        failing("REQUEST_LIMIT_EXCEEDED"),
    ),
    Fault(
        "bulk_job_failed",
        "Bulk job ends Failed",
        before(lambda emu: emu.faults.fail_bulk_job(message="InvalidBatch : reliability probe")),
        failing("ended Failed", "InvalidBatch : reliability probe"),
        bulk_only=True,
    ),
    Fault(
        "bulk_job_aborted",
        "Bulk job ends Aborted",
        before(lambda emu: emu.faults.abort_bulk_job()),
        failing("ended Aborted", "run the task again"),
        bulk_only=True,
    ),
]

# `make test` runs a slice - every fault against the REST query, every operator against the
# faults that decide write safety - and `make test-all` / `make reliability` (SFJWT_TEST_ALL=1)
# every cell: ~260 fresh emulators and real retry waits take a few minutes on two loaded cores.
SLICE_ROWS = {"revoked_mid", "http500_retry_after", "reset_mid_body", "bulk_job_failed"}


def in_this_run(fault: Fault, column: Column) -> bool:
    return TEST_ALL or column.key == "rest_query" or fault.key in SLICE_ROWS


CELLS = [
    pytest.param(fault, column, id=f"{fault.key}-{column.key}")
    for fault in FAULTS
    for column in COLUMNS
    if (column.bulk or not fault.bulk_only)
    and (not fault.columns or column.key in fault.columns)
    and in_this_run(fault, column)
]

_baselines: dict[str, int] = {}


def _run_column(column: Column, tmp_path, monkeypatch, conn: dict[str, Any], install=None):
    """Fresh emulator + seed + (fault) + run; returns (emu, state, result, error, seconds)."""
    TOKEN_CACHE.clear()
    emu = start_emulator(page_size=PAGE_SIZE)
    state = State(emu=emu, tmp=tmp_path)
    use_connection(monkeypatch, connection(emu, max_retries=MAX_RETRIES, **conn))
    column.seed(state)
    if install is not None:
        install(state)
    emu.reset_stats()
    result = error = None
    started = time.monotonic()
    try:
        result = column.run(state)
    except Exception as exc:  # the cell decides whether this was expected
        error = exc
    return emu, state, result, error, time.monotonic() - started


def baseline_calls(column: Column, tmp_path_factory, monkeypatch) -> int:
    """API calls of a clean run of ``column`` (where revocations are placed)."""
    if column.key not in _baselines:
        emu, _, _, error, _ = _run_column(
            column, tmp_path_factory.mktemp("baseline"), monkeypatch, {}
        )
        try:
            assert error is None, f"clean baseline run of {column.key} failed: {error}"
            _baselines[column.key] = emu.stats.api_calls
        finally:
            emu.stop()
    return _baselines[column.key]


@pytest.mark.parametrize(("fault", "column"), CELLS)
def test_fault_cell(fault: Fault, column: Column, tmp_path, tmp_path_factory, monkeypatch, cell):
    expect = fault.expect(column)
    cell.describe("faults", fault.key, fault.title, column.key, column.title, expect.text())
    base = baseline_calls(column, tmp_path_factory, monkeypatch) if "revoked" in fault.key else 0

    def install(state: State) -> None:
        fault.install(state.emu, column, state, base)

    emu, state, result, error, seconds = _run_column(
        column, tmp_path, monkeypatch, fault.conn, install
    )
    try:
        run = Run(emu, column, state, seconds, base, succeeded=error is None)
        if expect.ok:
            assert error is None, f"expected success, got {type(error).__name__}: {error}"
            cell.outcome = "ok: " + column.check_ok(state, result)
        else:
            assert error is not None, f"expected a failure, got {result!r}"
            message = str(error)
            for word in expect.words:
                assert word.lower() in message.lower(), (word, message)
            if fault.key == "slow_response":  # the abandoned request still lands, later
                wait_until_stable(lambda: column.written(state), SLOW_SECONDS)
            left = column.check_failed(state, error)
            if expect.writes_at_most is not None and column.writes:
                assert column.written(state) <= expect.writes_at_most, left
            cell.outcome = f"fails ({type(error).__name__}): {left}"
        if fault.check is not None:
            fault.check(run)
    finally:
        emu.stop()
