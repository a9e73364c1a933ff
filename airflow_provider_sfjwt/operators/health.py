"""``SalesforceCredentialHealthOperator``: fail early, on a schedule, before the credentials do.

The certificate uploaded to the Connected App / External Client App expires. Salesforce is
reported to keep accepting assertions after that date, so expiry is a rotation policy rather than
an outage, and the usual advice is a calendar reminder. This is the Airflow version of it: a daily
task that fails ``fail_days_before_expiry`` days ahead, so the team's normal alerting (failure
e-mails, callbacks, on-call) carries the reminder. It also does a real token exchange and one REST
call, so a revoked pre-authorisation or a disabled user shows up the morning after, not in the
middle of the nightly load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sfjwt.compat import AirflowFailException
from airflow_provider_sfjwt.operators.base import SalesforceBaseOperator
from airflow_provider_sfjwt.salesforce.keys import certificate_info, certificate_matches_key

if TYPE_CHECKING:
    from airflow.sdk import Context

ROTATION_STEPS = (
    "Renew it for the same key (sfjwt keygen --reuse-key KEY.pem --cert NEW.crt), upload NEW.crt "
    "to the app in place of the old certificate, and put it in the connection's certificate field "
    "(docs/setup.md, 'Certificate expiry and rotation')."
)


class SalesforceCredentialHealthOperator(SalesforceBaseOperator):
    """Check a ``salesforce_jwt`` connection: certificate expiry, key match, a live login.

    Fails (without retries: waiting cannot fix a certificate) when the connection's certificate
    expires within ``fail_days_before_expiry`` days, has expired, or does not belong to the
    connection's key; fails (with the task's normal retries) when the token exchange or the REST
    call fails. Returns a small summary for XCom, with no secrets in it.

    :param salesforce_conn_id: the connection to check.
    :param fail_days_before_expiry: how many days ahead of the certificate's expiry to start
        failing. Leave room for a change process; 30 by default.
    :param require_certificate: fail when the connection has no ``certificate`` field, since
        expiry cannot be watched without it. Set False to only check the login.
    :param check_login: also do a token exchange and a REST call (``/userinfo``).
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "fail_days_before_expiry")
    ui_color = "#e8f4e8"

    def __init__(
        self,
        *,
        fail_days_before_expiry: int = 30,
        require_certificate: bool = True,
        check_login: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_days_before_expiry = fail_days_before_expiry
        self.require_certificate = require_certificate
        self.check_login = check_login

    def execute(self, context: Context) -> dict[str, Any]:
        settings = self.hook.settings
        summary: dict[str, Any] = {
            "conn_id": self.salesforce_conn_id,
            "username": settings.username,
        }
        cert = settings.load_certificate()
        if cert is None:
            if self.require_certificate:
                raise AirflowFailException(
                    f"Connection {self.salesforce_conn_id!r} has no certificate, so its expiry "
                    "cannot be watched. Put the certificate uploaded to the app (PEM, or a "
                    "file:/env:/variable: reference) in the connection's certificate field, or set "
                    "require_certificate=False."
                )
        else:
            info = certificate_info(cert)
            days = info.days_left()
            summary.update(
                certificate_subject=info.subject,
                certificate_expires=info.not_after.isoformat(),
                certificate_days_left=int(days),
            )
            if not certificate_matches_key(cert, settings.load_private_key()):
                raise AirflowFailException(
                    f"The certificate in connection {self.salesforce_conn_id!r} ({info.subject}) "
                    "does not belong to the connection's private key. If it is the certificate "
                    "uploaded to the app, every token exchange fails with 'invalid assertion'. "
                    "Put the matching certificate or key in the connection."
                )
            if days < 0:
                raise AirflowFailException(
                    f"The certificate in connection {self.salesforce_conn_id!r} expired on "
                    f"{info.not_after.date()}, past its rotation date (Salesforce is reported to "
                    "keep accepting its key, which is no reason to keep it). " + ROTATION_STEPS
                )
            limit = int(self.fail_days_before_expiry)
            if days < limit:
                raise AirflowFailException(
                    f"The certificate in connection {self.salesforce_conn_id!r} expires in "
                    f"{int(days)} days, on {info.not_after.date()} (this check fails {limit} days "
                    "ahead). " + ROTATION_STEPS
                )
            self.log.info(
                "Certificate %s is valid until %s (%d days).",
                info.subject,
                info.not_after.date(),
                int(days),
            )
        if self.check_login:
            # A real exchange every run: a token another task stored proves nothing about today.
            client = self.hook.login_client()
            try:
                identity = client.identity()
                instance_url = client.instance_url
            finally:
                client.close()
            summary.update(
                instance_url=instance_url,
                user_id=identity.get("user_id"),
                organization_id=identity.get("organization_id"),
            )
            self.log.info("Logged in to %s as %s.", instance_url, settings.username)
        return summary
