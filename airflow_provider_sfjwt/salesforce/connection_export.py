"""A validated ``salesforce_jwt`` connection written out in the three forms Airflow reads.

``sfjwt connection`` turns flags into: an ``airflow connections add`` command (metadata
database), an ``AIRFLOW_CONN_<ID>`` JSON value (environment) and the JSON document a secrets
backend stores under its connections prefix. All three carry the same fields, validated with the
same :func:`parse_connection` the hook uses, so a connection that passes here loads in a task.

Secrets stay out of the output unless asked for: the key goes in as a reference
(``private_key_ref``), and the passphrase as a shell variable in the command and not at all in the
JSON forms. ``inline_secrets`` puts both in verbatim, for users who paste the result straight into
a secrets backend; the output is then itself a secret.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import NAME_SHAPE, ConfigurationError, shown
from .keys import (
    REF_SCHEMES,
    VariableGetter,
    command_line_reference,
    file_reference,
    load_certificate,
    resolve_reference,
)
from .settings import ConnectionSettings, parse_connection

CONN_TYPE = "salesforce_jwt"


@dataclass(frozen=True, repr=False)
class ConnectionExport:
    conn_id: str
    host: str
    login: str
    extra: dict[str, Any]
    password: str | None = field(default=None, repr=False)
    """Only set when secrets are inlined."""
    password_env: str | None = None
    """The shell variable holding the passphrase, used in the CLI command instead of the value."""
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"ConnectionExport(conn_id={self.conn_id!r}, host={self.host!r}, login={self.login!r})"
        )

    @property
    def env_name(self) -> str:
        return "AIRFLOW_CONN_" + self.conn_id.upper()

    def document(self) -> dict[str, Any]:
        """The connection as JSON: the AIRFLOW_CONN_* value and the secrets-backend document."""
        doc: dict[str, Any] = {"conn_type": CONN_TYPE, "host": self.host, "login": self.login}
        if self.password:
            doc["password"] = self.password
        doc["extra"] = self.extra
        return doc

    def env_value(self) -> str:
        return json.dumps(self.document(), separators=(",", ":"))

    def airflow_cli(self) -> str:
        parts = [
            f"airflow connections add {shlex.quote(self.conn_id)}",
            f"--conn-type {CONN_TYPE}",
            f"--conn-host {shlex.quote(self.host)}",
            f"--conn-login {shlex.quote(self.login)}",
        ]
        if self.password:
            parts.append(f"--conn-password {shlex.quote(self.password)}")
        elif self.password_env:
            parts.append(f'--conn-password "${self.password_env}"')
        parts.append(f"--conn-extra {shlex.quote(json.dumps(self.extra))}")
        return " \\\n    ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """Everything ``sfjwt connection --json`` prints."""
        return {
            "conn_id": self.conn_id,
            "airflow_cli": self.airflow_cli(),
            "env": {"name": self.env_name, "value": self.env_value()},
            "secrets_backend": self.document(),
            "notes": list(self.notes),
        }


def build_connection(
    conn_id: str,
    *,
    login_url: str | None,
    username: str | None,
    consumer_key: str | None,
    key_file: str | None = None,
    key_ref: str | None = None,
    passphrase: str | None = None,
    passphrase_env: str | None = None,
    certificate_file: str | None = None,
    audience: str | None = None,
    api_version: str | None = None,
    inline_secrets: bool = False,
    get_variable: VariableGetter | None = None,
) -> ConnectionExport:
    """Validate the values (key included, no network) and return the connection to print.

    ``key_file`` is a local copy of the key used for validation; ``key_ref`` is what the
    connection stores (``file:/path/on/workers``, ``env:VAR`` or ``variable:NAME``). With only a
    key file, the reference is ``file:`` + its absolute path. Relative paths (the files, and a
    ``file:`` key reference) are taken from the current directory and stored absolute.
    """
    if not conn_id or any(c.isspace() for c in conn_id):
        raise ConfigurationError(
            "conn_id", f"{shown(conn_id)} is not a connection id", "use e.g. salesforce_jwt_default"
        )
    if not key_file and not key_ref:
        raise ConfigurationError(
            "private_key_ref",
            "is not given",
            "pass --key-file with the private key from sfjwt keygen (and --key-ref with its path "
            "on the workers, or variable:NAME for a secrets backend)",
        )
    key_path = file_reference(key_file) if key_file else None
    ref = command_line_reference(key_ref) if key_ref else key_path or ""
    scheme, _, target = ref.partition(":")
    if scheme not in REF_SCHEMES or not target:
        raise ConfigurationError(
            "private_key_ref",
            f"{shown(ref)} is not a reference",
            "use file:/path/on/workers/key.pem, env:VARIABLE or variable:NAME",
        )
    if key_path:
        pem = resolve_reference(key_path, "key-file")
    else:
        try:
            pem = resolve_reference(ref, "private_key_ref", get_variable)
        except ConfigurationError as exc:
            raise ConfigurationError(
                "private_key_ref",
                f"{exc.problem}, so the key cannot be checked from here",
                "also pass --key-file with a local copy of the key",
            ) from None
    extra: dict[str, Any] = {"consumer_key": (consumer_key or "").strip()}
    if inline_secrets:
        extra["private_key"] = pem
    else:
        extra["private_key_ref"] = ref
    notes = []
    if certificate_file:
        cert_text = resolve_reference(file_reference(certificate_file), "cert")
        load_certificate(cert_text, "cert")
        extra["certificate"] = cert_text
    else:
        notes.append(
            "No --cert given: with the certificate in the connection, the hook and sfjwt doctor "
            "warn before it expires and check it matches the key."
        )
    if audience:
        extra["audience"] = audience.strip()
    if api_version:
        extra["api_version"] = api_version.strip()
    settings: ConnectionSettings = parse_connection(
        host=login_url,
        login=username,
        password=passphrase,
        extra={**extra, "private_key": pem, "private_key_ref": None},
    )
    if "ENCRYPTED" in pem and not inline_secrets:
        notes.append(
            "The key is encrypted: its passphrase goes in the connection's password field. It is "
            "not printed; the airflow command reads it from "
            + (f"${passphrase_env}" if passphrase_env else "a variable you set")
            + ', and the JSON forms need "password": "..." added where they are stored.'
        )
    if ref.startswith("file:"):
        notes.append(
            f"The connection reads the key from {ref[5:]} on every worker (and on the API server "
            "for the Test button). To keep it in a secrets backend instead, store the PEM as an "
            "Airflow Variable and pass --key-ref variable:NAME."
        )
    elif ref.startswith("variable:"):
        notes.append(
            f"Store the key PEM as Airflow Variable {ref[9:]!r} in your secrets backend (e.g. "
            f"under the variables prefix: airflow/variables/{ref[9:]})."
        )
    if inline_secrets:
        notes.append("This output contains the private key: treat it as a secret.")
    return ConnectionExport(
        conn_id=conn_id,
        host=settings.login_url,
        login=settings.username,
        extra={k: v for k, v in extra.items() if v},
        password=passphrase if inline_secrets else None,
        password_env=passphrase_env if passphrase else None,
        notes=tuple(notes),
    )


def passphrase_from_env(name: str | None) -> str | None:
    """The passphrase in environment variable ``name`` (None when no name is given)."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(
            "passphrase-env",
            f"names environment variable {shown(name, NAME_SHAPE)}, which is not set or empty",
            f"export {name}=... first (read -s {name}; export {name})",
        )
    return value
