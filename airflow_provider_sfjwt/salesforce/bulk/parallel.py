"""Bulk API 2.0 query results downloaded side by side, through ``resultPages`` (API 58.0+).

Reading a query job's results with the locator loop costs one round trip plus Salesforce's own
time (100 to 500 ms) per chunk, one chunk after the other. Salesforce's "Get Parallel Results
for a Query Job" resource, ``GET /services/data/vXX.X/jobs/query/{id}/resultPages``
(https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_parallel_job_results.htm),
answers up to five result URLs at once so a client can download them in parallel::

    {"resultPages": [{"resultUrl": "/services/data/vXX.X/jobs/query/750.../results?locator=..."},
                     ...],
     "nextRecordsUrl": "...",   # more result URLs; the page's field table calls it nextRecordUrl
     "done": false}

Each result URL is an ordinary result chunk: a CSV body that starts with the header row, with
``Sforce-NumberOfRecords``; like every result request it must use the job's API version (else
409). Here up to ``parallel_downloads`` chunks are requested at once, and their bytes are handed
on in URL order, so the file is the same as the locator loop writes. Memory stays bounded: each
chunk is streamed, and a chunk that is not yet being written holds at most
:data:`PART_BUFFER_BLOCKS` blocks before its connection waits (TCP flow control), so a slow
writer is never overtaken by the downloads. A chunk that breaks off is fetched again from its
result URL and resumed; an expired session is renewed once for all threads by the client.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests

from ..bodies import stream_body
from ..bounds import whole_number
from ..bulk_csv import count_line_ends
from ..client import SalesforceClient
from ..errors import ApiError, SalesforceError, UnexpectedResponseError, quoted
from ..extract import prefetched
from .download import RESULT_HEADERS, job_path, record_count

__all__ = [
    "DEFAULT_PARALLEL_DOWNLOADS",
    "MAX_PARALLEL_DOWNLOADS",
    "RESULT_PAGES_SINCE",
    "ResultPart",
    "check_parallel_downloads",
    "first_result_pages",
    "iter_result_parts",
]

log = logging.getLogger(__name__)

RESULT_PAGES_SINCE = (58, 0)
"""The first API version that has ``resultPages``; older jobs are read with the locator loop."""
DEFAULT_PARALLEL_DOWNLOADS = 5
"""Chunks downloaded at once by default: the most result URLs one ``resultPages`` answer holds."""
MAX_PARALLEL_DOWNLOADS = 20
PART_BUFFER_BLOCKS = 2
"""Blocks a chunk holds ahead of the writer before its connection waits."""
PART_BLOCK_BYTES = 512 * 1024
"""Bytes a download hands on at a time. Each chunk downloading ahead of the writer holds
``PART_BUFFER_BLOCKS`` of them plus the one being read, so this sets the memory parallel
downloads add. Half the sequential path's megabyte: with megabyte blocks five downloads peaked
about 10 MB higher, and the peak still rose as more chunks were read; smaller blocks cost more
per byte in hand-offs between threads."""
_END = object()


def check_parallel_downloads(value: int) -> int:
    """``value`` if it is a whole number from 1 to :data:`MAX_PARALLEL_DOWNLOADS`."""
    return whole_number(
        "parallel_downloads", value, 1, MAX_PARALLEL_DOWNLOADS, "1: one chunk after the other"
    )


def _version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


class ResultPart:
    """One result URL, downloaded in a worker thread and handed on block by block.

    ``records`` (``Sforce-NumberOfRecords``) waits for the answer's headers; :meth:`iter_bytes`
    yields the body as it arrives and raises what the download raised. The worker counts the
    line ends of each block before handing it on (``line_ends``, see
    :class:`~..bulk_csv.LineEndCounter`), so that pass runs beside the writer instead of in it.
    """

    def __init__(
        self, client: SalesforceClient, job_id: str, number: int, url: str, pool: ThreadPoolExecutor
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.number = number
        self.url = url
        self._blocks: queue.Queue[Any] = queue.Queue(PART_BUFFER_BLOCKS)
        self._answered = threading.Event()
        self._cancelled = threading.Event()
        self._records: int | None = None
        self.line_ends = 0
        self._error: BaseException | None = None
        pool.submit(self._download)

    @property
    def what(self) -> str:
        return f"result chunk {self.number} of Bulk query job {self.job_id}"

    @property
    def records(self) -> int:
        self._answered.wait()
        if self._records is None:
            assert self._error is not None
            raise self._error
        return self._records

    def _fetch(self) -> requests.Response:
        return self.client.request("GET", self.url, headers=RESULT_HEADERS, stream=True)

    def _same(self, again: requests.Response) -> str | None:
        count = record_count(again)
        return None if count == self._records else f"{self._records} then {count} records"

    def _download(self) -> None:
        try:
            response = self._fetch()
            self._records = record_count(response)
            self._answered.set()
            body = stream_body(
                self.client,
                self._fetch,
                self.what,
                response=response,
                same=self._same,
                chunk_size=PART_BLOCK_BYTES,
            )
            for block in body:
                self.line_ends += count_line_ends(block)
                if not self._put(block):
                    body.close()
                    return
            self._put(_END)
        except Exception as exc:
            self._error = exc
            self._answered.set()
            self._put(_END)

    def _put(self, item: Any) -> bool:
        """Queue ``item``, waiting while the buffer is full; ``False`` once cancelled."""
        while not self._cancelled.is_set():
            try:
                self._blocks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def iter_bytes(self) -> Iterator[bytes]:
        """The chunk's bytes in order; raises the download's error where it happened."""
        while (block := self._blocks.get()) is not _END:
            yield block
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Stop the download (the writer gave up); its worker ends at its next block."""
        self._cancelled.set()


