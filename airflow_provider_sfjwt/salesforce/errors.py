"""Every error this provider raises, and the catalogue of hints for Salesforce's token errors.

Every failure a user can hit gets its own type, and a message written for someone woken at
3 a.m.: what failed (Salesforce's words, verbatim), what that usually means, and what to check,
naming the exact connection field or Salesforce setting. Messages never contain key material,
assertions or tokens. Catch :class:`SalesforceError` for all of them; the errors about bad values
are also ``ValueError``, as Python code expects.

The tree::

    SalesforceError
    ├── ConfigurationError (also ValueError) - a connection field, refused before any call
    ├── InvalidInputError (also ValueError) - a bad argument or input file
    ├── UnexpectedResponseError (also ValueError) - an answer that cannot be used safely
    │   ├── RedirectRefusedError - a 3xx: no redirect is followed
    │   └── BodyTooLargeError - an answer over its size ceiling
    ├── AuthenticationError - the token endpoint refused the JWT assertion (or was unreachable)
    │   ├── UserNotApprovedError
    │   ├── AudienceInvalidError
    │   ├── AppNotFoundError
    │   ├── InvalidAssertionError
    │   │   └── ExpiredAssertionError
    │   ├── AuthenticationFailureError
    │   ├── InvalidClientIdError
    │   ├── InvalidClientError
    │   ├── UnsupportedGrantTypeError
    │   ├── InactiveUserError
    │   ├── InactiveOrgError
    │   ├── LoginRateExceededError
    │   ├── TokenEndpointError
    │   │   └── UntrustedAnswerError - an answer that failed a safety check
    │   └── TokenEndpointUnreachableError
    ├── ApiError - a REST or Bulk API call answered with an error
    │   ├── SessionExpiredError
    │   └── RequestLimitExceededError
    ├── QuotaGuardError - this connection's own brake on API usage
    ├── RetriesExhaustedError - a transient failure outlasted max_retries
    ├── TransportError - connection, timeout or TLS failure, or a write cut off once sent
    ├── ResponseTooLargeError - a REST answer too large to return inline
    ├── UnsafeStoreError - a token store directory others could tamper with
    ├── BulkJobError - a Bulk API 2.0 job ended Failed or Aborted
    │   └── BulkJobTimeoutError
    ├── TooManyFailedRecordsError - an ingest refused more records than allowed
    ├── DeletesUnavailableError - Salesforce no longer holds a replication window's deletions
    └── SchemaChangedError - an object's fields changed and replication was told to stop

(:class:`.retry.Retryable` is not an error: it is the signal a try raises inside the retry loop,
which catches it.)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SalesforceError(Exception):
    """Base of every error this provider raises on purpose."""


class InvalidInputError(SalesforceError, ValueError):
    """A bad argument or input file, refused before it can do harm: says what is wrong and how
    to fix it. A ``ValueError`` too, as Python code expects of bad values."""


class UnexpectedResponseError(SalesforceError, ValueError):
    """Salesforce answered something this provider cannot use safely: a malformed body, counts
    that do not add up, a cursor or locator that repeats. Nothing is guessed from such an
    answer, nothing is written from it and nothing is sent where it points."""


class RedirectRefusedError(UnexpectedResponseError):
    """A 3xx answer: no redirect is followed, on the token request or on an API call
    (:mod:`.guard`)."""


class BodyTooLargeError(UnexpectedResponseError):
    """An answer larger than the ceiling for its kind, refused before it is read whole
    (:mod:`.guard`)."""


PREVIEW_CHARS = 8


def shown(value: object, shape: re.Pattern[str] | None = None) -> str:
    """How a validation message may quote what the user typed: never the whole of a long value.

    A value in the wrong field is often a secret pasted there (a PEM line in ``audience``, the
    passphrase in the Login URL), and the message travels to task logs, the UI's Test button
    and tracebacks, where the masker may not reach (and never reaches a lower-cased copy). So
    a message shows at most the first few characters (half the value, at most 8) and the
    length. A value that has the ``shape`` the field expects (a path, a variable name) is shown
    whole: it is then what it claims to be, and naming it helps the user find it.
    """
    text = str(value)
    if (
        shape is not None
        and len(text) <= 255
        and shape.fullmatch(text)
        and not _KEY_MATERIAL.search(text)
    ):
        return repr(text)
    keep = min(PREVIEW_CHARS, len(text) // 2)
    unit = "character" if len(text) == 1 else "characters"
    return f"{text[:keep]!r}... ({len(text)} {unit})" if keep else f"a value of {len(text)} {unit}"


_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+=]{40,}")  # a run of base64 as long as in a PEM line
PATH_SHAPE = re.compile(r"[^\s\x00-\x1f]+")
"""A file path: one line, no spaces."""
NAME_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
"""An environment variable or Airflow Variable name."""


SERVER_TEXT_CHARS = 2048


def quoted(text: str, limit: int = SERVER_TEXT_CHARS) -> str:
    """Text a server sent, for a message: at most ``limit`` characters, and how much was cut.

    A broken or hostile server can answer hundreds of megabytes; the message lands in task logs.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit:,} more characters not shown]"


