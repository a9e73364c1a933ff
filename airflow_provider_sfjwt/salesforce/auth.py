"""The JWT assertion, the token exchange and the process-wide token cache.

Salesforce's JWT Bearer response has no ``expires_in`` and no refresh token: a token lives for the
org's session timeout or until revoked. So the cache keeps a token until Salesforce rejects it
(401 ``INVALID_SESSION_ID``), then exchanges again, once, for every thread that saw the same
rejection (single flight). The process-wide cache also shares tokens with the other processes of
the machine through an encrypted file (:mod:`.token_store`), since Airflow runs each task in a
process of its own: a DAG of many tasks logs in once, far from ``LOGIN_RATE_EXCEEDED``.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import (
    CLOCK_SKEW_TOLERANCE,
    AuthenticationError,
    InvalidInputError,
    TokenEndpointError,
    TokenEndpointUnreachableError,
    UntrustedAnswerError,
    classify_token_error,
    quoted,
)
from .retry import Retryable, RetryPolicy
from .settings import ConnectionSettings, SecretSink, instance_url_problem
from .token_store import TokenStore, default_directory

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 180
"""Salesforce wants ``exp`` within 3 minutes of its own clock."""
DEFAULT_ASSERTION_LIFETIME = 150
"""Short enough to stay under the maximum with some clock drift, long enough for a slow network."""
TOKEN_PATH = "/services/oauth2/token"


def build_assertion(
    private_key: rsa.RSAPrivateKey,
    consumer_key: str,
    username: str,
    audience: str,
    lifetime: int = DEFAULT_ASSERTION_LIFETIME,
    now: float | None = None,
) -> str:
    """Sign a fresh RS256 assertion: iss = consumer key, sub = username, aud, exp."""
    if not 0 < lifetime <= MAX_ASSERTION_LIFETIME:
        raise InvalidInputError(
            f"assertion lifetime must be 1..{MAX_ASSERTION_LIFETIME} s, got {lifetime}"
        )
    issued = int(now if now is not None else time.time())
    claims = {"iss": consumer_key, "sub": username, "aud": audience, "exp": issued + lifetime}
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"typ": "JWT"})


@dataclass(frozen=True, repr=False)
class AccessToken:
    """A token from the token endpoint. Its repr never shows the token itself."""

    access_token: str
    instance_url: str
    id_url: str = ""
    scope: str = ""
    issued_at: str = ""
    token_type: str = "Bearer"
    audience: str = ""
    obtained_at: float = field(default_factory=time.time)

    def __repr__(self) -> str:
        return f"AccessToken(instance_url={self.instance_url!r}, scope={self.scope!r}, audience={self.audience!r})"


def server_clock_skew(response: requests.Response) -> float | None:
    """Seconds by which the server's Date header is ahead of (positive) or behind this machine."""
    date = response.headers.get("Date")
    if not date:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    return server - time.time()


