"""``python -m airflow_provider_sfjwt.testing`` / ``sfjwt emulator``: run an emulator until Ctrl-C.

It generates a throwaway key and certificate (files with mode 0600), registers a Connected App
and an approved user, optionally generates data, and prints the Airflow connection to use, with
the key referenced by file (``private_key_ref=file:...``) rather than pasted inline.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence

from ..salesforce.safe_write import write_file
from .emulator import SalesforceEmulator
from .keys import new_key_pair
from .latency import Latency
from .wiring import CONN_ID, CONSUMER_KEY, USERNAME, conn_env_var


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the emulator options to ``parser`` (so ``sfjwt emulator`` can reuse them)."""
    p = parser or argparse.ArgumentParser(
        prog="python -m airflow_provider_sfjwt.testing",
        description="Run a local Salesforce emulator (JWT bearer token endpoint, REST, Bulk API 2.0).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 = any free port)")
    p.add_argument("--tls", action="store_true", help="serve https with a generated certificate")
    p.add_argument("--accounts", type=int, default=1000, help="Accounts to generate (default 1000)")
    p.add_argument("--contacts", type=int, default=1000, help="Contacts to generate (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    p.add_argument("--key-dir", help="where to write the key and certificate (default: a temp dir)")
    p.add_argument("--username", default=USERNAME, help=f"integration user (default {USERNAME})")
    p.add_argument("--consumer-key", default=CONSUMER_KEY, help="consumer key of the app")
    p.add_argument(
        "--app-kind", choices=("connected", "external"), default="connected", help="app type"
    )
    p.add_argument("--page-size", type=int, default=2000, help="REST query page size")
    p.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="network round trip added to every request, in ms (default 0: loopback speed)",
    )
    p.add_argument(
        "--page-ms",
        type=float,
        default=0.0,
        help="server time per REST query page and per Bulk result chunk, in ms (default 0)",
    )
    p.add_argument(
        "--connect-round-trips",
        type=int,
        default=None,
        help="round trips a new connection costs (default: 1 over http, 2 over https)",
    )
    return p


def start_from_args(args: argparse.Namespace) -> tuple[SalesforceEmulator, dict[str, object]]:
    key_dir = args.key_dir or tempfile.mkdtemp(prefix="sfemu-keys-")
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    keys = new_key_pair("sfjwt-emulator")
    key_path = os.path.abspath(os.path.join(key_dir, "emulator_private_key.pem"))
    cert_path = os.path.abspath(os.path.join(key_dir, "emulator_certificate.pem"))
    # Replaced through a temporary file and a rename: a link planted at either name in a
    # shared --key-dir is replaced, never written through.
    write_file(key_path, keys.private_key_pem.encode(), 0o600, replace=True)
    write_file(cert_path, keys.certificate_pem.encode(), 0o600, replace=True)
    latency = Latency(args.rtt_ms / 1000, args.page_ms / 1000, args.connect_round_trips)
    emu = SalesforceEmulator(
        tls=args.tls, host=args.host, port=args.port, page_size=args.page_size, latency=latency
    )
    emu.add_app(args.consumer_key, keys.certificate_pem, [args.username], kind=args.app_kind)
    if args.accounts:
        emu.generate_accounts(args.accounts, seed=args.seed)
    if args.contacts:
        emu.generate_contacts(args.contacts, seed=args.seed)
    emu.start()
    conn = emu.connection(
        CONN_ID,
        username=args.username,
        consumer_key=args.consumer_key,
        private_key_ref=f"file:{key_path}",
        certificate=f"file:{cert_path}",
    )
    return emu, conn


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, start the emulator, print the connection, serve until interrupted."""
    args = build_parser().parse_args(argv)
    emu, conn = start_from_args(args)
    out = sys.stdout
    print(f"Salesforce emulator listening on {emu.url}", file=out)
    if emu.ca_cert_path:
        print(f"CA certificate (use as REQUESTS_CA_BUNDLE / verify=): {emu.ca_cert_path}", file=out)
    print(f"Stats: {emu.url}/__emulator__/stats", file=out)
    print("Airflow connection:", file=out)
    print(f"export {conn_env_var(CONN_ID)}={shlex.quote(json.dumps(conn))}", file=out)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly (temp files) on SIGTERM too
    try:
        # Printed inside the try: whoever reads this line may stop us at once (SIGTERM), and
        # the KeyboardInterrupt that raises must land here, not between the print and the try.
        print("Press Ctrl-C to stop.", file=out, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        if not args.key_dir:  # a throwaway key in a temporary directory: remove it
            key_file = str(conn["extra"]["private_key_ref"]).removeprefix("file:")  # type: ignore[index]
            shutil.rmtree(os.path.dirname(key_file), ignore_errors=True)
    return 0
