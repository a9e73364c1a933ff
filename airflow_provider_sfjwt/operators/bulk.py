"""Bulk API 2.0 operators: a query streamed to a file, and a file loaded with a failure report.

Both are thin: the work is in :mod:`airflow_provider_sfjwt.salesforce.bulk`. What is Airflow's is
here: templating, deferral to :class:`SalesforceBulkJobTrigger` while Salesforce processes the job
(no worker slot is held), ``on_kill`` aborting the job, and a small XCom summary.

**Deferral.** ``deferrable=True/False`` decides when given. Otherwise Airflow's
``[operators] default_deferrable`` is followed wherever Airflow reads it (the
``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE`` environment variable, ``airflow.cfg``). Only when it is
set nowhere do these operators defer, because Bulk jobs take minutes to hours and a deferred task
holds no worker slot. Airflow writes ``default_deferrable = false`` into every ``airflow.cfg`` it
generates, so with such a file they run in the worker unless it says ``true``.
"""

from __future__ import annotations

import configparser
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict

from airflow_provider_sfjwt.compat import conf
from airflow_provider_sfjwt.hooks.salesforce_jwt import storage_path
from airflow_provider_sfjwt.operators.base import (
    RecordLoadOperator,
    SalesforceTransferOperator,
    SoqlToFileOperator,
)
from airflow_provider_sfjwt.salesforce.bulk import (
    DEFAULT_PARALLEL_DOWNLOADS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    INGEST,
    MAX_UPLOAD_BYTES,
    QUERY,
    IngestSpec,
    IngestSummary,
    QueryResult,
    check_max_upload_bytes,
    check_parallel_downloads,
    failed_records_limit,
    job_error,
    wait_for_deletions,
)
from airflow_provider_sfjwt.salesforce.errors import TooManyFailedRecordsError
from airflow_provider_sfjwt.salesforce.writers import check_format
from airflow_provider_sfjwt.triggers.bulk import SalesforceBulkJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


_DEFERRAL = ("operators", "default_deferrable")


def default_deferrable() -> bool:
    """Whether a Bulk operator defers when ``deferrable`` is not passed (see the module doc).

    The value is Airflow's (``conf.getboolean``: every source, Airflow's parsing). ``false`` is
    also Airflow's built-in default, so it counts only when it was set: in the configuration
    file Airflow parsed (``conf.set`` writes there too) or in the setting's environment variable.
    Those are all the places a non-sensitive option can be set (``_cmd`` and ``_secret`` forms
    exist only for sensitive options). ``conf.as_dict`` would tell the source too, but it runs
    every ``_cmd`` option of the configuration, which task and parsing processes set to fail.
    """
    section, key = _DEFERRAL
    if conf.getboolean(section, key):
        return True
    in_file = configparser.ConfigParser.has_option(conf, section, key)
    return not in_file and f"AIRFLOW__{section.upper()}__{key.upper()}" not in os.environ


def _raise_event_error(event: dict[str, Any]) -> NoReturn:
    """Raise what the trigger reported, as a wait in the worker would have raised it."""
    raise job_error(
        str(event.get("kind", "")),
        str(event.get("job_id", "")),
        str(event.get("state", "")),
        str(event.get("message", "")),
        timeout=bool(event.get("timeout")),
    )


class JobWait(TypedDict):
    """How a Bulk job is waited for in the worker, in the keywords the core's job functions take."""

    poll_interval: float
    timeout: float
    keep_job: bool
    on_job: Callable[[str], None]


class ResultDownload(TypedDict):
    """How a query job's results are downloaded: the query operator's download arguments."""

    max_records: int | None
    field_types: dict[str, str] | None
    parallel_downloads: int


