"""Bulk API 2.0: query jobs streamed to files, ingest jobs fed from files, with failure reports.

Every HTTP call goes through :meth:`SalesforceClient.request`, so the REST path's policy holds at
each step: one single-flight token re-exchange on 401 followed by the same call, backoff on 429/5xx,
no blind repeat of an ambiguous write, a hard stop on ``REQUEST_LIMIT_EXCEEDED``.

Result chunks are streamed, never held whole. A chunk (one locator) that breaks off mid-body is
fetched again from the same locator - Salesforce keeps locators valid while the job exists - and the
bytes already handed on are skipped, so no row is lost or written twice. Row counts come from
``Sforce-NumberOfRecords``, which survives re-authentication between chunks unchanged.

Ingest files are split at record boundaries under the upload limit and each part is uploaded from a
re-readable slice of a local file, so a repeated PUT (after a 401 or a dropped connection) sends the
same bytes again instead of an exhausted stream. Non-seekable sources (object storage) are spooled to
a temporary file first, one part at a time.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions

from .client import SalesforceClient
from .errors import ApiError, RetriesExhaustedError, SalesforceError
from .extract import column_types
from .files import (
    FORMATS,
    CsvPart,
    Destination,
    atomic_output,
    csv_chunks_to_records,
    is_local_path,
    open_writer,
    read_records,
    split_csv,
)
from .retry import DEFAULT_TRANSIENT_RETRIES, TRANSIENT_ERROR_CODES, transient_codes
from .soql import select_columns

log = logging.getLogger(__name__)

QUERY = "query"
INGEST = "ingest"
JOB_KINDS = (QUERY, INGEST)
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})

DEFAULT_POLL_INTERVAL = 5.0
"""Seconds before the first poll; Salesforce asks clients not to poll faster than every few seconds."""
MAX_POLL_INTERVAL = 30.0
POLL_BACKOFF = 1.5
DEFAULT_TIMEOUT = 24 * 3600.0
"""Seconds a job may take before it is aborted; Salesforce itself gives up on jobs after a day."""
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""Raw CSV per upload: Salesforce caps an upload at 150 MB *encoded* and recommends 100 MB raw."""
CHUNK_BYTES = 1024 * 1024
_RESULT_FILES = {
    "success": "successfulResults",
    "failed": "failedResults",
    "unprocessed": "unprocessedrecords",
}
# Errors that mean a streamed body broke off; the same locator is then fetched again.
_BROKEN_BODY = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
)


# --- errors ----------------------------------------------------------------------------------


class BulkJobError(SalesforceError):
    """A Bulk API 2.0 job ended Failed or Aborted, or could not be finished."""

    def __init__(self, kind: str, job_id: str, state: str, message: str, hint: str = "") -> None:
        self.kind = kind
        self.job_id = job_id
        self.state = state
        self.message = message
        text = f"Bulk API 2.0 {kind} job {job_id} ended {state}"
        text += f": {message}" if message else " (Salesforce gave no errorMessage)"
        if hint:
            text += f"\nWhat to do: {hint}"
        super().__init__(text)


class BulkJobTimeoutError(BulkJobError):
    """The job did not finish within the timeout; it has been aborted."""


class TooManyFailedRecordsError(SalesforceError):
    """An ingest rejected more records than ``max_failed_records`` allows."""

    def __init__(self, summary: Mapping[str, Any], limit: int, limit_text: str) -> None:
        self.summary = dict(summary)
        codes = ", ".join(f"{code} x{n}" for code, n in summary.get("first_errors", {}).items())
        text = (
            f"Bulk ingest of {summary.get('processed', 0):,} records into "
            f"{summary.get('object')} ({summary.get('operation')}) rejected "
            f"{summary.get('failed', 0):,}, more than max_failed_records={limit_text} "
            f"({limit:,} records). First error codes: {codes or 'none reported'}. "
            f"The rejected rows with Salesforce's reason (sf__Error) are in "
            f"{summary.get('failed_path')}. Fix those rows and load that file again, or raise "
            "max_failed_records if such failures are expected."
        )
        super().__init__(text)


