"""Secret-leak scan: the example DAGs and failing variants, run for real, leave no secret behind.

Two runs over the same DAGs (``example_dags/``, ``tests/dags/sfjwt_leak_probe.py`` and
``tests/dags/sfjwt_rel_failures.py``) and one emulator, and one executor run of a DAG that logs
its secrets on purpose:

1. ``airflow dags test`` of each DAG in a subprocess (in-process executor, trigger run in line;
   every example DAG with ``SFJWT_TEST_ALL=1``, else the failing variants);
2. a real deployment: ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server,
   LocalExecutor, sqlite) in a temporary AIRFLOW_HOME on free ports, every DAG triggered through
   the REST API and awaited with a bound, everything stopped in a ``finally``. It takes over a
   minute, so plain ``make test`` runs it only on Airflow 3.0, where run 3 cannot prove masking;
   ``SFJWT_TEST_ALL=1`` (CI, ``make reliability``) runs it on every release;
3. ``airflow dags test --use-executor`` (LocalExecutor, with an ``airflow api-server`` for the
   tasks' execution API) of ``tests/dags/sfjwt_secret_log_probe.py``: two task processes log
   the access token, the passphrase and every key line on purpose, the second with the token it
   took from the token store. Airflow masks what was registered with its masker, so the task
   log files show none of them only if every path that yields a secret registers it.

Why task log files: in Airflow 3.3 ``airflow dags test`` and ``dag.test()`` mask nothing on the
console, not even Airflow's own connection passwords (the masking added to ``tasks test`` in
apache/airflow#24362 was never added to ``dags test``). A scan of that console output proves only
that nothing printed a secret; masking shows in the log files an executor writes.

Collected: every file under AIRFLOW_HOME/logs (task, trigger, scheduler and processor logs), the
processes' own output, the ``dags test`` and ``sfjwt doctor`` outputs, every XCom value and
rendered template field (REST API), the task-instance notes and the whole sqlite database file
(XComs, rendered fields, trigger kwargs, dag-run conf as stored). None may contain a line of the
private key (encrypted or not), the passphrase, a JWT assertion the emulator received or an
access token it issued. The runs must also have done their job - tokens issued, DAGs in the
expected states, our error messages present - or a silent scan would prove nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from packaging.version import Version

from airflow_provider_sfjwt.compat import AIRFLOW_VERSION
from airflow_provider_sfjwt.salesforce.keys import pem_lines, private_key_to_pem
from airflow_provider_sfjwt.testing import SalesforceEmulator

from ..airflow_cli import (
    API_TIMEOUT,
    REPO,
    SLOW_MACHINE_ENV,
    ApiServer,
    migrated_home,
    run_airflow,
    without_mask_requests,
)
from .conftest import TEST_ALL

CONSUMER_KEY = "3MVG9LEAKSCAN.reliability"
USERNAME = "integration@leakscan.example.com"
PASSPHRASE = "leak-scan-passphrase-7f3a"
EXAMPLES = sorted(p.stem for p in (REPO / "example_dags").glob("*.py"))
PROBES = ["sfjwt_leak_probe", "sfjwt_rel_failures"]
EXPECTED_FAILURES = {
    "sfjwt_leak_probe": ["INVALID_FIELD", "invalid_client_id", "wrong passphrase"],
    "sfjwt_rel_failures": [
        "INVALID_FIELD",
        "invalid_client_id",
        "wrong passphrase",
        "NOT_FOUND",
        "REQUIRED_FIELD_MISSING",
    ],
}
# Each `airflow dags test` is a fresh Airflow process (~10-30 s): `make test` runs the failing
# variants (tests/test_leaks.py already runs the leak probe); SFJWT_TEST_ALL=1 (make test-all,
# make reliability) every example DAG too. The real-scheduler run below covers all of them.
DAGS_TEST_DAGS = EXAMPLES + PROBES if TEST_ALL else ["sfjwt_rel_failures"]
EXECUTOR_RUN_WORKS = Version("3.1") <= AIRFLOW_VERSION
"""Whether ``airflow dags test --use-executor`` can run the masking probe (see the skip below)."""
RUN_BOUND = 420  # seconds for all triggered runs to finish under a loaded machine
# Tasks that log in for real on purpose, whatever the token store holds (``login_client``): the
# connection check and the credential health check of the examples, and the leak probe's
# ``test_connection``. Every other task takes the one token the first exchange stored.
LOGIN_TASKS = {
    ("salesforce_connection_check", "connect"),
    ("salesforce_credential_health", "check_credentials"),
    ("sfjwt_leak_probe", "good_then_bad_query"),
}
LOCK_TIMEOUT_WARNING = "held the Salesforce token lock"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Org:
    """The emulator, the secrets it must never see leaked, and the Airflow env to reach it."""

    def __init__(self, emu: SalesforceEmulator, keypair: Any, out: Path) -> None:
        self.emu = emu
        self.encrypted = private_key_to_pem(keypair.key, PASSPHRASE).decode()
        self.plain = keypair.pem
        self.out = out

        def conn(consumer_key: str = CONSUMER_KEY, password: str = PASSPHRASE) -> str:
            return json.dumps(
                emu.connection(
                    username=USERNAME,
                    consumer_key=consumer_key,
                    private_key_pem=self.encrypted,
                    passphrase=password,
                    certificate=keypair.cert_pem,
                    max_retries=1,
                )
            )

        self.env = {
            "AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT": conn(),
            "AIRFLOW_CONN_SF_WRONG_APP": conn(consumer_key="3MVG9NOSUCHAPP"),
            "AIRFLOW_CONN_SF_WRONG_PASSPHRASE": conn(password="not-the-passphrase"),
            "SFJWT_OUTPUT_DIR": str(out),
            # Not shorter: a trigger that fires before the LocalExecutor has reported the
            # deferring workload as finished makes Airflow 3.3 fail the task ("state changed
            # externally"), seen here with 0.2 s on a loaded machine.
            "SFJWT_BULK_POLL_INTERVAL": "5",
        }

    def secrets(self) -> list[str]:
        found = pem_lines(self.encrypted) + pem_lines(self.plain) + [PASSPHRASE]
        return found + self.emu.issued_tokens + self.emu.received_assertions


def leaked(secrets: list[str], texts: dict[str, str]) -> list[str]:
    """``where: secret-prefix...`` for every secret found in any collected text."""
    return [
        f"{where}: {secret[:10]}..."
        for where, text in texts.items()
        for secret in secrets
        if secret and secret in text
    ]


def issue_times(emu: SalesforceEmulator, tokens: list[str]) -> list[str]:
    """When each token was issued (UTC), to line up with the task instances' start and end."""
    sessions = emu.identity.sessions
    return [
        time.strftime("%H:%M:%S", time.gmtime(sessions[t].issued_at)) if t in sessions else "?"
        for t in tokens
    ]


