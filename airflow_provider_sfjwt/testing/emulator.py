"""``SalesforceEmulator``: a local, threaded stand-in for one Salesforce org.

It speaks the wire protocol of the real service (token endpoint, REST, sObject Collections, Bulk
API 2.0, Apex REST) closely enough that unmodified clients work against it, keeps counters that
tests assert on (one token exchange per process, no duplicated page), and injects the failures
production pipelines meet (see :mod:`.faults`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal

from . import auth, data, rest
from .bulk import Bulk
from .cache import BlockCache
from .faults import Faults, fault_response
from .ids import ORG_PREFIX, make_id
from .store import Store, now_datetime
from .tls import make_tls_files, server_context
from .transport import ErrorReply, Request, Response, Server, serve, sleep

DEFAULT_API_VERSIONS = ("62.0", "63.0", "64.0", "65.0", "66.0", "67.0", "68.0")
_VERSION_RE = re.compile(r"^v(\d+\.\d)$")
_QUERY_PAGE_RE = re.compile(r"/query(All)?/[^/]+-\d+$")
_NEXT_URL_RE = re.compile(rb'"nextRecordsUrl":"[^"]*"')
ApexHandler = Callable[[Request], "tuple[int, Any]"]


CounterName = Literal[
    "token_requests",
    "token_exchanges",
    "api_calls",
    "records_served",
    "bulk_query_jobs",
    "bulk_ingest_jobs",
    "faults_injected",
]


class Stats:
    """Counters of what clients did; also served as JSON at ``GET /__emulator__/stats``.

    Tests assert on them (one token exchange per process, no page fetched twice), so every
    update goes through one lock: request handlers run in many threads at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.token_requests = 0
            self.token_exchanges = 0
            self.api_calls = 0
            self.records_served = 0
            self.bulk_query_jobs = 0
            self.bulk_ingest_jobs = 0
            self.faults_injected = 0
            self.paths: Counter[str] = Counter()
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()

    def increment(self, name: CounterName, by: int = 1) -> None:
        """Add ``by`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + by)

    def record_request(self, method: str, path: str) -> None:
        """Count one request by path and by ``METHOD path``."""
        with self._lock:
            self.paths[path] += 1
            self.requests[f"{method} {path}"] += 1

    def record_status(self, status: int) -> None:
        """Count one answer by HTTP status."""
        with self._lock:
            self.statuses[status] += 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token_requests": self.token_requests,
                "token_exchanges": self.token_exchanges,
                "api_calls": self.api_calls,
                "records_served": self.records_served,
                "bulk_query_jobs": self.bulk_query_jobs,
                "bulk_ingest_jobs": self.bulk_ingest_jobs,
                "faults_injected": self.faults_injected,
                "paths": dict(self.paths),
                "requests": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
            }

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __repr__(self) -> str:
        d = self.to_dict()
        return (
            f"Stats(token_exchanges={d['token_exchanges']}, api_calls={d['api_calls']}, "
            f"records_served={d['records_served']})"
        )


class OpenConnections:
    """Client sockets being served, so :meth:`SalesforceEmulator.stop` can drop them all
    (a keep-alive client would otherwise hold a handler thread after the server stopped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)

    def __len__(self) -> int:
        with self._lock:
            return len(self._socks)

    def close_all(self) -> None:
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class SalesforceEmulator:
    """A local Salesforce org over HTTP(S) for tests, benchmarks and offline development.

    Use as a context manager (``with SalesforceEmulator() as emu: ... emu.url``) or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 2000,
        api_versions: Iterable[str] = DEFAULT_API_VERSIONS,
        daily_api_limit: int = 100_000,
        bulk_poll_transitions: int = 2,
        bulk_processing_seconds: float = 0.0,
        gzip: bool = False,
        serialize_cache_mb: int = 512,
        session_timeout: float | None = None,
    ) -> None:
        self.tls = tls
        self.host = host
        self.port = port
        self.page_size = page_size
        self.api_versions = tuple(api_versions)
        self.daily_api_limit = daily_api_limit
        self.bulk_poll_transitions = bulk_poll_transitions
        self.bulk_processing_seconds = bulk_processing_seconds
        self.gzip = gzip
        self.session_timeout = session_timeout  # seconds; None: tokens live until revoked
        self.clock_skew: float = 0.0
        self.org_id = make_id(ORG_PREFIX, 7)
        self.store = Store()
        self.identity = auth.Identity(self.org_id)
        self.stats = Stats()
        self.faults = Faults()
        self.cursors = rest.Cursors()
        self.bulk = Bulk(self)
        self.cache = BlockCache(serialize_cache_mb * 1024 * 1024)
        self.ca_cert_path: str | None = None
        self.connections = OpenConnections()
        self.ssl_context: ssl.SSLContext | None = None
        self._apex: list[tuple[str, str, ApexHandler]] = []
        self._tls_dir: str | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.url = ""
        self.admin = self.add_user("admin@emulator.example.com", name="Emulator Admin")

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SalesforceEmulator:
        """Bind, then serve in a daemon thread. Returns self."""
        if self._server is not None:
            return self
        if self.tls:
            self._tls_dir = os.path.dirname(make_tls_files()[0])
            self.ca_cert_path = os.path.join(self._tls_dir, "ca.pem")
            self.ssl_context = server_context(
                os.path.join(self._tls_dir, "server.pem"), os.path.join(self._tls_dir, "server.key")
            )
        self._stopping = False
        self._server = serve(self, self.host, self.port)
        self.port = self._server.server_address[1]
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.run,
            daemon=True,
            name=f"sfemu-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and remove temporary files."""
        if self._server is None:
            return
        self._stopping = True
        self._server.stop(self._thread)
        self.connections.close_all()
        self._server = None
        self._thread = None
        self.bulk.close()
        self.cache.clear()
        if self._tls_dir:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def __enter__(self) -> SalesforceEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ serialisation cache
    def _generation(self, key: Any) -> tuple[int, ...]:
        """Write versions of the tables a cached block was built from (``key[1]``)."""
        return tuple(t.version if (t := self.store.get(n)) else -1 for n in key[1])

    def cached_block(self, kind: str, q: Any, rows: Any, extra: tuple[Any, ...], make: Any) -> str:
        """Serialised rows from the cache when ``rows`` is a plain table range, else ``make()``."""
        if not isinstance(rows, range) or rows.step != 1:
            return make()
        names = (q.table.name, *sorted({r.parent.name for r in q.fields if r.parent is not None}))
        key = (kind, names, tuple(r.name for r in q.fields), extra, rows.start, rows.stop)
        return self.cache.get_or_make(key, self._generation(key), make, self._generation)

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        """The server's clock: real time plus ``clock_skew`` (Date header and exp check)."""
        return time.time() + self.clock_skew

    def now_datetime(self) -> str:
        return now_datetime(self.now())

    # ------------------------------------------------------------------ org setup
    def add_app(
        self,
        consumer_key: str,
        certificate_pem: str | bytes,
        usernames: Iterable[str] = (),
        kind: str = "connected",
        sandbox: bool = False,
    ) -> auth.App:
        """Register a Connected App (``kind="connected"``) or External Client App (``"external"``).

        Usernames are pre-authorised for the app and created as active users when unknown.
        """
        names = list(usernames)
        for name in names:
            if name not in self.identity.users:
                self.add_user(name)
        app = auth.make_app(consumer_key, certificate_pem, names, kind, sandbox)
        with self.identity.lock:
            self.identity.apps[consumer_key] = app
        return app

    def add_user(
        self,
        username: str,
        active: bool = True,
        approved: bool = True,
        name: str | None = None,
        inactive_error: str = "authentication failure",
    ) -> auth.User:
        """Create (or update) a user; it is also a ``User`` record, so ``Owner.Name`` works.

        ``approved=False`` answers ``user hasn't approved this consumer``; ``active=False``
        answers ``authentication failure`` (or ``inactive_user`` with that ``inactive_error``).
        """
        existing = self.identity.users.get(username)
        if existing is not None:
            existing.active, existing.approved = active, approved
            existing.inactive_error = inactive_error
            data.load_records(
                self.store, "User", [{"Id": existing.user_id, "IsActive": active}], "", None
            )
            return existing
        display = name or username.split("@")[0].replace(".", " ").title()
        first, _, last = display.partition(" ")
        with self.store.lock:
            (uid,) = data.load_records(
                self.store,
                "User",
                [
                    {
                        "Username": username,
                        "FirstName": first if last else None,
                        "LastName": last or first,
                        "Name": display,
                        "Email": username if "@" in username else None,
                        "IsActive": active,
                    }
                ],
                self.now_datetime(),
                None,
            )
        user = auth.User(username, uid, active, approved, inactive_error, display, username)
        with self.identity.lock:
            self.identity.users[username] = user
        return user

    def load(self, sobject: str, records: Iterable[dict[str, Any]]) -> list[str]:
        """Insert records keyed by field API names (Ids assigned when absent); returns the ids.

        Unknown fields are added to the schema with a type guessed from the values.
        """
        return data.load_records(
            self.store, sobject, records, self.now_datetime(), self.admin.user_id
        )

    def generate_accounts(self, n: int, seed: int = 0) -> None:
        """Append ``n`` realistic Accounts (deterministic per seed; 1M rows in a few seconds)."""
        data.generate_accounts(self.store, n, seed)

    def generate_contacts(self, n: int, seed: int = 0) -> None:
        """Append ``n`` realistic Contacts linked to existing Accounts."""
        data.generate_contacts(self.store, n, seed)

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every stored record of ``sobject`` (soft-deleted ones with ``IsDeleted: True``)."""
        t = self.store.get(sobject)
        if t is None:
            return []
        return [t.row(i) for i in range(t.size) if i not in t.purged]

    def register_apex(self, method: str, path: str, handler: ApexHandler) -> None:
        """Serve ``/services/apexrest/<path>`` (``*`` wildcards allowed) with ``handler``.

        The handler gets the :class:`Request` and returns ``(status, body)``; the body is sent
        as JSON (``bytes`` as is, ``None`` as an empty body).
        """
        self._apex.append((method.upper(), path.strip("/"), handler))

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (tests check that none leaks into logs)."""
        with self.identity.lock:
            return list(self.identity.issued)

    @property
    def received_assertions(self) -> list[str]:
        """Every assertion posted to the token endpoint so far."""
        with self.identity.lock:
            return list(self.identity.assertions)

    def reset_stats(self) -> None:
        self.stats.reset()

    @property
    def ingest_max_bytes(self) -> int:
        """Upload limit per Bulk ingest job (150 MB, like Salesforce; lower it in tests)."""
        return self.bulk.max_upload_bytes

    @ingest_max_bytes.setter
    def ingest_max_bytes(self, value: int) -> None:
        self.bulk.max_upload_bytes = value

    def connection(
        self,
        conn_id: str = "salesforce_jwt_default",
        username: str | None = None,
        consumer_key: str | None = None,
        private_key_pem: str | bytes | None = None,
        passphrase: str | None = None,
        private_key_ref: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """An Airflow connection (``AIRFLOW_CONN_<ID>`` JSON form) pointing at this emulator."""
        del conn_id
        ext: dict[str, Any] = {}
        if consumer_key is None and len(self.identity.apps) == 1:
            consumer_key = next(iter(self.identity.apps))
        if username is None and consumer_key in self.identity.apps:
            approved = sorted(self.identity.apps[consumer_key].usernames)
            username = approved[0] if len(approved) == 1 else None
        if consumer_key is not None:
            ext["consumer_key"] = consumer_key
        if private_key_pem is not None:
            ext["private_key"] = (
                private_key_pem.decode() if isinstance(private_key_pem, bytes) else private_key_pem
            )
        if private_key_ref is not None:
            ext["private_key_ref"] = private_key_ref
        ext.update(extra)
        return {
            "conn_type": "salesforce_jwt",
            "host": self.url,
            "login": username,
            "password": passphrase,
            "extra": ext,
        }

    # ------------------------------------------------------------------ request handling
    def handle(self, req: Request) -> tuple[Response, int | None]:
        """Answer one request (called by the transport for every request it parses).

        Returns the response and, when a connection-reset fault fires, how many bytes of it to
        send before resetting the connection.
        """
        self.stats.record_request(req.method, req.path)
        fired = self.faults.take(req.method, req.path)
        if fired.delay:
            sleep(fired.delay, lambda: self._stopping)
        if fired.fail is not None:
            self.stats.increment("faults_injected")
            return self._finish(req, fault_response(fired.fail)), None
        try:
            resp = self._route(req)
        except ErrorReply as exc:
            resp = exc.response()
        except Exception as exc:  # an emulator bug must still answer like a server
            resp = ErrorReply(
                500, "UNKNOWN_EXCEPTION", f"emulator error: {type(exc).__name__}: {exc}"
            ).response()
        reset = None
        if fired.reset is not None:
            self.stats.increment("faults_injected")
            reset = fired.reset.after_bytes
        return self._finish(req, resp), reset

    def _finish(self, req: Request, resp: Response) -> Response:
        self.stats.record_status(resp.status)
        if self.faults.repeating_cursors or self.faults.record_count is not None:
            resp = self._hostile_cursor(req, resp)
        if req.path.startswith(("/services/data/v", "/services/apexrest")):
            used = self.daily_api_limit if self.faults.quota_exhausted else self.stats.api_calls
            resp.headers.append(("Sforce-Limit-Info", f"api-usage={used}/{self.daily_api_limit}"))
        return resp

    def _hostile_cursor(self, req: Request, resp: Response) -> Response:
        """``faults.repeat_cursors`` and ``faults.wrong_record_count`` applied to an answer."""
        if resp.status != 200:
            return resp
        locator = req.query.get("locator")
        if self.faults.repeating_cursors and locator and req.path.endswith("/results"):
            resp.headers = [(k, v) for k, v in resp.headers if k != "Sforce-Locator"]
            resp.headers.append(("Sforce-Locator", locator))
        elif self.faults.repeating_cursors and _QUERY_PAGE_RE.search(req.path):
            resp.body = _NEXT_URL_RE.sub(f'"nextRecordsUrl":"{req.path}"'.encode(), resp.body)
        if self.faults.record_count is not None and req.path.endswith("/results"):
            resp.headers = [(k, v) for k, v in resp.headers if k != "Sforce-NumberOfRecords"]
            resp.headers.append(("Sforce-NumberOfRecords", str(self.faults.record_count)))
        return resp

    def _authenticate(self, req: Request) -> None:
        if self.faults.take_revocation():
            self.identity.revoke_all()
        session = self.identity.session(auth.bearer(req))
        timeout = self.session_timeout
        if session is not None and timeout is not None and self.now() - session.issued_at > timeout:
            with self.identity.lock:
                self.identity.sessions.pop(session.token, None)
            session = None
        if session is None:
            raise ErrorReply(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.faults.quota_exhausted or self.stats.api_calls >= self.daily_api_limit:
            raise ErrorReply(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        req.session = session
        self.stats.increment("api_calls")

    def _route(self, req: Request) -> Response:
        path = req.path
        if path == "/services/oauth2/token":
            return auth.token_endpoint(self, req)
        if path == "/services/oauth2/revoke":
            return auth.revoke_endpoint(self, req)
        if path == "/services/oauth2/userinfo" or path.startswith("/id/"):
            return self._identity(req)
        if path == "/__emulator__/stats":
            return Response.json(200, self.stats.to_dict())
        if path.rstrip("/") == "/services/data":
            return rest.versions(self)
        if path.startswith("/services/data/"):
            return self._data(req)
        if path.startswith("/services/apexrest/"):
            self._authenticate(req)
            return self._apex_call(req)
        raise ErrorReply(404, "NOT_FOUND", rest.NOT_FOUND)

    def _identity(self, req: Request) -> Response:
        session = self.identity.session(auth.bearer(req))
        if session is None:
            return Response(403, b"Bad_OAuth_Token", "text/plain;charset=UTF-8")
        if req.path.startswith("/id/"):
            parts = req.path.strip("/").split("/")
            if len(parts) != 3 or parts[1] != self.org_id or parts[2] != session.user.user_id:
                return Response(403, b"Bad_Id", "text/plain;charset=UTF-8")
            return Response.json(200, auth.identity_document(self, session, userinfo=False))
        return Response.json(200, auth.identity_document(self, session, userinfo=True))

    def _data(self, req: Request) -> Response:
        parts = [p for p in req.path[len("/services/data/") :].split("/") if p]
        m = _VERSION_RE.match(parts[0]) if parts else None
        if m is None or m.group(1) not in self.api_versions:
            raise ErrorReply(404, "NOT_FOUND", rest.NOT_FOUND)
        req.version = m.group(1)
        self._authenticate(req)
        parts = parts[1:]
        if not parts:
            return Response.json(200, rest.resources(req.version))
        head = parts[0]
        if head == "limits":
            return Response.json(200, rest.limits(self))
        if head == "sobjects":
            return rest.sobjects(self, req, parts)
        if head in ("query", "queryAll"):
            return rest.query(self, req, parts)
        if head == "composite":
            return rest.collections(self, req, parts)
        if head == "jobs":
            return self.bulk.handle(req, parts)
        raise ErrorReply(404, "NOT_FOUND", rest.NOT_FOUND)

    def _apex_call(self, req: Request) -> Response:
        sub = req.path[len("/services/apexrest/") :].strip("/")
        for method, pattern, handler in self._apex:
            if method in (req.method, "*") and fnmatch.fnmatchcase(sub, pattern):
                try:
                    status, body = handler(req)
                except ErrorReply:
                    raise
                except Exception as exc:
                    raise ErrorReply(500, "APEX_ERROR", f"{type(exc).__name__}: {exc}") from None
                if body is None:
                    return Response.empty(status)
                if isinstance(body, bytes):
                    return Response(status, body, "application/json;charset=UTF-8")
                return Response.json(status, body)
        raise ErrorReply(404, "NOT_FOUND", "Could not find a match for URL")


__all__ = ["OpenConnections", "SalesforceEmulator", "Stats"]