class ConfigurationError(SalesforceError, ValueError):
    """Bad input found before any network call; names the connection field and the fix."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"Salesforce connection field '{field}' {problem}."
        if fix:
            message += f" Fix: {fix}."
        super().__init__(message)


# --- token endpoint --------------------------------------------------------------------------

# The JWT Bearer troubleshooting checklist, one line per setting; entries below pick from it.
CHECK_CONSUMER_KEY = (
    "consumer_key (connection extra) is the Consumer Key of the app that holds the certificate: "
    "copy it again from Setup > App Manager / External Client App Manager > the app"
)
CHECK_USERNAME = (
    "Username (connection login) is the exact Salesforce username for this org "
    "(sandbox usernames carry a suffix such as user@example.com.uat)"
)
CHECK_AUDIENCE = (
    "audience matches the org: https://login.salesforce.com for production, "
    "https://test.salesforce.com for a sandbox, the site URL for Experience Cloud users, or the "
    "My Domain URL (which External Client Apps are reported to need since Spring '26); "
    "connection extra 'audience', or the Login URL it is derived from"
)
CHECK_PREAUTHORIZED = (
    "the app's Edit Policies > OAuth Policies > Permitted Users is 'Admin approved users are "
    "pre-authorized' and the user's profile or a permission set assigned to the user is added to "
    "the app (Manage Profiles / Manage Permission Sets)"
)
CHECK_CERTIFICATE = (
    "the certificate uploaded to *this* app (External Client App: 'Enable JWT Bearer Flow'; "
    "Connected App: 'Use digital signatures') is the one made from this private key "
    "(sfjwt doctor --cert app.crt compares them)"
)
CHECK_CLOCK = "this machine's clock is right (NTP): the assertion's exp must be within 3 minutes of Salesforce's clock"
CHECK_API_ACCESS = "the user is active and has the 'API Enabled' permission"
CHECK_JWT_ENABLED = (
    "the app has OAuth enabled and the JWT flow switched on with the certificate uploaded: "
    "'Enable JWT Bearer Flow' on an External Client App, 'Use digital signatures' on a "
    "Connected App"
)


@dataclass(frozen=True)
class TokenErrorKind:
    """One row of the catalogue: how Salesforce says it, what it means, what to check."""

    error: str
    description: str | None  # lower-case substring of error_description, None = any
    meaning: str
    checks: tuple[str, ...]
    audience_related: bool = False


class AuthenticationError(SalesforceError):
    """The token endpoint refused the JWT assertion (or could not be asked)."""

    meaning = "Salesforce refused the JWT bearer token request."
    checks: tuple[str, ...] = (
        CHECK_CONSUMER_KEY,
        CHECK_USERNAME,
        CHECK_AUDIENCE,
        CHECK_CERTIFICATE,
        CHECK_PREAUTHORIZED,
        CHECK_CLOCK,
    )
    audience_related = False

    def __init__(
        self,
        summary: str,
        *,
        token_url: str = "",
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
        meaning: str | None = None,
        checks: Sequence[str] | None = None,
        audiences_tried: Sequence[str] = (),
        clock_skew: float | None = None,
    ) -> None:
        self.summary = summary
        self.token_url = token_url
        self.status = status
        self.error = error
        self.description = description
        if meaning:
            self.meaning = meaning
        if checks is not None:
            self.checks = tuple(checks)
        self.audiences_tried = tuple(audiences_tried)
        self.clock_skew = clock_skew
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [self.summary]
        lines.append(f"What it usually means: {self.meaning}")
        if self.checks:
            lines.append("What to check:")
            lines += [f"  {n}. {c}" for n, c in enumerate(self.checks, 1)]
        if self.audiences_tried:
            lines.append("Audiences tried: " + ", ".join(self.audiences_tried))
        if self.clock_skew is not None and abs(self.clock_skew) > CLOCK_SKEW_TOLERANCE:
            direction = "ahead of" if self.clock_skew > 0 else "behind"
            lines.append(
                f"Clock: Salesforce's clock is {abs(self.clock_skew):.0f} s {direction} this "
                "machine's (Date header). The assertion's exp is computed from the local clock, so "
                "fix the time on this machine (NTP) first."
            )
        return "\n".join(lines)

    @property
    def may_mean_wrong_audience(self) -> bool:
        """Whether a derived audience should give way to the next candidate after this error."""
        return self.audience_related

    def with_context(
        self, audiences_tried: Sequence[str] = (), clock_skew: float | None = None
    ) -> AuthenticationError:
        """A copy of this error that also names every audience tried and the clock skew seen."""
        found = copy.copy(self)
        notes = getattr(self, "__notes__", None)
        if notes is not None:  # the copy's notes are its own, not shared with the original
            vars(found)["__notes__"] = list(notes)
        found.audiences_tried = tuple(audiences_tried) or self.audiences_tried
        if clock_skew is not None:
            found.clock_skew = clock_skew
        found.args = (found._render(),)
        return found


CLOCK_SKEW_TOLERANCE = 30.0


class UserNotApprovedError(AuthenticationError):
    meaning = (
        "The user is not pre-authorised for this app, or the username is not a user of this org. "
        "Users of other clients (sf CLI, restforce, simple-salesforce) report the same answer for "
        "a wrong audience (aud), so a wrong audience can cause it too."
    )
    checks = (CHECK_PREAUTHORIZED, CHECK_USERNAME, CHECK_AUDIENCE, CHECK_CONSUMER_KEY)

    @property
    def may_mean_wrong_audience(self) -> bool:
        # Only this wording is reported for a wrong aud; "not admin approved" is about the user.
        return "hasn't approved this consumer" in (self.description or "").lower()


class AudienceInvalidError(AuthenticationError):
    meaning = "The JWT audience (aud) does not fit this org or this kind of app."
    checks = (CHECK_AUDIENCE, "the Login URL (connection host) points at the org the app lives in")
    audience_related = True


class AppNotFoundError(AuthenticationError):
    meaning = (
        "The org the Login URL points to has no External Client App with this consumer key, or "
        "the app was given a login/test audience where it is reported to need the My Domain URL. "
        "A Local External Client App has no install step: it lives in the org it was created in."
    )
    checks = (
        "the app exists in the org the Login URL points to (Setup > External Client App Manager "
        "there): production and each sandbox are separate orgs, and a sandbox refreshed before "
        "the app was created does not have it",
        "consumer_key (connection extra) was copied from the app in that same org, not from "
        "another org's app",
        "Login URL (connection host) is the org's My Domain URL, not login.salesforce.com or "
        "test.salesforce.com, and audience is empty (derived) or that My Domain URL",
    )
    audience_related = True


class InvalidAssertionError(AuthenticationError):
    meaning = (
        "Salesforce could not verify the signed assertion: the certificate uploaded to the app does "
        "not belong to this key, the consumer key names another app, or exp is off."
    )
    checks: tuple[str, ...] = (
        CHECK_CERTIFICATE,
        CHECK_CONSUMER_KEY,
        CHECK_CLOCK,
        CHECK_JWT_ENABLED,
    )


class ExpiredAssertionError(InvalidAssertionError):
    meaning = (
        "The assertion's exp was already past when Salesforce checked it - or, when the clocks "
        "agree, Salesforce reports a setup mismatch this way."
    )
    checks = (CHECK_CLOCK, CHECK_USERNAME, CHECK_AUDIENCE, CHECK_CERTIFICATE, CHECK_PREAUTHORIZED)


class AuthenticationFailureError(AuthenticationError):
    meaning = (
        "The user may not log in now: inactive or frozen user, a login IP range or login hours on "
        "the profile, or a locked org."
    )
    checks = (
        CHECK_API_ACCESS + ", and not frozen (Setup > Users)",
        "the profile's Login IP Ranges and Login Hours allow this machine now, or the app's "
        "IP Relaxation is 'Relax IP restrictions'",
        CHECK_USERNAME,
    )


class InvalidClientIdError(AuthenticationError):
    meaning = "Salesforce does not know this consumer key, or the app was created minutes ago."
    checks = (
        CHECK_CONSUMER_KEY,
        "a new or edited app is reported (community reports, not Salesforce's documentation) to "
        "take 2 to 10 minutes to become active: wait and try again",
        "the Login URL points at the org (or production vs sandbox) where the app lives",
    )


class InvalidClientError(AuthenticationError):
    meaning = (
        "The app is not set up for the JWT Bearer flow, or it is not installed in this org "
        "(also seen as 'app must be installed into org': Salesforce blocks uninstalled "
        "Connected Apps since September 2025)."
    )
    checks = (
        CHECK_JWT_ENABLED,
        "the app is installed in this org: Setup > Connected Apps OAuth Usage > the app > Install",
        CHECK_CONSUMER_KEY,
    )


class UnsupportedGrantTypeError(AuthenticationError):
    meaning = "The request did not carry the jwt-bearer grant type as a form body."
    checks = (
        "a proxy between this machine and Salesforce is not rewriting the request body",
        "the Login URL is a Salesforce token host, not a UI host",
    )


class InactiveUserError(AuthenticationError):
    meaning = "The user is deactivated."
    checks = (CHECK_API_ACCESS, CHECK_USERNAME)


class InactiveOrgError(AuthenticationError):
    meaning = "The org is locked, closed or suspended."
    checks = (
        "the org's status with your Salesforce admin",
        "the Login URL points at the right org",
    )


class LoginRateExceededError(AuthenticationError):
    meaning = "Too many logins for this user (Salesforce allows about 3,600 per hour)."
    checks = (
        "something else logs in with this user in a loop; this provider reuses one token per "
        "process, so look for other clients or many short-lived processes",
    )


class TokenEndpointError(AuthenticationError):
    """The token endpoint answered, but not with a Salesforce OAuth error (5xx, HTML, garbage)."""

    meaning = (
        "The Login URL answered with something other than Salesforce's OAuth response: "
        "maintenance, a proxy, or a host that is not a Salesforce token endpoint."
    )
    checks = (
        "the Login URL (connection host) is https://login.salesforce.com, https://test.salesforce.com "
        "or the org's My Domain URL",
        "https://status.salesforce.com for maintenance",
        "proxy settings (HTTPS_PROXY, NO_PROXY) on this machine",
    )


class UntrustedAnswerError(TokenEndpointError):
    """The token endpoint answered something this client will not act on (see ``meaning``)."""

    meaning = (
        "The token endpoint's answer failed a safety check (an instance URL outside Salesforce's "
        "domains, a redirect, a body beyond the size limit), so nothing of it was used and no "
        "token or assertion went anywhere else. A proxy rewriting answers, a Login URL that is "
        "not the org's token endpoint, or an attack."
    )
    checks = (
        "the Login URL (connection host) is https://login.salesforce.com, https://test.salesforce.com "
        "or the org's My Domain URL",
        "proxy settings (HTTPS_PROXY, NO_PROXY): a proxy must not redirect or rewrite Salesforce's "
        "answers",
        "for a private Salesforce deployment on a domain of its own: list that domain in the "
        "connection extra instance_domains",
    )


class TokenEndpointUnreachableError(AuthenticationError):
    """Timeouts, refused connections and TLS failures on the way to the token endpoint."""

    meaning = "The token endpoint could not be reached."
    checks = (
        "the Login URL (connection host) is spelled right and reachable from this machine",
        "proxy settings (HTTPS_PROXY, NO_PROXY) and firewall egress to Salesforce",
        "for TLS errors: a private CA or TLS-inspecting proxy needs its CA bundle in the "
        "connection's ca_bundle (extra) or in REQUESTS_CA_BUNDLE",
        "request_timeout (connection extra) if the network is slow",
    )


TOKEN_ERRORS: tuple[tuple[TokenErrorKind, type[AuthenticationError]], ...] = tuple(
    (TokenErrorKind(e, d, cls.meaning, cls.checks, cls.audience_related), cls)
    for e, d, cls in (
        ("invalid_grant", "user hasn't approved this consumer", UserNotApprovedError),
        ("invalid_grant", "not admin approved", UserNotApprovedError),
        ("invalid_app_access", None, UserNotApprovedError),
        ("invalid_grant", "audience is invalid", AudienceInvalidError),
        ("invalid_grant", "expired", ExpiredAssertionError),
        ("invalid_grant", "invalid assertion", InvalidAssertionError),
        ("invalid_grant", "authentication failure", AuthenticationFailureError),
        ("invalid_grant", "ip restricted", AuthenticationFailureError),
        ("invalid_grant", "login hours", AuthenticationFailureError),
        ("invalid_grant", "inactive", InactiveUserError),
        ("invalid_client_id", None, InvalidClientIdError),
        ("invalid_client", None, InvalidClientError),
        ("app_not_found", None, AppNotFoundError),
        ("unsupported_grant_type", None, UnsupportedGrantTypeError),
        ("inactive_user", None, InactiveUserError),
        ("inactive_org", None, InactiveOrgError),
        ("rate_limit_exceeded", None, LoginRateExceededError),
        ("login_rate_exceeded", None, LoginRateExceededError),
    )
)


def classify_token_error(error: str, description: str) -> type[AuthenticationError]:
    """The exception type for an ``{"error", "error_description"}`` pair from the token endpoint."""
    err, desc = (error or "").lower(), (description or "").lower()
    for kind, cls in TOKEN_ERRORS:
        if kind.error == err and (kind.description is None or kind.description in desc):
            return cls
    return AuthenticationError


# --- REST and Bulk API -----------------------------------------------------------------------


@dataclass(eq=False)
class ApiError(SalesforceError):
    """A REST or Bulk API call answered with an error body (Salesforce's JSON list shape)."""

    status: int
    """The HTTP status of the answer."""
    error_code: str
    """Salesforce's ``errorCode`` (``MALFORMED_QUERY``, ``INVALID_SESSION_ID``, ...)."""
    message: str
    """Salesforce's ``message``, cut to a safe length."""
    method: str = ""
    url: str = ""
    """The request that failed, for the error text."""

    @property
    def hint(self) -> str:
        """What to do, where ``error_code`` has known advice (else empty)."""
        return API_HINTS.get(self.error_code, "")

    def __post_init__(self) -> None:
        text = (
            f"Salesforce API {self.method} {self.url} failed: HTTP {self.status} "
            f"{self.error_code}: {self.message}"
        )
        if self.hint:
            text += f"\nWhat to do: {self.hint}"
        super().__init__(text)


class SessionExpiredError(ApiError):
    """401 INVALID_SESSION_ID (or 403 Bad_OAuth_Token) that survived one re-exchange."""


class RequestLimitExceededError(ApiError):
    """The org's rolling 24 h API quota is used up; retrying cannot help."""


class QuotaGuardError(SalesforceError):
    """Our own brake: API usage is above the connection's ``max_api_usage_percent``."""


class RetriesExhaustedError(SalesforceError):
    """A transient failure persisted past ``max_retries``."""


class TransportError(SalesforceError):
    """Connection refused or reset, timeout or TLS failure talking to the instance."""


class UnsafeStoreError(SalesforceError):
    """The token store directory, or a directory above it, cannot be trusted (the message says
    why). The store is then not used: tokens are not shared between processes."""


class ResponseTooLargeError(SalesforceError):
    """A REST answer exceeded the inline limit (it would go to XCom) and no output path was given."""


class BulkJobError(SalesforceError):
    """A Bulk API 2.0 job ended Failed or Aborted, or could not be finished."""

    def __init__(self, kind: str, job_id: str, state: str, message: str, hint: str = "") -> None:
        self.kind = kind
        self.job_id = job_id
        self.state = state
        self.message = message
        text = f"Bulk API 2.0 {kind} job {job_id} ended {state}"
        text += f": {message}" if message else " (Salesforce gave no errorMessage)"
        if hint:
            text += f"\nWhat to do: {hint}"
        super().__init__(text)


class BulkJobTimeoutError(BulkJobError):
    """The job did not finish within the timeout; it has been aborted."""


class TooManyFailedRecordsError(SalesforceError):
    """A load had more records refused than ``max_failed_records`` allows.

    Raised by Bulk API 2.0 ingests and by sObject Collections loads alike, once the report of
    the refused records is saved. ``summary`` is the load's summary, so a caller can still
    report what was loaded.
    """

    def __init__(self, summary: Mapping[str, Any], limit: int, limit_text: str) -> None:
        self.summary = dict(summary)
        allowed = f"more than max_failed_records={limit_text} ({limit:,} records)"
        if "failed_path" in summary:  # a Bulk ingest: Salesforce wrote the result files
            codes = ", ".join(f"{code} x{n}" for code, n in summary.get("first_errors", {}).items())
            text = (
                f"Bulk ingest of {summary.get('processed', 0):,} records into "
                f"{summary.get('object')} ({summary.get('operation')}) rejected "
                f"{summary.get('failed', 0):,}, {allowed}. First error codes: "
                f"{codes or 'none reported'}. The rejected rows with Salesforce's reason "
                f"(sf__Error) are in {summary.get('failed_path')}. Fix those rows and load that "
                "file again, or raise max_failed_records if such failures are expected."
            )
        else:  # sObject Collections: the report exists only if failed_records_path was set
            report = summary.get("failed_records_path")
            where = (
                f"See {report} for each record's error code."
                if report
                else "Set failed_records_path to get each refused record with its error code."
            )
            text = (
                f"{summary.get('operation')} {summary.get('sobject') or ''}: Salesforce refused "
                f"{summary.get('failed', 0):,} of {summary.get('records', 0):,} records, "
                f"{allowed}. {where} Fix the data, or raise max_failed_records if such "
                "rejects are expected."
            )
        super().__init__(text)


API_HINTS: dict[str, str] = {
    "REQUEST_LIMIT_EXCEEDED": (
        "the org's 24-hour API request limit (DailyApiRequests in /limits, Setup > Company "
        "Information > API Requests) is used up. It is a rolling window: retrying now cannot help. "
        "Reduce other API consumers, use Bulk API 2.0 for large jobs, or ask Salesforce for a "
        "higher allocation"
    ),
    "INVALID_SESSION_ID": (
        "the access token was rejected again right after a fresh token exchange: check the app's "
        "session policies (IP restrictions, 'High Assurance' session level) and that the user has "
        "API access"
    ),
    "MALFORMED_QUERY": "fix the SOQL syntax; run it in the Developer Console's Query Editor to see the position",
    "INVALID_FIELD": (
        "the field does not exist or the user cannot see it: check the API name (custom fields end "
        "in __c) and the field-level security of the user's profile or permission sets"
    ),
    "INVALID_TYPE": "the sObject does not exist or the user has no access to it: check the API name and object permissions",
    "API_DISABLED_FOR_ORG": "the org's edition or the user's profile has no API access: grant 'API Enabled'",
    "INSUFFICIENT_ACCESS": "the integration user lacks permission for this operation: check its profile and permission sets",
    "NOT_FOUND": "the URL or record does not exist: check the path, the record id and the API version",
    "INVALID_QUERY_LOCATOR": (
        "the query cursor expired (about 15 minutes unused, at most 10 open per user): run the "
        "query again and consume pages without long pauses"
    ),
}


class DeletesUnavailableError(SalesforceError):
    """Salesforce no longer holds the deletions of a replication window (its delete log keeps
    about 15 days, less when purged), or has not covered the window's end yet."""


class SchemaChangedError(SalesforceError):
    """An object's fields changed since the last replicated run and ``on_schema_change="fail"``.

    ``changes`` has the added, removed and retyped fields.
    """

    def __init__(self, sobject: str, changes: Any) -> None:
        self.changes = changes
        super().__init__(
            f"{sobject}'s schema changed since the last replicated run: {changes}. Nothing was "
            "written (on_schema_change='fail'). Adapt the consumers of these files, then run the "
            "task once with on_schema_change='evolve' to accept the new schema."
        )
