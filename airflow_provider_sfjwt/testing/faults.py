"""Fault injection: the failures a production pipeline meets, on demand and deterministic.

Rules match by URL path prefix (``/services/data/v66.0/query`` also matches ``.../queryAll``) and
optionally by method, and fire for the next ``count`` matching requests. They are checked before
authentication, the way a load balancer or an overloaded pod fails.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Rule:
    kind: str  # "fail" | "reset" | "delay"
    prefix: str
    method: str | None = None
    count: int | None = 1  # None: until cleared
    status: int = 500
    retry_after: float | None = None
    error_code: str | None = None
    body: str | None = None
    after_bytes: int = 100
    seconds: float = 0.0

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
        count: int = 1,
        retry_after: float | None = None,
        error_code: str | None = None,
        body: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (optionally Retry-After)."""
        self._add(Rule("fail", path_prefix, method, count, status, retry_after, error_code, body))

    def reset_connection(self, path_prefix: str, count: int = 1, after_bytes: int = 100) -> None:
        """Send the headers and ``after_bytes`` of the real body, then reset the TCP connection.

        The request is processed first (a write is applied), as when a proxy drops a response.
        """
        self._add(Rule("reset", path_prefix, count=count, after_bytes=after_bytes))

    def delay(self, path_prefix: str, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` matching requests for ``seconds`` before answering."""
        self._add(Rule("delay", path_prefix, count=count, seconds=seconds))

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
                    if rule.kind == "fail":
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
