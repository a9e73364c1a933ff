"""Bulk API 2.0: query jobs streamed to files, ingest jobs fed from files, with failure reports.

Bulk API 2.0 suits work too large for REST calls: Salesforce runs a job on its side and the
client uploads, polls and downloads. The package follows a job's life:

* :mod:`.jobs` - :class:`BulkJobs`, one client's jobs: create, upload, close, read, abort,
  delete, and wait (aborting what it started when a wait fails or is interrupted);
* :mod:`.poller` - how a wait judges a job, shared by the worker and the triggerer;
* :mod:`.download` - result chunks read one after the other (locators), ingest result files;
* :mod:`.parallel` - result chunks downloaded side by side (``resultPages``, API 58.0+);
* :mod:`.query` - a query job to a CSV, JSONL or Parquet file;
* :mod:`.upload` - :class:`IngestSpec` (what to load and how) and split uploads;
* :mod:`.failures` - refused records: error codes, transient ones loaded again, thresholds;
* :mod:`.ingest` - a CSV loaded, its result files saved and summarised.

Most callers need only :func:`query_to_file` and :func:`ingest_file`; the deferrable operators
use the steps (:meth:`BulkJobs.create_query`, :func:`start_ingest`, :func:`finish_ingest`, ...)
on each side of their wait in the triggerer.
"""

from __future__ import annotations

from .download import save_job_results, stream_body
from .failures import check_failed_records, failed_records_limit, resubmit_transient_failures
from .ingest import IngestSummary, finish_ingest, ingest_file, result_targets
from .jobs import INGEST, INGEST_OPERATIONS, JOB_KINDS, QUERY, BulkJobs, wait_for_deletions
from .parallel import DEFAULT_PARALLEL_DOWNLOADS, check_parallel_downloads
from .poller import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    TERMINAL_STATES,
    JobWatch,
    job_error,
    poll_delays,
)
from .query import QueryResult, download_results, job_api_version, query_to_file
from .upload import MAX_UPLOAD_BYTES, IngestSpec, check_max_upload_bytes, start_ingest

__all__ = [
    "DEFAULT_PARALLEL_DOWNLOADS",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "INGEST",
    "INGEST_OPERATIONS",
    "JOB_KINDS",
    "MAX_UPLOAD_BYTES",
    "QUERY",
    "TERMINAL_STATES",
    "BulkJobs",
    "IngestSpec",
    "IngestSummary",
    "JobWatch",
    "QueryResult",
    "check_failed_records",
    "check_max_upload_bytes",
    "check_parallel_downloads",
    "download_results",
    "failed_records_limit",
    "finish_ingest",
    "ingest_file",
    "job_api_version",
    "job_error",
    "poll_delays",
    "query_to_file",
    "resubmit_transient_failures",
    "result_targets",
    "save_job_results",
    "start_ingest",
    "stream_body",
    "wait_for_deletions",
]
