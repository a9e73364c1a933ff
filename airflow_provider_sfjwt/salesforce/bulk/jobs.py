"""The life of a Bulk API 2.0 job: create, upload, close, read, wait, abort, delete.

:class:`BulkJobs` holds the client and the settings every step shares (how often to poll, whom
to tell about a new job), so the steps take only what is particular to them. Every HTTP call goes
through :meth:`SalesforceClient.request`, so the REST path's policy holds at each step: one
single-flight token re-exchange on 401 followed by the same call, backoff on 429/5xx, no blind
repeat of an ambiguous write, a hard stop on ``REQUEST_LIMIT_EXCEEDED``.

A job this task started must not keep Salesforce busy for nobody: waits abort the unfinished jobs
on a timeout, on a failure and when the task is interrupted (Airflow's execution timeout and kill
signals raise inside the wait).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from ..client import SalesforceClient
from ..errors import ApiError, InvalidInputError
from ..soql import select_columns
from .poller import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, JobWatch

__all__ = [
    "INGEST",
    "INGEST_OPERATIONS",
    "JOB_KINDS",
    "QUERY",
    "BulkJobs",
    "check_operation",
    "wait_for_deletions",
]

log = logging.getLogger(__name__)

_deletions: list[threading.Thread] = []
_deletions_lock = threading.Lock()
_deletions_pid: int | None = None


def wait_for_deletions(timeout: float | None = None) -> None:
    """Wait until the job deletions started in the background by this process are done."""
    with _deletions_lock:
        pending = [t for t in _deletions if t.is_alive()] if _deletions_pid == os.getpid() else []
        _deletions[:] = pending
    for thread in pending:
        thread.join(timeout)


QUERY = "query"
INGEST = "ingest"
JOB_KINDS = (QUERY, INGEST)
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


def check_kind(kind: str) -> str:
    """``kind`` if it is ``"query"`` or ``"ingest"``; ``ValueError`` otherwise."""
    if kind not in JOB_KINDS:
        raise InvalidInputError(f"job kind must be 'query' or 'ingest', not {kind!r}")
    return kind


def check_operation(operation: str, external_id_field: str | None) -> str:
    """The ingest operation in Salesforce's spelling; ``ValueError`` naming the choices if unknown."""
    by_lower = {op.lower(): op for op in INGEST_OPERATIONS}
    op = by_lower.get((operation or "").lower())
    if op is None:
        raise InvalidInputError(
            f"Bulk ingest operation must be one of {', '.join(INGEST_OPERATIONS)}, not {operation!r}"
        )
    if op == "upsert" and not external_id_field:
        raise InvalidInputError(
            "Bulk upsert needs external_id_field: the API name of an External ID field (or Id)"
        )
    return op


