"""Response bodies streamed, and resumed where a connection broke off.

A body read in blocks (a Bulk result chunk, a REST query page read ahead) can break off mid-way
when a proxy or the network drops the connection. Salesforce serves the same bytes again from the
same URL (Bulk result URLs and locators stay valid while the job exists, a query locator for
fifteen minutes), so the body is fetched again and the bytes already handed on are skipped: no
byte is lost or delivered twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import requests
import urllib3.exceptions

from .errors import RetriesExhaustedError, SalesforceError
from .retry import Retryable

if TYPE_CHECKING:
    from .client import SalesforceClient

__all__ = ["BROKEN_BODY", "CHUNK_BYTES", "stream_body"]

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# Errors that mean a streamed body broke off; the same URL is then fetched again.
BROKEN_BODY = (
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
) -> Generator[bytes, None, None]:
    """Stream a response body; if it breaks off, ``fetch`` it again and resume after the bytes
    already delivered (Bulk result URLs and locators are re-fetchable while the job exists).

    ``same`` compares a re-fetched response with the first one and returns why it differs, if it
    does: resuming a different body would corrupt the output, so that is an error.
    """
    delivered = 0
    current = response
    try:
        for attempt in client.retry.attempts(f"Downloading {what}"):
            with attempt:
                if current is None:
                    current = fetch()
                    difference = same(current) if same and attempt.number else None
                    if difference:
                        raise SalesforceError(
                            f"{what} changed between two downloads ({difference}); it cannot "
                            "be resumed without losing or repeating rows. Run the task again."
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
                except BROKEN_BODY as exc:
                    current.close()
                    current = None
                    reason = f"broke off after {delivered:,} bytes ({type(exc).__name__})"
                    raise Retryable(
                        f"{reason}; fetching it again",
                        exhausted=functools.partial(
                            _broken_off, what, reason, client.retry.max_retries
                        ),
                    ) from None
                if skip:
                    raise SalesforceError(
                        f"{what} was {skip:,} bytes shorter when fetched again; it cannot be "
                        "resumed without losing rows. Run the task again."
                    )
    finally:
        # Also when the reader stops early: the connection goes back to the pool or is dropped.
        if current is not None:
            current.close()


def _broken_off(what: str, reason: str, max_retries: int, tries: int) -> RetriesExhaustedError:
    return RetriesExhaustedError(
        f"Downloading {what} {reason}, {tries} times. The network to Salesforce is unstable; "
        f"run the task again, or raise max_retries (now {max_retries})."
    )
