"""Records a Bulk ingest refused: their error codes, loading the transient ones again, and the
threshold (``max_failed_records``) above which the load fails.

Bulk API 2.0 retries a locked record a few times inside the job; what still comes back
``UNABLE_TO_LOCK_ROW`` was held by a longer transaction (a trigger, a flow, another load). Such
refusals are about the moment, not the data, so those rows are loaded again in new jobs, and the
final failedResults file lists a row only where its last attempt failed.
"""

from __future__ import annotations

import csv
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, TooManyFailedRecordsError
from ..readers import read_records
from ..retry import Refused, resend_refused
from ..storage import Destination, FilePath
from ..writers import open_writer
from .download import save_job_results
from .jobs import INGEST, BulkJobs
from .poller import DEFAULT_TIMEOUT
from .upload import IngestSpec, start_ingest

__all__ = [
    "check_failed_records",
    "error_codes",
    "failed_records_limit",
    "resubmit_transient_failures",
    "save_final_failures",
]

log = logging.getLogger(__name__)


def error_code(record: Mapping[str, Any]) -> str:
    """The code of a failedResults row: ``sf__Error`` reads ``CODE:message:fields --``."""
    return (record.get("sf__Error") or "UNKNOWN").split(":", 1)[0].strip() or "UNKNOWN"


def error_codes(failed_path: FilePath | Destination, limit: int = 5) -> dict[str, int]:
    """The first ``limit`` distinct error codes in a failedResults file, with their counts."""
    counts: dict[str, int] = {}
    for record in read_records(failed_path, "csv"):
        code = error_code(record)
        if code in counts:
            counts[code] += 1
        elif len(counts) < limit:
            counts[code] = 1
    return counts


def _local_failures(jobs: BulkJobs, job_ids: Sequence[str], local: Path) -> list[str]:
    """Save the failedResults of ``job_ids`` to ``local``; return its header (columns)."""
    save_job_results(jobs.client, job_ids, "failed", local)
    with local.open(encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def _write_transient_failures(
    jobs: BulkJobs,
    job_ids: Sequence[str],
    transient: frozenset[str],
    workdir: Path,
    target: Path,
) -> int:
    """Write the input rows that ``job_ids`` refused with a transient code to ``target`` (a CSV
    with the input's own columns, ready to load again); returns how many."""
    local = workdir / "failed.csv"
    columns = [c for c in _local_failures(jobs, job_ids, local) if not c.startswith("sf__")]
    if not columns:  # no jobs (an input with a header only): nothing was refused
        return 0
    rows = (
        [record.get(c) for c in columns]
        for record in read_records(local, "csv")
        if error_code(record) in transient
    )
    with open_writer(target, "csv", columns) as writer:
        return writer.write_rows(rows)


def resubmit_transient_failures(
    jobs: BulkJobs,
    spec: IngestSpec,
    job_ids: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    infos: Sequence[Mapping[str, Any]] | None = None,
) -> list[list[str]]:
    """Load again, in new jobs, the records that finished jobs refused with a transient code.

    Each round waits with the connection's backoff, loads only the rows the previous round
    refused that way and waits for its jobs, at most ``spec.transient_retries`` rounds. Returns
    the job ids of each round (empty when nothing was refused that way). ``infos`` (the jobs'
    final info) spares downloading the failures when no record failed at all.
    """
    if infos is not None and not any(int(i.get("numberRecordsFailed") or 0) for i in infos):
        return []
    transient = spec.transient_error_codes
    deadline = time.monotonic() + timeout
    rounds: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-retry-") as tmp:

        def refused() -> Refused[Path] | None:
            retry_csv = Path(tmp) / f"retry-{len(rounds) + 1}.csv"
            previous = rounds[-1] if rounds else job_ids
            count = _write_transient_failures(jobs, previous, transient, Path(tmp), retry_csv)
            return Refused(retry_csv, count, transient) if count else None

        def load_again(retry_csv: Path) -> None:
            again, _ = start_ingest(jobs, spec, retry_csv)
            jobs.wait_all(INGEST, again, timeout=max(0.0, deadline - time.monotonic()))
            rounds.append(again)

        resend_refused(
            jobs.client.retry,
            spec.transient_retries,
            f"Bulk ingest into {spec.sobject}",
            "loading them again in a new job",
            refused,
            load_again,
        )
    return rounds


def save_final_failures(
    jobs: BulkJobs,
    rounds: Sequence[Sequence[str]],
    transient: frozenset[str],
    target: FilePath | Destination,
) -> int:
    """One failedResults file over retry rounds: a row refused for a transient reason counts
    only in the last round (earlier, it was loaded again); returns the rows written."""
    with tempfile.TemporaryDirectory(prefix="sfjwt-bulk-failed-") as tmp:
        locals_ = [Path(tmp) / f"round-{n}.csv" for n in range(len(rounds))]
        headers = [
            _local_failures(jobs, round_jobs, local)
            for round_jobs, local in zip(rounds, locals_, strict=True)
        ]
        columns = headers[0]  # every round loads the same columns
        last = len(rounds) - 1

        def rows() -> Iterator[list[Any]]:
            for n, local in enumerate(locals_):
                for record in read_records(local, "csv"):
                    if n == last or error_code(record) not in transient:
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
        raise InvalidInputError(
            f"max_failed_records must be a count (0, 100) or a percentage of the records sent "
            f"('5%'), not {max_failed_records!r}"
        ) from None


def check_failed_records(summary: Mapping[str, Any], max_failed_records: int | str | None) -> None:
    """Raise :class:`TooManyFailedRecordsError` when more records failed than allowed."""
    limit = failed_records_limit(max_failed_records, int(summary.get("records") or 0))
    if limit is not None and int(summary.get("failed") or 0) > limit:
        raise TooManyFailedRecordsError(summary, limit, str(max_failed_records))