def _check_result_url(url: Any, job_id: str, seen: set[str]) -> str:
    """A result URL from Salesforce, checked: this job's results resource, never seen before."""
    if not isinstance(url, str) or not url:
        raise SalesforceError(
            f"resultPages of Bulk query job {job_id} holds a resultUrl {url!r:.80}"
        )
    path = urlsplit(url).path
    if not path.startswith("/services/data/v") or not path.endswith(
        f"/jobs/query/{job_id}/results"
    ):
        raise SalesforceError(
            f"resultPages of Bulk query job {job_id} points at {url[:120]!r}, which is not this "
            "job's results; nothing was downloaded from it."
        )
    if url in seen:
        raise UnexpectedResponseError(
            f"resultPages of Bulk query job {job_id} named {quoted(url, 120)!r} again: the "
            "results cannot be read without repeating rows, so nothing was written. Run the "
            "task again; if it repeats, report the job id."
        )
    seen.add(url)
    return url


def _result_urls(
    client: SalesforceClient, job_id: str, answer: Mapping[str, Any]
) -> Generator[str, None, None]:
    """Every result URL of the job in order, following ``nextRecordsUrl`` from ``answer`` on."""
    seen: set[str] = set()
    followed: set[str] = set()
    while True:
        pages = answer.get("resultPages")
        if not isinstance(pages, list):
            raise SalesforceError(
                f"resultPages of Bulk query job {job_id} answered no resultPages list"
            )
        for page in pages:
            yield _check_result_url(
                page.get("resultUrl") if isinstance(page, dict) else None, job_id, seen
            )
        if answer.get("done", True) is not False:
            return
        following = answer.get("nextRecordsUrl") or answer.get("nextRecordUrl")
        if not isinstance(following, str) or not following:
            raise SalesforceError(
                f"resultPages of Bulk query job {job_id} is not done but names no nextRecordsUrl"
            )
        if following in followed:
            raise UnexpectedResponseError(
                f"resultPages of Bulk query job {job_id} answered the same nextRecordsUrl "
                f"twice ({quoted(following, 120)}): following it again would loop forever, so "
                "nothing was written. Run the task again; if it repeats, report the job id."
            )
        followed.add(following)
        answer = _json_object(client.get_json(following), job_id)


def _json_object(value: Any, job_id: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SalesforceError(f"resultPages of Bulk query job {job_id} is not a JSON object")
    return value


def first_result_pages(
    client: SalesforceClient, job_id: str, version: str | None
) -> Mapping[str, Any] | None:
    """The first ``resultPages`` answer, or ``None`` where the resource does not exist (a job of
    an API version before 58.0, or a 404): the caller then reads with the locator loop."""
    if _version_tuple(version or client.api_version) < RESULT_PAGES_SINCE:
        return None
    try:
        answer = client.get_json(f"{job_path(job_id, version)}/resultPages")
    except ApiError as exc:
        if exc.status != 404:
            raise
        log.info(
            "Bulk query job %s: resultPages is not available (%s); reading its chunks one "
            "after the other",
            job_id,
            exc.error_code,
        )
        return None
    return _json_object(answer, job_id)


def iter_result_parts(
    client: SalesforceClient, job_id: str, first: Mapping[str, Any], parallel: int
) -> Iterator[ResultPart]:
    """The job's result chunks in order, ``parallel`` of them downloading at once.

    ``first`` is the first ``resultPages`` answer. A chunk's download starts when a slot frees,
    that is when the writer has taken every chunk before it but ``parallel - 1``; the next
    ``resultPages`` answer is fetched ahead while chunks download. Stopping early (an error,
    a killed task) cancels the downloads in flight.
    """
    check_parallel_downloads(parallel)
    urls = prefetched(_result_urls(client, job_id, first))
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sfjwt-bulk-part")
    window: deque[ResultPart] = deque()
    number = 0
    try:
        while True:
            while len(window) < parallel and (url := next(urls, None)) is not None:
                window.append(ResultPart(client, job_id, number, url, pool))
                number += 1
            if not window:
                return
            yield window[0]
            window.popleft()
    finally:
        for part in window:
            part.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        urls.close()
