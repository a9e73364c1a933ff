"""The checks ``sfjwt doctor`` runs against Salesforce: the clock, the real token exchange, then
REST calls with the token (API version, API access and quota, the token's user)."""

from __future__ import annotations

import requests

from ..auth import (
    DEFAULT_ASSERTION_LIFETIME,
    MAX_ASSERTION_LIFETIME,
    TokenCache,
    server_clock_skew,
)
from ..client import SalesforceClient
from ..errors import (
    CHECK_AUDIENCE,
    CHECK_CERTIFICATE,
    CHECK_PREAUTHORIZED,
    CHECK_USERNAME,
    CLOCK_SKEW_TOLERANCE,
    AuthenticationError,
    ConfigurationError,
    ExpiredAssertionError,
    RedirectRefusedError,
)
from ..retry import RetryPolicy
from ..settings import (
    parse_connection,
    validate_login_url,
)
from .run import Outcome, Run, Status, int_setting, passed, problem, said, skipped

CLOCK_FAIL_SECONDS = 120.0
"""Beyond this, an assertion signed here is outside Salesforce's 3-minute ``exp`` window."""
API_USAGE_WARN_PERCENT = 90.0
DOCTOR_MAX_RETRIES = 1
"""A diagnosis should answer in seconds; one retry absorbs a blip without hiding an outage."""


def check_clock(run: Run) -> Outcome:
    url = validate_login_url(run.inp.host)
    timeout = min(float(int_setting(run.extra.get("request_timeout"), 15)), 15.0)
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
        return skipped(f"could not reach {url} to read its Date header ({type(exc).__name__})")
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
    return passed(f"{said} (within {CLOCK_SKEW_TOLERANCE:.0f} s)")


def check_token_exchange(run: Run) -> Outcome:
    try:
        run.settings = parse_connection(
            host=run.inp.host,
            login=run.inp.login,
            password=run.inp.password,
            extra=dict(run.extra),
            get_variable=run.inp.get_variable,
        )
    except ConfigurationError as exc:
        return Status.FAIL, f"not attempted: {problem(exc)}", exc.fix
    retry = RetryPolicy(max_retries=min(run.settings.max_retries, DOCTOR_MAX_RETRIES))
    # A private cache: the doctor always does a real exchange, never reuses another's token.
    run.client = SalesforceClient(
        run.settings, session=run.session, retry=retry, cache=TokenCache()
    )
    try:
        run.token = run.client.auth.token()
    except AuthenticationError as exc:
        detail = said(exc)
        if exc.audiences_tried:
            detail += " Audiences tried: " + ", ".join(exc.audiences_tried) + "."
        skew = exc.clock_skew
        if skew is not None and abs(skew) > CLOCK_SKEW_TOLERANCE:
            detail += f" Salesforce's clock differs from this machine's by {skew:.0f} s."
        checks = exc.checks
        clock_fine = run.clock_skew is not None and abs(run.clock_skew) <= CLOCK_SKEW_TOLERANCE
        if isinstance(exc, ExpiredAssertionError) and clock_fine:
            # "expired" from Salesforce is almost never about time when the clocks agree; it is
            # a configuration mismatch, so list those settings too.
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
    return passed(detail)


def check_rest_api(run: Run) -> Outcome:
    if run.client is None or run.token is None:
        return skipped("no access token")
    listed = run.client.versions()
    run.versions = [str(v.get("version")) for v in listed if isinstance(v, dict)]
    return passed(
        f"{run.token.instance_url}/services/data/ answers ({len(run.versions)} API versions)"
    )


def check_api_version(run: Run) -> Outcome:
    if run.versions is None or run.settings is None:
        return skipped("the version list was not read")
    wanted = run.settings.api_version
    if wanted in run.versions:
        run.version_ok = True
        return passed(f"v{wanted} is available")
    newest = max(run.versions, key=float) if run.versions else "none"
    return (
        Status.FAIL,
        f"v{wanted} is not offered by this org (newest: v{newest})",
        f"set api_version to {newest} (or another listed version) in the connection's extra",
    )


def check_api_access(run: Run) -> Outcome:
    if run.client is None or not run.version_ok:
        return skipped("needs a token and an available API version")
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
        return passed(text)
    return passed("the user can call the REST API")


def check_identity(run: Run) -> Outcome:
    if run.client is None or run.token is None or run.settings is None:
        return skipped("no access token")
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
    return passed(f"logged in as {name or run.settings.username} (user {user_id}, org {org})")