def read_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(errors="replace")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def org(keypair, tmp_path_factory):
    with SalesforceEmulator() as emu:
        emu.add_app(
            consumer_key=CONSUMER_KEY, certificate_pem=keypair.cert_pem, usernames=[USERNAME]
        )
        emu.generate_accounts(50)
        emu.generate_contacts(30)
        emu.register_apex("POST", "AccountHealth", lambda req: (200, {"score": 7}))
        yield Org(emu, keypair, tmp_path_factory.mktemp("leak_out"))


def dags_folder(tmp: Path) -> Path:
    folder = tmp / "dags"
    folder.mkdir()
    for path in [*(REPO / "example_dags").glob("*.py"), *(REPO / "tests" / "dags").glob("*.py")]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.timeout(600)
def test_dags_test_runs_leak_nothing(org, tmp_path, cell):
    cell.describe(
        "leaks", "dags_test", f"`airflow dags test` of {len(DAGS_TEST_DAGS)} DAGs + `sfjwt doctor`",
        "scan", "What was scanned", "no PEM line, passphrase, assertion or access token",
    )  # fmt: skip
    env = migrated_home(tmp_path / "home", dags_folder(tmp_path), **org.env)
    outputs: dict[str, str] = {}
    for dag_id in DAGS_TEST_DAGS:
        out = run_airflow(["dags", "test", dag_id], env, timeout=240)
        outputs[f"dags test {dag_id}"] = without_mask_requests(out.stdout + out.stderr)
        if dag_id in EXPECTED_FAILURES:
            for word in EXPECTED_FAILURES[dag_id]:
                assert word in outputs[f"dags test {dag_id}"], (dag_id, word)
        else:
            assert out.returncode == 0, (dag_id, out.stderr[-3000:])
    doctor = subprocess.run(
        [sys.executable, "-m", "airflow_provider_sfjwt.cli", "doctor", "--conn-id", "sf_wrong_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs["sfjwt doctor"] = doctor.stdout + doctor.stderr
    outputs.update(read_tree(tmp_path / "home" / "logs"))
    assert org.emu.issued_tokens and org.emu.received_assertions
    secrets = org.secrets()
    found = leaked(secrets, outputs)
    assert not found, f"secrets leaked: {found}"
    cell.outcome = f"clean: {len(outputs)} outputs and log files, {len(secrets)} secrets sought"


class Standalone:
    """``airflow standalone`` in its own process group, driven through the REST API."""

    def __init__(self, home: Path, dags: Path, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__CORE__PARALLELISM="4",
            # The generated airflow.cfg says default_deferrable = false, which the Bulk operators
            # follow: switched on so the Bulk DAGs defer to the triggerer as in production.
            AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=self.base,
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
            PYTHONPATH=str(REPO),
            **SLOW_MACHINE_ENV,
            # standalone starts its components as `airflow ...` from PATH
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        )
        self.env.update(extra_env)
        self.log = home / "standalone.out"
        self.proc: subprocess.Popen | None = None
        self.http = requests.Session()

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method, f"{self.base}/api/v2/{path}", timeout=API_TIMEOUT, **kwargs
        )

    def wait_until(self, what: str, probe, bound: float) -> Any:
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, (
                f"airflow standalone exited while waiting for {what}: {self.diagnosis()}"
            )
            try:
                value = probe()
            except requests.RequestException:
                value = None
            if value:
                return value
            time.sleep(1)
        raise AssertionError(
            f"timed out after {bound:.0f} s waiting for {what}: {self.diagnosis()}"
        )

    def diagnosis(self) -> str:
        """Why a run is not finished: the components' health as the API server sees it (a dead
        scheduler or triggerer shows as unhealthy), every unfinished task instance with its
        state, and the tail of the standalone output (errors such as 'database is locked')."""
        parts = []
        try:
            health = self.http.get(f"{self.base}/api/v2/monitor/health", timeout=30).json()
            parts.append(f"health: {json.dumps(health)}")
            for run in self.runs():
                if run["state"] in ("success", "failed"):
                    continue
                tis = self.task_instances(run["dag_id"], run["dag_run_id"])
                states = {ti["task_id"]: ti["state"] for ti in tis}
                parts.append(f"{run['dag_id']} {run['dag_run_id']} {run['state']}: {states}")
        except (requests.RequestException, ValueError, KeyError) as exc:
            parts.append(f"the API server did not say ({type(exc).__name__}: {exc})")
        parts.append(
            "standalone output, last lines:\n" + self.log.read_text(errors="replace")[-4000:]
        )
        return "\n".join(parts)

    def runs(self) -> list[dict[str, Any]]:
        """Every run of every DAG: the triggered ones, the scheduled runs unpausing created and
        the runs that asset events triggered."""
        response = self.api("GET", "dags/~/dagRuns", params={"limit": 1000})
        response.raise_for_status()
        return response.json()["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        response = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        response.raise_for_status()
        return response.json()["task_instances"]

    def write(self, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        """A write through the API; sqlite answers 'database is locked' (HTTP 500) now and then
        while the scheduler and dag-processor write too, so a 5xx is tried again. On a loaded
        machine the API server can also wait on that lock past the read timeout: an idempotent
        write (PATCH) is then sent again; a POST, which would trigger a second run, is not."""
        response = None
        for _ in range(10):
            try:
                response = self.api(method, path, json=body)
            except requests.Timeout:
                if method != "PATCH":
                    raise
                continue
            if response.status_code < 500:
                break
            time.sleep(1)
        assert response is not None, f"{method} {path}: timed out 10 times"
        assert response.ok, f"{method} {path}: HTTP {response.status_code} {response.text[:300]}"
        return response

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.wait_until(f"DAG {dag_id} parsed", lambda: self.api("GET", f"dags/{dag_id}").ok, 180)
        self.write("PATCH", f"dags/{dag_id}", {"is_paused": False})
        run = self.write("POST", f"dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        response = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
        return response.json()["state"] if response.ok else "unknown (HTTP error, asked again)"

    def task_texts(self, dag_id: str, run_id: str) -> dict[str, str]:
        """XCom values and rendered template fields of every task of a run, as stored."""
        texts: dict[str, str] = {}
        for ti in self.task_instances(dag_id, run_id):
            task = ti["task_id"]
            texts[f"{dag_id}.{run_id}.{task} task instance"] = json.dumps(ti)
            xcoms = self.api(
                "GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries"
            ).json()
            for entry in xcoms.get("xcom_entries", []):
                value = self.api(
                    "GET",
                    f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/"
                    f"{entry['key']}",
                    params={"deserialize": "true", "stringify": "true"},
                )
                texts[f"{dag_id}.{run_id}.{task} xcom {entry['key']}"] = value.text
        return texts


@pytest.mark.skipif(
    EXECUTOR_RUN_WORKS and not TEST_ALL,
    reason="over a minute, so only with SFJWT_TEST_ALL=1 (CI) where the executor run below "
    "proves masking in task log files; on Airflow 3.0 it always runs",
)
@pytest.mark.timeout(900)
def test_real_scheduler_run_leaks_nothing(org, tmp_path, cell):
    cell.describe(
        "leaks", "standalone", f"`airflow standalone` (LocalExecutor), {len(EXAMPLES + PROBES)} DAGs",
        "scan", "What was scanned", "no PEM line, passphrase, assertion or access token",
    )  # fmt: skip
    # A token store of its own, so the exchanges counted below are this run's alone.
    store = {"SFJWT_TOKEN_CACHE_DIR": str(tmp_path / "tokens")}
    air = Standalone(tmp_path / "home", dags_folder(tmp_path), {**org.env, **store})
    exchanges_before = len(org.emu.issued_tokens)
    texts: dict[str, str] = {}
    states: dict[str, str] = {}
    logins: list[str] = []
    try:
        air.start()
        air.wait_until(
            "the API server", lambda: air.http.get(f"{air.base}/api/v2/monitor/health").ok, 240
        )
        runs = {
            dag_id: air.trigger(dag_id, {} if dag_id in PROBES else {"output_dir": str(org.out)})
            for dag_id in EXAMPLES + PROBES
        }

        def all_done() -> bool:
            for dag_id, run_id in runs.items():
                states[dag_id] = air.run_state(dag_id, run_id)
            return all(s in ("success", "failed") for s in states.values()) and all(
                run["state"] in ("success", "failed") for run in air.runs()
            )

        air.wait_until("every DAG run to finish", all_done, RUN_BOUND)
        for run in air.runs():
            dag_id, run_id = run["dag_id"], run["dag_run_id"]
            texts.update(air.task_texts(dag_id, run_id))
            logins += [
                f"{dag_id}.{ti['task_id']} {run_id} try {ti['try_number']}"
                for ti in air.task_instances(dag_id, run_id)
                if (dag_id, ti["task_id"]) in LOGIN_TASKS
                for _ in range(ti["try_number"])
            ]
    finally:
        air.stop()
    texts.update(read_tree(air.home / "logs"))
    texts["standalone output"] = air.log.read_text(errors="replace")
    texts["metadata database (raw bytes)"] = (
        (air.home / "airflow.db").read_bytes().decode("latin-1")
    )
    assert {d: s for d, s in states.items() if d not in PROBES} == dict.fromkeys(
        EXAMPLES, "success"
    ), states
    assert all(states[d] == "failed" for d in PROBES), states
    task_logs = "\n".join(t for name, t in texts.items() if name.startswith("dag_id="))
    for words in EXPECTED_FAILURES.values():
        for word in words:
            assert word in task_logs, word
    assert any(".log.trigger." in name for name in texts), "no triggerer log: nothing deferred"
    assert org.emu.issued_tokens and org.emu.received_assertions
    secrets = org.secrets()
    found = leaked(secrets, texts)
    assert not found, f"secrets leaked: {found}"
    logs = sum(name.startswith(("dag_id=", "dag_processor")) for name in texts)
    task_logs = {n: t for n, t in texts.items() if n.startswith("dag_id=") and ".log" in n}
    # Every task is a process of its own; they share one token through the token store: one
    # exchange stores it, and only the tasks that log in on purpose exchange again (each try of
    # each of their runs: unpausing the daily health check also schedules a run). A task that
    # waited past the store's lock timeout logs in on its own and says so in its log.
    lock_waits = [n for n, t in task_logs.items() if LOCK_TIMEOUT_WARNING in t]
    issued = org.emu.issued_tokens[exchanges_before:]
    exchanges = len(issued)
    assert exchanges == 1 + len(logins) + len(lock_waits), (
        f"{exchanges} token exchanges for {len(task_logs)} task logs; expected 1 (the shared "
        f"token) + {len(logins)} logins on purpose {logins} + {len(lock_waits)} lock timeouts "
        f"{lock_waits}. Tokens issued at: {issue_times(org.emu, issued)}"
    )
    cell.outcome = (
        f"clean: {logs} log files, XComs and rendered fields of {len(states)} runs, the "
        f"processes' output and the sqlite database; {len(secrets)} secrets sought; "
        f"{exchanges} token exchanges for {len(task_logs)} task logs (1 shared token, "
        f"{len(logins)} logins on purpose, {len(lock_waits)} lock timeouts)"
    )


@pytest.mark.skipif(
    not EXECUTOR_RUN_WORKS,
    reason="Airflow 3.0's `dags test --use-executor` fails a task that ends while its loop waits "
    "('state changed externally': it checks the executor's event against the task state it read "
    "before; 3.1 re-reads it). On 3.0 the real-scheduler run proves masking in task log files.",
)
@pytest.mark.timeout(600)
def test_executor_run_masks_secrets_logged_on_purpose(org, tmp_path, cell):
    cell.describe(
        "leaks", "executor", "`airflow dags test --use-executor`: 2 tasks log their secrets",
        "scan", "What was scanned", "task log files show no access token, passphrase or key line",
    )  # fmt: skip
    env = migrated_home(tmp_path / "home", REPO / "tests" / "dags")
    env.update(org.env, SFJWT_TOKEN_CACHE_DIR=str(tmp_path / "tokens"))
    exchanges_before = org.emu.stats.token_exchanges
    tokens_before = set(org.emu.issued_tokens)
    with ApiServer(env, free_port()) as api:
        out = run_airflow(["dags", "test", "--use-executor", "sfjwt_secret_log_probe"], api.env)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    logs = {
        name: text
        for name, text in read_tree(tmp_path / "home" / "logs").items()
        if name.startswith("dag_id=sfjwt_secret_log_probe")
    }
    tokens = [t for t in org.emu.issued_tokens if t not in tokens_before]
    secrets = tokens + pem_lines(org.encrypted) + [PASSPHRASE]
    found = leaked(secrets, logs)
    assert not found, f"secrets in executor task logs: {found}"
    # Both tasks ran in processes of their own and logged every secret line; one exchange means
    # the second took its token from the store, the path that must register it too.
    assert len(logs) == 2, sorted(logs)
    for name, text in logs.items():
        assert "access token: ***" in text, (name, text[-2000:])
        assert "passphrase: ***" in text, name
        assert text.count("key line") == len(pem_lines(org.encrypted)), name
    assert org.emu.stats.token_exchanges - exchanges_before == 1
    cell.outcome = (
        f"clean: {len(logs)} task logs (1 token exchange, 1 token from the store), "
        f"{len(secrets)} secrets sought"
    )
