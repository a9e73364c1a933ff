"""The OAuth 2.0 JWT bearer token endpoint and the emulated org's apps, users and sessions.

Checks follow what Salesforce does and answers, in this order: grant type, assertion shape,
``iss`` (the app), signature against the app's certificate(s), ``aud`` for the app kind,
``exp`` within three minutes of the server clock (which ``clock_skew`` moves), then ``sub``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509

from .transport import Request, Response

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCE = "https://login.salesforce.com"
TEST_AUDIENCE = "https://test.salesforce.com"
EXP_MAX_AHEAD = 180
EXP_LEEWAY = 5


AUDIENCE_ERRORS = {
    "audience_invalid": ("invalid_grant", "audience is invalid"),
    "app_not_found": ("app_not_found", "External client app is not installed in this org"),
    "user_not_approved": ("invalid_grant", "user hasn't approved this consumer"),
}
"""How an app can answer an ``aud`` it does not accept. Salesforce documents none of this:
``audience is invalid`` is the usual answer, ``app_not_found`` is what External Client Apps are
reported to say since Spring '26, and ``user hasn't approved this consumer`` is reported for a
wrong ``aud`` by users of the sf CLI, restforce and simple-salesforce."""


@dataclass
class App:
    """A Connected App or External Client App with the JWT bearer flow enabled.

    ``audience_error`` picks the answer to an audience the app does not accept (a key of
    :data:`AUDIENCE_ERRORS`); by default ``audience_invalid`` for a Connected App and
    ``app_not_found`` for an External Client App.
    """

    consumer_key: str
    certificates: list[x509.Certificate]
    usernames: set[str]
    kind: str = "connected"
    sandbox: bool = False
    audience_error: str | None = None

    def add_certificate(self, certificate_pem: str | bytes) -> None:
        """Upload another certificate (as during a rotation: both verify until one is removed)."""
        self.certificates.append(_load_cert(certificate_pem))

    def set_certificate(self, certificate_pem: str | bytes) -> None:
        """Replace the uploaded certificate(s)."""
        self.certificates = [_load_cert(certificate_pem)]

    def approve(self, username: str) -> None:
        self.usernames.add(username)

    def revoke_user(self, username: str) -> None:
        self.usernames.discard(username)


@dataclass
class User:
    username: str
    user_id: str
    active: bool = True
    approved: bool = True
    inactive_error: str = "authentication failure"  # or "inactive_user"
    name: str = ""
    email: str = ""


@dataclass
class Session:
    token: str
    user: User
    app: App
    issued_at: float


@dataclass
class Identity:
    """Apps, users and live sessions of the org; guarded by one lock."""

    org_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    apps: dict[str, App] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)

    def session(self, token: str) -> Session | None:
        return self.sessions.get(token)

    def revoke_all(self) -> None:
        with self.lock:
            self.sessions.clear()


def _load_cert(pem: str | bytes) -> x509.Certificate:
    data = pem.encode() if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificate(data)


def make_app(
    consumer_key: str,
    certificate_pem: str | bytes,
    usernames: Iterable[str],
    kind: str,
    sandbox: bool,
    audience_error: str | None = None,
) -> App:
    if kind not in ("connected", "external"):
        raise ValueError("kind must be 'connected' or 'external'")
    if audience_error is not None and audience_error not in AUDIENCE_ERRORS:
        raise ValueError(f"audience_error must be one of {', '.join(AUDIENCE_ERRORS)}")
    certificates = [_load_cert(certificate_pem)]
    return App(consumer_key, certificates, set(usernames), kind, sandbox, audience_error)


def _oauth_error(status: int, error: str, description: str) -> Response:
    return Response.json(status, {"error": error, "error_description": description})


def _form(req: Request) -> dict[str, str]:
    params = dict(req.query)
    ctype = req.headers.get("Content-Type", "").lower()
    body = req.body
    if body and ("x-www-form-urlencoded" in ctype or not ctype):
        with contextlib.suppress(UnicodeDecodeError):
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
    return params


def token_endpoint(emu: SalesforceEmulator, req: Request) -> Response:
    """POST /services/oauth2/token (JWT bearer grant only)."""
    emu.stats.increment("token_requests")
    if req.method != "POST":
        return _oauth_error(400, "invalid_request", "must use HTTP POST")
    planned = emu.faults.take_token_answer()
    if planned is not None and planned.body is not None:
        return Response(planned.status, planned.body, "application/json;charset=UTF-8")
    injected = emu.faults.take_token_error()
    if injected is not None:
        if injected.html:
            html = (
                "<html><head><title>Salesforce - Maintenance</title></head><body>"
                f"<h1>{injected.error}</h1><p>{injected.description}</p></body></html>"
            )
            return Response(injected.status, html.encode(), "text/html;charset=UTF-8")
        return _oauth_error(injected.status, injected.error, injected.description)
    params = _form(req)
    if params.get("grant_type") != JWT_GRANT:
        return _oauth_error(400, "unsupported_grant_type", "grant type not supported")
    assertion = params.get("assertion", "")
    with emu.identity.lock:
        emu.identity.assertions.append(assertion)
    result = _check_assertion(emu, assertion)
    if isinstance(result, Response):
        return result
    user, app = result
    token = f"{emu.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
    now = emu.now()
    with emu.identity.lock:
        emu.identity.sessions[token] = Session(token, user, app, now)
        emu.identity.issued.append(token)
    emu.stats.increment("token_exchanges")
    issued = str(int(now * 1000))
    ident = f"{emu.url}/id/{emu.org_id}/{user.user_id}"
    sig = base64.b64encode(
        hmac.new(emu.org_id.encode(), (ident + issued).encode(), hashlib.sha256).digest()
    ).decode()
    return Response.json(
        200,
        {
            "access_token": token,
            "scope": "api",
            "instance_url": emu.url if planned is None else planned.instance_url,
            "id": ident,
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": sig,
        },
    )


def _check_assertion(emu: SalesforceEmulator, assertion: str) -> tuple[User, App] | Response:
    invalid = _oauth_error(400, "invalid_grant", "invalid assertion")
    try:
        header = jwt.get_unverified_header(assertion)
        claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return invalid
    app = emu.identity.apps.get(str(claims.get("iss", "")))
    if app is None:
        return _oauth_error(400, "invalid_client_id", "client identifier invalid")
    if header.get("alg") != "RS256":
        return invalid
    verified = False
    for cert in app.certificates:
        try:
            jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            verified = True
            break
        except jwt.PyJWTError:
            continue
    if not verified:
        return invalid
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    my_domain = emu.url.rstrip("/")
    if app.kind == "external":
        allowed = {my_domain}
        default_error = "app_not_found"
    else:
        allowed = {TEST_AUDIENCE if app.sandbox else LOGIN_AUDIENCE, my_domain}
        default_error = "audience_invalid"
    if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in auds):
        return _oauth_error(400, *AUDIENCE_ERRORS[app.audience_error or default_error])
    exp = claims.get("exp")
    now = emu.now()
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return invalid
    if exp <= now or exp > now + EXP_MAX_AHEAD + EXP_LEEWAY:
        return invalid
    username = str(claims.get("sub", ""))
    user = emu.identity.users.get(username)
    if user is None or not user.approved or username not in app.usernames:
        return _oauth_error(400, "invalid_grant", "user hasn't approved this consumer")
    if not user.active:
        if user.inactive_error == "inactive_user":
            return _oauth_error(400, "inactive_user", "user is inactive")
        return _oauth_error(400, "invalid_grant", "authentication failure")
    return user, app


def revoke_endpoint(emu: SalesforceEmulator, req: Request) -> Response:
    """POST /services/oauth2/revoke token=...: ends one session."""
    token = _form(req).get("token", "")
    with emu.identity.lock:
        found = emu.identity.sessions.pop(token, None)
    if found is None:
        return _oauth_error(400, "unsupported_token_type", "this token type is not supported")
    return Response(200, b"", None)


def bearer(req: Request) -> str:
    value = req.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""


def identity_document(emu: SalesforceEmulator, session: Session, userinfo: bool) -> dict[str, Any]:
    u = session.user
    ident = f"{emu.url}/id/{emu.org_id}/{u.user_id}"
    urls = {
        "rest": f"{emu.url}/services/data/v{{version}}/",
        "sobjects": f"{emu.url}/services/data/v{{version}}/sobjects/",
        "query": f"{emu.url}/services/data/v{{version}}/query/",
        "profile": f"{emu.url}/{u.user_id}",
    }
    first, _, last = (u.name or u.username).partition(" ")
    # The identity URL and OpenID Connect's userinfo tell the same facts under different names:
    # (identity URL name, userinfo name, value), "" where one answer does not carry the fact.
    facts: list[tuple[str, str, Any]] = [
        ("id", "sub", ident),
        ("asserted_user", "", True),
        ("user_id", "user_id", u.user_id),
        ("organization_id", "organization_id", emu.org_id),
        ("username", "preferred_username", u.username),
        ("nick_name", "nickname", u.username.split("@")[0]),
        ("display_name", "name", u.name or u.username),
        ("email", "email", u.email or u.username),
        ("email_verified", "email_verified", True),
        ("first_name", "given_name", first),
        ("last_name", "family_name", last or first),
        ("timezone", "zoneinfo", "Europe/London"),
        ("active", "active", u.active),
        ("user_type", "user_type", "STANDARD"),
        ("language", "language", "en_US"),
        ("locale", "locale", "en_GB"),
        ("utcOffset", "utcOffset", 0),
        ("", "updated_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(emu.now()))),
        ("urls", "urls", urls),
    ]
    document: dict[str, Any] = {}
    for identity_name, userinfo_name, value in facts:
        name = userinfo_name if userinfo else identity_name
        if name:
            document[name] = value
    return document
