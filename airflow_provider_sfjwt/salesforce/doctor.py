"""``sfjwt doctor``: the JWT troubleshooting checklist, as data, run against one connection.

Every article on the JWT Bearer flow ends with the same list for ``invalid_grant``: consumer key,
exact username, audience for production or sandbox, the certificate uploaded to *this* app
matching the key, the user pre-authorised, the clock, API access. Salesforce's own answer names
none of them, so this module checks each one separately, offline where it can, and then does the
real token exchange and REST calls. Each check says pass / warn / fail (or skip, when an earlier
failure makes it meaningless) with one line of detail and the exact fix.

Plain Python, no Airflow: the command line resolves an Airflow connection and hands the raw
fields to :func:`run_doctor`. Nothing secret (key, passphrase, assertion, token) is put into a
result.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .auth import (
    DEFAULT_ASSERTION_LIFETIME,
    MAX_ASSERTION_LIFETIME,
    AccessToken,
    TokenCache,
    server_clock_skew,
)
from .client import SalesforceClient, make_session
from .errors import (
    CHECK_AUDIENCE,
    CHECK_CERTIFICATE,
    CHECK_PREAUTHORIZED,
    CHECK_USERNAME,
    CLOCK_SKEW_TOLERANCE,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ExpiredAssertionError,
    RedirectRefusedError,
    SalesforceError,
    shown,
)
from .keygen import git_exposure
from .keys import (
    VariableGetter,
    certificate_info,
    certificate_matches_key,
    load_certificate,
    load_private_key,
    public_key_fingerprint,
    resolve_reference,
)
from .retry import RetryPolicy
from .settings import (
    PRODUCTION_AUDIENCE,
    SANDBOX_AUDIENCE,
    ConnectionSettings,
    audience_candidates,
    is_loopback,
    parse_connection,
    validate_login_url,
)

CERT_WARNING_DAYS = 30
CLOCK_FAIL_SECONDS = 120.0
"""Beyond this, an assertion signed here is outside Salesforce's 3-minute ``exp`` window."""
API_USAGE_WARN_PERCENT = 90.0
DOCTOR_MAX_RETRIES = 1
"""A diagnosis should answer in seconds; one retry absorbs a blip without hiding an outage."""

_LEGACY_INSTANCE = re.compile(r"^(na|eu|ap|cs|um|gs|usa)\d+\.salesforce\.com$")
_COMMON_TLD = re.compile(
    r"^(com|org|net|io|co|de|uk|fr|jp|au|ca|nl|ch|es|it|se|dk|no|fi|be|at|ie|nz|in|br|us|edu|gov)$"
)
_CONSUMER_KEY_CHARS = re.compile(r"^[A-Za-z0-9._]+$")

ROTATE_FIX = (
    "renew the certificate for the same key (sfjwt keygen --reuse-key KEY.pem --cert NEW.crt), "
    "upload NEW.crt to the app in place of the old one, and put it in the connection's "
    "certificate field (docs/setup.md, 'Certificate expiry and rotation')"
)


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    """Not run because a check it depends on failed; the failure above says what to fix."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(repr=False)
class DoctorInput:
    """The connection's raw fields, exactly as stored (host = Login URL, login = Username)."""

    host: str | None
    login: str | None
    password: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    get_variable: VariableGetter | None = None

    def __repr__(self) -> str:
        return f"DoctorInput(host={self.host!r}, login={self.login!r})"


@dataclass
class _Run:
    """State shared by the checks of one run: what earlier checks found."""

    inp: DoctorInput
    session: requests.Session
    key: Any = None
    key_source: str = ""
    cert: Any = None
    settings: ConnectionSettings | None = None
    client: SalesforceClient | None = None
    token: AccessToken | None = None
    versions: list[str] | None = None
    version_ok: bool = False
    clock_skew: float | None = None

    @property
    def extra(self) -> Mapping[str, Any]:
        return self.inp.extra

    def text(self, name: str) -> str:
        value = self.extra.get(name)
        return value.strip() if isinstance(value, str) else ""


Outcome = tuple[Status, str, str]


def _ok(detail: str) -> Outcome:
    return Status.PASS, detail, ""


def _skip(why: str) -> Outcome:
    return Status.SKIP, why, ""


# --- offline checks --------------------------------------------------------------------------


