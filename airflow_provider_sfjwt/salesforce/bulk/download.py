"""Resumable downloads of Bulk API 2.0 results: query result chunks and ingest result files.

Result bodies are streamed, never held whole. A body that breaks off mid-way is fetched again
from the same URL - Salesforce keeps result URLs and locators valid while the job exists - and
the bytes already handed on are skipped, so no row is lost or written twice. Row counts come from
``Sforce-NumberOfRecords``, which survives re-authentication between chunks unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import requests

from ..bodies import stream_body
from ..bulk_csv import CsvJoiner, count_line_ends
from ..client import SalesforceClient
from ..errors import UnexpectedResponseError, quoted
from ..storage import Destination, FilePath, atomic_output

__all__ = [
    "RESULT_HEADERS",
    "ResultChunk",
    "iter_result_chunks",
    "job_path",
    "record_count",
    "save_job_results",
    "stream_body",
]

log = logging.getLogger(__name__)

RESULT_FILES = {
    "success": "successfulResults",
    "failed": "failedResults",
    "unprocessed": "unprocessedrecords",
}
"""The three result sets of an ingest job, by the names used here and Salesforce's resource."""
RESULT_HEADERS = {"Accept": "text/csv", "Accept-Encoding": "gzip"}
"""Headers of a query result request: CSV, compressed on the wire (much faster to download)."""


def job_path(job_id: str, version: str | None) -> str:
    """The query job's resource, under the job's own API version when it is known: results
    must be read with the version the job was created with (else 409)."""
    if version is None:
        return f"jobs/query/{job_id}"
    return f"/services/data/v{version}/jobs/query/{job_id}"


def record_count(response: requests.Response) -> int:
    """``Sforce-NumberOfRecords`` of a result chunk (0 when absent)."""
    return int(response.headers.get("Sforce-NumberOfRecords") or 0)


@dataclass
class ResultChunk:
    """One locator's worth of query results: a CSV body that starts with its own header row.

    ``records`` is Salesforce's ``Sforce-NumberOfRecords``, ``next_locator`` the locator of the
    following chunk (``None`` after the last) and ``line_ends`` the line ends read so far (see
    :class:`~..bulk_csv.LineEndCounter`).
    """

    client: SalesforceClient
    job_id: str
    number: int
    locator: str | None
    max_records: int | None
    version: str | None
    response: requests.Response
    records: int = field(init=False)
    next_locator: str | None = field(init=False)
    line_ends: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.records = record_count(self.response)
        nxt = self.response.headers.get("Sforce-Locator")
        self.next_locator = None if nxt in (None, "", "null") else nxt

    def _fetch(self) -> requests.Response:
        return _fetch_results(
            self.client, self.job_id, self.locator, self.max_records, self.version
        )

    def _same(self, again: requests.Response) -> str | None:
        count = record_count(again)
        return None if count == self.records else f"{self.records} then {count} records"

    def iter_bytes(self) -> Iterator[bytes]:
        """The chunk's bytes, resumed from the same locator if the connection breaks."""
        what = f"result chunk {self.number} of Bulk query job {self.job_id}"
        body = stream_body(self.client, self._fetch, what, response=self.response, same=self._same)
        with closing(body):
            for block in body:
                self.line_ends += count_line_ends(block)
                yield block


def _fetch_results(
    client: SalesforceClient,
    job_id: str,
    locator: str | None,
    max_records: int | None,
    version: str | None,
) -> requests.Response:
    params: dict[str, Any] = {}
    if max_records:
        params["maxRecords"] = int(max_records)
    if locator:
        params["locator"] = locator
    return client.request(
        "GET",
        f"{job_path(job_id, version)}/results",
        params=params,
        headers=RESULT_HEADERS,
        stream=True,
    )


def iter_result_chunks(
    client: SalesforceClient,
    job_id: str,
    max_records: int | None = None,
    version: str | None = None,
) -> Iterator[ResultChunk]:
    """The result chunks of a completed query job, in locator order; read each before the next.

    ``version`` is the job's API version (``None``: the client's). A locator that comes back a second time would page forever (or repeat rows): refused.
    """
    locator: str | None = None
    seen: set[str] = set()
    number = 0
    while True:
        response = _fetch_results(client, job_id, locator, max_records, version)
        chunk = ResultChunk(client, job_id, number, locator, max_records, version, response)
        yield chunk
        response.close()
        if chunk.next_locator is None:
            return
        locator = chunk.next_locator
        if locator in seen or locator == chunk.locator:
            raise UnexpectedResponseError(
                f"Bulk query job {job_id} answered the locator {quoted(locator, 80)!r} again "
                f"after chunk {number}: following it would page forever or repeat rows, so "
                "nothing was written. Run the task again; if it repeats, report the job id."
            )
        seen.add(locator)
        number += 1


def save_job_results(
    client: SalesforceClient, job_ids: Sequence[str], kind: str, target: FilePath | Destination
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
