"""Bulk API 2.0 query jobs streamed to a file: CSV passed through, JSONL and Parquet converted.

A query job suits results too large for the REST query's 2,000-record pages. The job runs in
Salesforce; its results come in chunks, several downloading at once (:mod:`.parallel`), that are
streamed into one file in order, so memory stays bounded whatever the row count, and the file
appears only when complete. Progress (rows of the job's total, rate, time left) is logged as the
chunks are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

from ..bulk_csv import CsvResultStream, ResultChunkLike
from ..client import SalesforceClient
from ..extract import column_types
from ..progress import Progress
from ..soql import select_columns
from ..storage import Destination, FilePath, atomic_output
from ..writers import check_format, open_writer
from . import parallel
from .download import iter_result_chunks
from .jobs import QUERY, BulkJobs
from .poller import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT

__all__ = ["QueryResult", "download_results", "job_api_version", "query_to_file"]

log = logging.getLogger(__name__)


class QueryResult(TypedDict):
    """What a Bulk query wrote: small, so it can go to XCom."""

    path: str
    rows: int
    job_id: str
    format: str
    columns: list[str]


def download_results(
    client: SalesforceClient,
    job_id: str,
    path: FilePath | Destination,
    *,
    format: str = "csv",
    soql: str | None = None,
    max_records: int | None = None,
    field_types: Mapping[str, str] | None = None,
    parallel_downloads: int = parallel.DEFAULT_PARALLEL_DOWNLOADS,
    job: Mapping[str, Any] | None = None,
) -> QueryResult:
    """Write the results of a completed query job to ``path`` (local or object-storage path).

    CSV is passed through byte for byte; JSONL and Parquet are converted while streaming, typed by
    ``field_types`` (Salesforce describe types) or, when that is ``None`` and ``soql`` is given,
    by describe of the queried objects. The file appears only when complete.

    Up to ``parallel_downloads`` result chunks download at once through ``resultPages`` (see
    :mod:`.parallel`); the file is the same as when they are read one after the other, which
    happens with ``parallel_downloads=1``, for jobs of API versions before 58.0, where
    ``resultPages`` is missing, and when ``max_records`` (Salesforce's ``maxRecords``, rows per
    chunk) is given, since ``resultPages`` chooses the chunk size itself. ``job`` is the job's
    final info (from the wait) if the caller has it; otherwise it is read, for the job's API
    version (results must be read with it) and its record count (for progress lines).
    """
    fmt = check_format(format)
    parallel.check_parallel_downloads(parallel_downloads)
    info = job if job is not None else BulkJobs(client).get(QUERY, job_id)
    version = job_api_version(info)
    total = info.get("numberRecordsProcessed")
    progress = Progress(
        log, f"Bulk query job {job_id}", "rows", total if isinstance(total, int) else None
    )
    stream = CsvResultStream(
        _result_chunks(client, job_id, version, max_records, parallel_downloads), progress
    )
    # Every check runs inside the ``with``: a file that fails one is never published.
    if fmt == "csv":
        with atomic_output(path, "wb") as out:
            for block in stream:
                out.write(block)
            columns = stream.columns
    else:
        if field_types is None and soql:
            field_types = column_types(client, soql, select_columns(soql))
        with open_writer(path, fmt, None, field_types) as writer:
            # Each chunk's records are counted exactly as they are parsed (see records()).
            writer.write_records(stream.records(field_types))
            columns = list(writer.columns or stream.columns)
    progress.finish()
    log.info("Bulk query job %s: wrote %d rows to %s (%s)", job_id, stream.rows, path, fmt)
    return {
        "path": str(path),
        "rows": stream.rows,
        "job_id": job_id,
        "format": fmt,
        "columns": columns,
    }


def job_api_version(info: Mapping[str, Any]) -> str | None:
    """The job's API version as in a URL (``"66.0"``), from its info's ``apiVersion``."""
    version = info.get("apiVersion")
    if isinstance(version, bool) or not isinstance(version, (int, float, str)):
        return None
    try:
        return f"{float(version):.1f}"
    except ValueError:
        return None


def _result_chunks(
    client: SalesforceClient,
    job_id: str,
    version: str | None,
    max_records: int | None,
    parallel_downloads: int,
) -> Iterator[ResultChunkLike]:
    """The chunks to read: in parallel through ``resultPages`` where it can, else by locator."""
    if parallel_downloads > 1 and not max_records:
        first = parallel.first_result_pages(client, job_id, version)
        if first is not None:
            return parallel.iter_result_parts(client, job_id, first, parallel_downloads)
    return iter_result_chunks(client, job_id, max_records, version)


def query_to_file(
    client: SalesforceClient,
    soql: str,
    path: FilePath | Destination,
    format: str = "csv",
    *,
    include_deleted: bool = False,
    max_records: int | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    field_types: Mapping[str, str] | None = None,
    keep_job: bool = False,
    on_job: Callable[[str], None] | None = None,
    parallel_downloads: int = parallel.DEFAULT_PARALLEL_DOWNLOADS,
) -> QueryResult:
    """Run a Bulk API 2.0 query job and stream its results to ``path``.

    ``on_job`` is told the job id as soon as it exists (an operator keeps it for ``on_kill``).
    The job is aborted on timeout or interruption; a Failed or Aborted job is kept so it can be
    inspected in Setup. After a successful download the job is deleted (unless ``keep_job``) in
    the background, so the result is returned as soon as the file is published; the deletion is
    still waited for before the process exits (see :func:`.jobs.wait_for_deletions`).
    """
    fmt = check_format(format)
    parallel.check_parallel_downloads(parallel_downloads)
    Destination(path)  # a path that cannot be written is refused before the job exists
    jobs = BulkJobs(client, poll_interval=poll_interval, on_job=on_job)
    job_id = jobs.create_query(soql, include_deleted=include_deleted)
    info = jobs.wait(QUERY, job_id, timeout=timeout)
    result = download_results(
        client,
        job_id,
        path,
        format=fmt,
        soql=soql,
        max_records=max_records,
        field_types=field_types,
        parallel_downloads=parallel_downloads,
        job=info,
    )
    if not keep_job:
        jobs.delete_in_background(QUERY, job_id)
    return result
