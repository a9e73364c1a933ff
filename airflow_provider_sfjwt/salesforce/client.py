"""The REST client: one pooled session, explicit retry and re-authentication policy, streamed SOQL.

Policy, in one place:
- every request carries the cached access token; a 401 ``INVALID_SESSION_ID`` (or the OAuth
  endpoints' 403 ``Bad_OAuth_Token``) triggers one single-flight re-exchange and the *same* request is sent again, so a page of a query is neither
  lost nor fetched twice;
- connection errors, 429 and 5xx are retried with backoff (honouring ``Retry-After``) up to
  ``max_retries`` - but a write that may already have been applied (POST/PATCH/DELETE answered 500,
  502, 504, or cut off mid-flight) is not repeated: Salesforce would create duplicates;
- ``REQUEST_LIMIT_EXCEEDED`` stops at once: the 24 h quota cannot be waited out;
- ``Sforce-Limit-Info`` is read on every response, logged once, and can stop work above a chosen
  share of the daily quota.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .auth import TOKEN_CACHE, AccessToken, JWTAuth, TokenCache
from .errors import (
    ApiError,
    InvalidInputError,
    QuotaGuardError,
    RequestLimitExceededError,
    RetriesExhaustedError,
    SessionExpiredError,
    TransportError,
    UnexpectedResponseError,
    quoted,
)
from .guard import install
from .paging import iter_pages
from .retry import Retryable, RetryPolicy
from .settings import ConnectionSettings, SecretSink

log = logging.getLogger(__name__)

COLLECTION_LIMIT = 200
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT"})
# Statuses that tell us the server did not process the request, so even a write may be resent.
NOT_PROCESSED = frozenset({429, 503})
_LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class ApiUsage:
    used: int
    limit: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0

    def __str__(self) -> str:
        return f"{self.used:,}/{self.limit:,} daily API requests ({self.percent:.1f} %)"


def parse_limit_info(header: str | None) -> ApiUsage | None:
    match = _LIMIT_RE.search(header or "")
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None


def _concurrency_limit(status: int, message: str) -> bool:
    """429, or 'ConcurrentPerOrgLongTxn Limit exceeded': transient, unlike the daily quota."""
    return status == 429 or "concurrent" in message.lower()


def _session_ended(response: requests.Response) -> bool:
    """A 401 (the REST API's ``INVALID_SESSION_ID``), or the plain 403 ``Bad_OAuth_Token`` with
    which the OAuth endpoints (``/services/oauth2/userinfo``) answer an ended session."""
    if response.status_code == 401:
        return True
    return response.status_code == 403 and api_errors(response)[1].strip() == "Bad_OAuth_Token"


def make_session(pool_size: int = 16) -> requests.Session:
    """A pooled session; retries are ours (below), not urllib3's, so it gets none."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "airflow-provider-sfjwt"
    return install(session)


def api_errors(response: requests.Response) -> tuple[str, str]:
    """(errorCode, message) from Salesforce's error shapes: a JSON list, a dict, or anything."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return ("HTTP_" + str(response.status_code), quoted(text) or response.reason or "")
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        message = quoted(str(first.get("message", "")))
        if len(body) > 1:
            message += f" (+{len(body) - 1} more errors)"
        return (str(first.get("errorCode", "UNKNOWN")), message)
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error") or "UNKNOWN"
        return (str(code), quoted(str(body.get("message") or body.get("error_description") or "")))
    return ("UNKNOWN", quoted(str(body)))


def json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; :class:`UnexpectedResponseError` naming ``what`` if not."""
    if not isinstance(value, dict):
        raise UnexpectedResponseError(
            f"{what}: Salesforce answered {type(value).__name__}, not a JSON object"
        )
    return value


def json_records(value: Any, what: str) -> list[dict[str, Any]]:
    """``value`` if it is a list of JSON objects; :class:`UnexpectedResponseError` if not.

    Nothing is guessed from an answer of another shape: for a write, the outcome is unknown.
    """
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UnexpectedResponseError(
            f"{what}: Salesforce answered {type(value).__name__}, not a list of JSON objects; "
            "for a write the outcome is unknown, so check the records in Salesforce before "
            "loading again"
        )
    return value


class SalesforceClient:
    """Plain-Python Salesforce client for one connection. Thread-safe; one per task is typical."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        session: requests.Session | None = None,
        on_secret: SecretSink | None = None,
        retry: RetryPolicy | None = None,
        cache: TokenCache = TOKEN_CACHE,
    ) -> None:
        self.settings = settings
        self.session = install(session) if session is not None else make_session()
        self.retry = retry or RetryPolicy(max_retries=settings.max_retries)
        self.auth = JWTAuth(settings, self.session, self.retry, on_secret, cache)
        self.api_usage: ApiUsage | None = None
        self._usage_logged = False

    # --- plumbing -------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        return self.settings.api_version

    @property
    def instance_url(self) -> str:
        return self.auth.token().instance_url

    def data_path(self, path: str = "") -> str:
        return f"/services/data/v{self.api_version}/{path.lstrip('/')}"

    def url(self, path: str, token: AccessToken | None = None) -> str:
        """Absolute URL for ``path``: a full URL, a ``/services/...`` path or a data-API path."""
        base = (token or self.auth.token()).instance_url
        if path.startswith(("http://", "https://")):
            if urlsplit(path)[:2] != urlsplit(base)[:2]:
                # The Authorization header goes with the request: never to another host.
                raise InvalidInputError(
                    f"{path[:80]!r} is not on this org's instance {base}; the access token is only "
                    "sent there. Give a path instead: sobjects/Account or /services/apexrest/..."
                )
            return path
        if path.startswith("/services/"):
            return base + path
        return base + self.data_path(path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
        ok_statuses: Sequence[int] = (),
    ) -> requests.Response:
        """Send one API request with the retry and re-auth policy above; return a 2xx response."""
        method = method.upper()
        safe_to_repeat = method in IDEMPOTENT if idempotent is None else idempotent
        token = self.auth.token()
        reauthed = False

        def send() -> requests.Response:
            self._check_quota_guard()
            url = self.url(path, token)
            send_headers = {
                "Authorization": f"Bearer {token.access_token}",
                "Accept": "application/json",
            }
            if headers:
                send_headers.update(headers)
            try:
                return self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=send_headers,
                    stream=stream,
                    timeout=(
                        min(30.0, self.settings.request_timeout),
                        self.settings.request_timeout,
                    ),
                    verify=self.settings.verify,
                )
            except requests.exceptions.SSLError as exc:
                raise TransportError(
                    f"TLS verification failed for {method} {url}: {type(exc).__name__}. If a proxy "
                    "intercepts TLS, put its CA in REQUESTS_CA_BUNDLE or the connection's ca_bundle."
                ) from None
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,  # body cut off mid-way
            ) as exc:
                name = type(exc).__name__
                never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or (
                    isinstance(exc, requests.exceptions.ConnectionError)
                    and "refused" in str(exc).lower()
                )
                if not (safe_to_repeat or never_sent):
                    raise TransportError(
                        f"{method} {url} was cut off ({name}) after it was sent; the write may or "
                        "may not have been applied, so it is not repeated. Check the records in "
                        "Salesforce (or use an external-id upsert, which is safe to repeat)."
                    ) from None
                raise Retryable(
                    name,
                    exhausted=lambda tries: RetriesExhaustedError(
                        f"{method} {url} failed {tries} times: {name}. Salesforce or the network "
                        f"is unavailable; raise max_retries or request_timeout (now "
                        f"{self.retry.max_retries} and {self.settings.request_timeout:g} s) if it "
                        "is slow rather than down."
                    ),
                ) from None

        def attempt(number: int) -> requests.Response:
            nonlocal token, reauthed
            response = send()
            self._note_usage(response)
            if _session_ended(response) and not reauthed:
                code, _ = api_errors(response)
                response.close()
                log.info(
                    "Session rejected (%s); exchanging a new token and repeating %s", code, method
                )
                token = self.auth.refresh(token)
                reauthed = True
                response = send()
                self._note_usage(response)
            status = response.status_code
            if 200 <= status < 300 or status in ok_statuses:
                return response
            code, message = api_errors(response)
            url = self.url(path, token)
            # The same code also names the concurrent long-request limit, which clears in seconds.
            if code == "REQUEST_LIMIT_EXCEEDED" and not _concurrency_limit(status, message):
                raise RequestLimitExceededError(status, code, message, method, url)
            if status in self.retry.statuses and (safe_to_repeat or status in NOT_PROCESSED):
                response.close()
                raise Retryable(
                    f"HTTP {status} {code}",
                    retry_after=response.headers.get("Retry-After"),
                    exhausted=lambda tries: RetriesExhaustedError(
                        f"{method} {url} still failed after {tries} tries: HTTP {status} {code}: "
                        f"{message}. Salesforce is overloaded or throttling this org; let the task "
                        f"retry later or raise max_retries (now {self.retry.max_retries})."
                    ),
                )
            if _session_ended(response):
                raise SessionExpiredError(status, code, message, method, url)
            raise ApiError(status, code, message, method, url)

        return self.retry.run(f"{method} {path}", attempt)

    def _note_usage(self, response: requests.Response) -> None:
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is None:
            return
        self.api_usage = usage
        if not self._usage_logged:
            self._usage_logged = True
            log.info("Salesforce API usage: %s", usage)

    def _check_quota_guard(self) -> None:
        limit = self.settings.max_api_usage_percent
        usage = self.api_usage
        if limit is not None and usage is not None and usage.percent >= limit:
            raise QuotaGuardError(
                f"Stopped before the next API call: the org has used {usage}, at or above this "
                f"connection's max_api_usage_percent of {limit:g} %. Raise the setting in the "
                "connection's extra, or wait for the 24-hour window to free up."
            )

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def get_object(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A GET whose answer must be a JSON object; :class:`UnexpectedResponseError` if not."""
        return json_object(self.get_json(path, params), f"GET {path}")

    # --- resources ------------------------------------------------------------------------

    def versions(self) -> list[dict[str, Any]]:
        return json_records(self.get_json("/services/data/"), "GET /services/data/")

    def limits(self) -> dict[str, Any]:
        return self.get_object("limits")

    def describe(self, sobject: str) -> dict[str, Any]:
        return self.get_object(f"sobjects/{quote(sobject)}/describe")

    def identity(self) -> dict[str, Any]:
        return self.get_object("/services/oauth2/userinfo")

    def query_pages(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Each page of a SOQL result as Salesforce returns it, following ``nextRecordsUrl``.

        The next page is requested as soon as the current one's first bytes name it (see
        :mod:`.paging`), so work on a page overlaps the round trip of the next.
        """
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        path = "queryAll" if include_deleted else "query"
        return iter_pages(self, path, {"q": soql}, headers)

    def query(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stream the records of a SOQL query; memory holds one page at a time."""
        for page in self.query_pages(soql, include_deleted, batch_size):
            yield from page.get("records", ())

    def count(self, soql: str, include_deleted: bool = False) -> int:
        """``totalSize`` of a query (for ``SELECT COUNT() ...``, the count itself)."""
        page = self.request(
            "GET", "queryAll" if include_deleted else "query", params={"q": soql}
        ).json()
        return int(page.get("totalSize", 0))

    def collections(
        self,
        operation: str,
        records: Iterable[Mapping[str, Any]],
        sobject: str | None = None,
        external_id_field: str | None = None,
        all_or_none: bool = False,
    ) -> Iterator[tuple[list[Mapping[str, Any]], list[dict[str, Any]]]]:
        """sObject Collections in chunks of 200: yields (chunk, per-record results) in order.

        Creates are not repeated after an ambiguous failure (the client's write policy); upserts
        by external id and updates/deletes by Id are safe to repeat and are retried.
        """
        op = operation.lower()
        if op not in ("insert", "update", "upsert", "delete"):
            raise InvalidInputError(
                f"operation must be insert, update, upsert or delete, not {operation!r}"
            )
        if op in ("insert", "upsert") and not sobject:
            raise InvalidInputError(f"{op} needs the sObject name")
        if op == "upsert" and not external_id_field:
            raise InvalidInputError("upsert needs external_id_field")
        chunk: list[Mapping[str, Any]] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == COLLECTION_LIMIT:
                yield (
                    chunk,
                    self.collection_request(op, chunk, sobject, external_id_field, all_or_none),
                )
                chunk = []
        if chunk:
            yield chunk, self.collection_request(op, chunk, sobject, external_id_field, all_or_none)

    def collection_request(
        self,
        op: str,
        chunk: list[Mapping[str, Any]],
        sobject: str | None,
        external_id_field: str | None,
        all_or_none: bool,
    ) -> list[dict[str, Any]]:
        """One sObject Collections request for up to 200 records; Salesforce's per-record answers.

        Also used on its own to send again the records of a chunk that were refused for a
        transient reason (a locked row), without resending the ones already written.
        """
        what = f"sObject Collections {op} of {len(chunk)} records"
        if op == "delete":
            ids = ",".join(str(r["Id"]) for r in chunk)
            response = self.request(
                "DELETE",
                "composite/sobjects",
                params={"ids": ids, "allOrNone": str(all_or_none).lower()},
                idempotent=True,
            )
            return json_records(response.json(), what)
        body_records = []
        for record in chunk:
            item = {k: v for k, v in record.items() if k != "attributes"}
            item["attributes"] = {"type": sobject or record.get("attributes", {}).get("type")}
            body_records.append(item)
        body = {"allOrNone": all_or_none, "records": body_records}
        if op == "insert":
            response = self.request("POST", "composite/sobjects", json=body, idempotent=False)
        elif op == "update":
            response = self.request("PATCH", "composite/sobjects", json=body, idempotent=True)
        else:
            response = self.request(
                "PATCH",
                f"composite/sobjects/{quote(sobject or '')}/{quote(external_id_field or '')}",
                json=body,
                idempotent=True,
            )
        return json_records(response.json(), what)

    def apex(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call an Apex REST endpoint (``/services/apexrest/<path>``)."""
        return self.request(method, "/services/apexrest/" + path.lstrip("/"), **kwargs)

    def close(self) -> None:
        self.session.close()
