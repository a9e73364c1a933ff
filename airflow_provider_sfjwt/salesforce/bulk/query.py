"""Bulk API 2.0 query jobs streamed to a file: CSV passed through, JSONL and Parquet converted.

A query job suits results too large for the REST query's 2,000-record pages. The job runs in
Salesforce; its results come in locator chunks that are streamed into one file, so memory holds
one chunk whatever the row count, and the file appears only when complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypedDict

from ..bulk_csv import CsvResultStream, csv_chunks_to_records
from ..client import SalesforceClient
from ..extract import column_types
from ..soql import select_columns
from ..storage import Destination, FilePath, atomic_output
from ..writers import check_format, open_writer
from .download import iter_result_chunks
from .jobs import QUERY, BulkJobs
from .poller import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, job_error

__all__ = ["QueryResult", "download_results", "query_to_file"]

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
    path: FilePath,
    *,
    format: str = "csv",
    soql: str | None = None,
    max_records: int | None = None,
    field_types: Mapping[str, str] | None = None,
) -> QueryResult:
    """Write the results of a completed query job to ``path`` (local or object-storage path).

    CSV is passed through byte for byte; JSONL and Parquet are converted while streaming, typed by
    ``field_types`` (Salesforce describe types) or, when that is ``None`` and ``soql`` is given,
    by describe of the queried objects. ``max_records`` is the page size asked per locator
    (Salesforce's ``maxRecords``). The file appears only when complete.
    """
    fmt = check_format(format)
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
            raise job_error(
                QUERY,
                job_id,
                "JobComplete",
                f"Salesforce announced {stream.rows:,} records (Sforce-NumberOfRecords) but "
                f"{writer.rows:,} were parsed from the CSV; run the task again, and if it "
                "persists, extract as CSV and report the file",
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
    path: FilePath,
    format: str = "csv",
    *,
    include_deleted: bool = False,
    max_records: int | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    field_types: Mapping[str, str] | None = None,
    keep_job: bool = False,
    on_job: Callable[[str], None] | None = None,
) -> QueryResult:
    """Run a Bulk API 2.0 query job and stream its results to ``path``.

    ``on_job`` is told the job id as soon as it exists (an operator keeps it for ``on_kill``).
    The job is aborted on timeout or interruption and deleted after a successful download unless
    ``keep_job``; a Failed or Aborted job is kept so it can be inspected in Setup.
    """
    fmt = check_format(format)
    Destination(path)  # a path that cannot be written is refused before the job exists
    jobs = BulkJobs(client, poll_interval=poll_interval, on_job=on_job)
    job_id = jobs.create_query(soql, include_deleted=include_deleted)
    jobs.wait(QUERY, job_id, timeout=timeout)
    result = download_results(
        client,
        job_id,
        path,
        format=fmt,
        soql=soql,
        max_records=max_records,
        field_types=field_types,
    )
    if not keep_job:
        jobs.delete(QUERY, job_id)
    return result