class _BulkOperator(SalesforceTransferOperator):
    """What the Bulk operators share: polling, deferral and ``on_kill``."""

    _kind = ""

    def __init__(
        self,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        job_timeout: float = DEFAULT_TIMEOUT,
        keep_job: bool = False,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.keep_job = keep_job
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._job_ids: list[str] = []

    def _remember(self, job_id: str) -> None:
        self._job_ids.append(job_id)

    def _job_wait(self) -> JobWait:
        """The task's polling, timeout and job keeping, for a wait in the worker; every job
        started is remembered, so ``on_kill`` can abort it."""
        return JobWait(
            poll_interval=self.poll_interval,
            timeout=self.job_timeout,
            keep_job=self.keep_job,
            on_job=self._remember,
        )

    def _defer(self, job_ids: Sequence[str], kwargs: dict[str, Any] | None = None) -> NoReturn:
        trigger = SalesforceBulkJobTrigger(
            salesforce_conn_id=self.salesforce_conn_id,
            job_ids=list(job_ids),
            kind=self._kind,
            poll_interval=self.poll_interval,
            deadline=time.time() + self.job_timeout,
        )
        self.defer(trigger=trigger, method_name="execute_complete", kwargs=kwargs)

    def on_kill(self) -> None:
        """Abort the job(s) this task started, so Salesforce stops working for nobody; a query
        job that had already finished is deleted instead (unless ``keep_job``), and deletions
        started in the background are waited for."""
        for job_id in self._job_ids:
            if self.hook.bulk_abort_job(self._kind, job_id):
                self.log.warning("Aborted Bulk %s job %s (task killed)", self._kind, job_id)
            elif self._kind == QUERY and not self.keep_job:
                self.hook.bulk_delete_job(QUERY, job_id)
        wait_for_deletions()


class SalesforceBulkQueryOperator(SoqlToFileOperator, _BulkOperator):
    """Run a SOQL query as a Bulk API 2.0 job and stream the results to a file.

    :param soql: the query (templated).
    :param output_path: local path or object-storage URI/``ObjectStoragePath`` (templated).
    :param format: ``csv`` (Salesforce's bytes passed through), ``jsonl`` or ``parquet`` (typed from
        describe) (templated).
    :param include_deleted: ``queryAll``: also deleted and archived records.
    :param max_records: rows per result chunk (Salesforce's ``maxRecords``); bounds memory for
        JSONL/Parquet conversion. Default: Salesforce's choice.
    :param field_types: column -> Salesforce type, to type JSONL/Parquet without describe calls.
    :param parallel_downloads: result chunks downloaded at once (1 to 20, default 5) through
        Salesforce's ``resultPages`` (API 58.0+); the file is the same as with 1 (one chunk after
        the other, also used for older API versions and when ``max_records`` is given).
    :param poll_interval: seconds before the first job-state poll (backing off to 30 s).
    :param job_timeout: seconds the job may run before it is aborted.
    :param keep_job: keep the job (and its stored results) in Salesforce instead of deleting it.
    :param storage_conn_id: Airflow connection for an object-storage ``output_path`` given as a
        URI (default: the store's default connection).
    :param deferrable: wait in the triggerer (default, see the module doc) or in the worker.
    :param file_mode: permission mode of a local output file, e.g. ``0o600`` to keep it private
        to the worker's user; by default the process umask decides (``0o644`` under the usual
        ``022``: readable by every user of the machine).

    Returns (XCom) ``{"job_id", "rows", "path", "format", "columns"}``.
    """

    template_fields_renderers = {"soql": "sql"}
    ui_color = "#c7e6fb"
    _kind = QUERY

    def __init__(
        self,
        *,
        max_records: int | None = None,
        field_types: dict[str, str] | None = None,
        parallel_downloads: int = DEFAULT_PARALLEL_DOWNLOADS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_records = max_records
        self.field_types = field_types
        self.parallel_downloads = check_parallel_downloads(parallel_downloads)

    def _download(self) -> ResultDownload:
        """How the results are downloaded, the same in the worker and after a deferral."""
        return ResultDownload(
            max_records=self.max_records,
            field_types=self.field_types,
            parallel_downloads=self.parallel_downloads,
        )

    def execute(self, context: Context) -> QueryResult:
        fmt = check_format(self.format)  # a templated format is known only now
        # A path that cannot be written is refused here, before the job exists.
        path = self._destination()
        if not self.deferrable:
            result = self.hook.bulk_query_to_file(
                self.soql,
                path,
                fmt,
                include_deleted=self.include_deleted,
                **self._download(),
                **self._job_wait(),
            )
            self.record_extract(self.hook.get_conn().instance_url, self.soql, result)
            return result
        job_id = self.hook.bulk_start_query(
            self.soql, include_deleted=self.include_deleted, on_job=self._remember
        )
        self._defer([job_id])

    def execute_complete(self, context: Context, event: dict[str, Any]) -> QueryResult:
        """Back from the triggerer: the job is complete (or not); download its results."""
        if event.get("status") != "success":
            _raise_event_error(event)
        job_id = event["job_ids"][0]
        self._job_ids = [job_id]
        infos = event.get("jobs") or []
        result = self.hook.bulk_download(
            job_id,
            self._destination(),
            format=self.format,
            soql=self.soql,
            job=infos[0] if infos and isinstance(infos[0], dict) else None,
            **self._download(),
        )
        if not self.keep_job:
            self.hook.bulk_delete_job(QUERY, job_id, background=True)
        self.record_extract(self.hook.get_conn().instance_url, self.soql, result)
        return result


class SalesforceBulkIngestOperator(RecordLoadOperator, _BulkOperator):
    """Load a CSV file with Bulk API 2.0 and keep Salesforce's per-record outcome as files.

    :param sobject: the object, e.g. ``Account`` (templated).
    :param operation: ``insert``, ``update``, ``upsert``, ``delete`` or ``hardDelete`` (templated).
    :param input_path: local path or object-storage URI/``ObjectStoragePath`` of the CSV
        (templated); streamed and split into uploads under Salesforce's size limit.
    :param external_id_field: for ``upsert``: the External ID field's API name (templated).
    :param results_dir: where ``<name>.successfulResults.csv``, ``.failedResults.csv`` and
        ``.unprocessedrecords.csv`` go (templated); default next to the input.
    :param max_failed_records: how many rejected records are tolerated: a count (``0``, the
        default: any failure fails the task) or a percentage of the records sent (``"5%"``).
        Above it the task fails naming the failedResults file and the first error codes; at or
        below it the task succeeds and still logs and returns them.
    :param max_upload_bytes: upload size limit per job (default 100 MB of raw CSV).
    :param transient_retries: rounds in which records refused with a transient error code
        (``UNABLE_TO_LOCK_ROW``: a trigger, flow or other load held them) are loaded again in a
        new job, with the connection's backoff, before they count as failed; 0 turns it off.
        When deferred, these (small) retry jobs are waited for in the worker, after the trigger.
    :param transient_error_codes: the error codes treated as transient.

    Returns (XCom) ``{"object", "operation", "job_ids", "records", "processed", "succeeded",
    "failed", "unprocessed", "success_path", "failed_path", "unprocessed_path", "first_errors",
    "retried"}`` (``retried``: records loaded again after a transient refusal; ``job_ids``
    includes their jobs).
    When the task fails on ``max_failed_records`` the same summary is pushed under the XCom key
    ``ingest_summary``.
    """

    template_fields: Sequence[str] = (
        "sobject",
        "operation",
        "input_path",
        "external_id_field",
        "results_dir",
        "max_failed_records",
    )
    ui_color = "#c7e6fb"
    _kind = INGEST

    def __init__(
        self,
        *,
        sobject: str,
        operation: str,
        input_path: Any,
        results_dir: Any = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_upload_bytes = check_max_upload_bytes(max_upload_bytes)
        self.sobject = sobject
        self.operation = operation
        self.input_path = input_path
        self.results_dir = results_dir

    def _spec(self) -> IngestSpec:
        """What to load, from the rendered fields (operation and object may be templated)."""
        return IngestSpec(self.sobject, self.operation, **self._load_options())

    def _results_dir(self) -> Any:
        """Where the result files go: the rendered ``results_dir``, or ``None`` (beside the input)."""
        return storage_path(self.results_dir, self.storage_conn_id)

    def execute(self, context: Context) -> IngestSummary:
        failed_records_limit(self.max_failed_records, 0)  # a templated limit is known only now
        source = storage_path(self.input_path, self.storage_conn_id)
        if not self.deferrable:
            return self._judge(
                context,
                source,
                lambda: self.hook.bulk_ingest_file(
                    self.sobject,
                    self.operation,
                    source,
                    results_dir=self._results_dir(),
                    max_failed_records=self.max_failed_records,
                    max_upload_bytes=self.max_upload_bytes,
                    **self._load_options(),
                    **self._job_wait(),
                ),
            )
        job_ids = self.hook.bulk_start_ingest(
            self._spec(), source, max_upload_bytes=self.max_upload_bytes, on_job=self._remember
        )
        if not job_ids:
            self.log.warning("%s holds no records: nothing was loaded", self.input_path)
        self._defer(job_ids)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> IngestSummary:
        """Back from the triggerer: save the result files, then judge the failures."""
        if event.get("status") != "success":
            _raise_event_error(event)
        job_ids = list(event["job_ids"])
        self._job_ids = list(job_ids)  # on_kill also learns the retry jobs; job_ids stays as is
        source = storage_path(self.input_path, self.storage_conn_id)
        return self._judge(
            context,
            source,
            lambda: self.hook.bulk_finish_ingest(
                self._spec(),
                job_ids,
                source,
                results_dir=self._results_dir(),
                infos=event.get("jobs"),
                max_failed_records=self.max_failed_records,
                **self._job_wait(),
            ),
        )

    def _judge(
        self, context: Context, source: Any, load: Callable[[], IngestSummary]
    ) -> IngestSummary:
        """Run ``load`` (the last step of a load, in the worker or after the trigger) and report
        its outcome the same way on both paths.

        Over ``max_failed_records`` the core raises once the result files are saved; the summary
        is then pushed under the XCom key ``ingest_summary`` before the task fails, since a
        failing task returns nothing. Otherwise lineage is recorded, the tolerated failures are
        logged and the summary is returned.
        """
        try:
            summary = load()
        except TooManyFailedRecordsError as exc:
            self._report_failure(context, exc.summary)
            raise
        self.record_load(self.hook.get_conn().instance_url, source, self.sobject)
        return self._report(summary)

    def _report(self, summary: IngestSummary) -> IngestSummary:
        if summary["failed"]:
            self.log.warning(
                "%d of %d records were rejected (within max_failed_records=%s); first error "
                "codes: %s; rows with sf__Error in %s",
                summary["failed"],
                summary["records"],
                self.max_failed_records,
                summary["first_errors"],
                summary["failed_path"],
            )
        return summary

    def _report_failure(self, context: Context, summary: Mapping[str, Any]) -> None:
        ti = context.get("ti") if context else None
        if ti is not None:
            ti.xcom_push(key="ingest_summary", value=summary)