@dataclass(eq=False)
class TokenExchanger:
    """Does one token exchange, trying the audience candidates in order.

    ``last_clock_skew`` is how far Salesforce's clock (its ``Date`` header) was from this
    machine's at the last answer, for error messages about expired assertions.
    """

    settings: ConnectionSettings
    session: requests.Session
    retry: RetryPolicy
    on_secret: SecretSink | None = None
    lifetime: int = DEFAULT_ASSERTION_LIFETIME
    last_clock_skew: float | None = field(default=None, init=False)

    @property
    def token_url(self) -> str:
        return self.settings.login_url + TOKEN_PATH

    def exchange(self, audiences: tuple[str, ...]) -> AccessToken:
        """Exchange with the first audience; on an answer that can mean a wrong audience, try the
        next (there is a next only for a derived audience, see ``audience_candidates``).

        When every audience fails, the error raised is the most telling one: the last that is not
        a plain audience rejection (``audience is invalid``, ``app_not_found``), so such a
        rejection from one candidate does not hide another candidate's answer that reached the
        app (for example ``user hasn't approved this consumer`` from the audience it accepts).
        """
        tried: list[str] = []
        failures: list[AuthenticationError] = []
        for audience in audiences:
            tried.append(audience)
            try:
                return self._exchange_once(audience)
            except AuthenticationError as exc:
                failures.append(exc)
                if not exc.may_mean_wrong_audience:
                    break
                log.info("Audience %s was rejected (%s); trying the next one", audience, exc.error)
        telling = next((f for f in reversed(failures) if not f.audience_related), failures[-1])
        raise telling.with_context(audiences_tried=tried, clock_skew=self.last_clock_skew) from None

    def _exchange_once(self, audience: str) -> AccessToken:
        """One exchange with ``audience``: connection failures, 5xx and 429 are tried again."""
        response = self.retry.run("Token endpoint", lambda number: self._post(audience))
        return self._parse(response, audience)

    def _post(self, audience: str) -> requests.Response:
        """POST a fresh assertion (Salesforce treats assertions as single-use); a failure worth
        another try raises :class:`Retryable`."""
        s = self.settings
        assertion = build_assertion(
            s.load_private_key(), s.consumer_key, s.username, audience, self.lifetime
        )
        if self.on_secret:
            self.on_secret(assertion)
        try:
            response = self.session.post(
                self.token_url,
                data={"grant_type": GRANT_TYPE, "assertion": assertion},
                headers={"Accept": "application/json"},
                timeout=self.settings.request_timeout,
                verify=self.settings.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise self._unreachable("TLS verification failed", exc, audience) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,  # answer cut off mid-body
        ) as exc:
            kind = (
                "timed out" if isinstance(exc, requests.exceptions.Timeout) else "could not connect"
            )
            unreachable = self._unreachable(kind, exc, audience)
            raise Retryable(
                f"unreachable ({type(exc).__name__})", exhausted=lambda tries: unreachable
            ) from None
        self.last_clock_skew = server_clock_skew(response)
        status = response.status_code
        if status >= 500 or status == 429:
            raise Retryable(
                f"HTTP {status}",
                retry_after=response.headers.get("Retry-After"),
                exhausted=lambda tries: self._refusal(response, audience),
            )
        return response

    def _unreachable(self, what: str, exc: Exception, audience: str) -> AuthenticationError:
        return TokenEndpointUnreachableError(
            f"JWT token exchange with {self.token_url} failed: {what} ({type(exc).__name__}).",
            token_url=self.token_url,
            audiences_tried=(audience,),
        )

    def _parse(self, response: requests.Response, audience: str) -> AccessToken:
        """The token from a successful answer; any other answer raises :meth:`_refusal`."""
        body = _json_object(response)
        if (
            response.status_code == 200
            and body is not None
            and body.get("access_token")
            and body.get("instance_url")
        ):
            problem = instance_url_problem(body["instance_url"], self.settings)
            if problem is not None:
                raise UntrustedAnswerError(
                    f"JWT token exchange with {self.token_url} answered instance_url "
                    f"{quoted(repr(body['instance_url']), 200)}, which {problem}. The access "
                    "token was not used: every API call would carry it there.",
                    token_url=self.token_url,
                    status=response.status_code,
                    audiences_tried=(audience,),
                    clock_skew=self.last_clock_skew,
                )
            token = AccessToken(
                access_token=str(body["access_token"]),
                instance_url=str(body["instance_url"]).rstrip("/"),
                id_url=str(body.get("id", "")),
                scope=str(body.get("scope", "")),
                issued_at=str(body.get("issued_at", "")),
                token_type=str(body.get("token_type", "Bearer")),
                audience=audience,
            )
            skew = self.last_clock_skew
            if skew is not None and abs(skew) > CLOCK_SKEW_TOLERANCE:
                log.warning(
                    "Salesforce's clock differs from this machine's by %.0f s; JWT exchanges will "
                    "start failing when it passes 3 minutes. Fix NTP on this machine.",
                    skew,
                )
            return token
        raise self._refusal(response, audience)

    def _refusal(self, response: requests.Response, audience: str) -> AuthenticationError:
        """The typed error for an answer that carries no token, with Salesforce's words."""
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        body = _json_object(response)
        if body is None:
            what = (
                "an HTML page"
                if "html" in content_type.lower() or response.text.lstrip().startswith("<")
                else "a body that is not JSON"
            )
            return TokenEndpointError(
                f"JWT token exchange with {self.token_url} failed: HTTP {status} with {what} "
                f"(Content-Type {content_type or 'none'}).",
                token_url=self.token_url,
                status=status,
                audiences_tried=(audience,),
                clock_skew=self.last_clock_skew,
            )
        error = quoted(str(body.get("error") or ""))
        description = quoted(str(body.get("error_description") or ""))
        if status >= 500 or not error:
            cls: type[AuthenticationError] = TokenEndpointError
        else:
            cls = classify_token_error(error, description)
        said = (
            f"{error}: {description}"
            if error
            else f"unexpected JSON without 'error' ({', '.join(sorted(body))[:80]})"
        )
        return cls(
            f"JWT token exchange with {self.token_url} failed: HTTP {status} {said}",
            token_url=self.token_url,
            status=status,
            error=error or None,
            description=description or None,
            audiences_tried=(audience,),
            clock_skew=self.last_clock_skew,
        )


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or ``None`` when it is not one (HTML, garbage, a list)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


CacheKey = tuple[str, str, str, str]


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: AccessToken | None = None
    audience: str | None = None  # the audience that worked, remembered for the process


