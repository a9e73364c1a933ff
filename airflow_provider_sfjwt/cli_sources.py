"""Where the ``sfjwt`` command's connection comes from: an Airflow connection, flags, or both.

``doctor`` and ``token`` read a connection by id (``--conn-id``, else the default one) wherever
Airflow keeps it, and let flags override single values. Airflow is imported only inside these
lookups, so commands that need no connection (``sfjwt keygen``) work without an Airflow setup.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

DEFAULT_CONN_ID = "salesforce_jwt_default"


class UsageError(Exception):
    """A problem with the command line itself (exit code 2)."""


# --- Airflow access (lazy) -------------------------------------------------------------------


@contextlib.contextmanager
def _airflow_lookup() -> Iterator[None]:
    """Around every call into Airflow: look connections up as ``airflow connections test`` does,
    and keep Airflow's own log lines off stdout.

    A plain process searches env vars and secrets backends but not the metadata database (see
    Airflow's ``ensure_secrets_backend_loaded``); the server context adds the database. The
    previous value is restored afterwards. Airflow logs to stdout (e.g. "empty cryptography
    key"), which would corrupt ``--json`` output, so stdout points at stderr meanwhile.
    """
    old = os.environ.get("_AIRFLOW_PROCESS_CONTEXT")
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if old is None:
            os.environ.pop("_AIRFLOW_PROCESS_CONTEXT", None)
        else:
            os.environ["_AIRFLOW_PROCESS_CONTEXT"] = old


def airflow_variable(name: str) -> str | None:
    """An Airflow Variable (so any secrets backend), for ``variable:`` key references."""
    with _airflow_lookup():
        from airflow_provider_sfjwt.compat import variable_outside_task

        try:
            return str(variable_outside_task(name))
        except Exception:  # KeyError subclass or AirflowNotFoundException
            return None


def airflow_connection(conn_id: str) -> dict[str, Any]:
    """host / login / password / extra of an Airflow connection, wherever it is stored."""
    with _airflow_lookup():
        from airflow_provider_sfjwt.compat import AirflowNotFoundException, connection_outside_task

        try:
            conn = connection_outside_task(conn_id)
        except AirflowNotFoundException:
            raise UsageError(
                f"Airflow connection {conn_id!r} was not found in AIRFLOW_CONN_{conn_id.upper()}, "
                "the configured secrets backend or the metadata database. Check the id, or pass "
                "the values as flags (sfjwt doctor --help)."
            ) from None
        extra = dict(conn.extra_dejson)
    if conn.conn_type and conn.conn_type != "salesforce_jwt":
        print(
            f"note: connection {conn_id!r} has type {conn.conn_type!r}, not 'salesforce_jwt'",
            file=sys.stderr,
        )
    return {
        "host": conn.host,
        "login": conn.login,
        "password": conn.password,
        "extra": extra,
    }


# --- connection input shared by doctor and token ---------------------------------------------


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connection values (override the Airflow connection's)")
    g.add_argument(
        "--login-url", help="https://login.salesforce.com, test.salesforce.com or My Domain"
    )
    g.add_argument("--username", help="the integration user's Salesforce username (JWT sub)")
    g.add_argument("--consumer-key", help="the app's Consumer Key (JWT iss)")
    g.add_argument("--key-file", help="the RSA private key (PEM)")
    g.add_argument(
        "--passphrase-env", metavar="VAR", help="environment variable with the key passphrase"
    )
    g.add_argument("--audience", help="JWT aud (default: derived from the Login URL)")
    g.add_argument("--cert", help="the certificate uploaded to the app (PEM)")
    g.add_argument("--api-version", help="REST API version, e.g. 66.0")


def connection_input(args: argparse.Namespace) -> dict[str, Any]:
    """The connection's raw fields: from --conn-id if given, then overridden by flags."""
    from airflow_provider_sfjwt.salesforce.connection_export import passphrase_from_env
    from airflow_provider_sfjwt.salesforce.keys import file_reference

    conn_id = _conn_id(args)
    if conn_id:
        fields = airflow_connection(conn_id)
    else:
        fields = {"host": None, "login": None, "password": None, "extra": {}}
    extra = dict(fields["extra"])
    if args.login_url:
        fields["host"] = args.login_url
    if args.username:
        fields["login"] = args.username
    if args.passphrase_env:
        fields["password"] = passphrase_from_env(args.passphrase_env)
    if args.consumer_key:
        extra["consumer_key"] = args.consumer_key
    if args.key_file:
        extra.pop("private_key", None)
        extra["private_key_ref"] = file_reference(args.key_file)
    if args.cert:
        extra["certificate"] = file_reference(args.cert)
    if args.audience:
        extra["audience"] = args.audience
    if args.api_version:
        extra["api_version"] = args.api_version
    fields["extra"] = extra
    return fields


def _conn_id(args: argparse.Namespace) -> str | None:
    """The connection to read: --conn-id, else the default one unless the values come as flags."""
    if args.conn_id:
        return str(args.conn_id)
    if args.login_url or args.username or args.consumer_key or args.key_file:
        return None
    return DEFAULT_CONN_ID


def connection_source(args: argparse.Namespace) -> str:
    conn_id = _conn_id(args)
    return f"Airflow connection {conn_id!r}" if conn_id else "command-line flags"
