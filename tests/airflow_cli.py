"""Run the `airflow` command line in a subprocess with an isolated, migrated AIRFLOW_HOME."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from packaging.version import Version

from airflow_provider_sfjwt.compat import AIRFLOW_VERSION, DAG_TEST_REGISTERS_THE_DAG

REPO = Path(__file__).resolve().parent.parent
SQLITE_CONNECT_ARGS = {"timeout": 5 if "api-server" in sys.argv else 120}
"""sqlite's busy timeout for the Airflow processes of the tests (default 5 s). With a scheduler,
a dag-processor, an API server and task processes writing one sqlite file on a loaded machine,
a writer can wait longer than 5 s for the lock; the scheduler then dies on 'database is
locked' and every run stalls, so the scheduler, dag-processor, triggerer and tasks wait 120 s.
The API server keeps 5 s: its audit-log write (``action_logging``) commits inside an ``async``
dependency, so while it waits for the lock the server's event loop waits too, and the request
that holds the lock cannot finish: every component then stood still for the whole busy timeout
(twice 120 s in one standalone run). With 5 s that write fails (HTTP 500, which the tests' REST
writes and the task SDK's client send again) and the server moves on. Airflow imports this dict
through ``[database] sql_alchemy_connect_args`` (the tests' directory is on PYTHONPATH) in each
process, so ``sys.argv`` tells the API server apart."""
API_TIMEOUT = 150
"""Seconds a test's Airflow client (the task processes' execution-API client, a test's REST
calls) waits for the API server: above sqlite's busy timeout, so an answer that waited on the
lock is still taken rather than abandoned (and the task failed) at Airflow's default 5 s."""
SLOW_MACHINE_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tests.airflow_cli.SQLITE_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "tests.airflow_cli.SQLITE_CONNECT_ARGS",
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": str(API_TIMEOUT),
}
"""Settings for Airflow processes of the tests on a shared, loaded machine (see above)."""


def airflow_env(home: Path, dags_folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        PYTHONPATH=str(REPO),
        **SLOW_MACHINE_ENV,
    )
    env.update(extra)
    return env


def run_airflow(
    args: list[str], env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def migrated_home(home: Path, dags_folder: Path, **extra: str) -> dict[str, str]:
    """A migrated AIRFLOW_HOME with the dags folder registered; ``extra`` env vars are set for the
    registration too, since a DAG's Assets may depend on them (``SFJWT_OUTPUT_DIR``)."""
    env = airflow_env(home, dags_folder, **extra)
    out = run_airflow(["db", "migrate"], env)
    assert out.returncode == 0, out.stderr[-3000:]
    register_dags(env)
    return env


def register_dags(env: dict[str, str]) -> None:
    """Register the dags folder's DAGs as the dag processor would, where ``dags test`` does not
    (:data:`~airflow_provider_sfjwt.compat.DAG_TEST_REGISTERS_THE_DAG`): ``airflow dags
    reserialize``, in the environment of the later runs."""
    if DAG_TEST_REGISTERS_THE_DAG:
        return
    out = run_airflow(["dags", "reserialize"], env)
    assert out.returncode == 0, out.stderr[-3000:]


def without_mask_requests(output: str) -> str:
    """``dags test`` output without Airflow 3.0's echo of each secret it is asked to mask.

    In 3.0 the in-process test supervisor logs every message a task sends it at debug level,
    including ``MaskSecret(value=<the secret>)``: the registration itself, printed by Airflow
    (3.1 and later print no such line). Every other line stays, so a secret that our code
    logs, prints or raises is still found.
    """
    if Version("3.1") <= AIRFLOW_VERSION:
        return output
    return "\n".join(line for line in output.splitlines() if not _MASK_REQUEST_ECHO.search(line))


_MASK_REQUEST_ECHO = re.compile(r"\[debug\s*\] Sending request\s+msg=MaskSecret\(")


class ApiServer:
    """``airflow api-server`` on a loopback port, for ``airflow dags test --use-executor``.

    An executor's task processes reach Airflow through the execution API, which the API server
    serves; ``dags test --use-executor`` starts no server of its own. ``env`` is the
    environment of both the server and the runs that use it (``.env``). Unit-test mode is off:
    it gives each process a configuration of its own, and the task processes' execution-API
    tokens would not be valid for the server.
    """

    def __init__(self, env: dict[str, str], port: int, bound: float = 180) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.env = dict(env, AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base}/execution/")
        self.env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        self.port = port
        self.bound = bound
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(env["AIRFLOW_HOME"]) / "api-server.out"

    def __enter__(self) -> ApiServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1"]
            + ["--port", str(self.port)],
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.bound
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                if requests.get(f"{self.base}/api/v2/monitor/health", timeout=5).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise AssertionError(f"airflow api-server did not answer within {self.bound:.0f} s")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