class TokenCache:
    """Thread-safe, single-flight token cache.

    With ``shared=True`` (the process-wide :data:`TOKEN_CACHE`) a connection whose
    ``token_cache`` is ``file`` also shares its token with the machine's other processes. Private
    caches (``sfjwt doctor``, ``sfjwt token``, the connection test) always exchange for real.
    """

    def __init__(self, shared: bool = False) -> None:
        self._slots: dict[CacheKey, _Slot] = {}
        self._guard = threading.Lock()
        self._stores: dict[Path, TokenStore] = {}
        self.shared = shared
        self.exchanges = 0

    @staticmethod
    def key(settings: ConnectionSettings) -> CacheKey:
        return (
            settings.login_url,
            settings.consumer_key,
            settings.username,
            settings.audience or "",
        )

    def _slot(self, key: CacheKey) -> _Slot:
        with self._guard:
            return self._slots.setdefault(key, _Slot())

    def get(self, settings: ConnectionSettings, exchanger: TokenExchanger) -> AccessToken:
        slot = self._slot(self.key(settings))
        token = slot.token
        if token is not None:
            return token
        with slot.lock:
            if slot.token is None:
                slot.token = self._load_or_exchange(slot, settings, exchanger, None)
            return slot.token

    def refresh(
        self, settings: ConnectionSettings, exchanger: TokenExchanger, stale: AccessToken | None
    ) -> AccessToken:
        """Replace ``stale`` with a new token; threads holding the same stale token share one exchange."""
        slot = self._slot(self.key(settings))
        with slot.lock:
            if slot.token is not None and slot.token is not stale:
                return slot.token
            slot.token = None
            slot.token = self._load_or_exchange(slot, settings, exchanger, stale)
            return slot.token

    def _store(self, settings: ConnectionSettings) -> TokenStore | None:
        if not self.shared or settings.token_cache != "file":
            return None
        directory = default_directory()
        with self._guard:
            return self._stores.setdefault(directory, TokenStore(directory))

    def _load_or_exchange(
        self,
        slot: _Slot,
        settings: ConnectionSettings,
        exchanger: TokenExchanger,
        stale: AccessToken | None,
    ) -> AccessToken:
        """The machine's stored token unless it is missing or the one just rejected (``stale``),
        else a new exchange, stored for the others; under the store's lock, so processes that
        start together share one exchange."""
        store = self._store(settings)
        if store is None:
            return self._exchange(slot, settings, exchanger)
        with store.session(settings) as shared:
            if shared is None:  # unsafe directory or a stuck lock: this process logs in alone
                return self._exchange(slot, settings, exchanger)
            stored = shared.load()
            if (
                stored is not None
                and (stale is None or stored.access_token != stale.access_token)
                # stored under an older instance_domains: checked again, as a fresh answer is
                and instance_url_problem(stored.instance_url, settings) is None
            ):
                slot.audience = stored.audience
                return stored
            token = self._exchange(slot, settings, exchanger)
            shared.save(token)
            return token

    def _exchange(
        self, slot: _Slot, settings: ConnectionSettings, exchanger: TokenExchanger
    ) -> AccessToken:
        candidates = settings.audiences
        if slot.audience in candidates:
            candidates = (slot.audience,) + tuple(a for a in candidates if a != slot.audience)
        with self._guard:
            self.exchanges += 1
        token = exchanger.exchange(candidates)
        slot.audience = token.audience
        return token

    def clear(self) -> None:
        """Forget every token and audience (stored files too), and zero the exchange counter."""
        with self._guard:
            self._slots.clear()
            for store in self._stores.values():
                store.clear()
            self._stores.clear()
            self.exchanges = 0


TOKEN_CACHE = TokenCache(shared=True)
"""The one cache of this process, shared by every hook, thread and client (and, through the
token store, by the other processes of the machine)."""


class JWTAuth:
    """Hands out access tokens for one connection; the client calls ``token()`` and ``refresh()``.

    Every token handed out is first given to ``on_secret`` (Airflow's masker), whichever path
    produced it: a fresh exchange, this process's cache (filled by another client, maybe one
    without a masker), or the token store (filled by another process). Registering here, at
    the one exit, rather than where tokens are made, is what keeps a task that reuses a token
    from logging it in clear.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        session: requests.Session,
        retry: RetryPolicy | None = None,
        on_secret: SecretSink | None = None,
        cache: TokenCache = TOKEN_CACHE,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.on_secret = on_secret
        self._registered = ""  # the last token given to on_secret
        self.exchanger = TokenExchanger(
            settings, session, retry or RetryPolicy(settings.max_retries), on_secret
        )

    def token(self) -> AccessToken:
        return self._hand_out(self.cache.get(self.settings, self.exchanger))

    def refresh(self, stale: AccessToken | None) -> AccessToken:
        return self._hand_out(self.cache.refresh(self.settings, self.exchanger, stale))

    def _hand_out(self, token: AccessToken) -> AccessToken:
        """Register ``token`` with the masker once, before anyone can log it."""
        if self.on_secret is not None and token.access_token != self._registered:
            self.on_secret(token.access_token)
            self._registered = token.access_token
        return token

    @property
    def last_clock_skew(self) -> float | None:
        return self.exchanger.last_clock_skew
