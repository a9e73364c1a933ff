"""Bulk API 2.0 ingest: a CSV file loaded in jobs, with Salesforce's per-record outcome saved.

An ingest half succeeds as a rule: Salesforce answers per record. So a load ends by saving the
three result files (successfulResults, failedResults, unprocessedrecords) next to the input or
in a chosen folder, summarising them in a few numbers, and failing only when more records were
refused than ``max_failed_records`` allows. A task that waits in the triggerer does the same
steps in two halves: :func:`.upload.start_ingest` before it defers, :func:`finish_ingest` after.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from ..client import SalesforceClient
from ..readers import read_records
from ..retry import DEFAULT_TRANSIENT_RETRIES, TRANSIENT_ERROR_CODES
from ..storage import Destination, FilePath, is_local_path
from .download import RESULT_FILES, save_job_results
from .failures import (
    check_failed_records,
    error_codes,
    failed_records_limit,
    resubmit_transient_failures,
    save_final_failures,
)
from .jobs import INGEST, BulkJobs
from .poller import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT
from .upload import MAX_UPLOAD_BYTES, IngestSpec, start_ingest

__all__ = ["IngestSummary", "finish_ingest", "ingest_file", "result_targets"]

log = logging.getLogger(__name__)


class IngestSummary(TypedDict):
    """What a Bulk ingest did: small, so it can go to XCom.

    ``records`` were submitted, ``processed`` reached Salesforce's processing, ``unprocessed``
    did not (the job was aborted or failed first); ``retried`` counts records loaded again after
    a transient refusal, whose jobs are in ``job_ids`` too.
    """

    object: str
    operation: str
    job_ids: list[str]
    records: int
    processed: int
    succeeded: int
    failed: int
    unprocessed: int
    success_path: str
    failed_path: str
    unprocessed_path: str
    first_errors: dict[str, int]
    retried: int


def result_targets(
    source: FilePath, results_dir: FilePath | None = None
) -> dict[str, FilePath | Destination]:
    """Where the three result files of loading ``source`` go, by result set: ``NAME.csv`` gives
    ``NAME.successfulResults.csv`` etc., in ``results_dir`` or else next to the input."""
    name = Destination(source).name
    stem = name[: -len(".csv")] if name.lower().endswith(".csv") else name
    targets: dict[str, FilePath | Destination] = {}
    for kind, resource in RESULT_FILES.items():
        file_name = f"{stem}.{resource}.csv"
        if results_dir is None:
            targets[kind] = Destination(source).sibling(file_name)
        elif is_local_path(results_dir):
            targets[kind] = Path(os.fspath(results_dir)) / file_name
        else:
            targets[kind] = results_dir / file_name  # type: ignore[operator]
    return targets


def _save_results(
    jobs: BulkJobs,
    spec: IngestSpec,
    rounds: Sequence[Sequence[str]],
    infos: Sequence[Mapping[str, Any]],
    targets: Mapping[str, FilePath | Destination],
    submitted: int | None,
) -> IngestSummary:
    """Save the three result files of finished ingest jobs and summarise them.

    ``rounds`` are the jobs of the first load and then of each round of
    :func:`.failures.resubmit_transient_failures` (``infos`` is of the first round's): the
    success file holds every round's successes, and a record counts as failed only where it
    was not loaded again. ``submitted`` (records uploaded) is known to whoever split the file;
    when it is not (a task resumed from the triggerer), it is processed plus the rows of the
    unprocessed-records file.
    """
    processed = sum(int(i.get("numberRecordsProcessed") or 0) for i in infos)
    failed = sum(int(i.get("numberRecordsFailed") or 0) for i in infos)
    retry_jobs = [job_id for round_jobs in rounds[1:] for job_id in round_jobs]
    all_jobs = [job_id for round_jobs in rounds for job_id in round_jobs]
    for kind, target in targets.items():
        if kind == "failed" and retry_jobs:
            failed = save_final_failures(jobs, rounds, spec.transient_error_codes, target)
        else:
            save_job_results(jobs.client, all_jobs, kind, target)
    if submitted is None:
        submitted = processed + sum(1 for _ in read_records(targets["unprocessed"], "csv"))
    paths = {kind: str(target) for kind, target in targets.items()}
    first_errors = error_codes(targets["failed"]) if failed else {}
    retried = sum(
        int(jobs.get(INGEST, job_id).get("numberRecordsProcessed") or 0) for job_id in retry_jobs
    )
    summary: IngestSummary = {
        "object": spec.sobject,
        "operation": spec.operation,
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
            spec.sobject,
            failed,
            processed,
            ", ".join(f"{c} x{n}" for c, n in first_errors.items()),
            paths["failed"],
        )
    return summary


def finish_ingest(
    jobs: BulkJobs,
    spec: IngestSpec,
    job_ids: Sequence[str],
    source: FilePath,
    *,
    submitted: int | None = None,
    results_dir: FilePath | None = None,
    infos: Sequence[Mapping[str, Any]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    keep_job: bool = False,
    max_failed_records: int | str | None = None,
) -> IngestSummary:
    """After the jobs completed: load transient refusals again, save and summarise the results,
    delete the jobs unless ``keep_job``, and judge the failures against ``max_failed_records``.

    Raises :class:`TooManyFailedRecordsError` (carrying the summary) after the result files are
    saved, so the rejected rows can be fixed and loaded again.
    """
    if infos is None:
        infos = [jobs.get(INGEST, job_id) for job_id in job_ids]
    rounds = resubmit_transient_failures(jobs, spec, job_ids, timeout=timeout, infos=infos)
    summary = _save_results(
        jobs, spec, [job_ids, *rounds], infos, result_targets(source, results_dir), submitted
    )
    if not keep_job:
        for job_id in summary["job_ids"]:
            jobs.delete(INGEST, job_id)
    check_failed_records(summary, max_failed_records)
    return summary


def ingest_file(
    client: SalesforceClient,
    sobject: str,
    operation: str,
    path: FilePath,
    *,
    external_id_field: str | None = None,
    results_dir: FilePath | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float = DEFAULT_TIMEOUT,
    keep_job: bool = False,
    max_failed_records: int | str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    on_job: Callable[[str], None] | None = None,
    transient_retries: int = DEFAULT_TRANSIENT_RETRIES,
    transient_error_codes: str | Collection[str] = TRANSIENT_ERROR_CODES,
) -> IngestSummary:
    """Load a CSV (local or object-storage path) with Bulk API 2.0 and save the result files.

    The file is streamed and split into uploads of at most ``max_upload_bytes`` (one job each).
    successfulResults, failedResults and unprocessedrecords are saved as
    ``<name>.successfulResults.csv`` etc. in ``results_dir`` (default: next to the input).
    Jobs are aborted on timeout or interruption and deleted afterwards unless ``keep_job``.
    Records refused with one of ``transient_error_codes`` are loaded again in new jobs, up to
    ``transient_retries`` rounds. With ``max_failed_records`` set (a count or ``"5%"``), more
    failures than that raise :class:`TooManyFailedRecordsError` after the files are saved.
    """
    spec = IngestSpec(
        sobject,
        operation,
        external_id_field=external_id_field,
        transient_retries=transient_retries,
        transient_error_codes=transient_error_codes,
    )
    failed_records_limit(max_failed_records, 0)  # refuse a bad setting before any upload
    jobs = BulkJobs(client, poll_interval=poll_interval, on_job=on_job)
    job_ids, submitted = start_ingest(jobs, spec, path, max_upload_bytes=max_upload_bytes)
    started = time.monotonic()
    infos = jobs.wait_all(INGEST, job_ids, timeout=timeout)
    return finish_ingest(
        jobs,
        spec,
        job_ids,
        path,
        submitted=submitted,
        results_dir=results_dir,
        infos=infos,
        timeout=max(0.0, timeout - (time.monotonic() - started)),
        keep_job=keep_job,
        max_failed_records=max_failed_records,
    )
