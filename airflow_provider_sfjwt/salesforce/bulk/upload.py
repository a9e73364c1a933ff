"""What to load and how, and the uploads that start Bulk API 2.0 ingest jobs.

An upload is limited to 150 MB encoded (100 MB of raw CSV recommended), so an input file is split
at record boundaries into parts under the limit, one job each. Each part is uploaded from a
re-readable local file, so a repeated PUT (after a 401 or a dropped connection) sends the same
bytes again instead of an exhausted stream; a source in object storage is spooled one part at a
time.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from .. import retry
from ..bounds import whole_number
from ..readers import CsvPart, split_csv
from ..storage import FilePath
from .jobs import INGEST, BulkJobs, check_operation

__all__ = ["MAX_UPLOAD_BYTES", "IngestSpec", "check_max_upload_bytes", "start_ingest"]

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
"""Raw CSV per upload: Salesforce caps an upload at 150 MB *encoded* and recommends 100 MB raw."""


def check_max_upload_bytes(value: int) -> int:
    """``value`` if it can be ``max_upload_bytes``: at most :data:`MAX_UPLOAD_BYTES`, the raw
    size Salesforce recommends per upload (its hard cap, 150 MB, counts the upload encoded)."""
    return whole_number(
        "max_upload_bytes", value, 1, MAX_UPLOAD_BYTES, "Salesforce recommends 100 MB raw at most"
    )


@dataclass(frozen=True, init=False)
class IngestSpec:
    """What an ingest loads and how: the object, the operation, and the resending of records
    refused for a transient reason.

    ``operation`` is checked and put in Salesforce's spelling (``harddelete`` ->
    ``hardDelete``); ``upsert`` needs ``external_id_field``. Records refused with one of
    ``transient_error_codes`` are loaded again in new jobs, up to ``transient_retries`` rounds.
    """

    sobject: str
    operation: str
    external_id_field: str | None = None
    transient_retries: int = retry.DEFAULT_TRANSIENT_RETRIES
    transient_error_codes: frozenset[str] = frozenset(retry.TRANSIENT_ERROR_CODES)

    def __init__(
        self,
        sobject: str,
        operation: str,
        *,
        external_id_field: str | None = None,
        transient_retries: int = retry.DEFAULT_TRANSIENT_RETRIES,
        transient_error_codes: str | Collection[str] = retry.TRANSIENT_ERROR_CODES,
    ) -> None:
        object.__setattr__(self, "sobject", sobject)
        object.__setattr__(self, "operation", check_operation(operation, external_id_field))
        object.__setattr__(self, "external_id_field", external_id_field)
        object.__setattr__(
            self, "transient_retries", retry.check_transient_retries(transient_retries)
        )
        object.__setattr__(
            self, "transient_error_codes", retry.transient_codes(transient_error_codes)
        )


class _PartBody:
    """A split part as a request body that can be sent again (re-read from its file)."""

    def __init__(self, part: CsvPart) -> None:
        self._part = part

    def __iter__(self) -> Iterator[bytes]:
        return self._part.iter_bytes()

    def __len__(self) -> int:
        return self._part.size


def start_ingest(
    jobs: BulkJobs,
    spec: IngestSpec,
    path: FilePath,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
) -> tuple[list[str], int]:
    """Split ``path`` into uploads under the size limit, one job each, uploaded and closed.

    Returns (job ids, records submitted). If anything fails half way, the jobs started here are
    aborted, so a partial file is not left loading.
    """
    check_max_upload_bytes(max_upload_bytes)
    job_ids: list[str] = []
    submitted = 0
    try:
        for part in split_csv(path, max_upload_bytes):
            job_id = jobs.create_ingest(
                spec.sobject,
                spec.operation,
                external_id_field=spec.external_id_field,
                line_ending=part.line_ending,
            )
            job_ids.append(job_id)
            jobs.upload(job_id, _PartBody(part))
            jobs.close(job_id)
            submitted += part.rows
            log.info(
                "Bulk ingest job %s: uploaded part %d of %s (%s records, %.1f MB); %s records "
                "in %d part(s) so far",
                job_id,
                part.index,
                path,
                f"{part.rows:,}",
                part.size / 1e6,
                f"{submitted:,}",
                len(job_ids),
            )
    except BaseException:
        for job_id in job_ids:
            jobs.abort_quietly(INGEST, job_id)
        raise
    return job_ids, submitted