_STATE_HINTS = {
    "Failed": (
        "read Salesforce's message above; for a query, run the SOQL in the Developer Console to "
        "check it; for an ingest, check the CSV header (field API names) and the operation. The "
        "job is visible in Setup > Bulk Data Load Jobs"
    ),
    "Aborted": (
        "someone or something aborted the job (this task's on_kill or timeout, another client, or "
        "an admin in Setup > Bulk Data Load Jobs); run the task again if that was not intended"
    ),
}


# --- jobs ------------------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in JOB_KINDS:
        raise ValueError(f"job kind must be 'query' or 'ingest', not {kind!r}")
    return kind


def create_query_job(client: SalesforceClient, soql: str, include_deleted: bool = False) -> str:
    """Start a query (or queryAll) job and return its id.

    Sent as safe to repeat: if the answer is lost, the worst case is one orphan job that nobody
    reads and that Salesforce deletes after a week.
    """
    select_columns(soql)  # a non-SELECT or stacked statement is refused before any request
    body = {
        "operation": "queryAll" if include_deleted else "query",
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    job = client.request("POST", "jobs/query", json=body, idempotent=True).json()
    log.info("Bulk query job %s created (%s)", job["id"], body["operation"])
    return str(job["id"])


def create_ingest_job(
    client: SalesforceClient,
    sobject: str,
    operation: str,
    external_id_field: str | None = None,
    line_ending: str = "LF",
) -> str:
    """Open an ingest job and return its id (an orphan open job holds no data and expires)."""
    op = _check_operation(operation, external_id_field)
    body: dict[str, Any] = {
        "object": sobject,
        "operation": op,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": line_ending,
    }
    if op == "upsert":
        body["externalIdFieldName"] = external_id_field
    job = client.request("POST", "jobs/ingest", json=body, idempotent=True).json()
    log.info("Bulk ingest job %s created (%s %s)", job["id"], op, sobject)
    return str(job["id"])


def _check_operation(operation: str, external_id_field: str | None) -> str:
    by_lower = {op.lower(): op for op in INGEST_OPERATIONS}
    op = by_lower.get((operation or "").lower())
    if op is None:
        raise ValueError(
            f"Bulk ingest operation must be one of {', '.join(INGEST_OPERATIONS)}, not {operation!r}"
        )
    if op == "upsert" and not external_id_field:
        raise ValueError(
            "Bulk upsert needs external_id_field: the API name of an External ID field (or Id)"
        )
    return op


def upload_job_data(client: SalesforceClient, job_id: str, body: Iterable[bytes] | bytes) -> None:
    """PUT one CSV upload into an open ingest job.

    ``body`` should be re-iterable (bytes or a :class:`CsvSlice`): a PUT is repeated after a 401 or
    a dropped connection, and a one-shot generator would then send nothing.
    """
    client.request(
        "PUT",
        f"jobs/ingest/{job_id}/batches",
        data=body,
        headers={"Content-Type": "text/csv"},
    )


def close_ingest_job(client: SalesforceClient, job_id: str) -> None:
    """Mark the upload complete so Salesforce starts processing."""
    client.request(
        "PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"}, idempotent=True
    )


def get_job(client: SalesforceClient, kind: str, job_id: str) -> dict[str, Any]:
    """The job's info: ``state``, ``numberRecordsProcessed``, ``errorMessage``, ..."""
    return client.get_json(f"jobs/{_check_kind(kind)}/{job_id}")


def raise_for_state(kind: str, info: Mapping[str, Any]) -> None:
    """Raise :class:`BulkJobError` for a Failed or Aborted job; do nothing otherwise."""
    state = str(info.get("state", ""))
    if state in ("Failed", "Aborted"):
        raise BulkJobError(
            kind,
            str(info.get("id", "?")),
            state,
            str(info.get("errorMessage") or ""),
            _STATE_HINTS[state],
        )


