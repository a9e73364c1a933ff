"""Apache Airflow provider for Salesforce over the OAuth 2.0 JWT Bearer flow.

Airflow discovers the provider through the ``apache_airflow_provider`` entry point, which calls
:func:`get_provider_info`. :data:`CONN_FIELDS` and :data:`UI_FIELD_BEHAVIOUR` are the single source
of the ``salesforce_jwt`` connection form on every Airflow 3 release: 3.2 and later build the form
from the ``conn-fields`` and ``ui-field-behaviour`` in the provider info (3.3 from nothing else),
while 3.0 and 3.1 only ask the hook's ``get_connection_form_widgets()`` and
``get_ui_field_behaviour()``, which translate the same two dicts (:mod:`.compat`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

DEFAULT_API_VERSION = "66.0"
"""Spring '26. A pinned, widely available default; the ``api_version`` connection field overrides it."""


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    schema.setdefault("type", ["string", "null"])
    return {"label": label, "description": description, "schema": schema}


NUMBER_FIELDS: dict[str, tuple[int | None, int, int]] = {
    "request_timeout": (60, 1, 3600),
    "max_retries": (5, 0, 20),
    "max_api_usage_percent": (None, 1, 100),
    "cert_expiry_warning_days": (30, 0, 3650),
}
"""The whole-number extras as ``(default, minimum, maximum)`` (``None``: empty by default). The
form's schema and the connection parser (``salesforce.settings``) both read them, so the form
never accepts a value the parser refuses."""


def _bounded(fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``fields`` with every whole-number field's schema given its type, default and limits."""
    for name, (default, minimum, maximum) in NUMBER_FIELDS.items():
        schema = fields[name]["schema"]
        schema.update(type=["integer", "null"], minimum=minimum, maximum=maximum)
        if default is not None:
            schema["default"] = default
    return fields


CONN_FIELDS: dict[str, dict[str, Any]] = _bounded(
    {
        "consumer_key": _field(
            "Consumer Key",
            "Consumer key (client id) of the Connected App or External Client App; the JWT 'iss'. "
            "Setup > App Manager (or External Client App Manager) > your app > Consumer Key.",
            minLength=1,
        ),
        "audience": _field(
            "Audience",
            "JWT 'aud'. Leave empty to derive it from the Login URL: login.salesforce.com and "
            "test.salesforce.com for those hosts, otherwise the Login URL itself (My Domain; reported "
            "to be needed by External Client Apps since Spring '26). Set it for Experience Cloud "
            "sites.",
            examples=["https://login.salesforce.com", "https://test.salesforce.com"],
        ),
        "private_key": _field(
            "Private Key (PEM)",
            "The RSA private key (2048 bits or more) in PEM. Pasted on one line is fine. "
            "Leave empty when Private Key Reference is set.",
            format="password",
        ),
        "private_key_ref": _field(
            "Private Key Reference",
            "Where the key lives instead of inline: file:/path/key.pem, env:VARIABLE or "
            "variable:NAME (an Airflow Variable, so any secrets backend).",
            examples=["file:/opt/airflow/secrets/salesforce.key", "variable:salesforce_jwt_key"],
        ),
        "certificate": _field(
            "Certificate (PEM or reference)",
            "Optional. The public certificate uploaded to the app (PEM, file:, env: or variable:). "
            "Lets the hook and 'sfjwt doctor' check that it matches the key and warn before it expires.",
            format="multiline",
        ),
        "api_version": _field(
            "API Version",
            "Salesforce REST API version, e.g. 66.0.",
            default=DEFAULT_API_VERSION,
            pattern=r"^[0-9]{2,3}\.0$",
        ),
        "request_timeout": _field(
            "Request Timeout (s)",
            "Seconds to wait for Salesforce to answer one HTTP request.",
        ),
        "max_retries": _field(
            "Max Retries",
            "How often a transient failure (connection error, 5xx, 429) is retried with backoff.",
        ),
        "max_api_usage_percent": _field(
            "Max API Usage (%)",
            "Optional brake: stop before the next API call once the org's daily API usage "
            "(Setup > System Overview) is at or above this share. Empty: no brake.",
        ),
        "ca_bundle": _field(
            "CA Bundle",
            "Optional path of a PEM bundle of the CAs to trust for Salesforce's TLS (a corporate "
            "TLS-inspecting proxy); it must exist on every worker. Empty: the system store or "
            "REQUESTS_CA_BUNDLE.",
            examples=["/etc/ssl/certs/corporate-proxy.pem"],
        ),
        # No "default" here: the name contains "token", so Airflow would pre-fill the form with "***".
        "token_cache": _field(
            "Token Sharing",
            "file (the default when empty): the tasks of one machine share the access token through "
            "an encrypted file, so a DAG of many tasks logs in once. process: every task process "
            "logs in for itself.",
            examples=["file", "process"],
        ),
        "instance_domains": _field(
            "Instance Domains",
            "Rarely needed: comma-separated domains besides Salesforce's own on which the token "
            "answer's instance URL may be, for a private deployment. Each allows itself and its "
            "subdomains.",
            examples=["sfdc.example.gov"],
        ),
        "cert_expiry_warning_days": _field(
            "Certificate Warning (days)",
            "Warn in the task log when the certificate expires within this many days.",
        ),
    }
)
"""The connection's extra fields: label, help text, JSON schema (type, default, sensitivity
(``format: password``), limits). Airflow 3.2+ read them from the provider info below; the hook
turns the same dict into the form of Airflow 3.0 and 3.1."""

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "extra"],
    "relabeling": {
        "host": "Login URL",
        "login": "Username",
        "password": "Key passphrase",
    },
    "placeholders": {
        "host": "https://login.salesforce.com",
        "login": "integration.user@example.com",
        "password": "only for an encrypted private key",
    },
}
"""How the form shows Airflow's own fields (host, login, password; the rest hidden)."""


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-sfjwt",
        "name": "Salesforce (JWT Bearer)",
        "description": "Salesforce over the OAuth 2.0 JWT Bearer flow: SOQL extracts, sObject "
        "Collections, Bulk API 2.0, Apex REST and sensors.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Salesforce (JWT Bearer)",
                "external-doc-url": "https://developer.salesforce.com/docs/apis",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Salesforce (JWT Bearer)",
                "python-modules": ["airflow_provider_sfjwt.hooks.salesforce_jwt"],
            }
        ],
        "operators": [
            {
                "integration-name": "Salesforce (JWT Bearer)",
                "python-modules": [
                    "airflow_provider_sfjwt.operators.query",
                    "airflow_provider_sfjwt.operators.collections",
                    "airflow_provider_sfjwt.operators.rest",
                    "airflow_provider_sfjwt.operators.bulk",
                    "airflow_provider_sfjwt.operators.health",
                    "airflow_provider_sfjwt.operators.replicate",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Salesforce (JWT Bearer)",
                "python-modules": ["airflow_provider_sfjwt.sensors.soql"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Salesforce (JWT Bearer)",
                "python-modules": ["airflow_provider_sfjwt.triggers.bulk"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "salesforce_jwt",
                "hook-class-name": "airflow_provider_sfjwt.hooks.salesforce_jwt.SalesforceJWTHook",
                "hook-name": "Salesforce (JWT Bearer)",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
