"""`make ui`: a real Airflow 3 UI wired to the bundled Salesforce emulator, to click through.

What it starts, all under ``.ui/run`` (rebuilt on every run; ``.ui/`` is gitignored):

1. a throwaway RSA key and certificate (``keys/``, never reused, never committed);
2. the Salesforce emulator with a Connected App that trusts that certificate, one integration
   user and a few thousand Accounts, as a platform engineer would set up a real org;
3. a fresh Airflow home (sqlite) with the provider installed, ``[core] test_connection =
   Enabled`` so the connection form's Test button works, the example DAGs, a known admin
   password, and the connection ``salesforce_jwt_default`` stored in the metadata DB (so it is
   listed under Admin > Connections), the key by ``file:`` reference as in production;
4. the Airflow components ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` on free
   ports, each in its own process group with its log in ``logs/``.

Ctrl-C (or SIGTERM) stops every process group it started, then the emulator. The browser test in
``tests_ui/`` drives the same :class:`AirflowUI`, so what you click is what CI checks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from airflow_provider_sfjwt.salesforce import keys
from airflow_provider_sfjwt.salesforce.safe_write import write_file
from airflow_provider_sfjwt.testing import SalesforceEmulator

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".ui" / "run"
CONN_ID = "salesforce_jwt_default"
CONSUMER_KEY = "3MVG9UICONSUMERKEY.emulator"
USERNAME = "integration.user@ui.example.com"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


def free_port() -> int:
    """A TCP port nobody listens on right now (other engineers and CI share this machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StartupError(RuntimeError):
    """Airflow or the emulator did not come up; the message says which and where its log is."""


class AirflowUI:
    """The emulator plus a running Airflow, started by :meth:`start` and stopped by :meth:`stop`.

    A context manager; ``stop`` is safe to call twice and after a failed ``start``. Attributes
    useful to a caller: ``url`` (the UI), ``emulator``, ``env`` (for ``airflow`` CLI calls),
    ``key_pem``/``certificate_pem`` (the throwaway key pair the emulator's app trusts).
    """

    def __init__(
        self,
        work: Path = WORK,
        accounts: int = 3000,
        port: int | None = None,
        bulk_seconds: float = 12.0,
    ) -> None:
        self.work = work
        self.accounts = accounts
        self.bulk_seconds = bulk_seconds
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.emulator: SalesforceEmulator | None = None
        self.env: dict[str, str] = {}
        self.key_pem = ""
        self.certificate_pem = ""
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AirflowUI:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        for sub in ("keys", "logs", "output", "airflow"):
            (self.work / sub).mkdir(parents=True)
        key_path, cert_path = self._make_keys()
        self._start_emulator()
        self.env = self._airflow_env()
        self._airflow("db", "migrate")
        self._airflow(
            "connections",
            "add",
            CONN_ID,
            "--conn-json",
            json.dumps(self.connection(key_ref=f"file:{key_path}", cert_ref=f"file:{cert_path}")),
        )
        for name in COMPONENTS:
            self._spawn(name)
        self._wait_healthy(time.monotonic() + timeout)

    def stop(self) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after 15 s."""
        for proc in self._procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            # the group may outlive its leader (task processes, api-server workers)
            _signal_group(proc, signal.SIGKILL)
        self._procs.clear()
        for fh in self._logs:
            fh.close()
        self._logs.clear()
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    # --- pieces ------------------------------------------------------------------------------

    def connection(self, key_ref: str, cert_ref: str) -> dict:
        """The ``salesforce_jwt`` connection for the emulator, as ``--conn-json`` takes it."""
        assert self.emulator is not None
        conn = self.emulator.connection(
            username=USERNAME,
            consumer_key=CONSUMER_KEY,
            private_key_ref=key_ref,
            certificate=cert_ref,
        )
        conn["description"] = "Salesforce emulator started by make ui (key by file reference)"
        return conn

    def _make_keys(self) -> tuple[Path, Path]:
        key = keys.generate_private_key(2048)
        cert = keys.self_signed_certificate(key, "sfjwt-ui", days=365)
        self.key_pem = keys.private_key_to_pem(key).decode()
        self.certificate_pem = keys.certificate_to_pem(cert).decode()
        key_path = self.work / "keys" / "ui.key"
        write_file(key_path, self.key_pem.encode(), 0o600, replace=True)
        cert_path = self.work / "keys" / "ui.crt"
        cert_path.write_text(self.certificate_pem)
        return key_path, cert_path

    def _start_emulator(self) -> None:
        # Bulk jobs take a while, as in a real org, so the bulk task is seen deferred.
        emu = SalesforceEmulator(bulk_processing_seconds=self.bulk_seconds)
        emu.start()
        self.emulator = emu
        emu.add_app(
            consumer_key=CONSUMER_KEY, certificate_pem=self.certificate_pem, usernames=[USERNAME]
        )
        emu.generate_accounts(self.accounts)

    def _airflow_env(self) -> dict[str, str]:
        home = self.work / "airflow"
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            # The generated airflow.cfg says default_deferrable = false; the Bulk operators follow
            # it, so deferral (there is a triggerer here) is switched on explicitly.
            AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__CORE__FERNET_KEY=_fernet_key(),
            AIRFLOW__CORE__AUTH_MANAGER=(
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ADMIN_USER}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            SFJWT_OUTPUT_DIR=str(self.work / "output"),
            SFJWT_BULK_POLL_INTERVAL="2",
        )
        return env

    def _airflow(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode:
            raise StartupError(
                f"`airflow {args[0]} {args[1]}` failed (exit {out.returncode}):\n"
                f"{out.stdout[-2000:]}{out.stderr[-3000:]}"
            )
        return out.stdout

    def _spawn(self, name: str) -> None:
        log = (self.work / "logs" / f"{name}.log").open("ab")
        self._logs.append(log)
        self._procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", name],
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )

    def _wait_healthy(self, deadline: float) -> None:
        """Until /api/v2/monitor/health reports every component healthy."""
        health: dict = {}
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as r:
                    health = json.load(r)
            except (urllib.error.URLError, OSError, ValueError):
                health = {}
            if health and all(
                (health.get(c) or {}).get("status") == "healthy" for c in HEALTH_COMPONENTS
            ):
                return
            time.sleep(1)
        raise StartupError(
            f"Airflow was not healthy within the time limit (last health: {health or 'no answer'}); "
            f"logs in {self.work / 'logs'}"
        )

    def check_alive(self) -> None:
        """Raise :class:`StartupError`, with the end of its log, if a component has exited."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise StartupError(
                    f"airflow {name} exited with {proc.returncode}; "
                    f"see {self.work / 'logs' / (name + '.log')}\n{self.log_tail(name)}"
                )

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.work / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="UI port (default: a free one)")
    parser.add_argument("--accounts", type=int, default=3000, help="Accounts in the emulator")
    parser.add_argument(
        "--bulk-seconds", type=float, default=12.0, help="how long a Bulk job takes in the emulator"
    )
    args = parser.parse_args()
    # SIGTERM (a CI runner) takes the same clean path as Ctrl-C; SIGINT is set explicitly
    # because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("Starting the Salesforce emulator and Airflow (about 30 s)...", flush=True)
    started = time.monotonic()
    try:
        with AirflowUI(
            accounts=args.accounts, port=args.port, bulk_seconds=args.bulk_seconds
        ) as ui:
            print(
                f"\nAirflow is ready after {time.monotonic() - started:.0f} s.\n\n"
                f"  UI          {ui.url}\n"
                f"  login       {ADMIN_USER} / {ADMIN_PASSWORD}\n"
                f"  connection  {CONN_ID} (Admin > Connections, press Test)\n"
                f"  DAGs        example_dags/ (try bulk_extract_parquet: it defers while the "
                f"emulator's Bulk job runs)\n"
                f"  emulator    {ui.emulator.url} (Connected App {CONSUMER_KEY}, user {USERNAME})\n"
                f"  output      {ui.work / 'output'}\n"
                f"  logs        {ui.work / 'logs'}\n\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            while True:
                ui.check_alive()
                time.sleep(2)
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0
    except StartupError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
