"""SOQL result pages, each requested as soon as its URL is known.

A query page answers ``{"totalSize": N, "done": false, "nextRecordsUrl": "...", "records": [...]}``
with the next page's URL *before* its records. Against a real org every page costs a network
round trip plus the server's own time (100 to 500 ms), so waiting for a whole page, parsing it and
writing it before asking for the next one adds the parsing and writing to every round trip. Here
a worker thread reads each page; as soon as its first bytes name the next page, the request for
that one goes out, and the page is parsed and handed on while the next one is on its way.

Memory holds two pages at most: the one handed to the caller and the next one being received.
The page after that is requested only when the caller asks for more, and the ``nextRecordsUrl``
read early is checked against the one in the parsed page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .bodies import stream_body
from .errors import BodyTooLargeError, SalesforceError, UnexpectedResponseError, quoted
from .guard import JSON_BODY_BYTES

if TYPE_CHECKING:
    from .client import SalesforceClient

__all__ = ["iter_pages"]

_HEAD_LIMIT = 64 * 1024
"""Bytes after which a page whose ``records`` key has not appeared is read to the end first."""
_READ_BLOCK = 256 * 1024


def page_head(data: bytes | bytearray) -> dict[str, Any] | None:
    """``totalSize``, ``done`` and ``nextRecordsUrl`` from the start of a page's JSON, if the
    ``records`` key has arrived and everything before it parses; ``None`` otherwise."""
    at = data.find(b'"records"')
    if at < 0:
        return None
    text = bytes(data[:at]).rstrip().rstrip(b",")
    try:
        head = json.loads(text + b"}")
    except ValueError:
        return None
    return head if isinstance(head, dict) and "done" in head else None


def next_url(page: Mapping[str, Any]) -> str | None:
    """The URL of the following page, ``None`` after the last."""
    url = page.get("nextRecordsUrl")
    if page.get("done", True) or not url:
        return None
    if not isinstance(url, str):
        raise SalesforceError(f"Salesforce answered a nextRecordsUrl that is not text: {url!r:.80}")
    return url


class _PageFetch:
    """One page read in a worker thread; its head is known before its last byte arrives."""

    def __init__(
        self,
        client: SalesforceClient,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.client = client
        self.path = path
        self.params = params
        self.headers = headers
        self.head: dict[str, Any] | None = None
        self.head_known = threading.Event()
        self._body: bytearray | None = None
        self._future = pool.submit(self._read)

    def _read(self) -> None:
        def fetch() -> Any:
            return self.client.request(
                "GET", self.path, params=self.params, headers=self.headers, stream=True
            )

        body = bytearray()
        try:
            for block in stream_body(self.client, fetch, "a query page", chunk_size=_READ_BLOCK):
                body += block
                if len(body) > JSON_BODY_BYTES:
                    raise BodyTooLargeError(
                        f"A query page from Salesforce is over the {JSON_BODY_BYTES:,}-byte "
                        "limit of a JSON answer (a page holds at most 2,000 records); it was not "
                        "read further or used."
                    )
                if not self.head_known.is_set():
                    self.head = page_head(body)
                    if self.head is not None or len(body) > _HEAD_LIMIT:
                        self.head_known.set()
        finally:
            self.head_known.set()
        self._body = body

    def take(self) -> dict[str, Any]:
        """The parsed page (waits for its last byte; raises what the fetch raised)."""
        self._future.result()
        body, self._body = self._body, None
        assert body is not None
        try:
            page = json.loads(body)
        except ValueError:
            raise SalesforceError(
                f"A query page from Salesforce is not valid JSON ({len(body):,} bytes); run the "
                "task again, and if it persists check proxies between this worker and Salesforce."
            ) from None
        if not isinstance(page, dict):
            raise SalesforceError("A query page from Salesforce is not a JSON object")
        return page


def iter_pages(
    client: SalesforceClient,
    path: str,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every page of the query started by ``GET path?params``, following ``nextRecordsUrl``.

    The request for page *k+1* goes out as soon as page *k*'s first bytes name it, so the
    caller's work on page *k* overlaps the round trip of page *k+1*. A ``nextRecordsUrl`` seen
    twice is an error (a server looping on one cursor would otherwise be followed forever).
    """
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sfjwt-page")
    seen: set[str] = set()
    fetch: _PageFetch | None = _PageFetch(client, path, params, headers, pool)
    try:
        while fetch is not None:
            fetch.head_known.wait()
            early = next_url(fetch.head) if fetch.head is not None else None
            following = _PageFetch(client, early, None, headers, pool) if early else None
            page = fetch.take()
            url = next_url(page)
            if fetch.head is not None and url != early:
                raise SalesforceError(
                    "A query page named two different next pages (its start and its end "
                    "disagree); run the task again."
                )
            if url is not None:
                if url in seen:
                    raise UnexpectedResponseError(
                        f"Salesforce named {quoted(url, 200)!r} as the next page a second time, "
                        f"after {len(seen) + 1} pages (the same nextRecordsUrl twice): following "
                        "it would page forever and repeat rows. Run the task again; if it "
                        "repeats, report the query."
                    )
                seen.add(url)
                if following is None:
                    following = _PageFetch(client, url, None, headers, pool)
            fetch = following
            yield page
            del page
    finally:
        # A caller that stops early leaves at most one page being received; it is not waited for.
        pool.shutdown(wait=False, cancel_futures=True)