def check_key(run: _Run) -> Outcome:
    inline, ref = run.text("private_key"), run.text("private_key_ref")
    if inline and ref:
        raise ConfigurationError(
            "private_key", "and private_key_ref are both set", "keep exactly one of them"
        )
    if not inline and not ref:
        raise ConfigurationError(
            "private_key",
            "and private_key_ref are both empty",
            "set private_key_ref to file:/path/key.pem, env:VAR or variable:NAME (or pass "
            "--key-file), or paste the PEM into private_key",
        )
    field_name = "private_key" if inline else "private_key_ref"
    pem = inline or resolve_reference(ref, field_name, run.inp.get_variable)
    run.key = load_private_key(pem, run.inp.password or None, field_name)
    run.key_source = "inline private_key" if inline else ref
    encrypted = "encrypted" if "ENCRYPTED" in pem else "not encrypted"
    return _ok(
        f"RSA {run.key.key_size}-bit private key from {run.key_source} ({encrypted}); public key "
        f"SHA-256 {public_key_fingerprint(run.key)[:16]}..."
    )


def check_key_storage(run: _Run) -> Outcome:
    if run.key is None:
        return _skip("no key loaded")
    ref = run.text("private_key_ref")
    if not ref:
        return _ok(
            "inline in the connection (masked in logs; encrypted at rest when Airflow has a "
            "Fernet key); private_key_ref=variable:NAME keeps it in a secrets backend instead"
        )
    scheme, _, target = ref.partition(":")
    if scheme.lower() != "file":
        return _ok(f"read from {scheme.lower()}:{target} at run time, not stored in the connection")
    path = os.path.expanduser(target)
    problems, fixes = [], []
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        problems.append(f"{path} has mode {mode:04o}: other users on this machine can read it")
        fixes.append(f"chmod 600 {path}")
    exposure = git_exposure(path)
    if exposure:
        problems.append(exposure)
        fixes.append(
            f"add {os.path.basename(path)} to .gitignore or move the key out of the repository"
        )
    if problems:
        return Status.WARN, "; ".join(problems), "; ".join(fixes)
    return _ok(f"{path} is readable by its owner only and not exposed to git")


def _certificate_text(run: _Run) -> str:
    cert = run.text("certificate")
    if cert and not cert.startswith("-----"):
        cert = resolve_reference(cert, "certificate", run.inp.get_variable)
    return cert


def check_certificate(run: _Run) -> Outcome:
    text = _certificate_text(run)
    if not text:
        return (
            Status.WARN,
            "no certificate given, so the key cannot be compared with the one uploaded to the app "
            "(the usual cause of 'invalid assertion')",
            "pass --cert FILE with the certificate uploaded to the app (download it from the app's "
            "settings, or use the .crt from sfjwt keygen), or set the connection's certificate extra",
        )
    run.cert = load_certificate(text)
    info = certificate_info(run.cert)
    if run.key is None:
        return _skip(f"certificate {info.subject} loads, but there is no key to compare it with")
    if not certificate_matches_key(run.cert, run.key):
        return (
            Status.FAIL,
            f"the certificate ({info.subject}, SHA-256 {info.fingerprint_sha256[:23]}...) holds a "
            "different public key than the private key: Salesforce answers 'invalid assertion'",
            "upload the certificate made from this key to the app (sfjwt keygen --reuse-key "
            "KEY.pem --cert NEW.crt makes one), or put the key that belongs to the uploaded "
            "certificate into the connection",
        )
    return _ok(
        f"certificate {info.subject} (SHA-256 {info.fingerprint_sha256[:23]}...) belongs to the key"
    )


def check_certificate_expiry(run: _Run) -> Outcome:
    if run.cert is None:
        return _skip("no certificate to check")
    info = certificate_info(run.cert)
    days = info.days_left()
    warn_days = _int(run.extra.get("cert_expiry_warning_days"), CERT_WARNING_DAYS)
    if days < 0:
        # A rotation policy, not an outage: Salesforce is reported to keep accepting assertions
        # after the uploaded certificate has expired, so this warns and the exchange decides.
        return (
            Status.WARN,
            f"the certificate expired on {info.not_after.date()} ({int(-days)} days ago); "
            "Salesforce is reported to keep accepting its key, but it is past its rotation date",
            ROTATE_FIX,
        )
    if info.not_before > dt.datetime.now(dt.timezone.utc):
        return (
            Status.WARN,
            f"the certificate is not valid before {info.not_before.isoformat()}",
            "check this machine's clock, or make a new certificate",
        )
    if days < warn_days:
        return (
            Status.WARN,
            f"the certificate expires in {int(days)} days, on {info.not_after.date()}",
            ROTATE_FIX,
        )
    return _ok(f"valid until {info.not_after.date()} ({int(days)} days)")


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def org_kind(login_url: str) -> str:
    """'production', 'sandbox' or 'unknown' (loopback, Experience Cloud site, custom domain)."""
    host = urlsplit(login_url).hostname or ""
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "sandbox"
    if host.endswith(".my.salesforce.com") and "--" in host.split(".", 1)[0]:
        return "sandbox"
    if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
        return "production"
    return "unknown"


