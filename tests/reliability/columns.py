"""The columns of the fault matrix: every operator, run for real against the emulator.

Each column knows how to seed the org for its run, how to run its operator the way Airflow
would (``execute``; for deferrable operators ``execute`` -> ``TaskDeferred`` -> the serialised
trigger run with asyncio -> ``execute_complete``), and how to check the result: exact row and
record counts on success; on failure no output file (not even a temporary one) and no record
written twice.

Bulk columns call ``on_job(job_id)`` the moment their job exists, so a fault can be aimed at that
job's result download or upload rather than at whichever request happens to come first.
"""

from __future__ import annotations

import asyncio
import csv
import importlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_sfjwt import DEFAULT_API_VERSION
from airflow_provider_sfjwt.compat import TaskDeferred
from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceCollectionsOperator,
    SalesforceQueryOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.salesforce.bulk import wait_for_deletions
from airflow_provider_sfjwt.sensors import SalesforceSoqlSensor
from airflow_provider_sfjwt.testing import SalesforceEmulator

ACCOUNTS = 35  # read columns: 4 REST pages of 10, 4 Bulk result chunks of 10
COLLECTION_RECORDS = 450  # 3 Collections chunks (200, 200, 50)
INGEST_RECORDS = 30
PAGE_SIZE = 10
MARK = "REL-"
FAST_BULK = {"poll_interval": 0.01, "job_timeout": 20}
DATA = f"/services/data/v{DEFAULT_API_VERSION}"

OnJob = Callable[[str], None]


@dataclass
class State:
    """What one run of a column needs and leaves behind."""

    emu: SalesforceEmulator
    tmp: Path
    on_job: OnJob | None = None
    apex_calls: list[Any] = field(default_factory=list)

    @property
    def out_dir(self) -> Path:
        return self.tmp / "out"


class _JobProbe:
    """Mixin for the Bulk operators: report each job id as soon as the operator records it."""

    probe: OnJob | None = None

    def _remember(self, job_id: str) -> None:
        super()._remember(job_id)  # type: ignore[misc]
        if self.probe is not None:
            self.probe(job_id)


class ProbedBulkQuery(_JobProbe, SalesforceBulkQueryOperator):
    pass


class ProbedBulkIngest(_JobProbe, SalesforceBulkIngestOperator):
    pass


def run_task(op: Any, context: dict[str, Any] | None = None) -> Any:
    """Run an operator as a worker and triggerer would, deferral included, through to the end of
    the task process: a Bulk job deleted in the background is waited for, as at process exit."""
    context = context if context is not None else {}
    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        module, _, name = classpath.rpartition(".")
        trigger = getattr(importlib.import_module(module), name)(**kwargs)  # as the triggerer does

        async def first_event() -> Any:
            return (await anext(trigger.run())).payload

        event = asyncio.run(first_event())
        return getattr(op, deferred.method_name)(context, event=event)
    finally:
        wait_for_deletions()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_unique(values: list[str], what: str) -> None:
    twice = [v for v, n in Counter(values).items() if n > 1]
    assert not twice, f"{what} written more than once: {twice[:5]}"


class Column:
    """One operator configuration. Subclasses fill in the hooks below."""

    key = ""
    title = ""
    bulk = False
    writes = False  # creates records, so "written twice" is checked
    target = ""  # path prefix of the requests that carry the data (faults aimed here)

    def seed(self, state: State) -> None:
        """Load what the run reads (default: the accounts)."""
        state.emu.load("Account", [{"Name": f"Account {i}"} for i in range(ACCOUNTS)])

    def run(self, state: State) -> Any:
        raise NotImplementedError

    def check_ok(self, state: State, result: Any) -> str:
        raise NotImplementedError

    def check_failed(self, state: State, error: BaseException) -> str:
        """Nothing presented as complete, nothing duplicated; returns what was left."""
        assert files_in(state.out_dir) == [], files_in(state.out_dir)
        return "no output file"

    def written(self, state: State) -> int:
        return 0


class RestQuery(Column):
    key = "rest_query"
    title = "SalesforceQueryOperator (REST, CSV)"
    target = f"{DATA}/query/"  # page 2 onwards

    def run(self, state: State) -> Any:
        return run_task(
            SalesforceQueryOperator(
                task_id="q",
                soql="SELECT Id, Name FROM Account",
                output_path=str(state.out_dir / "accounts.csv"),
            )
        )

    def check_ok(self, state: State, result: Any) -> str:
        rows = csv_rows(state.out_dir / "accounts.csv")
        ids = [r["Id"] for r in rows]
        assert_unique(ids, "row")
        assert result["rows"] == len(rows) == ACCOUNTS
        assert set(ids) == {r["Id"] for r in state.emu.records("Account")}
        assert files_in(state.out_dir) == ["accounts.csv"]
        return f"{ACCOUNTS} rows, exact"