@dataclass(eq=False)
class BulkJobs:
    """The Bulk API 2.0 jobs of one client.

    :param client: the connection's client.
    :param poll_interval: seconds before the first job-state poll; later polls back off to 30 s.
    :param on_job: told every new job id as soon as the job exists (an operator keeps them for
        ``on_kill``).
    """

    client: SalesforceClient
    _: KW_ONLY
    poll_interval: float = DEFAULT_POLL_INTERVAL
    on_job: Callable[[str], None] | None = None

    def _created(self, job: Any, what: str) -> str:
        job_id = str(job["id"])
        log.info("Bulk %s job %s created", what, job_id)
        if self.on_job:
            self.on_job(job_id)
        return job_id

    def create_query(self, soql: str, *, include_deleted: bool = False) -> str:
        """Start a query (or queryAll) job and return its id.

        Sent as safe to repeat: if the answer is lost, the worst case is one orphan job that
        nobody reads and that Salesforce deletes after a week.
        """
        select_columns(soql)  # a non-SELECT or stacked statement is refused before any request
        operation = "queryAll" if include_deleted else "query"
        body = {
            "operation": operation,
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = self.client.request("POST", "jobs/query", json=body, idempotent=True).json()
        return self._created(job, operation)

    def create_ingest(
        self,
        sobject: str,
        operation: str,
        *,
        external_id_field: str | None = None,
        line_ending: str = "LF",
    ) -> str:
        """Open an ingest job and return its id (an orphan open job holds no data and expires)."""
        op = check_operation(operation, external_id_field)
        body: dict[str, Any] = {
            "object": sobject,
            "operation": op,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": line_ending,
        }
        if op == "upsert":
            body["externalIdFieldName"] = external_id_field
        job = self.client.request("POST", "jobs/ingest", json=body, idempotent=True).json()
        return self._created(job, f"ingest ({op} {sobject})")

    def upload(self, job_id: str, body: Iterable[bytes] | bytes) -> None:
        """PUT one CSV upload into an open ingest job.

        ``body`` should be re-iterable (bytes, or an object whose ``__iter__`` starts over): a
        PUT is repeated after a 401 or a dropped connection, and a one-shot generator would then
        send nothing.
        """
        self.client.request(
            "PUT",
            f"jobs/ingest/{job_id}/batches",
            data=body,
            headers={"Content-Type": "text/csv"},
        )

    def close(self, job_id: str) -> None:
        """Mark the upload complete so Salesforce starts processing."""
        self.client.request(
            "PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"}, idempotent=True
        )

    def get(self, kind: str, job_id: str) -> dict[str, Any]:
        """The job's info: ``state``, ``numberRecordsProcessed``, ``errorMessage``, ..."""
        return self.client.get_object(f"jobs/{check_kind(kind)}/{job_id}")

    def abort(self, kind: str, job_id: str) -> bool:
        """Abort a job; ``False`` if it had already finished (Salesforce then refuses the change)."""
        try:
            self.client.request(
                "PATCH",
                f"jobs/{check_kind(kind)}/{job_id}",
                json={"state": "Aborted"},
                idempotent=True,
            )
        except ApiError as exc:
            if exc.status in (400, 409) or exc.error_code in ("INVALIDJOBSTATE", "NOT_FOUND"):
                log.info("Bulk %s job %s not aborted: %s", kind, job_id, exc.message)
                return False
            raise
        log.warning("Bulk %s job %s aborted", kind, job_id)
        return True

    def abort_quietly(self, kind: str, job_id: str) -> None:
        """Abort on the way out of a failure; never hide the failure behind an abort error."""
        try:
            self.abort(kind, job_id)
        except Exception as exc:
            log.error("Bulk %s job %s could not be aborted: %s", kind, job_id, exc)

    def delete(self, kind: str, job_id: str) -> None:
        """Delete a finished job and its stored results (they count against the org's storage)."""
        try:
            self.client.request("DELETE", f"jobs/{check_kind(kind)}/{job_id}", idempotent=True)
        except ApiError as exc:
            # Cleanup must not turn a good run into a failure; the job expires on its own.
            log.warning("Bulk %s job %s could not be deleted: %s", kind, job_id, exc)

    def _delete_quietly(self, kind: str, job_id: str) -> None:
        try:
            self.delete(kind, job_id)
        except Exception as exc:  # a thread of its own: nobody else would see the error
            log.warning("Bulk %s job %s could not be deleted: %s", kind, job_id, exc)

    def delete_in_background(self, kind: str, job_id: str) -> None:
        """:meth:`delete` in a thread, so the caller goes on (the results are already saved).

        The deletion is waited for before the process exits: :func:`wait_for_deletions` runs at
        exit (also in an Airflow task process, which ends with ``os._exit`` after running the
        exit handlers registered since it was forked) and from an operator's ``on_kill``.
        """
        check_kind(kind)
        thread = threading.Thread(
            target=self._delete_quietly,
            args=(kind, job_id),
            name=f"sfjwt-delete-{job_id}",
            daemon=True,
        )
        with _deletions_lock:
            global _deletions_pid
            if _deletions_pid != os.getpid():  # first deletion of this process (or this fork)
                _deletions_pid = os.getpid()
                _deletions.clear()
                atexit.register(wait_for_deletions)
            _deletions.append(thread)
        thread.start()

    def wait(self, kind: str, job_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Poll until the job completes; see :meth:`wait_all`."""
        return self.wait_all(kind, [job_id], timeout=timeout)[0]

    def wait_all(
        self, kind: str, job_ids: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Poll jobs under one deadline until all complete; return their final info in order.

        Raises :class:`BulkJobError` when one ends Failed or Aborted and
        :class:`BulkJobTimeoutError` when ``timeout`` seconds pass. On any failure or
        interruption the unfinished jobs are aborted.
        """
        watch = JobWatch(
            kind, job_ids, poll_interval=self.poll_interval, deadline=time.monotonic() + timeout
        )
        try:
            while (wait := watch.poll_round(self.get, log)) is not None:
                time.sleep(wait)
            return watch.results()
        except BaseException:
            for job_id in watch.pending:
                self.abort_quietly(kind, job_id)
            raise