def check_login_url(run: _Run) -> Outcome:
    url = validate_login_url(run.inp.host)
    host = urlsplit(url).hostname or ""
    token_url = f"token endpoint {url}/services/oauth2/token"
    if is_loopback(host):
        return _ok(f"{url}: a loopback address (the emulator or a test server); {token_url}")
    if host == "login.salesforce.com":
        return _ok(
            f"{url}: production and Developer Edition orgs; External Client Apps are reported to "
            "need the org's My Domain URL here instead"
        )
    if host == "test.salesforce.com":
        return _ok(
            f"{url}: sandboxes; External Client Apps are reported to need the sandbox's My "
            "Domain URL"
        )
    if _LEGACY_INSTANCE.match(host):
        return (
            Status.WARN,
            f"{host} is an instance hostname; Salesforce stopped redirecting legacy hostnames in "
            "Spring '26",
            "use the org's My Domain URL (Setup > My Domain), e.g. https://NAME.my.salesforce.com",
        )
    if host.endswith(".my.salesforce.com"):
        label = host.split(".", 1)[0]
        if "--" in label and not host.endswith(".sandbox.my.salesforce.com"):
            return (
                Status.WARN,
                f"{host} looks like a sandbox hostname from before enhanced domains",
                "use the sandbox's current My Domain URL, "
                "https://NAME--SANDBOX.sandbox.my.salesforce.com (Setup > My Domain)",
            )
        kind = (
            "a sandbox"
            if host.endswith(".sandbox.my.salesforce.com")
            else "a Developer Edition org"
            if host.endswith(".develop.my.salesforce.com")
            else "a production org"
        )
        return _ok(f"{url}: the My Domain URL of {kind}; {token_url}")
    if host.endswith(".my.site.com") or urlsplit(url).path:
        return _ok(
            f"{url}: an Experience Cloud site; site users need audience set to this site URL"
        )
    return (
        Status.WARN,
        f"{host} is not a Salesforce token host this tool knows (login, test, My Domain, site)",
        "use https://login.salesforce.com, https://test.salesforce.com or the org's My Domain "
        "URL, unless this is an Experience Cloud site on a custom domain",
    )


def check_audience(run: _Run) -> Outcome:
    url = validate_login_url(run.inp.host)
    explicit = run.text("audience").rstrip("/")
    kind = org_kind(url)
    if not explicit:
        candidates = audience_candidates(url, None)
        then = f", then {candidates[1]} if Salesforce rejects it" if len(candidates) > 1 else ""
        return _ok(f"derived from the Login URL: {candidates[0]}{then}")
    parts = urlsplit(explicit)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(
            "audience",
            f"{shown(explicit)} is not a URL",
            f"leave it empty to derive it, or use {PRODUCTION_AUDIENCE} / {SANDBOX_AUDIENCE}",
        )
    fix_empty = "leave audience empty so it is derived from the Login URL"
    if kind == "sandbox" and explicit == PRODUCTION_AUDIENCE:
        return (
            Status.FAIL,
            f"audience is {PRODUCTION_AUDIENCE} (production) but the Login URL {url} is a sandbox",
            f"set audience to {SANDBOX_AUDIENCE} (Connected App) or the sandbox's My Domain URL "
            f"(External Client App), or {fix_empty}",
        )
    if kind == "production" and explicit == SANDBOX_AUDIENCE:
        return (
            Status.FAIL,
            f"audience is {SANDBOX_AUDIENCE} (sandbox) but the Login URL {url} is production",
            f"set audience to {PRODUCTION_AUDIENCE} (Connected App) or the org's My Domain URL "
            f"(External Client App), or {fix_empty}",
        )
    if host.endswith((".lightning.force.com", ".force.com")):
        return (
            Status.FAIL,
            f"audience {explicit} is a Salesforce UI host",
            f"use the My Domain URL (https://NAME.my.salesforce.com) or {fix_empty}",
        )
    login_host = urlsplit(url).hostname or ""
    if host.endswith(".my.salesforce.com") and host != login_host:
        return (
            Status.WARN,
            f"audience {explicit} is the My Domain of another org than the Login URL {url}",
            f"use the My Domain URL of the org the Login URL points to, or {fix_empty}",
        )
    return _ok(f"{explicit} (set explicitly in the connection)")


