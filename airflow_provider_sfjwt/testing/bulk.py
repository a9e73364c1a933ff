"""Bulk API 2.0: query jobs (CSV results with locators) and ingest jobs (CSV in, result CSVs out).

Jobs move through their states on successive polls (``bulk_poll_transitions``) so clients exercise
their polling loop without waiting seconds. Ingest uploads are streamed to a temporary file and
processed row by row in a worker thread, so a million-row upload needs little server memory;
result files are streamed back the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from . import encode, soql, soql_eval, soql_schema
from .bulk_job import Job, locator, locator_offset
from .ids import BULK_JOB_PREFIX, make_id
from .ingest import DELIMITERS, IngestProcessing
from .rest import today
from .schema import STANDARD_SCHEMAS
from .transport import ErrorReply, Request, Response

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
BLOCK_ROWS = 20_000
MAX_UPLOAD = 150 * 1024 * 1024
INGEST_POLL_WAIT = 5.0
RESULT_PAGES_SINCE = 58.0
RESULT_PAGES_PER_RESPONSE = 5


DELETABLE = {
    "query": ("JobComplete", "Aborted", "Failed"),
    "ingest": ("UploadComplete", "JobComplete", "Aborted", "Failed"),
}
"""The states in which Salesforce deletes a job, by kind."""


def _job_error(message: str, code: str = "INVALIDJOB", status: int = 400) -> ErrorReply:
    return ErrorReply(status, code, message)


class Bulk(IngestProcessing):
    """All Bulk API 2.0 jobs of the org."""

    def __init__(self, emu: SalesforceEmulator) -> None:
        self.emu = emu
        self.lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.counter = 1
        self.created = {"query": 0, "ingest": 0}
        self.max_upload_bytes = MAX_UPLOAD
        self.default_max_records = 100_000
        self._dir: str | None = None

    def counts(self) -> dict[str, int]:
        return dict(self.created)

    def tempdir(self) -> str:
        with self.lock:
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="sfemu-bulk-")
            return self._dir

    def close(self) -> None:
        for job in list(self.jobs.values()):
            job.abort_requested = True
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # ------------------------------------------------------------------ routing
    def handle(self, req: Request, parts: list[str]) -> Response:
        if len(parts) < 2 or parts[1] not in ("query", "ingest"):
            raise ErrorReply(404, "NOT_FOUND", "The requested resource does not exist")
        kind = parts[1]
        if len(parts) == 2:
            if req.method == "POST":
                return self._create(req, kind)
            if req.method == "GET":
                jobs = [j.info() for j in self.jobs.values() if j.kind == kind]
                return Response.json(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
            raise ErrorReply(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{req.method}' not allowed. Allowed are GET,POST",
            )
        job = self.jobs.get(parts[2])
        if job is None or job.kind != kind:
            raise ErrorReply(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 3:
            if req.method == "GET":
                self._advance(job)
                return Response.json(200, job.info())
            if req.method == "PATCH":
                return self._patch(req, job)
            if req.method == "DELETE":
                return self._delete(job)
            raise ErrorReply(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{req.method}' not allowed. Allowed are GET,PATCH,DELETE",
            )
        sub = parts[3]
        if kind == "query" and sub == "results" and req.method == "GET":
            return self._query_results(req, job)
        if kind == "query" and sub == "resultPages" and req.method == "GET":
            return self._result_pages(req, job)
        if kind == "ingest" and sub == "batches" and req.method == "PUT":
            return self._upload(req, job)
        if (
            kind == "ingest"
            and req.method == "GET"
            and sub
            in (
                "successfulResults",
                "failedResults",
                "unprocessedrecords",
            )
        ):
            return self._ingest_results(job, sub)
        raise ErrorReply(404, "NOT_FOUND", "The requested resource does not exist")

    # ------------------------------------------------------------------ jobs
    def _create(self, req: Request, kind: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise _job_error("Invalid job definition: expected a JSON object")
        delimiter = body.get("columnDelimiter") or "COMMA"
        line_ending = body.get("lineEnding") or "LF"
        if delimiter not in DELIMITERS:
            raise _job_error(f"Invalid column delimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise _job_error(f"Invalid line ending: {line_ending}")
        if (body.get("contentType") or "CSV") != "CSV":
            raise _job_error("Only contentType CSV is supported")
        emu = self.emu
        owner = req.session.user.user_id if req.session is not None else ""
        with self.lock:
            job_id = make_id(BULK_JOB_PREFIX, self.counter)
            self.counter += 1
        now = emu.now_datetime()
        if kind == "query":
            operation = body.get("operation") or "query"
            if operation not in ("query", "queryAll"):
                raise _job_error(f"Invalid operation for a query job: {operation}")
            text = body.get("query")
            if not isinstance(text, str) or not text.strip():
                raise _job_error("Query is required for a query job")
            q = _bulk_query(emu, text)
            rows = soql_eval.execute(emu.store, q, operation == "queryAll", today(emu))
            job = Job(
                job_id,
                kind,
                operation,
                q.sobject,
                req.version or "",
                owner,
                now,
                delimiter,
                line_ending,
            )
            job.query, job.rows = q, rows
        else:
            operation = body.get("operation")
            if operation not in INGEST_OPERATIONS:
                raise _job_error(f"InvalidJob : Invalid operation: {operation}")
            sobject = body.get("object")
            table = emu.store.get(sobject) if isinstance(sobject, str) else None
            if (
                table is None
                and isinstance(sobject, str)
                and any(k.lower() == sobject.lower() for k in STANDARD_SCHEMAS)
            ):
                table = emu.store.table(sobject)
            if table is None:
                raise _job_error(
                    f"InvalidJob : Entity '{sobject}' is not supported by the Bulk API.",
                    "INVALIDENTITY",
                )
            ext = body.get("externalIdFieldName")
            if operation == "upsert":
                f = table.field(ext) if isinstance(ext, str) else None
                if f is None or not (f.external_id or f.name == "Id"):
                    raise _job_error(
                        f"InvalidJob : External ID field {ext} is not an external id field of {table.name}"
                    )
                ext = f.name
            job = Job(
                job_id,
                kind,
                operation,
                table.name,
                req.version or "",
                owner,
                now,
                delimiter,
                line_ending,
                state="Open",
            )
            job.external_id = ext if operation == "upsert" else None
        job.fault = emu.faults.take_bulk(job_id, True)
        with self.lock:
            self.jobs[job_id] = job
            self.created[kind] += 1
        emu.stats.increment("bulk_query_jobs" if kind == "query" else "bulk_ingest_jobs")
        return Response.json(200, job.info())

    def _advance(self, job: Job) -> None:
        """One poll: UploadComplete -> InProgress -> final state after enough polls."""
        if job.state not in ("UploadComplete", "InProgress"):
            return
        if job.fault is None:
            job.fault = self.emu.faults.take_bulk(job.id, False)
        job.polls += 1
        ready = job.polls >= self.emu.bulk_poll_transitions
        ready = ready and time.monotonic() - job.started >= self.emu.bulk_processing_seconds
        if ready and job.kind == "ingest" and job.fault is None:
            # Wait a little for the worker so small jobs finish after exactly
            # ``bulk_poll_transitions`` polls (deterministic API call counts in tests); big
            # uploads stay InProgress until processed.
            ready = job.finished.wait(timeout=INGEST_POLL_WAIT)
        if not ready:
            job.state = "InProgress"
            return
        job.modstamp = self.emu.now_datetime()
        if job.fault is not None:
            kind, message = job.fault
            if kind == "abort":
                job.state = "Aborted"
            else:
                job.state = "Failed"
                job.error_message = message
            job.abort_requested = True
            if job.kind == "ingest":
                self._write_unprocessed(job, 0)
            return
        job.state = "Failed" if job.error_message else "JobComplete"

    def _patch(self, req: Request, job: Job) -> Response:
        body = req.json()
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted":
            if job.state in ("JobComplete", "Failed", "Aborted"):
                raise _job_error(
                    f"Job {job.id} is already in state {job.state} and cannot be aborted",
                    "INVALIDJOBSTATE",
                    409,
                )
            job.abort_requested = True
            if job.kind == "ingest" and job.worker is None:
                self._write_unprocessed(job, 0)
            job.state = "Aborted"
            job.modstamp = self.emu.now_datetime()
            return Response.json(200, job.info())
        if state == "UploadComplete" and job.kind == "ingest":
            if job.state != "Open":
                raise _job_error(
                    f"Job {job.id} is not Open (state {job.state})", "INVALIDJOBSTATE", 409
                )
            job.state = "UploadComplete"
            job.started = time.monotonic()
            job.modstamp = self.emu.now_datetime()
            if job.fault is None:
                job.fault = self.emu.faults.take_bulk(job.id, False)
            if job.fault is None:
                job.worker = threading.Thread(
                    target=self._process, args=(job,), daemon=True, name=f"sfemu-ingest-{job.id}"
                )
                job.worker.start()
            return Response.json(200, job.info())
        raise _job_error(f"Invalid state change to {state}", "INVALIDJOBSTATE", 400)

    def _delete(self, job: Job) -> Response:
        """``DELETE /jobs/{kind}/{id}``: the job and its files go.

        Salesforce deletes a query job only once it is ``JobComplete``, ``Aborted`` or
        ``Failed`` (400 ``API_ERROR`` before, with this message: its "Delete a Query Job"
        page), and an ingest job in those states or ``UploadComplete`` (its "Delete a Job"
        page, which shows no error: the query page's is answered)."""
        if job.state not in DELETABLE[job.kind]:
            raise _job_error(
                "Error encountered when deleting the job because the job is not terminated",
                "API_ERROR",
            )
        with self.lock:
            self.jobs.pop(job.id, None)
        job.abort_requested = True
        directory = self._dir  # never tempdir(): a DELETE must not make the directory
        if directory:
            for name in os.listdir(directory):
                if name.startswith(f"{job.id}."):  # its upload and result files (see _path)
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(directory, name))
        return Response.empty(204)

    # ------------------------------------------------------------------ query results
    def _check_results(self, req: Request, job: Job) -> None:
        if job.state != "JobComplete":
            raise _job_error(
                f"Job {job.id} is not in JobComplete state (state {job.state})",
                "INVALIDJOBSTATE",
                409,
            )
        if req.version != job.version:
            raise _job_error(
                f"Job {job.id} was created with API version {job.version}; request its results with the same version",
                "INVALIDJOBSTATE",
                409,
            )

    def _range(self, req: Request, job: Job) -> tuple[int, int]:
        offset = locator_offset(req.query.get("locator", ""))
        if offset is None or offset > len(job.rows):
            raise ErrorReply(400, "INVALID_QUERY_LOCATOR", "invalid locator")
        raw = req.query.get("maxRecords")
        if raw in (None, ""):
            count = self.default_max_records
        else:
            if not raw.isdigit() or int(raw) <= 0:
                raise ErrorReply(400, "INVALIDPARAMETER", "maxRecords must be a positive integer")
            count = int(raw)
        return offset, min(len(job.rows), offset + count)

    def _query_results(self, req: Request, job: Job) -> Response:
        self._check_results(req, job)
        start, end = self._range(req, job)
        q = job.query
        assert q is not None and q.table is not None, "query jobs keep their query"
        table = q.table
        delim = DELIMITERS[job.delimiter]
        eol = LINE_ENDINGS[job.line_ending]
        rows = job.rows
        emu = self.emu
        stats = emu.stats

        def encode_block(block: Sequence[int]) -> Callable[[], str]:
            return lambda: encode.csv_rows(table, q, block, delim, eol)

        def blocks() -> Iterator[bytes]:
            yield encode.csv_header(q, delim, eol).encode()
            pos = start
            while pos < end:
                stop = min(end, pos + BLOCK_ROWS)
                block = rows[pos:stop]
                yield emu.cached_block("csv", q, block, (delim, eol), encode_block(block))
                stats.increment("records_served", stop - pos)
                pos = stop

        headers = [
            ("Sforce-Locator", locator(end) if end < len(rows) else "null"),
            ("Sforce-NumberOfRecords", str(end - start)),
        ]
        if end - start <= BLOCK_ROWS:
            return Response(200, b"".join(blocks()), "text/csv;charset=UTF-8", headers)
        return Response(200, b"", "text/csv;charset=UTF-8", headers, stream=blocks())

    def _result_pages(self, req: Request, job: Job) -> Response:
        """``GET /jobs/query/{id}/resultPages``: up to five result URLs to download side by side.

        The shape of Salesforce's "Get Parallel Results for a Query Job" (API 58.0 and later;
        older versions answer 404 like any unknown resource): ``{"resultPages": [{"resultUrl":
        "/services/data/vXX.X/jobs/query/{id}/results?locator=..."}], "nextRecordsUrl": ...,
        "done": ...}``. The request takes no parameter besides the job id, so each URL's chunk
        holds the server's default number of records (``default_max_records``); the ``locator``
        of ``nextRecordsUrl`` is this emulator's own continuation. Salesforce's page spells
        that field ``nextRecordUrl`` in its field table and ``nextRecordsUrl`` in the text under
        its example; this emulator answers ``nextRecordsUrl``, the name of every other
        Salesforce continuation, and the provider follows either.
        """
        if float(req.version or 0) < RESULT_PAGES_SINCE:
            raise ErrorReply(404, "NOT_FOUND", "The requested resource does not exist")
        self._check_results(req, job)
        pos = locator_offset(req.query.get("locator", ""))
        if pos is None or pos > len(job.rows):
            raise ErrorReply(400, "INVALID_QUERY_LOCATOR", "invalid locator")
        size = self.default_max_records
        base = f"/services/data/v{job.version}/jobs/query/{job.id}"
        pages: list[dict[str, str]] = []
        while pos < len(job.rows) and len(pages) < RESULT_PAGES_PER_RESPONSE:
            pages.append({"resultUrl": f"{base}/results?locator={locator(pos)}"})
            pos += size
        done = pos >= len(job.rows)
        following = None if done else f"{base}/resultPages?locator={locator(pos)}"
        return Response.json(200, {"resultPages": pages, "nextRecordsUrl": following, "done": done})

    # ------------------------------------------------------------------ ingest
    def _path(self, job: Job, suffix: str) -> str:
        return os.path.join(self.tempdir(), f"{job.id}.{suffix}.csv")

    def _upload(self, req: Request, job: Job) -> Response:
        if job.state != "Open":
            raise _job_error(
                f"Job {job.id} is not Open (state {job.state})", "INVALIDJOBSTATE", 409
            )
        if job.upload is not None:
            raise _job_error(
                "Data was already uploaded for this job; Bulk API 2.0 accepts one upload per job "
                "(split larger files into several jobs)",
                "INVALIDJOBSTATE",
                409,
            )
        path = self._path(job, "upload")
        with open(path, "wb") as sink:
            size = req.stream_body(sink, self.max_upload_bytes)
        if size > self.max_upload_bytes:
            os.remove(path)
            return ErrorReply(
                413,
                "LIMIT_EXCEEDED",
                f"The upload of {size} bytes exceeds the {self.max_upload_bytes} byte limit of one "
                "Bulk API 2.0 job; split the data into several jobs",
            ).response()
        job.upload = path
        job.gzipped = req.headers.get("Content-Encoding", "").lower() == "gzip"
        return Response.empty(201)

    def _ingest_results(self, job: Job, which: str) -> Response:
        if which != "unprocessedrecords" and job.state not in ("JobComplete", "Failed", "Aborted"):
            raise _job_error(
                f"Job {job.id} is not complete (state {job.state})", "INVALIDJOBSTATE", 409
            )
        suffix = {"successfulResults": "ok", "failedResults": "err", "unprocessedrecords": "unp"}[
            which
        ]
        path = self._path(job, suffix)
        if not os.path.exists(path):
            heads = {
                "ok": '"sf__Id","sf__Created"\n',
                "err": '"sf__Id","sf__Error"\n',
                "unp": "",
            }
            return Response(200, heads[suffix].encode(), "text/csv;charset=UTF-8")

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while data := fh.read(1 << 20):
                    yield data

        if os.path.getsize(path) <= 1 << 20:
            with open(path, "rb") as fh:
                return Response(200, fh.read(), "text/csv;charset=UTF-8")
        return Response(200, b"", "text/csv;charset=UTF-8", stream=chunks())


