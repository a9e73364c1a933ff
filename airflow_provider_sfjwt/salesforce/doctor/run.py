"""What the checks of one ``sfjwt doctor`` run share: their verdicts, the input, the run's state.

Each check is a function of :class:`Run` returning an :data:`Outcome` (status, one line of
detail, the fix); a check may leave what it found (the key, a client, a token) on the run for the
checks after it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from ..auth import AccessToken
from ..client import SalesforceClient
from ..errors import AuthenticationError, ConfigurationError
from ..keys import VariableGetter
from ..settings import ConnectionSettings


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
class Run:
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


def passed(detail: str) -> Outcome:
    return Status.PASS, detail, ""


def skipped(why: str) -> Outcome:
    return Status.SKIP, why, ""


def said(exc: AuthenticationError) -> str:
    """What Salesforce answered, then what it usually means."""
    return f"{exc.summary.rstrip('.')}. {exc.meaning}"


def problem(exc: ConfigurationError) -> str:
    return f"connection field '{exc.field}' {exc.problem}"


def int_setting(value: Any, default: int) -> int:
    """A whole-number setting of the connection's extra, ``default`` when unset or unusable."""
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