def check_consumer_key(run: _Run) -> Outcome:
    raw = run.extra.get("consumer_key")
    key = raw if isinstance(raw, str) else ""
    fix = "copy the Consumer Key again: Setup > App Manager (or External Client App Manager) > the app > Consumer Key and Secret"
    if not key.strip():
        raise ConfigurationError("consumer_key", "is empty", fix)
    if key != key.strip() or any(c.isspace() for c in key):
        return (
            Status.FAIL,
            "consumer_key contains spaces or line breaks (copied with extra characters)",
            fix,
        )
    shown = f"{key[:8]}... ({len(key)} characters)"
    if re.fullmatch(r"[0-9A-Fa-f]{64}", key) or re.fullmatch(r"[0-9]{15,20}", key):
        return Status.WARN, f"{shown} looks like a Consumer Secret, not a Consumer Key", fix
    if not _CONSUMER_KEY_CHARS.match(key) or len(key) > 256:
        return Status.FAIL, f"{shown} has characters a consumer key never has", fix
    if not key.startswith("3MVG"):
        return (
            Status.WARN,
            f"{shown} does not start with 3MVG like Salesforce consumer keys do (an app Id or a "
            "secret?)",
            fix,
        )
    return _ok(f"{shown}, the JWT iss")


def check_username(run: _Run) -> Outcome:
    user = (run.inp.login or "").strip()
    fix = (
        "use the exact username from Setup > Users (sandbox usernames carry a suffix such as .uat)"
    )
    if not user or any(c.isspace() for c in user) or "@" not in user or len(user) > 256:
        return Status.FAIL, f"Username {user[:60]!r} is not a Salesforce username", fix
    try:
        kind = org_kind(validate_login_url(run.inp.host))
    except ConfigurationError:
        kind = "unknown"
    suffix = user.rsplit(".", 1)[-1].lower()
    if kind == "sandbox" and _COMMON_TLD.match(suffix):
        return (
            Status.WARN,
            f"{user} has no sandbox suffix, but the Login URL is a sandbox: sandbox copies of a "
            "user are named user@example.com.SANDBOXNAME",
            fix,
        )
    return _ok(f"{user}, the JWT sub")


# --- network checks --------------------------------------------------------------------------


def check_clock(run: _Run) -> Outcome:
    url = validate_login_url(run.inp.host)
    timeout = min(float(_int(run.extra.get("request_timeout"), 15)), 15.0)
    verify = run.text("ca_bundle") or True
    try:
        skew = None
        for method in ("HEAD", "GET"):  # some servers leave the Date header off HEAD answers
            response = run.session.request(
                method, url, timeout=timeout, allow_redirects=False, verify=verify
            )
            skew = server_clock_skew(response)
            response.close()
            if skew is not None:
                break
    except (requests.RequestException, RedirectRefusedError) as exc:
        return _skip(f"could not reach {url} to read its Date header ({type(exc).__name__})")
    if skew is None:
        return Status.WARN, f"{url} sent no usable Date header; the clock was not compared", ""
    run.clock_skew = skew
    direction = "ahead of" if skew > 0 else "behind"
    said = f"Salesforce's clock is {abs(skew):.0f} s {direction} this machine's"
    fix = (
        "set this machine's clock right (enable NTP, e.g. timedatectl set-ntp true): the JWT exp "
        f"is signed from the local clock and must be within {MAX_ASSERTION_LIFETIME // 60} minutes "
        "of Salesforce's"
    )
    if abs(skew) > CLOCK_FAIL_SECONDS:
        return (
            Status.FAIL,
            f"{said}: assertions signed here ({DEFAULT_ASSERTION_LIFETIME} s lifetime) look "
            f"{'expired' if skew > 0 else 'too far in the future'} to Salesforce",
            fix,
        )
    if abs(skew) > CLOCK_SKEW_TOLERANCE:
        return Status.WARN, f"{said}; exchanges start failing near {CLOCK_FAIL_SECONDS:.0f} s", fix
    return _ok(f"{said} (within {CLOCK_SKEW_TOLERANCE:.0f} s)")