def _refused(message: str) -> ErrorReply:
    return ErrorReply(400, "API_ERROR", message)


def _bulk_query(emu: SalesforceEmulator, text: str) -> soql.Query:
    """The query of a new job, refused as Bulk API 2.0 refuses it: it takes no GROUP BY,
    OFFSET, TYPEOF, aggregate functions, sub-queries, compound (address) or base64 fields."""
    try:
        q = soql.parse(text)
    except soql.NotEmulated as exc:
        if exc.feature == "TYPEOF":
            raise _refused("TYPEOF not supported in Bulk Query") from None
        if exc.feature.startswith("sub-queries"):
            raise _refused("Aggregate Relationships not supported in Bulk Query") from None
        raise ErrorReply(exc.status, exc.code, exc.message) from None
    except soql.SoqlError as exc:
        raise _job_error(f"Failed to process query: {exc.code}: {exc.message}") from None
    if q.group_by:
        raise _refused("GROUP BY not supported in Bulk Query")
    if q.offset_pos:
        raise _refused("OFFSET not supported in Bulk Query")
    if q.count or q.aggregates:
        raise _refused("Aggregate functions not supported in Bulk Query")
    try:
        soql_schema.resolve(emu.store, q)
    except soql.SoqlError as exc:
        if isinstance(exc, soql.NotEmulated):
            raise ErrorReply(exc.status, exc.code, exc.message) from None
        raise _job_error(f"Failed to process query: {exc.code}: {exc.message}") from None
    for ref in q.fields:
        if ref.target.type == "address":
            raise _refused("Selecting compound data not supported in Bulk Query")
        if ref.target.type == "base64":
            raise _refused("Selecting base64 data not supported in Bulk Query")
    return q
