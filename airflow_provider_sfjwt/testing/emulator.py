"""``SalesforceEmulator``: a local, threaded stand-in for one Salesforce org.

It speaks the wire protocol of the real service (token endpoint, REST, sObject Collections, Bulk
API 2.0, Apex REST) closely enough that unmodified clients work against it, keeps counters that
tests assert on (one token exchange per process, no duplicated page), and injects the failures
production pipelines meet (see :mod:`.faults`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import auth, data, query, replication, rest, sobject_collections
from .bulk import Bulk
from .cache import BlockCache
from .controls import OrgData
from .faults import Faults, fault_response
from .ids import ORG_PREFIX, make_id
from .latency import Latency
from .stats import Stats
from .store import Store, now_datetime
from .tls import make_tls_files, server_context
from .transport import ErrorReply, OpenConnections, Request, Response, Server, serve, sleep

OLDEST_VERSION = 31
"""Salesforce serves API versions 31.0 to the current one; 7.0 to 30.0 are retired (410 GONE)."""
CURRENT_VERSION = 68
DEFAULT_API_VERSIONS = tuple(f"{v}.0" for v in range(OLDEST_VERSION, CURRENT_VERSION + 1))
_VERSION_RE = re.compile(r"^v(\d+\.\d)$")
_QUERY_PAGE_RE = re.compile(r"/query(All)?/[^/]+-\d+$")
_NEXT_URL_RE = re.compile(rb'"nextRecordsUrl":"[^"]*"')
ApexHandler = Callable[[Request], "tuple[int, Any]"]

NOT_EMULATED = {
    "search": "SOSL search (/search)",
    "parameterizedSearch": "SOSL search (/parameterizedSearch)",
    "tooling": "the Tooling API (/tooling)",
    "analytics": "the Reports and Dashboards API (/analytics)",
    "actions": "invocable actions (/actions)",
    "ui-api": "the User Interface API (/ui-api)",
    "chatter": "Connect REST API (/chatter)",
    "connect": "Connect REST API (/connect)",
    "process": "process rules and approvals (/process)",
    "recent": "recently viewed items (/recent)",
    "graphql": "the GraphQL API (/graphql)",
    "consent": "the Consent API (/consent)",
}
"""REST resources a client may call that the emulator does not emulate: answered 501 with a
message naming the feature, never a bare 404 a client could take for a wrong URL."""


def not_emulated(feature: str) -> ErrorReply:
    return ErrorReply(
        501, "NOT_IMPLEMENTED", f"The Salesforce emulator does not emulate {feature}."
    )


@dataclass(eq=False, repr=False)  # identity semantics: an emulator is a running server
class SalesforceEmulator(OrgData):
    """A local Salesforce org over HTTP(S) for tests, benchmarks and offline development.

    Use as a context manager (``with SalesforceEmulator() as emu: ... emu.url``) or call
    :meth:`start` / :meth:`stop`. Data controls (``load``, ``delete_records``, ...) are
    documented in :class:`.controls.OrgData`.

    The constructor's settings are the fields below. Each stays an attribute of the same name,
    and the ones the request handlers read (page size, limits, Bulk pacing, gzip, session
    timeout, latency) may be changed while the emulator serves, between two requests.
    """

    tls: bool = False
    """Serve https with a certificate signed by a throwaway CA (``ca_cert_path``), for clients
    that refuse plain http."""
    host: str = "127.0.0.1"
    port: int = 0
    """``0`` lets the system pick a free port; after :meth:`start` it is the bound one."""
    page_size: int = 2000
    """Records per REST query page (Salesforce's default batch size)."""
    api_versions: Iterable[str] = DEFAULT_API_VERSIONS
    """Versions ``/services/data`` lists and serves; another answers 404, and one below
    ``OLDEST_VERSION`` 410, as Salesforce answers a retired version."""
    daily_api_limit: int = 100_000
    """``DailyApiRequests.Max`` in ``/limits``."""
    bulk_poll_transitions: int = 2
    """Status polls a Bulk API 2.0 job takes to finish: counted, not timed, so tests stay fast
    and make the same API calls on every run."""
    bulk_processing_seconds: float = 0.0
    """A minimum time a Bulk job runs besides the polls, for clients that must wait for real."""
    gzip: bool = False
    """Compress answers for clients that accept gzip, as Salesforce does. Off by default, so a
    benchmark on plain HTTP measures the client's own work rather than zlib's; a cached block
    is compressed once and kept, so with it on the emulator stays cheaper than the client."""
    serialize_cache_mb: int = 512
    """Megabytes of serialised REST pages and Bulk result chunks kept for repeated requests;
    read once, when the emulator is built."""
    session_timeout: float | None = None
    """Seconds an access token stays valid; ``None``: until revoked."""
    latency: Latency = field(default_factory=Latency)
    """Network round trips and server time per page (see :mod:`.latency`)."""

    def __post_init__(self) -> None:
        self.api_versions = tuple(self.api_versions)
        self.latency = self.latency or Latency()  # None, as callers may pass: no latency
        self.clock_skew: float = 0.0
        self.org_id = make_id(ORG_PREFIX, 7)
        self.store = Store()
        self.identity = auth.Identity(self.org_id)
        self.stats = Stats()
        self.faults = Faults()
        self.cursors = query.Cursors()
        self.replication_id_limit = replication.MAX_IDS
        self.bulk = Bulk(self)
        self.cache = BlockCache(self.serialize_cache_mb * 1024 * 1024)
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

    def pause(self, seconds: float) -> None:
        """Hold the calling server thread for ``seconds``, less if the emulator stops meanwhile."""
        sleep(seconds, lambda: self._stopping)

    # ------------------------------------------------------------------ serialisation cache
    def _generation(self, key: Any) -> tuple[int, ...]:
        """Write versions of the tables a cached block was built from (``key[1]``)."""
        return tuple(t.version if (t := self.store.get(n)) else -1 for n in key[1])

    def cached_block(
        self, kind: str, q: Any, rows: Any, extra: tuple[Any, ...], make: Callable[[], str]
    ) -> bytes:
        """Serialised rows, UTF-8: from the cache when ``rows`` is a plain table range, else
        ``make()`` encoded.

        Formula values change without a write (a parent renamed, a day passed): never cached."""

        def encoded() -> bytes:
            return make().encode()

        if (
            not isinstance(rows, range)
            or rows.step != 1
            or any(r.target.calculated for r in q.fields)
        ):
            return encoded()
        names = (q.table.name, *sorted({r.parent.name for r in q.fields if r.parent is not None}))
        key = (kind, names, tuple(r.name for r in q.fields), extra, rows.start, rows.stop)
        return self.cache.get_or_make(key, self._generation(key), encoded, self._generation)

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
        audience_error: str | None = None,
    ) -> auth.App:
        """Register a Connected App (``kind="connected"``) or External Client App (``"external"``).

        Usernames are pre-authorised for the app and created as active users when unknown.
        ``audience_error`` chooses how the app refuses an audience it does not accept:
        ``"audience_invalid"``, ``"app_not_found"`` or ``"user_not_approved"`` (see
        :data:`airflow_provider_sfjwt.testing.auth.AUDIENCE_ERRORS`).
        """
        names = list(usernames)
        for name in names:
            if name not in self.identity.users:
                self.add_user(name)
        app = auth.make_app(consumer_key, certificate_pem, names, kind, sandbox, audience_error)
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
        rtt = server = 0.0
        if self.latency.active and not req.path.startswith("/__emulator__/"):
            rtt = self.latency.rtt
            server = self.latency.server_seconds(req.method, req.path)
        fired = self.faults.take(req.method, req.path)
        if fired.delay:
            sleep(fired.delay, lambda: self._stopping)
        if fired.fail is not None:
            self.pause(rtt + server)
            self.stats.increment("faults_injected")
            return self._finish(req, fault_response(fired.fail)), None
        started = time.monotonic()
        try:
            resp = self._route(req)
        except ErrorReply as exc:
            resp = exc.response()
        except Exception as exc:  # an emulator bug must still answer like a server
            resp = ErrorReply(
                500, "UNKNOWN_EXCEPTION", f"emulator error: {type(exc).__name__}: {exc}"
            ).response()
        # The modelled server time is all the server spends: the emulator's own work on the
        # answer (building a 2,000-record page) is part of it. The round trip comes on top.
        self.pause(rtt + max(0.0, server - (time.monotonic() - started)))
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
        if path.startswith("/services/async/"):
            raise not_emulated("Bulk API 1.0 (/services/async); use Bulk API 2.0 (/jobs)")
        if path.startswith("/services/Soap/"):
            raise not_emulated("the SOAP API and the Metadata API (/services/Soap)")
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
        if m is not None and float(m.group(1)) < OLDEST_VERSION:
            raise ErrorReply(
                410,
                "UNSUPPORTED_API_VERSION",
                f"API version {m.group(1)} is retired and no longer available; use version "
                f"{OLDEST_VERSION}.0 or later.",
            )
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
            return query.query(self, req, parts)
        if head == "composite" and parts[1:2] == ["sobjects"]:
            return sobject_collections.handle(self, req, parts)
        if head == "composite":
            raise not_emulated(
                "Composite requests (/composite, /composite/batch, /composite/tree, "
                "/composite/graph); sObject Collections (/composite/sobjects) are emulated"
            )
        if head == "jobs":
            return self.bulk.handle(req, parts)
        if head in NOT_EMULATED:
            raise not_emulated(NOT_EMULATED[head])
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