def abort_job(client: SalesforceClient, kind: str, job_id: str) -> bool:
    """Abort a job; ``False`` if it had already finished (Salesforce then refuses the change)."""
    try:
        client.request(
            "PATCH",
            f"jobs/{_check_kind(kind)}/{job_id}",
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


def delete_job(client: SalesforceClient, kind: str, job_id: str) -> None:
    """Delete a finished job and its stored results (they count against the org's storage)."""
    try:
        client.request("DELETE", f"jobs/{_check_kind(kind)}/{job_id}", idempotent=True)
    except ApiError as exc:
        # Cleanup must not turn a good run into a failure; the job expires on its own.
        log.warning("Bulk %s job %s could not be deleted: %s", kind, job_id, exc)


def poll_delays(poll_interval: float, max_interval: float = MAX_POLL_INTERVAL) -> Iterator[float]:
    """Waits between polls: ``poll_interval`` growing by half each time up to ``max_interval``."""
    delay = max(0.0, poll_interval)
    while True:
        yield delay
        delay = min(max(delay * POLL_BACKOFF, poll_interval), max(max_interval, poll_interval))


def wait_for_job(
    client: SalesforceClient,
    kind: str,
    job_id: str,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Poll until the job completes; abort it on timeout or interruption.

    Returns the final job info for JobComplete, raises :class:`BulkJobError` for Failed/Aborted and
    :class:`BulkJobTimeoutError` (after aborting) when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    delays = poll_delays(poll_interval)
    try:
        while True:
            info = get_job(client, kind, job_id)
            state = info.get("state")
            if state in TERMINAL_STATES:
                raise_for_state(kind, info)
                return info
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                abort_job(client, kind, job_id)
                raise BulkJobTimeoutError(
                    kind,
                    job_id,
                    "Aborted",
                    f"still {state} after the {timeout:g} s timeout, so it was aborted",
                    "raise the timeout (job_timeout on the Bulk operators) if the job is just "
                    "slow (large objects, busy org); Setup > Bulk Data Load Jobs shows its progress",
                )
            time.sleep(min(next(delays), remaining))
    except BaseException as exc:
        if not isinstance(exc, SalesforceError):
            # Killed or timed out from outside (Airflow's execution timeout raises in here).
            abort_quietly(client, kind, job_id)
        raise


def abort_quietly(client: SalesforceClient, kind: str, job_id: str) -> None:
    """Abort on the way out of a failure; never hide the failure behind an abort error."""
    try:
        abort_job(client, kind, job_id)
    except Exception as exc:
        log.error("Bulk %s job %s could not be aborted: %s", kind, job_id, exc)


# --- resumable downloads ---------------------------------------------------------------------


def stream_body(
    client: SalesforceClient,
    fetch: Callable[[], requests.Response],
    what: str,
    response: requests.Response | None = None,
    same: Callable[[requests.Response], str | None] | None = None,
    chunk_size: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """Stream a response body; if it breaks off, ``fetch`` it again and resume after the bytes
    already delivered (Bulk result URLs and locators are re-fetchable while the job exists).

    ``same`` compares a re-fetched response with the first one and returns why it differs, if it
    does: resuming a different body would corrupt the output, so that is an error.
    """
    delivered = 0
    attempt = 0
    response = response if response is not None else fetch()
    while True:
        skip = delivered
        try:
            for block in response.iter_content(chunk_size):
                if skip:
                    if len(block) <= skip:
                        skip -= len(block)
                        continue
                    block = block[skip:]
                    skip = 0
                delivered += len(block)
                yield block
        except _BROKEN_BODY as exc:
            response.close()
            if attempt >= client.retry.max_retries:
                raise RetriesExhaustedError(
                    f"Downloading {what} broke off {attempt + 1} times ({type(exc).__name__}) "
                    f"after {delivered:,} bytes. The network to Salesforce is unstable; run the "
                    f"task again, or raise max_retries (now {client.retry.max_retries})."
                ) from None
            wait = client.retry.sleep(attempt)
            attempt += 1
            log.warning(
                "Downloading %s broke off after %d bytes (%s); fetching it again in %.1f s (%d/%d)",
                what,
                delivered,
                type(exc).__name__,
                wait,
                attempt,
                client.retry.max_retries,
            )
            response = fetch()
            difference = same(response) if same else None
            if difference:
                response.close()
                raise SalesforceError(
                    f"{what} changed between two downloads ({difference}); it cannot be resumed "
                    "without losing or repeating rows. Run the task again."
                ) from None
            continue
        response.close()
        if skip:
            raise SalesforceError(
                f"{what} was {skip:,} bytes shorter when fetched again; it cannot be resumed "
                "without losing rows. Run the task again."
            )
        return


# --- query results ---------------------------------------------------------------------------


@dataclass
class ResultChunk:
    """One locator's worth of query results: a CSV body that starts with its own header row.

    ``records`` is Salesforce's ``Sforce-NumberOfRecords`` and ``next_locator`` the locator of the
    following chunk (``None`` after the last).
    """

    client: SalesforceClient
    job_id: str
    number: int
    locator: str | None
    max_records: int | None
    response: requests.Response
    records: int = field(init=False)
    next_locator: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.records = _record_count(self.response)
        nxt = self.response.headers.get("Sforce-Locator")
        self.next_locator = None if nxt in (None, "", "null") else nxt

    def _fetch(self) -> requests.Response:
        return _fetch_results(self.client, self.job_id, self.locator, self.max_records)

    def _same(self, again: requests.Response) -> str | None:
        count = _record_count(again)
        return None if count == self.records else f"{self.records} then {count} records"

    def iter_bytes(self) -> Iterator[bytes]:
        """The chunk's bytes, resumed from the same locator if the connection breaks."""
        what = f"result chunk {self.number} of Bulk query job {self.job_id}"
        return stream_body(self.client, self._fetch, what, self.response, self._same)


def _record_count(response: requests.Response) -> int:
    return int(response.headers.get("Sforce-NumberOfRecords") or 0)


def _fetch_results(
    client: SalesforceClient, job_id: str, locator: str | None, max_records: int | None
) -> requests.Response:
    params: dict[str, Any] = {}
    if max_records:
        params["maxRecords"] = int(max_records)
    if locator:
        params["locator"] = locator
    return client.request(
        "GET",
        f"jobs/query/{job_id}/results",
        params=params,
        headers={"Accept": "text/csv", "Accept-Encoding": "gzip"},
        stream=True,
    )


def iter_result_chunks(
    client: SalesforceClient, job_id: str, max_records: int | None = None
) -> Iterator[ResultChunk]:
    """The result chunks of a completed query job, in locator order; read each before the next."""
    locator: str | None = None
    number = 0
    while True:
        response = _fetch_results(client, job_id, locator, max_records)
        chunk = ResultChunk(client, job_id, number, locator, max_records, response)
        yield chunk
        response.close()
        if chunk.next_locator is None:
            return
        locator = chunk.next_locator
        number += 1


class CsvJoiner:
    """Joins CSV bodies that each start with a header row into one CSV byte stream.

    Bytes pass through untouched (no parsing): the first header row is kept, the header of every
    later body dropped, and a later header that differs from the first is refused, since it would
    misalign the columns.
    """

    def __init__(self) -> None:
        self.header: bytes | None = None

    @property
    def columns(self) -> list[str]:
        if not self.header:
            return []
        return next(csv.reader(io.StringIO(self.header.decode("utf-8-sig"))), [])

    def body(self, blocks: Iterator[bytes], what: str) -> Iterator[bytes]:
        head = b""
        for block in blocks:
            head += block
            newline = head.find(b"\n")
            if newline < 0:
                continue
            header, rest = head[: newline + 1], head[newline + 1 :]
            if self.header is None:
                self.header = header
                yield header
            elif header != self.header:
                raise SalesforceError(
                    f"{what} has another header row than the first ({header[:200]!r}); the "
                    "results cannot be joined into one file."
                )
            if rest:
                yield rest
            yield from blocks
            return
        if head and self.header is None:  # a header-only body without a final newline
            self.header = head + b"\n"
            yield self.header


class CsvResultStream(CsvJoiner):
    """The result chunks of a query job as one CSV byte stream; ``rows`` counts as it is read."""

    def __init__(self, chunks: Iterable[ResultChunk]) -> None:
        super().__init__()
        self._chunks = chunks
        self.rows = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.rows += chunk.records
            what = f"Result chunk {chunk.number} of Bulk query job {chunk.job_id}"
            yield from self.body(chunk.iter_bytes(), what)


def query_format(format: str) -> str:
    fmt = (format or "").lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    return fmt


def download_results(
    client: SalesforceClient,
    job_id: str,
    path: Any,
    format: str = "csv",
    soql: str | None = None,
    max_records: int | None = None,
    field_types: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write the results of a completed query job to ``path`` (local or object-storage path).

    CSV is passed through byte for byte; JSONL and Parquet are converted while streaming, typed by
    ``field_types`` (Salesforce describe types) or, when that is ``None`` and ``soql`` is given,
    by describe of the queried objects. The file appears only when complete.
    """
    fmt = query_format(format)
    stream = CsvResultStream(iter_result_chunks(client, job_id, max_records))
    if fmt == "csv":
        with atomic_output(path, "wb") as out:
            for block in stream:
                out.write(block)
        columns = stream.columns
    else:
        if field_types is None and soql:
            field_types = column_types(client, soql, select_columns(soql))
        records = csv_chunks_to_records(stream, field_types)
        with open_writer(path, fmt, None, field_types) as writer:
            writer.write_records(records)
        columns = list(writer.columns or stream.columns)
        if writer.rows != stream.rows:
            raise BulkJobError(
                QUERY,
                job_id,
                "JobComplete",
                f"Salesforce announced {stream.rows:,} records (Sforce-NumberOfRecords) but "
                f"{writer.rows:,} were parsed from the CSV",
                "run the task again; if it persists, extract as CSV and report the file",
            )
    log.info("Bulk query job %s: wrote %d rows to %s (%s)", job_id, stream.rows, path, fmt)
    return {
        "path": str(path),
        "rows": stream.rows,
        "job_id": job_id,
        "format": fmt,
        "columns": columns,
    }


def query_to_file(
    client: SalesforceClient,
    soql: str,
    path: Any,
    format: str = "csv",
    include_deleted: bool = False,
    max_records: int | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    field_types: Mapping[str, str] | None = None,
    keep_job: bool = False,
    on_job: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run a Bulk API 2.0 query job and stream its results to ``path``.

    ``max_records`` is the page size asked per locator (Salesforce's ``maxRecords``), ``on_job``
    is told the job id as soon as it exists (an operator keeps it for ``on_kill``). The job is
    aborted on timeout or interruption and deleted after a successful download unless
    ``keep_job``; a Failed or Aborted job is kept so it can be inspected in Setup.
    Returns ``{"path", "rows", "job_id", "format", "columns"}``.
    """
    fmt = query_format(format)
    job_id = create_query_job(client, soql, include_deleted)
    if on_job:
        on_job(job_id)
    wait_for_job(client, QUERY, job_id, poll_interval, timeout)
    result = download_results(client, job_id, path, fmt, soql, max_records, field_types)
    if not keep_job:
        delete_job(client, QUERY, job_id)
    return result


# --- ingest ----------------------------------------------------------------------------------


class _PartBody:
    """A split part as a request body that can be sent again (re-read from its file)."""

    def __init__(self, part: CsvPart) -> None:
        self._part = part

    def __iter__(self) -> Iterator[bytes]:
        return self._part.iter_bytes()

    def __len__(self) -> int:
        return self._part.size


def start_ingest(
    client: SalesforceClient,
    sobject: str,
    operation: str,
    path: Any,
    external_id_field: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    on_job: Callable[[str], None] | None = None,
) -> tuple[list[str], int]:
    """Split ``path`` into uploads under the size limit, one job each, uploaded and closed.

    Returns (job ids, records submitted). If anything fails half way, the jobs started here are
    aborted, so a partial file is not left loading.
    """
    _check_operation(operation, external_id_field)
    job_ids: list[str] = []
    submitted = 0
    try:
        for part in split_csv(path, max_upload_bytes):
            job_id = create_ingest_job(
                client, sobject, operation, external_id_field, part.line_ending
            )
            job_ids.append(job_id)
            if on_job:
                on_job(job_id)
            upload_job_data(client, job_id, _PartBody(part))
            close_ingest_job(client, job_id)
            submitted += part.rows
            log.info(
                "Bulk ingest job %s: uploaded part %d (%d records, %d bytes) of %s",
                job_id,
                part.index,
                part.rows,
                part.size,
                path,
            )
    except BaseException:
        for job_id in job_ids:
            abort_quietly(client, INGEST, job_id)
        raise
    return job_ids, submitted


def _result_target(results_dir: Any, source: Any, name: str) -> Any:
    if results_dir is None:
        return Destination(source).sibling(name)
    if is_local_path(results_dir):
        return Path(os.fspath(results_dir)) / name
    return results_dir / name


def _stem(source: Any) -> str:
    name = Destination(source).name
    return name[: -len(".csv")] if name.lower().endswith(".csv") else name


def save_job_results(
    client: SalesforceClient, job_ids: Sequence[str], kind: str, target: Any
) -> None:
    """Stream one result set (``success``, ``failed``, ``unprocessed``) of every job into one CSV."""
    resource = _RESULT_FILES[kind]
    joiner = CsvJoiner()
    with atomic_output(target, "wb") as out:
        for job_id in job_ids:
            url = f"jobs/ingest/{job_id}/{resource}"

            def fetch(url: str = url) -> requests.Response:
                return client.request("GET", url, headers={"Accept": "text/csv"}, stream=True)

            what = f"{resource} of Bulk ingest job {job_id}"
            for block in joiner.body(stream_body(client, fetch, what), what):
                out.write(block)


def _error_code(record: Mapping[str, Any]) -> str:
    """The code of a failedResults row: ``sf__Error`` reads ``CODE:message:fields --``."""
    return (record.get("sf__Error") or "UNKNOWN").split(":", 1)[0].strip() or "UNKNOWN"


def error_codes(failed_path: Any, limit: int = 5) -> dict[str, int]:
    """The first ``limit`` distinct error codes in a failedResults file, with their counts."""
    counts: dict[str, int] = {}
    for record in read_records(failed_path, "csv"):
        code = _error_code(record)
        if code in counts:
            counts[code] += 1
        elif len(counts) < limit:
            counts[code] = 1
    return counts


def collect_ingest_results(
    client: SalesforceClient,
    sobject: str,
    operation: str,
    job_ids: Sequence[str],
    source: Any,
    submitted: int | None = None,
    results_dir: Any = None,
    infos: Sequence[Mapping[str, Any]] | None = None,
    retry_rounds: Sequence[Sequence[str]] = (),
    transient_error_codes: str | Sequence[str] = TRANSIENT_ERROR_CODES,
) -> dict[str, Any]:
    """Save the three result files of finished ingest jobs and summarise them (small, for XCom).

    ``submitted`` (records uploaded) is known to whoever split the file; when it is not (a task
    resumed from the triggerer), it is processed plus the rows of the unprocessed-records file.
    ``retry_rounds`` are the jobs of :func:`resubmit_transient_failures`: their successes join
    the success file, and a record counts as failed only where it was not loaded again.
    """
    if infos is None:
        infos = [get_job(client, INGEST, job_id) for job_id in job_ids]
    processed = sum(int(i.get("numberRecordsProcessed") or 0) for i in infos)
    failed = sum(int(i.get("numberRecordsFailed") or 0) for i in infos)
    retry_jobs = [job_id for jobs in retry_rounds for job_id in jobs]
    all_jobs = [*job_ids, *retry_jobs]
    stem = _stem(source)
    targets: dict[str, Any] = {}
    for kind, resource in _RESULT_FILES.items():
        targets[kind] = _result_target(results_dir, source, f"{stem}.{resource}.csv")
        if kind == "failed" and retry_rounds:
            failed = _save_final_failures(
                client,
                [job_ids, *retry_rounds],
                transient_codes(transient_error_codes),
                targets[kind],
            )
        else:
            save_job_results(client, all_jobs, kind, targets[kind])
    if submitted is None:
        submitted = processed + sum(1 for _ in read_records(targets["unprocessed"], "csv"))
    paths = {kind: str(target) for kind, target in targets.items()}
    first_errors = error_codes(targets["failed"]) if failed else {}
    retried = sum(
        int(get_job(client, INGEST, job_id).get("numberRecordsProcessed") or 0)
        for job_id in retry_jobs
    )
    summary = {
        "object": sobject,
        "operation": operation,
        "job_ids": all_jobs,
        "records": submitted,
        "processed": processed,
        "succeeded": processed - failed,
        "failed": failed,
        "unprocessed": max(0, submitted - processed),
        "success_path": paths["success"],
        "failed_path": paths["failed"],
        "unprocessed_path": paths["unprocessed"],
        "first_errors": first_errors,
        "retried": retried,
    }
    if failed:
        log.warning(
            "Bulk ingest into %s: %d of %d records failed (%s); see %s",
            sobject,
            failed,
            processed,
            ", ".join(f"{c} x{n}" for c, n in first_errors.items()),
            paths["failed"],
        )
    return summary


# --- records refused for a transient reason ---------------------------------------------------


def _local_failures(client: SalesforceClient, job_ids: Sequence[str], local: Path) -> list[str]:
    """Save the failedResults of ``job_ids`` to ``local``; return its header (columns)."""
    save_job_results(client, job_ids, "failed", local)
    with local.open(encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def _write_transient_failures(
    client: SalesforceClient,
    job_ids: Sequence[str],
    transient: frozenset[str],
    workdir: Path,
    target: Path,
) -> int:
    """Write the input rows that ``job_ids`` refused with a transient code to ``target`` (a CSV
    with the input's own columns, ready to load again); returns how many."""
    local = workdir / "failed.csv"
    columns = [c for c in _local_failures(client, job_ids, local) if not c.startswith("sf__")]
    if not columns:  # no jobs (an input with a header only): nothing was refused
        return 0
    rows = (
        [record.get(c) for c in columns]
        for record in read_records(local, "csv")
        if _error_code(record) in transient
    )
    with open_writer(target, "csv", columns) as writer:
        return writer.write_rows(rows)


def resubmit_transient_failures(
    client: SalesforceClient,
    sobject: str,
    operation: str,
    job_ids: Sequence[str],
    external_id_field: str | None = None,
    transient_retries: int = DEFAULT_TRANSIENT_RETRIES,
    transient_error_codes: str | Sequence[str] = TRANSIENT_ERROR_CODES,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    on_job: Callable[[str], None] | None = None,
    infos: Sequence[Mapping[str, Any]] | None = None,
) -> list[list[str]]:
    """Load again, in new jobs, the records that finished jobs refused with a transient code.

    Bulk API 2.0 retries a locked record a few times inside the job; what still comes back
    ``UNABLE_TO_LOCK_ROW`` was held by a longer transaction (a trigger, a flow, another load).
    Each round waits with the connection's backoff, loads only the rows the previous round
    refused that way and waits for its jobs, at most ``transient_retries`` rounds. Returns the
    job ids of each round (empty when nothing was refused that way). ``infos`` (the jobs' final
    info) spares downloading the failures when no record failed at all.
    """
    if infos is not None and not any(int(i.get("numberRecordsFailed") or 0) for i in infos):
        return []
    transient = transient_codes(transient_error_codes)
    deadline = time.monotonic() + timeout
    rounds: list[list[str]] = []
    previous = list(job_ids)
    with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-retry-") as tmp:
        for attempt in range(transient_retries):
            retry_csv = Path(tmp) / f"retry-{attempt + 1}.csv"
            count = _write_transient_failures(client, previous, transient, Path(tmp), retry_csv)
            if not count:
                break
            wait = client.retry.delay(attempt)
            log.warning(
                "Bulk ingest into %s: %d record(s) refused with %s; loading them again in a new "
                "job in %.1f s (%d/%d)",
                sobject,
                count,
                ", ".join(sorted(transient)),
                wait,
                attempt + 1,
                transient_retries,
            )
            time.sleep(wait)
            again, _ = start_ingest(
                client, sobject, operation, retry_csv, external_id_field, on_job=on_job
            )
            wait_for_jobs(
                client, INGEST, again, poll_interval, max(0.0, deadline - time.monotonic())
            )
            rounds.append(again)
            previous = again
    return rounds


def _save_final_failures(
    client: SalesforceClient,
    rounds: Sequence[Sequence[str]],
    transient: frozenset[str],
    target: Any,
) -> int:
    """One failedResults file over retry rounds: a row refused for a transient reason counts
    only in the last round (earlier, it was loaded again); returns the rows written."""
    with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-failed-") as tmp:
        locals_ = [Path(tmp) / f"round-{n}.csv" for n in range(len(rounds))]
        headers = [
            _local_failures(client, jobs, local)
            for jobs, local in zip(rounds, locals_, strict=True)
        ]
        columns = headers[0]  # every round loads the same columns
        last = len(rounds) - 1

        def rows() -> Iterator[list[Any]]:
            for n, local in enumerate(locals_):
                for record in read_records(local, "csv"):
                    if n == last or _error_code(record) not in transient:
                        yield [record.get(c) for c in columns]

        with open_writer(target, "csv", columns) as writer:
            return writer.write_rows(rows())


def failed_records_limit(max_failed_records: int | str | None, submitted: int) -> int | None:
    """``max_failed_records`` as a count: an int, a digit string, or a percentage like ``"5%"``."""
    if max_failed_records is None:
        return None
    text = str(max_failed_records).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            return int(submitted * percent / 100)
        count = int(text)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise ValueError(
            f"max_failed_records must be a count (0, 100) or a percentage of the records sent "
            f"('5%'), not {max_failed_records!r}"
        ) from None


def check_failed_records(summary: Mapping[str, Any], max_failed_records: int | str | None) -> None:
    """Raise :class:`TooManyFailedRecordsError` when more records failed than allowed."""
    limit = failed_records_limit(max_failed_records, int(summary.get("records") or 0))
    if limit is not None and int(summary.get("failed") or 0) > limit:
        raise TooManyFailedRecordsError(summary, limit, str(max_failed_records))


def wait_for_jobs(
    client: SalesforceClient,
    kind: str,
    job_ids: Sequence[str],
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[dict[str, Any]]:
    """Wait for several jobs under one deadline; on any failure the unfinished ones are aborted."""
    deadline = time.monotonic() + timeout
    infos: list[dict[str, Any]] = []
    try:
        for job_id in job_ids:
            remaining = max(0.0, deadline - time.monotonic())
            infos.append(wait_for_job(client, kind, job_id, poll_interval, remaining))
    except BaseException:
        for job_id in job_ids[len(infos) + 1 :]:
            abort_quietly(client, kind, job_id)
        raise
    return infos


def ingest_file(
    client: SalesforceClient,
    sobject: str,
    operation: str,
    path: Any,
    external_id_field: str | None = None,
    results_dir: Any = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    keep_job: bool = False,
    max_failed_records: int | str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    on_job: Callable[[str], None] | None = None,
    transient_retries: int = DEFAULT_TRANSIENT_RETRIES,
    transient_error_codes: str | Sequence[str] = TRANSIENT_ERROR_CODES,
) -> dict[str, Any]:
    """Load a CSV (local or object-storage path) with Bulk API 2.0 and save the result files.

    The file is streamed and split into uploads of at most ``max_upload_bytes`` (one job each).
    successfulResults, failedResults and unprocessedrecords are saved as
    ``<name>.successfulResults.csv`` etc. in ``results_dir`` (default: next to the input).
    Jobs are aborted on timeout or interruption and deleted afterwards unless ``keep_job``.
    Records refused with one of ``transient_error_codes`` are loaded again in new jobs, up to
    ``transient_retries`` rounds (:func:`resubmit_transient_failures`).
    With ``max_failed_records`` set, more failures than that raise
    :class:`TooManyFailedRecordsError` (after the result files are saved).
    """
    op = _check_operation(operation, external_id_field)
    failed_records_limit(max_failed_records, 0)  # refuse a bad setting before any upload
    job_ids, submitted = start_ingest(
        client, sobject, op, path, external_id_field, max_upload_bytes, on_job
    )
    started = time.monotonic()
    infos = wait_for_jobs(client, INGEST, job_ids, poll_interval, timeout)
    rounds = resubmit_transient_failures(
        client,
        sobject,
        op,
        job_ids,
        external_id_field,
        transient_retries,
        transient_error_codes,
        poll_interval,
        max(0.0, timeout - (time.monotonic() - started)),
        on_job,
        infos,
    )
    summary = collect_ingest_results(
        client,
        sobject,
        op,
        job_ids,
        path,
        submitted,
        results_dir,
        infos,
        rounds,
        transient_error_codes,
    )
    if not keep_job:
        for job_id in summary["job_ids"]:
            delete_job(client, INGEST, job_id)
    check_failed_records(summary, max_failed_records)
    return summary