class CollectionsColumn(Column):
    writes = True
    target = f"{DATA}/composite/sobjects"
    operation = ""

    def seed(self, state: State) -> None:
        pass

    def records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def run(self, state: State) -> Any:
        return run_task(
            SalesforceCollectionsOperator(
                task_id="load",
                operation=self.operation,
                sobject="Account",
                records=self.records(),
                external_id_field="External_Id__c" if self.operation == "upsert" else None,
                failed_records_path=str(state.out_dir / "failed.csv"),
            )
        )

    def names(self, state: State) -> list[str]:
        return [
            r["Name"] for r in state.emu.records("Account") if str(r.get("Name")).startswith(MARK)
        ]

    def written(self, state: State) -> int:
        return len(self.names(state))

    def check_ok(self, state: State, result: Any) -> str:
        names = self.names(state)
        assert_unique(names, "record")
        assert len(names) == COLLECTION_RECORDS
        assert (result["succeeded"], result["failed"]) == (COLLECTION_RECORDS, 0), result
        assert len(csv_rows(state.out_dir / "failed.csv")) == 0
        return f"{COLLECTION_RECORDS} records, each once"

    def check_failed(self, state: State, error: BaseException) -> str:
        names = self.names(state)
        assert_unique(names, "record")
        assert not [n for n in files_in(state.out_dir) if ".part-" in n]
        return f"{len(names)}/{COLLECTION_RECORDS} written, none twice"


class CollectionsInsert(CollectionsColumn):
    key = "collections_insert"
    title = "SalesforceCollectionsOperator (insert)"
    operation = "insert"

    def records(self) -> list[dict[str, Any]]:
        return [{"Name": f"{MARK}{i:04d}"} for i in range(COLLECTION_RECORDS)]


class CollectionsUpsert(CollectionsColumn):
    key = "collections_upsert"
    title = "SalesforceCollectionsOperator (upsert by external id)"
    operation = "upsert"

    def records(self) -> list[dict[str, Any]]:
        return [
            {"External_Id__c": f"{MARK}{i:04d}", "Name": f"{MARK}{i:04d}"}
            for i in range(COLLECTION_RECORDS)
        ]


class RestGet(Column):
    key = "rest_get"
    title = "SalesforceRestOperator (GET limits)"
    target = f"{DATA}/limits"

    def seed(self, state: State) -> None:
        pass

    def run(self, state: State) -> Any:
        return run_task(SalesforceRestOperator(task_id="limits", endpoint="limits"))

    def check_ok(self, state: State, result: Any) -> str:
        assert result["status"] == 200 and "DailyApiRequests" in result["body"], result
        return "200, body parsed"


class RestPost(Column):
    key = "rest_post"
    title = "SalesforceRestOperator (POST Apex REST)"
    writes = True
    target = "/services/apexrest/Orders"

    def seed(self, state: State) -> None:
        def handler(req: Any) -> tuple[int, Any]:
            state.apex_calls.append(req.json())
            return 201, {"orderId": len(state.apex_calls)}

        state.emu.register_apex("POST", "Orders", handler)

    def run(self, state: State) -> Any:
        return run_task(
            SalesforceRestOperator(
                task_id="order", method="POST", endpoint="/services/apexrest/Orders", json={"n": 1}
            )
        )

    def written(self, state: State) -> int:
        return len(state.apex_calls)

    def check_ok(self, state: State, result: Any) -> str:
        assert result == {"status": 201, "body": {"orderId": 1}}, result
        assert len(state.apex_calls) == 1
        return "201, Apex ran once"

    def check_failed(self, state: State, error: BaseException) -> str:
        assert len(state.apex_calls) <= 1, f"the POST ran {len(state.apex_calls)} times"
        return f"Apex ran {len(state.apex_calls)}x"


class Sensor(Column):
    key = "sensor"
    title = "SalesforceSoqlSensor (COUNT())"
    target = f"{DATA}/query"

    def run(self, state: State) -> Any:
        return run_task(
            SalesforceSoqlSensor(
                task_id="wait",
                soql="SELECT COUNT() FROM Account",
                threshold=ACCOUNTS,
                comparison="==",
                poke_interval=0.01,
                timeout=20,
            )
        )

    def check_ok(self, state: State, result: Any) -> str:
        assert result == {"count": ACCOUNTS}, result
        return f"count {ACCOUNTS}"


