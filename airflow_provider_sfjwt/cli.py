"""The ``sfjwt`` command: key pair, connection, diagnosis and a token for curl, one command each.

A thin dispatcher: argument parsing and printing live here, the work in the core modules
(``salesforce.keygen``, ``salesforce.connection_export``, ``salesforce.doctor``). Airflow is
imported only when a command reads an Airflow connection or Variable (``--conn-id``,
``variable:`` references), so ``sfjwt keygen`` works on a laptop without an Airflow setup.

Exit codes: 0 success, 1 a check or the token exchange failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence

from airflow_provider_sfjwt import __version__
from airflow_provider_sfjwt.cli_sources import (
    DEFAULT_CONN_ID,
    UsageError,
    add_connection_flags,
    airflow_variable,
    connection_input,
    connection_source,
)
from airflow_provider_sfjwt.salesforce.errors import (
    AuthenticationError,
    ConfigurationError,
    SalesforceError,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- commands --------------------------------------------------------------------------------


def _keygen_passphrase(args: argparse.Namespace) -> str | None:
    from airflow_provider_sfjwt.salesforce.connection_export import passphrase_from_env

    if args.passphrase_env:
        return passphrase_from_env(args.passphrase_env)
    if not args.encrypt:
        return None
    if not sys.stdin.isatty():
        raise UsageError(
            "--encrypt prompts for the passphrase on a terminal; use --passphrase-env VAR instead"
        )
    first = getpass.getpass("Key passphrase: ")
    if len(first) < 8:
        raise UsageError("the passphrase needs at least 8 characters")
    if getpass.getpass("Repeat the passphrase: ") != first:
        raise UsageError("the two passphrases differ")
    return first


def cmd_keygen(args: argparse.Namespace) -> int:
    from airflow_provider_sfjwt.salesforce import keygen

    passphrase = _keygen_passphrase(args)
    subject = (
        keygen.parse_subject(args.subject) if args.subject else keygen.default_subject(args.cn)
    )
    if args.reuse_key:
        files = keygen.renew_certificate(
            args.reuse_key,
            args.cert,
            subject=subject,
            days=args.days,
            passphrase=passphrase,
            force=args.force,
        )
        print(f"Kept private key   {files.key_path}  (RSA {files.bits})")
    else:
        files = keygen.write_key_pair(
            args.key,
            args.cert,
            bits=args.bits,
            subject=subject,
            days=args.days,
            passphrase=passphrase,
            force=args.force,
        )
        state = "encrypted" if files.encrypted else "not encrypted"
        print(
            f"Wrote private key  {files.key_path}  (RSA {files.bits}, PKCS#8, {state}, mode 0600)"
        )
    info = files.certificate
    print(f"Wrote certificate  {files.cert_path}  ({info.subject})")
    print(f"Fingerprint        SHA-256 {info.fingerprint_sha256}")
    print(
        f"Expires            {info.not_after:%Y-%m-%d %H:%M} UTC ({round(info.days_left())} days)"
    )
    warning = keygen.git_exposure(files.key_path)
    if warning:
        print(f"\nWARNING: {warning}.", file=sys.stderr)
    print("\nNext steps:")
    for line in keygen.next_steps(files):
        print(("  " if line.startswith("  ") else "- ") + line.strip())
    return EXIT_OK


def cmd_connection(args: argparse.Namespace) -> int:
    from airflow_provider_sfjwt.salesforce.connection_export import (
        build_connection,
        passphrase_from_env,
    )

    needs_variable = (args.key_ref or "").startswith("variable:") and not args.key_file
    export = build_connection(
        args.conn_id,
        login_url=args.login_url,
        username=args.username,
        consumer_key=args.consumer_key,
        key_file=args.key_file,
        key_ref=args.key_ref,
        passphrase=passphrase_from_env(args.passphrase_env),
        passphrase_env=args.passphrase_env,
        certificate_file=args.cert,
        audience=args.audience,
        api_version=args.api_version,
        inline_secrets=args.inline_key,
        get_variable=airflow_variable if needs_variable else None,
    )
    if args.json:
        print(json.dumps(export.as_dict(), indent=2))
        return EXIT_OK
    print("# 1. Metadata database (Airflow UI lists it):")
    print(export.airflow_cli())
    print("\n# 2. Environment variable (workers, scheduler and API server):")
    print(f"export {export.env_name}={shlex.quote(export.env_value())}")
    print(
        f"\n# 3. Secrets backend: store this JSON under the connections prefix, e.g. "
        f"airflow/connections/{export.conn_id}:"
    )
    print(json.dumps(export.document(), indent=2))
    if export.notes:
        print()
        for note in export.notes:
            print(f"note: {note}")
    print(f"\nThen check it end to end: sfjwt doctor --conn-id {export.conn_id}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from airflow_provider_sfjwt.salesforce import doctor

    fields = connection_input(args)
    inp = doctor.DoctorInput(
        host=fields["host"],
        login=fields["login"],
        password=fields["password"],
        extra=fields["extra"],
        get_variable=airflow_variable,
    )
    results = doctor.run_doctor(inp)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(doctor.render_text(results, f"sfjwt doctor: {connection_source(args)}"))
    return doctor.exit_code(results)


def mask_token(token: str) -> str:
    return f"{token[:5]}...(masked, {len(token)} characters; --show prints it)"


def cmd_token(args: argparse.Namespace) -> int:
    from airflow_provider_sfjwt.salesforce.auth import TokenCache
    from airflow_provider_sfjwt.salesforce.client import SalesforceClient
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    fields = connection_input(args)
    settings = parse_connection(**fields, get_variable=airflow_variable)
    client = SalesforceClient(settings, cache=TokenCache())
    try:
        token = client.auth.token()
    finally:
        client.close()
    print(f"export SF_INSTANCE_URL={shlex.quote(token.instance_url)}")
    if args.show:
        print(f"export SF_ACCESS_TOKEN={shlex.quote(token.access_token)}")
    else:
        print(f"# SF_ACCESS_TOKEN={mask_token(token.access_token)}")
    print(
        f'# curl -H "Authorization: Bearer $SF_ACCESS_TOKEN" '
        f'"$SF_INSTANCE_URL/services/data/v{settings.api_version}/limits"'
    )
    return EXIT_OK


def cmd_objects(args: argparse.Namespace) -> int:
    from airflow_provider_sfjwt.salesforce.client import SalesforceClient
    from airflow_provider_sfjwt.salesforce.replicate_objects import replicable_objects
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    fields = connection_input(args)
    client = SalesforceClient(parse_connection(**fields, get_variable=airflow_variable))
    try:
        found = list(replicable_objects(client, args.match or (), counts=not args.no_counts))
    finally:
        client.close()
    if args.json:
        print(json.dumps([o.as_dict() for o in found], indent=2))
        return EXIT_OK
    header = ("OBJECT", "ROWS", "CURSOR", "MODE", "FIELDS", "FORMULA", "COMPOUND", "BASE64")
    rows = [
        (
            o.name,
            "-" if o.rows is None else f"{o.rows:,}",
            o.cursor_field or "-",
            o.mode,
            str(o.fields),
            str(o.formula_fields),
            str(o.compound_fields),
            str(o.base64_fields),
        )
        for o in found
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"\n{len(found)} replicable objects ({connection_source(args)})")
    return EXIT_OK


def cmd_emulator(argv: Sequence[str]) -> int:
    from airflow_provider_sfjwt.testing.cli import main as emulator_main

    return emulator_main(list(argv)) or EXIT_OK


_FLAGS = {
    "host": "--login-url",
    "login": "--username",
    "consumer_key": "--consumer-key",
    "private_key": "--key-file",
    "private_key_ref": "--key-ref",
    "password": "--passphrase-env",
    "certificate": "--cert",
    "api_version": "--api-version",
}


def _config_message(exc: ConfigurationError, command: str) -> str:
    """keygen and connection take flags, not connection fields: name the flag to change."""
    if command not in ("keygen", "connection"):
        return str(exc)
    flag = _FLAGS.get(exc.field, "--" + exc.field.replace("_", "-"))
    fix = exc.fix
    if exc.field == "password":
        fix = "pass --passphrase-env VAR with the key's passphrase in $VAR"
    return f"{flag} {exc.problem}." + (f" Fix: {fix}." if fix else "")


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfjwt",
        description="Salesforce JWT Bearer toolkit for Airflow: keys, connections, diagnosis.",
    )
    parser.add_argument("--version", action="version", version=f"sfjwt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("keygen", help="make an RSA key and the certificate to upload to the app")
    p.add_argument(
        "--key", default="salesforce_jwt.key", help="private key file to write (mode 0600)"
    )
    p.add_argument("--cert", default="salesforce_jwt.crt", help="certificate file to write")
    p.add_argument("--bits", type=int, choices=(2048, 3072, 4096), default=2048)
    name = p.add_mutually_exclusive_group()
    name.add_argument("--cn", default="airflow-salesforce-jwt", help="certificate common name")
    name.add_argument("--subject", help="full subject, e.g. /C=US/O=Acme/CN=airflow-salesforce")
    p.add_argument("--days", type=int, default=365, help="certificate validity (default 365)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--encrypt", action="store_true", help="encrypt the key; prompt for the passphrase"
    )
    secret.add_argument(
        "--passphrase-env", metavar="VAR", help="encrypt the key with the passphrase in $VAR"
    )
    p.add_argument(
        "--reuse-key",
        metavar="KEY",
        help="renew only the certificate, for this existing key (rotation without downtime)",
    )
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("connection", help="print the Airflow connection in three forms")
    p.add_argument(
        "--conn-id", default=DEFAULT_CONN_ID, help=f"connection id (default {DEFAULT_CONN_ID})"
    )
    p.add_argument("--login-url", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--consumer-key", required=True)
    p.add_argument("--key-file", help="the private key (checked here; stored as file: reference)")
    p.add_argument(
        "--key-ref",
        help="store this reference instead: file:/path/on/workers, env:VAR, variable:NAME",
    )
    p.add_argument(
        "--passphrase-env", metavar="VAR", help="environment variable with the key passphrase"
    )
    p.add_argument(
        "--cert", help="the certificate uploaded to the app (stored inline: it is public)"
    )
    p.add_argument("--audience")
    p.add_argument("--api-version")
    p.add_argument(
        "--inline-key", action="store_true", help="put the key (and passphrase) in the output"
    )
    p.add_argument("--json", action="store_true", help="one JSON object with all three forms")
    p.set_defaults(func=cmd_connection)

    p = sub.add_parser("doctor", help="run the troubleshooting checklist against a connection")
    p.add_argument(
        "--conn-id",
        help=f"Airflow connection to check (default {DEFAULT_CONN_ID} when no values are given)",
    )
    add_connection_flags(p)
    p.add_argument(
        "--json", action="store_true", help="a JSON list, one {name, status, detail, fix} per check"
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("token", help="print the instance URL and an access token for curl")
    p.add_argument(
        "--conn-id", help=f"Airflow connection (default {DEFAULT_CONN_ID} when no values are given)"
    )
    add_connection_flags(p)
    p.add_argument("--show", action="store_true", help="print the access token itself")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser(
        "objects", help="list the org's replicable objects with row counts and cursor fields"
    )
    p.add_argument(
        "--conn-id", help=f"Airflow connection (default {DEFAULT_CONN_ID} when no values are given)"
    )
    add_connection_flags(p)
    p.add_argument(
        "--match",
        action="append",
        metavar="GLOB",
        help="only objects whose name matches, e.g. 'Account' or '*__c' (repeatable)",
    )
    p.add_argument("--no-counts", action="store_true", help="skip the COUNT() query of each object")
    p.add_argument("--json", action="store_true", help="a JSON list, one object per row")
    p.set_defaults(func=cmd_objects)

    sub.add_parser(
        "emulator",
        help="run the offline Salesforce emulator (sfjwt emulator --help)",
        add_help=False,
    )
    return parser


@contextlib.contextmanager
def _logs_on_stderr() -> Iterator[None]:
    """The provider's own log lines on stderr, warnings and errors only, for the whole command.

    stdout is the command's output (``--json``, the ``export`` lines of ``sfjwt token``), but once
    a command has imported Airflow (``--conn-id``), Airflow 3.0's logging sends every INFO line of
    every logger to stdout. So the package's loggers stop propagating meanwhile, and a handler of
    their own prints what matters on stderr, the same on every release.
    """
    logger = logging.getLogger("airflow_provider_sfjwt")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        return cmd_emulator(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        command: Callable[[argparse.Namespace], int] = args.func
        with _logs_on_stderr():
            return command(args)
    except (UsageError, SalesforceError, OSError) as exc:
        message, code = _failure(exc, args.command)
        print(f"sfjwt {args.command}: {message}", file=sys.stderr)
        return code


def _failure(exc: Exception, command: str) -> tuple[str, int]:
    """What a failed command prints after its name, and its exit code."""
    if isinstance(exc, ConfigurationError):
        return _config_message(exc, command), EXIT_USAGE
    if isinstance(exc, AuthenticationError):
        return f"{exc}\n(sfjwt doctor checks each of these)", EXIT_FAILED
    if isinstance(exc, SalesforceError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, OSError):  # files the user named: unreadable, unwritable, missing folder
        return f"{exc.strerror}: {exc.filename}", EXIT_USAGE
    return str(exc), EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
