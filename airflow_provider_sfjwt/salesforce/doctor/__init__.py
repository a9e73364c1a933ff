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

The package: :mod:`.run` (verdicts, input, the state the checks share), :mod:`.offline` and
:mod:`.network` (the checks), :mod:`.checklist` (their order, the runner and the report).
"""

from __future__ import annotations

from .checklist import CHECKS, Check, exit_code, render_text, run_doctor
from .run import CheckResult, DoctorInput, Status

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "DoctorInput",
    "Status",
    "exit_code",
    "render_text",
    "run_doctor",
]