class BulkQuery(Column):
    bulk = True
    deferrable = False

    @property
    def key(self) -> str:  # type: ignore[override]
        return "bulk_query_deferred" if self.deferrable else "bulk_query"

    @property
    def title(self) -> str:  # type: ignore[override]
        how = "deferred" if self.deferrable else "in the worker"
        return f"SalesforceBulkQueryOperator ({how})"

    def __init__(self, deferrable: bool) -> None:
        self.deferrable = deferrable

    def job_target(self, job_id: str) -> str:
        return f"{DATA}/jobs/query/{job_id}/results"

    def run(self, state: State) -> Any:
        op = ProbedBulkQuery(
            task_id="bulk_q",
            soql="SELECT Id, Name FROM Account",
            output_path=str(state.out_dir / "accounts.csv"),
            max_records=PAGE_SIZE,
            deferrable=self.deferrable,
            **FAST_BULK,
        )
        op.probe = state.on_job
        return run_task(op)

    def check_ok(self, state: State, result: Any) -> str:
        rows = csv_rows(state.out_dir / "accounts.csv")
        ids = [r["Id"] for r in rows]
        assert_unique(ids, "row")
        assert result["rows"] == len(rows) == ACCOUNTS, result
        assert set(ids) == {r["Id"] for r in state.emu.records("Account")}
        assert files_in(state.out_dir) == ["accounts.csv"]
        return f"{ACCOUNTS} rows, exact"


class BulkIngest(Column):
    bulk = True
    writes = True

    def __init__(self, deferrable: bool) -> None:
        self.deferrable = deferrable

    @property
    def key(self) -> str:  # type: ignore[override]
        return "bulk_ingest_deferred" if self.deferrable else "bulk_ingest"

    @property
    def title(self) -> str:  # type: ignore[override]
        how = "deferred" if self.deferrable else "in the worker"
        return f"SalesforceBulkIngestOperator (insert, {how})"

    def job_target(self, job_id: str) -> str:
        return f"{DATA}/jobs/ingest/{job_id}/batches"

    def seed(self, state: State) -> None:
        source = state.tmp / "in" / "contacts.csv"
        source.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["FirstName", "LastName"])
            for i in range(INGEST_RECORDS):
                writer.writerow(["Zoë", f"{MARK}{i:04d}"])

    def run(self, state: State) -> Any:
        op = ProbedBulkIngest(
            task_id="bulk_load",
            sobject="Contact",
            operation="insert",
            input_path=str(state.tmp / "in" / "contacts.csv"),
            results_dir=str(state.out_dir),
            deferrable=self.deferrable,
            **FAST_BULK,
        )
        op.probe = state.on_job
        return run_task(op)

    def names(self, state: State) -> list[str]:
        return [
            r["LastName"]
            for r in state.emu.records("Contact")
            if str(r.get("LastName")).startswith(MARK) and not r.get("IsDeleted")
        ]

    def written(self, state: State) -> int:
        return len(self.names(state))

    def check_ok(self, state: State, result: Any) -> str:
        names = self.names(state)
        assert_unique(names, "record")
        assert len(names) == INGEST_RECORDS
        assert (result["succeeded"], result["failed"]) == (INGEST_RECORDS, 0), result
        assert len(csv_rows(Path(result["success_path"]))) == INGEST_RECORDS
        return f"{INGEST_RECORDS} records, each once; result files complete"

    def check_failed(self, state: State, error: BaseException) -> str:
        names = self.names(state)
        assert_unique(names, "record")
        assert not [n for n in files_in(state.out_dir) if ".part-" in n]
        return f"{len(names)}/{INGEST_RECORDS} written, none twice"


COLUMNS: list[Column] = [
    RestQuery(),
    CollectionsInsert(),
    CollectionsUpsert(),
    RestGet(),
    RestPost(),
    Sensor(),
    BulkQuery(deferrable=False),
    BulkQuery(deferrable=True),
    BulkIngest(deferrable=False),
    BulkIngest(deferrable=True),
]


def wait_until_stable(read: Callable[[], int], seconds: float) -> int:
    """Let a request the client gave up on finish in the emulator, then read the count."""
    deadline = time.monotonic() + seconds
    value = read()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value
