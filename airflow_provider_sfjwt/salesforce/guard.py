"""Every answer is checked before its body is used: no redirect is followed, no body is read
past a ceiling.

A redirect is how a compromised proxy or server steers a client elsewhere: followed on the
token POST it hands the signed assertion (a bearer credential for its lifetime) to another
host; followed on an API call it sends the bearer token and records there, or takes another
host's answer as Salesforce data. Salesforce itself never redirects these endpoints, so a 3xx
is an error that names where it pointed, and nothing is sent there.

A body that is not streamed is read whole into memory, so a broken or hostile server can make
a worker read hundreds of megabytes (and put them in an error message, then in the task log).
Each such body is read in blocks up to a ceiling for its kind (after gzip is undone, so a small
compressed body cannot expand past it); a larger one is refused before it is read whole.
Streamed bodies (Bulk results, REST pages) go page by page into files and are bounded there.

Both checks are one response hook on the shared ``requests`` session (:func:`install`), so
every request of the token exchange and of the client passes through them.
"""

from __future__ import annotations

from typing import Any

import requests

from .errors import BodyTooLargeError, RedirectRefusedError, quoted

__all__ = ["JSON_BODY_BYTES", "TOKEN_BODY_BYTES", "install"]

TOKEN_BODY_BYTES = 1024 * 1024
"""Ceiling of an OAuth answer (``/services/oauth2/...``): a token answer is under 2 KB."""
JSON_BODY_BYTES = 64 * 1024 * 1024
"""Ceiling of any other answer read whole: a REST query page (2,000 records), a describe of
the widest object or a Collections answer stays far below it."""
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BLOCK = 64 * 1024


def install(session: requests.Session) -> requests.Session:
    """Add the checks to ``session`` once (and tell ``requests`` never to follow a redirect)."""
    session.max_redirects = 0
    if _check not in session.hooks["response"]:
        session.hooks["response"].append(_check)
    return session


def _check(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """The response hook: runs before ``requests`` would follow a redirect or read the body."""
    url = response.request.url if response.request is not None else response.url
    if response.status_code in REDIRECTS:
        location = quoted(response.headers.get("Location", "(no Location header)"))
        response.close()
        raise RedirectRefusedError(
            f"{url} answered HTTP {response.status_code} pointing at {location}. Redirects are "
            "never followed (the token, assertion or records would go there); nothing was sent. "
            "Salesforce does not redirect these endpoints: check the Login URL and any proxy "
            "between this machine and Salesforce."
        )
    if not kwargs.get("stream"):
        path = response.request.path_url if response.request is not None else ""
        ceiling = TOKEN_BODY_BYTES if path.startswith("/services/oauth2/") else JSON_BODY_BYTES
        _read_capped(response, ceiling, str(url))
    return response


def _read_capped(response: requests.Response, ceiling: int, url: str) -> None:
    """Read the body into the response (as ``requests`` would) unless it exceeds ``ceiling``."""

    def refuse(size: str) -> BodyTooLargeError:
        response.close()
        return BodyTooLargeError(
            f"{url} answered HTTP {response.status_code} with a body of {size}, over the "
            f"{ceiling:,}-byte limit for this kind of answer; it was not read or used."
        )

    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > ceiling:
        raise refuse(f"{int(length):,} bytes (Content-Length)")
    body = bytearray()
    for block in response.iter_content(_BLOCK):
        body += block
        if len(body) > ceiling:
            raise refuse(f"more than {ceiling:,} bytes")
    # What Response.content holds once read (iter_content marked the body consumed).
    response._content = bytes(body)