def check_token_exchange(run: _Run) -> Outcome:
    try:
        run.settings = parse_connection(
            host=run.inp.host,
            login=run.inp.login,
            password=run.inp.password,
            extra=dict(run.extra),
            get_variable=run.inp.get_variable,
        )
    except ConfigurationError as exc:
        return Status.FAIL, f"not attempted: {_problem(exc)}", exc.fix
    retry = RetryPolicy(max_retries=min(run.settings.max_retries, DOCTOR_MAX_RETRIES))
    # A private cache: the doctor always does a real exchange, never reuses another's token.
    run.client = SalesforceClient(
        run.settings, session=run.session, retry=retry, cache=TokenCache()
    )
    try:
        run.token = run.client.auth.token()
    except AuthenticationError as exc:
        detail = _said(exc)
        if exc.audiences_tried:
            detail += " Audiences tried: " + ", ".join(exc.audiences_tried) + "."
        skew = exc.clock_skew
        if skew is not None and abs(skew) > CLOCK_SKEW_TOLERANCE:
            detail += f" Salesforce's clock differs from this machine's by {skew:.0f} s."
        checks = exc.checks
        clock_fine = run.clock_skew is not None and abs(run.clock_skew) <= CLOCK_SKEW_TOLERANCE
        if isinstance(exc, ExpiredAssertionError) and clock_fine:
            # The seeds: "expired" from Salesforce is almost never about time when the clocks
            # agree; it is a configuration mismatch, so list those settings too.
            detail += " The clocks agree, so 'expired' here usually means a mismatch in the setup."
            checks = (
                *checks,
                CHECK_USERNAME,
                CHECK_AUDIENCE,
                CHECK_CERTIFICATE,
                CHECK_PREAUTHORIZED,
            )
        return Status.FAIL, detail, "\n".join(f"{n}. {c}" for n, c in enumerate(checks, 1))
    token = run.token
    detail = f"access token for {token.instance_url} (audience {token.audience}"
    detail += f", scope '{token.scope}')" if token.scope else ")"
    first = run.settings.audiences[0]
    if token.audience != first:
        return (
            Status.WARN,
            detail + f"; the derived audience {first} was rejected first",
            f"set audience to {token.audience} in the connection to skip the rejected attempt",
        )
    scopes = set(token.scope.split())
    if scopes and not scopes & {"api", "full"}:
        return (
            Status.WARN,
            detail + "; the token has neither the 'api' nor the 'full' scope",
            "add the OAuth scope 'Manage user data via APIs (api)' to the app",
        )
    return _ok(detail)


def check_rest_api(run: _Run) -> Outcome:
    if run.client is None or run.token is None:
        return _skip("no access token")
    listed = run.client.versions()
    run.versions = [str(v.get("version")) for v in listed if isinstance(v, dict)]
    return _ok(
        f"{run.token.instance_url}/services/data/ answers ({len(run.versions)} API versions)"
    )


def check_api_version(run: _Run) -> Outcome:
    if run.versions is None or run.settings is None:
        return _skip("the version list was not read")
    wanted = run.settings.api_version
    if wanted in run.versions:
        run.version_ok = True
        return _ok(f"v{wanted} is available")
    newest = max(run.versions, key=float) if run.versions else "none"
    return (
        Status.FAIL,
        f"v{wanted} is not offered by this org (newest: v{newest})",
        f"set api_version to {newest} (or another listed version) in the connection's extra",
    )


def check_api_access(run: _Run) -> Outcome:
    if run.client is None or not run.version_ok:
        return _skip("needs a token and an available API version")
    limits = run.client.limits()
    daily = limits.get("DailyApiRequests") or {}
    most, left = daily.get("Max"), daily.get("Remaining")
    if isinstance(most, int) and isinstance(left, int) and most:
        used = 100.0 * (most - left) / most
        text = f"the user can call the REST API; {left:,} of {most:,} daily API requests left"
        if used >= API_USAGE_WARN_PERCENT:
            return (
                Status.WARN,
                text + f" ({used:.0f} % used)",
                "find the heavy API consumer (Setup > System Overview) before the quota runs out",
            )
        return _ok(text)
    return _ok("the user can call the REST API")


def check_identity(run: _Run) -> Outcome:
    if run.client is None or run.token is None or run.settings is None:
        return _skip("no access token")
    info = run.client.identity()
    name = str(info.get("preferred_username") or info.get("username") or "")
    org = info.get("organization_id", "?")
    user_id = info.get("user_id", "?")
    if name and name.lower() != run.settings.username.lower():
        return (
            Status.WARN,
            f"Salesforce says the token belongs to {name}, not {run.settings.username}",
            "check the Username field and the app's run-as settings",
        )
    return _ok(f"logged in as {name or run.settings.username} (user {user_id}, org {org})")


