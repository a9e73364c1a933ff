"""The checklist, in order, and what runs it and reports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import requests

from ..client import make_session
from ..errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    SalesforceError,
)
from .network import (
    check_api_access,
    check_api_version,
    check_clock,
    check_identity,
    check_rest_api,
    check_token_exchange,
)
from .offline import (
    check_audience,
    check_certificate,
    check_certificate_expiry,
    check_consumer_key,
    check_key,
    check_key_storage,
    check_login_url,
    check_username,
)
from .run import CheckResult, DoctorInput, Outcome, Run, Status, problem, said


@dataclass(frozen=True)
class Check:
    """One step of the checklist: a stable name (used in --json) and what it verifies."""

    name: str
    verifies: str
    run: Callable[[Run], Outcome]


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
    run = Run(inp=inp, session=session or make_session(pool_size=2))
    results = []
    try:
        for check in checks:
            results.append(_run_one(check, run))
    finally:
        if session is None:
            run.session.close()
    return results


def _run_one(check: Check, run: Run) -> CheckResult:
    try:
        status, detail, fix = check.run(run)
    except ConfigurationError as exc:
        status, detail, fix = Status.FAIL, problem(exc), exc.fix
    except ApiError as exc:
        status, fix = Status.FAIL, exc.hint
        detail = f"{exc.method} {exc.url}: HTTP {exc.status} {exc.error_code}: {exc.message}"
    except AuthenticationError as exc:  # a re-exchange during a REST call
        status, detail = Status.FAIL, said(exc)
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
