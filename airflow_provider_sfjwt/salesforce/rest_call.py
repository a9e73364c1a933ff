"""One REST or Apex REST call whose answer is kept small: inline when small, a file when not.

XCom lives in the metadata database; a 5 MB JSON answer there slows every scheduler query and
may hold data that should not be copied around. So the body is read in pieces up to a limit: a
small body is returned parsed, a larger one is streamed on to a file (temporary name, renamed at
the end) and only the path is returned. Memory holds at most the limit, never the whole body.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any, TypedDict, final

import requests

from .bounds import whole_number
from .client import IDEMPOTENT, SalesforceClient
from .errors import InvalidInputError, ResponseTooLargeError, RetriesExhaustedError, TransportError
from .guard import JSON_BODY_BYTES
from .retry import Retryable
from .storage import FilePath, atomic_output

DEFAULT_MAX_INLINE_BYTES = 64 * 1024
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD")
_CHUNK = 64 * 1024


def check_max_inline_bytes(value: int) -> int:
    """``value`` if it can be ``max_inline_bytes``: an answer held in memory for XCom is never
    larger than a JSON answer may be (:data:`~.guard.JSON_BODY_BYTES`)."""
    return whole_number(
        "max_inline_bytes", value, 0, JSON_BODY_BYTES, "bigger answers go to output_path"
    )


@final  # final, so that ``"path" in answer`` tells a type checker which of the two it is
class InlineAnswer(TypedDict):
    """A small answer, returned whole: ``body`` is the parsed JSON, or the text."""

    status: int
    body: Any


@final
class FileAnswer(TypedDict):
    """A large answer (or any answer with ``output_path``), written to ``path``."""

    status: int
    path: str
    bytes: int


RestAnswer = InlineAnswer | FileAnswer
"""What a REST call returns: small, so it can go to XCom."""


def _decode(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type.lower() and text.strip():
        return jsonlib.loads(text)
    return text


def call(
    client: SalesforceClient,
    method: str,
    path: str,
    *,
    idempotent: bool | None = None,
    **kwargs: Any,
) -> RestAnswer:
    """:func:`call_once`, sent again when the body is cut off mid-way and the call is repeatable.

    The body is read after :meth:`SalesforceClient.request` returned (it is streamed), so a reset
    there escapes the client's own retries. A GET (or ``idempotent=True``) is repeated up to
    ``max_retries``; a write is not, because it may have been applied.
    """
    if method.upper() not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if "://" in path:
        raise InvalidInputError(
            f"path {path[:80]!r} is a full URL; give it relative to the data API (limits, "
            "sobjects/Account/describe) or from the instance root (/services/apexrest/...), so the "
            "access token only ever goes to the org's instance"
        )
    check_max_inline_bytes(kwargs.get("max_inline_bytes", DEFAULT_MAX_INLINE_BYTES))
    repeatable = method.upper() in IDEMPOTENT if idempotent is None else idempotent

    def attempt(number: int) -> RestAnswer:
        try:
            return call_once(client, method, path, idempotent=idempotent, **kwargs)
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ConnectionError,
        ) as exc:
            what = (
                f"{method.upper()} {path}: the answer was cut off mid-body ({type(exc).__name__})"
            )
            if not repeatable:
                raise TransportError(
                    f"{what}; the request was sent, so it may have been applied and is not "
                    "repeated. Check the outcome in Salesforce, or set idempotent=True if the "
                    "endpoint is safe to call twice."
                ) from None
            raise Retryable(
                f"the answer was cut off mid-body ({type(exc).__name__})",
                exhausted=lambda tries: RetriesExhaustedError(
                    f"{what}, {tries} times. Raise max_retries (now "
                    f"{client.retry.max_retries}) if the network is unstable."
                ),
            ) from None

    return client.retry.run(f"{method.upper()} {path}", attempt)


def call_once(
    client: SalesforceClient,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    output_path: FilePath | None = None,
    max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES,
    idempotent: bool | None = None,
) -> RestAnswer:
    """Send one request; return an :class:`InlineAnswer` or a :class:`FileAnswer`.

    ``path`` is relative to the data API (``sobjects/Account/describe``), or absolute from the
    instance (``/services/apexrest/Orders/v1``). With ``output_path`` set, the body always goes
    to that file, whatever its size.
    """
    response = client.request(
        method, path, params=params, json=json, stream=True, idempotent=idempotent
    )
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    with response:
        pieces = response.iter_content(_CHUNK)
        head = bytearray()
        for piece in pieces:
            head += piece
            if len(head) > max_inline_bytes:
                break
        if output_path is None and len(head) <= max_inline_bytes:
            return {"status": status, "body": _decode(bytes(head), content_type)}
        if output_path is None:
            raise ResponseTooLargeError(
                f"{method.upper()} {path} answered with more than {max_inline_bytes:,} bytes, too "
                "much for XCom. Set output_path on the task to write the body to a file, or "
                "raise max_inline_bytes if the size is known to stay modest."
            )
        size = len(head)
        with atomic_output(output_path, "wb") as out:
            out.write(bytes(head))
            del head
            for piece in pieces:
                out.write(piece)
                size += len(piece)
    return {"status": status, "path": str(output_path), "bytes": size}
