"""Fault injection: the failures a production pipeline meets, on demand and deterministic.

Rules match by URL path prefix (``/services/data/v66.0/query`` also matches ``.../queryAll``) and
optionally by method, and fire for the next ``count`` matching requests (``count=None``: until
``clear``, as for the token-endpoint faults, to play an outage that outlasts any retry policy).
They are checked before authentication, the way a load balancer or an overloaded pod fails.

Some faults play a hostile or broken server rather than a failing one, for the checks a client
must make on what it is handed: a token answer naming another host as ``instance_url``, a
redirect to another host, a body far larger than any real one, a cursor that points at itself
forever, a record count that disagrees with the rows sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .transport import Response

_DEFAULT_ERRORS = {
    429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1234567890-12345 (-1234567890)",
    ),
    502: ("BAD_GATEWAY", "Bad Gateway"),
    503: ("SERVER_UNAVAILABLE", "Server is temporarily unavailable; try again later."),
    504: ("GATEWAY_TIMEOUT", "Gateway Timeout"),
}


_JSON = "application/json;charset=UTF-8"
_BLOCK = 1 << 16
ANSWERS = ("fail", "redirect", "huge")
"""Rule kinds that replace the answer (at most one fires per request)."""


@dataclass
class Rule:
    kind: str  # "fail" | "reset" | "delay" | "redirect" | "huge"
    prefix: str
    method: str | None = None
    count: int | None = 1  # None: until cleared
    status: int = 500
    retry_after: float | None = None
    error_code: str | None = None
    body: str | None = None
    after_bytes: int = 100
    seconds: float = 0.0
    location: str = ""
    size: int = 0
    start: bytes = b""
    fill: bytes = b"x"
    end: bytes = b""
    content_type: str = _JSON

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.prefix) and (
            self.method is None or self.method.upper() == method
        )


@dataclass
class TokenError:
    error: str
    description: str
    status: int = 400
    count: int | None = None
    html: bool = False


@dataclass
class TokenAnswer:
    """A planned token-endpoint answer: a raw body, or real tokens with another instance_url."""

    body: bytes | None = None
    status: int = 200
    instance_url: str | None = None
    count: int | None = None


@dataclass
class Fired:
    """What the transport must do for one request."""

    delay: float = 0.0
    fail: Rule | None = None
    reset: Rule | None = None


class Faults:
    """Reached as ``emu.faults``; every method is safe to call while requests are in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._token: TokenError | None = None
        self.revoke_after: int | None = None
        self.quota_exhausted = False
        self._bulk: list[tuple[str, str | None, str]] = []  # (kind, job_id, message)
        self._revoke_now = False
        self._locked_rows = 0
        self._token_answer: TokenAnswer | None = None
        self.repeating_cursors = False
        self.record_count: int | None = None

    # ------------------------------------------------------------------ public API
    def revoke_sessions(self, after_calls: int = 0) -> None:
        """Invalidate every access token issued so far, now or after ``after_calls`` more API calls."""
        with self._lock:
            if after_calls <= 0:
                self._revoke_now = True
                self.revoke_after = None
            else:
                self.revoke_after = after_calls

    def fail(
        self,
        path_prefix: str,
        status: int,
        count: int | None = 1,
        retry_after: float | None = None,
        error_code: str | None = None,
        body: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (optionally Retry-After)."""
        self._add(Rule("fail", path_prefix, method, count, status, retry_after, error_code, body))

    def reset_connection(
        self, path_prefix: str, count: int | None = 1, after_bytes: int = 100
    ) -> None:
        """Send the headers and ``after_bytes`` of the real body, then reset the TCP connection.

        The request is processed first (a write is applied), as when a proxy drops a response.
        """
        self._add(Rule("reset", path_prefix, count=count, after_bytes=after_bytes))

    def delay(
        self, path_prefix: str, seconds: float, count: int | None = 1, method: str | None = None
    ) -> None:
        """Hold the next ``count`` matching requests (of ``method``, if given) for ``seconds``
        before answering."""
        self._add(Rule("delay", path_prefix, method, count=count, seconds=seconds))

    def redirect(
        self,
        path_prefix: str,
        location: str,
        status: int = 302,
        count: int | None = 1,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (301, 302, 303, 307 or
        308) and ``Location: location`` instead of processing them, as a compromised proxy or
        server sending the client (and its bearer token, assertion or records) elsewhere."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"{status} is not a redirect status")
        self._add(Rule("redirect", path_prefix, method, count, status, location=location))

    def huge_body(
        self,
        path_prefix: str,
        size: int,
        status: int = 200,
        start: bytes = b"",
        fill: bytes = b"x",
        end: bytes = b"",
        content_type: str = _JSON,
        count: int | None = 1,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with a body of ``size`` bytes: ``start``,
        ``fill`` repeated, then ``end``, streamed (chunked) and never held in memory, as a
        broken or hostile server might. ``start=b'{"access_token":"'``, ``end=b'"}'`` gives a
        300 MB token answer; ``fill=b"Id\\r\\n"`` without a final newline a CSV header that
        never ends."""
        if size < len(start) + len(end):
            raise ValueError("size is smaller than start + end")
        self._add(
            Rule(
                "huge",
                path_prefix,
                method,
                count,
                status,
                size=size,
                start=start,
                fill=fill or b"x",
                end=end,
                content_type=content_type,
            )
        )

    def token_response(
        self, body: str | bytes | dict[str, Any], status: int = 200, count: int | None = 1
    ) -> None:
        """Make the token endpoint answer exactly ``body`` (a dict is sent as JSON), without
        looking at the request: any answer a broken or hostile server could give."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        raw = raw.encode() if isinstance(raw, str) else raw
        with self._lock:
            self._token_answer = TokenAnswer(body=raw, status=status, count=count)

    def token_instance_url(self, instance_url: str, count: int | None = None) -> None:
        """Issue real tokens whose answer names ``instance_url`` (any string: another host,
        ``"x"``, a URL with user info, query or fragment) as the org's instance."""
        with self._lock:
            self._token_answer = TokenAnswer(instance_url=instance_url, count=count)

    def repeat_cursors(self) -> None:
        """From now on a cursor points at itself: a REST query page fetched by its
        ``nextRecordsUrl`` names that same URL as the next one, and a Bulk query result chunk
        fetched with a ``locator`` answers that same locator in ``Sforce-Locator``. A client
        that follows them blindly pages forever (until ``clear``)."""
        self.repeating_cursors = True

    def wrong_record_count(self, value: int) -> None:
        """From now on Bulk query result chunks say ``Sforce-NumberOfRecords: value`` whatever
        rows they hold (until ``clear``)."""
        self.record_count = value

    def token_error(
        self,
        error: str,
        description: str,
        status: int = 400,
        count: int | None = None,
        html: bool = False,
    ) -> None:
        """Make the token endpoint answer this error (``count=None``: until cleared).

        ``html=True`` answers an HTML page instead, like a maintenance page or a proxy.
        """
        with self._lock:
            self._token = TokenError(error, description, status, count, html)

    def lock_rows(self, count: int = 1) -> None:
        """Refuse the next ``count`` records written through sObject Collections or a Bulk
        ingest job with ``UNABLE_TO_LOCK_ROW``, as when a trigger or another load holds them;
        nothing of those records is written, the rest of the request or job goes through."""
        with self._lock:
            self._locked_rows += count

    def exhaust_quota(self) -> None:
        """From now on API calls answer 403 REQUEST_LIMIT_EXCEEDED (until ``clear``)."""
        self.quota_exhausted = True

    def fail_bulk_job(
        self, job_id: str | None = None, message: str = "InvalidBatch : Failed to process query"
    ) -> None:
        """Make a Bulk API 2.0 job end in state Failed (``None``: the next job created)."""
        with self._lock:
            self._bulk.append(("fail", job_id, message))

    def abort_bulk_job(self, job_id: str | None = None) -> None:
        """Make a Bulk API 2.0 job end in state Aborted (``None``: the next job created)."""
        with self._lock:
            self._bulk.append(("abort", job_id, ""))

    def clear(self) -> None:
        """Remove every fault (also the exhausted quota and pending revocations)."""
        with self._lock:
            self._rules.clear()
            self._token = None
            self.revoke_after = None
            self.quota_exhausted = False
            self._bulk.clear()
            self._revoke_now = False
            self._locked_rows = 0
            self._token_answer = None
            self.repeating_cursors = False
            self.record_count = None

    # ------------------------------------------------------------------ used by the server
    def _add(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def take(self, method: str, path: str) -> Fired:
        fired = Fired()
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, path):
                    continue
                if rule.kind == "delay":
                    if fired.delay:
                        continue
                    fired.delay = rule.seconds
                elif fired.fail is None and fired.reset is None:
                    if rule.kind in ANSWERS:
                        fired.fail = rule
                    else:
                        fired.reset = rule
                else:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
        return fired

    def take_token_answer(self) -> TokenAnswer | None:
        with self._lock:
            answer = self._token_answer
            if answer is not None and answer.count is not None:
                answer.count -= 1
                if answer.count <= 0:
                    self._token_answer = None
            return answer

    def take_token_error(self) -> TokenError | None:
        with self._lock:
            t = self._token
            if t is None:
                return None
            if t.count is not None:
                t.count -= 1
                if t.count <= 0:
                    self._token = None
            return t

    def take_row_lock(self) -> bool:
        """Called per record written (Collections, Bulk ingest): True when it must be refused."""
        with self._lock:
            if self._locked_rows <= 0:
                return False
            self._locked_rows -= 1
            return True

    def take_revocation(self) -> bool:
        """Called per API call: True when all sessions must be invalidated before it runs."""
        with self._lock:
            if self._revoke_now:
                self._revoke_now = False
                return True
            if self.revoke_after is not None:
                if self.revoke_after <= 0:
                    self.revoke_after = None
                    return True
                self.revoke_after -= 1
            return False

    def take_bulk(self, job_id: str, new_job: bool) -> tuple[str, str] | None:
        """The fault planned for a job, claimed when it is created (``job_id=None`` rules)."""
        with self._lock:
            for item in self._bulk:
                kind, jid, message = item
                if jid == job_id or (jid is None and new_job):
                    self._bulk.remove(item)
                    return kind, message
        return None


def fault_response(rule: Rule) -> Response:
    """The answer of a rule that replaces it (``ANSWERS``)."""
    if rule.kind == "redirect":
        page = f'<html><body>Moved to <a href="{rule.location}">here</a></body></html>'
        return Response(
            rule.status, page.encode(), "text/html;charset=UTF-8", [("Location", rule.location)]
        )
    if rule.kind == "huge":
        return Response(rule.status, b"", rule.content_type, stream=_huge(rule))
    body, ctype = fail_body(rule)
    headers = []
    if rule.retry_after is not None:
        ra = rule.retry_after
        headers.append(("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra)))
    return Response(rule.status, body, ctype, headers)


def _huge(rule: Rule) -> Iterator[bytes]:
    yield rule.start
    left = rule.size - len(rule.start) - len(rule.end)
    block = rule.fill * max(1, _BLOCK // len(rule.fill))
    while left > 0:
        piece = block[:left]
        left -= len(piece)
        yield piece
    yield rule.end


def fail_body(rule: Rule) -> tuple[bytes, str]:
    """The body and content type of an injected failure."""
    if rule.body is not None:
        try:
            json.loads(rule.body)
            return rule.body.encode(), "application/json;charset=UTF-8"
        except ValueError:
            looks_html = rule.body.lstrip().startswith("<")
            ctype = "text/html;charset=UTF-8" if looks_html else "text/plain;charset=UTF-8"
            return rule.body.encode(), ctype
    code, message = _DEFAULT_ERRORS.get(rule.status, ("UNKNOWN_EXCEPTION", "Injected failure"))
    if rule.error_code:
        code = rule.error_code
    if rule.status in (502, 504) and not rule.error_code:
        html = f"<html><head><title>{rule.status} {message}</title></head><body>{message}</body></html>"
        return html.encode(), "text/html;charset=UTF-8"
    payload: Any = [{"message": message, "errorCode": code}]
    return json.dumps(payload).encode(), "application/json;charset=UTF-8"
