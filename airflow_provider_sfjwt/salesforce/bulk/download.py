"""Resumable downloads of Bulk API 2.0 results: query result chunks and ingest result files.

Result bodies are streamed, never held whole. A body that breaks off mid-way is fetched again
from the same URL - Salesforce keeps result URLs and locators valid while the job exists - and
the bytes already handed on are skipped, so no row is lost or written twice. Row counts come from
``Sforce-NumberOfRecords``, which survives re-authentication between chunks unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions

from ..bulk_csv import CsvJoiner
from ..client import SalesforceClient
from ..errors import RetriesExhaustedError, SalesforceError
from ..retry import Retryable
from ..storage import FilePath, atomic_output

__all__ = ["ResultChunk", "iter_result_chunks", "save_job_results", "stream_body"]

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
RESULT_FILES = {
    "success": "successfulResults",
    "failed": "failedResults",
    "unprocessed": "unprocessedrecords",
}
"""The three result sets of an ingest job, by the names used here and Salesforce's resource."""
# Errors that mean a streamed body broke off; the same URL is then fetched again.
_BROKEN_BODY = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
)


def stream_body(
    client: SalesforceClient,
    fetch: Callable[[], requests.Response],
    what: str,
    *,
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
    current = response
    for attempt in client.retry.attempts(f"Downloading {what}"):
        with attempt:
            if current is None:
                current = fetch()
                difference = same(current) if same and attempt.number else None
                if difference:
                    current.close()
                    raise SalesforceError(
                        f"{what} changed between two downloads ({difference}); it cannot be "
                        "resumed without losing or repeating rows. Run the task again."
                    )
            skip = delivered
            try:
                for block in current.iter_content(chunk_size):
                    if skip:
                        if len(block) <= skip:
                            skip -= len(block)
                            continue
                        block = block[skip:]
                        skip = 0
                    delivered += len(block)
                    yield block
            except _BROKEN_BODY as exc:
                current.close()
                current = None
                name, done = type(exc).__name__, delivered
                raise Retryable(
                    f"broke off after {done:,} bytes ({name}); fetching it again",
                    exhausted=lambda tries, name=name, done=done: RetriesExhaustedError(
                        f"Downloading {what} broke off {tries} times ({name}) after {done:,} "
                        "bytes. The network to Salesforce is unstable; run the task again, or "
                        f"raise max_retries (now {client.retry.max_retries})."
                    ),
                ) from None
            current.close()
            if skip:
                raise SalesforceError(
                    f"{what} was {skip:,} bytes shorter when fetched again; it cannot be resumed "
                    "without losing rows. Run the task again."
                )


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
        return stream_body(self.client, self._fetch, what, response=self.response, same=self._same)


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


def save_job_results(
    client: SalesforceClient, job_ids: Sequence[str], kind: str, target: FilePath
) -> None:
    """Stream one result set (``success``, ``failed``, ``unprocessed``) of every job into one CSV."""
    resource = RESULT_FILES[kind]
    joiner = CsvJoiner()
    with atomic_output(target, "wb") as out:
        for job_id in job_ids:
            url = f"jobs/ingest/{job_id}/{resource}"

            def fetch(url: str = url) -> requests.Response:
                return client.request("GET", url, headers={"Accept": "text/csv"}, stream=True)

            what = f"{resource} of Bulk ingest job {job_id}"
            for block in joiner.body(stream_body(client, fetch, what), what):
                out.write(block)