@dataclass(frozen=True)
class Check:
    """One step of the checklist: a stable name (used in --json) and what it verifies."""

    name: str
    verifies: str
    run: Callable[[_Run], Outcome]


CHECKS: tuple[Check, ...] = (
    Check("private_key", "the key loads and is RSA with at least 2048 bits", check_key),
    Check(
        "key_storage", "the key file is private and not about to be committed", check_key_storage
    ),
    Check(
        "certificate", "the certificate uploaded to the app belongs to the key", check_certificate
    ),
    Check(
        "certificate_expiry",
        "the certificate is not expired or about to expire",
        check_certificate_expiry,
    ),
    Check("login_url", "the Login URL is a token host (https, not a UI host)", check_login_url),
    Check("audience", "the audience fits the Login URL (production vs sandbox)", check_audience),
    Check("consumer_key", "the consumer key looks like one (iss)", check_consumer_key),
    Check("username", "the username is plausible for the org (sub)", check_username),
    Check("clock", "this machine's clock agrees with Salesforce's Date header", check_clock),
    Check("token_exchange", "Salesforce accepts the signed assertion", check_token_exchange),
    Check("rest_api", "the instance URL answers REST calls", check_rest_api),
    Check("api_version", "the configured API version is available", check_api_version),
    Check("api_access", "the user may use the API (and how much quota is left)", check_api_access),
    Check("identity", "the token belongs to the expected user", check_identity),
)


def run_doctor(
    inp: DoctorInput,
    *,
    checks: tuple[Check, ...] = CHECKS,
    session: requests.Session | None = None,
) -> list[CheckResult]:
    """Run every check in order; one result per check, never an exception."""
    run = _Run(inp=inp, session=session or make_session(pool_size=2))
    results = []
    try:
        for check in checks:
            results.append(_run_one(check, run))
    finally:
        if session is None:
            run.session.close()
    return results


def _run_one(check: Check, run: _Run) -> CheckResult:
    try:
        status, detail, fix = check.run(run)
    except ConfigurationError as exc:
        status, detail, fix = Status.FAIL, _problem(exc), exc.fix
    except ApiError as exc:
        status, fix = Status.FAIL, exc.hint
        detail = f"{exc.method} {exc.url}: HTTP {exc.status} {exc.error_code}: {exc.message}"
    except AuthenticationError as exc:  # a re-exchange during a REST call
        status, detail = Status.FAIL, _said(exc)
        fix = "\n".join(f"{n}. {c}" for n, c in enumerate(exc.checks, 1))
    except SalesforceError as exc:
        status, detail, fix = Status.FAIL, str(exc), ""
    except (requests.RequestException, OSError) as exc:
        status, detail, fix = Status.FAIL, f"{type(exc).__name__}: {exc}", ""
    except Exception as exc:  # a broken check must not hide the others
        status = Status.FAIL
        detail = f"the check itself failed: {type(exc).__name__}: {exc}"
        fix = "report this as a bug in airflow-provider-sfjwt"
    return CheckResult(check.name, status, detail, fix)


def _said(exc: AuthenticationError) -> str:
    """What Salesforce answered, then what it usually means."""
    return f"{exc.summary.rstrip('.')}. {exc.meaning}"


def _problem(exc: ConfigurationError) -> str:
    return f"connection field '{exc.field}' {exc.problem}"


def exit_code(results: list[CheckResult]) -> int:
    """0 when nothing failed (warnings and skips included), else 1."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def render_text(results: list[CheckResult], title: str = "") -> str:
    """The human report: one line per check, the fix indented under it."""
    width = max((len(r.name) for r in results), default=0)
    lines = [title] if title else []
    for r in results:
        lines.append(f"{r.status.value.upper():4}  {r.name:<{width}}  {r.detail}")
        if r.fix and r.status is not Status.PASS:
            for n, fix_line in enumerate(r.fix.splitlines()):
                prefix = "fix:" if n == 0 else "    "
                lines.append(f"{'':4}  {'':<{width}}  {prefix} {fix_line}")
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    lines.append(
        f"{counts[Status.PASS]} passed, {counts[Status.WARN]} warnings, "
        f"{counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped"
    )
    return "\n".join(lines)
